/* Config readers: the released config.json values parse into the expected
 * structs, and every missing key, wrong type and malformed file is rejected
 * with "<file>: <key.path>: <problem>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "modelfix.h"
#include "testutil.h"

static char cfg[8192];

/* Replace the first occurrence of `from` in cfg by `to`. */
static bool edit(const char *from, const char *to) {
    char *p = strstr(cfg, from);
    if (!p) return false;
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(p + fl);
    memmove(p + tl, p + fl, rest + 1);
    memcpy(p, to, tl);
    return true;
}

static qtts_status parse(qtts_model_config *mc, qtts_err *err) {
    qtts_err_clear(err);
    return qtts_model_config_parse(cfg, strlen(cfg), "config.json", mc, err);
}

/* Start from the released 1.7B CustomVoice file, apply one edit, expect failure naming `msg`. */
static void expect_bad(const char *from, const char *to, const char *msg) {
    qtts_model_config mc;
    qtts_err err = {0};
    mf_config_json(cfg, sizeof cfg, true, "custom_voice");
    CHECK(edit(from, to), "fixture lacks '%s'", from);
    qtts_status s = parse(&mc, &err);
    CHECK(s != QTTS_OK && strstr(err.msg, msg), "edit '%s' -> '%s': got %s '%s', want '%s'", from, to, qtts_status_str(s), err.msg, msg);
}

static void test_released(void) {
    qtts_model_config mc;
    qtts_err err = {0};
    mf_config_json(cfg, sizeof cfg, true, "custom_voice");
    qtts_status s = parse(&mc, &err);
    CHECK(s == QTTS_OK, "1.7B CustomVoice: %s", err.msg);
    CHECK(mc.variant == QTTS_VARIANT_CUSTOM_VOICE && !strcmp(mc.size_tag, "1b7"), "variant/size");
    CHECK(mc.talker.hidden_size == 2048 && mc.talker.intermediate_size == 6144 && mc.talker.num_layers == 28 &&
              mc.talker.num_heads == 16 && mc.talker.num_kv_heads == 8 && mc.talker.head_dim == 128 && mc.talker.vocab_size == 3072 &&
              mc.talker.max_position_embeddings == 32768,
          "talker dims");
    CHECK(mc.talker.rope_theta == 1e6f && mc.talker.rms_norm_eps == 1e-6f, "talker rope/eps");
    CHECK(mc.talker.rope_interleaved && mc.talker.mrope_section[0] == 24 && mc.talker.mrope_section[2] == 20, "mrope");
    CHECK(mc.predictor.hidden_size == 1024 && mc.predictor.num_layers == 5 && mc.predictor.vocab_size == 2048 &&
              mc.predictor.max_position_embeddings == 65536 && mc.predictor.mrope_section[0] == 0,
          "predictor dims");
    CHECK(mc.text_vocab_size == 151936 && mc.text_hidden_size == 2048 && mc.num_code_groups == 16, "text dims");
    CHECK(mc.codec_pad_id == 2148 && mc.codec_bos_id == 2149 && mc.codec_eos_id == 2150 && mc.codec_think_id == 2154 &&
              mc.codec_nothink_id == 2155 && mc.codec_think_bos_id == 2156 && mc.codec_think_eos_id == 2157,
          "codec ids");
    CHECK(mc.im_start_id == 151644 && mc.im_end_id == 151645 && mc.assistant_id == 77091 && mc.tts_pad_id == 151671 &&
              mc.tts_bos_id == 151672 && mc.tts_eos_id == 151673,
          "text ids");
    CHECK(mc.n_languages == 12 && qtts_config_language_id(&mc, "English") == 2050 && qtts_config_language_id(&mc, "klingon") == -1,
          "languages");
    CHECK(mc.n_speakers == 9, "speakers %d", mc.n_speakers);
    const qtts_named_id *e = qtts_config_speaker(&mc, "ERIC");
    CHECK(e && e->id == 2875 && !strcmp(e->dialect, "sichuan_dialect"), "eric");
    const qtts_named_id *r = qtts_config_speaker(&mc, "ryan");
    CHECK(r && r->id == 3061 && r->dialect[0] == 0, "ryan");
    CHECK(!qtts_config_speaker(&mc, "nobody") && !mc.has_speaker_encoder, "no such speaker; no speaker encoder");

    /* one-element lists for ids, as some fixtures write them */
    CHECK(edit("\"serena\": 3066", "\"serena\": [3066]"), "edit");
    s = parse(&mc, &err);
    CHECK(s == QTTS_OK && qtts_config_speaker(&mc, "serena") && qtts_config_speaker(&mc, "serena")->id == 3066, "list id: %s", err.msg);

    /* VoiceDesign with spk_id {} and Base with the keys absent */
    mf_config_json(cfg, sizeof cfg, false, "voice_design");
    s = parse(&mc, &err);
    CHECK(s == QTTS_OK && mc.variant == QTTS_VARIANT_VOICE_DESIGN && mc.n_speakers == 0, "VoiceDesign: %s", err.msg);
    mf_config_json(cfg, sizeof cfg, false, "base");
    CHECK(edit("\"spk_id\": {},", "") && edit("\"spk_is_dialect\": {},", ""), "edit");
    s = parse(&mc, &err);
    CHECK(s == QTTS_OK && mc.variant == QTTS_VARIANT_BASE && mc.has_speaker_encoder && mc.speaker_enc_dim == 1024 &&
              mc.speaker_sample_rate == 24000,
          "Base: %s", err.msg);
    /* an unknown extra key is ignored */
    mf_config_json(cfg, sizeof cfg, true, "custom_voice");
    CHECK(edit("{\"architectures\"", "{\"future_key\": {\"x\": [1, 2]}, \"architectures\""), "edit");
    s = parse(&mc, &err);
    CHECK(s == QTTS_OK, "extra key: %s", err.msg);
}

