/* Unit tests of the shared helpers: status strings, half-precision
 * conversion, NPY round trip (plain and zstd), atomic writes. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "npy.h"
#include "testutil.h"
#include "util.h"

static void test_status(void) {
    for (int s = 0; s < QTTS_STATUS_COUNT; s++) CHECK(strncmp(qtts_status_str((qtts_status)s), "QTTS_", 5) == 0, "status %d", s);
    CHECK(!strcmp(qtts_status_str(QTTS_ERR_SHAPE), "QTTS_ERR_SHAPE"), "name");
    CHECK(!strcmp(qtts_status_str((qtts_status)999), "QTTS_ERR_UNKNOWN_STATUS"), "out of range");
    qtts_err e = {0};
    CHECK(qtts_fail(&e, QTTS_ERR_MISSING, "tensor %s", "x.weight") == QTTS_ERR_MISSING, "fail returns");
    qtts_fail_prefix(&e, "%s: ", "model.safetensors");
    CHECK(!strcmp(e.msg, "model.safetensors: tensor x.weight"), "prefix: %s", e.msg);
}

static void test_half(void) {
    uint64_t s = 1;
    int bad16 = 0, badbf = 0;
    for (int i = 0; i < 100000; i++) {
        float x = tu_rand_uniform(&s) * 1000.0f;
        float h = qtts_f16_to_f32(qtts_f32_to_f16(x));
        if (!(fabsf(h - x) <= fabsf(x) * 1e-3f + 1e-4f)) bad16++;
        float b = qtts_bf16_to_f32(qtts_f32_to_bf16(x));
        if (!(fabsf(b - x) <= fabsf(x) * 8e-3f)) badbf++;
    }
    CHECK(bad16 == 0, "%d f16 round trips off", bad16);
    CHECK(badbf == 0, "%d bf16 round trips off", badbf);
    /* exact values and round-to-nearest-even */
    CHECK(qtts_f32_to_bf16(1.0f) == 0x3f80, "bf16(1)");
    CHECK(qtts_f32_to_f16(1.0f) == 0x3c00, "f16(1)");
    CHECK(qtts_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "f16 subnormal");
    CHECK(isnan(qtts_bf16_to_f32(qtts_f32_to_bf16(NAN))), "bf16 NaN");
    CHECK(qtts_f16_to_f32(0x7c00) == INFINITY, "f16 inf");
}

static void test_npy(void) {
    char dir[] = "/tmp/qtts_test_npyXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *names[] = {"a.npy", "a.npy.zst"};
    for (int k = 0; k < 2; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        int64_t shape[2] = {7, 16};
        int64_t v[7 * 16];
        for (int i = 0; i < 7 * 16; i++) v[i] = i * 31 - 500;
        qtts_err e = {0};
        CHECK(qtts_npy_save(path, QTTS_NPY_I64, 2, shape, v, &e) == QTTS_OK, "save %s: %s", path, e.msg);
        qtts_npy a;
        CHECK(qtts_npy_load(path, &a, &e) == QTTS_OK, "load %s: %s", path, e.msg);
        CHECK(a.ndim == 2 && a.shape[0] == 7 && a.shape[1] == 16 && a.dtype == QTTS_NPY_I64, "shape");
        CHECK(a.data && memcmp(a.data, v, sizeof v) == 0, "data");
        qtts_npy_free(&a);
        unlink(path);
    }
    qtts_err e = {0};
    qtts_npy a;
    CHECK(qtts_npy_parse("\x93NUMPY\x01\x00\xff\x7f", 10, "lie", &a, &e) == QTTS_ERR_FORMAT, "header length lie");
    CHECK(qtts_npy_load("/nonexistent/x.npy", &a, &e) == QTTS_ERR_IO, "missing file");
    CHECK(strstr(e.msg, "/nonexistent/x.npy") != NULL, "message names file: %s", e.msg);
    rmdir(dir);
}

int main(void) {
    test_status();
    test_half();
    test_npy();
    return tu_finish("test_util");
}
