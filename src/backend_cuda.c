/* CUDA backend: the op table (backend.h) on one GPU. Every op enqueues on one
 * non-blocking stream and returns at once; only to_host, alloc, free, sync
 * and graph_reset wait. Matmul: a warp-per-row GEMV (kernels/gemv.cu) for up to
 * QTTS_GEMV_MAX_N tokens, with fp32 activations; above that cublasGemmEx with
 * A = W bf16, B = x rounded to bf16 in a workspace, fp32 accumulation and
 * fp32 output (cuBLAS's bf16 GEMM wants A and B of one type; no cuBLAS mode
 * takes an fp32 B with a bf16 A, and the rounding of the activations costs
 * ~3e-3 relative, inside the bf16-weight error). The fused projections
 * (norm_matmul, norm_swiglu, matmul_add) take the same two paths, with the
 * norm, SwiGLU or residual add inside the GEMV (see cu_norm_matmul). Each op is one NVTX range in
 * the domain "qtts". Errors are sticky (see qtts_backend_cuda_check).
 * Run on an H100: tests/test_cuda_ops.c and test_talker --backend cuda
 * (bench/results/gpu-logs/). Codec convolutions: fp32 cuBLAS GEMMs (see
 * cu_conv1d). Op sequences: CUDA graphs (graph_begin/graph_end). */
#ifdef QTTS_HAVE_CUDA

#include "backend_cuda.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <nvtx3/nvToolsExt.h>

#include "qtts_kernels.h"

typedef struct cuda_impl {
    int device;
    cudaStream_t stream;
    qtts_k_stream ks; /* the stream as the kernel launchers take it (with the PDL choice) */
    cublasHandle_t blas;
    nvtxDomainHandle_t nvtx;
    void *ws;        /* scratch: bf16 GEMM inputs, attention partials; grows, never shrinks */
    size_t peak;     /* most device memory seen in use (total - free), sampled after allocations */
    size_t conv_tile; /* bytes of one im2col / col2im tile */
    /* recorded op sequences (graph_begin/graph_end): a key is run plainly the
     * first time (scratch memory reaches its size), captured the second */
    struct cu_graph {
        uint64_t key;
        cudaGraphExec_t exec; /* NULL: seen once, capture next time */
    } *graphs;
    int n_graphs, cap_graphs;
    bool capturing, graphs_off;
    qtts_ops ops_plain; /* graphs off (qtts_backend_params.cuda_graphs): the table without the graph ops */
    void *blas_ws;   /* cuBLAS's own workspace, fixed so that captures never allocate */
    size_t ws_bytes;
    /* the persistent code predictor (qtts_backend_params.cuda_persistent; kernels/predictor.cu) */
    bool persistent;
    unsigned *pred_bar; /* its grid barrier's counter */
    struct pred_grid {
        int nb, vocab, group, head_dim, n_groups, grid; /* grid 0: shapes not taken */
    } pred_grids[8];
    int n_pred_grids;
    bool failed;     /* first failure recorded in `what` */
    char what[512];
} cuda_impl;

static cuda_impl *impl_of(qtts_backend *be) { return (cuda_impl *)be->impl; }

/* Device memory only grows at our allocations (and cuBLAS's, at handle
 * creation): sampling there finds the peak. */
static void note_memory(cuda_impl *c) {
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) == cudaSuccess) {
        if (total - free_b > c->peak) c->peak = total - free_b;
    } else {
        cudaGetLastError();
    }
}

static void fail_msg(cuda_impl *c, const char *op, const char *msg) {
    if (c->failed) return;
    c->failed = true;
    snprintf(c->what, sizeof c->what, "%s: %s", op, msg);
}
static void rec(cuda_impl *c, cudaError_t e, const char *op) {
    if (e != cudaSuccess) fail_msg(c, op, cudaGetErrorString(e));
}
static void rec_blas(cuda_impl *c, cublasStatus_t e, const char *op) {
    if (e != CUBLAS_STATUS_SUCCESS) fail_msg(c, op, cublasGetStatusString(e));
}

static void range_push(cuda_impl *c, const char *name) {
    nvtxEventAttributes_t a;
    memset(&a, 0, sizeof a);
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name;
    nvtxDomainRangePushEx(c->nvtx, &a);
}
static void range_pop(cuda_impl *c) { nvtxDomainRangePop(c->nvtx); }

static void drop_graphs(cuda_impl *c) {
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].exec) cudaGraphExecDestroy(c->graphs[i].exec);
    c->n_graphs = 0;
}

/* Scratch of at least `bytes`; NULL (failure recorded) when it cannot grow.
 * Growing waits for the stream: a kernel may still read the old buffer; and
 * it drops the recorded graphs, which hold the old address. */
static void *workspace(cuda_impl *c, size_t bytes, const char *op) {
    if (bytes <= c->ws_bytes) return c->ws;
    if (c->capturing) {
        fail_msg(c, op, "scratch memory must grow during a CUDA graph capture (run with --cuda-graphs off and report this)");
        return NULL;
    }
    drop_graphs(c);
    size_t want = bytes > 2 * c->ws_bytes ? bytes : 2 * c->ws_bytes;
    rec(c, cudaStreamSynchronize(c->stream), op);
    if (c->ws) cudaFree(c->ws);
    c->ws = NULL;
    c->ws_bytes = 0;
    cudaError_t e = cudaMalloc(&c->ws, want);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it, so that the next launch check does not report it */
        c->ws = NULL;
        char m[128];
        snprintf(m, sizeof m, "workspace of %zu bytes: %s", want, cudaGetErrorString(e));
        fail_msg(c, op, m);
        return NULL;
    }
    c->ws_bytes = want;
    note_memory(c);
    return c->ws;
}

/* Weights in the CUDA storage dtypes: matrices bf16, vectors f32. The
 * want_ forms record a failure naming the op; predict_frame asks quietly. */
