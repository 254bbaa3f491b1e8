/* Test fixtures for a released model folder: config.json text with the real
 * values (spec §2) and the full tensor lists of the 0.6B / 1.7B main model and
 * of the speech tokenizer decoder (spec §1.2, §1.3), for header-only checkpoints. */
#ifndef QTTS_TESTS_MODELFIX_H
#define QTTS_TESTS_MODELFIX_H

#include <stdbool.h>
#include <stdio.h>

#include "stwrite.h"

/* config.json as released; type is "custom_voice", "voice_design" or "base". */
static inline void mf_config_json(char *buf, size_t n, bool big, const char *type) {
    int H = big ? 2048 : 1024, I = big ? 6144 : 3072;
    bool cv = !strcmp(type, "custom_voice"), base = !strcmp(type, "base");
    char se[128] = "";
    if (base) snprintf(se, sizeof se, "\"speaker_encoder_config\": {\"enc_dim\": %d, \"sample_rate\": 24000},", H);
    snprintf(buf, n,
             "{\"architectures\": [\"Qwen3TTSForConditionalGeneration\"], \"assistant_token_id\": 77091,"
             " \"im_end_token_id\": 151645, \"im_start_token_id\": 151644, \"model_type\": \"qwen3_tts\",%s"
             " \"talker_config\": {"
             "  \"attention_bias\": false, \"attention_dropout\": 0,"
             "  \"code_predictor_config\": {\"_name_or_path\": \"\", \"attention_bias\": false, \"do_sample\": false,"
             "   \"head_dim\": 128, \"hidden_act\": \"silu\", \"hidden_size\": 1024, \"intermediate_size\": 3072,"
             "   \"layer_types\": [\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\"],"
             "   \"max_length\": 20, \"max_position_embeddings\": 65536, \"model_type\": \"qwen3_tts_talker_code_predictor\","
             "   \"num_attention_heads\": 16, \"num_code_groups\": 16, \"num_hidden_layers\": 5, \"num_key_value_heads\": 8,"
             "   \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": 1000000, \"sliding_window\": null,"
             "   \"temperature\": 1.0, \"top_k\": 50, \"top_p\": 1.0, \"use_sliding_window\": false, \"vocab_size\": 2048},"
             "  \"codec_bos_id\": 2149, \"codec_eos_token_id\": 2150, \"codec_think_id\": 2154,"
             "  \"codec_language_id\": {\"chinese\": 2055, \"english\": 2050, \"german\": 2053, \"italian\": 2070,"
             "   \"portuguese\": 2071, \"spanish\": 2054, \"japanese\": 2058, \"korean\": 2064, \"french\": 2061,"
             "   \"russian\": 2069, \"beijing_dialect\": 2074, \"sichuan_dialect\": 2062},"
             "  \"codec_nothink_id\": 2155, \"codec_pad_id\": 2148, \"codec_think_bos_id\": 2156, \"codec_think_eos_id\": 2157,"
             "  \"head_dim\": 128, \"hidden_act\": \"silu\", \"hidden_size\": %d, \"initializer_range\": 0.02,"
             "  \"intermediate_size\": %d, \"max_position_embeddings\": 32768, \"model_type\": \"qwen3_tts_talker\","
             "  \"num_attention_heads\": 16, \"num_code_groups\": 16, \"num_hidden_layers\": 28, \"num_key_value_heads\": 8,"
             "  \"position_id_per_seconds\": 13, \"rms_norm_eps\": 1e-06,"
             "  \"rope_scaling\": {\"interleaved\": true, \"mrope_section\": [24, 20, 20], \"rope_type\": \"default\", \"type\": \"default\"},"
             "  \"rope_theta\": 1000000, \"sliding_window\": null,"
             "  \"spk_id\": %s,"
             "  \"spk_is_dialect\": %s,"
             "  \"text_hidden_size\": 2048, \"text_vocab_size\": 151936, \"use_cache\": true, \"use_sliding_window\": false,"
             "  \"vocab_size\": 3072},"
             " \"tokenizer_type\": \"qwen3_tts_tokenizer_12hz\", \"transformers_version\": \"4.57.3\","
             " \"tts_bos_token_id\": 151672, \"tts_eos_token_id\": 151673, \"tts_model_size\": \"%s\","
             " \"tts_model_type\": \"%s\", \"tts_pad_token_id\": 151671}",
             se, H, I,
             cv ? "{\"serena\": 3066, \"vivian\": 3065, \"uncle_fu\": 3010, \"ryan\": 3061, \"aiden\": 2861,"
                  " \"ono_anna\": 2873, \"sohee\": 2864, \"eric\": 2875, \"dylan\": 2878}"
                : "{}",
             cv ? "{\"serena\": false, \"vivian\": false, \"uncle_fu\": false, \"ryan\": false, \"aiden\": false,"
                  " \"ono_anna\": false, \"sohee\": false, \"eric\": \"sichuan_dialect\", \"dylan\": \"beijing_dialect\"}"
                : "{}",
             big ? "1b7" : "0b6", type);
}

