/* Config readers: config.json (talker, code predictor, special ids, language and
 * speaker tables, speaker encoder), speech_tokenizer/config.json (decoder_config)
 * and generation_config.json. JSON text -> validated plain structs; no defaults
 * from the Python classes, because those are not the released values.
 *
 * Strictness: every key the engine reads to size or run a component is
 * required, even where the official class has a default (the released files
 * always set them, and the class defaults — 20 layers, eos 4198 — would load a
 * wrong model silently). Optional, with the stated fallback: assistant_token_id
 * (-1; the prompt builder tokenizes "assistant"), rope_scaling (plain RoPE),
 * code_predictor_config.max_position_embeddings (65536; it sees <= 17 positions),
 * code_predictor_config.num_code_groups (must match the talker's when present),
 * speaker_encoder_config.sample_rate (24000), spk_id / spk_is_dialect (Base and
 * VoiceDesign: empty or absent), decoder_config.num_semantic_quantizers (1),
 * decoder_config.max_position_embeddings (8000), encoder_valid_num_quantizers
 * (16), and every generation_config.json key (the reference defaults). Unknown
 * keys are ignored. Errors read "<file>: <key.path>: <problem>". */
#include "config.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

const char *qtts_variant_name(qtts_variant v) {
    switch (v) {
    case QTTS_VARIANT_BASE: return "Base";
    case QTTS_VARIANT_CUSTOM_VOICE: return "CustomVoice";
    case QTTS_VARIANT_VOICE_DESIGN: return "VoiceDesign";
    }
    return "?";
}

/* Where we are: the file name for messages and the error record. */
typedef struct {
    const char *file;
    qtts_err *err;
} jctx;

static const char *json_type_name(const cJSON *j) {
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsBool(j)) return "boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsObject(j)) return "object";
    return "invalid";
}

static qtts_status bad_type(const jctx *c, const char *path, const char *key, const char *want, const cJSON *got) {
    if (cJSON_IsNumber(got))
        return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s%s%s: expected %s, got %g", c->file, path, *path ? "." : "", key, want,
                         got->valuedouble);
    return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s%s%s: expected %s, got %s", c->file, path, *path ? "." : "", key, want,
                     json_type_name(got));
}

static qtts_status missing(const jctx *c, const char *path, const char *key) {
    return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s%s%s: missing", c->file, path, *path ? "." : "", key);
}

/* An integer-valued JSON number that fits an int (1.0 counts, 1.5 does not). */
static bool as_int(const cJSON *j, int *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= -2147483648.0 && v <= 2147483647.0) || floor(v) != v) return false;
    *out = (int)v;
    return true;
}

/* Read obj[key] as an int; absent -> error when required, else *out = def. */
static qtts_status get_int(const jctx *c, const cJSON *obj, const char *path, const char *key, bool required, int def, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || (!required && cJSON_IsNull(j))) {
        if (required) return missing(c, path, key);
        *out = def;
        return QTTS_OK;
    }
    if (!as_int(j, out)) return bad_type(c, path, key, "an integer", j);
    return QTTS_OK;
}

/* Like get_int, and the value must be >= lo. */
static qtts_status get_int_min(const jctx *c, const cJSON *obj, const char *path, const char *key, int lo, int *out) {
    qtts_status st = get_int(c, obj, path, key, true, 0, out);
    if (st != QTTS_OK) return st;
    if (*out < lo)
        return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s%s%s: %d is out of range (must be >= %d)", c->file, path, *path ? "." : "",
                         key, *out, lo);
    return QTTS_OK;
}

static qtts_status get_float(const jctx *c, const cJSON *obj, const char *path, const char *key, bool required, float def,
                             float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || (!required && cJSON_IsNull(j))) {
        if (required) return missing(c, path, key);
        *out = def;
        return QTTS_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return bad_type(c, path, key, "a number", j);
    *out = (float)j->valuedouble;
    return QTTS_OK;
}

