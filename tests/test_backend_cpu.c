/* CPU backend properties the renderer relies on: a row's matmul result must
 * not depend on how many rows share the call (batch invariance), checked at
 * the real model's shapes and the tiny fixture's, where BLAS kernels differ
 * (sgemv rounds unlike sgemm, and sgemm's kernels follow the call's size),
 * nor on the thread count. Plus the attention op against a two-pass softmax reference, with GQA
 * and a sliding window; embed with out-of-range ids; and every backend's op
 * table complete (CUDA's too, without a GPU). */
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "testutil.h"
#ifdef QTTS_HAVE_CUDA
#include "backend_cuda.h"
#endif

static qtts_tensor weight(float *data, int out, int in) {
    qtts_tensor t = {.data = data, .dtype = QTTS_DT_F32, .ndim = 2, .shape = {out, in}, .numel = (int64_t)out * in};
    return t;
}

static void test_matmul_rows(qtts_backend *be) {
    /* 1000 and 1031 outputs end in a partial column block (GEMM_BLOCK); the
     * last shapes are the tiny fixture talker's (q/k/v, o, gate/up, down,
     * codec head), where OpenBLAS picks its small-matrix kernels by the
     * whole call's size; up to 37 rows, as a batched prefill has */
    int shapes[][2] = {{1024, 1024}, {3072, 1024}, {1024, 3072}, {2048, 2048}, {2048, 1024}, {1000, 1024}, {1031, 2048},
                       {64, 64}, {32, 64}, {166, 64}, {64, 83}, {3072, 64}};
    uint64_t s = 1;
    for (int k = 0; k < (int)(sizeof shapes / sizeof shapes[0]); k++) {
        int out = shapes[k][0], in = shapes[k][1], N = 37;
        float *W = malloc(sizeof(float) * out * in), *x = malloc(sizeof(float) * in * N);
        float *y1 = malloc(sizeof(float) * out), *yn = malloc(sizeof(float) * out * N);
        for (int i = 0; i < out * in; i++) W[i] = tu_rand_uniform(&s);
        for (int i = 0; i < in * N; i++) x[i] = tu_rand_uniform(&s);
        qtts_tensor w = weight(W, out, in);
        int bad = 0;
        for (int n = 2; n <= N; n += 5) {
            be->ops->matmul(be, x, &w, NULL, yn, n);
            for (int r = 0; r < n; r++) {
                be->ops->matmul(be, x + (size_t)r * in, &w, NULL, y1, 1);
                bad += memcmp(y1, yn + (size_t)r * out, sizeof(float) * out) != 0;
            }
        }
        CHECK(bad == 0, "%dx%d: %d rows differ between a batched and a single-row matmul", out, in, bad);
        free(W);
        free(x);
        free(y1);
        free(yn);
    }
}

static void test_attention(qtts_backend *be) {
    int nh = 4, nkv = 2, hd = 16, L = 1, slots = 2, maxlen = 40;
    qtts_kv_cache c = {.n_layers = L, .n_slots = slots, .max_len = maxlen, .n_kv_heads = nkv, .head_dim = hd};
    size_t kvn = (size_t)L * slots * maxlen * nkv * hd;
    c.k = malloc(kvn * sizeof(float));
    c.v = malloc(kvn * sizeof(float));
    uint64_t s = 9;
    for (size_t i = 0; i < kvn; i++) {
        c.k[i] = 3 * tu_rand_uniform(&s);
        c.v[i] = tu_rand_uniform(&s);
    }
    int32_t slot[3] = {0, 1, 1}, pos[3] = {0, 17, 39};
    qtts_batch b = {.n = 3, .slot = slot, .pos = pos, .h_slot = slot, .h_pos = pos};
    float q[3 * 4 * 16], out[3 * 4 * 16], ref[3 * 4 * 16];
    for (int i = 0; i < 3 * nh * hd; i++) q[i] = tu_rand_uniform(&s);
    for (int window = 0; window <= 8; window += 8) {
        be->ops->attention(be, q, &c, 0, &b, nh, 0.25f, window, out);
        for (int i = 0; i < 3; i++)
            for (int h = 0; h < nh; h++) {
                int p0 = window && pos[i] - window + 1 > 0 ? pos[i] - window + 1 : 0, kh = h / (nh / nkv);
                double sc[64], mx = -1e30, sum = 0;
                for (int p = p0; p <= pos[i]; p++) {
                    const float *kp = c.k + (((size_t)slot[i] * maxlen + p) * nkv + kh) * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)q[(i * nh + h) * hd + e] * kp[e];
                    sc[p - p0] = d * 0.25;
                    mx = fmax(mx, sc[p - p0]);
                }
                for (int p = p0; p <= pos[i]; p++) sum += sc[p - p0] = exp(sc[p - p0] - mx);
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int p = p0; p <= pos[i]; p++) o += sc[p - p0] / sum * c.v[(((size_t)slot[i] * maxlen + p) * nkv + kh) * hd + e];
                    ref[(i * nh + h) * hd + e] = (float)o;
                }
            }
        CHECK(tu_close("attention", out, ref, (size_t)3 * nh * hd, 1e-5), "attention window %d", window);
    }
    free(c.k);
    free(c.v);
}

