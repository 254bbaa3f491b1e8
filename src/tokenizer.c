/* Qwen2 byte-level BPE tokenizer (see tokenizer.h for the pipeline). Tokens are stored as
 * raw bytes (the GPT-2 byte↔unicode mapping is undone at load), merges as a hash map
 * (left id, right id) → (rank, merged id); BPE runs on a linked list of symbols with a
 * min-heap of candidate merges ordered by (rank, position), the order `tokenizers` uses. */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct added_token {
    char *content; /* raw bytes, NUL-terminated */
    size_t len;
    int32_t id;
    bool lstrip, rstrip, normalized, single_word;
} added_token;

struct qtts_tokenizer {
    int n_vocab;          /* largest id + 1 */
    uint32_t *tok_off;    /* [n_vocab] offset into pool, UINT32_MAX = no token with this id */
    uint32_t *tok_len;    /* [n_vocab] */
    char *pool;           /* token bytes, back to back */
    size_t pool_len, pool_cap;
    int32_t *vmap;        /* [vmap_mask+1] open-addressed bytes → id, -1 empty */
    uint32_t vmap_mask;
    uint64_t *mkey;       /* [mmask+1] (left << 32 | right), UINT64_MAX empty */
    int32_t *mrank, *mnew;/* [mmask+1] rank (line index) and merged id */
    uint32_t mmask;
    int32_t byte_id[256]; /* id of each single byte token */
    int n_added;
    added_token *added;
    bool mistral_split; /* pre-tokenize with the pattern of transformers' fix_mistral_regex */
};

/* ---- GPT-2 byte ↔ unicode mapping ---- */

/* Printable bytes stand for themselves; the other 68 are shifted to U+0100.. in byte order,
 * so token strings in vocab/merges never contain spaces or control characters. */
static void byte_unicode_tables(uint32_t b2u[256], int16_t *u2b /* [324] */) {
    int extra = 0;
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
        u2b[b2u[b]] = (int16_t)b;
    }
}

/* Decode a vocab string (UTF-8 of mapped code points) into raw bytes; out has room for len. */
static bool unmap_token(const int16_t *u2b, const char *s, size_t len, char *out, size_t *out_len) {
    size_t o = 0;
    utf8proc_ssize_t i = 0;
    while ((size_t)i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)len - i, &cp);
        if (k <= 0 || cp < 0 || cp >= 324 || u2b[cp] < 0) return false;
        out[o++] = (char)u2b[cp];
        i += k;
    }
    *out_len = o;
    return true;
}

/* ---- hashing ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint32_t hash_pair(uint64_t key) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32); }

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 1024;
    while (c < n) c <<= 1;
    return c;
}

static int32_t vmap_find(const qtts_tokenizer *t, const char *s, size_t n) {
    for (uint32_t h = (uint32_t)hash_bytes(s, n) & t->vmap_mask;; h = (h + 1) & t->vmap_mask) {
        int32_t id = t->vmap[h];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && !memcmp(t->pool + t->tok_off[id], s, n)) return id;
    }
}

static bool merge_find(const qtts_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *newid) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint32_t h = hash_pair(key) & t->mmask;; h = (h + 1) & t->mmask) {
        if (t->mkey[h] == UINT64_MAX) return false;
        if (t->mkey[h] == key) {
            *rank = t->mrank[h];
            *newid = t->mnew[h];
            return true;
        }
    }
}

/* ---- loading ---- */

static qtts_status pool_add(qtts_tokenizer *t, int32_t id, const char *s, size_t n, qtts_err *err) {
    if (id < 0 || id >= t->n_vocab) return qtts_fail(err, QTTS_ERR_FORMAT, "token id %d out of range", id);
    if (t->pool_len + n > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap * 2 : 1 << 20;
        while (cap < t->pool_len + n) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return qtts_fail(err, QTTS_ERR_OOM, "tokenizer: token pool (%zu bytes)", cap);
        t->pool = p;
        t->pool_cap = cap;
    }
    if (t->pool_len + n > UINT32_MAX) return qtts_fail(err, QTTS_ERR_FORMAT, "tokenizer: vocabulary too large");
    memcpy(t->pool + t->pool_len, s, n);
    t->tok_off[id] = (uint32_t)t->pool_len;
    t->tok_len[id] = (uint32_t)n;
    t->pool_len += n;
    return QTTS_OK;
}

/* Largest id among the vocab object and the added tokens, to size the id tables. */
static int max_id_of(const cJSON *vocab, const cJSON *added_cfg, const cJSON *added_list) {
    int m = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) if (cJSON_IsNumber(it) && it->valueint > m) m = it->valueint;
    cJSON_ArrayForEach(it, added_cfg) {
        char *end;
        long v = strtol(it->string, &end, 10);
        if (*end == 0 && v > m && v < INT32_MAX) m = (int)v;
    }
    cJSON_ArrayForEach(it, added_list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsNumber(id) && id->valueint > m) m = id->valueint;
    }
    return m;
}

static bool json_flag(const cJSON *o, const char *k) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k)); }