/* A float that must be > 0 (eps, theta, temperature). */
static qtts_status get_pos_float(const jctx *c, const cJSON *obj, const char *path, const char *key, float *out) {
    qtts_status st = get_float(c, obj, path, key, true, 0, out);
    if (st != QTTS_OK) return st;
    if (!(*out > 0))
        return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s%s%s: %g is out of range (must be > 0)", c->file, path, *path ? "." : "", key,
                         (double)*out);
    return QTTS_OK;
}

static qtts_status get_bool(const jctx *c, const cJSON *obj, const char *path, const char *key, bool def, bool *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return QTTS_OK;
    }
    if (!cJSON_IsBool(j)) return bad_type(c, path, key, "a boolean", j);
    *out = cJSON_IsTrue(j);
    return QTTS_OK;
}

/* obj[key] must be an object; absent is an error only when required (then *out = NULL). */
static qtts_status get_object(const jctx *c, const cJSON *obj, const char *path, const char *key, bool required,
                              const cJSON **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!j || (!required && cJSON_IsNull(j))) return required ? missing(c, path, key) : QTTS_OK;
    if (!cJSON_IsObject(j)) return bad_type(c, path, key, "an object", j);
    *out = j;
    return QTTS_OK;
}

/* A list of 1..cap positive integers. */
static qtts_status get_int_list(const jctx *c, const cJSON *obj, const char *path, const char *key, int cap, int *vals, int *n) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) return missing(c, path, key);
    if (!cJSON_IsArray(j)) return bad_type(c, path, key, "a list of integers", j);
    int k = 0;
    for (const cJSON *e = j->child; e; e = e->next, k++) {
        if (k >= cap)
            return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s.%s: more than %d entries", c->file, path, key, cap);
        if (!as_int(e, &vals[k]) || vals[k] < 1)
            return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s.%s[%d]: expected a positive integer", c->file, path, key, k);
    }
    if (k == 0) return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s.%s: empty list", c->file, path, key);
    *n = k;
    return QTTS_OK;
}

/* Keys shared by the talker and the code predictor (a Qwen3 decoder stack). */
static qtts_status parse_lm(const jctx *c, const cJSON *o, const char *path, bool mpe_required, qtts_lm_config *lm) {
    qtts_status st = QTTS_OK;
    QTTS_TRY(get_int_min(c, o, path, "hidden_size", 1, &lm->hidden_size));
    QTTS_TRY(get_int_min(c, o, path, "intermediate_size", 1, &lm->intermediate_size));
    QTTS_TRY(get_int_min(c, o, path, "num_hidden_layers", 1, &lm->num_layers));
    QTTS_TRY(get_int_min(c, o, path, "num_attention_heads", 1, &lm->num_heads));
    QTTS_TRY(get_int_min(c, o, path, "num_key_value_heads", 1, &lm->num_kv_heads));
    /* The talker class has no head_dim default and the attention code falls back
     * to hidden/heads, which is wrong for 0.6B (1024/16 = 64, weights use 128). */
    QTTS_TRY(get_int_min(c, o, path, "head_dim", 1, &lm->head_dim));
    QTTS_TRY(get_pos_float(c, o, path, "rms_norm_eps", &lm->rms_norm_eps));
    QTTS_TRY(get_pos_float(c, o, path, "rope_theta", &lm->rope_theta));
    QTTS_TRY(get_int_min(c, o, path, "vocab_size", 1, &lm->vocab_size));
    if (mpe_required) QTTS_TRY(get_int_min(c, o, path, "max_position_embeddings", 1, &lm->max_position_embeddings));
    else {
        QTTS_TRY(get_int(c, o, path, "max_position_embeddings", false, 65536, &lm->max_position_embeddings));
        QTTS_CHECK(lm->max_position_embeddings >= 1, c->err, QTTS_ERR_CONFIG, "%s: %s.max_position_embeddings: must be >= 1", c->file,
                   path);
    }
    QTTS_CHECK(lm->num_heads % lm->num_kv_heads == 0, c->err, QTTS_ERR_CONFIG,
               "%s: %s.num_attention_heads: %d is not a multiple of num_key_value_heads %d", c->file, path, lm->num_heads,
               lm->num_kv_heads);
    QTTS_CHECK(lm->head_dim % 2 == 0, c->err, QTTS_ERR_CONFIG, "%s: %s.head_dim: %d is odd (RoPE rotates pairs)", c->file, path,
               lm->head_dim);

    memset(lm->mrope_section, 0, sizeof lm->mrope_section);
    lm->rope_interleaved = false;
    const cJSON *rs;
    QTTS_TRY(get_object(c, o, path, "rope_scaling", false, &rs));
    if (rs) {
        char rpath[128];
        snprintf(rpath, sizeof rpath, "%s.rope_scaling", path);
        QTTS_TRY(get_bool(c, rs, rpath, "interleaved", false, &lm->rope_interleaved));
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(rs, "mrope_section");
        if (ms && !cJSON_IsNull(ms)) {
            int n = 0;
            QTTS_TRY(get_int_list(c, rs, rpath, "mrope_section", 3, lm->mrope_section, &n));
            int sum = 0;
            for (int i = 0; i < n; i++) sum += lm->mrope_section[i];
            QTTS_CHECK(n == 3 && sum * 2 == lm->head_dim, c->err, QTTS_ERR_CONFIG,
                       "%s: %s.mrope_section: expected 3 sections summing to head_dim/2 = %d", c->file, rpath, lm->head_dim / 2);
        }
    }
cleanup:
    return st;
}

