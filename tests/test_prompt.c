/* Prompt assembly against hand-derived expectations from spec §3 (worked example §3.8) and
 * the official generate()/generate_icl_prompt(): every mode, both arrangements, the dialect
 * rule, the 0.6B instruct rule, and the error cases. The config is filled by hand with the
 * released 1.7B ids (spec §2); needs ../shared/data/qwen2-tokenizer for the text ids. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "prompt.h"
#include "testutil.h"

enum { IM_START = 151644, IM_END = 151645, ASSISTANT = 77091, NL = 198, PAD = 151671, BOS = 151672, EOS = 151673 };
enum { C_PAD = 2148, C_BOS = 2149, C_THINK = 2154, C_NOTHINK = 2155, C_TBOS = 2156, C_TEOS = 2157 };

static void fill_config(qtts_model_config *c, qtts_variant v, const char *size) {
    memset(c, 0, sizeof *c);
    c->variant = v;
    snprintf(c->size_tag, sizeof c->size_tag, "%s", size);
    c->codec_pad_id = C_PAD, c->codec_bos_id = C_BOS, c->codec_eos_id = 2150;
    c->codec_think_id = C_THINK, c->codec_nothink_id = C_NOTHINK;
    c->codec_think_bos_id = C_TBOS, c->codec_think_eos_id = C_TEOS;
    c->im_start_id = IM_START, c->im_end_id = IM_END, c->assistant_id = ASSISTANT;
    c->tts_pad_id = PAD, c->tts_bos_id = BOS, c->tts_eos_id = EOS;
    static const struct { const char *n; int id; } langs[] = {
        {"chinese", 2055}, {"english", 2050}, {"german", 2053}, {"italian", 2070}, {"portuguese", 2071},
        {"spanish", 2054}, {"japanese", 2058}, {"korean", 2064}, {"french", 2061}, {"russian", 2069},
        {"beijing_dialect", 2074}, {"sichuan_dialect", 2062}};
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
        snprintf(c->languages[i].name, QTTS_NAME_LEN, "%s", langs[i].n);
        c->languages[i].id = langs[i].id;
    }
    c->n_languages = 12;
    if (v != QTTS_VARIANT_CUSTOM_VOICE) return;
    static const struct { const char *n; int id; const char *d; } spk[] = {
        {"serena", 3066, ""}, {"vivian", 3065, ""}, {"uncle_fu", 3010, ""}, {"ryan", 3061, ""}, {"aiden", 2861, ""},
        {"ono_anna", 2873, ""}, {"sohee", 2864, ""}, {"eric", 2875, "sichuan_dialect"}, {"dylan", 2878, "beijing_dialect"}};
    for (size_t i = 0; i < sizeof spk / sizeof spk[0]; i++) {
        snprintf(c->speakers[i].name, QTTS_NAME_LEN, "%s", spk[i].n);
        c->speakers[i].id = spk[i].id;
        snprintf(c->speakers[i].dialect, QTTS_NAME_LEN, "%s", spk[i].d);
    }
    c->n_speakers = 9;
}

#define T(id) {(id), QTTS_CODEC_NONE, 0}
#define TC(id, c) {(id), QTTS_CODEC_ID, (c)}
#define TS(id) {(id), QTTS_CODEC_SPEAKER, 0}
#define TR(id, j) {(id), QTTS_CODEC_REF_FRAME, (j)}

static bool same_prompt(const char *name, const qtts_prompt *got, const qtts_prompt_pos *pos, int n_pos,
                        const int32_t *q, int n_q) {
    bool ok = got->n_pos == n_pos && got->n_trailing == n_q;
    for (int i = 0; ok && i < n_pos; i++)
        ok = got->pos[i].text_id == pos[i].text_id && got->pos[i].codec_kind == pos[i].codec_kind &&
             (pos[i].codec_kind == QTTS_CODEC_NONE || pos[i].codec_kind == QTTS_CODEC_SPEAKER ||
              got->pos[i].codec_val == pos[i].codec_val);
    for (int i = 0; ok && i < n_q; i++) ok = got->trailing[i] == q[i];
    if (!ok) {
        fprintf(stderr, "%s: got %d positions, %d queued:\n", name, got->n_pos, got->n_trailing);
        for (int i = 0; i < got->n_pos; i++)
            fprintf(stderr, "  %2d: text %6d codec %d/%d%s\n", i, got->pos[i].text_id, got->pos[i].codec_kind,
                    got->pos[i].codec_val,
                    i < n_pos && (got->pos[i].text_id != pos[i].text_id || got->pos[i].codec_val != pos[i].codec_val)
                        ? "   <-- differs" : "");
        fprintf(stderr, "  queue:");
        for (int i = 0; i < got->n_trailing; i++) fprintf(stderr, " %d", got->trailing[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static qtts_status build(const qtts_tokenizer *tok, const qtts_model_config *c, const qtts_prompt_params *p,
                         qtts_prompt *out, qtts_err *err) {
    memset(err, 0, sizeof *err);
    return qtts_prompt_build(tok, c, p, out, err);
}

/* "Hello world." = 9707 1879 13 */
static void test_custom_voice(const qtts_tokenizer *tok) {
    qtts_model_config c;
    fill_config(&c, QTTS_VARIANT_CUSTOM_VOICE, "1b7");
    qtts_prompt pr;
    qtts_err err;
    qtts_prompt_params p = qtts_prompt_default_params(QTTS_PROMPT_CUSTOM_VOICE);
    CHECK(p.non_streaming, "CustomVoice defaults to non-streaming (official API)");
    p.text = "Hello world.";
    p.speaker = "Ryan";
    p.language = "English";
    p.non_streaming = false;
    /* spec §3.8, verbatim */
    qtts_prompt_pos ex[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_THINK), TC(PAD, C_TBOS), TC(PAD, 2050),
                            TC(PAD, C_TEOS), TC(PAD, 3061), TC(BOS, C_PAD), TC(9707, C_BOS)};
    int32_t exq[] = {1879, 13, EOS};
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(same_prompt("worked example", &pr, ex, 10, exq, 3), "spec §3.8 worked example");
    CHECK(pr.n_text == 3 && pr.n_instruct == 0 && !pr.instruct_ignored, "info");
    qtts_prompt_free(&pr);

    p.non_streaming = true; /* length N+11 */
    qtts_prompt_pos ex2[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_THINK), TC(PAD, C_TBOS), TC(PAD, 2050),
                             TC(PAD, C_TEOS), TC(PAD, 3061), TC(BOS, C_PAD), TC(9707, C_PAD), TC(1879, C_PAD),
                             TC(13, C_PAD), TC(EOS, C_PAD), TC(PAD, C_BOS)};
    int32_t exq2[] = {PAD};
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(same_prompt("non-streaming", &pr, ex2, 14, exq2, 1), "non-streaming arrangement (N+11 = 14)");
    qtts_prompt_free(&pr);

    /* auto language, non-dialect speaker: nothink block */
    p.language = NULL;
    p.non_streaming = false;
    qtts_prompt_pos ex3[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_NOTHINK), TC(PAD, C_TBOS), TC(PAD, C_TEOS),
                             TC(PAD, 3061), TC(BOS, C_PAD), TC(9707, C_BOS)};
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(same_prompt("auto", &pr, ex3, 9, exq, 3), "auto language → nothink block");
    qtts_prompt_free(&pr);

    /* dialect override: eric with auto or chinese → sichuan 2062; with english → 2050 */
    static const struct { const char *spk, *lang; int want, spk_id; } dia[] = {
        {"eric", "auto", 2062, 2875}, {"Eric", "Chinese", 2062, 2875}, {"eric", "english", 2050, 2875},
        {"dylan", NULL, 2074, 2878}, {"dylan", "japanese", 2058, 2878}};
    for (size_t i = 0; i < sizeof dia / sizeof dia[0]; i++) {
        p.speaker = dia[i].spk;
        p.language = dia[i].lang;
        qtts_prompt_pos exd[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_THINK), TC(PAD, C_TBOS),
                                 TC(PAD, dia[i].want), TC(PAD, C_TEOS), TC(PAD, dia[i].spk_id), TC(BOS, C_PAD),
                                 TC(9707, C_BOS)};
        CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
        CHECK(same_prompt("dialect", &pr, exd, 10, exq, 3), "dialect case %zu (%s, %s)", i, dia[i].spk,
              dia[i].lang ? dia[i].lang : "NULL");
        qtts_prompt_free(&pr);
    }

    /* instruct (1.7B): the full user template, text only, first */
    p.speaker = "ryan";
    p.language = "english";
    p.instruct = "Speak slowly.";
    int32_t *iid;
    int ni;
    const char *itpl = "<|im_start|>user\nSpeak slowly.<|im_end|>\n";
    qtts_tokenizer_encode(tok, itpl, strlen(itpl), &iid, &ni, &err);
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    bool ok = pr.n_instruct == ni && pr.n_pos == 10 + ni && iid[0] == IM_START && iid[ni - 1] == NL &&
              iid[ni - 2] == IM_END;
    for (int i = 0; ok && i < ni; i++) ok = pr.pos[i].text_id == iid[i] && pr.pos[i].codec_kind == QTTS_CODEC_NONE;
    ok = ok && same_prompt("after instruct", &(qtts_prompt){.n_pos = 10, .pos = pr.pos + ni, .n_trailing = pr.n_trailing,
                                                            .trailing = pr.trailing}, ex, 10, exq, 3);
    CHECK(ok, "instruct prefix of %d ids, then the worked example", ni);
    qtts_prompt_free(&pr);
    free(iid);

    /* 0.6B CustomVoice drops the instruct, like generate_custom_voice */
    fill_config(&c, QTTS_VARIANT_CUSTOM_VOICE, "0b6");
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(pr.instruct_ignored && same_prompt("0b6", &pr, ex, 10, exq, 3), "0.6B: instruct ignored and flagged");
    qtts_prompt_free(&pr);

    /* text starting with a newline: the template slicing of the reference keeps its quirk
     * ("\n\n" is one token 271 and becomes the third role id) */
    fill_config(&c, QTTS_VARIANT_CUSTOM_VOICE, "1b7");
    p.instruct = NULL;
    p.text = "\nHello world.";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(pr.n_pos == 10 && pr.pos[2].text_id == 271 && pr.pos[9].text_id == 9707, "leading newline: role id %d",
          pr.n_pos > 2 ? pr.pos[2].text_id : -1);
    qtts_prompt_free(&pr);
}