static qtts_status add_added(qtts_tokenizer *t, const char *src, int32_t id, const cJSON *o, qtts_err *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
    if (!cJSON_IsString(c) || !c->valuestring[0])
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: added token %d: missing content", src, id);
    if (id < 0 || id >= t->n_vocab) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: added token id %d out of range", src, id);
    size_t n = strlen(c->valuestring);
    if (qtts_utf8_find_invalid(c->valuestring, n) != n)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: added token %d: content is not valid UTF-8", src, id);
    added_token *a = &t->added[t->n_added];
    a->content = strdup(c->valuestring);
    if (!a->content) return qtts_fail(err, QTTS_ERR_OOM, "%s: added token", src);
    a->len = n;
    a->id = id;
    a->lstrip = json_flag(o, "lstrip");
    a->rstrip = json_flag(o, "rstrip");
    a->single_word = json_flag(o, "single_word");
    /* Missing "normalized" means true for ordinary added tokens and false for special
     * ones in `tokenizers`; Qwen files always spell it out. */
    const cJSON *nz = cJSON_GetObjectItemCaseSensitive(o, "normalized");
    a->normalized = nz ? cJSON_IsTrue(nz) : !json_flag(o, "special");
    t->n_added++;
    /* An added token that is also a regular token keeps the regular bytes (same text). */
    if (t->tok_off[id] == UINT32_MAX) return pool_add(t, id, a->content, n, err);
    return QTTS_OK;
}

static qtts_status parse_merge_line(qtts_tokenizer *t, const int16_t *u2b, const char *a, size_t na,
                                    const char *b, size_t nb, int rank, char *scratch, const char *src,
                                    qtts_err *err) {
    size_t la, lb;
    if (!unmap_token(u2b, a, na, scratch, &la) || !unmap_token(u2b, b, nb, scratch + la, &lb))
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: merge %d: not a byte-level token", src, rank + 1);
    int32_t ia = vmap_find(t, scratch, la), ib = vmap_find(t, scratch + la, lb), im = vmap_find(t, scratch, la + lb);
    if (ia < 0 || ib < 0 || im < 0)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: merge %d (\"%.*s %.*s\"): token not in the vocabulary", src,
                         rank + 1, (int)na, a, (int)nb, b);
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    for (uint32_t h = hash_pair(key) & t->mmask;; h = (h + 1) & t->mmask) {
        if (t->mkey[h] == key) return QTTS_OK; /* duplicate merge: the first (lowest rank) wins */
        if (t->mkey[h] == UINT64_MAX) {
            t->mkey[h] = key;
            t->mrank[h] = rank;
            t->mnew[h] = im;
            return QTTS_OK;
        }
    }
}

static qtts_status alloc_merges(qtts_tokenizer *t, size_t n, qtts_err *err) {
    uint32_t cap = pow2_at_least(n * 2 + 1);
    t->mmask = cap - 1;
    t->mkey = qtts_malloc(cap * sizeof *t->mkey, err, "tokenizer merges");
    t->mrank = qtts_malloc(cap * sizeof *t->mrank, err, "tokenizer merges");
    t->mnew = qtts_malloc(cap * sizeof *t->mnew, err, "tokenizer merges");
    if (!t->mkey || !t->mrank || !t->mnew) return QTTS_ERR_OOM;
    memset(t->mkey, 0xff, cap * sizeof *t->mkey);
    return QTTS_OK;
}

/* "4.57.3" → 4057003; missing parts count as 0. */
static long version_num(const char *v) {
    long part[3] = {0, 0, 0};
    for (int i = 0; i < 3 && *v; i++) {
        part[i] = strtol(v, (char **)&v, 10);
        if (*v != '.') break;
        v++;
    }
    return part[0] * 1000000 + part[1] * 1000 + part[2];
}

/* transformers 4.57.3 PreTrainedTokenizerBase._patch_mistral_regex with fix_mistral_regex=True
 * (what the official processor passes) for a local folder: no config.json → unchanged; a
 * config.json whose transformers_version is <= 4.57.2 with a non-Mistral model_type, or
 * >= 5.0.0 → unchanged; anything else (the released Qwen3-TTS configs say 4.57.3) → the
 * pre-tokenizer pattern is replaced. */
static qtts_status detect_mistral_split(const char *dir, bool *on, qtts_err *err) {
    qtts_status st = QTTS_OK;
    char path[4096], *txt = NULL;
    size_t n;
    cJSON *doc = NULL;
    *on = false;
    QTTS_TRY(qtts_path_join(path, sizeof path, dir, "config.json", err));
    if (!qtts_file_exists(path)) return QTTS_OK;
    QTTS_TRY(qtts_read_file(path, &txt, &n, err));
    doc = cJSON_ParseWithLength(txt, n);
    QTTS_CHECK(cJSON_IsObject(doc), err, QTTS_ERR_FORMAT, "%s: not a JSON object", path);
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(doc, "transformers_version");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(doc, "model_type");
    const char *ver = cJSON_IsString(tv) && tv->valuestring[0] ? tv->valuestring : NULL;
    const char *type = cJSON_IsString(mt) ? mt->valuestring : NULL;
    static const char *const mistral[] = {"mistral", "mistral3", "voxtral", "ministral", "pixtral"};
    bool is_mistral = false;
    for (size_t i = 0; type && i < sizeof mistral / sizeof *mistral; i++) is_mistral |= !strcmp(type, mistral[i]);
    if (ver && version_num(ver) <= version_num("4.57.2")) *on = !type || is_mistral;
    else if (ver && version_num(ver) >= version_num("5.0.0")) *on = false;
    else *on = true;
cleanup:
    cJSON_Delete(doc);
    free(txt);
    return st;
}

qtts_status qtts_tokenizer_load(qtts_tokenizer **out, const char *dir, qtts_err *err) {
    return qtts_tokenizer_load_with(out, dir, QTTS_PRETOK_AUTO, err);
}

qtts_pretok qtts_tokenizer_pretok(const qtts_tokenizer *t) {
    return t && t->mistral_split ? QTTS_PRETOK_MISTRAL_FIX : QTTS_PRETOK_QWEN2;
}