static const char mf_codec_config_json[] =
    "{\"architectures\": [\"Qwen3TTSTokenizerV2Model\"], \"model_type\": \"qwen3_tts_tokenizer_12hz\","
    " \"encoder_valid_num_quantizers\": 16, \"input_sample_rate\": 24000, \"output_sample_rate\": 24000,"
    " \"decode_upsample_rate\": 1920, \"encode_downsample_rate\": 1920,"
    " \"decoder_config\": {\"attention_bias\": false, \"attention_dropout\": 0.0, \"latent_dim\": 1024,"
    "  \"codebook_dim\": 512, \"codebook_size\": 2048, \"decoder_dim\": 1536, \"hidden_act\": \"silu\","
    "  \"hidden_size\": 512, \"intermediate_size\": 1024, \"layer_scale_initial_scale\": 0.01,"
    "  \"max_position_embeddings\": 8000, \"head_dim\": 64, \"num_attention_heads\": 16, \"num_hidden_layers\": 8,"
    "  \"num_key_value_heads\": 16, \"num_quantizers\": 16, \"num_semantic_quantizers\": 1, \"rms_norm_eps\": 1e-05,"
    "  \"rope_theta\": 10000, \"semantic_codebook_size\": 4096, \"sliding_window\": 72,"
    "  \"upsample_rates\": [8, 5, 4, 3], \"upsampling_ratios\": [2, 2], \"vector_quantization_hidden_dimension\": 512},"
    " \"encoder_config\": {\"hidden_size\": 512}}";

/* One Qwen3 decoder layer under prefix ("talker.model.layers.3."). */
static inline void mf_layer(stw_list *l, const char *pre, int64_t H, int64_t I) {
    char n[512];
#define MF_T(suffix, nd, a, b) (snprintf(n, sizeof n, "%s%s", pre, suffix), stw_add(l, "BF16", n, nd, a, b, 0))
    MF_T("input_layernorm.weight", 1, H, 0);
    MF_T("self_attn.q_proj.weight", 2, 2048, H);
    MF_T("self_attn.k_proj.weight", 2, 1024, H);
    MF_T("self_attn.v_proj.weight", 2, 1024, H);
    MF_T("self_attn.o_proj.weight", 2, H, 2048);
    MF_T("self_attn.q_norm.weight", 1, 128, 0);
    MF_T("self_attn.k_norm.weight", 1, 128, 0);
    MF_T("post_attention_layernorm.weight", 1, H, 0);
    MF_T("mlp.gate_proj.weight", 2, I, H);
    MF_T("mlp.up_proj.weight", 2, I, H);
    MF_T("mlp.down_proj.weight", 2, H, I);
#undef MF_T
}