/* A codec id must index the talker's codec embedding. */
static qtts_status check_codec_id(const jctx *c, const char *path, int id, int vocab) {
    if (id < 0 || id >= vocab)
        return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: id %d is outside the codec vocabulary [0, %d)", c->file, path, id, vocab);
    return QTTS_OK;
}

static qtts_status copy_name(const jctx *c, const char *path, const char *name, char *dst) {
    size_t l = strlen(name);
    if (l == 0 || l >= QTTS_NAME_LEN)
        return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: name \"%.40s\" must have 1..%d characters", c->file, path, name,
                         QTTS_NAME_LEN - 1);
    memcpy(dst, name, l + 1);
    return QTTS_OK;
}

/* codec_language_id / spk_id: {"name": id} or {"name": [id]}. */
static qtts_status parse_named_ids(const jctx *c, const cJSON *obj, const char *path, int vocab, qtts_named_id *out, int *n) {
    int k = 0;
    *n = 0;
    for (const cJSON *e = obj->child; e; e = e->next) {
        if (k >= QTTS_MAX_NAMED)
            return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: more than %d entries", c->file, path, QTTS_MAX_NAMED);
        char epath[160];
        snprintf(epath, sizeof epath, "%s.%.64s", path, e->string);
        qtts_status st = copy_name(c, epath, e->string, out[k].name);
        if (st != QTTS_OK) return st;
        for (int i = 0; i < k; i++)
            if (!strcasecmp(out[i].name, e->string))
                return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: duplicate name (case-insensitive)", c->file, epath);
        const cJSON *v = e;
        if (cJSON_IsArray(e)) {
            if (cJSON_GetArraySize(e) != 1)
                return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: expected an integer or a one-element list, got a list of %d", c->file,
                                 epath, cJSON_GetArraySize(e));
            v = e->child;
        }
        if (!as_int(v, &out[k].id)) {
            if (cJSON_IsNumber(v))
                return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: expected an integer, got %g", c->file, epath, v->valuedouble);
            return qtts_fail(c->err, QTTS_ERR_CONFIG, "%s: %s: expected an integer, got %s", c->file, epath, json_type_name(v));
        }
        st = check_codec_id(c, epath, out[k].id, vocab);
        if (st != QTTS_OK) return st;
        out[k].dialect[0] = 0;
        k++;
    }
    *n = k;
    return QTTS_OK;
}

