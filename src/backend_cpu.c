/* CPU backend: the reference implementation of the op table. Plain fp32 loops,
 * OpenBLAS sgemm for matmul and the 1x1/large convolutions, OpenMP over rows
 * where the loop is independent. Weights are stored as F32. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "sample.h"

/* Parallel regions cost tens of microseconds to wake threads: below this many
 * multiply-adds a loop runs serially (the code predictor's per-step attention
 * is far below it). */
#define PAR_MIN_WORK (1 << 18)

/* OpenBLAS runs single-threaded (qtts_backend_cpu_init) and the GEMMs are
 * split here, across OpenMP threads, into blocks of GEMM_BLOCK output columns
 * (matmul) or output rows (codec convolutions; conv1d also by columns of
 * time). Two reasons:
 *  - OpenBLAS 0.3.21 does not thread sgemm for the 8-row calls a generator
 *    step makes (the padded single row below), so a step used one core;
 *    split this way every row count uses all of them;
 *  - the blocks are a function of the shape alone, never of the thread count,
 *    so results are the same on every core count (OpenBLAS's own split is
 *    not: it follows its thread count). */
enum { GEMM_BLOCK = 128 };

/* Blocks of `size` covering len items, and the length of block blk (the last may be short). */
static int n_blocks(int len, int size) { return (len + size - 1) / size; }
static int block_len(int len, int blk, int size) { return len - blk * size < size ? len - blk * size : size; }

/* Rows per sgemm call of a matmul (see cpu_matmul). */
enum { GEMM_ROWS = 8 };

/* y[m][out] = x[m][in] W[out][in]^T for m a multiple of GEMM_ROWS: by blocks
 * of output columns, each block by calls of GEMM_ROWS rows (the block's
 * weights stay in cache from one call to the next). */
static void sgemm_nt(int m, int out, int in, const float *x, const float *W, float *y) {
    int nb = n_blocks(out, GEMM_BLOCK);
    #pragma omp parallel for schedule(static) if (nb > 1 && (int64_t)m * out * in > PAR_MIN_WORK)
    for (int c = 0; c < nb; c++) {
        int j0 = c * GEMM_BLOCK;
        for (int r = 0; r < m; r += GEMM_ROWS)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, GEMM_ROWS, block_len(out, c, GEMM_BLOCK), in, 1.0f, x + (int64_t)r * in, in,
                        W + (int64_t)j0 * in, in, 0.0f, y + (int64_t)r * out + j0, out);
    }
}