static void test_voice_design(const qtts_tokenizer *tok) {
    qtts_model_config c;
    fill_config(&c, QTTS_VARIANT_VOICE_DESIGN, "1b7");
    qtts_prompt pr;
    qtts_err err;
    qtts_prompt_params p = qtts_prompt_default_params(QTTS_PROMPT_VOICE_DESIGN);
    p.text = "Hello world.";
    p.instruct = "A deep calm male voice.";
    p.non_streaming = false;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    int ni = pr.n_instruct;
    qtts_prompt_pos ex[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_NOTHINK), TC(PAD, C_TBOS), TC(PAD, C_TEOS),
                            TC(BOS, C_PAD), TC(9707, C_BOS)};
    int32_t exq[] = {1879, 13, EOS};
    CHECK(ni > 5 && same_prompt("voice design", &(qtts_prompt){.n_pos = pr.n_pos - ni, .pos = pr.pos + ni,
                                                                .n_trailing = pr.n_trailing, .trailing = pr.trailing},
                                ex, 8, exq, 3),
          "VoiceDesign: instruct, no speaker slot (K=5)");
    qtts_prompt_free(&pr);
    p.instruct = "";
    p.language = "german";
    p.non_streaming = true;
    qtts_prompt_pos ex2[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_THINK), TC(PAD, C_TBOS), TC(PAD, 2053),
                             TC(PAD, C_TEOS), TC(BOS, C_PAD), TC(9707, C_PAD), TC(1879, C_PAD), TC(13, C_PAD),
                             TC(EOS, C_PAD), TC(PAD, C_BOS)};
    int32_t exq2[] = {PAD};
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(same_prompt("voice design ns", &pr, ex2, 13, exq2, 1), "VoiceDesign, empty instruct, non-streaming");
    qtts_prompt_free(&pr);
}