/* Every tensor of model.safetensors (spec §1.2), BF16. */
static inline void mf_main_tensors(stw_list *l, bool big, bool base) {
    int64_t H = big ? 2048 : 1024, I = big ? 6144 : 3072;
    char n[192];
    stw_add(l, "BF16", "talker.model.text_embedding.weight", 2, 151936, 2048, 0);
    stw_add(l, "BF16", "talker.text_projection.linear_fc1.weight", 2, 2048, 2048, 0);
    stw_add(l, "BF16", "talker.text_projection.linear_fc1.bias", 1, 2048, 0, 0);
    stw_add(l, "BF16", "talker.text_projection.linear_fc2.weight", 2, H, 2048, 0);
    stw_add(l, "BF16", "talker.text_projection.linear_fc2.bias", 1, H, 0, 0);
    stw_add(l, "BF16", "talker.model.codec_embedding.weight", 2, 3072, H, 0);
    for (int i = 0; i < 28; i++) {
        snprintf(n, sizeof n, "talker.model.layers.%d.", i);
        mf_layer(l, n, H, I);
    }
    stw_add(l, "BF16", "talker.model.norm.weight", 1, H, 0, 0);
    stw_add(l, "BF16", "talker.codec_head.weight", 2, 3072, H, 0);
    for (int i = 0; i < 5; i++) {
        snprintf(n, sizeof n, "talker.code_predictor.model.layers.%d.", i);
        mf_layer(l, n, 1024, 3072);
    }
    stw_add(l, "BF16", "talker.code_predictor.model.norm.weight", 1, 1024, 0, 0);
    for (int g = 0; g < 15; g++) {
        snprintf(n, sizeof n, "talker.code_predictor.model.codec_embedding.%d.weight", g);
        stw_add(l, "BF16", n, 2, 2048, H, 0);
        snprintf(n, sizeof n, "talker.code_predictor.lm_head.%d.weight", g);
        stw_add(l, "BF16", n, 2, 2048, 1024, 0);
    }
    if (big) {
        stw_add(l, "BF16", "talker.code_predictor.small_to_mtp_projection.weight", 2, 1024, 2048, 0);
        stw_add(l, "BF16", "talker.code_predictor.small_to_mtp_projection.bias", 1, 1024, 0, 0);
    }
    if (!base) return;
#define MF_C(name, o, i, k)                                                  \
    do {                                                                     \
        stw_add(l, "BF16", "speaker_encoder." name ".weight", 3, o, i, k);   \
        stw_add(l, "BF16", "speaker_encoder." name ".bias", 1, o, 0, 0);     \
    } while (0)
    MF_C("blocks.0.conv", 512, 128, 5);
    for (int b = 1; b <= 3; b++) {
        char p[96];
        snprintf(p, sizeof p, "speaker_encoder.blocks.%d.", b);
        const struct {
            const char *s;
            int64_t o, i, k;
        } parts[] = {{"tdnn1.conv", 512, 512, 1}, {"tdnn2.conv", 512, 512, 1}, {"se_block.conv1", 128, 512, 1}, {"se_block.conv2", 512, 128, 1}};
        for (int j = 0; j < 4; j++) {
            snprintf(n, sizeof n, "%s%s.weight", p, parts[j].s);
            stw_add(l, "BF16", n, 3, parts[j].o, parts[j].i, parts[j].k);
            snprintf(n, sizeof n, "%s%s.bias", p, parts[j].s);
            stw_add(l, "BF16", n, 1, parts[j].o, 0, 0);
        }
        for (int r = 0; r < 7; r++) {
            snprintf(n, sizeof n, "%sres2net_block.blocks.%d.conv.weight", p, r);
            stw_add(l, "BF16", n, 3, 64, 64, 3);
            snprintf(n, sizeof n, "%sres2net_block.blocks.%d.conv.bias", p, r);
            stw_add(l, "BF16", n, 1, 64, 0, 0);
        }
    }
    MF_C("mfa.conv", 1536, 1536, 1);
    MF_C("asp.tdnn.conv", 128, 4608, 1);
    MF_C("asp.conv", 1536, 128, 1);
    MF_C("fc", H, 3072, 1);
#undef MF_C
}

