/* Safetensors reader: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...},
 * then the data block. Offsets are relative to the data block; each tensor's
 * byte range must match dtype x shape, lie inside the file and not overlap
 * another tensor. Shards are mmapped read-only and kept open until close. */
#include "safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[QTTS_DT_COUNT] = {
    [QTTS_DT_F32] = {"F32", 4}, [QTTS_DT_F16] = {"F16", 2}, [QTTS_DT_BF16] = {"BF16", 2},
    [QTTS_DT_F64] = {"F64", 8}, [QTTS_DT_I64] = {"I64", 8}, [QTTS_DT_I32] = {"I32", 4},
    [QTTS_DT_I16] = {"I16", 2}, [QTTS_DT_I8] = {"I8", 1},   [QTTS_DT_U8] = {"U8", 1},
    [QTTS_DT_BOOL] = {"BOOL", 1},
};

const char *qtts_dtype_name(qtts_dtype t) { return (unsigned)t < QTTS_DT_COUNT ? dtype_info[t].name : "?"; }
size_t qtts_dtype_size(qtts_dtype t) { return (unsigned)t < QTTS_DT_COUNT ? dtype_info[t].size : 0; }

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const qtts_st_tensor *)a)->name, ((const qtts_st_tensor *)b)->name);
}

typedef struct {
    size_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

qtts_status qtts_st_parse(const void *buf, size_t size, const char *name, int shard,
                          qtts_st_tensor **tensors_out, int *n_out, char **names_out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    cJSON *root = NULL;
    char *hjson = NULL, *names = NULL;
    qtts_st_tensor *ts = NULL;
    span *spans = NULL;
    *tensors_out = NULL;
    *n_out = 0;
    *names_out = NULL;
    const unsigned char *b = buf;

    QTTS_CHECK(size >= 8, err, QTTS_ERR_FORMAT, "%s: truncated: %zu bytes, a safetensors file has at least 8", name, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    QTTS_CHECK(hlen <= QTTS_ST_MAX_HEADER, err, QTTS_ERR_FORMAT,
               "%s: header length %llu exceeds the %u-byte limit", name, (unsigned long long)hlen, QTTS_ST_MAX_HEADER);
    QTTS_CHECK(hlen <= size - 8, err, QTTS_ERR_FORMAT,
               "%s: header claims %llu bytes but the file has only %zu after the length field (truncated?)", name,
               (unsigned long long)hlen, size - 8);
    hjson = qtts_malloc((size_t)hlen + 1, err, name);
    if (!hjson) return QTTS_ERR_OOM;
    memcpy(hjson, b + 8, (size_t)hlen);
    hjson[hlen] = 0;
    /* The header must be exactly one JSON object, optionally padded with spaces
     * (writers align the data block to 8 bytes). cJSON_ParseWithLength alone
     * ignores trailing bytes, so a length field that overstates the header
     * would silently shift the data block. */
    const char *hend = NULL;
    root = cJSON_ParseWithLengthOpts(hjson, (size_t)hlen, &hend, false);
    QTTS_CHECK(root && cJSON_IsObject(root), err, QTTS_ERR_FORMAT, "%s: header (%llu bytes) is not a JSON object", name,
               (unsigned long long)hlen);
    for (const char *q = hend; q < hjson + hlen; q++)
        QTTS_CHECK(*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r', err, QTTS_ERR_FORMAT,
                   "%s: header length field says %llu bytes but the JSON object ends at byte %zu (header length lies?)", name,
                   (unsigned long long)hlen, (size_t)(hend - hjson));

    size_t data_start = 8 + (size_t)hlen, data_size = size - data_start;
    int n = 0;
    size_t names_len = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) continue;
        n++;
        names_len += strlen(it->string) + 1;
    }
    ts = qtts_calloc((size_t)(n ? n : 1), sizeof *ts, err, name);
    names = qtts_malloc(names_len + 1, err, name);
    spans = qtts_calloc((size_t)(n ? n : 1), sizeof *spans, err, name);
    QTTS_CHECK(ts && names && spans, err, QTTS_ERR_OOM, "%s: out of memory for %d tensors", name, n);

    int k = 0;
    size_t np = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        const char *tn = it->string;
        if (!strcmp(tn, "__metadata__")) {
            QTTS_CHECK(cJSON_IsObject(it), err, QTTS_ERR_FORMAT, "%s: __metadata__ is not an object", name);
            continue;
        }
        QTTS_CHECK(cJSON_IsObject(it), err, QTTS_ERR_FORMAT, "%s: tensor %s: entry is not an object", name, tn);
        qtts_st_tensor *t = &ts[k];
        size_t tl = strlen(tn);
        memcpy(names + np, tn, tl + 1);
        t->name = names + np; /* fixed up below if names moves; it does not */
        np += tl + 1;
        t->shard = shard;

        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        QTTS_CHECK(cJSON_IsString(dt), err, QTTS_ERR_FORMAT, "%s: tensor %s: missing dtype", name, tn);
        int found = -1;
        for (int d = 0; d < QTTS_DT_COUNT; d++)
            if (!strcmp(dt->valuestring, dtype_info[d].name)) found = d;
        QTTS_CHECK(found >= 0, err, QTTS_ERR_DTYPE, "%s: tensor %s: unknown dtype \"%.32s\"", name, tn, dt->valuestring);
        t->dtype = (qtts_dtype)found;

        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        QTTS_CHECK(cJSON_IsArray(sh), err, QTTS_ERR_FORMAT, "%s: tensor %s: missing shape", name, tn);
        int nd = cJSON_GetArraySize(sh);
        QTTS_CHECK(nd <= QTTS_ST_MAX_DIMS, err, QTTS_ERR_FORMAT, "%s: tensor %s: %d dims (max %d)", name, tn, nd, QTTS_ST_MAX_DIMS);
        t->ndim = nd;
        size_t numel = 1;
        int d = 0;
        for (const cJSON *e = sh->child; e; e = e->next, d++) {
            uint64_t v;
            QTTS_CHECK(json_uint(e, &v), err, QTTS_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", name, tn, d);
            QTTS_CHECK(qtts_mul_ok(numel, (size_t)v, &numel), err, QTTS_ERR_FORMAT, "%s: tensor %s: shape overflows", name, tn);
            t->shape[d] = (int64_t)v;
        }
        t->numel = (int64_t)numel;
        size_t nbytes;
        QTTS_CHECK(qtts_mul_ok(numel, dtype_info[t->dtype].size, &nbytes), err, QTTS_ERR_FORMAT, "%s: tensor %s: size overflows", name, tn);

        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        uint64_t o0, o1;
        QTTS_CHECK(cJSON_IsArray(off) && cJSON_GetArraySize(off) == 2 && json_uint(off->child, &o0) &&
                       json_uint(off->child->next, &o1),
                   err, QTTS_ERR_FORMAT, "%s: tensor %s: data_offsets must be [begin, end] integers", name, tn);
        QTTS_CHECK(o0 <= o1, err, QTTS_ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu] end before begin", name, tn,
                   (unsigned long long)o0, (unsigned long long)o1);
        QTTS_CHECK(o1 <= data_size, err, QTTS_ERR_FORMAT,
                   "%s: tensor %s: data_offsets [%llu, %llu] past the end of the data (%zu bytes; file truncated?)", name, tn,
                   (unsigned long long)o0, (unsigned long long)o1, data_size);
        QTTS_CHECK(o1 - o0 == nbytes, err, QTTS_ERR_FORMAT,
                   "%s: tensor %s: data_offsets span %llu bytes but %s %s needs %zu", name, tn,
                   (unsigned long long)(o1 - o0), dtype_info[t->dtype].name, nd ? "shape" : "scalar", nbytes);
        t->data = b + data_start + o0;
        t->nbytes = nbytes;
        spans[k] = (span){(size_t)o0, (size_t)o1, k};
        k++;
    }
    /* no two non-empty tensors may share bytes */
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    for (int i = 1; i < n; i++) {
        if (spans[i].begin == spans[i].end) continue;
        int j = i - 1;
        while (j >= 0 && spans[j].begin == spans[j].end) j--;
        QTTS_CHECK(j < 0 || spans[i].begin >= spans[j].end, err, QTTS_ERR_FORMAT,
                   "%s: tensors %s and %s overlap in the data block", name, ts[spans[j].idx].name, ts[spans[i].idx].name);
    }
    qsort(ts, (size_t)n, sizeof *ts, cmp_tensor_name);
    for (int i = 1; i < n; i++)
        QTTS_CHECK(strcmp(ts[i - 1].name, ts[i].name) != 0, err, QTTS_ERR_FORMAT, "%s: tensor %s appears twice", name, ts[i].name);
    *tensors_out = ts;
    *n_out = n;
    *names_out = names;
    ts = NULL;
    names = NULL;
