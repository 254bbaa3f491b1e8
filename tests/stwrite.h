/* Test-only safetensors writer: builds a header for a list of tensors with
 * contiguous data_offsets and writes length + header + data, or a sparse file
 * (ftruncate) when no data is given, so full-size checkpoints cost no writes. */
#ifndef QTTS_TESTS_STWRITE_H
#define QTTS_TESTS_STWRITE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char name[512];
    const char *dtype; /* "BF16", "F32", ... */
    int ndim;
    int64_t shape[4];
} stw_tensor;

typedef struct {
    stw_tensor *t;
    int n, cap;
} stw_list;

static inline size_t stw_dsize(const char *dt) {
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64")) return 8;
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32")) return 4;
    if (!strcmp(dt, "BF16") || !strcmp(dt, "F16") || !strcmp(dt, "I16")) return 2;
    return 1;
}

/* Append a tensor; shape given as up to 4 dims, ndim of them used. */
static inline void stw_add(stw_list *l, const char *dtype, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, (size_t)l->cap * sizeof *l->t);
        if (!l->t) abort();
    }
    stw_tensor *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
}

static inline size_t stw_nbytes(const stw_tensor *t) {
    size_t n = stw_dsize(t->dtype);
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* Header JSON with contiguous offsets in list order; *data_size = their total. */
static inline char *stw_header(const stw_list *l, size_t *data_size) {
    size_t cap = 256 + (size_t)l->n * 320, len = 0, off = 0;
    char *h = malloc(cap);
    if (!h) abort();
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < l->n; i++) {
        const stw_tensor *t = &l->t[i];
        size_t nb = stw_nbytes(t);
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++) len += (size_t)snprintf(h + len, cap - len, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    snprintf(h + len, cap - len, "}");
    *data_size = off;
    return h;
}

/* Write 8-byte length, header, then data (data_len bytes) or, when data is
 * NULL, extend the file to hold data_len bytes as a hole. Returns 0 on success. */
static inline int stw_write(const char *path, const char *header, const void *data, size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t hl = strlen(header);
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(hl >> (8 * i));
    int rc = fwrite(lb, 1, 8, f) == 8 && fwrite(header, 1, hl, f) == hl ? 0 : -1;
    if (rc == 0 && data && data_len) rc = fwrite(data, 1, data_len, f) == data_len ? 0 : -1;
    if (fflush(f) != 0) rc = -1;
    if (rc == 0 && !data && ftruncate(fileno(f), (off_t)(8 + hl + data_len)) != 0) rc = -1;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

static inline int stw_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

/* A fresh temp folder under $TMPDIR (or /tmp); caller removes it with stw_rmrf. */
static inline void stw_tmpdir(char *out, size_t n, const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(out, n, "%s/qtts_%s_XXXXXX", base && base[0] ? base : "/tmp", tag);
    if (!mkdtemp(out)) abort();
}

static inline void stw_rmrf(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