static void test_base(const qtts_tokenizer *tok) {
    qtts_model_config c;
    fill_config(&c, QTTS_VARIANT_BASE, "0b6");
    qtts_prompt pr;
    qtts_err err;
    qtts_prompt_params p = qtts_prompt_default_params(QTTS_PROMPT_BASE_XVECTOR);
    CHECK(!p.non_streaming && p.has_xvector, "voice clone defaults");
    p.text = "Hello world.";
    qtts_prompt_pos ex[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_NOTHINK), TC(PAD, C_TBOS), TC(PAD, C_TEOS),
                            TS(PAD), TC(BOS, C_PAD), TC(9707, C_BOS)};
    int32_t exq[] = {1879, 13, EOS};
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
    CHECK(same_prompt("xvector", &pr, ex, 9, exq, 3), "Base x-vector streaming");
    qtts_prompt_free(&pr);

    /* ICL: ref text "Hi." = [13048, 13]; X = [13048, 13, 9707, 1879, 13, EOS] (L_t = 6) */
    p = qtts_prompt_default_params(QTTS_PROMPT_BASE_ICL);
    p.text = "Hello world.";
    p.ref_text = "Hi.";
    p.language = "english";
    int32_t hi[2];
    int32_t *ids;
    int n;
    qtts_tokenizer_encode(tok, "Hi.", 3, &ids, &n, &err);
    CHECK(n == 2, "Hi. is 2 tokens");
    memcpy(hi, ids, sizeof hi);
    free(ids);
    qtts_prompt_pos head[] = {T(IM_START), T(ASSISTANT), T(NL), TC(PAD, C_THINK), TC(PAD, C_TBOS), TC(PAD, 2050),
                              TC(PAD, C_TEOS), TS(PAD), TC(BOS, C_PAD)};
    int32_t X[] = {hi[0], hi[1], 9707, 1879, 13, EOS};
    /* streaming, L_t (6) > L_c (3 frames + 1 = 4) */
    {
        p.n_ref_frames = 3;
        qtts_prompt_pos e[13];
        memcpy(e, head, sizeof head);
        e[9] = (qtts_prompt_pos)TC(X[0], C_BOS);
        for (int j = 1; j < 4; j++) e[9 + j] = (qtts_prompt_pos)TR(X[j], j - 1);
        int32_t q[] = {X[4], X[5]};
        CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
        CHECK(same_prompt("icl long text", &pr, e, 13, q, 2), "ICL streaming, text longer than codes");
        qtts_prompt_free(&pr);
    }
    /* streaming, L_t (6) <= L_c (8): X padded with tts_pad */
    {
        p.n_ref_frames = 7;
        qtts_prompt_pos e[17];
        memcpy(e, head, sizeof head);
        e[9] = (qtts_prompt_pos)TC(X[0], C_BOS);
        for (int j = 1; j < 8; j++) e[9 + j] = (qtts_prompt_pos)TR(j < 6 ? X[j] : PAD, j - 1);
        int32_t q[] = {PAD};
        CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
        CHECK(same_prompt("icl long codes", &pr, e, 17, q, 1), "ICL streaming, codes longer than text");
        qtts_prompt_free(&pr);
    }
    /* non-streaming: X + C(pad), then Y + tts_pad */
    {
        p.n_ref_frames = 2;
        p.non_streaming = true;
        qtts_prompt_pos e[18];
        memcpy(e, head, sizeof head);
        for (int j = 0; j < 6; j++) e[9 + j] = (qtts_prompt_pos)TC(X[j], C_PAD);
        e[15] = (qtts_prompt_pos)TC(PAD, C_BOS);
        e[16] = (qtts_prompt_pos)TR(PAD, 0);
        e[17] = (qtts_prompt_pos)TR(PAD, 1);
        int32_t q[] = {PAD};
        CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK, "%s", err.msg);
        CHECK(same_prompt("icl ns", &pr, e, 18, q, 1), "ICL non-streaming");
        qtts_prompt_free(&pr);
    }
    /* ICL without x-vector: no speaker slot */
    p.has_xvector = false;
    p.non_streaming = false;
    p.n_ref_frames = 3;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_OK && pr.n_pos == 12 && pr.pos[7].text_id == BOS &&
              pr.pos[7].codec_val == C_PAD, "ICL without x-vector");
    qtts_prompt_free(&pr);
}