static void test_bad_model(void) {
    expect_bad("\"hidden_size\": 2048,", "", "config.json: talker_config.hidden_size: missing");
    expect_bad("\"hidden_size\": 2048,", "\"hidden_size\": \"2048\",", "config.json: talker_config.hidden_size: expected an integer, got string");
    expect_bad("\"hidden_size\": 2048,", "\"hidden_size\": 2048.5,", "talker_config.hidden_size: expected an integer, got 2048.5");
    expect_bad("\"hidden_size\": 2048,", "\"hidden_size\": 0,", "talker_config.hidden_size: 0 is out of range");
    expect_bad("\"num_hidden_layers\": 5,", "", "config.json: talker_config.code_predictor_config.num_hidden_layers: missing");
    expect_bad("\"vocab_size\": 2048}", "\"vocab_size\": null}", "talker_config.code_predictor_config.vocab_size: expected an integer, got null");
    expect_bad("\"head_dim\": 128, \"hidden_act\": \"silu\", \"hidden_size\": 2048", "\"hidden_act\": \"silu\", \"hidden_size\": 2048",
               "talker_config.head_dim: missing");
    expect_bad("\"codec_eos_token_id\": 2150,", "", "talker_config.codec_eos_token_id: missing");
    expect_bad("\"codec_eos_token_id\": 2150,", "\"codec_eos_token_id\": 4198,", "talker_config.codec_eos_token_id: id 4198 is outside");
    expect_bad("\"tts_model_type\": \"custom_voice\"", "\"tts_model_type\": \"karaoke\"", "tts_model_type: unknown value \"karaoke\"");
    expect_bad("\"tts_model_type\": \"custom_voice\"", "\"tts_model_type\": 3", "tts_model_type: expected a string, got 3");
    expect_bad("\"tts_bos_token_id\": 151672,", "", "config.json: tts_bos_token_id: missing");
    expect_bad("\"tts_pad_token_id\": 151671", "\"tts_pad_token_id\": 999999", "tts_pad_token_id: id 999999 is outside the text vocabulary");
    expect_bad("\"ryan\": 3061", "\"ryan\": \"3061\"", "talker_config.spk_id.ryan: expected an integer, got string");
    expect_bad("\"ryan\": 3061", "\"ryan\": [3061, 3062]", "talker_config.spk_id.ryan: expected an integer or a one-element list");
    expect_bad("\"eric\": \"sichuan_dialect\"", "\"eric\": true", "talker_config.spk_is_dialect.eric: expected false or a string, got boolean");
    expect_bad("\"eric\": \"sichuan_dialect\"", "\"eric\": \"martian\"", "spk_is_dialect.eric: dialect \"martian\" is not in codec_language_id");
    expect_bad("\"codec_language_id\": {", "\"codec_language_idx\": {", "talker_config.codec_language_id: missing");
    expect_bad("\"english\": 2050", "\"english\": 5000", "talker_config.codec_language_id.english: id 5000 is outside");
    expect_bad("\"num_key_value_heads\": 8,  \"position_id", "\"num_key_value_heads\": 5,  \"position_id",
               "talker_config.num_attention_heads: 16 is not a multiple of num_key_value_heads 5");
    expect_bad("[24, 20, 20]", "\"24\"", "talker_config.rope_scaling.mrope_section");
    {
        /* sections need not sum to head_dim/2: TTS positions are identical in
         * the three M-RoPE streams, and the official code runs such configs
         * (the tiny fixtures keep [24, 20, 20] with head_dim 16) */
        qtts_model_config mc;
        qtts_err err = {0};
        mf_config_json(cfg, sizeof cfg, true, "custom_voice");
        CHECK(edit("[24, 20, 20]", "[24, 20, 21]"), "fixture lacks mrope_section");
        CHECK(parse(&mc, &err) == QTTS_OK && mc.talker.mrope_section[2] == 21, "mrope sections not summing to head_dim/2: %s", err.msg);
    }
    expect_bad("\"num_code_groups\": 16, \"num_hidden_layers\": 5", "\"num_code_groups\": 32, \"num_hidden_layers\": 5",
               "code_predictor_config.num_code_groups: 32 differs");
    expect_bad("\"code_predictor_config\": {", "\"code_predictor_config\": [], \"x\": {", "talker_config.code_predictor_config: expected an object, got array");
    expect_bad("\"talker_config\": {", "\"talker_config\": null, \"x\": {", "config.json: talker_config: expected an object, got null");
    /* custom_voice without speakers */
    expect_bad("\"spk_id\": {", "\"spk_idx\": {", "talker_config.spk_id: missing (a custom_voice model needs its speakers)");
    /* Base without its speaker encoder config, or with a mismatching one */
    {
        qtts_model_config mc;
        qtts_err err = {0};
        mf_config_json(cfg, sizeof cfg, true, "base");
        CHECK(edit("\"enc_dim\": 2048", "\"enc_dim\": 1024"), "edit");
        CHECK(parse(&mc, &err) == QTTS_ERR_CONFIG && strstr(err.msg, "speaker_encoder_config.enc_dim: 1024 differs"), "%s", err.msg);
        mf_config_json(cfg, sizeof cfg, true, "base");
        CHECK(edit("\"speaker_encoder_config\"", "\"speaker_encoder_configX\""), "edit");
        CHECK(parse(&mc, &err) == QTTS_ERR_CONFIG && strstr(err.msg, "config.json: speaker_encoder_config: missing"), "%s", err.msg);
    }
    /* malformed JSON and a non-object document */
    {
        qtts_model_config mc;
        qtts_err err = {0};
        mf_config_json(cfg, sizeof cfg, true, "custom_voice");
        cfg[strlen(cfg) / 2] = 0;
        CHECK(parse(&mc, &err) == QTTS_ERR_FORMAT && strstr(err.msg, "config.json: not valid JSON"), "truncated JSON: %s", err.msg);
        strcpy(cfg, "[1]");
        CHECK(parse(&mc, &err) == QTTS_ERR_FORMAT && strstr(err.msg, "config.json: top level is a array"), "array: %s", err.msg);
        CHECK(qtts_model_config_parse("", 0, "config.json", &mc, &err) == QTTS_ERR_FORMAT, "empty: %s", err.msg);
    }
}