#ifdef _OPENMP
/* The GEMMs are split into blocks fixed by the shape, never by the thread
 * count: matmul and the codec convolutions give the same bits on 1 and 3
 * threads, so a render is reproducible across machines' core counts. */
static void test_thread_count(qtts_backend *be) {
    uint64_t s = 5;
    int in = 1024, out = 1031, n = 20;
    int B = 2, cin = 96, cout = 300, T = 1100, K = 7, Kt = 8, stride = 4; /* 3x3 conv blocks, last ones partial */
    size_t mm_w = (size_t)out * in, mm_x = (size_t)n * in, mm_y = (size_t)n * out;
    size_t cw = (size_t)cout * cin * K, cx = (size_t)B * cin * T, cy = (size_t)B * cout * T;
    size_t tw = (size_t)cin * cout * Kt, ty = (size_t)B * cout * T * stride;
    float *buf = malloc(sizeof(float) * (mm_w + mm_x + cw + cx + tw + cout));
    float *W = buf, *x = W + mm_w, *CW = x + mm_x, *CX = CW + cw, *TW = CX + cx, *bias = TW + tw;
    for (size_t i = 0; i < mm_w + mm_x + cw + cx + tw + cout; i++) buf[i] = tu_rand_uniform(&s);
    qtts_tensor w = weight(W, out, in);
    qtts_tensor cwt = {.data = CW, .dtype = QTTS_DT_F32, .ndim = 3, .shape = {cout, cin, K}, .numel = (int64_t)cw};
    qtts_tensor twt = {.data = TW, .dtype = QTTS_DT_F32, .ndim = 3, .shape = {cin, cout, Kt}, .numel = (int64_t)tw};
    qtts_tensor bt = {.data = bias, .dtype = QTTS_DT_F32, .ndim = 1, .shape = {cout}, .numel = cout};
    size_t ylen = mm_y + mm_y / n + cy + ty;
    float *y[2];
    int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        float *o = y[r] = malloc(sizeof(float) * ylen);
        be->ops->matmul(be, x, &w, NULL, o, n);
        be->ops->matmul(be, x, &w, NULL, o + mm_y, 1);
        be->ops->conv1d(be, CX, &cwt, &bt, o + mm_y + mm_y / n, B, cin, cout, T, 2, 1);
        be->ops->conv_transpose1d(be, CX, &twt, &bt, o + mm_y + mm_y / n + cy, B, cin, cout, T, stride);
    }
    omp_set_num_threads(saved);
    CHECK(!memcmp(y[0], y[1], sizeof(float) * mm_y), "matmul of %d rows: 1 and 3 threads differ", n);
    CHECK(!memcmp(y[0] + mm_y, y[1] + mm_y, sizeof(float) * (mm_y / n)), "matmul of 1 row: 1 and 3 threads differ");
    CHECK(!memcmp(y[0] + mm_y + mm_y / n, y[1] + mm_y + mm_y / n, sizeof(float) * cy), "conv1d: 1 and 3 threads differ");
    CHECK(!memcmp(y[0] + mm_y + mm_y / n + cy, y[1] + mm_y + mm_y / n + cy, sizeof(float) * ty),
          "conv_transpose1d: 1 and 3 threads differ");
    free(y[0]);
    free(y[1]);
    free(buf);
}
#endif