static void test_errors(const qtts_tokenizer *tok) {
    qtts_model_config c;
    fill_config(&c, QTTS_VARIANT_CUSTOM_VOICE, "1b7");
    qtts_prompt pr;
    qtts_err err;
    qtts_prompt_params p = qtts_prompt_default_params(QTTS_PROMPT_CUSTOM_VOICE);
    p.text = "Hi";
    p.speaker = "bob";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_UNKNOWN_NAME && strstr(err.msg, "bob") && strstr(err.msg, "ryan") &&
              strstr(err.msg, "dylan") && !pr.pos, "unknown speaker: %s", err.msg);
    p.speaker = "ryan";
    p.language = "klingon";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_UNKNOWN_NAME && strstr(err.msg, "klingon") &&
              strstr(err.msg, "auto") && strstr(err.msg, "english") && !strstr(err.msg, "dialect"),
          "unknown language: %s", err.msg);
    p.language = "sichuan_dialect";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_UNKNOWN_NAME, "dialect names are not selectable: %s", err.msg);
    p.language = "auto";
    p.text = "";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_TEXT, "empty text: %s", err.msg);
    p.text = NULL;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_TEXT, "NULL text: %s", err.msg);
    p.text = "bad \xff";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_TEXT && strstr(err.msg, "offset"), "invalid UTF-8: %s", err.msg);
    p.text = "Hi";
    p.mode = QTTS_PROMPT_VOICE_DESIGN;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_UNSUPPORTED, "VoiceDesign on CustomVoice: %s", err.msg);
    fill_config(&c, QTTS_VARIANT_BASE, "1b7");
    p = qtts_prompt_default_params(QTTS_PROMPT_BASE_ICL);
    p.text = "Hi";
    p.n_ref_frames = 5;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_TEXT, "ICL without ref text: %s", err.msg);
    p.ref_text = "Ref.";
    p.n_ref_frames = 0;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_INVALID_ARG, "ICL without frames: %s", err.msg);
    p.mode = QTTS_PROMPT_BASE_XVECTOR;
    p.has_xvector = false;
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_INVALID_ARG, "x-vector mode without x-vector: %s", err.msg);
    p.has_xvector = true;
    p.speaker = "ryan";
    CHECK(build(tok, &c, &p, &pr, &err) == QTTS_ERR_INVALID_ARG, "speaker on Base: %s", err.msg);
}

