/* Safetensors checkpoints through mmap, zero-copy: a single file or shards
 * listed by model.safetensors.index.json. Every offset and size is checked
 * against its file; the JSON header is limited to QTTS_ST_MAX_HEADER bytes. */
#ifndef QTTS_SAFETENSORS_H
#define QTTS_SAFETENSORS_H

#include <stdint.h>

#include "util.h"

#define QTTS_ST_MAX_HEADER (100u << 20) /* 100 MiB, as the reference Rust crate */
#define QTTS_ST_MAX_DIMS 8

typedef enum qtts_dtype {
    QTTS_DT_F32 = 0,
    QTTS_DT_F16,
    QTTS_DT_BF16,
    QTTS_DT_F64,
    QTTS_DT_I64,
    QTTS_DT_I32,
    QTTS_DT_I16,
    QTTS_DT_I8,
    QTTS_DT_U8,
    QTTS_DT_BOOL,
    QTTS_DT_COUNT
} qtts_dtype;

/* Bit masks for qtts_st_get's `allowed` argument. */
#define QTTS_DTM(t) (1u << (t))
#define QTTS_DTM_FLOAT (QTTS_DTM(QTTS_DT_F32) | QTTS_DTM(QTTS_DT_F16) | QTTS_DTM(QTTS_DT_BF16))

const char *qtts_dtype_name(qtts_dtype t); /* "BF16" etc, as in the file */
size_t qtts_dtype_size(qtts_dtype t);

typedef struct qtts_st_tensor {
    const char *name;
    qtts_dtype dtype;
    int ndim;
    int64_t shape[QTTS_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* inside the mmap, read-only */
    size_t nbytes;
    int shard;        /* index into qtts_safetensors.shard_paths */
} qtts_st_tensor;

typedef struct qtts_safetensors {
    int n_tensors;
    qtts_st_tensor *tensors; /* sorted by name */
    int n_shards;
    char **shard_paths;
    void **maps;
    size_t *map_sizes;
    char *names; /* storage for tensor names */
} qtts_safetensors;

/* Open `path`: a .safetensors file, a .safetensors.index.json, or a folder
 * holding model.safetensors or model.safetensors.index.json. */
qtts_status qtts_st_open(qtts_safetensors *st, const char *path, qtts_err *err);
void qtts_st_close(qtts_safetensors *st);

/* Parse one file image (header and bounds checks, no mmap). Tensors point
 * into buf. Used by qtts_st_open and by the fuzzer. `name` labels errors. */
qtts_status qtts_st_parse(const void *buf, size_t size, const char *name, int shard,
                          qtts_st_tensor **tensors, int *n_tensors, char **names, qtts_err *err);

const qtts_st_tensor *qtts_st_find(const qtts_safetensors *st, const char *name);

/* The one lookup of weights: tensor `name` must exist, have a dtype in
 * `allowed` and exactly the shape shape[0..ndim). On failure the message
 * names the tensor, the expected and the found dtype/shape, e.g.
 * "talker.model.layers.3.mlp.up_proj.weight: expected BF16|F16|F32 [6144,2048], got F32 [6144]". */
qtts_status qtts_st_get(const qtts_safetensors *st, const char *name, unsigned allowed, int ndim,
                        const int64_t *shape, const qtts_st_tensor **out, qtts_err *err);

/* Convert a float tensor (F32/F16/BF16) to f32 into dst (numel floats). */
void qtts_st_to_f32(const qtts_st_tensor *t, float *dst);
/* Same for a row range [row0, row0+nrows) of a 2-D tensor. */
void qtts_st_rows_to_f32(const qtts_st_tensor *t, int64_t row0, int64_t nrows, float *dst);

/* Sum of numel and of nbytes over tensors whose name starts with prefix
 * (and not with any of the `exclude` prefixes, NULL-terminated, may be NULL). */
void qtts_st_count(const qtts_safetensors *st, const char *prefix, const char *const *exclude,
                   int64_t *params, int64_t *bytes);

#endif