static bool bf16_mat(const qtts_tensor *t) { return t && t->dtype == QTTS_DT_BF16; }
static bool f32_vec(const qtts_tensor *t) { return t && t->dtype == QTTS_DT_F32; }
static bool want_bf16(cuda_impl *c, const qtts_tensor *t, const char *op) {
    if (bf16_mat(t)) return true;
    char m[128];
    snprintf(m, sizeof m, "weight must be bf16 on the CUDA backend, got %s", qtts_dtype_name(t->dtype));
    fail_msg(c, op, m);
    return false;
}
static bool want_f32(cuda_impl *c, const qtts_tensor *t, const char *op) {
    if (!t || f32_vec(t)) return true;
    char m[128];
    snprintf(m, sizeof m, "vector weight must be f32 on the CUDA backend, got %s", qtts_dtype_name(t->dtype));
    fail_msg(c, op, m);
    return false;
}
static const float *vec(const qtts_tensor *t) { return t ? (const float *)t->data : NULL; }

/* ---------------- memory ---------------- */

static void *cu_alloc(qtts_backend *be, size_t bytes) {
    cuda_impl *c = impl_of(be);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* out of memory is the caller's to report, not a sticky device failure */
        return NULL;
    }
    note_memory(c);
    e = cudaMemsetAsync(p, 0, bytes, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        rec(c, e, "alloc");
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_free(qtts_backend *be, void *p) {
    if (p) rec(impl_of(be), cudaFree(p), "free"); /* cudaFree waits for the device */
}

/* Does not wait for the device. Callers pass pageable (malloc'd) memory, from
 * which the runtime stages the bytes before returning (CUDA's API sync
 * behaviour, "pageable host to device"), so the caller may reuse its buffer
 * at once; no stream sync here keeps the GPU fed while the host prepares the
 * next step. */
static void cu_to_device(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_impl *c = impl_of(be);
    if (!bytes) return;
    rec(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "to_device");
}
static void cu_to_host(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_impl *c = impl_of(be);
    if (!bytes) return;
    rec(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "to_host");
    rec(c, cudaStreamSynchronize(c->stream), "to_host");
}
static void cu_copy(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_impl *c = impl_of(be);
    if (bytes) rec(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy");
}
static void cu_sync(qtts_backend *be) {
    cuda_impl *c = impl_of(be);
    rec(c, cudaStreamSynchronize(c->stream), "sync");
}

/* Matrices (ndim >= 2) -> bf16, converted on the host (a one-time load cost;
 * BF16 checkpoints are copied as they are); vectors -> f32. */
static size_t cu_storage_bytes(qtts_backend *be, const qtts_st_tensor *src) {
    (void)be;
    return (size_t)src->numel * (src->ndim >= 2 ? 2 : 4);
}

/* Convert on the host (bf16 for matrices, f32 for vectors) and copy into mem. */
static qtts_status cu_upload_at(qtts_backend *be, const qtts_st_tensor *src, void *mem, qtts_tensor *dst, qtts_err *err) {
    cuda_impl *c = impl_of(be);
    memset(dst, 0, sizeof *dst);
    if (!(QTTS_DTM_FLOAT & QTTS_DTM(src->dtype)))
        return qtts_fail(err, QTTS_ERR_DTYPE, "%s: cannot use %s as a float weight", src->name, qtts_dtype_name(src->dtype));
    if (src->ndim > 4) return qtts_fail(err, QTTS_ERR_SHAPE, "%s: %d dims (max 4)", src->name, src->ndim);
    bool mat = src->ndim >= 2;
    size_t n = (size_t)src->numel, esz = mat ? 2 : 4;
    void *host = NULL;
    const void *from;
    float *f;
    if (mat && src->dtype == QTTS_DT_BF16) {
        from = src->data;
    } else {
        f = qtts_malloc((n ? n : 1) * sizeof(float), err, src->name);
        if (!f) return QTTS_ERR_OOM;
        qtts_st_to_f32(src, f);
        host = f;
        if (mat) {
            uint16_t *h = qtts_malloc((n ? n : 1) * sizeof(uint16_t), err, src->name);
            if (!h) {
                free(f);
                return QTTS_ERR_OOM;
            }
            for (size_t i = 0; i < n; i++) h[i] = qtts_f32_to_bf16(f[i]);
            free(f);
            host = h;
        }
        from = host;
    }
    /* on our stream and waited for: a plain cudaMemcpy runs on the legacy
     * stream, which does not order against a non-blocking stream */
    cudaError_t e = cudaSuccess;
    if (n) e = cudaMemcpyAsync(mem, from, n * esz, cudaMemcpyHostToDevice, c->stream);
    if (n && e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    free(host);
    if (e != cudaSuccess) return qtts_fail(err, QTTS_ERR_DEVICE, "%s: upload: %s", src->name, cudaGetErrorString(e));
    dst->data = mem;
    dst->dtype = mat ? QTTS_DT_BF16 : QTTS_DT_F32;
    dst->ndim = src->ndim;
    for (int i = 0; i < src->ndim; i++) dst->shape[i] = src->shape[i];
    dst->numel = src->numel;
    dst->view = true;
    return QTTS_OK;
}

static qtts_status cu_upload(qtts_backend *be, const qtts_st_tensor *src, qtts_tensor *dst, qtts_err *err) {
    size_t bytes = cu_storage_bytes(be, src);
    void *d = NULL;
    cudaError_t e = cudaMalloc(&d, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        memset(dst, 0, sizeof *dst);
        return qtts_fail(err, QTTS_ERR_OOM, "%s: %zu bytes of GPU memory: %s", src->name, bytes, cudaGetErrorString(e));
    }
    note_memory(impl_of(be));
    qtts_status st = cu_upload_at(be, src, d, dst, err);
    if (st) {
        cudaFree(d);
        return st;
    }
    dst->view = false;
    return QTTS_OK;
}

static void cu_release(qtts_backend *be, qtts_tensor *t) {
    if (t->data && !t->view) rec(impl_of(be), cudaFree(t->data), "release");
    memset(t, 0, sizeof *t);
}

/* ---------------- LM ops ---------------- */

#define OP(name)               \
    cuda_impl *c = impl_of(be); \
    const char *op_ = name;    \
    range_push(c, name)
#define DONE(launch)        \
    rec(c, (launch), op_); \
    range_pop(c)

static void cu_embed(qtts_backend *be, const qtts_tensor *table, const int32_t *ids, int n, float *out) {
    OP("embed");
    if (want_bf16(c, table, op_)) rec(c, qtts_k_embed(table->data, ids, n, table->shape[0], table->shape[1], out, c->ks), op_);
    range_pop(c);
}

_Static_assert(QTTS_K_EMBED_SUM_MAX == QTTS_EMBED_SUM_MAX, "embed_sum table limits must agree");
static void cu_embed_sum(qtts_backend *be, const qtts_tensor *const *tables, int n_tables, const int32_t *ids, int stride, int n, float *out) {
    OP("embed_sum");
    qtts_k_tables t;
    memset(&t, 0, sizeof t);
    bool ok = n_tables >= 1 && n_tables <= QTTS_EMBED_SUM_MAX;
    if (!ok) fail_msg(c, op_, "table count out of range");
    for (int k = 0; ok && k < n_tables; k++) {
        ok = want_bf16(c, tables[k], op_);
        if (ok && tables[k]->shape[1] != tables[0]->shape[1]) {
            fail_msg(c, op_, "tables of different widths");
            ok = false;
        }
        if (ok) {
            t.tab[k] = tables[k]->data;
            t.rows[k] = tables[k]->shape[0];
        }
    }
    t.n = n_tables;
    if (ok) rec(c, qtts_k_embed_sum(t, ids, stride, n, tables[0]->shape[1], out, c->ks), op_);
    range_pop(c);
}

/* y = xb W^T (beta 0) or y += xb W^T (beta 1) from activations already in
 * bf16: cublasGemmEx, fp32 accumulation and output. Column-major view:
 * y^T [out, n] = (W as col-major [in, out])^T (xb as col-major [in, n]). */
static void gemm_bf16(cuda_impl *c, const uint16_t *xb, const qtts_tensor *w, float *y, int n, float beta, const char *op) {
    int out = (int)w->shape[0], in = (int)w->shape[1];
    const float one = 1.0f;
    rec_blas(c,
             cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w->data, CUDA_R_16BF, in, xb, CUDA_R_16BF, in, &beta, y,
                          CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             op);
}

/* x [n, in] as gemm_bf16's input, in the workspace: RMS-normalised and
 * scaled by norm on the way when norm is given, else rounded as it is (one
 * launch either way). With extra, *extra receives extra_floats more floats
 * after it (256-byte aligned). NULL: failure recorded. */
static uint16_t *bf16_input(cuda_impl *c, const float *x, const qtts_tensor *norm, float eps, int n, int in, size_t extra_floats,
                            float **extra, const char *op) {
    size_t xb_bytes = ((size_t)n * in * sizeof(uint16_t) + 255) / 256 * 256;
    char *ws = workspace(c, xb_bytes + extra_floats * sizeof(float), op);
    if (!ws) return NULL;
    uint16_t *xb = (uint16_t *)ws;
    if (norm) rec(c, qtts_k_rmsnorm_bf16(x, vec(norm), eps, xb, n, in, c->ks), op);
    else rec(c, qtts_k_f32_to_bf16(x, xb, (int64_t)n * in, c->ks), op);
    if (extra) *extra = (float *)(ws + xb_bytes);
    return xb;
}

static void cu_matmul(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int n) {
    OP("matmul");
    int out = (int)w->shape[0], in = (int)w->shape[1];
    if (!want_bf16(c, w, op_) || !want_f32(c, bias, op_) || n <= 0) {
        range_pop(c);
        return;
    }
    if (n <= QTTS_GEMV_MAX_N) {
        rec(c, qtts_k_gemv(x, w->data, vec(bias), y, n, out, in, c->ks), op_);
    } else {
        uint16_t *xb = bf16_input(c, x, NULL, 0.0f, n, in, 0, NULL, op_);
        if (xb) gemm_bf16(c, xb, w, y, n, 0.0f, op_);
        if (xb && bias) rec(c, qtts_k_add_bias(y, vec(bias), n, out, c->ks), op_);
    }
    range_pop(c);
}

/* The fused projections (backend.h). Up to QTTS_GEMV_MAX_N tokens: one
 * fused GEMV launch each (kernels/gemv.cu). Above: the RMSNorm writes the
 * bf16 GEMM input directly (one launch for q, k and v together), the
 * residual add is cuBLAS's beta = 1, SwiGLU a kernel after the GEMM. */
static qtts_k_gemv_job gemv_job(const float *x, const qtts_tensor *norm, float eps, int mode, const qtts_tensor *w, float *y, int out) {
    qtts_k_gemv_job j;
    memset(&j, 0, sizeof j);
    j.x = x;
    j.norm = vec(norm);
    j.eps = eps;
    j.mode = mode;
    j.nw = 1;
    j.w[0] = w->data;
    j.y[0] = y;
    j.out[0] = out;
    return j;
}

static bool want_norm(cuda_impl *c, const qtts_tensor *norm, const char *op) {
    if (!norm) fail_msg(c, op, "norm weight is NULL");
    return norm && want_f32(c, norm, op);
}

static void cu_norm_matmul(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, int nw, const qtts_tensor *const *w,
                           float *const *y, int n) {
    OP("norm_matmul");
    bool ok = want_norm(c, norm, op_) && n > 0;
    if (nw < 1 || nw > QTTS_NORM_MATMUL_MAX) {
        fail_msg(c, op_, "weight count outside 1..QTTS_NORM_MATMUL_MAX");
        ok = false;
    }
    for (int k = 0; ok && k < nw; k++) ok = want_bf16(c, w[k], op_) && w[k]->shape[1] == w[0]->shape[1];
    int in = ok ? (int)w[0]->shape[1] : 0;
    if (ok && n <= QTTS_GEMV_MAX_N) {
        qtts_k_gemv_job j = gemv_job(x, norm, eps, QTTS_GEMV_SET, w[0], y[0], (int)w[0]->shape[0]);
        j.nw = nw;
        for (int k = 1; k < nw; k++) {
            j.w[k] = w[k]->data;
            j.y[k] = y[k];
            j.out[k] = (int)w[k]->shape[0];
        }
        rec(c, qtts_k_gemv_fused(&j, n, in, c->ks), op_);
    } else if (ok) {
        uint16_t *xb = bf16_input(c, x, norm, eps, n, in, 0, NULL, op_);
        for (int k = 0; xb && k < nw; k++) gemm_bf16(c, xb, w[k], y[k], n, 0.0f, op_);
    }
    range_pop(c);
}

static void cu_norm_swiglu(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, const qtts_tensor *w, float *y, int n) {
    OP("norm_swiglu");
    if (want_norm(c, norm, op_) && want_bf16(c, w, op_) && n > 0) {
        int in = (int)w->shape[1], inter = (int)(w->shape[0] / 2);
        if (n <= QTTS_GEMV_MAX_N) {
            qtts_k_gemv_job j = gemv_job(x, norm, eps, QTTS_GEMV_SWIGLU, w, y, inter);
            rec(c, qtts_k_gemv_fused(&j, n, in, c->ks), op_);
        } else {
            float *gu = NULL;
            uint16_t *xb = bf16_input(c, x, norm, eps, n, in, (size_t)n * 2 * inter, &gu, op_);
            if (xb) {
                gemm_bf16(c, xb, w, gu, n, 0.0f, op_);
                rec(c, qtts_k_swiglu(gu, y, n, inter, c->ks), op_);
            }
        }
    }
    range_pop(c);
}

static void cu_matmul_add(qtts_backend *be, const float *x, const qtts_tensor *w, float *y, int n) {
    OP("matmul_add");
    if (want_bf16(c, w, op_) && n > 0) {
        int in = (int)w->shape[1];
        if (n <= QTTS_GEMV_MAX_N) {
            qtts_k_gemv_job j = gemv_job(x, NULL, 0.0f, QTTS_GEMV_ADD, w, y, (int)w->shape[0]);
            rec(c, qtts_k_gemv_fused(&j, n, in, c->ks), op_);
        } else {
            uint16_t *xb = bf16_input(c, x, NULL, 0.0f, n, in, 0, NULL, op_);
            if (xb) gemm_bf16(c, xb, w, y, n, 1.0f, op_);
        }
    }
    range_pop(c);
}

static void cu_rmsnorm(qtts_backend *be, const float *x, const qtts_tensor *w, float eps, float *y, int n, int dim) {
    OP("rmsnorm");
    if (want_f32(c, w, op_)) rec(c, qtts_k_rmsnorm(x, vec(w), eps, y, n, dim, c->ks), op_);
    range_pop(c);
}

static void cu_add(qtts_backend *be, const float *a, const float *b, float *y, int64_t len) {
    OP("add");
    DONE(qtts_k_add(a, b, y, len, c->ks));
}

static void cu_swiglu(qtts_backend *be, const float *gu, float *y, int n, int inter) {
    OP("swiglu");
    DONE(qtts_k_swiglu(gu, y, n, inter, c->ks));
}

static void cu_silu(qtts_backend *be, float *x, int64_t len) {
    OP("silu");
    DONE(qtts_k_silu(x, len, c->ks));
}

static void cu_qk_norm_rope(qtts_backend *be, float *q, float *k, const qtts_tensor *qn, const qtts_tensor *kn, float eps,
                            const qtts_batch *b, int n_heads, int n_kv, int hd, float theta) {
    OP("qk_norm_rope");
    if (want_f32(c, qn, op_) && want_f32(c, kn, op_))
        rec(c, qtts_k_qk_norm_rope(q, k, vec(qn), vec(kn), eps, b->pos, b->n, n_heads, n_kv, hd, theta, c->ks), op_);
    range_pop(c);
}

static qtts_k_kv kv_view(const qtts_kv_cache *c) {
    qtts_k_kv v = {c->k, c->v, c->n_layers, c->n_slots, c->max_len, c->n_kv_heads, c->head_dim};
    return v;
}

static void cu_kv_store(qtts_backend *be, qtts_kv_cache *kv, int layer, const float *k, const float *v, const qtts_batch *b) {
    OP("kv_store");
    DONE(qtts_k_kv_store(kv_view(kv), layer, k, v, b->slot, b->pos, b->n, c->ks));
}

static void cu_qk_norm_rope_store(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                  float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *kv, int layer) {
    OP("qk_norm_rope_store");
    if (want_f32(c, qn, op_) && want_f32(c, kn, op_))
        rec(c,
            qtts_k_qk_norm_rope_store(q, k, v, vec(qn), vec(kn), eps, b->slot, b->pos, b->n, n_heads, n_kv, hd, theta, kv_view(kv), layer,
                                      c->ks),
            op_);
    range_pop(c);
}

/* The longest context a batch's ops must cover: its ctx_bound (always set
 * in a graph, where the host mirror would be read once, at capture), else
 * the longest in the host mirror of pos, else the whole cache. */
static int context_bound(const qtts_batch *b, const qtts_kv_cache *kv) {
    if (b->ctx_bound > 0) return b->ctx_bound;
    if (!b->h_pos) return kv->max_len;
    int longest = 0;
    for (int i = 0; i < b->n; i++) longest = b->h_pos[i] + 1 > longest ? b->h_pos[i] + 1 : longest;
    return longest;
}

/* Positions per split for n tokens of n_heads heads over contexts up to
 * `longest`: short splits while the grid stays small (one decode token's
 * 16 heads over 300 positions: 80 blocks, not 16 walking 300 positions
 * each), longer ones once tokens x heads x splits would pass
 * QTTS_ATTN_MAX_BLOCKS (more splits would only add partials to combine). */
static int attn_chunk(int n, int n_heads, int longest) {
    int chunk = QTTS_ATTN_SPLIT_MIN;
    while (chunk < QTTS_ATTN_SPLIT_MAX && (int64_t)n * n_heads * ((longest + chunk - 1) / chunk) > QTTS_ATTN_MAX_BLOCKS) chunk *= 2;
    return chunk;
}

static void cu_attention(qtts_backend *be, const float *q, const qtts_kv_cache *kv, int layer, const qtts_batch *b, int n_heads,
                         float scale, int window, float *out) {
    OP("attention");
    /* splits from the context bound; splits past a token's own context cost an empty partial */
    int longest = context_bound(b, kv);
    if (window > 0 && window < longest) longest = window;
    if (longest < 1) longest = 1;
    int chunk = attn_chunk(b->n, n_heads, longest), ns = (longest + chunk - 1) / chunk;
    int64_t wsn = qtts_k_attention_ws(b->n, n_heads, kv->head_dim, ns);
    float *ws = wsn ? workspace(c, (size_t)wsn * sizeof(float), op_) : NULL;
    if (!wsn || ws)
        rec(c, qtts_k_attention(q, kv_view(kv), layer, b->slot, b->pos, b->n, n_heads, scale, window, chunk, ns, ws, out, c->ks), op_);
    range_pop(c);
}

/* One launch where every context is under QTTS_ROPE_ATTEND_CTX (the code
 * predictor's passes); the two kernels otherwise (the talker: its context
 * bound is at least 256, and the split attention spreads a long context
 * over many blocks where the one launch has a block per kv head walk it). */
static void cu_qk_norm_rope_attend(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                   float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *kv, int layer,
                                   float scale, float *out) {
    if (!b->one_per_slot || context_bound(b, kv) > QTTS_ROPE_ATTEND_CTX ||
        qtts_k_rope_attend_smem(n_heads, n_kv, hd) > QTTS_ROPE_ATTEND_SMEM_MAX) {
        cu_qk_norm_rope_store(be, q, k, v, qn, kn, eps, b, n_heads, n_kv, hd, theta, kv, layer);
        cu_attention(be, q, kv, layer, b, n_heads, scale, 0, out);
        return;
    }
    OP("qk_norm_rope_attend");
    if (want_f32(c, qn, op_) && want_f32(c, kn, op_))
        rec(c,
            qtts_k_rope_attend(q, k, v, vec(qn), vec(kn), eps, b->slot, b->pos, b->n, n_heads, theta, kv_view(kv), layer, scale, out,
                               c->ks),
            op_);
    range_pop(c);
}

/* Rows are already in device memory: qtts_sample_row and the kernels'
 * qtts_k_sample_row are the same bytes (checked below). */
_Static_assert(sizeof(qtts_sample_row) == sizeof(qtts_k_sample_row) &&
                   offsetof(qtts_sample_row, temperature) == offsetof(qtts_k_sample_row, temperature) &&
                   offsetof(qtts_sample_row, top_k) == offsetof(qtts_k_sample_row, top_k) &&
                   offsetof(qtts_sample_row, ban_id) == offsetof(qtts_k_sample_row, ban_id),
               "qtts_sample_row and qtts_k_sample_row must have one layout");
static void cu_sample(qtts_backend *be, float *logits, int n, int V, const qtts_sample_row *rows, uint8_t *seen, int32_t *tokens) {
    OP("sample");
    DONE(qtts_k_sample(logits, n, V, (const qtts_k_sample_row *)rows, seen, tokens, c->ks));
}

static void cu_gather_rows(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst) {
    OP("gather_rows");
    DONE(qtts_k_move_rows(src, idx, n, dim, 0, dst, c->ks));
}

static void cu_scatter_rows(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst) {
    OP("scatter_rows");
    DONE(qtts_k_move_rows(src, idx, n, dim, 1, dst, c->ks));
}

/* The whole predictor frame as one persistent kernel (backend.h:
 * predict_frame; kernels/predictor.cu): taken with cuda_persistent set
 * for up to QTTS_K_PRED_MAX_NB rows with bf16 matrices and f32 vectors;
 * otherwise false, and the caller runs the op sequence. The kernel's grid
 * comes from device queries, made once per shape outside any capture. */
static bool cu_predict_frame(qtts_backend *be, const qtts_predictor_weights *w, const qtts_predictor_frame *f) {
    cuda_impl *c = impl_of(be);
    if (!c->persistent || f->nb > QTTS_K_PRED_MAX_NB || w->n_layers > QTTS_K_PRED_MAX_LAYERS || w->n_groups > QTTS_K_EMBED_SUM_MAX)
        return false;
    qtts_k_predictor p;
    memset(&p, 0, sizeof p);
    bool ok = f32_vec(w->norm) && bf16_mat(w->c0_embed) && (!w->mtp_w || (bf16_mat(w->mtp_w) && f32_vec(w->mtp_b)));
    for (int l = 0; ok && l < w->n_layers; l++) {
        const qtts_lm_layer *L = &w->layers[l];
        ok = f32_vec(&L->in_norm) && f32_vec(&L->q_norm) && f32_vec(&L->k_norm) && f32_vec(&L->post_norm) && bf16_mat(&L->wq) &&
             bf16_mat(&L->wk) && bf16_mat(&L->wv) && bf16_mat(&L->wo) && bf16_mat(&L->w_gate_up) && bf16_mat(&L->w_down);
        p.layer[l] = (qtts_k_pred_layer){vec(&L->in_norm), vec(&L->q_norm), vec(&L->k_norm), vec(&L->post_norm), L->wq.data, L->wk.data,
                                         L->wv.data, L->wo.data, L->w_gate_up.data, L->w_down.data};
    }
    for (int k = 0; ok && k < w->n_groups - 1; k++) {
        ok = bf16_mat(&w->embed[k]) && bf16_mat(&w->head[k]) && w->embed[k].shape[0] == w->embed[0].shape[0];
        p.embed[k] = w->embed[k].data;
        p.head[k] = w->head[k].data;
    }
    if (!ok) return false;
    p.n_layers = w->n_layers, p.hidden = w->hidden, p.n_heads = w->n_heads, p.n_kv = w->n_kv, p.head_dim = w->head_dim;
    p.inter = w->inter, p.in_hidden = w->in_hidden, p.vocab = w->vocab, p.n_groups = w->n_groups;
    p.c0_rows = w->c0_embed->shape[0], p.embed_rows = w->embed[0].shape[0];
    p.eps = w->eps, p.theta = w->theta, p.scale = 1.0f / sqrtf((float)w->head_dim);
    p.norm = vec(w->norm), p.mtp_w = w->mtp_w ? w->mtp_w->data : NULL, p.mtp_b = vec(w->mtp_b), p.c0_embed = w->c0_embed->data;
    p.nb = f->nb, p.past_hidden = f->past_hidden, p.act = f->act, p.tok = f->tok, p.tok_stride = f->tok_stride;
    p.rows = (const qtts_k_sample_row *)f->rows;
    p.logits = f->rec_logits ? f->rec_logits : f->logits;
    p.logits_stride = f->rec_logits ? (int64_t)f->nb * w->vocab : 0;
    p.kv = kv_view(f->kv);
    p.pe = f->pe, p.px = f->px, p.q = f->q, p.k = f->k, p.v = f->v, p.att = f->att, p.mlp = f->mlp;
    p.barrier = c->pred_bar;
    struct pred_grid key = {f->nb, w->vocab, w->n_heads / (w->n_kv > 0 ? w->n_kv : 1), w->head_dim, w->n_groups, 0}, *pg = NULL;
    for (int i = 0; i < c->n_pred_grids; i++)
        if (!memcmp(&c->pred_grids[i], &key, offsetof(struct pred_grid, grid))) pg = &c->pred_grids[i];
    if (!pg) {
        if (c->capturing || c->n_pred_grids == (int)(sizeof c->pred_grids / sizeof c->pred_grids[0])) return false;
        pg = &c->pred_grids[c->n_pred_grids++];
        *pg = key;
        pg->grid = qtts_k_predict_frame_grid(&p);
    }
    if (pg->grid < 1) return false;
    range_push(c, "predict_frame");
    rec(c, qtts_k_predict_frame(&p, pg->grid, c->ks), "predict_frame");
    range_pop(c);
    return true;
}

/* ---------------- graphs ---------------- */

static struct cu_graph *find_graph(cuda_impl *c, uint64_t key) {
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].key == key) return &c->graphs[i];
    return NULL;
}

static bool cu_graph_begin(qtts_backend *be, uint64_t key) {
    cuda_impl *c = impl_of(be);
    if (c->graphs_off || c->failed || c->capturing) return false;
    struct cu_graph *g = find_graph(c, key);
    if (g && g->exec) {
        rec(c, cudaGraphLaunch(g->exec, c->stream), "graph launch");
        return true;
    }
    if (!g) { /* first sight: run plainly, so that every buffer reaches its size */
        if (c->n_graphs == c->cap_graphs) {
            int cap = c->cap_graphs ? 2 * c->cap_graphs : 16;
            struct cu_graph *ng = realloc(c->graphs, (size_t)cap * sizeof *ng);
            if (!ng) return false;
            c->graphs = ng;
            c->cap_graphs = cap;
        }
        c->graphs[c->n_graphs++] = (struct cu_graph){key, NULL};
        return false;
    }
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        c->graphs_off = true; /* run plainly from now on */
        return false;
    }
    c->capturing = true;
    return false;
}