qtts_status qtts_model_config_parse(const char *json, size_t len, const char *name, qtts_model_config *cfg, qtts_err *err) {
    qtts_status st = QTTS_OK;
    jctx c = {name, err};
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    QTTS_CHECK(root, err, QTTS_ERR_FORMAT, "%s: not valid JSON", name);
    QTTS_CHECK(cJSON_IsObject(root), err, QTTS_ERR_FORMAT, "%s: top level is a %s, expected an object", name, json_type_name(root));

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "tts_model_type");
    QTTS_CHECK(mt, err, QTTS_ERR_CONFIG, "%s: tts_model_type: missing", name);
    if (!cJSON_IsString(mt)) QTTS_TRY(bad_type(&c, "", "tts_model_type", "a string", mt));
    if (!strcmp(mt->valuestring, "base")) cfg->variant = QTTS_VARIANT_BASE;
    else if (!strcmp(mt->valuestring, "custom_voice")) cfg->variant = QTTS_VARIANT_CUSTOM_VOICE;
    else if (!strcmp(mt->valuestring, "voice_design")) cfg->variant = QTTS_VARIANT_VOICE_DESIGN;
    else
        QTTS_CHECK(false, err, QTTS_ERR_CONFIG, "%s: tts_model_type: unknown value \"%.40s\" (expected base, custom_voice or voice_design)",
                   name, mt->valuestring);

    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(root, "tts_model_size");
    QTTS_CHECK(sz, err, QTTS_ERR_CONFIG, "%s: tts_model_size: missing", name);
    if (!cJSON_IsString(sz)) QTTS_TRY(bad_type(&c, "", "tts_model_size", "a string", sz));
    QTTS_CHECK(strlen(sz->valuestring) < sizeof cfg->size_tag, err, QTTS_ERR_CONFIG, "%s: tts_model_size: \"%.40s\" is too long",
               name, sz->valuestring);
    strcpy(cfg->size_tag, sz->valuestring);

    QTTS_TRY(get_int_min(&c, root, "", "im_start_token_id", 0, &cfg->im_start_id));
    QTTS_TRY(get_int_min(&c, root, "", "im_end_token_id", 0, &cfg->im_end_id));
    QTTS_TRY(get_int(&c, root, "", "assistant_token_id", false, -1, &cfg->assistant_id));
    QTTS_TRY(get_int_min(&c, root, "", "tts_pad_token_id", 0, &cfg->tts_pad_id));
    QTTS_TRY(get_int_min(&c, root, "", "tts_bos_token_id", 0, &cfg->tts_bos_id));
    QTTS_TRY(get_int_min(&c, root, "", "tts_eos_token_id", 0, &cfg->tts_eos_id));

    const cJSON *tk;
    QTTS_TRY(get_object(&c, root, "", "talker_config", true, &tk));
    const char *tp = "talker_config";
    QTTS_TRY(parse_lm(&c, tk, tp, true, &cfg->talker));
    QTTS_TRY(get_int_min(&c, tk, tp, "text_vocab_size", 1, &cfg->text_vocab_size));
    QTTS_TRY(get_int_min(&c, tk, tp, "text_hidden_size", 1, &cfg->text_hidden_size));
    QTTS_TRY(get_int_min(&c, tk, tp, "num_code_groups", 2, &cfg->num_code_groups));
    int tv = cfg->talker.vocab_size;
    static const struct {
        const char *key;
        size_t off;
    } codec_ids[] = {
        {"codec_pad_id", offsetof(qtts_model_config, codec_pad_id)},
        {"codec_bos_id", offsetof(qtts_model_config, codec_bos_id)},
        {"codec_eos_token_id", offsetof(qtts_model_config, codec_eos_id)},
        {"codec_think_id", offsetof(qtts_model_config, codec_think_id)},
        {"codec_nothink_id", offsetof(qtts_model_config, codec_nothink_id)},
        {"codec_think_bos_id", offsetof(qtts_model_config, codec_think_bos_id)},
        {"codec_think_eos_id", offsetof(qtts_model_config, codec_think_eos_id)},
    };
    for (size_t i = 0; i < sizeof codec_ids / sizeof codec_ids[0]; i++) {
        int *dst = (int *)((char *)cfg + codec_ids[i].off);
        char kp[96];
        QTTS_TRY(get_int(&c, tk, tp, codec_ids[i].key, true, 0, dst));
        snprintf(kp, sizeof kp, "%s.%s", tp, codec_ids[i].key);
        QTTS_TRY(check_codec_id(&c, kp, *dst, tv));
    }
    int text_ids[] = {cfg->im_start_id, cfg->im_end_id, cfg->tts_pad_id, cfg->tts_bos_id, cfg->tts_eos_id};
    static const char *const text_keys[] = {"im_start_token_id", "im_end_token_id", "tts_pad_token_id", "tts_bos_token_id",
                                            "tts_eos_token_id"};
    for (int i = 0; i < 5; i++)
        QTTS_CHECK(text_ids[i] < cfg->text_vocab_size, err, QTTS_ERR_CONFIG,
                   "%s: %s: id %d is outside the text vocabulary (talker_config.text_vocab_size %d)", name, text_keys[i], text_ids[i],
                   cfg->text_vocab_size);

    const cJSON *cp;
    QTTS_TRY(get_object(&c, tk, tp, "code_predictor_config", true, &cp));
    const char *cpp = "talker_config.code_predictor_config";
    QTTS_TRY(parse_lm(&c, cp, cpp, false, &cfg->predictor));
    int cp_groups;
    QTTS_TRY(get_int(&c, cp, cpp, "num_code_groups", false, cfg->num_code_groups, &cp_groups));
    QTTS_CHECK(cp_groups == cfg->num_code_groups, err, QTTS_ERR_CONFIG,
               "%s: %s.num_code_groups: %d differs from talker_config.num_code_groups %d", name, cpp, cp_groups, cfg->num_code_groups);

    const cJSON *lang;
    QTTS_TRY(get_object(&c, tk, tp, "codec_language_id", true, &lang));
    QTTS_TRY(parse_named_ids(&c, lang, "talker_config.codec_language_id", tv, cfg->languages, &cfg->n_languages));
    QTTS_CHECK(cfg->n_languages > 0, err, QTTS_ERR_CONFIG, "%s: talker_config.codec_language_id: empty", name);

    const cJSON *spk, *dia;
    QTTS_TRY(get_object(&c, tk, tp, "spk_id", false, &spk));
    if (spk) QTTS_TRY(parse_named_ids(&c, spk, "talker_config.spk_id", tv, cfg->speakers, &cfg->n_speakers));
    QTTS_CHECK(cfg->variant != QTTS_VARIANT_CUSTOM_VOICE || cfg->n_speakers > 0, err, QTTS_ERR_CONFIG,
               "%s: talker_config.spk_id: %s (a custom_voice model needs its speakers)", name, spk ? "empty" : "missing");
    QTTS_TRY(get_object(&c, tk, tp, "spk_is_dialect", false, &dia));
    for (const cJSON *e = dia ? dia->child : NULL; e; e = e->next) {
        if (cJSON_IsFalse(e) || cJSON_IsNull(e)) continue;
        QTTS_CHECK(cJSON_IsString(e), err, QTTS_ERR_CONFIG, "%s: talker_config.spk_is_dialect.%.64s: expected false or a string, got %s",
                   name, e->string, json_type_name(e));
        QTTS_CHECK(qtts_config_language_id(cfg, e->valuestring) >= 0, err, QTTS_ERR_CONFIG,
                   "%s: talker_config.spk_is_dialect.%.64s: dialect \"%.64s\" is not in codec_language_id", name, e->string,
                   e->valuestring);
        /* A dialect entry for a speaker without an id is harmless: nothing can select it. */
        qtts_named_id *s = (qtts_named_id *)qtts_config_speaker(cfg, e->string);
        if (s) QTTS_TRY(copy_name(&c, "talker_config.spk_is_dialect", e->valuestring, s->dialect));
    }

    if (cfg->variant == QTTS_VARIANT_BASE) {
        const cJSON *se;
        QTTS_TRY(get_object(&c, root, "", "speaker_encoder_config", true, &se));
        cfg->has_speaker_encoder = true;
        QTTS_TRY(get_int_min(&c, se, "speaker_encoder_config", "enc_dim", 1, &cfg->speaker_enc_dim));
        QTTS_TRY(get_int(&c, se, "speaker_encoder_config", "sample_rate", false, 24000, &cfg->speaker_sample_rate));
        QTTS_CHECK(cfg->speaker_sample_rate > 0, err, QTTS_ERR_CONFIG, "%s: speaker_encoder_config.sample_rate: must be > 0", name);
        /* the x-vector is fed to the talker as an input embedding */
        QTTS_CHECK(cfg->speaker_enc_dim == cfg->talker.hidden_size, err, QTTS_ERR_CONFIG,
                   "%s: speaker_encoder_config.enc_dim: %d differs from talker_config.hidden_size %d", name, cfg->speaker_enc_dim,
                   cfg->talker.hidden_size);
    }
