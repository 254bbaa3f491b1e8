/* Job file reader: cJSON tree -> qtts_job (job -> sessions -> items), effective parameters per
 * item = defaults <- session overrides, content hashes per item. Every check appends to one
 * error list ("<json path>: <problem>") and parsing goes on, so a user sees all mistakes at once;
 * the job is only returned when the list is empty. */
#include "job.h"

#include "tokenizer.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_KEPT_ERRORS 200
#define MAX_TEXT_FILE_BYTES (64u << 20)
#define MAX_ID_LEN 128
#define MAX_OUTPUT_LEN 255
#define PATH_LEN 512

const char *qtts_audio_format_ext(qtts_audio_format f) {
    switch (f) {
    case QTTS_AUDIO_WAV: return "wav";
    case QTTS_AUDIO_FLAC: return "flac";
    case QTTS_AUDIO_OGG: return "ogg";
    }
    return "wav";
}

void qtts_job_default_params(qtts_job_params *p, const qtts_gen_config *g) {
    qtts_gen_config d;
    if (!g) {
        qtts_gen_config_default(&d);
        g = &d;
    }
    memset(p, 0, sizeof *p);
    snprintf(p->language, sizeof p->language, "auto");
    p->seed = 0;
    p->greedy = !g->do_sample;
    p->temperature = g->temperature;
    p->top_k = g->top_k;
    p->top_p = g->top_p;
    p->repetition_penalty = g->repetition_penalty;
    p->subtalker_temperature = g->sub_temperature;
    p->subtalker_top_k = g->sub_top_k;
    p->subtalker_top_p = g->sub_top_p;
    /* 12.5 frames/s; a text token rarely takes more than ~0.5 s to speak, 40 frames is 3.2 s */
    p->max_frames_per_token = 40;
    p->max_tokens_per_utterance = 200;
    p->pause_sentence_ms = 300;
    p->pause_paragraph_ms = 800;
    p->non_streaming_text = true;
}

uint64_t qtts_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- error collection ---- */

typedef struct ectx {
    qtts_job_errors list;
    int cap;
    int total;  /* all errors, kept or not */
    bool oom;
} ectx;

static void jerr(ectx *e, const char *path, const char *fmt, ...) QTTS_PRINTF(3, 4);
static void push_msg(ectx *e, const char *msg) {
    if (e->oom) return;
    if (e->list.n == e->cap) {
        int ncap = e->cap ? e->cap * 2 : 16;
        char **nm = realloc(e->list.msg, (size_t)ncap * sizeof *nm);
        if (!nm) {
            e->oom = true;
            return;
        }
        e->list.msg = nm;
        e->cap = ncap;
    }
    char *m = strdup(msg);
    if (!m) {
        e->oom = true;
        return;
    }
    e->list.msg[e->list.n++] = m;
}

static void jerr(ectx *e, const char *path, const char *fmt, ...) {
    e->total++;
    if (e->list.n >= MAX_KEPT_ERRORS || e->oom) return;
    char msg[1024];
    int off = snprintf(msg, sizeof msg, "%s: ", path && *path ? path : "(top level)");
    if (off < 0 || off >= (int)sizeof msg) off = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
    va_end(ap);
    push_msg(e, msg);
}

void qtts_job_errors_free(qtts_job_errors *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++) free(e->msg[i]);
    free(e->msg);
    e->msg = NULL;
    e->n = 0;
}

static char *xstrdup(ectx *e, const char *s) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) e->oom = true;
    return d;
}

static void path_key(char *out, const char *parent, const char *key) {
    if (parent && *parent) snprintf(out, PATH_LEN, "%s.%s", parent, key);
    else snprintf(out, PATH_LEN, "%s", key);
}

static void path_index(char *out, const char *parent, int i) { snprintf(out, PATH_LEN, "%s[%d]", parent, i); }

static const char *type_name(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid value";
}

/* ---- keys: unknown (with the closest valid one suggested) and duplicated ---- */

static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            int v = diag + cost;
            if (row[j] + 1 < v) v = row[j] + 1;
            if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
        }
    }
    return row[lb];
}