/* Rows of the table by id; an id outside [0, rows) gives zeros. */
static void test_embed(qtts_backend *be) {
    float tab[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
    qtts_tensor t = {.data = tab, .dtype = QTTS_DT_F32, .ndim = 2, .shape = {3, 4}, .numel = 12};
    int32_t ids[5] = {2, -1, 0, 3, 1};
    float out[5][4];
    memset(out, 0x7f, sizeof out);
    be->ops->embed(be, &t, ids, 5, &out[0][0]);
    CHECK(!memcmp(out[0], tab[2], sizeof out[0]) && !memcmp(out[2], tab[0], sizeof out[0]) && !memcmp(out[4], tab[1], sizeof out[0]),
          "embed copies rows");
    CHECK(out[1][0] == 0 && out[1][3] == 0 && out[3][0] == 0 && out[3][3] == 0, "out-of-range ids give zero rows");
}

/* Every backend sets every op the model code calls (a NULL op would crash at
 * its first use, on a GPU this VM cannot run); the CUDA table is checked
 * without a GPU. */
static void check_table(const qtts_ops *o) {
#define REQ(f) CHECK(o->f != NULL, "backend %s: op %s is not set", o->name, #f)
    REQ(alloc); REQ(free); REQ(to_device); REQ(to_host); REQ(copy); REQ(sync); REQ(upload); REQ(storage_bytes); REQ(upload_at);
    REQ(release); REQ(embed); REQ(embed_sum); REQ(matmul); REQ(rmsnorm); REQ(norm_matmul); REQ(norm_swiglu); REQ(matmul_add); REQ(add); REQ(swiglu); REQ(silu);
    REQ(qk_norm_rope); REQ(qk_norm_rope_store); REQ(qk_norm_rope_attend); REQ(kv_store); REQ(attention); REQ(sample); REQ(gather_rows); REQ(scatter_rows);
    REQ(scale_rows); REQ(conv1d); REQ(conv_transpose1d); REQ(snake); REQ(transpose); REQ(layernorm); REQ(gelu); REQ(clamp);
#undef REQ
    /* op replay comes as a set */
    CHECK((o->graph_begin != NULL) == (o->graph_end != NULL) && (o->graph_begin != NULL) == (o->graph_reset != NULL),
          "backend %s: graph ops half set", o->name);
}

static void test_op_tables(void) {
    qtts_backend be;
    qtts_err e = {0};
    const char *names[] = {"cpu", "cpu-replay"};
    for (int i = 0; i < 2; i++) {
        CHECK(qtts_backend_init_named(&be, names[i], NULL, &e) == QTTS_OK, "%s: %s", names[i], e.msg);
        check_table(be.ops);
        qtts_backend_free(&be);
    }
#ifdef QTTS_HAVE_CUDA
    check_table(qtts_backend_cuda_ops());
    CHECK(qtts_backend_cuda_ops()->graph_begin && qtts_backend_cuda_ops()->check, "cuda: graphs and check");
#endif
}

/* Names and parameters: the defaults say what the docs say; malformed names
 * are refused naming the name, whatever the build. */
static void test_named(void) {
    qtts_backend_params p = qtts_backend_default_params();
    CHECK(p.device == 0 && p.cuda_graphs && !p.cuda_pdl && !p.cuda_persistent && p.cuda_conv_tile == 0,
          "defaults: device 0, graphs on, pdl and persistent off, default tile");
    qtts_backend be = {0};
    qtts_err e = {0};
    const char *bad[] = {"nope", "cuda:", "cuda:x", "cuda:-1", "cuda:99999999999", "cpu:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qtts_err_clear(&e);
        qtts_status st = qtts_backend_init_named(&be, bad[i], &p, &e);
        CHECK(st == QTTS_ERR_INVALID_ARG && strstr(e.msg, bad[i]), "'%s' refused naming it: %d %s", bad[i], (int)st, e.msg);
    }
    /* the CPU takes any parameters */
    p.cuda_graphs = false;
    p.cuda_pdl = p.cuda_persistent = true;
    p.device = 3;
    CHECK(qtts_backend_init_named(&be, "cpu", &p, &e) == QTTS_OK, "cpu with cuda choices: %s", e.msg);
    qtts_backend_free(&be);
}

int main(void) {
    qtts_backend be;
    qtts_err e = {0};
    qtts_backend_cpu_init(&be, &e);
    test_matmul_rows(&be);
#ifdef _OPENMP
    test_thread_count(&be);
#endif
    test_attention(&be);
    test_embed(&be);
    qtts_backend_free(&be);
    test_op_tables();
    test_named();
    return tu_finish("test_backend_cpu");
}