qtts_status qtts_tokenizer_load_with(qtts_tokenizer **out, const char *dir, qtts_pretok pretok, qtts_err *err) {
    qtts_status st = QTTS_OK;
    char path[4096];
    char *vocab_txt = NULL, *merges_txt = NULL, *cfg_txt = NULL, *tj_txt = NULL;
    size_t vocab_n = 0, merges_n = 0, cfg_n = 0, tj_n = 0;
    cJSON *vocab_doc = NULL, *cfg_doc = NULL, *tj_doc = NULL;
    char *scratch = NULL;
    const cJSON *vocab = NULL, *merges_arr = NULL, *added_cfg = NULL, *added_list = NULL;
    const char *vocab_src = "vocab.json", *merges_src = "merges.txt";
    uint32_t b2u[256];
    int16_t u2b[324];
    *out = NULL;
    byte_unicode_tables(b2u, u2b);

    qtts_tokenizer *t = qtts_calloc(1, sizeof *t, err, "tokenizer");
    if (!t) return QTTS_ERR_OOM;

    QTTS_TRY(qtts_path_join(path, sizeof path, dir, "vocab.json", err));
    if (qtts_file_exists(path)) {
        QTTS_TRY(qtts_read_file(path, &vocab_txt, &vocab_n, err));
        vocab_doc = cJSON_ParseWithLength(vocab_txt, vocab_n);
        QTTS_CHECK(cJSON_IsObject(vocab_doc), err, QTTS_ERR_FORMAT, "%s: not a JSON object", path);
        vocab = vocab_doc;
        QTTS_TRY(qtts_path_join(path, sizeof path, dir, "merges.txt", err));
        QTTS_TRY(qtts_read_file(path, &merges_txt, &merges_n, err));
    } else {
        QTTS_TRY(qtts_path_join(path, sizeof path, dir, "tokenizer.json", err));
        QTTS_CHECK(qtts_file_exists(path), err, QTTS_ERR_MISSING, "%s: neither vocab.json nor tokenizer.json", dir);
        QTTS_TRY(qtts_read_file(path, &tj_txt, &tj_n, err));
        tj_doc = cJSON_ParseWithLength(tj_txt, tj_n);
        QTTS_CHECK(cJSON_IsObject(tj_doc), err, QTTS_ERR_FORMAT, "%s: not a JSON object", path);
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj_doc, "model");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
        QTTS_CHECK(!type || (cJSON_IsString(type) && !strcmp(type->valuestring, "BPE")), err, QTTS_ERR_UNSUPPORTED,
                   "%s: model.type is not BPE", path);
        vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
        merges_arr = cJSON_GetObjectItemCaseSensitive(model, "merges");
        QTTS_CHECK(cJSON_IsObject(vocab), err, QTTS_ERR_FORMAT, "%s: model.vocab missing", path);
        QTTS_CHECK(cJSON_IsArray(merges_arr), err, QTTS_ERR_FORMAT, "%s: model.merges missing", path);
        added_list = cJSON_GetObjectItemCaseSensitive(tj_doc, "added_tokens");
        vocab_src = merges_src = "tokenizer.json";
    }
    QTTS_TRY(qtts_path_join(path, sizeof path, dir, "tokenizer_config.json", err));
    if (qtts_file_exists(path)) {
        QTTS_TRY(qtts_read_file(path, &cfg_txt, &cfg_n, err));
        cfg_doc = cJSON_ParseWithLength(cfg_txt, cfg_n);
        QTTS_CHECK(cJSON_IsObject(cfg_doc), err, QTTS_ERR_FORMAT, "%s: not a JSON object", path);
        added_cfg = cJSON_GetObjectItemCaseSensitive(cfg_doc, "added_tokens_decoder");
        if (added_cfg) added_list = NULL; /* one source of added tokens: the config wins */
    }

    int max_id = max_id_of(vocab, added_cfg, added_list);
    QTTS_CHECK(max_id >= 255, err, QTTS_ERR_FORMAT, "%s: vocabulary has fewer than 256 tokens", vocab_src);
    t->n_vocab = max_id + 1;
    t->tok_off = qtts_malloc((size_t)t->n_vocab * sizeof *t->tok_off, err, "tokenizer ids");
    t->tok_len = qtts_calloc((size_t)t->n_vocab, sizeof *t->tok_len, err, "tokenizer ids");
    QTTS_CHECK(t->tok_off && t->tok_len, err, QTTS_ERR_OOM, "tokenizer ids");
    memset(t->tok_off, 0xff, (size_t)t->n_vocab * sizeof *t->tok_off);

    /* Regular tokens: unmap to raw bytes. */
    scratch = qtts_malloc(1 << 16, err, "tokenizer scratch");
    QTTS_CHECK(scratch, err, QTTS_ERR_OOM, "tokenizer scratch");
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        size_t kl = strlen(it->string), bl;
        QTTS_CHECK(cJSON_IsNumber(it) && kl < (1 << 15), err, QTTS_ERR_FORMAT, "%s: entry \"%.64s\": bad", vocab_src,
                   it->string);
        QTTS_CHECK(unmap_token(u2b, it->string, kl, scratch, &bl), err, QTTS_ERR_FORMAT,
                   "%s: entry \"%.64s\" is not a byte-level token", vocab_src, it->string);
        QTTS_TRY(pool_add(t, it->valueint, scratch, bl, err));
    }
    /* Added tokens. */
    int n_added_max = cJSON_GetArraySize(added_cfg) + cJSON_GetArraySize(added_list);
    t->added = qtts_calloc((size_t)n_added_max + 1, sizeof *t->added, err, "tokenizer added tokens");
    QTTS_CHECK(t->added, err, QTTS_ERR_OOM, "tokenizer added tokens");
    cJSON_ArrayForEach(it, added_cfg) {
        char *end;
        long id = strtol(it->string, &end, 10);
        QTTS_CHECK(*end == 0 && end != it->string, err, QTTS_ERR_FORMAT,
                   "tokenizer_config.json: added_tokens_decoder key \"%.32s\" is not an id", it->string);
        QTTS_TRY(add_added(t, "tokenizer_config.json", (int32_t)id, it, err));
    }
    cJSON_ArrayForEach(it, added_list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        QTTS_CHECK(cJSON_IsNumber(id), err, QTTS_ERR_FORMAT, "tokenizer.json: added_tokens: entry without id");
        QTTS_TRY(add_added(t, "tokenizer.json", id->valueint, it, err));
    }

    /* bytes → id map over every token that has bytes. */
    t->vmap_mask = pow2_at_least((size_t)t->n_vocab * 2) - 1;
    t->vmap = qtts_malloc(((size_t)t->vmap_mask + 1) * sizeof *t->vmap, err, "tokenizer vocab map");
    QTTS_CHECK(t->vmap, err, QTTS_ERR_OOM, "tokenizer vocab map");
    memset(t->vmap, 0xff, ((size_t)t->vmap_mask + 1) * sizeof *t->vmap);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->tok_off[id] == UINT32_MAX) continue;
        const char *s = t->pool + t->tok_off[id];
        uint32_t h = (uint32_t)hash_bytes(s, t->tok_len[id]) & t->vmap_mask;
        bool dup = false;
        for (; t->vmap[h] >= 0; h = (h + 1) & t->vmap_mask) {
            int32_t o = t->vmap[h];
            if (t->tok_len[o] == t->tok_len[id] && !memcmp(t->pool + t->tok_off[o], s, t->tok_len[id])) {
                dup = true; /* same bytes under two ids: lookups give the lower id */
                break;
            }
        }
        if (!dup) t->vmap[h] = id;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = vmap_find(t, &c, 1);
        QTTS_CHECK(t->byte_id[b] >= 0, err, QTTS_ERR_FORMAT, "%s: no token for byte 0x%02x", vocab_src, b);
    }

    /* Merges: rank = order of appearance. */
    if (merges_txt) {
        size_t lines = 1;
        for (size_t i = 0; i < merges_n; i++) lines += merges_txt[i] == '\n';
        QTTS_TRY(alloc_merges(t, lines, err));
        int rank = 0, lineno = 0;
        for (char *p = merges_txt, *end = merges_txt + merges_n; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char *le = nl ? nl : end;
            lineno++;
            size_t ll = (size_t)(le - p);
            if (ll && p[ll - 1] == '\r') ll--;
            if (ll && !(lineno == 1 && !strncmp(p, "#version", 8))) {
                char *sp = memchr(p, ' ', ll);
                QTTS_CHECK(sp && sp > p && sp + 1 < p + ll && !memchr(sp + 1, ' ', (size_t)(p + ll - sp - 1)), err,
                           QTTS_ERR_FORMAT, "%s: line %d: expected two tokens separated by one space", merges_src,
                           lineno);
                QTTS_CHECK(ll < (1 << 15), err, QTTS_ERR_FORMAT, "%s: line %d too long", merges_src, lineno);
                QTTS_TRY(parse_merge_line(t, u2b, p, (size_t)(sp - p), sp + 1, (size_t)(p + ll - sp - 1), rank,
                                          scratch, merges_src, err));
                rank++;
            }
            p = le + 1;
        }
    } else {
        QTTS_TRY(alloc_merges(t, (size_t)cJSON_GetArraySize(merges_arr), err));
        int rank = 0;
        cJSON_ArrayForEach(it, merges_arr) {
            const char *a, *b;
            size_t na, nb;
            if (cJSON_IsString(it)) { /* "a b" (older files) */
                const char *sp = strchr(it->valuestring, ' ');
                QTTS_CHECK(sp, err, QTTS_ERR_FORMAT, "tokenizer.json: merge %d: expected \"a b\"", rank + 1);
                a = it->valuestring;
                na = (size_t)(sp - a);
                b = sp + 1;
                nb = strlen(b);
            } else { /* ["a", "b"] (tokenizers >= 0.20) */
                const cJSON *x = cJSON_GetArrayItem(it, 0), *y = cJSON_GetArrayItem(it, 1);
                QTTS_CHECK(cJSON_IsArray(it) && cJSON_IsString(x) && cJSON_IsString(y), err, QTTS_ERR_FORMAT,
                           "tokenizer.json: merge %d: expected a pair of strings", rank + 1);
                a = x->valuestring;
                na = strlen(a);
                b = y->valuestring;
                nb = strlen(b);
            }
            QTTS_CHECK(na + nb < (1 << 15), err, QTTS_ERR_FORMAT, "tokenizer.json: merge %d too long", rank + 1);
            QTTS_TRY(parse_merge_line(t, u2b, a, na, b, nb, rank, scratch, merges_src, err));
            rank++;
        }
    }
    if (pretok == QTTS_PRETOK_AUTO) QTTS_TRY(detect_mistral_split(dir, &t->mistral_split, err));
    else t->mistral_split = pretok == QTTS_PRETOK_MISTRAL_FIX;
    *out = t;
    t = NULL;