static void check_keys(ectx *e, const cJSON *obj, const char *path, const char *const *keys, int n_keys) {
    char p[PATH_LEN];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        path_key(p, path, k);
        bool known = false;
        for (int i = 0; i < n_keys; i++) known |= !strcmp(k, keys[i]);
        if (!known) {
            int best = -1, bd = 99;
            for (int i = 0; i < n_keys; i++) {
                int d = edit_distance(k, keys[i]);
                if (d < bd) bd = d, best = i;
            }
            int limit = (int)strlen(k) / 3 > 2 ? (int)strlen(k) / 3 : 2;
            char valid[512] = "";
            for (int i = 0; i < n_keys; i++)
                snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "", keys[i]);
            if (best >= 0 && bd <= limit)
                jerr(e, p, "unknown key \"%.64s\" (did you mean \"%s\"?)", k, keys[best]);
            else
                jerr(e, p, "unknown key \"%.64s\" (valid: %s)", k, valid);
            continue;
        }
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (d->string && !strcmp(d->string, k)) {
                jerr(e, p, "duplicate key");
                break;
            }
    }
}

/* ---- typed getters: return the item when present and of the right type ---- */

static const cJSON *get_typed(ectx *e, const cJSON *obj, const char *path, const char *key, bool required,
                              cJSON_bool (*is)(const cJSON *), const char *want) {
    char p[PATH_LEN];
    path_key(p, path, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required) jerr(e, p, "missing (required)");
        return NULL;
    }
    if (!is(v)) {
        jerr(e, p, "expected %s, got %s", want, type_name(v));
        return NULL;
    }
    return v;
}

static const char *get_str(ectx *e, const cJSON *obj, const char *path, const char *key, bool required) {
    const cJSON *v = get_typed(e, obj, path, key, required, cJSON_IsString, "a string");
    return v ? v->valuestring : NULL;
}

static bool get_bool(ectx *e, const cJSON *obj, const char *path, const char *key, bool *out) {
    const cJSON *v = get_typed(e, obj, path, key, false, cJSON_IsBool, "a boolean");
    if (v) *out = cJSON_IsTrue(v);
    return v != NULL;
}

static void get_int(ectx *e, const cJSON *obj, const char *path, const char *key, double lo, double hi, int *out) {
    const cJSON *v = get_typed(e, obj, path, key, false, cJSON_IsNumber, "an integer");
    if (!v) return;
    char p[PATH_LEN];
    path_key(p, path, key);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) jerr(e, p, "expected an integer, got number %g", d);
    else if (d < lo || d > hi) jerr(e, p, "%g is out of range [%g, %g]", d, lo, hi);
    else *out = (int)d;
}

/* lo_open: the lower bound itself is not allowed */
static void get_float(ectx *e, const cJSON *obj, const char *path, const char *key, double lo, bool lo_open, double hi,
                      float *out) {
    const cJSON *v = get_typed(e, obj, path, key, false, cJSON_IsNumber, "a number");
    if (!v) return;
    char p[PATH_LEN];
    path_key(p, path, key);
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || (lo_open && d == lo) || d > hi)
        jerr(e, p, "%g is out of range %c%g, %g]", d, lo_open ? '(' : '[', lo, hi);
    else *out = (float)d;
}

/* ---- parameters (defaults and overrides share the keys) ---- */

static const char *const PARAM_KEYS[] = {
    "language",          "seed",          "greedy",          "temperature",          "top_k",
    "top_p",             "repetition_penalty", "subtalker_temperature", "subtalker_top_k", "subtalker_top_p",
    "max_frames_per_token", "max_tokens_per_utterance", "pause_sentence_ms", "pause_paragraph_ms",
    "non_streaming_text",
};
#define N_PARAM_KEYS ((int)(sizeof PARAM_KEYS / sizeof PARAM_KEYS[0]))

static bool language_ok(const qtts_model_config *cfg, const char *name) {
    if (!strcasecmp(name, "auto")) return true;
    if (!cfg) return true;
    for (int i = 0; i < cfg->n_languages; i++)
        if (!strstr(cfg->languages[i].name, "dialect") && !strcasecmp(cfg->languages[i].name, name)) return true;
    return false;
}