static void test_codec(void) {
    qtts_codec_config cc;
    qtts_err err = {0};
    qtts_status s = qtts_codec_config_parse(mf_codec_config_json, strlen(mf_codec_config_json), "speech_tokenizer/config.json", &cc, &err);
    CHECK(s == QTTS_OK, "codec: %s", err.msg);
    CHECK(cc.codebook_size == 2048 && cc.codebook_dim == 512 && cc.latent_dim == 1024 && cc.hidden_size == 512 &&
              cc.intermediate_size == 1024 && cc.num_layers == 8 && cc.num_heads == 16 && cc.num_kv_heads == 16 && cc.head_dim == 64,
          "codec dims");
    CHECK(cc.sliding_window == 72 && cc.num_quantizers == 16 && cc.num_semantic_quantizers == 1 && cc.n_upsample_rates == 4 &&
              cc.upsample_rates[0] == 8 && cc.upsample_rates[3] == 3 && cc.n_upsampling_ratios == 2 && cc.decoder_dim == 1536 &&
              cc.output_sample_rate == 24000 && cc.decode_upsample_rate == 1920 && cc.encoder_valid_num_quantizers == 16,
          "codec values");
    CHECK(cc.rms_norm_eps == 1e-5f && cc.rope_theta == 10000.0f && cc.layer_scale_initial_scale == 0.01f, "codec floats");
    static const struct {
        const char *from, *to, *msg;
    } bad[] = {
        {"\"head_dim\": 64,", "", "speech_tokenizer/config.json: decoder_config.head_dim: missing"},
        {"\"upsample_rates\": [8, 5, 4, 3]", "\"upsample_rates\": [8, 5, 4, 4]", "decode_upsample_rate: 1920 differs"},
        {"\"upsample_rates\": [8, 5, 4, 3]", "\"upsample_rates\": [8, \"5\"]", "decoder_config.upsample_rates[1]: expected a positive integer"},
        {"\"upsample_rates\": [8, 5, 4, 3]", "\"upsample_rates\": 8", "decoder_config.upsample_rates: expected a list of integers, got 8"},
        {"\"upsample_rates\": [8, 5, 4, 3]", "\"upsample_rates\": []", "decoder_config.upsample_rates: empty list"},
        {"\"decoder_config\": {", "\"decoder_configX\": {", "speech_tokenizer/config.json: decoder_config: missing"},
        {"\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": -1", "decoder_config.rms_norm_eps: -1 is out of range"},
        {"\"rope_theta\": 10000", "\"rope_theta\": true", "decoder_config.rope_theta: expected a number, got boolean"},
        {"\"output_sample_rate\": 24000,", "", "speech_tokenizer/config.json: output_sample_rate: missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(cfg, mf_codec_config_json);
        CHECK(edit(bad[i].from, bad[i].to), "fixture lacks %s", bad[i].from);
        s = qtts_codec_config_parse(cfg, strlen(cfg), "speech_tokenizer/config.json", &cc, &err);
        CHECK(s != QTTS_OK && strstr(err.msg, bad[i].msg), "codec edit %zu: got '%s', want '%s'", i, err.msg, bad[i].msg);
    }
}

static void test_files(void) {
    char dir[512], p[1024];
    stw_tmpdir(dir, sizeof dir, "cfg");
    qtts_gen_config g;
    qtts_model_config mc;
    qtts_codec_config cc;
    qtts_err err = {0};
    /* missing generation_config.json -> defaults */
    CHECK(qtts_gen_config_load(dir, &g, &err) == QTTS_OK && g.do_sample && g.temperature == 0.9f && g.top_k == 50 && g.top_p == 1.0f &&
              g.repetition_penalty == 1.05f && g.sub_do_sample && g.sub_temperature == 0.9f && g.sub_top_k == 50 &&
              g.max_new_tokens == 8192,
          "gen defaults: %s", err.msg);
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    CHECK(stw_write_text(p, "{\"do_sample\": false, \"temperature\": 0.7, \"top_k\": 20, \"subtalker_top_k\": 10,"
                            " \"max_new_tokens\": 2048, \"transformers_version\": \"4.57.3\"}") == 0,
          "write");
    CHECK(qtts_gen_config_load(dir, &g, &err) == QTTS_OK && !g.do_sample && g.temperature == 0.7f && g.top_k == 20 && g.sub_top_k == 10 &&
              g.max_new_tokens == 2048 && g.top_p == 1.0f,
          "gen file: %s", err.msg);
    CHECK(stw_write_text(p, "{\"do_sample\": true, ") == 0, "write");
    CHECK(qtts_gen_config_load(dir, &g, &err) == QTTS_ERR_FORMAT && strstr(err.msg, "generation_config.json: not valid JSON"), "%s",
          err.msg);
    CHECK(stw_write_text(p, "{\"top_k\": \"50\"}") == 0, "write");
    CHECK(qtts_gen_config_load(dir, &g, &err) == QTTS_ERR_CONFIG && strstr(err.msg, "generation_config.json: top_k: expected an integer, got string"),
          "%s", err.msg);
    CHECK(stw_write_text(p, "{\"do_sample\": 1}") == 0, "write");
    CHECK(qtts_gen_config_load(dir, &g, &err) == QTTS_ERR_CONFIG && strstr(err.msg, "do_sample: expected a boolean, got 1"), "%s", err.msg);
    CHECK(stw_write_text(p, "{\"temperature\": 0}") == 0, "write");
    CHECK(qtts_gen_config_load(dir, &g, &err) == QTTS_ERR_CONFIG && strstr(err.msg, "temperature: must be > 0"), "%s", err.msg);

    /* missing config.json names the path; a written one loads */
    CHECK(qtts_model_config_load(dir, &mc, &err) == QTTS_ERR_MISSING && strstr(err.msg, "config.json: missing"), "%s", err.msg);
    mf_config_json(cfg, sizeof cfg, false, "custom_voice");
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(stw_write_text(p, cfg) == 0, "write");
    CHECK(qtts_model_config_load(dir, &mc, &err) == QTTS_OK && mc.talker.hidden_size == 1024, "load: %s", err.msg);
    CHECK(stw_write_text(p, "{\"tts_model_type\": \"base\"") == 0, "write");
    CHECK(qtts_model_config_load(dir, &mc, &err) == QTTS_ERR_FORMAT && strstr(err.msg, p) && strstr(err.msg, "not valid JSON"), "%s",
          err.msg);
    snprintf(p, sizeof p, "%s/speech_tokenizer", dir);
    CHECK(mkdir(p, 0755) == 0, "mkdir");
    CHECK(qtts_codec_config_load(p, &cc, &err) == QTTS_ERR_MISSING && strstr(err.msg, "speech_tokenizer/config.json: missing"), "%s",
          err.msg);
    stw_rmrf(dir);
}

int main(void) {
    test_released();
    test_bad_model();
    test_codec();
    test_files();
    return tu_finish("config");
}
