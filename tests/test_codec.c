/* Codec decoder tests. (1) The CPU codec ops (causal conv1d with dilation and
 * groups, transposed conv with right trim, SnakeBeta) against naive direct
 * loops written here, seeded random inputs at odd shapes, rel-L2 1e-5 (fp32
 * GEMM summation order only). (2) A tiny random decoder written to a temp
 * safetensors file: batch and padding invariance, chunked decode against a
 * by-hand replay of the official chunked_decode, bad codes, bad checkpoints;
 * the official decoder class itself with a tiny config (tests/data/codec_tiny).
 * (3) Golden waveforms from the official package when the fixtures exist:
 * SNR >= 60 dB for the full and the chunked decode. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "backend.h"
#include "codec.h"
#include "npy.h"
#include "testutil.h"

static uint64_t rng = 0x5eed;

static float *rand_vec(size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * tu_rand_uniform(&rng);
    return v;
}

static qtts_tensor host_tensor(float *data, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    qtts_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = QTTS_DT_F32;
    t.ndim = ndim;
    t.shape[0] = d0, t.shape[1] = d1, t.shape[2] = d2;
    t.numel = d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    return t;
}

/* ------------------------------------------------------------- op tests */

static void naive_conv1d(const float *x, const float *w, const float *b, float *y, int B, int cin, int cout, int T, int K, int d,
                         int groups) {
    int cpi = cin / groups, cpo = cout / groups, pad = (K - 1) * d;
    for (int bi = 0; bi < B; bi++)
        for (int o = 0; o < cout; o++)
            for (int t = 0; t < T; t++) {
                double s = b ? b[o] : 0;
                int g = o / cpo;
                for (int ci = 0; ci < cpi; ci++)
                    for (int k = 0; k < K; k++) {
                        int src = t - pad + k * d; /* padded input index minus pad */
                        if (src >= 0) s += (double)w[((size_t)o * cpi + ci) * K + k] * x[((size_t)bi * cin + g * cpi + ci) * T + src];
                    }
                y[((size_t)bi * cout + o) * T + t] = (float)s;
            }
}

/* Full transposed conv of length (T-1)*s + K, then keep the first T*s. */
static void naive_convT(const float *x, const float *w, const float *b, float *y, int B, int cin, int cout, int T, int K, int s) {
    int full = (T - 1) * s + K;
    double *acc = calloc((size_t)full, sizeof(double));
    for (int bi = 0; bi < B; bi++)
        for (int o = 0; o < cout; o++) {
            for (int i = 0; i < full; i++) acc[i] = b ? b[o] : 0;
            for (int ci = 0; ci < cin; ci++)
                for (int t = 0; t < T; t++)
                    for (int k = 0; k < K; k++)
                        acc[t * s + k] += (double)x[((size_t)bi * cin + ci) * T + t] * w[((size_t)ci * cout + o) * K + k];
            for (int i = 0; i < T * s; i++) y[((size_t)bi * cout + o) * T * s + i] = (float)acc[i];
        }
    free(acc);
}

