/* Minimal test harness: CHECK macros that count, a closing line
 * "N passed, N failed" that CI reads, the skip code 77, and comparison
 * helpers (relative L2 with the first mismatches printed; NaN never passes). */
#ifndef QTTS_TESTUTIL_H
#define QTTS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "safetensors.h"

#define TEST_SKIP 77

extern int tu_passed, tu_failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            tu_passed++;                                                     \
        } else {                                                             \
            tu_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* Prints the closing line and returns the process exit code. */
int tu_finish(const char *suite);
/* Print a skip reason and return TEST_SKIP (use: return tu_skip("...")). */
int tu_skip(const char *why);

/* Relative L2 error ||a-b|| / max(||b||, tiny); +inf if any NaN/Inf appears. */
double tu_rel_l2(const float *a, const float *ref, size_t n);
/* Compare with tolerance; prints name, error and the first few mismatches. */
bool tu_close(const char *name, const float *got, const float *ref, size_t n, double tol);
/* Signal-to-noise ratio in dB of got against ref. */
double tu_snr_db(const float *got, const float *ref, size_t n);

/* A checkpoint tensor (F32) viewing host floats, for uploading test weights:
 * ndim 1-3, shape s0 [x s1 [x s2]]. */
qtts_st_tensor tu_f32_tensor(const char *name, const float *data, int ndim, int64_t s0, int64_t s1, int64_t s2);

/* Deterministic RNG for seeded random inputs (splitmix64). */
uint64_t tu_rand_u64(uint64_t *state);
float tu_rand_uniform(uint64_t *state); /* [-1, 1) */

/* Path helpers: fixture root (tests/fixtures) and shared dir. */
const char *tu_fixture_dir(void);
const char *tu_shared_dir(void);
/* argv[*i] (and its value) when it is one of --cuda-graphs, --cuda-pdl,
 * --cuda-persistent with on|off: sets the field of p, advances *i past the
 * value and returns true; false leaves both alone. */
bool tu_backend_arg(int argc, char **argv, int *i, qtts_backend_params *p);
/* Run a shell command, capture stdout+stderr into buf, return exit status (-1 on failure). */
int tu_run(const char *cmd, char *buf, size_t bufsize);

#endif