cleanup:
    cJSON_Delete(root);
    return st;
}

qtts_status qtts_codec_config_parse(const char *json, size_t len, const char *name, qtts_codec_config *cfg, qtts_err *err) {
    qtts_status st = QTTS_OK;
    jctx c = {name, err};
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    QTTS_CHECK(root, err, QTTS_ERR_FORMAT, "%s: not valid JSON", name);
    QTTS_CHECK(cJSON_IsObject(root), err, QTTS_ERR_FORMAT, "%s: top level is a %s, expected an object", name, json_type_name(root));
    QTTS_TRY(get_int_min(&c, root, "", "output_sample_rate", 1, &cfg->output_sample_rate));
    QTTS_TRY(get_int_min(&c, root, "", "decode_upsample_rate", 1, &cfg->decode_upsample_rate));
    QTTS_TRY(get_int(&c, root, "", "encoder_valid_num_quantizers", false, 16, &cfg->encoder_valid_num_quantizers));

    const cJSON *d;
    const char *p = "decoder_config";
    QTTS_TRY(get_object(&c, root, "", p, true, &d));
    QTTS_TRY(get_int_min(&c, d, p, "codebook_size", 1, &cfg->codebook_size));
    QTTS_TRY(get_int_min(&c, d, p, "codebook_dim", 2, &cfg->codebook_dim));
    QTTS_TRY(get_int_min(&c, d, p, "latent_dim", 1, &cfg->latent_dim));
    QTTS_TRY(get_int_min(&c, d, p, "hidden_size", 1, &cfg->hidden_size));
    QTTS_TRY(get_int_min(&c, d, p, "intermediate_size", 1, &cfg->intermediate_size));
    QTTS_TRY(get_int_min(&c, d, p, "num_hidden_layers", 1, &cfg->num_layers));
    QTTS_TRY(get_int_min(&c, d, p, "num_attention_heads", 1, &cfg->num_heads));
    QTTS_TRY(get_int_min(&c, d, p, "num_key_value_heads", 1, &cfg->num_kv_heads));
    /* explicit in the released file; hidden/heads would give 32 instead of 64 */
    QTTS_TRY(get_int_min(&c, d, p, "head_dim", 2, &cfg->head_dim));
    QTTS_TRY(get_pos_float(&c, d, p, "rms_norm_eps", &cfg->rms_norm_eps));
    QTTS_TRY(get_pos_float(&c, d, p, "rope_theta", &cfg->rope_theta));
    QTTS_TRY(get_float(&c, d, p, "layer_scale_initial_scale", true, 0, &cfg->layer_scale_initial_scale));
    QTTS_TRY(get_int_min(&c, d, p, "sliding_window", 1, &cfg->sliding_window));
    QTTS_TRY(get_int_min(&c, d, p, "num_quantizers", 2, &cfg->num_quantizers));
    QTTS_TRY(get_int(&c, d, p, "num_semantic_quantizers", false, 1, &cfg->num_semantic_quantizers));
    QTTS_TRY(get_int(&c, d, p, "max_position_embeddings", false, 8000, &cfg->max_position_embeddings));
    QTTS_TRY(get_int_list(&c, d, p, "upsample_rates", 8, cfg->upsample_rates, &cfg->n_upsample_rates));
    QTTS_TRY(get_int_list(&c, d, p, "upsampling_ratios", 8, cfg->upsampling_ratios, &cfg->n_upsampling_ratios));
    QTTS_TRY(get_int_min(&c, d, p, "decoder_dim", 1, &cfg->decoder_dim));
    QTTS_CHECK(cfg->num_heads % cfg->num_kv_heads == 0, err, QTTS_ERR_CONFIG,
               "%s: decoder_config.num_attention_heads: %d is not a multiple of num_key_value_heads %d", name, cfg->num_heads,
               cfg->num_kv_heads);
    QTTS_CHECK(cfg->num_semantic_quantizers >= 1 && cfg->num_semantic_quantizers < cfg->num_quantizers, err, QTTS_ERR_CONFIG,
               "%s: decoder_config.num_semantic_quantizers: %d must be in [1, num_quantizers)", name, cfg->num_semantic_quantizers);
    QTTS_CHECK(cfg->decoder_dim >> cfg->n_upsample_rates >= 1, err, QTTS_ERR_CONFIG,
               "%s: decoder_config.decoder_dim: %d cannot be halved %d times", name, cfg->decoder_dim, cfg->n_upsample_rates);
    /* the decoder's total upsampling is what turns one 12.5 Hz frame into samples */
    long long up = 1;
    for (int i = 0; i < cfg->n_upsample_rates; i++) up *= cfg->upsample_rates[i];
    for (int i = 0; i < cfg->n_upsampling_ratios; i++) up *= cfg->upsampling_ratios[i];
    QTTS_CHECK(up == cfg->decode_upsample_rate, err, QTTS_ERR_CONFIG,
               "%s: decode_upsample_rate: %d differs from the product of decoder_config.upsample_rates and upsampling_ratios (%lld)", name,
               cfg->decode_upsample_rate, up);
cleanup:
    cJSON_Delete(root);
    return st;
}

