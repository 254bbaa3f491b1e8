/* Safetensors reader against hand-built files: good single files and shards,
 * exact bf16/f16/f32 conversion, and every kind of corrupt file, each of which
 * must fail with a message naming the file and the tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"
#include "stwrite.h"
#include "testutil.h"

static char dir[512];

static const char *tmp(const char *name) {
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* Open `header`+`data` written as `name`; return the status, leave err. */
static qtts_status open_raw(const char *name, const char *header, const void *data, size_t n, qtts_err *err) {
    const char *path = tmp(name);
    if (stw_write(path, header, data, n) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    qtts_safetensors st;
    qtts_err_clear(err);
    qtts_status s = qtts_st_open(&st, path, err);
    if (s == QTTS_OK) qtts_st_close(&st);
    return s;
}

static bool has(const qtts_err *e, const char *a, const char *b) {
    return strstr(e->msg, a) && (!b || strstr(e->msg, b));
}

#define EXPECT_FAIL(status_, name_, header_, data_, n_, sub1_, sub2_)                                                     \
    do {                                                                                                                   \
        qtts_err e_ = {0};                                                                                                 \
        qtts_status s_ = open_raw(name_, header_, data_, n_, &e_);                                                         \
        CHECK(s_ == (status_), "%s: got %s (%s)", name_, qtts_status_str(s_), e_.msg);                                   \
        CHECK(has(&e_, name_, NULL) && has(&e_, sub1_, sub2_), "%s: message '%s' lacks '%s'/'%s'", name_, e_.msg,      \
              sub1_, sub2_ ? (const char *)sub2_ : "");                                                                   \
    } while (0)

static void test_good_and_conversion(void) {
    /* bf16 1.0, -2.5, 0.15625 (exact), f16 1.0, -0.5, 65504, smallest subnormal, f32 3.25 -0.0 */
    unsigned char data[64];
    size_t n = 0;
    const uint16_t bf[3] = {0x3f80, 0xc020, 0x3e20};
    const uint16_t hf[4] = {0x3c00, 0xb800, 0x7bff, 0x0001};
    const float f32[2] = {3.25f, -0.0f};
    memcpy(data + n, bf, 6), n += 6;
    memcpy(data + n, hf, 8), n += 8;
    memcpy(data + n, f32, 8), n += 8;
    /* a header of odd length puts the data block at an odd address (exercises unaligned reads) */
    const char *h = "{\"a.bf\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                    "\"b.hf\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[6,14]},"
                    "\"c.f\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[14,22]},"
                    "\"d.empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[22,22]}}  ";
    CHECK(strlen(h) % 2 == 1, "header length %zu should be odd", strlen(h));
    const char *path = tmp("good.safetensors");
    CHECK(stw_write(path, h, data, n) == 0, "write");
    qtts_safetensors st;
    qtts_err err = {0};
    qtts_status s = qtts_st_open(&st, path, &err);
    CHECK(s == QTTS_OK, "open good: %s", err.msg);
    if (s != QTTS_OK) return;
    CHECK(st.n_tensors == 4, "n_tensors %d", st.n_tensors);
    const qtts_st_tensor *t;
    float out[8];
    s = qtts_st_get(&st, "a.bf", QTTS_DTM_FLOAT, 1, (int64_t[]){3}, &t, &err);
    CHECK(s == QTTS_OK, "get a.bf: %s", err.msg);
    if (s == QTTS_OK) {
        qtts_st_to_f32(t, out);
        CHECK(out[0] == 1.0f && out[1] == -2.5f && out[2] == 0.15625f, "bf16 values %g %g %g", out[0], out[1], out[2]);
    }
    s = qtts_st_get(&st, "b.hf", QTTS_DTM(QTTS_DT_F16), 2, (int64_t[]){2, 2}, &t, &err);
    CHECK(s == QTTS_OK, "get b.hf: %s", err.msg);
    if (s == QTTS_OK) {
        qtts_st_to_f32(t, out);
        CHECK(out[0] == 1.0f && out[1] == -0.5f && out[2] == 65504.0f && out[3] == ldexpf(1.0f, -24), "f16 values %g %g %g %g",
              out[0], out[1], out[2], out[3]);
        out[0] = out[1] = 99;
        qtts_st_rows_to_f32(t, 1, 1, out);
        CHECK(out[0] == 65504.0f && out[1] == ldexpf(1.0f, -24), "f16 row 1: %g %g", out[0], out[1]);
    }
    s = qtts_st_get(&st, "c.f", QTTS_DTM_FLOAT, 2, (int64_t[]){1, 2}, &t, &err);
    CHECK(s == QTTS_OK, "get c.f: %s", err.msg);
    if (s == QTTS_OK) {
        qtts_st_to_f32(t, out);
        CHECK(out[0] == 3.25f && out[1] == 0.0f && signbit(out[1]), "f32 values %g %g", out[0], out[1]);
    }
    CHECK(qtts_st_find(&st, "d.empty") && qtts_st_find(&st, "d.empty")->numel == 0, "empty tensor");

    /* lookups that must fail with the expected and the found dtype/shape */
    s = qtts_st_get(&st, "a.bf", QTTS_DTM_FLOAT, 2, (int64_t[]){3, 1}, &t, &err);
    CHECK(s == QTTS_ERR_SHAPE && t == NULL, "wrong shape: %s", qtts_status_str(s));
    CHECK(has(&err, "a.bf", "[3,1]") && strstr(err.msg, "got BF16 [3]"), "wrong-shape message: %s", err.msg);
    s = qtts_st_get(&st, "c.f", QTTS_DTM(QTTS_DT_BF16), 2, (int64_t[]){1, 2}, &t, &err);
    CHECK(s == QTTS_ERR_DTYPE, "wrong dtype: %s", qtts_status_str(s));
    CHECK(has(&err, "c.f: expected BF16 [1,2], got F32 [1,2]", NULL), "wrong-dtype message: %s", err.msg);
    s = qtts_st_get(&st, "talker.model.norm.weight", QTTS_DTM_FLOAT, 1, (int64_t[]){1024}, &t, &err);
    CHECK(s == QTTS_ERR_MISSING, "missing: %s", qtts_status_str(s));
    CHECK(has(&err, "talker.model.norm.weight", "missing"), "missing message: %s", err.msg);

    int64_t p, b;
    qtts_st_count(&st, "", NULL, &p, &b);
    CHECK(p == 3 + 4 + 2 && b == 22, "count all %lld %lld", (long long)p, (long long)b);
    static const char *const ex[] = {"b.", NULL};
    qtts_st_count(&st, "", ex, &p, &b);
    CHECK(p == 5 && b == 14, "count excluding b. %lld %lld", (long long)p, (long long)b);
    qtts_st_close(&st);
}

static void test_corrupt(void) {
    const unsigned char z[64] = {0};
    /* empty and too-short files */
    {
        const char *path = tmp("empty.safetensors");
        CHECK(stw_write_text(path, "") == 0, "write");
        qtts_safetensors st;
        qtts_err err = {0};
        CHECK(qtts_st_open(&st, path, &err) == QTTS_ERR_FORMAT && has(&err, "empty.safetensors", "empty"), "empty: %s", err.msg);
        path = tmp("short.safetensors");
        CHECK(stw_write_text(path, "\x05\x00\x00") == 0, "write");
        CHECK(qtts_st_open(&st, path, &err) == QTTS_ERR_FORMAT && has(&err, "short.safetensors", "truncated"), "short: %s", err.msg);
    }
    /* a length field larger than the file */
    {
        const char *path = tmp("lenbig.safetensors");
        FILE *f = fopen(path, "wb");
        unsigned char hdr[8 + 2] = {0x00, 0x10, 0, 0, 0, 0, 0, 0, '{', '}'};
        fwrite(hdr, 1, sizeof hdr, f);
        fclose(f);
        qtts_safetensors st;
        qtts_err err = {0};
        CHECK(qtts_st_open(&st, path, &err) == QTTS_ERR_FORMAT && has(&err, "lenbig.safetensors", "4096"), "len > file: %s", err.msg);
        /* and one above the 100 MiB limit */
        hdr[5] = 0x10;
        f = fopen(path, "wb");
        fwrite(hdr, 1, sizeof hdr, f);
        fclose(f);
        CHECK(qtts_st_open(&st, path, &err) == QTTS_ERR_FORMAT && has(&err, "lenbig.safetensors", "limit"), "len > limit: %s", err.msg);
    }
    /* a length field that overstates the JSON: the data block would shift */
    {
        const char *h = "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}";
        const char *path = tmp("lies.safetensors");
        FILE *f = fopen(path, "wb");
        uint64_t hl = strlen(h) + 4;
        unsigned char lb[8];
        for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(hl >> (8 * i));
        fwrite(lb, 1, 8, f);
        fwrite(h, 1, strlen(h), f);
        fwrite("\x01\x02\x03\x04\x05\x06\x07\x08", 1, 8, f);
        fclose(f);
        qtts_safetensors st;
        qtts_err err = {0};
        CHECK(qtts_st_open(&st, path, &err) == QTTS_ERR_FORMAT && has(&err, "lies.safetensors", "header length"), "overstated: %s",
              err.msg);
        /* understated: the JSON is cut */
        f = fopen(path, "wb");
        hl = strlen(h) - 3;
        for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(hl >> (8 * i));
        fwrite(lb, 1, 8, f);
        fwrite(h, 1, strlen(h), f);
        fwrite("\x01\x02\x03\x04", 1, 4, f);
        fclose(f);
        CHECK(qtts_st_open(&st, path, &err) == QTTS_ERR_FORMAT && has(&err, "lies.safetensors", "not a JSON object"), "understated: %s",
              err.msg);
    }
    EXPECT_FAIL(QTTS_ERR_FORMAT, "notjson.safetensors", "[1,2,3]", z, 0, "not a JSON object", NULL);
    EXPECT_FAIL(QTTS_ERR_FORMAT, "overlap.safetensors",
                "{\"x.a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"x.b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                z, 16, "overlap", "x.b");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "range.safetensors", "{\"y.w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", z, 16,
                "y.w", "past the end");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "truncdata.safetensors", "{\"y.t\":{\"dtype\":\"BF16\",\"shape\":[2,8],\"data_offsets\":[0,32]}}", z,
                20, "y.t", "truncated");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "span.safetensors", "{\"z.w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", z, 16,
                "z.w", "needs 12");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "backwards.safetensors", "{\"z.b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", z, 16,
                "z.b", "end before begin");
    EXPECT_FAIL(QTTS_ERR_DTYPE, "dtype.safetensors", "{\"q.w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", z, 4,
                "q.w", "unknown dtype");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "nodtype.safetensors", "{\"q.n\":{\"shape\":[4],\"data_offsets\":[0,4]}}", z, 4, "q.n",
                "missing dtype");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "negshape.safetensors", "{\"q.s\":{\"dtype\":\"U8\",\"shape\":[-4],\"data_offsets\":[0,4]}}", z, 4,
                "q.s", "shape[0]");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "fracoff.safetensors", "{\"q.o\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4.5]}}", z, 8,
                "q.o", "data_offsets");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "overflow.safetensors",
                "{\"q.v\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", z, 8, "q.v", "overflow");
    EXPECT_FAIL(QTTS_ERR_FORMAT, "dup.safetensors",
                "{\"d.w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"d.w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                z, 8, "d.w", "twice");
}