static void cu_graph_reset(qtts_backend *be) {
    cuda_impl *c = impl_of(be);
    /* a launched graph may still be running: its memory must outlive it */
    rec(c, cudaStreamSynchronize(c->stream), "graph reset");
    drop_graphs(c);
}

/* End a capture: instantiate and launch it (captured ops did not run). */
static void cu_graph_end(qtts_backend *be, uint64_t key) {
    cuda_impl *c = impl_of(be);
    if (!c->capturing) return;
    c->capturing = false;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    struct cu_graph *g = find_graph(c, key);
    if (e == cudaSuccess && g) {
        g->exec = exec;
        e = cudaGraphLaunch(exec, c->stream);
    }
    if (e != cudaSuccess) {
        char m[256];
        snprintf(m, sizeof m, "CUDA graph capture of op sequence %llu: %s (--cuda-graphs off runs without graphs)",
                 (unsigned long long)key, cudaGetErrorString(e));
        cudaGetLastError();
        fail_msg(c, "graph", m);
    }
}

static void cu_scale_rows(qtts_backend *be, const float *x, const qtts_tensor *s, float *y, int n, int dim) {
    OP("scale_rows");
    if (want_f32(c, s, op_)) rec(c, qtts_k_scale_rows(x, vec(s), y, n, dim, c->ks), op_);
    range_pop(c);
}