/* Read dir/config.json and hand it to parse with the path as the message label. */
static qtts_status load_json(const char *dir, const char *file, char *path, size_t path_n, char **txt, size_t *len, qtts_err *err) {
    qtts_status st = qtts_path_join(path, path_n, dir, file, err);
    if (st != QTTS_OK) return st;
    if (!qtts_file_exists(path)) return qtts_fail(err, QTTS_ERR_MISSING, "%s: missing", path);
    return qtts_read_file(path, txt, len, err);
}

qtts_status qtts_model_config_load(const char *model_dir, qtts_model_config *cfg, qtts_err *err) {
    char path[4096], *txt = NULL;
    size_t len;
    qtts_status st = load_json(model_dir, "config.json", path, sizeof path, &txt, &len, err);
    if (st == QTTS_OK) st = qtts_model_config_parse(txt, len, path, cfg, err);
    free(txt);
    return st;
}

qtts_status qtts_codec_config_load(const char *codec_dir, qtts_codec_config *cfg, qtts_err *err) {
    char path[4096], *txt = NULL;
    size_t len;
    qtts_status st = load_json(codec_dir, "config.json", path, sizeof path, &txt, &len, err);
    if (st == QTTS_OK) st = qtts_codec_config_parse(txt, len, path, cfg, err);
    free(txt);
    return st;
}

