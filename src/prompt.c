/* Prompt assembly (see prompt.h). Head: [instruct ids] + role prefix (3 text-only positions)
 * + K-1 dual positions (tts_pad…, tts_bos) + (think block, speaker, codec pad); tail by mode
 * and arrangement. Template ids are sliced by position from one tokenization of the whole
 * template, as the reference does, so its edge cases (text starting with a newline) match. */
#include "prompt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pos_list {
    qtts_prompt_pos *v;
    int n, cap;
} pos_list;

static qtts_status push(pos_list *l, int32_t text_id, qtts_codec_kind kind, int32_t val, qtts_err *err) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        qtts_prompt_pos *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return qtts_fail(err, QTTS_ERR_OOM, "prompt positions");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (qtts_prompt_pos){text_id, (uint8_t)kind, val};
    return QTTS_OK;
}

static bool name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

/* Tokenize a template built from prefix + body + suffix. */
static qtts_status tokenize_template(const qtts_tokenizer *tok, const char *pre, const char *body, const char *suf,
                                     int32_t **ids, int *n, qtts_err *err) {
    size_t lp = strlen(pre), lb = strlen(body), ls = strlen(suf);
    char *s = qtts_malloc(lp + lb + ls + 1, err, "prompt template");
    if (!s) return QTTS_ERR_OOM;
    memcpy(s, pre, lp);
    memcpy(s + lp, body, lb);
    memcpy(s + lp + lb, suf, ls + 1);
    qtts_status st = qtts_tokenizer_encode(tok, s, lp + lb + ls, ids, n, err);
    free(s);
    return st;
}

/* The user-selectable languages: "auto" and the table's non-dialect names (the official
 * wrapper's get_supported_languages). */
static qtts_status resolve_language(const qtts_model_config *cfg, const char *lang, int *id, qtts_err *err) {
    *id = -1;
    if (!lang || name_eq(lang, "auto")) return QTTS_OK;
    for (int i = 0; i < cfg->n_languages; i++)
        if (!strstr(cfg->languages[i].name, "dialect") && name_eq(lang, cfg->languages[i].name)) {
            *id = cfg->languages[i].id;
            return QTTS_OK;
        }
    char list[1024] = "auto";
    for (int i = 0; i < cfg->n_languages; i++)
        if (!strstr(cfg->languages[i].name, "dialect") && strlen(list) + QTTS_NAME_LEN + 3 < sizeof list)
            strcat(strcat(list, ", "), cfg->languages[i].name);
    return qtts_fail(err, QTTS_ERR_UNKNOWN_NAME, "unknown language '%s' (valid: %s)", lang, list);
}

static const qtts_named_id *find_speaker(const qtts_model_config *cfg, const char *name) {
    for (int i = 0; i < cfg->n_speakers; i++)
        if (name_eq(name, cfg->speakers[i].name)) return &cfg->speakers[i];
    return NULL;
}

qtts_prompt_params qtts_prompt_default_params(qtts_prompt_mode mode) {
    qtts_prompt_params p = {0};
    p.mode = mode;
    p.language = "auto";
    p.non_streaming = mode == QTTS_PROMPT_CUSTOM_VOICE || mode == QTTS_PROMPT_VOICE_DESIGN;
    p.has_xvector = mode == QTTS_PROMPT_BASE_XVECTOR || mode == QTTS_PROMPT_BASE_ICL;
    return p;
}

/* Local so that prompt.c does not depend on the config parser's translation unit. */
static const char *variant_name(qtts_variant v) {
    return v == QTTS_VARIANT_BASE ? "Base" : v == QTTS_VARIANT_CUSTOM_VOICE ? "CustomVoice" : "VoiceDesign";
}