/* ---------------- codec decoder ops ---------------- */

/* The codec convolutions as fp32 GEMMs (kernels/conv.cu explains the
 * lowering): C [m, n] column-major = op(A) op(B), fp32 in, fp32 compute, so
 * the results differ from the direct kernels and the CPU only in summation
 * order. Temporary matrices (the weights widened to fp32, one tile of
 * im2col or of z) live in the workspace, tiles bounded by CONV_TILE_BYTES. */
#define CONV_TILE_BYTES ((size_t)128 << 20) /* qtts_backend_params.cuda_conv_tile overrides (tests force many tiles) */

static void sgemm(cuda_impl *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *A, int lda, const float *B,
                  int ldb, float *C, int ldc, const char *op) {
    const float one = 1.0f, zero = 0.0f;
    rec_blas(c,
             cublasGemmEx(c->blas, ta, tb, m, n, k, &one, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &zero, C, CUDA_R_32F, ldc,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             op);
}

static void cu_conv1d(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B, int cin, int cout,
                      int T, int dilation, int groups) {
    OP("conv1d");
    int K = (int)w->shape[2];
    if (!want_bf16(c, w, op_) || !want_f32(c, bias, op_) || B <= 0 || T <= 0) {
        range_pop(c);
        return;
    }
    int64_t ck = (int64_t)cin * K;
    if (groups != 1 || ck < QTTS_CONV_GEMM_MIN_CK) {
        rec(c, qtts_k_conv1d(x, w->data, vec(bias), y, B, cin, cout, T, K, dilation, groups, c->ks), op_);
        range_pop(c);
        return;
    }
    size_t wbytes = (size_t)cout * ck * sizeof(float);
    int tile = K == 1 ? 0 : (int)(c->conv_tile / ((size_t)ck * sizeof(float)));
    if (tile > T) tile = T;
    if (K > 1 && tile < 1) tile = 1;
    float *wf = workspace(c, wbytes + (size_t)tile * ck * sizeof(float), op_);
    if (wf) {
        float *col = wf + (size_t)cout * ck;
        rec(c, qtts_k_bf16_to_f32(w->data, wf, (int64_t)cout * ck, c->ks), op_);
        for (int b = 0; b < B; b++) {
            const float *xb = x + (size_t)b * cin * T;
            float *yb = y + (size_t)b * cout * T;
            if (K == 1) { /* y_b^T [T, cout] = x_b^T [T, cin] W^T [cin, cout] */
                sgemm(c, CUBLAS_OP_N, CUBLAS_OP_N, T, cout, cin, xb, T, wf, cin, yb, T, op_);
                continue;
            }
            for (int t0 = 0; t0 < T; t0 += tile) {
                int nt = T - t0 < tile ? T - t0 : tile;
                rec(c, qtts_k_im2col(xb, col, cin, T, K, dilation, t0, nt, c->ks), op_);
                /* y_b^T[t0.., cout] = col [nt, ck] W^T [ck, cout] */
                sgemm(c, CUBLAS_OP_T, CUBLAS_OP_N, nt, cout, (int)ck, col, (int)ck, wf, (int)ck, yb + t0, T, op_);
            }
        }
        if (bias) rec(c, qtts_k_channel_bias(y, vec(bias), B, cout, T, 0, c->ks), op_);
    }
    range_pop(c);
}

static void cu_conv_transpose1d(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B,
                                int cin, int cout, int T, int stride) {
    OP("conv_transpose1d");
    int K = (int)w->shape[2];
    if (!want_bf16(c, w, op_) || !want_f32(c, bias, op_) || B <= 0 || T <= 0) {
        range_pop(c);
        return;
    }
    int64_t ckz = (int64_t)cout * K;
    int tile = (int)(c->conv_tile / ((size_t)ckz * sizeof(float)));
    if (tile > T) tile = T;
    if (tile < 1) tile = 1;
    float *wf = workspace(c, ((size_t)cin * ckz + (size_t)tile * ckz) * sizeof(float), op_);
    if (wf) {
        float *z = wf + (size_t)cin * ckz;
        int64_t To = (int64_t)T * stride;
        rec(c, qtts_k_bf16_to_f32(w->data, wf, (int64_t)cin * ckz, c->ks), op_);
        rec(c, qtts_k_channel_bias(y, vec(bias), B, cout, To, 1, c->ks), op_);
        for (int b = 0; b < B; b++) {
            const float *xb = x + (size_t)b * cin * T;
            float *yb = y + (size_t)b * cout * To;
            for (int t0 = 0; t0 < T; t0 += tile) {
                int nt = T - t0 < tile ? T - t0 : tile;
                /* z^T [ckz, nt] = W^T [ckz, cin] x_b[:, t0..] [cin, nt] */
                sgemm(c, CUBLAS_OP_N, CUBLAS_OP_T, (int)ckz, nt, cin, wf, (int)ckz, xb + t0, T, z, (int)ckz, op_);
                rec(c, qtts_k_col2im_t(z, yb, cout, T, K, stride, t0, nt, c->ks), op_);
            }
        }
    }
    range_pop(c);
}

static void cu_snake(qtts_backend *be, const float *x, const qtts_tensor *alpha, const qtts_tensor *beta, float *y, int B, int C, int T) {
    OP("snake");
    if (want_f32(c, alpha, op_) && want_f32(c, beta, op_)) rec(c, qtts_k_snake(x, vec(alpha), vec(beta), y, B, C, T, c->ks), op_);
    range_pop(c);
}

static void cu_transpose(qtts_backend *be, const float *x, float *y, int B, int R, int S) {
    OP("transpose");
    DONE(qtts_k_transpose(x, y, B, R, S, c->ks));
}

static void cu_layernorm(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *b, float eps, float *y, int n,
                         int dim) {
    OP("layernorm");
    if (want_f32(c, w, op_) && want_f32(c, b, op_)) rec(c, qtts_k_layernorm(x, vec(w), vec(b), eps, y, n, dim, c->ks), op_);
    range_pop(c);
}

static void cu_gelu(qtts_backend *be, float *x, int64_t len) {
    OP("gelu");
    DONE(qtts_k_gelu(x, len, c->ks));
}

static void cu_clamp(qtts_backend *be, float *x, int64_t len, float lo, float hi) {
    OP("clamp");
    DONE(qtts_k_clamp(x, len, lo, hi, c->ks));
}

static void cu_destroy(qtts_backend *be) {
    cuda_impl *c = impl_of(be);
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    drop_graphs(c);
    free(c->graphs);
    if (c->ws) cudaFree(c->ws);
    if (c->blas_ws) cudaFree(c->blas_ws);
    if (c->pred_bar) cudaFree(c->pred_bar);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->nvtx) nvtxDomainDestroy(c->nvtx);
    free(c);
    be->impl = NULL;
}