static void *cpu_alloc(qtts_backend *be, size_t bytes) {
    (void)be;
    return calloc(1, bytes ? bytes : 1);
}
static void cpu_free(qtts_backend *be, void *p) { (void)be; free(p); }
static void cpu_memcpy(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_sync(qtts_backend *be) { (void)be; }

static size_t cpu_storage_bytes(qtts_backend *be, const qtts_st_tensor *src) {
    (void)be;
    return (size_t)src->numel * sizeof(float);
}

static qtts_status cpu_upload_at(qtts_backend *be, const qtts_st_tensor *src, void *mem, qtts_tensor *dst, qtts_err *err) {
    (void)be;
    memset(dst, 0, sizeof *dst);
    if (!(QTTS_DTM_FLOAT & QTTS_DTM(src->dtype)))
        return qtts_fail(err, QTTS_ERR_DTYPE, "%s: cannot use %s as a float weight", src->name, qtts_dtype_name(src->dtype));
    if (src->ndim > 4) return qtts_fail(err, QTTS_ERR_SHAPE, "%s: %d dims (max 4)", src->name, src->ndim);
    qtts_st_to_f32(src, mem);
    dst->data = mem;
    dst->dtype = QTTS_DT_F32;
    dst->ndim = src->ndim;
    for (int i = 0; i < src->ndim; i++) dst->shape[i] = src->shape[i];
    dst->numel = src->numel;
    dst->view = true;
    return QTTS_OK;
}

static qtts_status cpu_upload(qtts_backend *be, const qtts_st_tensor *src, qtts_tensor *dst, qtts_err *err) {
    float *f = qtts_malloc(cpu_storage_bytes(be, src), err, src->name);
    if (!f) return QTTS_ERR_OOM;
    qtts_status st = cpu_upload_at(be, src, f, dst, err);
    if (st) {
        free(f);
        return st;
    }
    dst->view = false;
    return QTTS_OK;
}

static void cpu_release(qtts_backend *be, qtts_tensor *t) {
    (void)be;
    if (!t->view) free(t->data);
    memset(t, 0, sizeof *t);
}

/* ---------------- LM ops ---------------- */

static void cpu_embed(qtts_backend *be, const qtts_tensor *table, const int32_t *ids, int n, float *out) {
    (void)be;
    int64_t d = table->shape[1];
    const float *w = table->data;
    for (int i = 0; i < n; i++) {
        if (ids[i] >= 0 && ids[i] < table->shape[0]) memcpy(out + (int64_t)i * d, w + (int64_t)ids[i] * d, (size_t)d * sizeof(float));
        else memset(out + (int64_t)i * d, 0, (size_t)d * sizeof(float));
    }
}

static void cpu_embed_sum(qtts_backend *be, const qtts_tensor *const *tables, int n_tables, const int32_t *ids, int stride, int n,
                          float *out) {
    int64_t d = tables[0]->shape[1];
    cpu_embed(be, tables[0], ids, n, out);
    for (int t = 1; t < n_tables; t++) {
        const float *w = tables[t]->data;
        for (int i = 0; i < n; i++) {
            int32_t id = ids[(int64_t)t * stride + i];
            if (id < 0 || id >= tables[t]->shape[0]) continue; /* a zero row */
            float *o = out + (int64_t)i * d;
            const float *row = w + (int64_t)id * d;
            for (int64_t j = 0; j < d; j++) o[j] = o[j] + row[j];
        }
    }
}

/* Zeroed host scratch for an op, the size of the call's activations. The op
 * table has no error path, so failure aborts with the op's name. */
static float *scratch(size_t floats, const char *op) {
    float *p = calloc(floats ? floats : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "qtts: out of memory in the CPU %s (%zu floats)\n", op, floats);
        abort();
    }
    return p;
}

static void cpu_matmul(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int n) {
    (void)be;
    int out = (int)w->shape[0], in = (int)w->shape[1];
    const float *W = w->data;
    /* A row's result must not depend on how many rows share the call, so an
     * utterance's codes are the same whether it renders alone or in a batch
     * (decode steps, prompts prefilled together). OpenBLAS does not keep
     * that across call sizes: sgemv sums in another order than sgemm, on
     * AVX-512 CPUs sgemm's kernels for the last 1-7 rows do too, and its
     * kernel choice follows the whole call's size, so 16 and 24 rows of one
     * shape differ (tests/test_backend_cpu.c). So every sgemm call is
     * GEMM_ROWS rows, the last n % GEMM_ROWS padded with zeros. */
    enum { ROWS = GEMM_ROWS };
    int body = n / ROWS * ROWS, tail = n - body;
    if (body) sgemm_nt(body, out, in, x, W, y);
    if (tail) {
        float *xs = scratch((size_t)ROWS * ((size_t)in + out), "matmul");
        float *ys = xs + (size_t)ROWS * in;
        memcpy(xs, x + (size_t)body * in, (size_t)tail * in * sizeof(float));
        sgemm_nt(ROWS, out, in, xs, W, ys);
        memcpy(y + (size_t)body * out, ys, (size_t)tail * out * sizeof(float));
        free(xs);
    }
    if (bias) {
        const float *b = bias->data;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out; j++) y[(int64_t)i * out + j] += b[j];
    }
}

static void cpu_rmsnorm(qtts_backend *be, const float *x, const qtts_tensor *w, float eps, float *y, int n, int dim) {
    (void)be;
    const float *g = w->data;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * dim;
        float *yi = y + (int64_t)i * dim;
        double ss = 0;
        for (int j = 0; j < dim; j++) ss += (double)xi[j] * xi[j];
        float r = 1.0f / sqrtf((float)(ss / dim) + eps);
        for (int j = 0; j < dim; j++) yi[j] = xi[j] * r * g[j];
    }
}

static void cpu_add(qtts_backend *be, const float *a, const float *b, float *y, int64_t len) {
    (void)be;
    for (int64_t i = 0; i < len; i++) y[i] = a[i] + b[i];
}