void qtts_gen_config_default(qtts_gen_config *g) {
    *g = (qtts_gen_config){
        .do_sample = true,
        .temperature = 0.9f,
        .top_p = 1.0f,
        .repetition_penalty = 1.05f,
        .top_k = 50,
        .sub_do_sample = true,
        .sub_temperature = 0.9f,
        .sub_top_p = 1.0f,
        .sub_top_k = 50,
        .max_new_tokens = 8192,
    };
}

qtts_status qtts_gen_config_load(const char *model_dir, qtts_gen_config *g, qtts_err *err) {
    qtts_status st = QTTS_OK;
    char path[4096], *txt = NULL;
    size_t len;
    cJSON *root = NULL;
    qtts_gen_config_default(g);
    QTTS_TRY(qtts_path_join(path, sizeof path, model_dir, "generation_config.json", err));
    if (!qtts_file_exists(path)) return QTTS_OK;
    QTTS_TRY(qtts_read_file(path, &txt, &len, err));
    root = cJSON_ParseWithLength(txt, len);
    QTTS_CHECK(root, err, QTTS_ERR_FORMAT, "%s: not valid JSON", path);
    QTTS_CHECK(cJSON_IsObject(root), err, QTTS_ERR_FORMAT, "%s: top level is a %s, expected an object", path, json_type_name(root));
    jctx c = {path, err};
    QTTS_TRY(get_bool(&c, root, "", "do_sample", g->do_sample, &g->do_sample));
    QTTS_TRY(get_float(&c, root, "", "temperature", false, g->temperature, &g->temperature));
    QTTS_TRY(get_int(&c, root, "", "top_k", false, g->top_k, &g->top_k));
    QTTS_TRY(get_float(&c, root, "", "top_p", false, g->top_p, &g->top_p));
    QTTS_TRY(get_float(&c, root, "", "repetition_penalty", false, g->repetition_penalty, &g->repetition_penalty));
    QTTS_TRY(get_bool(&c, root, "", "subtalker_dosample", g->sub_do_sample, &g->sub_do_sample));
    QTTS_TRY(get_float(&c, root, "", "subtalker_temperature", false, g->sub_temperature, &g->sub_temperature));
    QTTS_TRY(get_int(&c, root, "", "subtalker_top_k", false, g->sub_top_k, &g->sub_top_k));
    QTTS_TRY(get_float(&c, root, "", "subtalker_top_p", false, g->sub_top_p, &g->sub_top_p));
    QTTS_TRY(get_int(&c, root, "", "max_new_tokens", false, g->max_new_tokens, &g->max_new_tokens));
    QTTS_CHECK(g->temperature > 0 && g->sub_temperature > 0, err, QTTS_ERR_CONFIG, "%s: temperature: must be > 0", path);
    QTTS_CHECK(g->top_p > 0 && g->top_p <= 1 && g->sub_top_p > 0 && g->sub_top_p <= 1, err, QTTS_ERR_CONFIG,
               "%s: top_p: must be in (0, 1]", path);
    QTTS_CHECK(g->top_k >= 0 && g->sub_top_k >= 0, err, QTTS_ERR_CONFIG, "%s: top_k: must be >= 0", path);
    QTTS_CHECK(g->repetition_penalty > 0, err, QTTS_ERR_CONFIG, "%s: repetition_penalty: must be > 0", path);
    QTTS_CHECK(g->max_new_tokens >= 1, err, QTTS_ERR_CONFIG, "%s: max_new_tokens: must be >= 1", path);
cleanup:
    cJSON_Delete(root);
    free(txt);
    return st;
}

int qtts_config_language_id(const qtts_model_config *cfg, const char *name) {
    for (int i = 0; i < cfg->n_languages; i++)
        if (!strcasecmp(cfg->languages[i].name, name)) return cfg->languages[i].id;
    return -1;
}

const qtts_named_id *qtts_config_speaker(const qtts_model_config *cfg, const char *name) {
    for (int i = 0; i < cfg->n_speakers; i++)
        if (!strcasecmp(cfg->speakers[i].name, name)) return &cfg->speakers[i];
    return NULL;
}