static void cu_bind_thread(qtts_backend *be) { rec(impl_of(be), cudaSetDevice(impl_of(be)->device), "bind_thread"); }
static void cu_range_push(qtts_backend *be, const char *name) { range_push(be->impl, name); }
static size_t cu_peak_bytes(qtts_backend *be) { return impl_of(be)->peak; }
static void cu_range_pop(qtts_backend *be) { range_pop(be->impl); }

static const qtts_ops cuda_ops = {
    .name = "cuda",
    .device = true,
    .alloc = cu_alloc,
    .free = cu_free,
    .to_device = cu_to_device,
    .to_host = cu_to_host,
    .copy = cu_copy,
    .sync = cu_sync,
    .upload = cu_upload,
    .storage_bytes = cu_storage_bytes,
    .upload_at = cu_upload_at,
    .release = cu_release,
    .embed = cu_embed,
    .embed_sum = cu_embed_sum,
    .norm_matmul = cu_norm_matmul,
    .norm_swiglu = cu_norm_swiglu,
    .matmul_add = cu_matmul_add,
    .qk_norm_rope_store = cu_qk_norm_rope_store,
    .qk_norm_rope_attend = cu_qk_norm_rope_attend,
    .matmul = cu_matmul,
    .rmsnorm = cu_rmsnorm,
    .add = cu_add,
    .swiglu = cu_swiglu,
    .silu = cu_silu,
    .qk_norm_rope = cu_qk_norm_rope,
    .kv_store = cu_kv_store,
    .attention = cu_attention,
    .scale_rows = cu_scale_rows,
    .sample = cu_sample,
    .gather_rows = cu_gather_rows,
    .scatter_rows = cu_scatter_rows,
    .predict_frame = cu_predict_frame,
    .conv1d = cu_conv1d,
    .conv_transpose1d = cu_conv_transpose1d,
    .snake = cu_snake,
    .transpose = cu_transpose,
    .layernorm = cu_layernorm,
    .gelu = cu_gelu,
    .clamp = cu_clamp,
    .destroy = cu_destroy,
    .range_push = cu_range_push,
    .range_pop = cu_range_pop,
    .peak_bytes = cu_peak_bytes,
    .graph_begin = cu_graph_begin,
    .graph_end = cu_graph_end,
    .graph_reset = cu_graph_reset,
    .check = qtts_backend_cuda_check,
    .bind_thread = cu_bind_thread,
};