static void test_ops(qtts_backend *be) {
    const qtts_ops *o = be->ops;
    struct { int B, cin, cout, T, K, d, groups; } cc[] = {
        {1, 5, 7, 13, 7, 1, 1},  {2, 6, 3, 17, 7, 3, 1},   {3, 9, 11, 29, 7, 9, 1}, {2, 8, 8, 31, 7, 1, 8},
        {1, 6, 4, 11, 3, 2, 2},  {2, 13, 5, 9, 1, 1, 1},   {1, 4, 1, 3, 7, 9, 1},   {2, 3, 5, 40, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
        int B = cc[i].B, ci = cc[i].cin, co = cc[i].cout, T = cc[i].T, K = cc[i].K;
        float *x = rand_vec((size_t)B * ci * T, 1), *w = rand_vec((size_t)co * ci / cc[i].groups * K, 0.5f), *b = rand_vec(co, 0.5f);
        float *y = malloc((size_t)B * co * T * sizeof(float)), *r = malloc((size_t)B * co * T * sizeof(float));
        qtts_tensor wt = host_tensor(w, 3, co, ci / cc[i].groups, K), bt = host_tensor(b, 1, co, 0, 0);
        for (int withb = 0; withb < 2; withb++) {
            o->conv1d(be, x, &wt, withb ? &bt : NULL, y, B, ci, co, T, cc[i].d, cc[i].groups);
            naive_conv1d(x, w, withb ? b : NULL, r, B, ci, co, T, K, cc[i].d, cc[i].groups);
            char name[96];
            snprintf(name, sizeof name, "conv1d B%d %d->%d T%d K%d d%d g%d bias%d", B, ci, co, T, K, cc[i].d, cc[i].groups, withb);
            CHECK(tu_close(name, y, r, (size_t)B * co * T, 1e-5), "%s", name);
        }
        free(x), free(w), free(b), free(y), free(r);
    }
    struct { int B, cin, cout, T, K, s; } tc[] = {
        {1, 5, 3, 7, 16, 8}, {2, 4, 6, 9, 10, 5}, {3, 7, 2, 5, 2, 2}, {1, 3, 3, 1, 6, 3}, {2, 6, 5, 13, 8, 4}, {1, 2, 2, 4, 3, 1},
    };
    for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
        int B = tc[i].B, ci = tc[i].cin, co = tc[i].cout, T = tc[i].T, K = tc[i].K, s = tc[i].s;
        size_t ny = (size_t)B * co * T * s;
        float *x = rand_vec((size_t)B * ci * T, 1), *w = rand_vec((size_t)ci * co * K, 0.5f), *b = rand_vec(co, 0.5f);
        float *y = malloc(ny * sizeof(float)), *r = malloc(ny * sizeof(float));
        qtts_tensor wt = host_tensor(w, 3, ci, co, K), bt = host_tensor(b, 1, co, 0, 0);
        o->conv_transpose1d(be, x, &wt, &bt, y, B, ci, co, T, s);
        naive_convT(x, w, b, r, B, ci, co, T, K, s);
        char name[96];
        snprintf(name, sizeof name, "conv_transpose1d B%d %d->%d T%d K%d s%d", B, ci, co, T, K, s);
        CHECK(tu_close(name, y, r, ny, 1e-5), "%s", name);
        free(x), free(w), free(b), free(y), free(r);
    }
    {
        int B = 2, C = 5, T = 19;
        size_t n = (size_t)B * C * T;
        float *x = rand_vec(n, 3), *a = rand_vec(C, 1), *bb = rand_vec(C, 1), *y = malloc(n * sizeof(float)), *r = malloc(n * sizeof(float));
        for (int c = 0; c < C; c++) a[c] = expf(a[c]), bb[c] = expf(bb[c]);
        qtts_tensor at = host_tensor(a, 1, C, 0, 0), bt = host_tensor(bb, 1, C, 0, 0);
        o->snake(be, x, &at, &bt, y, B, C, T);
        for (int bi = 0; bi < B; bi++)
            for (int c = 0; c < C; c++)
                for (int t = 0; t < T; t++) {
                    double v = x[((size_t)bi * C + c) * T + t], sn = sin(a[c] * v);
                    r[((size_t)bi * C + c) * T + t] = (float)(v + sn * sn / (bb[c] + 1e-9));
                }
        CHECK(tu_close("snake", y, r, n, 1e-6), "snake");
        free(x), free(a), free(bb), free(y), free(r);
    }
}

/* ------------------------------------------------- tiny random checkpoint */

#define MAXT 512
typedef struct {
    char name[160];
    int ndim;
    int64_t shape[3];
    float *data;
} wt_entry;
static wt_entry wts[MAXT];
static int n_wts;

static float *add_w(float scale, int ndim, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...) QTTS_PRINTF(6, 7);
static float *add_w(float scale, int ndim, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...) {
    wt_entry *e = &wts[n_wts++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->ndim = ndim;
    e->shape[0] = d0, e->shape[1] = d1, e->shape[2] = d2;
    size_t n = (size_t)d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    e->data = rand_vec(n, scale);
    return e->data;
}

static int write_safetensors(const char *path, const char *skip) {
    size_t cap = 1 << 20, len = 0, off = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (int i = 0; i < n_wts; i++) {
        wt_entry *e = &wts[i];
        if (skip && !strcmp(skip, e->name)) continue;
        size_t n = (size_t)e->shape[0] * (e->ndim > 1 ? e->shape[1] : 1) * (e->ndim > 2 ? e->shape[2] : 1);
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld", len > 1 ? "," : "", e->name,
                                (long long)e->shape[0]);
        for (int d = 1; d < e->ndim; d++) len += (size_t)snprintf(h + len, cap - len, ",%lld", (long long)e->shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + n * 4);
        off += n * 4;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < n_wts; i++) {
        wt_entry *e = &wts[i];
        if (skip && !strcmp(skip, e->name)) continue;
        size_t n = (size_t)e->shape[0] * (e->ndim > 1 ? e->shape[1] : 1) * (e->ndim > 2 ? e->shape[2] : 1);
        fwrite(e->data, 4, n, f);
    }
    free(h);
    return fclose(f);
}

/* Tiny decoder: 4 codebooks of 32, RVQ dim 8, latent 16, 2 layers with GQA
 * (2 heads, 1 kv head, hd 8), window 5, upsampling [2] then rates [2, 3]:
 * 12 samples per frame. */
enum { TQ = 4, TCB = 32, TCD = 16, TLAT = 16, THID = 16, TINT = 24, TLAY = 2, TH = 2, TKV = 1, THD = 8, TWIN = 5, TDD = 16 };