static const char *mode_name(qtts_prompt_mode m) {
    switch (m) {
    case QTTS_PROMPT_CUSTOM_VOICE: return "CustomVoice";
    case QTTS_PROMPT_VOICE_DESIGN: return "VoiceDesign";
    case QTTS_PROMPT_BASE_XVECTOR: return "Base x-vector";
    case QTTS_PROMPT_BASE_ICL: return "Base ICL";
    }
    return "?";
}

qtts_status qtts_prompt_build(const qtts_tokenizer *tok, const qtts_model_config *cfg, const qtts_prompt_params *p,
                              qtts_prompt *out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    pos_list L = {0};
    int32_t *tids = NULL, *iids = NULL, *rids = NULL, *q = NULL, *X = NULL;
    int nt = 0, ni = 0, nr = 0, nq = 0;
    memset(out, 0, sizeof *out);
    QTTS_CHECK(tok && cfg && p, err, QTTS_ERR_INVALID_ARG, "prompt: NULL argument");
    QTTS_CHECK(p->mode >= QTTS_PROMPT_CUSTOM_VOICE && p->mode <= QTTS_PROMPT_BASE_ICL, err, QTTS_ERR_INVALID_ARG,
               "prompt: unknown mode %d", (int)p->mode);
    bool base = p->mode == QTTS_PROMPT_BASE_XVECTOR || p->mode == QTTS_PROMPT_BASE_ICL;
    qtts_variant want = base ? QTTS_VARIANT_BASE
                        : p->mode == QTTS_PROMPT_CUSTOM_VOICE ? QTTS_VARIANT_CUSTOM_VOICE : QTTS_VARIANT_VOICE_DESIGN;
    QTTS_CHECK(cfg->variant == want, err, QTTS_ERR_UNSUPPORTED, "%s prompts need a %s checkpoint; this one is %s",
               mode_name(p->mode), variant_name(want), variant_name(cfg->variant));
    QTTS_CHECK(p->text && p->text[0], err, QTTS_ERR_TEXT, "empty text");
    /* check the caller's strings before templating, so that a bad byte is
     * reported at its offset in the caller's text, not in the template */
    const char *const fields[3] = {p->text, p->instruct, p->ref_text};
    const char *const field_names[3] = {"text", "instruct", "reference text"};
    for (int f = 0; f < 3; f++) {
        if (!fields[f]) continue;
        size_t flen = strlen(fields[f]), bad = qtts_utf8_find_invalid(fields[f], flen);
        QTTS_CHECK(bad >= flen, err, QTTS_ERR_TEXT, "%s is not valid UTF-8: byte 0x%02x at offset %zu", field_names[f],
                   (unsigned char)fields[f][bad], bad);
    }
    bool has_speaker = p->speaker && p->speaker[0];
    QTTS_CHECK(!has_speaker || p->mode == QTTS_PROMPT_CUSTOM_VOICE, err, QTTS_ERR_INVALID_ARG,
               "speaker '%s' given to a %s prompt: speakers are for CustomVoice", p->speaker, mode_name(p->mode));
    QTTS_CHECK(p->mode != QTTS_PROMPT_BASE_XVECTOR || p->has_xvector, err, QTTS_ERR_INVALID_ARG,
               "Base x-vector prompt without an x-vector");
    QTTS_CHECK(base || !p->has_xvector, err, QTTS_ERR_INVALID_ARG, "x-vector given to a %s prompt", mode_name(p->mode));
    bool icl = p->mode == QTTS_PROMPT_BASE_ICL;
    if (icl) {
        QTTS_CHECK(p->ref_text && p->ref_text[0], err, QTTS_ERR_TEXT, "ICL prompt without reference text");
        QTTS_CHECK(p->n_ref_frames >= 1, err, QTTS_ERR_INVALID_ARG, "ICL prompt without reference codes (%d frames)",
                   p->n_ref_frames);
    }
    bool use_instruct = p->instruct && p->instruct[0] && (p->mode == QTTS_PROMPT_CUSTOM_VOICE ||
                                                          p->mode == QTTS_PROMPT_VOICE_DESIGN);
    QTTS_CHECK(!(p->instruct && p->instruct[0]) || use_instruct, err, QTTS_ERR_INVALID_ARG,
               "instruct given to a %s prompt", mode_name(p->mode));
    /* qwen3_tts_model.py generate_custom_voice: `if tts_model_size in "0b6": instruct = None`. */
    if (use_instruct && p->mode == QTTS_PROMPT_CUSTOM_VOICE && !strcmp(cfg->size_tag, "0b6")) {
        use_instruct = false;
        out->instruct_ignored = true;
    }

    /* Language, then the dialect override (generate(): chinese or auto + a dialect speaker). */
    int lang_id, spk_codec = -1;
    QTTS_TRY(resolve_language(cfg, p->language, &lang_id, err));
    if (has_speaker) {
        const qtts_named_id *spk = find_speaker(cfg, p->speaker);
        if (!spk) {
            char list[1024] = "";
            for (int i = 0; i < cfg->n_speakers; i++)
                if (strlen(list) + QTTS_NAME_LEN + 3 < sizeof list)
                    strcat(strcat(list, i ? ", " : ""), cfg->speakers[i].name);
            QTTS_CHECK(0, err, QTTS_ERR_UNKNOWN_NAME, "unknown speaker '%s' (valid: %s)", p->speaker, list);
        }
        spk_codec = spk->id;
        bool auto_or_zh = !p->language || name_eq(p->language, "auto") || name_eq(p->language, "chinese");
        if (auto_or_zh && spk->dialect[0]) {
            lang_id = -1;
            for (int i = 0; i < cfg->n_languages; i++)
                if (!strcmp(cfg->languages[i].name, spk->dialect)) lang_id = cfg->languages[i].id;
            QTTS_CHECK(lang_id >= 0, err, QTTS_ERR_CONFIG, "speaker '%s' has dialect '%s', not in codec_language_id",
                       spk->name, spk->dialect);
        }
    }

    /* Target text: <|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n,
     * role = ids[0:3], text = ids[3:n-5]. */
    QTTS_TRY(tokenize_template(tok, "<|im_start|>assistant\n", p->text, "<|im_end|>\n<|im_start|>assistant\n", &tids,
                               &nt, err));
    QTTS_CHECK(nt > 8, err, QTTS_ERR_TEXT, "text '%.40s' gives no tokens inside the chat template", p->text);
    int n_text = nt - 8;
    const int32_t *text = tids + 3;
    out->n_text = n_text;
    if (use_instruct) QTTS_TRY(tokenize_template(tok, "<|im_start|>user\n", p->instruct, "<|im_end|>\n", &iids, &ni, err));
    if (icl) {
        QTTS_TRY(tokenize_template(tok, "<|im_start|>assistant\n", p->ref_text, "<|im_end|>\n", &rids, &nr, err));
        QTTS_CHECK(nr > 5, err, QTTS_ERR_TEXT, "reference text '%.40s' gives no tokens inside the chat template",
                   p->ref_text);
    }

    /* Codec prefix: think block, speaker, pad, bos. */
    qtts_prompt_pos codec[8];
    int K = 0;
    if (lang_id < 0) {
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_nothink_id};
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_think_bos_id};
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_think_eos_id};
    } else {
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_think_id};
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_think_bos_id};
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, lang_id};
        codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_think_eos_id};
    }
    if (spk_codec >= 0) codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, spk_codec};
    else if (base && p->has_xvector) codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_SPEAKER, 0};
    codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_pad_id};
    codec[K++] = (qtts_prompt_pos){-1, QTTS_CODEC_ID, cfg->codec_bos_id};

    /* Head. */
    for (int i = 0; i < ni; i++) QTTS_TRY(push(&L, iids[i], QTTS_CODEC_NONE, 0, err));
    out->n_instruct = ni;
    for (int i = 0; i < 3; i++) QTTS_TRY(push(&L, tids[i], QTTS_CODEC_NONE, 0, err));
    for (int i = 0; i < K - 1; i++)
        QTTS_TRY(push(&L, i < K - 2 ? cfg->tts_pad_id : cfg->tts_bos_id, codec[i].codec_kind, codec[i].codec_val, err));

    q = qtts_malloc(((size_t)n_text + (size_t)nr + 2) * sizeof *q, err, "prompt queue");
    QTTS_CHECK(q, err, QTTS_ERR_OOM, "prompt queue");
    if (!icl) {
        if (!p->non_streaming) {
            QTTS_TRY(push(&L, text[0], QTTS_CODEC_ID, cfg->codec_bos_id, err));
            for (int j = 1; j < n_text; j++) q[nq++] = text[j];
            q[nq++] = cfg->tts_eos_id;
        } else {
            for (int j = 0; j < n_text; j++) QTTS_TRY(push(&L, text[j], QTTS_CODEC_ID, cfg->codec_pad_id, err));
            QTTS_TRY(push(&L, cfg->tts_eos_id, QTTS_CODEC_ID, cfg->codec_pad_id, err));
            QTTS_TRY(push(&L, cfg->tts_pad_id, QTTS_CODEC_ID, cfg->codec_bos_id, err));
            q[nq++] = cfg->tts_pad_id;
        }
    } else {
        /* X = ref text ids[3:nr-2] + target text + tts_eos; Y = codec bos + reference frames. */
        int m = nr - 5, lt = m + n_text + 1, lc = p->n_ref_frames + 1;
        X = qtts_malloc((size_t)lt * sizeof *X, err, "ICL text run");
        QTTS_CHECK(X, err, QTTS_ERR_OOM, "ICL text run");
        for (int j = 0; j < m; j++) X[j] = rids[3 + j];
        for (int j = 0; j < n_text; j++) X[m + j] = text[j];
        X[lt - 1] = cfg->tts_eos_id;
        /* Y_j as (kind, val) */
#define Y_KIND(j) ((j) == 0 ? QTTS_CODEC_ID : QTTS_CODEC_REF_FRAME)
#define Y_VAL(j) ((j) == 0 ? cfg->codec_bos_id : (j) - 1)
        if (p->non_streaming) {
            for (int j = 0; j < lt; j++) QTTS_TRY(push(&L, X[j], QTTS_CODEC_ID, cfg->codec_pad_id, err));
            for (int j = 0; j < lc; j++) QTTS_TRY(push(&L, cfg->tts_pad_id, Y_KIND(j), Y_VAL(j), err));
            q[nq++] = cfg->tts_pad_id;
        } else if (lt > lc) {
            for (int j = 0; j < lc; j++) QTTS_TRY(push(&L, X[j], Y_KIND(j), Y_VAL(j), err));
            for (int j = lc; j < lt; j++) q[nq++] = X[j];
        } else {
            for (int j = 0; j < lc; j++) QTTS_TRY(push(&L, j < lt ? X[j] : cfg->tts_pad_id, Y_KIND(j), Y_VAL(j), err));
            q[nq++] = cfg->tts_pad_id;
        }
#undef Y_KIND
#undef Y_VAL
    }
    out->pos = L.v;
    out->n_pos = L.n;
    out->trailing = q;
    out->n_trailing = nq;
    L.v = NULL;
    q = NULL;
cleanup:
    free(L.v);
    free(q);
    free(tids);
    free(iids);
    free(rids);
    free(X);
    if (st) {
        bool ign = out->instruct_ignored;
        memset(out, 0, sizeof *out);
        out->instruct_ignored = ign;
    }
    return st;
}

void qtts_prompt_free(qtts_prompt *p) {
    if (!p) return;
    free(p->pos);
    free(p->trailing);
    memset(p, 0, sizeof *p);
}