const qtts_ops *qtts_backend_cuda_ops(void) { return &cuda_ops; }

qtts_status qtts_backend_cuda_init(qtts_backend *be, const qtts_backend_params *p, qtts_err *err) {
    qtts_status st = QTTS_OK;
    qtts_backend_params bp = p ? *p : qtts_backend_default_params();
    int device = bp.device;
    be->ops = NULL;
    be->impl = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return qtts_fail(err, QTTS_ERR_DEVICE, "no CUDA device: cudaGetDeviceCount returned %d (%s), count %d", (int)e,
                         e != cudaSuccess ? cudaGetErrorString(e) : "no devices", count);
    }
    if (device < 0 || device >= count)
        return qtts_fail(err, QTTS_ERR_DEVICE, "CUDA device %d does not exist (%d present)", device, count);
    cuda_impl *c = qtts_calloc(1, sizeof *c, err, "CUDA backend");
    if (!c) return QTTS_ERR_OOM;
    be->ops = &cuda_ops;
    be->impl = c;
    c->device = device;
#define CU_TRY(call)                                                                                                   \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            st = qtts_fail(err, QTTS_ERR_DEVICE, "CUDA device %d: %s: %s", device, #call, cudaGetErrorString(e_));      \
            goto cleanup;                                                                                              \
        }                                                                                                              \
    } while (0)
    CU_TRY(cudaSetDevice(device));
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
#undef CU_TRY
    /* programmatic dependent launch (kernels/common.cuh) for every kernel on our stream */
    c->ks = (qtts_k_stream){.stream = c->stream, .pdl = bp.cuda_pdl};
    cublasStatus_t bs = cublasCreate(&c->blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(c->blas, c->stream);
    QTTS_CHECK(bs == CUBLAS_STATUS_SUCCESS, err, QTTS_ERR_DEVICE, "CUDA device %d: cuBLAS: %s", device, cublasGetStatusString(bs));
    {
        /* a fixed cuBLAS workspace: cuBLAS then never allocates inside a graph capture */
        const size_t blas_ws = (size_t)32 << 20;
        e = cudaMalloc(&c->blas_ws, blas_ws);
        QTTS_CHECK(e == cudaSuccess, err, QTTS_ERR_DEVICE, "CUDA device %d: cuBLAS workspace: %s", device, cudaGetErrorString(e));
        bs = cublasSetWorkspace(c->blas, c->blas_ws, blas_ws);
        QTTS_CHECK(bs == CUBLAS_STATUS_SUCCESS, err, QTTS_ERR_DEVICE, "CUDA device %d: cuBLAS workspace: %s", device,
                   cublasGetStatusString(bs));
    }
    /* Scratch reserved up front: the codec convolutions' GEMM lowering needs
     * up to ~200 MB (fp32 weights + one tile), and growing it later costs a
     * wait, an allocation and every recorded graph (it was the first-audio
     * latency of the first GPU runs). */
    if (!workspace(c, (size_t)256 << 20, "workspace")) {
        st = qtts_fail(err, QTTS_ERR_OOM, "CUDA device %d: 256 MB of scratch: %s", device, c->what);
        goto cleanup;
    }
    c->graphs_off = !bp.cuda_graphs;
    if (c->graphs_off) {
        /* without graph ops the generator runs each step at its exact row
         * count, not padded to a replay bucket (generate.c: step_rows) */
        c->ops_plain = cuda_ops;
        c->ops_plain.graph_begin = NULL;
        c->ops_plain.graph_end = NULL;
        c->ops_plain.graph_reset = NULL;
        be->ops = &c->ops_plain;
    }
    if (bp.cuda_persistent) {
        e = cudaMalloc((void **)&c->pred_bar, sizeof(unsigned));
        if (e == cudaSuccess) e = cudaMemsetAsync(c->pred_bar, 0, sizeof(unsigned), c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        QTTS_CHECK(e == cudaSuccess, err, QTTS_ERR_DEVICE, "CUDA device %d: persistent predictor barrier: %s", device, cudaGetErrorString(e));
        c->persistent = true;
    }
    c->nvtx = nvtxDomainCreateA("qtts");
    c->conv_tile = bp.cuda_conv_tile ? bp.cuda_conv_tile : CONV_TILE_BYTES;
    note_memory(c);
    return QTTS_OK;
cleanup:
    cudaGetLastError();
    qtts_backend_free(be);
    return st;
}

int qtts_backend_cuda_device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
}