cleanup:
    qtts_tokenizer_free(t);
    cJSON_Delete(vocab_doc);
    cJSON_Delete(cfg_doc);
    cJSON_Delete(tj_doc);
    free(vocab_txt);
    free(merges_txt);
    free(cfg_txt);
    free(tj_txt);
    free(scratch);
    return st;
}

void qtts_tokenizer_free(qtts_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->tok_off);
    free(t->tok_len);
    free(t->pool);
    free(t->vmap);
    free(t->mkey);
    free(t->mrank);
    free(t->mnew);
    free(t);
}

int qtts_tokenizer_token_id(const qtts_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    return vmap_find(t, token, strlen(token));
}

int qtts_tokenizer_n_vocab(const qtts_tokenizer *t) { return t ? t->n_vocab : 0; }

/* ---- UTF-8 ---- */

size_t qtts_utf8_find_invalid(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (len - i < n) return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return len;
}

/* Decode one code point of already validated UTF-8; returns its byte length. */
static inline int utf8_next(const uint8_t *s, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) return *cp = c, 1;
    if (c < 0xE0) return *cp = (uint32_t)(c & 0x1F) << 6 | (s[1] & 0x3F), 2;
    if (c < 0xF0) return *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F), 3;
    *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

/* ---- pre-tokenizer ---- */