static inline float silu(float v) { return v / (1.0f + expf(-v)); }

static void cpu_swiglu(qtts_backend *be, const float *gu, float *y, int n, int inter) {
    (void)be;
    for (int i = 0; i < n; i++) {
        const float *g = gu + (int64_t)i * 2 * inter, *u = g + inter;
        float *yi = y + (int64_t)i * inter;
        for (int j = 0; j < inter; j++) yi[j] = silu(g[j]) * u[j];
    }
}

/* The fused projections are their unfused op sequences here, so CPU results
 * are the same bits as before the fusion; the CUDA backend fuses them. */
static void cpu_norm_matmul(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, int nw, const qtts_tensor *const *w,
                            float *const *y, int n) {
    int in = (int)w[0]->shape[1];
    float *xn = scratch((size_t)n * in, "norm_matmul");
    cpu_rmsnorm(be, x, norm, eps, xn, n, in);
    for (int j = 0; j < nw; j++) cpu_matmul(be, xn, w[j], NULL, y[j], n);
    free(xn);
}

static void cpu_norm_swiglu(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, const qtts_tensor *w, float *y, int n) {
    int in = (int)w->shape[1], inter = (int)(w->shape[0] / 2);
    float *xn = scratch((size_t)n * in + (size_t)n * 2 * inter, "norm_swiglu"), *gu = xn + (size_t)n * in;
    cpu_rmsnorm(be, x, norm, eps, xn, n, in);
    cpu_matmul(be, xn, w, NULL, gu, n);
    cpu_swiglu(be, gu, y, n, inter);
    free(xn);
}

static void cpu_matmul_add(qtts_backend *be, const float *x, const qtts_tensor *w, float *y, int n) {
    int64_t len = (int64_t)n * w->shape[0];
    float *r = scratch((size_t)len, "matmul_add");
    cpu_matmul(be, x, w, NULL, r, n);
    cpu_add(be, y, r, y, len);
    free(r);
}

static void cpu_silu(qtts_backend *be, float *x, int64_t len) {
    (void)be;
    for (int64_t i = 0; i < len; i++) x[i] = silu(x[i]);
}

/* NeoX rotate-half: halves a = x[0:hd/2], b = x[hd/2:hd];
 * out_a = a cos - b sin, out_b = b cos + a sin, angle_j = pos * theta^(-2j/hd).
 * Angles in double so that long positions keep fp32-exact cos/sin. */
static void rope_head(float *x, int hd, int pos, float theta) {
    int h = hd / 2;
    for (int j = 0; j < h; j++) {
        double inv = pow((double)theta, -2.0 * j / hd);
        float inv_f = (float)inv; /* the reference computes inv_freq in fp32 */
        float ang = (float)pos * inv_f;
        float c = cosf(ang), s = sinf(ang);
        float a = x[j], b = x[j + h];
        x[j] = a * c - b * s;
        x[j + h] = b * c + a * s;
    }
}

static void head_rmsnorm(float *x, const float *w, int hd, float eps) {
    double ss = 0;
    for (int j = 0; j < hd; j++) ss += (double)x[j] * x[j];
    float r = 1.0f / sqrtf((float)(ss / hd) + eps);
    for (int j = 0; j < hd; j++) x[j] = x[j] * r * w[j];
}

static void cpu_qk_norm_rope(qtts_backend *be, float *q, float *k, const qtts_tensor *qn, const qtts_tensor *kn, float eps,
                             const qtts_batch *b, int n_heads, int n_kv, int hd, float theta) {
    (void)be;
    for (int i = 0; i < b->n; i++) {
        int pos = b->pos[i];
        for (int h = 0; h < n_heads; h++) {
            float *x = q + ((int64_t)i * n_heads + h) * hd;
            if (qn) head_rmsnorm(x, qn->data, hd, eps);
            rope_head(x, hd, pos, theta);
        }
        for (int h = 0; h < n_kv; h++) {
            float *x = k + ((int64_t)i * n_kv + h) * hd;
            if (kn) head_rmsnorm(x, kn->data, hd, eps);
            rope_head(x, hd, pos, theta);
        }
    }
}

static inline int64_t kv_off(const qtts_kv_cache *c, int layer, int slot, int pos) {
    return ((((int64_t)layer * c->n_slots + slot) * c->max_len + pos) * c->n_kv_heads) * c->head_dim;
}