static void make_tiny(void) {
    n_wts = 0;
    const int D = TCD / 2;
    for (int k = 0; k < TQ; k++) {
        char p[96];
        if (k == 0) snprintf(p, sizeof p, "decoder.quantizer.rvq_first.vq.layers.0._codebook");
        else snprintf(p, sizeof p, "decoder.quantizer.rvq_rest.vq.layers.%d._codebook", k - 1);
        add_w(1.0f, 2, TCB, D, 0, "%s.embedding_sum", p);
        float *u = add_w(1.0f, 1, TCB, 0, 0, "%s.cluster_usage", p);
        for (int i = 0; i < TCB; i++) u[i] = 1.5f + u[i]; /* 0.5 .. 2.5 */
        u[3] = 0.0f; /* exercises the clamp(min=1e-5): row 3 gets huge, codes avoid it except one test */
    }
    add_w(0.3f, 3, TCD, D, 1, "decoder.quantizer.rvq_first.output_proj.weight");
    add_w(0.3f, 3, TCD, D, 1, "decoder.quantizer.rvq_rest.output_proj.weight");
    add_w(0.3f, 3, D, TCD, 1, "decoder.quantizer.rvq_first.input_proj.weight"); /* present in the file, unused */
    add_w(0.2f, 3, TLAT, TCD, 3, "decoder.pre_conv.conv.weight");
    add_w(0.1f, 1, TLAT, 0, 0, "decoder.pre_conv.conv.bias");
    add_w(0.25f, 2, THID, TLAT, 0, "decoder.pre_transformer.input_proj.weight");
    add_w(0.1f, 1, THID, 0, 0, "decoder.pre_transformer.input_proj.bias");
    for (int l = 0; l < TLAY; l++) {
        const char *p = "decoder.pre_transformer.layers";
        float *g = add_w(0.2f, 1, THID, 0, 0, "%s.%d.input_layernorm.weight", p, l);
        for (int i = 0; i < THID; i++) g[i] += 1.0f;
        add_w(0.4f, 2, TH * THD, THID, 0, "%s.%d.self_attn.q_proj.weight", p, l);
        add_w(0.4f, 2, TKV * THD, THID, 0, "%s.%d.self_attn.k_proj.weight", p, l);
        add_w(0.4f, 2, TKV * THD, THID, 0, "%s.%d.self_attn.v_proj.weight", p, l);
        add_w(0.3f, 2, THID, TH * THD, 0, "%s.%d.self_attn.o_proj.weight", p, l);
        add_w(0.5f, 1, THID, 0, 0, "%s.%d.self_attn_layer_scale.scale", p, l);
        g = add_w(0.2f, 1, THID, 0, 0, "%s.%d.post_attention_layernorm.weight", p, l);
        for (int i = 0; i < THID; i++) g[i] += 1.0f;
        add_w(0.3f, 2, TINT, THID, 0, "%s.%d.mlp.gate_proj.weight", p, l);
        add_w(0.3f, 2, TINT, THID, 0, "%s.%d.mlp.up_proj.weight", p, l);
        add_w(0.3f, 2, THID, TINT, 0, "%s.%d.mlp.down_proj.weight", p, l);
        add_w(0.5f, 1, THID, 0, 0, "%s.%d.mlp_layer_scale.scale", p, l);
    }
    float *g = add_w(0.2f, 1, THID, 0, 0, "decoder.pre_transformer.norm.weight");
    for (int i = 0; i < THID; i++) g[i] += 1.0f;
    add_w(0.3f, 2, TLAT, THID, 0, "decoder.pre_transformer.output_proj.weight");
    add_w(0.1f, 1, TLAT, 0, 0, "decoder.pre_transformer.output_proj.bias");
    add_w(0.3f, 3, TLAT, TLAT, 2, "decoder.upsample.0.0.conv.weight");
    add_w(0.1f, 1, TLAT, 0, 0, "decoder.upsample.0.0.conv.bias");
    add_w(0.3f, 3, TLAT, 1, 7, "decoder.upsample.0.1.dwconv.conv.weight");
    add_w(0.1f, 1, TLAT, 0, 0, "decoder.upsample.0.1.dwconv.conv.bias");
    g = add_w(0.2f, 1, TLAT, 0, 0, "decoder.upsample.0.1.norm.weight");
    for (int i = 0; i < TLAT; i++) g[i] += 1.0f;
    add_w(0.1f, 1, TLAT, 0, 0, "decoder.upsample.0.1.norm.bias");
    add_w(0.25f, 2, 4 * TLAT, TLAT, 0, "decoder.upsample.0.1.pwconv1.weight");
    add_w(0.1f, 1, 4 * TLAT, 0, 0, "decoder.upsample.0.1.pwconv1.bias");
    add_w(0.15f, 2, TLAT, 4 * TLAT, 0, "decoder.upsample.0.1.pwconv2.weight");
    add_w(0.1f, 1, TLAT, 0, 0, "decoder.upsample.0.1.pwconv2.bias");
    add_w(0.5f, 1, TLAT, 0, 0, "decoder.upsample.0.1.gamma");
    add_w(0.15f, 3, TDD, TLAT, 7, "decoder.decoder.0.conv.weight");
    add_w(0.1f, 1, TDD, 0, 0, "decoder.decoder.0.conv.bias");
    const int rates[2] = {2, 3};
    for (int b = 0; b < 2; b++) {
        int ci = TDD >> b, co = TDD >> (b + 1), n = b + 1;
        add_w(0.5f, 1, ci, 0, 0, "decoder.decoder.%d.block.0.alpha", n);
        add_w(0.5f, 1, ci, 0, 0, "decoder.decoder.%d.block.0.beta", n);
        add_w(0.25f, 3, ci, co, 2 * rates[b], "decoder.decoder.%d.block.1.conv.weight", n);
        add_w(0.1f, 1, co, 0, 0, "decoder.decoder.%d.block.1.conv.bias", n);
        for (int m = 2; m < 5; m++) {
            add_w(0.5f, 1, co, 0, 0, "decoder.decoder.%d.block.%d.act1.alpha", n, m);
            add_w(0.5f, 1, co, 0, 0, "decoder.decoder.%d.block.%d.act1.beta", n, m);
            add_w(0.5f, 1, co, 0, 0, "decoder.decoder.%d.block.%d.act2.alpha", n, m);
            add_w(0.5f, 1, co, 0, 0, "decoder.decoder.%d.block.%d.act2.beta", n, m);
            add_w(0.2f, 3, co, co, 7, "decoder.decoder.%d.block.%d.conv1.conv.weight", n, m);
            add_w(0.1f, 1, co, 0, 0, "decoder.decoder.%d.block.%d.conv1.conv.bias", n, m);
            add_w(0.3f, 3, co, co, 1, "decoder.decoder.%d.block.%d.conv2.conv.weight", n, m);
            add_w(0.1f, 1, co, 0, 0, "decoder.decoder.%d.block.%d.conv2.conv.bias", n, m);
        }
    }
    add_w(0.5f, 1, TDD / 4, 0, 0, "decoder.decoder.3.alpha");
    add_w(0.5f, 1, TDD / 4, 0, 0, "decoder.decoder.3.beta");
    add_w(0.1f, 3, 1, TDD / 4, 7, "decoder.decoder.4.conv.weight");
    add_w(0.01f, 1, 1, 0, 0, "decoder.decoder.4.conv.bias");
}

