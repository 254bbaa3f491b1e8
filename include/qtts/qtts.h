/* qtts public API: status codes and the error record every call fills.
 * Library calls never exit or abort on bad input: they return a qtts_status and
 * write a detail message into the caller's qtts_err naming what failed. */
#ifndef QTTS_QTTS_H
#define QTTS_QTTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qtts_status {
    QTTS_OK = 0,
    QTTS_ERR_INVALID_ARG,   /* a caller passed something impossible */
    QTTS_ERR_IO,            /* open/read/write/mmap failed */
    QTTS_ERR_FORMAT,        /* a file is corrupt, truncated or malformed */
    QTTS_ERR_MISSING,       /* a tensor, key or file that must exist does not */
    QTTS_ERR_DTYPE,         /* a tensor has the wrong or an unknown dtype */
    QTTS_ERR_SHAPE,         /* a tensor or array has the wrong shape */
    QTTS_ERR_CONFIG,        /* a config value is missing, of the wrong type, or unsupported */
    QTTS_ERR_TEXT,          /* text is empty or not valid UTF-8 */
    QTTS_ERR_UNKNOWN_NAME,  /* unknown speaker, language, mode */
    QTTS_ERR_OOM,           /* allocation failed */
    QTTS_ERR_UNSUPPORTED,   /* valid request this build or checkpoint cannot serve */
    QTTS_ERR_DEVICE,        /* CUDA / cuBLAS failure or no usable GPU */
    QTTS_ERR_JOB,           /* a job file is invalid */
    QTTS_ERR_INTERRUPTED,   /* stopped on request (signal) */
    QTTS_ERR_INTERNAL,      /* a bug: an invariant did not hold */
    QTTS_STATUS_COUNT
} qtts_status;

/* Short stable name of a status, e.g. "QTTS_ERR_SHAPE". Never NULL. */
const char *qtts_status_str(qtts_status s);

/* Error record: status plus a human-readable detail naming the offending
 * file, tensor, key or JSON path. Zero-initialise before first use. */
typedef struct qtts_err {
    qtts_status status;
    char msg[1024];
} qtts_err;

#ifdef __cplusplus
}
#endif
#endif