static void cpu_kv_store(qtts_backend *be, qtts_kv_cache *c, int layer, const float *k, const float *v, const qtts_batch *b) {
    (void)be;
    size_t row = (size_t)c->n_kv_heads * c->head_dim;
    for (int i = 0; i < b->n; i++) {
        int64_t o = kv_off(c, layer, b->slot[i], b->pos[i]);
        memcpy(c->k + o, k + (int64_t)i * row, row * sizeof(float));
        memcpy(c->v + o, v + (int64_t)i * row, row * sizeof(float));
    }
}

static void cpu_qk_norm_rope_store(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                   float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *c, int layer) {
    cpu_qk_norm_rope(be, q, k, qn, kn, eps, b, n_heads, n_kv, hd, theta);
    cpu_kv_store(be, c, layer, k, v, b);
}

/* Online softmax (one pass, running max and sum): no score buffer, so the
 * op allocates nothing whatever the context length. */
static void cpu_attention(qtts_backend *be, const float *q, const qtts_kv_cache *c, int layer, const qtts_batch *b, int n_heads,
                          float scale, int window, float *out) {
    (void)be;
    int hd = c->head_dim, nkv = c->n_kv_heads, group = n_heads / nkv;
    int maxp = 0;
    for (int i = 0; i < b->n; i++) maxp = b->pos[i] + 1 > maxp ? b->pos[i] + 1 : maxp;
    int64_t work = (int64_t)b->n * n_heads * maxp * hd;
    #pragma omp parallel for collapse(2) schedule(static) if (work > PAR_MIN_WORK)
    for (int i = 0; i < b->n; i++) {
        for (int h = 0; h < n_heads; h++) {
            int pos = b->pos[i], slot = b->slot[i], kh = h / group;
            int p0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
            const float *qi = q + ((int64_t)i * n_heads + h) * hd;
            float *o = out + ((int64_t)i * n_heads + h) * hd;
            for (int d = 0; d < hd; d++) o[d] = 0;
            float mx = -INFINITY;
            double sum = 0;
            for (int p = p0; p <= pos; p++) {
                const float *kp = c->k + kv_off(c, layer, slot, p) + (int64_t)kh * hd;
                const float *vp = c->v + kv_off(c, layer, slot, p) + (int64_t)kh * hd;
                float s = 0;
                for (int d = 0; d < hd; d++) s += qi[d] * kp[d];
                s *= scale;
                if (s > mx) { /* rescale what was accumulated under the old max */
                    float r = expf(mx - s);
                    sum *= r;
                    for (int d = 0; d < hd; d++) o[d] *= r;
                    mx = s;
                }
                float w = expf(s - mx);
                sum += w;
                for (int d = 0; d < hd; d++) o[d] += w * vp[d];
            }
            float inv = (float)(1.0 / sum);
            for (int d = 0; d < hd; d++) o[d] *= inv;
        }
    }
}

static void cpu_qk_norm_rope_attend(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                    float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *c, int layer,
                                    float scale, float *out) {
    cpu_qk_norm_rope_store(be, q, k, v, qn, kn, eps, b, n_heads, n_kv, hd, theta, c, layer);
    cpu_attention(be, q, c, layer, b, n_heads, scale, 0, out);
}

static void cpu_gather_rows(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst) {
    (void)be;
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * dim, src + (size_t)idx[i] * dim, (size_t)dim * sizeof(float));
}

static void cpu_scatter_rows(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst) {
    (void)be;
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)idx[i] * dim, src + (size_t)i * dim, (size_t)dim * sizeof(float));
}