cleanup:
    cJSON_Delete(root);
    free(hjson);
    free(spans);
    free(ts);
    free(names);
    return st;
}

static qtts_status map_file(const char *path, void **map, size_t *size, qtts_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return qtts_fail(err, errno == ENOENT ? QTTS_ERR_MISSING : QTTS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return qtts_fail(err, QTTS_ERR_IO, "%s: not a regular file", path);
    }
    *size = (size_t)sb.st_size;
    if (*size == 0) {
        close(fd);
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: empty file", path);
    }
    void *m = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return qtts_fail(err, QTTS_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    *map = m;
    return QTTS_OK;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Shard file names listed by an index json's weight_map, deduplicated, in
 * first-appearance order, resolved relative to the index's folder. */
static qtts_status read_index(const char *index_path, char ***paths, int *n_paths, qtts_err *err) {
    qtts_status st = QTTS_OK;
    char *txt = NULL;
    size_t len;
    cJSON *root = NULL;
    char **out = NULL;
    int n = 0;
    QTTS_TRY(qtts_read_file(index_path, &txt, &len, err));
    root = cJSON_ParseWithLength(txt, len);
    QTTS_CHECK(root, err, QTTS_ERR_FORMAT, "%s: not valid JSON", index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    QTTS_CHECK(cJSON_IsObject(wm), err, QTTS_ERR_FORMAT, "%s: weight_map: missing or not an object", index_path);
    int cap = cJSON_GetArraySize(wm);
    out = qtts_calloc((size_t)(cap ? cap : 1), sizeof *out, err, index_path);
    QTTS_CHECK(out, err, QTTS_ERR_OOM, "%s: out of memory", index_path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    for (const cJSON *e = wm->child; e; e = e->next) {
        QTTS_CHECK(cJSON_IsString(e) && e->valuestring[0] && !strchr(e->valuestring, '/'), err, QTTS_ERR_FORMAT,
                   "%s: weight_map.%s: expected a shard file name", index_path, e->string);
        bool seen = false;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(strrchr(out[i], '/') + 1, e->valuestring);
        if (seen) continue;
        size_t need = strlen(dir) + strlen(e->valuestring) + 2;
        out[n] = qtts_malloc(need, err, index_path);
        QTTS_CHECK(out[n], err, QTTS_ERR_OOM, "%s: out of memory", index_path);
        snprintf(out[n], need, "%s/%s", dir, e->valuestring);
        n++;
    }
    QTTS_CHECK(n > 0, err, QTTS_ERR_FORMAT, "%s: weight_map is empty", index_path);
    *paths = out;
    *n_paths = n;
    out = NULL;
cleanup:
    if (out) {
        for (int i = 0; i < n; i++) free(out[i]);
        free(out);
    }
    cJSON_Delete(root);
    free(txt);
    return st;
}

qtts_status qtts_st_open(qtts_safetensors *st_out, const char *path, qtts_err *err) {
    qtts_status st = QTTS_OK;
    qtts_safetensors s = {0};
    char buf[4096];
    char **paths = NULL;
    int n_paths = 0;
    /* per-shard tables, merged into s.tensors; freed on every path */
    qtts_st_tensor **tabs = NULL;
    int *counts = NULL;
    char **name_blocks = NULL;
    memset(st_out, 0, sizeof *st_out);
    struct stat sb;
    if (stat(path, &sb) != 0) return qtts_fail(err, QTTS_ERR_MISSING, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        QTTS_TRY(qtts_path_join(buf, sizeof buf, path, "model.safetensors.index.json", err));
        if (!qtts_file_exists(buf)) {
            QTTS_TRY(qtts_path_join(buf, sizeof buf, path, "model.safetensors", err));
            QTTS_CHECK(qtts_file_exists(buf), err, QTTS_ERR_MISSING,
                       "%s: no model.safetensors or model.safetensors.index.json in this folder", path);
        }
        path = buf;
    }
    if (has_suffix(path, ".json")) {
        QTTS_TRY(read_index(path, &paths, &n_paths, err));
    } else {
        paths = qtts_calloc(1, sizeof *paths, err, path);
        QTTS_CHECK(paths, err, QTTS_ERR_OOM, "out of memory");
        paths[0] = strdup(path);
        QTTS_CHECK(paths[0], err, QTTS_ERR_OOM, "out of memory");
        n_paths = 1;
    }
    s.n_shards = n_paths;
    s.shard_paths = paths;
    paths = NULL;
    s.maps = qtts_calloc((size_t)n_paths, sizeof *s.maps, err, "shards");
    s.map_sizes = qtts_calloc((size_t)n_paths, sizeof *s.map_sizes, err, "shards");
    QTTS_CHECK(s.maps && s.map_sizes, err, QTTS_ERR_OOM, "out of memory");
    /* parse each shard, then merge the per-shard tables into one sorted table */
    tabs = qtts_calloc((size_t)n_paths, sizeof *tabs, err, "shards");
    counts = qtts_calloc((size_t)n_paths, sizeof *counts, err, "shards");
    name_blocks = qtts_calloc((size_t)n_paths, sizeof *name_blocks, err, "shards");
    QTTS_CHECK(tabs && counts && name_blocks, err, QTTS_ERR_OOM, "out of memory");
    size_t total = 0, names_total = 0;
    for (int i = 0; i < n_paths && st == QTTS_OK; i++) {
        st = map_file(s.shard_paths[i], &s.maps[i], &s.map_sizes[i], err);
        if (st == QTTS_OK) st = qtts_st_parse(s.maps[i], s.map_sizes[i], s.shard_paths[i], i, &tabs[i], &counts[i], &name_blocks[i], err);
        if (st == QTTS_OK) {
            total += (size_t)counts[i];
            for (int j = 0; j < counts[i]; j++) names_total += strlen(tabs[i][j].name) + 1;
        }
    }
    if (st == QTTS_OK) {
        s.tensors = qtts_calloc(total ? total : 1, sizeof *s.tensors, err, "tensors");
        s.names = qtts_malloc(names_total + 1, err, "tensor names");
        if (!s.tensors || !s.names) st = QTTS_ERR_OOM;
    }
    if (st == QTTS_OK) {
        size_t k = 0, np = 0;
        for (int i = 0; i < n_paths; i++)
            for (int j = 0; j < counts[i]; j++) {
                s.tensors[k] = tabs[i][j];
                size_t l = strlen(tabs[i][j].name);
                memcpy(s.names + np, tabs[i][j].name, l + 1);
                s.tensors[k++].name = s.names + np;
                np += l + 1;
            }
        s.n_tensors = (int)total;
        qsort(s.tensors, total, sizeof *s.tensors, cmp_tensor_name);
        for (size_t i = 1; i < total && st == QTTS_OK; i++)
            if (!strcmp(s.tensors[i - 1].name, s.tensors[i].name))
                st = qtts_fail(err, QTTS_ERR_FORMAT, "%s: tensor %s appears in two shards (%s and %s)", path, s.tensors[i].name,
                               s.shard_paths[s.tensors[i - 1].shard], s.shard_paths[s.tensors[i].shard]);
    }
    if (st != QTTS_OK) goto cleanup;
    *st_out = s;
    memset(&s, 0, sizeof s);
cleanup:
    for (int i = 0; i < n_paths; i++) {
        if (tabs) free(tabs[i]);
        if (name_blocks) free(name_blocks[i]);
    }
    free(tabs);
    free(counts);
    free(name_blocks);
    if (paths) {
        for (int i = 0; i < n_paths; i++) free(paths[i]);
        free(paths);
    }
    qtts_st_close(&s);
    return st;
}

void qtts_st_close(qtts_safetensors *s) {
    for (int i = 0; i < s->n_shards; i++) {
        if (s->maps && s->maps[i]) munmap(s->maps[i], s->map_sizes[i]);
        if (s->shard_paths) free(s->shard_paths[i]);
    }
    free(s->maps);
    free(s->map_sizes);
    free(s->shard_paths);
    free(s->tensors);
    free(s->names);
    memset(s, 0, sizeof *s);
}

const qtts_st_tensor *qtts_st_find(const qtts_safetensors *s, const char *name) {
    int lo = 0, hi = s->n_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(s->tensors[mid].name, name);
        if (c == 0) return &s->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static int format_shape(char *out, size_t n, int ndim, const int64_t *shape) {
    int p = snprintf(out, n, "[");
    for (int i = 0; i < ndim && (size_t)p < n; i++) p += snprintf(out + p, n - (size_t)p, i ? ",%lld" : "%lld", (long long)shape[i]);
    if ((size_t)p < n) p += snprintf(out + p, n - (size_t)p, "]");
    return p;
}

static void format_dtypes(char *out, size_t n, unsigned mask) {
    int p = 0;
    out[0] = 0;
    for (int d = QTTS_DT_COUNT - 1; d >= 0 && (size_t)p < n; d--)
        if (mask & QTTS_DTM(d)) p += snprintf(out + p, n - (size_t)p, p ? "|%s" : "%s", dtype_info[d].name);
}

qtts_status qtts_st_get(const qtts_safetensors *s, const char *name, unsigned allowed, int ndim, const int64_t *shape,
                        const qtts_st_tensor **out, qtts_err *err) {
    *out = NULL;
    const qtts_st_tensor *t = qtts_st_find(s, name);
    char want[128], got[128], wdt[64];
    format_shape(want, sizeof want, ndim, shape);
    format_dtypes(wdt, sizeof wdt, allowed);
    if (!t) return qtts_fail(err, QTTS_ERR_MISSING, "%s: missing tensor (expected %s %s)", name, wdt, want);
    bool shape_ok = t->ndim == ndim;
    for (int i = 0; shape_ok && i < ndim; i++) shape_ok = t->shape[i] == shape[i];
    if (!shape_ok || !(allowed & QTTS_DTM(t->dtype))) {
        format_shape(got, sizeof got, t->ndim, t->shape);
        return qtts_fail(err, shape_ok ? QTTS_ERR_DTYPE : QTTS_ERR_SHAPE, "%s: expected %s %s, got %s %s", name, wdt, want,
                         dtype_info[t->dtype].name, got);
    }
    *out = t;
    return QTTS_OK;
}

void qtts_st_rows_to_f32(const qtts_st_tensor *t, int64_t row0, int64_t nrows, float *dst) {
    int64_t row = t->ndim >= 2 ? t->numel / (t->shape[0] ? t->shape[0] : 1) : 1;
    int64_t i0 = row0 * row, n = nrows * row;
    switch (t->dtype) {
    case QTTS_DT_F32: memcpy(dst, (const unsigned char *)t->data + i0 * 4, (size_t)n * 4); break;
    /* The data block starts at 8 + header length, which need not be even:
     * read halves through memcpy rather than through a uint16_t pointer. */
    case QTTS_DT_BF16: {
        const unsigned char *p = (const unsigned char *)t->data + i0 * 2;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + i * 2, 2);
            dst[i] = qtts_bf16_to_f32(h);
        }
        break;
    }
    case QTTS_DT_F16: {
        const unsigned char *p = (const unsigned char *)t->data + i0 * 2;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + i * 2, 2);
            dst[i] = qtts_f16_to_f32(h);
        }
        break;
    }
    default:
        /* callers check dtypes with qtts_st_get first; a non-float here is a bug */
        memset(dst, 0, (size_t)n * sizeof *dst);
        break;
    }
}

void qtts_st_to_f32(const qtts_st_tensor *t, float *dst) {
    if (t->ndim >= 2) qtts_st_rows_to_f32(t, 0, t->shape[0], dst);
    else {
        qtts_st_tensor flat = *t;
        flat.ndim = 2;
        flat.shape[0] = 1;
        flat.shape[1] = t->numel;
        qtts_st_rows_to_f32(&flat, 0, 1, dst);
    }
}

void qtts_st_count(const qtts_safetensors *s, const char *prefix, const char *const *exclude, int64_t *params, int64_t *bytes) {
    int64_t p = 0, b = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < s->n_tensors; i++) {
        const char *n = s->tensors[i].name;
        if (strncmp(n, prefix, pl) != 0) continue;
        bool skip = false;
        for (int e = 0; exclude && exclude[e] && !skip; e++) skip = !strncmp(n, exclude[e], strlen(exclude[e]));
        if (skip) continue;
        p += s->tensors[i].numel;
        b += (int64_t)s->tensors[i].nbytes;
    }
    *params = p;
    *bytes = b;
}