static int write_tiny_dir(const char *dir, const char *skip, const char *shape_bug) {
    char path[1024];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"decode_upsample_rate\": 12, \"output_sample_rate\": 24000, \"decoder_config\": {"
            "\"codebook_size\": %d, \"codebook_dim\": %d, \"latent_dim\": %d, \"hidden_size\": %d, \"intermediate_size\": %d,"
            "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d,"
            "\"rms_norm_eps\": 1e-5, \"rope_theta\": 10000, \"sliding_window\": %d, \"num_quantizers\": %d,"
            "\"num_semantic_quantizers\": 1, \"upsample_rates\": [2, 3], \"upsampling_ratios\": [2], \"decoder_dim\": %d,"
            "\"layer_scale_initial_scale\": 0.01}}\n",
            TCB, TCD, TLAT, THID, TINT, TLAY, TH, TKV, THD, TWIN, TQ, TDD);
    fclose(f);
    if (shape_bug) /* transpose one tensor's shape: same numel, wrong shape */
        for (int i = 0; i < n_wts; i++)
            if (!strcmp(wts[i].name, shape_bug)) {
                int64_t t = wts[i].shape[0];
                wts[i].shape[0] = wts[i].shape[1], wts[i].shape[1] = t;
            }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = write_safetensors(path, skip);
    if (shape_bug)
        for (int i = 0; i < n_wts; i++)
            if (!strcmp(wts[i].name, shape_bug)) {
                int64_t t = wts[i].shape[0];
                wts[i].shape[0] = wts[i].shape[1], wts[i].shape[1] = t;
            }
    return rc;
}