static void cpu_sample(qtts_backend *be, float *logits, int n, int V, const qtts_sample_row *rows, uint8_t *seen, int32_t *tokens) {
    (void)be;
    float wf[V];
    int wi[V];
    for (int i = 0; i < n; i++) {
        const qtts_sample_row *r = &rows[i];
        float *l = logits + (size_t)i * V;
        if (r->seen_row >= 0) qtts_sample_penalize(l, V, seen + (size_t)r->seen_row * V, r->penalty);
        for (int v = r->ban_from; v < V; v++)
            if (v != r->keep_id) l[v] = -INFINITY;
        if (r->ban_id >= 0 && r->ban_id < V) l[r->ban_id] = -INFINITY;
        qtts_sampler s = {.greedy = r->greedy != 0, .temperature = r->temperature, .top_k = r->top_k, .top_p = r->top_p, .repetition_penalty = 1};
        int tok = qtts_sample_pick(l, V, &s, qtts_rng_uniform(r->seed, r->counter), wf, wi);
        tokens[i] = tok;
        if (tok >= 0 && r->seen_row >= 0) seen[(size_t)r->seen_row * V + tok] = 1;
    }
}

static void cpu_scale_rows(qtts_backend *be, const float *x, const qtts_tensor *s, float *y, int n, int dim) {
    (void)be;
    const float *g = s->data;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) y[(int64_t)i * dim + j] = x[(int64_t)i * dim + j] * g[j];
}

/* ---------------- codec decoder ops ---------------- */

/* Causal conv1d. groups == 1 runs as K GEMMs, one per tap: the tap-k weights
 * are repacked to a contiguous [cout][cin] matrix and multiply the input
 * shifted by k*dilation - pad, accumulating into the output columns that tap
 * reaches (columns before it see only left zero padding). Grouped convs
 * (the depthwise ConvNeXt conv) use the direct loop. */
static void cpu_conv1d(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B, int cin,
                       int cout, int T, int dilation, int groups) {
    (void)be;
    int K = (int)w->shape[2], cpg_in = cin / groups, cpg_out = cout / groups, pad = (K - 1) * dilation;
    const float *W = w->data, *bb = bias ? bias->data : NULL;
    if (groups == 1) {
        float *wk = NULL;
        if (K > 1) {
            wk = malloc((size_t)K * cout * cin * sizeof(float));
            if (!wk) goto direct; /* no memory for the repack: the direct loop needs none */
            #pragma omp parallel for schedule(static) if ((int64_t)K * cout * cin > PAR_MIN_WORK)
            for (int o = 0; o < cout; o++)
                for (int ci = 0; ci < cin; ci++)
                    for (int k = 0; k < K; k++) wk[((int64_t)k * cout + o) * cin + ci] = W[((int64_t)o * cin + ci) * K + k];
        }
        /* Blocks of GEMM_BLOCK output rows by CONV_T_BLOCK output columns,
         * each one thread's for every item and tap: the late decoder stages
         * have few channels and long signals. Column blocks start at 0 of
         * the output, whatever the taps reach. */
        enum { CONV_T_BLOCK = 512 };
        int nrb = n_blocks(cout, GEMM_BLOCK), ncb = n_blocks(T, CONV_T_BLOCK);
        #pragma omp parallel for schedule(static) if (nrb * ncb > 1 && (int64_t)B * K * cout * cin * T > PAR_MIN_WORK)
        for (int blk = 0; blk < nrb * ncb; blk++) {
            int o0 = blk / ncb * GEMM_BLOCK, no = block_len(cout, blk / ncb, GEMM_BLOCK);
            int c0 = blk % ncb * CONV_T_BLOCK, c1 = c0 + block_len(T, blk % ncb, CONV_T_BLOCK);
            for (int bi = 0; bi < B; bi++) {
                const float *xb = x + (int64_t)bi * cin * T;
                float *yb = y + ((int64_t)bi * cout + o0) * T;
                for (int o = 0; o < no; o++) {
                    float b0 = bb ? bb[o0 + o] : 0.0f;
                    for (int t = c0; t < c1; t++) yb[(int64_t)o * T + t] = b0;
                }
                for (int k = 0; k < K; k++) {
                    int t0 = pad - k * dilation; /* first output column this tap reaches */
                    int a = t0 > c0 ? t0 : c0;  /* this block's first column it reaches */
                    if (a >= c1) continue;
                    const float *A = (K > 1 ? wk + (int64_t)k * cout * cin : W) + (int64_t)o0 * cin;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, no, c1 - a, cin, 1.0f, A, cin, xb + (a - t0), T, 1.0f, yb + a, T);
                }
            }
        }
        free(wk);
        return;
    }