/* Character classes of the Qwen2 split pattern. \s follows Oniguruma's Unicode definition
 * (U+0009..000D, U+0085, Zs, Zl, Zp), which is what `tokenizers` compiles the pattern with. */
enum { CL_OTHER = 0, CL_LETTER, CL_NUMBER, CL_SPACE, CL_NL /* \r \n, also \s */ };

static inline int char_class(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CL_LETTER;
        if (cp >= '0' && cp <= '9') return CL_NUMBER;
        if (cp == '\r' || cp == '\n') return CL_NL;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return CL_SPACE;
        return CL_OTHER;
    }
    if (cp == 0x85) return CL_SPACE;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CL_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CL_NUMBER;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
        return CL_SPACE;
    default:
        return CL_OTHER;
    }
}

static inline bool is_space(int cl) { return cl == CL_SPACE || cl == CL_NL; }

/* Length in characters of the pattern's match at i (chars [i, n) with classes cl/cps). The
 * alternatives are tried in the pattern's order; each is leftmost-first with greedy
 * quantifiers, so the backtracking cases reduce to the closed forms below. */
static int pretok_match(const uint32_t *cp, const uint8_t *cl, int i, int n) {
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (cp[i] == '\'' && i + 1 < n) {
        uint32_t a = cp[i + 1] | 0x20, b = i + 2 < n ? (cp[i + 2] | 0x20) : 0;
        if (cp[i + 1] < 0x80) {
            if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
            if (i + 2 < n && cp[i + 2] < 0x80 &&
                ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
                return 3;
        }
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    {
        int j = i;
        if (cl[j] != CL_LETTER && cl[j] != CL_NL && cl[j] != CL_NUMBER && j + 1 < n && cl[j + 1] == CL_LETTER) j++;
        if (cl[j] == CL_LETTER) {
            while (j < n && cl[j] == CL_LETTER) j++;
            return j - i;
        }
    }
    /* \p{N} */
    if (cl[i] == CL_NUMBER) return 1;
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    {
        int j = i;
        if (cp[j] == ' ' && j + 1 < n && cl[j + 1] == CL_OTHER) j++;
        if (cl[j] == CL_OTHER) {
            while (j < n && cl[j] == CL_OTHER) j++;
            while (j < n && cl[j] == CL_NL) j++;
            return j - i;
        }
    }
    /* The rest all start with whitespace; i is whitespace here. */
    int end = i;
    while (end < n && is_space(cl[end])) end++;
    /* \s*[\r\n]+ : greedy \s* backs off to the last newline of the run */
    for (int k = end - 1; k >= i; k--)
        if (cl[k] == CL_NL) return k + 1 - i;
    /* \s+(?!\S) : whole run at the end of text, else the run minus its last char */
    if (end == n) return end - i;
    if (end - i >= 2) return end - 1 - i;
    /* \s+ */
    return end - i;
}

/* Pattern installed by transformers' fix_mistral_regex:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
 *  |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*
 *  |\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * No contraction alternative; words split at lower→upper case changes; marks (\p{M}) join
 * words yet still count as "not a letter" for the optional prefix. Per-char flags: */
enum { MF_L = 1, MF_N = 2, MF_SP = 4, MF_NL = 8, MF_U = 16 /* Lu Lt Lm Lo M */, MF_W = 32 /* Ll Lm Lo M */ };

static inline uint8_t mistral_flags(uint32_t cp) {
    if (cp < 0x80) {
        if (cp >= 'a' && cp <= 'z') return MF_L | MF_W;
        if (cp >= 'A' && cp <= 'Z') return MF_L | MF_U;
        if (cp >= '0' && cp <= '9') return MF_N;
        if (cp == '\r' || cp == '\n') return MF_SP | MF_NL;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return MF_SP;
        return 0;
    }
    if (cp == 0x85) return MF_SP;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LT: return MF_L | MF_U;
    case UTF8PROC_CATEGORY_LL: return MF_L | MF_W;
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: return MF_L | MF_U | MF_W;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: return MF_U | MF_W;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return MF_N;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: return MF_SP;
    default: return 0;
    }
}

static inline bool mf_prefix(uint8_t f) { return !(f & (MF_L | MF_N | MF_NL)); }
static inline bool mf_other(uint8_t f) { return !(f & (MF_L | MF_N | MF_SP)); }

/* U* W+ from s with backtracking: the greedy U run, then a W run; failing that, U* gives
 * back characters until one that is also W, which W+ then takes alone. -1 = no match. */
static int mistral_alt_a(const uint8_t *f, int s, int n) {
    int e1 = s;
    while (e1 < n && (f[e1] & MF_U)) e1++;
    if (e1 < n && (f[e1] & MF_W)) {
        while (e1 < n && (f[e1] & MF_W)) e1++;
        return e1;
    }
    for (int k = e1 - 1; k >= s; k--)
        if (f[k] & MF_W) return k + 1;
    return -1;
}

static int mistral_alt_b(const uint8_t *f, int s, int n) {
    int e = s;
    while (e < n && (f[e] & MF_U)) e++;
    if (e == s) return -1;
    while (e < n && (f[e] & MF_W)) e++;
    return e;
}

static int pretok_match_mistral(const uint32_t *cp, const uint8_t *f, int i, int n) {
    int r;
    bool pre = mf_prefix(f[i]) && i + 1 < n;
    if (pre && (r = mistral_alt_a(f, i + 1, n)) > 0) return r - i;
    if ((r = mistral_alt_a(f, i, n)) > 0) return r - i;
    if (pre && (r = mistral_alt_b(f, i + 1, n)) > 0) return r - i;
    if ((r = mistral_alt_b(f, i, n)) > 0) return r - i;
    if (f[i] & MF_N) return 1;
    {
        int j = i;
        if (cp[j] == ' ' && j + 1 < n && mf_other(f[j + 1])) j++;
        if (mf_other(f[j])) {
            while (j < n && mf_other(f[j])) j++;
            while (j < n && ((f[j] & MF_NL) || cp[j] == '/')) j++;
            return j - i;
        }
    }
    int end = i;
    while (end < n && (f[end] & MF_SP)) end++;
    for (int k = end - 1; k >= i; k--)
        if (f[k] & MF_NL) return k + 1 - i;
    if (end == n) return end - i;
    if (end - i >= 2) return end - 1 - i;
    return end - i;
}

/* ---- BPE ---- */

typedef struct bpe_cand {
    uint64_t key; /* rank << 32 | position: min-heap order */
    int32_t a, b, newid;
} bpe_cand;

/* Per-call scratch and the word cache; nothing here outlives one encode call, which keeps
 * the tokenizer itself read-only. */
typedef struct enc_ctx {
    const qtts_tokenizer *t;
    int32_t *ids; /* also when only counting: the word cache copies from here */
    size_t n_ids, cap_ids;
    /* code points of the current normalised segment */
    uint32_t *cp;
    uint8_t *cl;
    uint32_t *off; /* byte offset of each char, +1 entry for the end */
    size_t cap_cp;
    /* BPE symbol list and heap */
    int32_t *sym, *prev, *next;
    bpe_cand *heap;
    size_t cap_sym, cap_heap, n_heap;
    /* word cache: open-addressed (hash, word bytes) → ids */
    struct cache_slot { uint64_t h; uint32_t woff, wlen, ioff, ilen; } *slots;
    uint32_t n_slots_used, slot_mask; /* table sized to the text: short texts stay cheap */
    char *cwords;
    size_t n_cwords, cap_cwords;
    int32_t *cids;
    size_t n_cids, cap_cids;
    qtts_err *err;
} enc_ctx;

#define CACHE_SLOTS_MAX 65536u
#define CACHE_MAX_WORD 64

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static qtts_status emit(enc_ctx *e, const int32_t *ids, size_t n) {
    if (!grow((void **)&e->ids, &e->cap_ids, e->n_ids + n, sizeof *e->ids))
        return qtts_fail(e->err, QTTS_ERR_OOM, "tokenizer: output ids");
    memcpy(e->ids + e->n_ids, ids, n * sizeof *ids);
    e->n_ids += n;
    return QTTS_OK;
}

static void heap_push(enc_ctx *e, bpe_cand c) {
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (e->heap[p].key <= c.key) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = c;
}

static bpe_cand heap_pop(enc_ctx *e) {
    bpe_cand top = e->heap[0], last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l >= n) break;
        m = (l + 1 < n && e->heap[l + 1].key < e->heap[l].key) ? l + 1 : l;
        if (last.key <= e->heap[m].key) break;
        e->heap[i] = e->heap[m];
        i = m;
    }
    if (n) e->heap[i] = last;
    return top;
}