static int32_t *rand_codes(int T, int nq, int cb) {
    int32_t *c = malloc((size_t)T * nq * sizeof(int32_t));
    for (int i = 0; i < T * nq; i++) {
        c[i] = (int32_t)(tu_rand_u64(&rng) % (uint64_t)cb);
        if (c[i] == 3) c[i] = 4; /* avoid the zero-usage row: its 1e5 scale would saturate everything */
    }
    return c;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* The official chunked_decode replayed with single full calls per window. */
static float *replay_chunked(qtts_codec *c, const int32_t *codes, int T, int chunk, int ctxsz) {
    int spf = qtts_codec_samples_per_frame(c), nq = qtts_codec_num_quantizers(c);
    float *out = malloc((size_t)T * spf * sizeof(float));
    for (int start = 0; start < T;) {
        int end = start + chunk < T ? start + chunk : T;
        int ctx = start - ctxsz > 0 ? ctxsz : start;
        int len = end - (start - ctx);
        float *w[1];
        qtts_err err = {0};
        if (qtts_codec_decode(c, codes + (size_t)(start - ctx) * nq, &len, 1, w, &err) != QTTS_OK) {
            fprintf(stderr, "replay: %s\n", err.msg);
            free(out);
            return NULL;
        }
        memcpy(out + (size_t)start * spf, w[0] + (size_t)ctx * spf, (size_t)(end - start) * spf * sizeof(float));
        free(w[0]);
        start = end;
    }
    return out;
}

static void test_tiny(qtts_backend *be) {
    char dir[1024];
    qtts_err err = {0};
    qtts_codec *c = NULL;
    snprintf(dir, sizeof dir, "%s/test_codec_tiny", QTTS_BINARY_DIR);
    make_tiny();
    CHECK(write_tiny_dir(dir, NULL, NULL) == 0, "writing %s", dir);
    qtts_status st = qtts_codec_load(&c, be, dir, &err);
    CHECK(st == QTTS_OK, "load tiny: %s", err.msg);
    if (st) return;
    int spf = qtts_codec_samples_per_frame(c), nq = qtts_codec_num_quantizers(c);
    CHECK(spf == 12 && nq == TQ, "spf %d nq %d", spf, nq);

    /* batch invariance: [a, b] in one call == a alone, b alone */
    int Ta = 23, Tb = 37, Tm = 37;
    int32_t *a = rand_codes(Ta, nq, TCB), *b = rand_codes(Tb, nq, TCB);
    int32_t *ab = malloc((size_t)2 * Tm * nq * sizeof(int32_t));
    for (int i = 0; i < Tm * nq; i++) ab[i] = -7; /* padding of item 0: ignored, even out of range */
    memcpy(ab, a, (size_t)Ta * nq * sizeof(int32_t));
    memcpy(ab + (size_t)Tm * nq, b, (size_t)Tb * nq * sizeof(int32_t));
    float *wa[1], *wb[1], *wab[2];
    int Ts[2] = {Ta, Tb};
    CHECK(qtts_codec_decode(c, a, &Ta, 1, wa, &err) == QTTS_OK, "decode a: %s", err.msg);
    CHECK(qtts_codec_decode(c, b, &Tb, 1, wb, &err) == QTTS_OK, "decode b: %s", err.msg);
    CHECK(qtts_codec_decode(c, ab, Ts, 2, wab, &err) == QTTS_OK, "decode [a,b]: %s", err.msg);
    double rms = 0;
    int clipped = 0;
    for (int i = 0; i < Ta * spf; i++) rms += (double)wa[0][i] * wa[0][i], clipped += fabsf(wa[0][i]) >= 1.0f;
    rms = sqrt(rms / (Ta * spf));
    printf("tiny decoder: rms %.4f, %d of %d samples clipped\n", rms, clipped, Ta * spf);
    CHECK(rms > 1e-3 && clipped < Ta * spf / 2, "tiny decoder output degenerate: rms %g, clipped %d", rms, clipped);
    double da = max_abs_diff(wab[0], wa[0], (size_t)Ta * spf), db = max_abs_diff(wab[1], wb[0], (size_t)Tb * spf);
    printf("batch invariance: max |diff| a %.3g, b %.3g\n", da, db);
    CHECK(da <= 1e-6 && db <= 1e-6, "batched vs alone: %g %g", da, db);

    /* padding / causality: a prefix decodes to the prefix of the waveform */
    int Tp = 11;
    float *wp[1];
    CHECK(qtts_codec_decode(c, a, &Tp, 1, wp, &err) == QTTS_OK, "decode prefix: %s", err.msg);
    double dp = max_abs_diff(wp[0], wa[0], (size_t)Tp * spf);
    printf("prefix (padding) invariance: max |diff| %.3g\n", dp);
    CHECK(dp <= 1e-6, "prefix vs full: %g", dp);
    free(wp[0]);

    /* chunked: chunk >= T is the full call; otherwise equals the replay */
    float *wc[2];
    CHECK(qtts_codec_decode_chunked(c, a, &Ta, 1, 100, 25, wc, &err) == QTTS_OK, "chunked big: %s", err.msg);
    CHECK(max_abs_diff(wc[0], wa[0], (size_t)Ta * spf) == 0.0, "chunk >= T must be the full call");
    free(wc[0]);
    CHECK(qtts_codec_decode_chunked(c, ab, Ts, 2, 10, 3, wc, &err) == QTTS_OK, "chunked: %s", err.msg);
    float *ra = replay_chunked(c, a, Ta, 10, 3), *rb = replay_chunked(c, b, Tb, 10, 3);
    CHECK(ra && rb, "replay failed");
    if (ra && rb) {
        double ca = max_abs_diff(wc[0], ra, (size_t)Ta * spf), cb = max_abs_diff(wc[1], rb, (size_t)Tb * spf);
        printf("batched chunked vs replayed official chunked_decode: max |diff| %.3g %.3g\n", ca, cb);
        CHECK(ca <= 1e-6 && cb <= 1e-6, "chunked vs replay %g %g", ca, cb);
        double snr = tu_snr_db(wc[1], wb[0], (size_t)Tb * spf);
        printf("tiny decoder, chunk 10 context 3 vs full, %d frames: SNR %.1f dB (window %d frames x %d layers "
               "of receptive field exceeds the context, so not exact)\n", Tb, snr, TWIN, TLAY);
        CHECK(snr > 0 && snr < 200, "chunked vs full SNR %g", snr);
    }
    free(ra), free(rb), free(wc[0]), free(wc[1]);

    /* bad codes */
    int32_t *bad = rand_codes(5, nq, TCB);
    int T5 = 5, T0 = 0;
    float *wx[2] = {(float *)1, (float *)1};
    bad[3 * nq + 2] = TCB;
    st = qtts_codec_decode(c, bad, &T5, 1, wx, &err);
    CHECK(st == QTTS_ERR_INVALID_ARG && strstr(err.msg, "frame 3 codebook 2") && wx[0] == NULL, "out of range: %d %s", st, err.msg);
    bad[3 * nq + 2] = -1;
    st = qtts_codec_decode(c, bad, &T5, 1, wx, &err);
    CHECK(st == QTTS_ERR_INVALID_ARG && strstr(err.msg, "code -1"), "negative: %d %s", st, err.msg);
    st = qtts_codec_decode(c, bad, &T0, 1, wx, &err);
    CHECK(st == QTTS_ERR_SHAPE && strstr(err.msg, "item 0"), "T=0: %d %s", st, err.msg);
    free(bad);

    free(a), free(b), free(ab), free(wa[0]), free(wb[0]), free(wab[0]), free(wab[1]);
    qtts_codec_free(c);

    /* bad checkpoints: a missing tensor, a wrong shape */
    c = NULL;
    CHECK(write_tiny_dir(dir, "decoder.decoder.2.block.3.conv1.conv.weight", NULL) == 0, "write");
    st = qtts_codec_load(&c, be, dir, &err);
    CHECK(st == QTTS_ERR_MISSING && strstr(err.msg, "decoder.decoder.2.block.3.conv1.conv.weight") && !c, "missing: %d %s", st, err.msg);
    CHECK(write_tiny_dir(dir, NULL, "decoder.pre_transformer.layers.1.mlp.up_proj.weight") == 0, "write");
    st = qtts_codec_load(&c, be, dir, &err);
    CHECK(st == QTTS_ERR_SHAPE && strstr(err.msg, "layers.1.mlp.up_proj.weight") && !c, "shape: %d %s", st, err.msg);
    for (int i = 0; i < n_wts; i++) free(wts[i].data);
    n_wts = 0;
}


/* The official decoder class with a tiny config and random weights
 * (scripts/gen_codec_tiny_ref.py, outputs committed in tests/data/codec_tiny):
 * checks every structural choice (weight layouts, RoPE, window, snake, trims)
 * without the full-size fixtures. fp32 both sides: SNR >= 60 dB. */
static void test_official_tiny(qtts_backend *be) {
    char dir[1024], p[1100];
    qtts_err err = {0};
    qtts_npy codes = {0};
    qtts_codec *c = NULL;
    float *full = NULL, *chunked = NULL, *w[1] = {NULL}, *wc[1] = {NULL};
    int64_t nf = 0, nc = 0;
    snprintf(dir, sizeof dir, "%s/tests/data/codec_tiny", QTTS_SOURCE_DIR);
    snprintf(p, sizeof p, "%s/codes.npy", dir);
    CHECK(qtts_npy_load(p, &codes, &err) == QTTS_OK && codes.dtype == QTTS_NPY_I64 && codes.ndim == 2, "%s: %s", p, err.msg);
    snprintf(p, sizeof p, "%s/wav_full.npy", dir);
    CHECK(qtts_npy_load_f32(p, &full, &nf, NULL, &err) == QTTS_OK, "%s: %s", p, err.msg);
    snprintf(p, sizeof p, "%s/wav_chunked.npy", dir);
    CHECK(qtts_npy_load_f32(p, &chunked, &nc, NULL, &err) == QTTS_OK, "%s: %s", p, err.msg);
    CHECK(qtts_codec_load(&c, be, dir, &err) == QTTS_OK, "load %s: %s", dir, err.msg);
    if (!c || !full || !chunked || !codes.data) goto done;
    int T = (int)codes.shape[0], nq = (int)codes.shape[1], spf = qtts_codec_samples_per_frame(c);
    int32_t *ci = malloc((size_t)T * nq * sizeof(int32_t));
    for (int i = 0; i < T * nq; i++) ci[i] = (int32_t)((int64_t *)codes.data)[i];
    CHECK(nf == (int64_t)T * spf && nc == nf, "reference lengths %lld %lld, expected %d", (long long)nf, (long long)nc, T * spf);
    CHECK(qtts_codec_decode(c, ci, &T, 1, w, &err) == QTTS_OK, "decode: %s", err.msg);
    CHECK(qtts_codec_decode_chunked(c, ci, &T, 1, 10, 3, wc, &err) == QTTS_OK, "chunked: %s", err.msg);
    if (w[0] && wc[0] && nf == (int64_t)T * spf && nc == nf) {
        double sf = tu_snr_db(w[0], full, (size_t)nf), sc = tu_snr_db(wc[0], chunked, (size_t)nc);
        printf("official tiny decoder (%d frames): full SNR %.1f dB, chunked (10/3) SNR %.1f dB, max |diff| %.2g / %.2g\n", T, sf, sc,
               max_abs_diff(w[0], full, (size_t)nf), max_abs_diff(wc[0], chunked, (size_t)nc));
        CHECK(sf >= 60.0, "full decode vs official: %.1f dB", sf);
        CHECK(sc >= 60.0, "chunked decode vs official: %.1f dB", sc);
    }
    free(ci);
done:
    free(w[0]), free(wc[0]), free(full), free(chunked);
    qtts_npy_free(&codes);
    qtts_codec_free(c);
}

/* ------------------------------------------------------------ golden test */

/* Fixture model: tests/fixtures/models/<variant>/speech_tokenizer, decompressed
 * by the build into BINARY_DIR/fixtures/models/<variant>/speech_tokenizer. */
static bool find_fixture_codec(char *out, size_t n) {
    char root[512];
    snprintf(root, sizeof root, "%s/fixtures/models", QTTS_BINARY_DIR);
    DIR *d = opendir(root);
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s/speech_tokenizer/model.safetensors", root, e->d_name);
        if (qtts_file_exists(p)) {
            snprintf(out, n, "%s/%s/speech_tokenizer", root, e->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

static bool load_wave(const char *base, float **w, int64_t *n) {
    char p[1024];
    qtts_err err = {0};
    snprintf(p, sizeof p, "%s/codec/%s.npy", tu_fixture_dir(), base);
    if (!qtts_file_exists(p)) snprintf(p, sizeof p, "%s/codec/%s.npy.zst", tu_fixture_dir(), base);
    if (!qtts_file_exists(p)) return false;
    if (qtts_npy_load_f32(p, w, n, NULL, &err) != QTTS_OK) {
        fprintf(stderr, "%s: %s\n", p, err.msg);
        return false;
    }
    return true;
}

static void test_golden(qtts_backend *be, bool *ran) {
    char dir[1024], p[1024];
    qtts_err err = {0};
    qtts_npy codes = {0};
    qtts_codec *c = NULL;
    *ran = false;
    snprintf(p, sizeof p, "%s/codec/codes.npy", tu_fixture_dir());
    if (!find_fixture_codec(dir, sizeof dir) || !qtts_file_exists(p)) {
        printf("golden: fixtures absent (need %s and a decompressed speech_tokenizer under %s/fixtures/models)\n", p, QTTS_BINARY_DIR);
        return;
    }
    *ran = true;
    CHECK(qtts_npy_load(p, &codes, &err) == QTTS_OK, "%s", err.msg);
    CHECK(qtts_codec_load(&c, be, dir, &err) == QTTS_OK, "load %s: %s", dir, err.msg);
    if (!c || !codes.data) goto done;
    int nq = qtts_codec_num_quantizers(c), spf = qtts_codec_samples_per_frame(c);
    /* codes.npy: [T, 16] or [16, T] int64/int32 */
    int T = codes.ndim == 2 && codes.shape[1] == nq ? (int)codes.shape[0] : (int)codes.shape[codes.ndim - 1];
    bool frames_first = codes.ndim == 2 && codes.shape[1] == nq;
    int32_t *ci = malloc((size_t)T * nq * sizeof(int32_t));
    for (int t = 0; t < T; t++)
        for (int k = 0; k < nq; k++) {
            size_t i = frames_first ? (size_t)t * nq + k : (size_t)k * T + t;
            ci[(size_t)t * nq + k] = codes.dtype == QTTS_NPY_I64 ? (int32_t)((int64_t *)codes.data)[i] : ((int32_t *)codes.data)[i];
        }
    printf("golden: %s, %d frames\n", dir, T);
    float *ref = NULL, *w[1] = {NULL};
    int64_t nref = 0;
    if (load_wave("wav_full", &ref, &nref)) {
        double t0 = qtts_now();
        CHECK(qtts_codec_decode(c, ci, &T, 1, w, &err) == QTTS_OK, "decode: %s", err.msg);
        double dt = qtts_now() - t0;
        if (w[0]) {
            int64_t n = nref < (int64_t)T * spf ? nref : (int64_t)T * spf;
            CHECK(nref == (int64_t)T * spf, "wav_full has %lld samples, expected %lld", (long long)nref, (long long)T * spf);
            double snr = tu_snr_db(w[0], ref, (size_t)n);
            printf("golden full decode: SNR %.2f dB over %lld samples (%.2f s, %.1f frames/s)\n", snr, (long long)n, dt, T / dt);
            CHECK(snr >= 60.0, "full decode SNR %.2f dB < 60", snr);
        }
        free(ref), ref = NULL;
    }
    float *wc[1] = {NULL};
    /* meta.json names the chunking the reference used (official default 300/25) */
    int chunk = QTTS_CODEC_CHUNK_DEFAULT, lctx = QTTS_CODEC_CONTEXT_DEFAULT;
    char *mj = NULL;
    size_t ml = 0;
    snprintf(p, sizeof p, "%s/codec/meta.json", tu_fixture_dir());
    if (qtts_read_file(p, &mj, &ml, &err) == QTTS_OK) {
        cJSON *m = cJSON_ParseWithLength(mj, ml);
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(m, "chunk_size"), *lc = cJSON_GetObjectItemCaseSensitive(m, "left_context");
        if (cJSON_IsNumber(cs)) chunk = cs->valueint;
        if (cJSON_IsNumber(lc)) lctx = lc->valueint;
        cJSON_Delete(m);
        free(mj);
    }
    if (load_wave("wav_chunked", &ref, &nref)) {
        CHECK(qtts_codec_decode_chunked(c, ci, &T, 1, chunk, lctx, wc, &err) == QTTS_OK, "chunked decode: %s", err.msg);
        if (wc[0]) {
            int64_t n = nref < (int64_t)T * spf ? nref : (int64_t)T * spf;
            CHECK(nref == (int64_t)T * spf, "wav_chunked has %lld samples, expected %lld", (long long)nref, (long long)T * spf);
            double snr = tu_snr_db(wc[0], ref, (size_t)n);
            printf("golden chunked decode (chunk %d, context %d): SNR %.2f dB\n", chunk, lctx, snr);
            CHECK(snr >= 60.0, "chunked decode SNR %.2f dB < 60", snr);
            if (w[0])
                printf("chunked vs full decode (ours), %d frames: SNR %.2f dB\n", T, tu_snr_db(wc[0], w[0], (size_t)T * spf));
        }
        free(ref);
    }
    /* The issue asks that the seam error of the official 300/25 chunking be
     * measured: a long sequence (the fixture codes tiled to 750 frames) decoded
     * in one call vs chunked. Measured on the fixture decoder (tiny, random
     * weights): 128 dB, i.e. exact to fp32, because its receptive field
     * (window 8 x 2 layers plus the convs) fits in the 25-frame context; with
     * its own 40/10 chunking (context < 16) it is 52 dB. The released decoder
     * (window 72 x 8 layers = 568 frames) is NOT covered by 25 frames; its
     * seam error needs the real weights and is not measured here. */
    {
        int TL = 750;
        int32_t *cl = malloc((size_t)TL * nq * sizeof(int32_t));
        for (int t = 0; t < TL; t++) memcpy(cl + (size_t)t * nq, ci + (size_t)(t % T) * nq, (size_t)nq * sizeof(int32_t));
        float *lf[1] = {NULL}, *lc[1] = {NULL};
        CHECK(qtts_codec_decode(c, cl, &TL, 1, lf, &err) == QTTS_OK, "long full: %s", err.msg);
        CHECK(qtts_codec_decode_chunked(c, cl, &TL, 1, QTTS_CODEC_CHUNK_DEFAULT, QTTS_CODEC_CONTEXT_DEFAULT, lc, &err) == QTTS_OK,
              "long chunked: %s", err.msg);
        if (lf[0] && lc[0]) {
            size_t n = (size_t)TL * spf, seam = (size_t)QTTS_CODEC_CHUNK_DEFAULT * spf;
            double snr = tu_snr_db(lc[0], lf[0], n);
            /* Causal: the first chunk sees exactly the full decode's inputs. Equal up to
             * rounding only, since a threaded BLAS may block a longer product differently. */
            double d0 = max_abs_diff(lc[0], lf[0], seam);
            printf("chunked (300/25) vs full decode, fixture decoder, %d frames: SNR %.2f dB; first chunk max |diff| %.3g\n", TL, snr, d0);
            CHECK(d0 <= 1e-5, "first chunk must equal the full decode up to rounding (max |diff| %.3g)", d0);
            CHECK(snr > 20.0 && snr < 300.0, "chunked vs full SNR %.2f dB out of the plausible range", snr);
        }
        free(lf[0]), free(lc[0]), free(cl);
    }
    free(w[0]), free(wc[0]), free(ci);
done:
    qtts_codec_free(c);
    qtts_npy_free(&codes);
}

int main(void) {
    qtts_backend be;
    qtts_err err = {0};
    bool golden = false;
    if (qtts_backend_cpu_init(&be, &err) != QTTS_OK) return tu_skip("no CPU backend");
    test_ops(&be);
    test_tiny(&be);
    test_official_tiny(&be);
    test_golden(&be, &golden);
    qtts_backend_free(&be);
    return tu_finish(golden ? "codec (ops, tiny model, golden)" : "codec (ops, tiny model; golden fixtures absent)");
}