static void parse_params(ectx *e, const cJSON *obj, const char *path, const qtts_model_config *cfg, qtts_job_params *p) {
    check_keys(e, obj, path, PARAM_KEYS, N_PARAM_KEYS);
    char kp[PATH_LEN];
    const char *lang = get_str(e, obj, path, "language", false);
    if (lang) {
        path_key(kp, path, "language");
        if (!*lang || strlen(lang) >= QTTS_NAME_LEN) jerr(e, kp, "expected a language name, got \"%.64s\"", lang);
        else if (!language_ok(cfg, lang)) {
            char valid[768] = "auto";
            for (int i = 0; i < cfg->n_languages; i++)
                if (!strstr(cfg->languages[i].name, "dialect"))
                    snprintf(valid + strlen(valid), sizeof valid - strlen(valid), ", %s", cfg->languages[i].name);
            jerr(e, kp, "unknown language \"%.64s\" (valid: %s)", lang, valid);
        } else {
            size_t i = 0;
            for (; lang[i]; i++) p->language[i] = (char)tolower((unsigned char)lang[i]);
            p->language[i] = 0;
        }
    }
    const cJSON *seed = get_typed(e, obj, path, "seed", false, cJSON_IsNumber, "an integer");
    if (seed) {
        path_key(kp, path, "seed");
        double d = seed->valuedouble;
        /* JSON numbers are doubles: integers are exact up to 2^53 */
        if (!isfinite(d) || d != floor(d)) jerr(e, kp, "expected an integer, got number %g", d);
        else if (d < 0 || d > 9007199254740992.0) jerr(e, kp, "%g is out of range [0, 2^53]", d);
        else p->seed = (uint64_t)d;
    }
    get_bool(e, obj, path, "greedy", &p->greedy);
    get_float(e, obj, path, "temperature", 0, true, 100, &p->temperature);
    get_int(e, obj, path, "top_k", 0, 1 << 20, &p->top_k);
    get_float(e, obj, path, "top_p", 0, true, 1, &p->top_p);
    get_float(e, obj, path, "repetition_penalty", 0, true, 100, &p->repetition_penalty);
    get_float(e, obj, path, "subtalker_temperature", 0, true, 100, &p->subtalker_temperature);
    get_int(e, obj, path, "subtalker_top_k", 0, 1 << 20, &p->subtalker_top_k);
    get_float(e, obj, path, "subtalker_top_p", 0, true, 1, &p->subtalker_top_p);
    get_int(e, obj, path, "max_frames_per_token", 1, 1000, &p->max_frames_per_token);
    get_int(e, obj, path, "max_tokens_per_utterance", 1, 100000, &p->max_tokens_per_utterance);
    get_int(e, obj, path, "pause_sentence_ms", 0, 600000, &p->pause_sentence_ms);
    get_int(e, obj, path, "pause_paragraph_ms", 0, 600000, &p->pause_paragraph_ms);
    get_bool(e, obj, path, "non_streaming_text", &p->non_streaming_text);
}

/* ---- names, paths, text ---- */

static bool id_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > MAX_ID_LEN || s[0] == '.' || s[0] == '-') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-')) return false;
    }
    return true;
}

static char *resolve_path(ectx *e, const char *base, const char *p) {
    if (p[0] == '/' || !base || !*base || !strcmp(base, ".")) return xstrdup(e, p);
    size_t n = strlen(base) + strlen(p) + 2;
    char *r = malloc(n);
    if (!r) {
        e->oom = true;
        return NULL;
    }
    snprintf(r, n, "%s/%s", base, p);
    return r;
}

/* Text checks shared by inline text and text files: valid UTF-8 and not blank. */
static bool text_ok(ectx *e, const char *path, const char *what, const char *t, size_t n) {
    size_t badpos = qtts_utf8_find_invalid(t, n);
    long bad = badpos < n ? (long)badpos : -1;
    if (bad >= 0) {
        jerr(e, path, "%s is not valid UTF-8 (byte offset %ld)", what, bad);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)t[i])) return true;
    jerr(e, path, "%s is empty", what);
    return false;
}