static void try_pair(enc_ctx *e, int32_t p) {
    int32_t q = e->next[p];
    if (q < 0) return;
    int32_t rank, nid;
    if (!merge_find(e->t, e->sym[p], e->sym[q], &rank, &nid)) return;
    heap_push(e, (bpe_cand){(uint64_t)(uint32_t)rank << 32 | (uint32_t)p, e->sym[p], e->sym[q], nid});
}

/* BPE of one pre-token (raw bytes): merge the lowest-ranked adjacent pair, leftmost first,
 * until none is in the merge table; then emit the surviving symbols in order. */
static qtts_status bpe_word(enc_ctx *e, const uint8_t *w, size_t n) {
    if (n == 1) return emit(e, &e->t->byte_id[w[0]], 1);
    if (n > e->cap_sym) {
        size_t c = e->cap_sym ? e->cap_sym : 256;
        while (c < n) c *= 2;
        int32_t *blk = realloc(e->sym, 3 * c * sizeof *blk);
        if (!blk) return qtts_fail(e->err, QTTS_ERR_OOM, "tokenizer: BPE scratch for a %zu-byte word", n);
        e->sym = blk;
        e->prev = blk + c;
        e->next = blk + 2 * c;
        e->cap_sym = c;
    }
    /* Each merge pushes at most two candidates, n-1 pushed at the start. */
    if (!grow((void **)&e->heap, &e->cap_heap, 3 * n, sizeof *e->heap))
        return qtts_fail(e->err, QTTS_ERR_OOM, "tokenizer: BPE heap for a %zu-byte word", n);
    for (size_t i = 0; i < n; i++) {
        e->sym[i] = e->t->byte_id[w[i]];
        e->prev[i] = (int32_t)i - 1;
        e->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    e->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(e, (int32_t)i);
    while (e->n_heap) {
        bpe_cand c = heap_pop(e);
        int32_t p = (int32_t)(uint32_t)c.key, q = e->next[p];
        /* Stale candidates: p was absorbed (prev of a dead symbol is -2), or p or its
         * right neighbour has changed since the candidate was pushed. */
        if (e->prev[p] == -2 || q < 0 || e->sym[p] != c.a || e->sym[q] != c.b) continue;
        e->sym[p] = c.newid;
        e->next[p] = e->next[q];
        if (e->next[q] >= 0) e->prev[e->next[q]] = p;
        e->prev[q] = -2;
        if (e->prev[p] >= 0) try_pair(e, e->prev[p]);
        try_pair(e, p);
    }
    size_t k = 0;
    for (int32_t p = 0; p >= 0; p = e->next[p]) e->sym[k++] = e->sym[p];
    return emit(e, e->sym, k);
}

static qtts_status encode_word(enc_ctx *e, const uint8_t *w, size_t n) {
    if (n > CACHE_MAX_WORD) return bpe_word(e, w, n);
    uint64_t h = hash_bytes((const char *)w, n);
    uint32_t s = (uint32_t)h & (e->slot_mask);
    for (;; s = (s + 1) & (e->slot_mask)) {
        struct cache_slot *sl = &e->slots[s];
        if (!sl->wlen) break;
        if (sl->h == h && sl->wlen == n && !memcmp(e->cwords + sl->woff, w, n))
            return emit(e, e->cids + sl->ioff, sl->ilen);
    }
    size_t before = e->n_ids;
    qtts_status st = bpe_word(e, w, n);
    if (st) return st;
    size_t k = e->n_ids - before;
    if (e->n_slots_used >= (e->slot_mask + 1) / 2) { /* full: start over rather than probe long chains */
        memset(e->slots, 0, (e->slot_mask + 1) * sizeof *e->slots);
        e->n_slots_used = 0;
        e->n_cwords = e->n_cids = 0;
        for (s = (uint32_t)h & (e->slot_mask); e->slots[s].wlen; s = (s + 1) & (e->slot_mask)) {}
    }
    if (!grow((void **)&e->cwords, &e->cap_cwords, e->n_cwords + n, 1) ||
        !grow((void **)&e->cids, &e->cap_cids, e->n_cids + k, sizeof *e->cids))
        return qtts_fail(e->err, QTTS_ERR_OOM, "tokenizer: word cache");
    memcpy(e->cids + e->n_cids, e->ids + before, k * sizeof *e->cids);
    memcpy(e->cwords + e->n_cwords, w, n);
    e->slots[s] = (struct cache_slot){h, (uint32_t)e->n_cwords, (uint32_t)n, (uint32_t)e->n_cids, (uint32_t)k};
    e->n_cwords += n;
    e->n_cids += k;
    e->n_slots_used++;
    return QTTS_OK;
}

/* Pre-tokenize and BPE one normalised stretch of text (no added tokens inside). */
static qtts_status encode_plain(enc_ctx *e, const uint8_t *s, size_t len) {
    if (!len) return QTTS_OK;
    if (len > e->cap_cp) { /* one char per byte at most */
        size_t c = e->cap_cp ? e->cap_cp : 256;
        while (c < len) c *= 2;
        free(e->cp);
        free(e->cl);
        free(e->off);
        e->cp = malloc(c * sizeof *e->cp);
        e->cl = malloc(c);
        e->off = malloc((c + 1) * sizeof *e->off);
        e->cap_cp = e->cp && e->cl && e->off ? c : 0;
        if (!e->cap_cp) goto oom;
    }
    int n = 0;
    for (size_t i = 0; i < len;) {
        e->off[n] = (uint32_t)i;
        i += (size_t)utf8_next(s + i, &e->cp[n]);
        e->cl[n] = e->t->mistral_split ? mistral_flags(e->cp[n]) : (uint8_t)char_class(e->cp[n]);
        n++;
    }
    e->off[n] = (uint32_t)len;
    for (int i = 0; i < n;) {
        int m = e->t->mistral_split ? pretok_match_mistral(e->cp, e->cl, i, n) : pretok_match(e->cp, e->cl, i, n);
        qtts_status st = encode_word(e, s + e->off[i], e->off[i + m] - e->off[i]);
        if (st) return st;
        i += m;
    }
    return QTTS_OK;
oom:
    return qtts_fail(e->err, QTTS_ERR_OOM, "tokenizer: %zu-byte segment", len);
}

static bool is_word_char(const uint8_t *s, size_t len, size_t at, bool before) {
    /* the character just before `at` (before) or starting at `at` */
    if (before) {
        if (at == 0) return false;
        size_t i = at - 1;
        while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
        uint32_t c;
        utf8_next(s + i, &c);
        int k = char_class(c);
        return k == CL_LETTER || k == CL_NUMBER || c == '_';
    }
    if (at >= len) return false;
    uint32_t c;
    utf8_next(s + at, &c);
    int k = char_class(c);
    return k == CL_LETTER || k == CL_NUMBER || c == '_';
}

static size_t space_len_at(const uint8_t *s, size_t len, size_t at) {
    uint32_t c;
    if (at >= len) return 0;
    int k = utf8_next(s + at, &c);
    return is_space(char_class(c)) ? (size_t)k : 0;
}

static size_t space_len_before(const uint8_t *s, size_t at) {
    if (at == 0) return 0;
    size_t i = at - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    uint32_t c;
    utf8_next(s + i, &c);
    return is_space(char_class(c)) ? at - i : 0;
}

/* Find the leftmost, then longest, added token of the given kind (normalized or not) in
 * s[from, len). On a hit, [*ms, *me) is the span it consumes (lstrip/rstrip whitespace
 * included). */
static const added_token *find_added(const qtts_tokenizer *t, bool normalized, const uint8_t *s, size_t len,
                                     size_t from, size_t *ms, size_t *me) {
    for (size_t i = from; i < len; i++) {
        const added_token *best = NULL;
        for (int k = 0; k < t->n_added; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized != normalized || (uint8_t)a->content[0] != s[i] || a->len > len - i) continue;
            if (best && a->len <= best->len) continue;
            if (memcmp(s + i, a->content, a->len)) continue;
            if (a->single_word && (is_word_char(s, len, i, true) || is_word_char(s, len, i + a->len, false)))
                continue;
            best = a;
        }
        if (best) {
            size_t b = i, en = i + best->len, d;
            if (best->lstrip)
                while (b > from && (d = space_len_before(s, b))) b -= d;
            if (best->rstrip)
                while ((d = space_len_at(s, len, en))) en += d;
            *ms = b;
            *me = en;
            return best;
        }
    }
    return NULL;
}

