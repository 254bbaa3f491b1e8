/* Internal helpers shared by every subsystem: error recording, checked
 * allocation, whole-file reads, bf16/f16 conversion, timing. */
#ifndef QTTS_UTIL_H
#define QTTS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qtts/qtts.h"

#if defined(__GNUC__)
#define QTTS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QTTS_PRINTF(a, b)
#endif

/* Record status and message in err (may be NULL) and return the status, so a
 * failure path reads `return qtts_fail(err, QTTS_ERR_SHAPE, "...", ...);`. */
qtts_status qtts_fail(qtts_err *err, qtts_status s, const char *fmt, ...) QTTS_PRINTF(3, 4);
/* Prefix an existing message with context: "config.json: " + old message. */
qtts_status qtts_fail_prefix(qtts_err *err, const char *fmt, ...) QTTS_PRINTF(2, 3);
void qtts_err_clear(qtts_err *err);

/* QTTS_TRY: evaluate a qtts_status expression; on failure store it in the
 * enclosing function's `st` and jump to its `cleanup:` label. */
#define QTTS_TRY(expr)                     \
    do {                                   \
        st = (expr);                       \
        if (st != QTTS_OK) goto cleanup;   \
    } while (0)
/* QTTS_CHECK: like QTTS_TRY for a condition; records status and message. */
#define QTTS_CHECK(cond, err, status, ...)                     \
    do {                                                       \
        if (!(cond)) {                                         \
            st = qtts_fail((err), (status), __VA_ARGS__);      \
            goto cleanup;                                      \
        }                                                      \
    } while (0)

/* Allocation that records QTTS_ERR_OOM naming what was being allocated. */
void *qtts_malloc(size_t n, qtts_err *err, const char *what);
void *qtts_calloc(size_t count, size_t size, qtts_err *err, const char *what);
/* Overflow-checked a*b; returns false on overflow. */
bool qtts_mul_ok(size_t a, size_t b, size_t *out);

/* Read a whole file into a NUL-terminated heap buffer. */
qtts_status qtts_read_file(const char *path, char **data, size_t *size, qtts_err *err);
/* Write a file atomically: write path.tmp.PID, fsync, rename. */
qtts_status qtts_write_file_atomic(const char *path, const void *data, size_t size, qtts_err *err);
/* Join dir and name into out (size n); fails if it does not fit. */
qtts_status qtts_path_join(char *out, size_t n, const char *dir, const char *name, qtts_err *err);
bool qtts_file_exists(const char *path);

static inline float qtts_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Round to nearest even, NaN preserved. */
static inline uint16_t qtts_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float qtts_f16_to_f32(uint16_t h);
uint16_t qtts_f32_to_f16(float f);

/* Monotonic time in seconds. */
double qtts_now(void);

#endif