static void test_shards(void) {
    char sub[700];
    snprintf(sub, sizeof sub, "%s/sharded", dir);
    CHECK(mkdir(sub, 0755) == 0, "mkdir");
    float a[4] = {1, 2, 3, 4}, b[2] = {-1, 0.5f};
    char p[900];
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", sub);
    CHECK(stw_write(p, "{\"m.a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", a, 16) == 0, "write");
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", sub);
    CHECK(stw_write(p, "{\"m.b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"__metadata__\":{\"format\":\"pt\"}}",
                    b, 8) == 0,
          "write");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", sub);
    CHECK(stw_write_text(p, "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"m.a\":\"model-00001-of-00002.safetensors\","
                            "\"m.b\":\"model-00002-of-00002.safetensors\"}}") == 0,
          "write");
    qtts_safetensors st;
    qtts_err err = {0};
    qtts_status s = qtts_st_open(&st, sub, &err); /* the folder form finds the index */
    CHECK(s == QTTS_OK, "open sharded: %s", err.msg);
    if (s == QTTS_OK) {
        CHECK(st.n_shards == 2 && st.n_tensors == 2, "shards %d tensors %d", st.n_shards, st.n_tensors);
        const qtts_st_tensor *ta = qtts_st_find(&st, "m.a"), *tb = qtts_st_find(&st, "m.b");
        CHECK(ta && tb && ta->shard != tb->shard, "both tensors found in different shards");
        float out[4];
        if (ta && tb) {
            qtts_st_to_f32(ta, out);
            CHECK(out[0] == 1 && out[3] == 4, "shard 1 data %g %g", out[0], out[3]);
            qtts_st_to_f32(tb, out);
            CHECK(out[0] == -1 && out[1] == 0.5f, "shard 2 data %g %g", out[0], out[1]);
        }
        qtts_st_close(&st);
    }
    /* the same tensor in both shards */
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", sub);
    CHECK(stw_write(p, "{\"m.a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", b, 8) == 0, "write");
    s = qtts_st_open(&st, sub, &err);
    CHECK(s == QTTS_ERR_FORMAT && has(&err, "m.a", "two shards") && strstr(err.msg, "model-00002-of-00002.safetensors"),
          "duplicate across shards: %s", err.msg);
    /* a shard the index names but that does not exist */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", sub);
    CHECK(stw_write_text(p, "{\"weight_map\":{\"m.a\":\"model-00001-of-00002.safetensors\",\"m.c\":\"gone.safetensors\"}}") == 0,
          "write");
    s = qtts_st_open(&st, sub, &err);
    CHECK(s == QTTS_ERR_MISSING && has(&err, "gone.safetensors", NULL), "missing shard: %s", err.msg);
    CHECK(stw_write_text(p, "{\"weight_map\":{\"m.a\":\"../x.safetensors\"}}") == 0, "write");
    s = qtts_st_open(&st, sub, &err);
    CHECK(s == QTTS_ERR_FORMAT && has(&err, "index.json", "m.a"), "shard path escaping the folder: %s", err.msg);
    CHECK(stw_write_text(p, "{\"weight_map\":") == 0, "write");
    s = qtts_st_open(&st, sub, &err);
    CHECK(s == QTTS_ERR_FORMAT && has(&err, "index.json", "JSON"), "malformed index: %s", err.msg);
    /* a folder with neither file */
    snprintf(p, sizeof p, "%s/nothing", dir);
    CHECK(mkdir(p, 0755) == 0, "mkdir");
    s = qtts_st_open(&st, p, &err);
    CHECK(s == QTTS_ERR_MISSING && has(&err, "nothing", "model.safetensors"), "empty folder: %s", err.msg);
}

/* A parsed image may also come straight from memory (the fuzzer's path). */
static void test_parse_memory(void) {
    const char *h = "{\"k\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}";
    size_t hl = strlen(h);
    unsigned char buf[128] = {0};
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, h, hl);
    memcpy(buf + 8 + hl, "\x2a\0\0\0", 4);
    qtts_st_tensor *ts;
    int n;
    char *names;
    qtts_err err = {0};
    qtts_status s = qtts_st_parse(buf, 8 + hl + 4, "mem", 0, &ts, &n, &names, &err);
    CHECK(s == QTTS_OK && n == 1 && ts[0].ndim == 0 && ts[0].numel == 1 && ts[0].nbytes == 4, "scalar tensor: %s", err.msg);
    if (s == QTTS_OK) {
        free(ts);
        free(names);
    }
}

int main(void) {
    stw_tmpdir(dir, sizeof dir, "st");
    test_good_and_conversion();
    test_corrupt();
    test_shards();
    test_parse_memory();
    stw_rmrf(dir);
    return tu_finish("safetensors");
}