/* ---- reference dumps (tests/fixtures/cases, official qwen-tts 0.1.1) ---- */

static bool ids_equal_npy(const char *dir, const char *file, const int32_t *ids, int n) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    qtts_npy a;
    qtts_err err = {0};
    if (qtts_npy_load(path, &a, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return false;
    }
    bool ok = a.dtype == QTTS_NPY_I64 && a.ndim == 1 && a.count == n;
    for (int i = 0; ok && i < n; i++) ok = ((const int64_t *)a.data)[i] == ids[i];
    if (!ok) {
        fprintf(stderr, "%s: %lld ids in file, %d computed\n  file:", path, (long long)a.count, n);
        for (int64_t i = 0; i < a.count && a.dtype == QTTS_NPY_I64; i++) fprintf(stderr, " %lld", (long long)((const int64_t *)a.data)[i]);
        fprintf(stderr, "\n  ours:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    qtts_npy_free(&a);
    return ok;
}

static bool tmpl_matches(const qtts_tokenizer *tok, const char *dir, const char *file, const char *pre, const char *body,
                         const char *suf) {
    char buf[8192];
    snprintf(buf, sizeof buf, "%s%s%s", pre, body, suf);
    int32_t *ids;
    int n;
    qtts_err err = {0};
    if (qtts_tokenizer_encode(tok, buf, strlen(buf), &ids, &n, &err)) return false;
    bool ok = ids_equal_npy(dir, file, ids, n);
    free(ids);
    return ok;
}

/* Without the weights the embeddings cannot be recomputed here, but the arrangement can be
 * checked: two prompt rows are (numerically) equal exactly when our positions carry the same
 * (text id, codec term). Catches swapped, shifted or mislabelled positions. */
static bool same_structure(const char *dir, const qtts_prompt *pr) {
    char path[8192];
    snprintf(path, sizeof path, "%s/prompt_embeds.npy", dir);
    qtts_npy a;
    qtts_err err = {0};
    if (qtts_npy_load(path, &a, &err) || a.dtype != QTTS_NPY_F32 || a.ndim != 2 || a.shape[0] != pr->n_pos) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return false;
    }
    int D = (int)a.shape[1], bad = 0;
    const float *x = a.data;
    for (int i = 0; i < pr->n_pos; i++)
        for (int j = i + 1; j < pr->n_pos; j++) {
            const qtts_prompt_pos *p = &pr->pos[i], *q = &pr->pos[j];
            bool key = p->text_id == q->text_id && p->codec_kind == q->codec_kind && p->codec_val == q->codec_val;
            float md = 0, mx = 0;
            for (int k = 0; k < D; k++) {
                float dd = x[(size_t)i * D + k] - x[(size_t)j * D + k];
                md = dd < 0 ? (-dd > md ? -dd : md) : (dd > md ? dd : md);
                float v = x[(size_t)i * D + k] < 0 ? -x[(size_t)i * D + k] : x[(size_t)i * D + k];
                mx = v > mx ? v : mx;
            }
            bool eq = md <= 1e-5f * (mx > 1 ? mx : 1);
            if (eq != key && bad++ < 3)
                fprintf(stderr, "%s: rows %d and %d are %s but our positions are %s\n", dir, i, j, eq ? "equal" : "different",
                        key ? "the same" : "different");
        }
    qtts_npy_free(&a);
    return bad == 0;
}

static const char *jstr(const cJSON *m, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_fixtures(const qtts_tokenizer *tok) {
    char root[4096];
    snprintf(root, sizeof root, "%s/cases", tu_fixture_dir());
    DIR *d = opendir(root);
    if (!d) {
        printf("no fixtures at %s: reference-dump checks skipped\n", root);
        return;
    }
    struct dirent *e;
    int cases = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[4096 + 256], path[4096 + 300];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        snprintf(path, sizeof path, "%s/meta.json", dir);
        char *txt;
        size_t len;
        qtts_err err = {0};
        if (qtts_read_file(path, &txt, &len, &err)) continue;
        cJSON *m = cJSON_ParseWithLength(txt, len);
        free(txt);
        const char *model = jstr(m, "model"), *mode = jstr(m, "mode");
        if (!model || !mode) {
            CHECK(0, "%s: meta.json without model/mode", e->d_name);
            cJSON_Delete(m);
            continue;
        }
        cases++;
        qtts_model_config c;
        qtts_prompt_mode pm = !strcmp(mode, "custom_voice")      ? QTTS_PROMPT_CUSTOM_VOICE
                              : !strcmp(mode, "voice_design")    ? QTTS_PROMPT_VOICE_DESIGN
                              : !strcmp(mode, "voice_clone_icl") ? QTTS_PROMPT_BASE_ICL
                                                                 : QTTS_PROMPT_BASE_XVECTOR;
        fill_config(&c, pm == QTTS_PROMPT_CUSTOM_VOICE   ? QTTS_VARIANT_CUSTOM_VOICE
                        : pm == QTTS_PROMPT_VOICE_DESIGN ? QTTS_VARIANT_VOICE_DESIGN
                                                         : QTTS_VARIANT_BASE,
                    strcmp(model, "base") ? "1b7" : "0b6");
        qtts_prompt_params p = qtts_prompt_default_params(pm);
        p.text = jstr(m, "text");
        p.speaker = jstr(m, "speaker");
        p.instruct = jstr(m, "instruct");
        p.language = jstr(m, "language");
        p.ref_text = jstr(m, "ref_text");
        p.non_streaming = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "non_streaming_mode"));
        const cJSON *tref = cJSON_GetObjectItemCaseSensitive(m, "t_ref");
        p.n_ref_frames = cJSON_IsNumber(tref) ? tref->valueint : 0;
        CHECK(tmpl_matches(tok, dir, "text_ids.npy", "<|im_start|>assistant\n", p.text,
                           "<|im_end|>\n<|im_start|>assistant\n"),
              "%s: text_ids.npy", e->d_name);
        if (p.instruct)
            CHECK(tmpl_matches(tok, dir, "instruct_ids.npy", "<|im_start|>user\n", p.instruct, "<|im_end|>\n"),
                  "%s: instruct_ids.npy", e->d_name);
        if (p.ref_text)
            CHECK(tmpl_matches(tok, dir, "ref_ids.npy", "<|im_start|>assistant\n", p.ref_text, "<|im_end|>\n"),
                  "%s: ref_ids.npy", e->d_name);
        qtts_prompt pr;
        qtts_status st = qtts_prompt_build(tok, &c, &p, &pr, &err);
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(m, "prefill_len"),
                    *tl = cJSON_GetObjectItemCaseSensitive(m, "trailing_len");
        CHECK(st == QTTS_OK && pr.n_pos == pl->valueint && pr.n_trailing == tl->valueint,
              "%s: prefill %d (want %d), queue %d (want %d) %s", e->d_name, pr.n_pos, pl->valueint, pr.n_trailing,
              tl->valueint, err.msg);
        if (st == QTTS_OK) CHECK(same_structure(dir, &pr), "%s: prompt_embeds.npy row structure", e->d_name);
        qtts_prompt_free(&pr);
        cJSON_Delete(m);
    }
    closedir(d);
    CHECK(cases >= 13, "%d fixture cases found", cases);
    printf("fixtures: %d cases compared\n", cases);
}

int main(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data/qwen2-tokenizer", tu_shared_dir());
    if (!qtts_file_exists(dir)) return tu_skip("no shared/data/qwen2-tokenizer");
    qtts_tokenizer *tok;
    qtts_err err = {0};
    if (qtts_tokenizer_load(&tok, dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_custom_voice(tok);
    test_voice_design(tok);
    test_base(tok);
    test_errors(tok);
    test_fixtures(tok);
    qtts_tokenizer_free(tok);
    return tu_finish("prompt");
}