/* Speech tokenizer decoder (spec §1.3), F32. */
static inline void mf_decoder_tensors(stw_list *l) {
    char n[192];
    const char *rv[2] = {"rvq_first", "rvq_rest"};
    for (int h = 0; h < 2; h++) {
        for (int q = 0; q < (h ? 15 : 1); q++) {
            snprintf(n, sizeof n, "decoder.quantizer.%s.vq.layers.%d._codebook.embedding_sum", rv[h], q);
            stw_add(l, "F32", n, 2, 2048, 256, 0);
            snprintf(n, sizeof n, "decoder.quantizer.%s.vq.layers.%d._codebook.cluster_usage", rv[h], q);
            stw_add(l, "F32", n, 1, 2048, 0, 0);
        }
        snprintf(n, sizeof n, "decoder.quantizer.%s.output_proj.weight", rv[h]);
        stw_add(l, "F32", n, 3, 512, 256, 1);
        snprintf(n, sizeof n, "decoder.quantizer.%s.input_proj.weight", rv[h]);
        stw_add(l, "F32", n, 3, 256, 512, 1);
    }
    stw_add(l, "F32", "decoder.pre_conv.conv.weight", 3, 1024, 512, 3);
    stw_add(l, "F32", "decoder.pre_conv.conv.bias", 1, 1024, 0, 0);
    stw_add(l, "F32", "decoder.pre_transformer.input_proj.weight", 2, 512, 1024, 0);
    stw_add(l, "F32", "decoder.pre_transformer.input_proj.bias", 1, 512, 0, 0);
    for (int i = 0; i < 8; i++) {
        const struct {
            const char *s;
            int nd;
            int64_t a, b;
        } p[] = {{"input_layernorm.weight", 1, 512, 0},     {"self_attn.q_proj.weight", 2, 1024, 512},
                 {"self_attn.k_proj.weight", 2, 1024, 512}, {"self_attn.v_proj.weight", 2, 1024, 512},
                 {"self_attn.o_proj.weight", 2, 512, 1024}, {"self_attn_layer_scale.scale", 1, 512, 0},
                 {"post_attention_layernorm.weight", 1, 512, 0}, {"mlp.gate_proj.weight", 2, 1024, 512},
                 {"mlp.up_proj.weight", 2, 1024, 512},      {"mlp.down_proj.weight", 2, 512, 1024},
                 {"mlp_layer_scale.scale", 1, 512, 0}};
        for (size_t j = 0; j < sizeof p / sizeof p[0]; j++) {
            snprintf(n, sizeof n, "decoder.pre_transformer.layers.%d.%s", i, p[j].s);
            stw_add(l, "F32", n, p[j].nd, p[j].a, p[j].b, 0);
        }
    }
    stw_add(l, "F32", "decoder.pre_transformer.norm.weight", 1, 512, 0, 0);
    stw_add(l, "F32", "decoder.pre_transformer.output_proj.weight", 2, 1024, 512, 0);
    stw_add(l, "F32", "decoder.pre_transformer.output_proj.bias", 1, 1024, 0, 0);
    for (int u = 0; u < 2; u++) {
#define MF_U(s, nd, a, b, c) (snprintf(n, sizeof n, "decoder.upsample.%d.%s", u, s), stw_add(l, "F32", n, nd, a, b, c))
        MF_U("0.conv.weight", 3, 1024, 1024, 2);
        MF_U("0.conv.bias", 1, 1024, 0, 0);
        MF_U("1.dwconv.conv.weight", 3, 1024, 1, 7);
        MF_U("1.dwconv.conv.bias", 1, 1024, 0, 0);
        MF_U("1.norm.weight", 1, 1024, 0, 0);
        MF_U("1.norm.bias", 1, 1024, 0, 0);
        MF_U("1.pwconv1.weight", 2, 4096, 1024, 0);
        MF_U("1.pwconv1.bias", 1, 4096, 0, 0);
        MF_U("1.pwconv2.weight", 2, 1024, 4096, 0);
        MF_U("1.pwconv2.bias", 1, 1024, 0, 0);
        MF_U("1.gamma", 1, 1024, 0, 0);
#undef MF_U
    }
    stw_add(l, "F32", "decoder.decoder.0.conv.weight", 3, 1536, 1024, 7);
    stw_add(l, "F32", "decoder.decoder.0.conv.bias", 1, 1536, 0, 0);
    const int64_t blk[4][3] = {{1536, 768, 8}, {768, 384, 5}, {384, 192, 4}, {192, 96, 3}};
    for (int b = 0; b < 4; b++) {
        int64_t ci = blk[b][0], co = blk[b][1], r = blk[b][2];
#define MF_B(fmt, nd, a, bb, c) (snprintf(n, sizeof n, "decoder.decoder.%d.block." fmt, b + 1), stw_add(l, "F32", n, nd, a, bb, c))
        MF_B("0.alpha", 1, ci, 0, 0);
        MF_B("0.beta", 1, ci, 0, 0);
        MF_B("1.conv.weight", 3, ci, co, 2 * r);
        MF_B("1.conv.bias", 1, co, 0, 0);
#undef MF_B
        for (int k = 2; k <= 4; k++) {
            const char *sub[] = {"act1.alpha", "act1.beta", "act2.alpha", "act2.beta", "conv1.conv.bias", "conv2.conv.bias"};
            for (int j = 0; j < 6; j++) {
                snprintf(n, sizeof n, "decoder.decoder.%d.block.%d.%s", b + 1, k, sub[j]);
                stw_add(l, "F32", n, 1, co, 0, 0);
            }
            snprintf(n, sizeof n, "decoder.decoder.%d.block.%d.conv1.conv.weight", b + 1, k);
            stw_add(l, "F32", n, 3, co, co, 7);
            snprintf(n, sizeof n, "decoder.decoder.%d.block.%d.conv2.conv.weight", b + 1, k);
            stw_add(l, "F32", n, 3, co, co, 1);
        }
    }
    stw_add(l, "F32", "decoder.decoder.5.alpha", 1, 96, 0, 0);
    stw_add(l, "F32", "decoder.decoder.5.beta", 1, 96, 0, 0);
    stw_add(l, "F32", "decoder.decoder.6.conv.weight", 3, 1, 96, 7);
    stw_add(l, "F32", "decoder.decoder.6.conv.bias", 1, 1, 0, 0);
}

/* Write a header-only (sparse) checkpoint for list l at path. */
static inline int mf_write_sparse(const char *path, const stw_list *l) {
    size_t data;
    char *h = stw_header(l, &data);
    int rc = stw_write(path, h, NULL, data);
    free(h);
    return rc;
}

#endif