static char *load_text_file(ectx *e, const char *kp, const char *file) {
    struct stat sb;
    if (stat(file, &sb) != 0) {
        if (errno == ENOENT) jerr(e, kp, "no such file (\"%s\")", file);
        else jerr(e, kp, "cannot open \"%s\": %s", file, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        jerr(e, kp, "\"%s\" is a folder, not a text file", file);
        return NULL;
    }
    if (sb.st_size > (off_t)MAX_TEXT_FILE_BYTES) {
        jerr(e, kp, "\"%s\" is larger than %u MiB", file, MAX_TEXT_FILE_BYTES >> 20);
        return NULL;
    }
    char *data = NULL;
    size_t n = 0;
    qtts_err rerr = {0};
    if (qtts_read_file(file, &data, &n, &rerr) != QTTS_OK) {
        jerr(e, kp, "%s", rerr.msg);
        return NULL;
    }
    size_t nul = strlen(data);
    if (nul < n) {
        jerr(e, kp, "\"%s\" contains a NUL byte (byte offset %zu)", file, nul);
        free(data);
        return NULL;
    }
    size_t skip = (n >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) ? 3 : 0;
    if (!text_ok(e, kp, "text file", data + skip, n - skip)) {
        free(data);
        return NULL;
    }
    if (skip) memmove(data, data + skip, n - skip + 1);
    return data;
}

/* Output names stay inside the output dir: relative, no "." / ".." / hidden components (which
 * also keeps them off the journal), printable ASCII or UTF-8, and the format's extension. */
static char *make_output(ectx *e, const char *kp, const char *name, qtts_audio_format fmt) {
    const char *ext = qtts_audio_format_ext(fmt);
    size_t n = strlen(name);
    if (n == 0) {
        jerr(e, kp, "empty output name");
        return NULL;
    }
    if (n > MAX_OUTPUT_LEN) {
        jerr(e, kp, "output name longer than %d bytes", MAX_OUTPUT_LEN);
        return NULL;
    }
    if (qtts_utf8_find_invalid(name, n) < n) {
        jerr(e, kp, "output name is not valid UTF-8");
        return NULL;
    }
    if (name[0] == '/') {
        jerr(e, kp, "\"%s\" is an absolute path; output names are relative to output.dir", name);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || c == ':') {
            jerr(e, kp, "\"%.64s\": character 0x%02x is not allowed in output names", name, c);
            return NULL;
        }
    }
    for (const char *s = name; *s;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len == 0 || s[0] == '.') {
            if (len == 2 && s[1] == '.') jerr(e, kp, "\"%s\" escapes the output folder (\"..\")", name);
            else jerr(e, kp, "\"%s\": empty or hidden (\".\") path components are not allowed", name);
            return NULL;
        }
        s += len + (slash ? 1 : 0);
        if (slash && !*s) {
            jerr(e, kp, "\"%s\" ends with '/'", name);
            return NULL;
        }
    }
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    bool has_ext = false;
    if (dot && (!slash || dot > slash)) {
        static const char *const audio[] = {"wav", "flac", "ogg", "mp3", "opus"};
        for (int i = 0; i < 5; i++)
            if (!strcasecmp(dot + 1, audio[i])) has_ext = true;
        if (has_ext && strcasecmp(dot + 1, ext)) {
            jerr(e, kp, "\"%s\": extension .%s does not match output.format \"%s\"", name, dot + 1, ext);
            return NULL;
        }
    }
    size_t cap = n + strlen(ext) + 2;
    char *r = malloc(cap);
    if (!r) {
        e->oom = true;
        return NULL;
    }
    if (has_ext) snprintf(r, cap, "%s", name);
    else snprintf(r, cap, "%s.%s", name, ext);
    return r;
}

/* ---- duplicates: sort (name, index) pairs, report every later occurrence ---- */

typedef struct named {
    const char *name;
    char *where; /* JSON path of the occurrence */
    int order;
} named;