/* NFC one stretch between raw-matched added tokens, then split it on normalized added
 * tokens, then BPE the rest. */
static qtts_status encode_segment(enc_ctx *e, const uint8_t *s, size_t len) {
    if (!len) return QTTS_OK;
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++) ascii = s[i] < 0x80;
    utf8proc_uint8_t *nfc = NULL;
    const uint8_t *txt = s;
    size_t n = len;
    if (!ascii) { /* ASCII is its own NFC; skipping the call saves most of its cost on English */
        utf8proc_ssize_t r = utf8proc_map(s, (utf8proc_ssize_t)len, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0)
            return qtts_fail(e->err, r == UTF8PROC_ERROR_NOMEM ? QTTS_ERR_OOM : QTTS_ERR_TEXT,
                             "NFC normalisation failed: %s", utf8proc_errmsg(r));
        txt = nfc;
        n = (size_t)r;
    }
    qtts_status st = QTTS_OK;
    size_t pos = 0, ms, me;
    const added_token *a;
    while ((a = find_added(e->t, true, txt, n, pos, &ms, &me))) {
        if ((st = encode_plain(e, txt + pos, ms - pos))) goto done;
        if ((st = emit(e, &a->id, 1))) goto done;
        pos = me;
    }
    st = encode_plain(e, txt + pos, n - pos);