direct:
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)B * cout * cpg_in * K * T > PAR_MIN_WORK)
    for (int bi = 0; bi < B; bi++) {
        for (int o = 0; o < cout; o++) {
            int g = o / cpg_out;
            float *yo = y + ((int64_t)bi * cout + o) * T;
            float b0 = bb ? bb[o] : 0.0f;
            for (int t = 0; t < T; t++) yo[t] = b0;
            for (int ci = 0; ci < cpg_in; ci++) {
                const float *xc = x + ((int64_t)bi * cin + (int64_t)g * cpg_in + ci) * T;
                const float *wk = W + ((int64_t)o * cpg_in + ci) * K;
                for (int k = 0; k < K; k++) {
                    int shift = k * dilation - pad; /* input index = t + shift */
                    float wv = wk[k];
                    int t0 = shift < 0 ? -shift : 0;
                    for (int t = t0; t < T; t++) yo[t] += wv * xc[t + shift];
                }
            }
        }
    }
}

/* Transposed conv1d as GEMM + scatter: W [cin][cout*K] is used as is,
 * Z[cout*K][t] = sum_ci W[ci][o*K+k] x[ci][t] over a tile of input columns,
 * then y[o][t*s+k] += Z[o*K+k][t] for the outputs kept after the right trim. */
static void cpu_conv_transpose1d(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B,
                                 int cin, int cout, int T, int stride) {
    (void)be;
    int K = (int)w->shape[2];
    int64_t To = (int64_t)T * stride; /* full length (T-1)*s + K, trimmed right by K - s */
    int64_t rows = (int64_t)cout * K;
    const float *W = w->data, *bb = bias ? bias->data : NULL;
    int tile = (int)((1 << 23) / rows);
    tile = tile < 1 ? 1 : tile > T ? T : tile;
    float *Z = malloc((size_t)rows * tile * sizeof(float));
    for (int bi = 0; bi < B; bi++) {
        const float *xb = x + (int64_t)bi * cin * T;
        float *yb = y + (int64_t)bi * cout * To;
        for (int o = 0; o < cout; o++) {
            float b0 = bb ? bb[o] : 0.0f;
            for (int64_t t = 0; t < To; t++) yb[(int64_t)o * To + t] = b0;
        }
        if (!Z) { /* no memory for the tile: direct accumulation */
            for (int o = 0; o < cout; o++)
                for (int ci = 0; ci < cin; ci++)
                    for (int t = 0; t < T; t++)
                        for (int k = 0; k < K; k++) {
                            int64_t ot = (int64_t)t * stride + k;
                            if (ot < To) yb[(int64_t)o * To + ot] += xb[(int64_t)ci * T + t] * W[((int64_t)ci * cout + o) * K + k];
                        }
            continue;
        }
        for (int t0 = 0; t0 < T; t0 += tile) {
            int nt = T - t0 < tile ? T - t0 : tile;
            int nb = n_blocks((int)rows, GEMM_BLOCK);
            #pragma omp parallel for schedule(static) if (nb > 1 && rows * nt * cin > PAR_MIN_WORK)
            for (int c = 0; c < nb; c++) {
                int r0 = c * GEMM_BLOCK;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, block_len((int)rows, c, GEMM_BLOCK), nt, cin, 1.0f, W + r0, (int)rows,
                            xb + t0, T, 0.0f, Z + (int64_t)r0 * nt, nt);
            }
            #pragma omp parallel for schedule(static) if ((int64_t)cout * K * nt > PAR_MIN_WORK)
            for (int o = 0; o < cout; o++) {
                float *yo = yb + (int64_t)o * To;
                for (int k = 0; k < K; k++) {
                    const float *zr = Z + ((int64_t)o * K + k) * nt;
                    for (int t = 0; t < nt; t++) {
                        int64_t ot = (int64_t)(t0 + t) * stride + k;
                        if (ot < To) yo[ot] += zr[t];
                    }
                }
            }
        }
    }
    free(Z);
}

