/* NPY arrays (numpy format 1.0/2.0/3.0), optionally zstd-compressed (.npy.zst):
 * the exchange format of reference fixtures and of `--codes-out`. */
#ifndef QTTS_NPY_H
#define QTTS_NPY_H

#include <stdint.h>

#include "util.h"

typedef enum qtts_npy_dtype {
    QTTS_NPY_F32,
    QTTS_NPY_F64,
    QTTS_NPY_I32,
    QTTS_NPY_I64,
} qtts_npy_dtype;

#define QTTS_NPY_MAX_DIMS 8

typedef struct qtts_npy {
    qtts_npy_dtype dtype;
    int ndim;
    int64_t shape[QTTS_NPY_MAX_DIMS];
    int64_t count; /* product of shape */
    void *data;    /* count elements of dtype, C order, native little-endian */
} qtts_npy;

/* Load path; a name ending in ".zst" is decompressed first. Fortran-order and
 * big-endian arrays are rejected. */
qtts_status qtts_npy_load(const char *path, qtts_npy *out, qtts_err *err);
/* Convenience: load and convert to a fresh float array (f32/f64/i32/i64 in). */
qtts_status qtts_npy_load_f32(const char *path, float **data, int64_t *count, qtts_npy *shape_out, qtts_err *err);
/* Parse an in-memory NPY image (used by the loader and the fuzzer). */
qtts_status qtts_npy_parse(const void *buf, size_t size, const char *name, qtts_npy *out, qtts_err *err);
/* Write atomically; ".zst" suffix compresses. */
qtts_status qtts_npy_save(const char *path, qtts_npy_dtype dtype, int ndim, const int64_t *shape,
                          const void *data, qtts_err *err);
void qtts_npy_free(qtts_npy *a);
size_t qtts_npy_dtype_size(qtts_npy_dtype t);

#endif