done:
    free(nfc);
    return st;
}

static qtts_status encode_impl(const qtts_tokenizer *t, const char *text, size_t len, bool count_only,
                               int32_t **ids, int *n, qtts_err *err) {
    qtts_status st = QTTS_OK;
    enc_ctx e = {.t = t, .err = err};
    if (!t || (!text && len)) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "tokenizer encode: NULL argument");
    size_t bad = qtts_utf8_find_invalid(text, len);
    if (bad != len)
        return qtts_fail(err, QTTS_ERR_TEXT, "text is not valid UTF-8: byte 0x%02x at offset %zu",
                         (unsigned)(uint8_t)text[bad], bad);
    if (len > (size_t)INT32_MAX / 2) return qtts_fail(err, QTTS_ERR_TEXT, "text too long (%zu bytes)", len);
    uint32_t n_slots = 64;
    while (n_slots < CACHE_SLOTS_MAX && n_slots < len / 4) n_slots <<= 1;
    e.slot_mask = n_slots - 1;
    e.slots = qtts_calloc(n_slots, sizeof *e.slots, err, "tokenizer word cache");
    QTTS_CHECK(e.slots, err, QTTS_ERR_OOM, "tokenizer word cache");
    const uint8_t *s = (const uint8_t *)text;
    size_t pos = 0, ms, me;
    const added_token *a;
    while ((a = find_added(t, false, s, len, pos, &ms, &me))) {
        QTTS_TRY(encode_segment(&e, s + pos, ms - pos));
        QTTS_TRY(emit(&e, &a->id, 1));
        pos = me;
    }
    QTTS_TRY(encode_segment(&e, s + pos, len - pos));
    QTTS_CHECK(e.n_ids <= INT32_MAX, err, QTTS_ERR_TEXT, "text gives too many tokens");
    if (!count_only) {
        if (!e.ids) e.ids = qtts_malloc(sizeof *e.ids, err, "tokenizer ids");
        QTTS_CHECK(e.ids, err, QTTS_ERR_OOM, "tokenizer ids");
        *ids = e.ids;
        e.ids = NULL;
    }
    *n = (int)e.n_ids;
cleanup:
    free(e.ids);
    free(e.cp);
    free(e.cl);
    free(e.off);
    free(e.sym);
    free(e.heap);
    free(e.slots);
    free(e.cwords);
    free(e.cids);
    return st;
}

qtts_status qtts_tokenizer_encode(const qtts_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n,
                                  qtts_err *err) {
    *ids = NULL;
    *n = 0;
    return encode_impl(t, text, len, false, ids, n, err);
}

qtts_status qtts_tokenizer_count(const qtts_tokenizer *t, const char *text, size_t len, int *n, qtts_err *err) {
    *n = 0;
    return encode_impl(t, text, len, true, NULL, n, err);
}

qtts_status qtts_tokenizer_decode(const qtts_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len,
                                  qtts_err *err) {
    *text = NULL;
    *len = 0;
    if (!t || n < 0 || (n && !ids)) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "tokenizer decode: bad argument");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || t->tok_off[ids[i]] == UINT32_MAX)
            return qtts_fail(err, QTTS_ERR_INVALID_ARG, "tokenizer decode: id %d at position %d is not in the vocabulary",
                             ids[i], i);
        total += t->tok_len[ids[i]];
    }
    char *out = qtts_malloc(total + 1, err, "decoded text");
    if (!out) return QTTS_ERR_OOM;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        memcpy(out + o, t->pool + t->tok_off[ids[i]], t->tok_len[ids[i]]);
        o += t->tok_len[ids[i]];
    }
    out[o] = 0;
    *text = out;
    *len = o;
    return QTTS_OK;
}
