/* NPY reader/writer. Header: magic "\x93NUMPY", version, header length, then a
 * Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), }. */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

size_t qtts_npy_dtype_size(qtts_npy_dtype t) {
    switch (t) {
    case QTTS_NPY_F32: return 4;
    case QTTS_NPY_I32: return 4;
    case QTTS_NPY_F64: return 8;
    case QTTS_NPY_I64: return 8;
    }
    return 0;
}

static const char *dtype_descr(qtts_npy_dtype t) {
    switch (t) {
    case QTTS_NPY_F32: return "<f4";
    case QTTS_NPY_F64: return "<f8";
    case QTTS_NPY_I32: return "<i4";
    case QTTS_NPY_I64: return "<i8";
    }
    return "?";
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Find 'key': in the header dict and return a pointer just past the colon. */
static const char *dict_value(const char *h, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < n; i++) {
        if ((h[i] == '\'' || h[i] == '"') && memcmp(h + i + 1, key, kl) == 0 && h[i + 1 + kl] == h[i]) {
            const char *p = h + i + kl + 2;
            while (p < h + n && (*p == ' ' || *p == ':')) p++;
            return p;
        }
    }
    return NULL;
}

qtts_status qtts_npy_parse(const void *buf, size_t size, const char *name, qtts_npy *out, qtts_err *err) {
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: not an NPY file (bad magic)", name);
    size_t hlen, hoff;
    if (b[6] == 1) {
        hlen = (size_t)b[8] | ((size_t)b[9] << 8);
        hoff = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (size < 12) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: truncated NPY header", name);
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        hoff = 12;
    } else {
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: unsupported NPY version %d", name, b[6]);
    }
    if (hlen > 65536 || hoff + hlen > size)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: NPY header length %zu exceeds file size %zu", name, hlen, size);
    const char *h = (const char *)b + hoff;
    const char *d = dict_value(h, hlen, "descr");
    if (!d || d + 4 > h + hlen) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: NPY header has no descr", name);
    d++; /* opening quote */
    if (!memcmp(d, "<f4", 3)) out->dtype = QTTS_NPY_F32;
    else if (!memcmp(d, "<f8", 3)) out->dtype = QTTS_NPY_F64;
    else if (!memcmp(d, "<i4", 3)) out->dtype = QTTS_NPY_I32;
    else if (!memcmp(d, "<i8", 3)) out->dtype = QTTS_NPY_I64;
    else return qtts_fail(err, QTTS_ERR_DTYPE, "%s: unsupported NPY dtype '%.3s' (want <f4 <f8 <i4 <i8)", name, d);
    const char *fo = dict_value(h, hlen, "fortran_order");
    if (!fo || fo + 5 > h + hlen || memcmp(fo, "False", 5) != 0)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: Fortran-order NPY arrays are not supported", name);
    const char *s = dict_value(h, hlen, "shape");
    if (!s || *s != '(') return qtts_fail(err, QTTS_ERR_FORMAT, "%s: NPY header has no shape", name);
    s++;
    int64_t count = 1;
    while (s < h + hlen && *s != ')') {
        while (s < h + hlen && (*s == ' ' || *s == ',')) s++;
        if (s >= h + hlen || *s == ')') break;
        if (*s < '0' || *s > '9') return qtts_fail(err, QTTS_ERR_FORMAT, "%s: bad NPY shape", name);
        int64_t v = 0;
        while (s < h + hlen && *s >= '0' && *s <= '9') {
            v = v * 10 + (*s - '0');
            if (v > ((int64_t)1 << 40)) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: NPY dimension too large", name);
            s++;
        }
        if (out->ndim >= QTTS_NPY_MAX_DIMS) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: too many NPY dims", name);
        out->shape[out->ndim++] = v;
        if (v != 0 && count > ((int64_t)1 << 40) / v) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: NPY array too large", name);
        count *= v;
    }
    size_t esz = qtts_npy_dtype_size(out->dtype);
    size_t need = (size_t)count * esz;
    if (size - hoff - hlen < need)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: NPY data truncated (%zu bytes, need %zu)", name, size - hoff - hlen, need);
    out->count = count;
    out->data = qtts_malloc(need, err, name);
    if (!out->data) return QTTS_ERR_OOM;
    memcpy(out->data, b + hoff + hlen, need);
    return QTTS_OK;
}