void qtts_backend_cuda_describe(char *buf, size_t n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        snprintf(buf, n, "no usable GPU: %s", e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA devices");
        return;
    }
    size_t o = 0;
    buf[0] = 0;
    for (int d = 0; d < count && o < n; d++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
            cudaGetLastError();
            o += (size_t)snprintf(buf + o, n - o, "%sGPU %d: properties unavailable", d ? "\n" : "", d);
            continue;
        }
        o += (size_t)snprintf(buf + o, n - o, "%sGPU %d: %s, sm_%d%d, %.1f GiB, %d SMs", d ? "\n" : "", d, p.name, p.major, p.minor,
                              (double)p.totalGlobalMem / (1 << 30), p.multiProcessorCount);
    }
}

qtts_status qtts_backend_cuda_check(qtts_backend *be, qtts_err *err) {
    cuda_impl *c = impl_of(be);
    if (!c) return qtts_fail(err, QTTS_ERR_INTERNAL, "qtts_backend_cuda_check: not a CUDA backend");
    rec(c, cudaStreamSynchronize(c->stream), "sync");
    if (c->failed) return qtts_fail(err, QTTS_ERR_DEVICE, "CUDA backend: %s", c->what);
    return QTTS_OK;
}

#endif /* QTTS_HAVE_CUDA */