static void cpu_snake(qtts_backend *be, const float *x, const qtts_tensor *alpha, const qtts_tensor *beta, float *y, int B, int C,
                      int T) {
    (void)be;
    const float *a = alpha->data, *bt = beta->data;
    /* a sinf per element (~16 multiply-adds' worth): 15% of a decode on one core */
    #pragma omp parallel for collapse(2) schedule(static) if ((int64_t)B * C * T * 16 > PAR_MIN_WORK)
    for (int bi = 0; bi < B; bi++)
        for (int c = 0; c < C; c++) {
            float av = a[c], inv = 1.0f / (bt[c] + 1e-9f);
            const float *xc = x + ((int64_t)bi * C + c) * T;
            float *yc = y + ((int64_t)bi * C + c) * T;
            for (int t = 0; t < T; t++) {
                float s = sinf(av * xc[t]);
                yc[t] = xc[t] + inv * s * s;
            }
        }
}

static void cpu_transpose(qtts_backend *be, const float *x, float *y, int B, int R, int S) {
    (void)be;
    for (int bi = 0; bi < B; bi++) {
        const float *xb = x + (int64_t)bi * R * S;
        float *yb = y + (int64_t)bi * R * S;
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++) yb[(int64_t)s * R + r] = xb[(int64_t)r * S + s];
    }
}

static void cpu_layernorm(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *b, float eps, float *y, int n,
                          int dim) {
    (void)be;
    const float *g = w->data, *bb = b ? b->data : NULL;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * dim;
        float *yi = y + (int64_t)i * dim;
        double m = 0, v = 0;
        for (int j = 0; j < dim; j++) m += xi[j];
        m /= dim;
        for (int j = 0; j < dim; j++) v += (xi[j] - m) * (xi[j] - m);
        v /= dim;
        float r = 1.0f / sqrtf((float)v + eps);
        for (int j = 0; j < dim; j++) yi[j] = (float)(xi[j] - m) * r * g[j] + (bb ? bb[j] : 0.0f);
    }
}

static void cpu_gelu(qtts_backend *be, float *x, int64_t len) {
    (void)be;
    for (int64_t i = 0; i < len; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void cpu_clamp(qtts_backend *be, float *x, int64_t len, float lo, float hi) {
    (void)be;
    for (int64_t i = 0; i < len; i++) x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

static const qtts_ops cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_memcpy,
    .to_host = cpu_memcpy,
    .copy = cpu_memcpy,
    .sync = cpu_sync,
    .upload = cpu_upload,
    .storage_bytes = cpu_storage_bytes,
    .upload_at = cpu_upload_at,
    .release = cpu_release,
    .embed = cpu_embed,
    .embed_sum = cpu_embed_sum,
    .norm_matmul = cpu_norm_matmul,
    .norm_swiglu = cpu_norm_swiglu,
    .matmul_add = cpu_matmul_add,
    .qk_norm_rope_store = cpu_qk_norm_rope_store,
    .qk_norm_rope_attend = cpu_qk_norm_rope_attend,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .add = cpu_add,
    .swiglu = cpu_swiglu,
    .silu = cpu_silu,
    .qk_norm_rope = cpu_qk_norm_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .scale_rows = cpu_scale_rows,
    .sample = cpu_sample,
    .gather_rows = cpu_gather_rows,
    .scatter_rows = cpu_scatter_rows,
    .conv1d = cpu_conv1d,
    .conv_transpose1d = cpu_conv_transpose1d,
    .snake = cpu_snake,
    .transpose = cpu_transpose,
    .layernorm = cpu_layernorm,
    .gelu = cpu_gelu,
    .clamp = cpu_clamp,
};

qtts_status qtts_backend_cpu_init(qtts_backend *be, qtts_err *err) {
    (void)err;
#ifdef _OPENMP
    openblas_set_num_threads(1); /* the GEMMs are split across OpenMP threads here (GEMM_BLOCK) */
#endif
    be->ops = &cpu_ops;
    be->impl = NULL;
    return QTTS_OK;
}

void qtts_backend_free(qtts_backend *be) {
    if (be->ops && be->ops->destroy) be->ops->destroy(be);
    be->ops = NULL;
    be->impl = NULL;
}

qtts_status qtts_tensor_load(qtts_backend *be, const qtts_safetensors *st, const char *name, int ndim, const int64_t *shape,
                             qtts_tensor *dst, qtts_err *err) {
    const qtts_st_tensor *t;
    qtts_status s = qtts_st_get(st, name, QTTS_DTM_FLOAT, ndim, shape, &t, err);
    if (s) return s;
    return be->ops->upload(be, t, dst, err);
}