qtts_status qtts_npy_load(const char *path, qtts_npy *out, qtts_err *err) {
    char *raw = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    qtts_status st = qtts_read_file(path, &raw, &n, err);
    if (st) return st;
    if (ends_with(path, ".zst")) {
        unsigned long long dn = ZSTD_getFrameContentSize(raw, n);
        if (dn == ZSTD_CONTENTSIZE_ERROR || dn == ZSTD_CONTENTSIZE_UNKNOWN || dn > ((size_t)1 << 34)) {
            free(raw);
            return qtts_fail(err, QTTS_ERR_FORMAT, "%s: not a zstd frame with a known size", path);
        }
        char *dec = qtts_malloc((size_t)dn, err, path);
        if (!dec) {
            free(raw);
            return QTTS_ERR_OOM;
        }
        size_t got = ZSTD_decompress(dec, (size_t)dn, raw, n);
        free(raw);
        if (ZSTD_isError(got) || got != dn) {
            free(dec);
            return qtts_fail(err, QTTS_ERR_FORMAT, "%s: zstd decompression failed", path);
        }
        raw = dec;
        n = got;
    }
    st = qtts_npy_parse(raw, n, path, out, err);
    free(raw);
    return st;
}

qtts_status qtts_npy_load_f32(const char *path, float **data, int64_t *count, qtts_npy *shape_out, qtts_err *err) {
    qtts_npy a;
    qtts_status st = qtts_npy_load(path, &a, err);
    if (st) return st;
    float *f = qtts_malloc((size_t)a.count * sizeof(float), err, path);
    if (!f) {
        qtts_npy_free(&a);
        return QTTS_ERR_OOM;
    }
    for (int64_t i = 0; i < a.count; i++) {
        switch (a.dtype) {
        case QTTS_NPY_F32: f[i] = ((float *)a.data)[i]; break;
        case QTTS_NPY_F64: f[i] = (float)((double *)a.data)[i]; break;
        case QTTS_NPY_I32: f[i] = (float)((int32_t *)a.data)[i]; break;
        case QTTS_NPY_I64: f[i] = (float)((int64_t *)a.data)[i]; break;
        }
    }
    *data = f;
    if (count) *count = a.count;
    if (shape_out) {
        *shape_out = a;
        shape_out->data = NULL;
    }
    qtts_npy_free(&a);
    return QTTS_OK;
}

qtts_status qtts_npy_save(const char *path, qtts_npy_dtype dtype, int ndim, const int64_t *shape,
                          const void *data, qtts_err *err) {
    char hdr[512];
    int p = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype_descr(dtype));
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        p += snprintf(hdr + p, sizeof hdr - (size_t)p, "%lld%s", (long long)shape[i], (ndim == 1 || i + 1 < ndim) ? ", " : "");
        count *= shape[i];
    }
    p += snprintf(hdr + p, sizeof hdr - (size_t)p, "), }");
    /* pad with spaces so that 10 + header length is a multiple of 64, end with \n */
    int total = 10 + p + 1;
    int pad = (64 - total % 64) % 64;
    memset(hdr + p, ' ', (size_t)pad);
    p += pad;
    hdr[p++] = '\n';
    size_t dbytes = (size_t)count * qtts_npy_dtype_size(dtype);
    size_t n = 10 + (size_t)p + dbytes;
    unsigned char *buf = qtts_malloc(n, err, path);
    if (!buf) return QTTS_ERR_OOM;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(p & 0xff);
    buf[9] = (unsigned char)(p >> 8);
    memcpy(buf + 10, hdr, (size_t)p);
    memcpy(buf + 10 + p, data, dbytes);
    qtts_status st;
    if (ends_with(path, ".zst")) {
        size_t cap = ZSTD_compressBound(n);
        void *z = qtts_malloc(cap, err, path);
        if (!z) {
            free(buf);
            return QTTS_ERR_OOM;
        }
        size_t zn = ZSTD_compress(z, cap, buf, n, 10);
        if (ZSTD_isError(zn)) {
            free(z);
            free(buf);
            return qtts_fail(err, QTTS_ERR_INTERNAL, "%s: zstd compression failed", path);
        }
        st = qtts_write_file_atomic(path, z, zn, err);
        free(z);
    } else {
        st = qtts_write_file_atomic(path, buf, n, err);
    }
    free(buf);
    return st;
}

void qtts_npy_free(qtts_npy *a) {
    free(a->data);
    a->data = NULL;
}