static int named_cmp(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = strcasecmp(x->name, y->name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static void report_dups(ectx *e, named *v, int n, const char *what) {
    qsort(v, (size_t)n, sizeof *v, named_cmp);
    for (int i = 1; i < n; i++) {
        int first = i - 1;
        while (first > 0 && !strcasecmp(v[first - 1].name, v[i].name)) first--;
        if (!strcasecmp(v[first].name, v[i].name))
            jerr(e, v[i].where, "duplicate %s \"%s\" (also at %s)", what, v[i].name, v[first].where);
    }
}

/* ---- hashing ---- */

static uint64_t h_bytes(uint64_t h, const void *p, size_t n) {
    uint64_t len = n;
    h = qtts_fnv1a64(h, &len, sizeof len); /* length prefix: ("ab","c") != ("a","bc") */
    return qtts_fnv1a64(h, p, n);
}
static uint64_t h_str(uint64_t h, const char *s) { return s ? h_bytes(h, s, strlen(s)) : h_bytes(h, "\xff", 1); }
static uint64_t h_u64(uint64_t h, uint64_t v) { return qtts_fnv1a64(h, &v, sizeof v); }
static uint64_t h_f32(uint64_t h, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return qtts_fnv1a64(h, &u, 4);
}

static void hash_item(const qtts_job_session *s, qtts_job_item *it) {
    const qtts_job_params *p = &it->params;
    uint64_t h = h_str(QTTS_FNV64_INIT, "qtts-job-item-v1");
    h = h_str(h, it->text);
    h = h_u64(h, (uint64_t)s->voice.kind);
    char spk[QTTS_NAME_LEN * 2] = "";
    if (s->voice.speaker) {
        size_t i = 0;
        for (; s->voice.speaker[i] && i + 1 < sizeof spk; i++) spk[i] = (char)tolower((unsigned char)s->voice.speaker[i]);
        spk[i] = 0;
    }
    h = h_str(h, s->voice.speaker ? spk : NULL);
    h = h_str(h, s->voice.instruct);
    h = h_str(h, s->voice.ref_audio);
    h = h_str(h, s->voice.ref_text);
    h = h_str(h, p->language);
    h = h_u64(h, p->seed);
    h = h_u64(h, p->greedy);
    h = h_f32(h, p->temperature);
    h = h_u64(h, (uint64_t)p->top_k);
    h = h_f32(h, p->top_p);
    h = h_f32(h, p->repetition_penalty);
    h = h_f32(h, p->subtalker_temperature);
    h = h_u64(h, (uint64_t)p->subtalker_top_k);
    h = h_f32(h, p->subtalker_top_p);
    h = h_u64(h, (uint64_t)p->max_frames_per_token);
    h = h_u64(h, (uint64_t)p->max_tokens_per_utterance);
    h = h_u64(h, p->non_streaming_text);
    it->codes_hash = h;
    h = h_u64(h, (uint64_t)p->pause_sentence_ms);
    h = h_u64(h, (uint64_t)p->pause_paragraph_ms);
    it->audio_hash = h;
}

/* ---- the document ---- */

static const char *const TOP_KEYS[] = {"model", "output", "defaults", "sessions"};
static const char *const OUTPUT_KEYS[] = {"dir", "format", "concat_sessions"};
static const char *const SESSION_KEYS[] = {"id", "voice", "overrides", "items"};
static const char *const VOICE_KEYS[] = {"speaker", "instruct", "reference"};
static const char *const REF_KEYS[] = {"audio", "text"};
static const char *const ITEM_KEYS[] = {"id", "text", "text_file", "output"};
#define NK(a) ((int)(sizeof a / sizeof a[0]))

static void parse_voice(ectx *e, const cJSON *v, const char *path, const char *base, const qtts_model_config *cfg,
                        qtts_job_voice *out) {
    check_keys(e, v, path, VOICE_KEYS, NK(VOICE_KEYS));
    char kp[PATH_LEN];
    const char *spk = get_str(e, v, path, "speaker", false);
    const char *ins = get_str(e, v, path, "instruct", false);
    const cJSON *ref = get_typed(e, v, path, "reference", false, cJSON_IsObject, "an object");
    bool has_spk = cJSON_GetObjectItemCaseSensitive(v, "speaker") != NULL;
    bool has_ins = cJSON_GetObjectItemCaseSensitive(v, "instruct") != NULL;
    bool has_ref = cJSON_GetObjectItemCaseSensitive(v, "reference") != NULL;
    if (ins) {
        path_key(kp, path, "instruct");
        if (text_ok(e, kp, "instruct", ins, strlen(ins))) out->instruct = xstrdup(e, ins);
    }
    if (has_ref) {
        path_key(kp, path, "reference");
        out->kind = QTTS_JOB_VOICE_REFERENCE;
        if (ref) {
            check_keys(e, ref, kp, REF_KEYS, NK(REF_KEYS));
            const char *a = get_str(e, ref, kp, "audio", true);
            const char *t = get_str(e, ref, kp, "text", true);
            if (a) out->ref_audio = resolve_path(e, base, a);
            if (t) out->ref_text = xstrdup(e, t);
        }
        if (has_spk || has_ins) jerr(e, kp, "give either \"reference\" or \"speaker\"/\"instruct\", not both");
        jerr(e, kp, "voice cloning from reference audio is not supported yet");
        return;
    }
    if (has_spk) {
        out->kind = QTTS_JOB_VOICE_SPEAKER;
        path_key(kp, path, "speaker");
        if (!spk) return;
        if (!*spk) {
            jerr(e, kp, "empty speaker name");
            return;
        }
        if (cfg && cfg->variant != QTTS_VARIANT_CUSTOM_VOICE) {
            jerr(e, kp, "this model is %s, which has no built-in speakers (a CustomVoice model does)",
                 qtts_variant_name(cfg->variant));
            return;
        }
        if (cfg) {
            const qtts_named_id *s = qtts_config_speaker(cfg, spk);
            if (!s) {
                char valid[768] = "";
                for (int i = 0; i < cfg->n_speakers; i++)
                    snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "",
                             cfg->speakers[i].name);
                jerr(e, kp, "unknown speaker \"%.64s\" (valid: %s)", spk, valid);
                return;
            }
            out->speaker = xstrdup(e, s->name);
        } else {
            out->speaker = xstrdup(e, spk);
            if (out->speaker)
                for (char *c = out->speaker; *c; c++) *c = (char)tolower((unsigned char)*c);
        }
        return;
    }
    if (has_ins) {
        out->kind = QTTS_JOB_VOICE_INSTRUCT;
        if (cfg && cfg->variant != QTTS_VARIANT_VOICE_DESIGN)
            jerr(e, path, "a voice described by \"instruct\" alone needs a VoiceDesign model; this model is %s%s",
                 qtts_variant_name(cfg->variant),
                 cfg->variant == QTTS_VARIANT_CUSTOM_VOICE ? " (add a \"speaker\")" : "");
        return;
    }
    jerr(e, path, "needs \"speaker\" (CustomVoice) or \"instruct\" (VoiceDesign)");
}

static void parse_item(ectx *e, const cJSON *v, const char *path, const qtts_job *job, qtts_job_item *it) {
    check_keys(e, v, path, ITEM_KEYS, NK(ITEM_KEYS));
    char kp[PATH_LEN];
    const char *id = get_str(e, v, path, "id", true);
    if (id) {
        path_key(kp, path, "id");
        if (!id_ok(id))
            jerr(e, kp, "invalid id \"%.64s\" (letters, digits, '.', '_', '-'; at most %d; not starting with '.' or '-')",
                 id, MAX_ID_LEN);
        else it->id = xstrdup(e, id);
    }
    bool has_text = cJSON_GetObjectItemCaseSensitive(v, "text") != NULL;
    bool has_file = cJSON_GetObjectItemCaseSensitive(v, "text_file") != NULL;
    const char *text = get_str(e, v, path, "text", false);
    const char *file = get_str(e, v, path, "text_file", false);
    if (has_text && has_file) jerr(e, path, "give either \"text\" or \"text_file\", not both");
    else if (!has_text && !has_file) jerr(e, path, "missing \"text\" or \"text_file\" (one is required)");
    else if (text) {
        path_key(kp, path, "text");
        if (text_ok(e, kp, "text", text, strlen(text))) it->text = xstrdup(e, text);
    } else if (file) {
        path_key(kp, path, "text_file");
        if (!*file) jerr(e, kp, "empty file name");
        else {
            it->text_file = resolve_path(e, job->base_dir, file);
            if (it->text_file) it->text = load_text_file(e, kp, it->text_file);
        }
    }
    const char *out = get_str(e, v, path, "output", false);
    if (out) {
        path_key(kp, path, "output");
        it->output = make_output(e, kp, out, job->format);
    }
}

static void free_voice(qtts_job_voice *v) {
    free(v->speaker);
    free(v->instruct);
    free(v->ref_audio);
    free(v->ref_text);
}

void qtts_job_free(qtts_job *job) {
    if (!job) return;
    for (int s = 0; s < job->n_sessions; s++) {
        qtts_job_session *ss = &job->sessions[s];
        for (int i = 0; i < ss->n_items; i++) {
            qtts_job_item *it = &ss->items[i];
            free(it->id);
            free(it->text);
            free(it->text_file);
            free(it->output);
        }
        free(ss->items);
        free(ss->id);
        free(ss->output);
        free_voice(&ss->voice);
    }
    free(job->sessions);
    free(job->path);
    free(job->base_dir);
    free(job->model);
    free(job->output_dir);
    free(job);
}

static void parse_doc(ectx *e, const cJSON *root, const qtts_model_config *cfg, const qtts_gen_config *gen, qtts_job *job) {
    if (!cJSON_IsObject(root)) {
        jerr(e, "", "expected a JSON object, got %s", type_name(root));
        return;
    }
    check_keys(e, root, "", TOP_KEYS, NK(TOP_KEYS));
    const char *model = get_str(e, root, "", "model", true);
    if (model) {
        if (!*model) jerr(e, "model", "empty model folder");
        else job->model = resolve_path(e, job->base_dir, model);
    }
    const cJSON *out = get_typed(e, root, "", "output", true, cJSON_IsObject, "an object");
    if (out) {
        check_keys(e, out, "output", OUTPUT_KEYS, NK(OUTPUT_KEYS));
        const char *dir = get_str(e, out, "output", "dir", true);
        if (dir) {
            if (!*dir) jerr(e, "output.dir", "empty folder name");
            else job->output_dir = resolve_path(e, job->base_dir, dir);
        }
        const char *fmt = get_str(e, out, "output", "format", false);
        if (fmt) {
            if (!strcmp(fmt, "wav")) job->format = QTTS_AUDIO_WAV;
            else if (!strcmp(fmt, "flac")) job->format = QTTS_AUDIO_FLAC;
            else if (!strcmp(fmt, "ogg")) job->format = QTTS_AUDIO_OGG;
            else jerr(e, "output.format", "unknown format \"%.32s\" (valid: wav, flac, ogg)", fmt);
        }
        get_bool(e, out, "output", "concat_sessions", &job->concat_sessions);
    }
    qtts_job_default_params(&job->defaults, gen);
    const cJSON *defs = get_typed(e, root, "", "defaults", false, cJSON_IsObject, "an object");
    if (defs) parse_params(e, defs, "defaults", cfg, &job->defaults);

    const cJSON *sessions = get_typed(e, root, "", "sessions", true, cJSON_IsArray, "an array");
    if (!sessions) return;
    int ns = cJSON_GetArraySize(sessions);
    if (ns == 0) {
        jerr(e, "sessions", "no sessions");
        return;
    }
    job->sessions = calloc((size_t)ns, sizeof *job->sessions);
    if (!job->sessions) {
        e->oom = true;
        return;
    }
    job->n_sessions = ns;
    int si = 0;
    char sp[PATH_LEN], kp[PATH_LEN];
    for (const cJSON *sv = sessions->child; sv; sv = sv->next, si++) {
        qtts_job_session *s = &job->sessions[si];
        path_index(sp, "sessions", si);
        s->params = job->defaults;
        if (!cJSON_IsObject(sv)) {
            jerr(e, sp, "expected an object, got %s", type_name(sv));
            continue;
        }
        check_keys(e, sv, sp, SESSION_KEYS, NK(SESSION_KEYS));
        const char *id = get_str(e, sv, sp, "id", true);
        if (id) {
            path_key(kp, sp, "id");
            if (!id_ok(id))
                jerr(e, kp, "invalid id \"%.64s\" (letters, digits, '.', '_', '-'; at most %d; not starting with '.' or '-')",
                     id, MAX_ID_LEN);
            else s->id = xstrdup(e, id);
        }
        const cJSON *voice = get_typed(e, sv, sp, "voice", true, cJSON_IsObject, "an object");
        path_key(kp, sp, "voice");
        if (voice) parse_voice(e, voice, kp, job->base_dir, cfg, &s->voice);
        const cJSON *ov = get_typed(e, sv, sp, "overrides", false, cJSON_IsObject, "an object");
        path_key(kp, sp, "overrides");
        if (ov) parse_params(e, ov, kp, cfg, &s->params);
        const cJSON *items = get_typed(e, sv, sp, "items", true, cJSON_IsArray, "an array");
        if (!items) continue;
        int ni = cJSON_GetArraySize(items);
        path_key(kp, sp, "items");
        if (ni == 0) {
            jerr(e, kp, "no items");
            continue;
        }
        s->items = calloc((size_t)ni, sizeof *s->items);
        if (!s->items) {
            e->oom = true;
            return;
        }
        s->n_items = ni;
        job->n_items_total += ni;
        int ii = 0;
        char ip[PATH_LEN];
        for (const cJSON *iv = items->child; iv; iv = iv->next, ii++) {
            path_index(ip, kp, ii);
            s->items[ii].params = s->params;
            if (!cJSON_IsObject(iv)) {
                jerr(e, ip, "expected an object, got %s", type_name(iv));
                continue;
            }
            parse_item(e, iv, ip, job, &s->items[ii]);
        }
        if (e->oom) return;
    }
}

/* Ids unique (sessions per job, items per session; case-insensitive, as they become file names),
 * output names pairwise distinct, default names filled in. */
static void check_names(ectx *e, qtts_job *job) {
    named *v = calloc((size_t)job->n_sessions, sizeof *v);
    int n = 0;
    if (!v) {
        e->oom = true;
        return;
    }
    for (int s = 0; s < job->n_sessions; s++)
        if (job->sessions[s].id) {
            char p[PATH_LEN];
            snprintf(p, sizeof p, "sessions[%d].id", s);
            v[n] = (named){job->sessions[s].id, xstrdup(e, p), s};
            n++;
        }
    report_dups(e, v, n, "session id");
    for (int i = 0; i < n; i++) free(v[i].where);
    free(v);

    for (int s = 0; s < job->n_sessions; s++) {
        qtts_job_session *ss = &job->sessions[s];
        v = calloc((size_t)ss->n_items + 1, sizeof *v);
        if (!v) {
            e->oom = true;
            return;
        }
        n = 0;
        for (int i = 0; i < ss->n_items; i++)
            if (ss->items[i].id) {
                char p[PATH_LEN];
                snprintf(p, sizeof p, "sessions[%d].items[%d].id", s, i);
                v[n] = (named){ss->items[i].id, xstrdup(e, p), i};
                n++;
            }
        report_dups(e, v, n, "item id");
        for (int i = 0; i < n; i++) free(v[i].where);
        free(v);
    }
    if (e->total) return; /* default names need valid, unique ids */

    /* default names: <session>/<item>.<ext>; concat: <session>.<ext> */
    const char *ext = qtts_audio_format_ext(job->format);
    int total = job->n_items_total + job->n_sessions;
    v = calloc((size_t)total, sizeof *v);
    if (!v) {
        e->oom = true;
        return;
    }
    n = 0;
    for (int s = 0; s < job->n_sessions; s++) {
        qtts_job_session *ss = &job->sessions[s];
        char p[PATH_LEN];
        if (job->concat_sessions) {
            size_t cap = strlen(ss->id) + strlen(ext) + 2;
            ss->output = malloc(cap);
            if (!ss->output) {
                e->oom = true;
                break;
            }
            snprintf(ss->output, cap, "%s.%s", ss->id, ext);
            snprintf(p, sizeof p, "sessions[%d] (concatenated session file)", s);
            v[n] = (named){ss->output, xstrdup(e, p), n};
            n++;
        }
        for (int i = 0; i < ss->n_items; i++) {
            qtts_job_item *it = &ss->items[i];
            if (!it->output) {
                size_t cap = strlen(ss->id) + strlen(it->id) + strlen(ext) + 3;
                it->output = malloc(cap);
                if (!it->output) {
                    e->oom = true;
                    break;
                }
                snprintf(it->output, cap, "%s/%s.%s", ss->id, it->id, ext);
                snprintf(p, sizeof p, "sessions[%d].items[%d] (default output)", s, i);
            } else {
                snprintf(p, sizeof p, "sessions[%d].items[%d].output", s, i);
            }
            v[n] = (named){it->output, xstrdup(e, p), n};
            n++;
        }
    }
    report_dups(e, v, n, "output name");
    for (int i = 0; i < n; i++) free(v[i].where);
    free(v);
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

qtts_status qtts_job_parse(const char *json, size_t len, const char *name, const char *base_dir,
                           const qtts_model_config *cfg, const qtts_gen_config *gen, qtts_job **out,
                           qtts_job_errors *errors, qtts_err *err) {
    *out = NULL;
    if (errors) *errors = (qtts_job_errors){0};
    if (!name) name = "<buffer>";
    ectx e = {0};
    qtts_job *job = calloc(1, sizeof *job);
    if (!job) return qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory", name);
    job->path = strdup(name);
    job->base_dir = strdup(base_dir ? base_dir : ".");
    if (!job->path || !job->base_dir) e.oom = true;

    const char *end = NULL;
    cJSON *root = e.oom ? NULL : cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!e.oom && !root) {
        /* cJSON reports where it stopped; give line and column */
        const char *stop = cJSON_GetErrorPtr();
        size_t off = (stop && stop >= json && stop <= json + len) ? (size_t)(stop - json) : 0;
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (json[i] == '\n') line++, col = 1;
            else col++;
        }
        jerr(&e, "", "not valid JSON (near line %d, column %d)", line, col);
    } else if (root) {
        parse_doc(&e, root, cfg, gen, job);
        if (!e.total && !e.oom) check_names(&e, job);
        if (!e.total && !e.oom)
            for (int s = 0; s < job->n_sessions; s++)
                for (int i = 0; i < job->sessions[s].n_items; i++) hash_item(&job->sessions[s], &job->sessions[s].items[i]);
    }
    cJSON_Delete(root);

    qtts_status st = QTTS_OK;
    if (e.oom) {
        st = qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory while reading the job", name);
    } else if (e.total) {
        if (e.total > e.list.n) {
            char more[64];
            snprintf(more, sizeof more, "... and %d more errors", e.total - e.list.n);
            push_msg(&e, more);
        }
        st = qtts_fail(err, QTTS_ERR_JOB, "%s: %d error%s; first: %s", name, e.total, e.total == 1 ? "" : "s",
                       e.list.n ? e.list.msg[0] : "?");
    }
    if (st != QTTS_OK) {
        qtts_job_free(job);
        if (errors) *errors = e.list;
        else qtts_job_errors_free(&e.list);
        return st;
    }
    qtts_job_errors_free(&e.list);
    *out = job;
    return QTTS_OK;
}

qtts_status qtts_job_load(const char *path, const qtts_model_config *cfg, const qtts_gen_config *gen, qtts_job **out,
                          qtts_job_errors *errors, qtts_err *err) {
    *out = NULL;
    if (errors) *errors = (qtts_job_errors){0};
    char *data = NULL;
    size_t n = 0;
    qtts_status st = qtts_read_file(path, &data, &n, err);
    if (st != QTTS_OK) return st;
    char *base = dir_of(path);
    if (!base) {
        free(data);
        return qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory", path);
    }
    st = qtts_job_parse(data, n, path, base, cfg, gen, out, errors, err);
    free(base);
    free(data);
    return st;
}
