/* Normalisations: RMSNorm and LayerNorm over rows, and the fused per-head
 * q/k RMSNorm + NeoX RoPE of the attention block.
 *
 *   rmsnorm:   y = x / sqrt(mean(x^2) + eps) * w            x, y [n, dim], w fp32 [dim]
 *   layernorm: y = (x - mean) / sqrt(var + eps) * w + b     (two passes: mean, then variance)
 *   qk_norm_rope, per head of hd values at position pos:
 *     x = x / sqrt(mean(x^2) + eps) * w (if w), then for j < hd/2 with
 *     angle = pos * theta^(-2j/hd):  (a, b) = (x[j], x[j+hd/2]) ->
 *     (a cos - b sin, b cos + a sin).
 *
 *   rmsnorm_bf16: rmsnorm rounded to bf16 (the input of a cuBLAS GEMM: the
 *   conversion fused in). The RMSNorm before a decode GEMV is fused into
 *   the GEMV itself (gemv.cu).
 *   qk_norm_rope with a cache: the rotated k heads and the v heads are also
 *   written to the KV cache at (slot, pos) (KV append fused in; v heads get
 *   warps of their own).
 *
 * Geometry: rmsnorm and layernorm use one block of 256 threads per row, the
 * threads striding the row and meeting in a block reduction (rows are 1k-4k
 * wide, so one block per row gives enough parallelism at batch >= 16 and is
 * simple). qk_norm_rope uses one warp per (token, head), 4 warps per block,
 * q heads first then k heads; each lane owns pairs (j, j+hd/2), so the
 * in-place update never races.
 *
 * Numerics against src/backend_cpu.c: sums of squares are fp32 here (the CPU
 * sums in double); at these widths that moves the result by ~1e-7 relative.
 * The RoPE inverse frequency is computed as the CPU does, in double then
 * rounded to fp32 (the reference does inv_freq in fp32), and cos/sin of the
 * fp32 angle in fp32 with full range reduction (no fast math). pow() in
 * double per element is slow on the device; a per-(hd, theta) table is the
 * obvious later optimisation. Tested on an H100 (tests/test_cuda_ops.c). */
#include "common.cuh"

#define NORM_THREADS 256

/* y may alias x: each element is read, then (after the reduction) written,
 * by one thread. OUT is float, or uint16_t for bf16 (a cuBLAS GEMM input). */
template <typename OUT>
__global__ void k_rmsnorm(const float *x, const float *__restrict__ w, float eps, OUT *y, int dim) {
    pdl_prologue();
    __shared__ float red[32];
    const float *xi = x + (int64_t)blockIdx.x * dim;
    OUT *yi = y + (int64_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) ss += xi[j] * xi[j];
    ss = block_sum(ss, red);
    float r = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float v = xi[j] * r * w[j];
        if constexpr (sizeof(OUT) == 2) yi[j] = f2bf16(v);
        else yi[j] = v;
    }
}

__global__ void k_layernorm(const float *x, const float *__restrict__ w, const float *__restrict__ b, float eps, float *y, int dim) {
    pdl_prologue();
    __shared__ float red[32];
    const float *xi = x + (int64_t)blockIdx.x * dim;
    float *yi = y + (int64_t)blockIdx.x * dim;
    float m = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) m += xi[j];
    m = block_sum(m, red) / (float)dim;
    float v = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float d = xi[j] - m;
        v += d * d;
    }
    v = block_sum(v, red) / (float)dim;
    float r = 1.0f / sqrtf(v + eps);
    for (int j = threadIdx.x; j < dim; j += blockDim.x) yi[j] = (xi[j] - m) * r * w[j] + (b ? b[j] : 0.0f);
}

/* With store (cache.k non-NULL): warps n_heads + n_kv .. n_heads + 2 n_kv - 1
 * of a token copy its v heads into the cache, and k heads are written to the
 * cache as well as in place. */
__global__ void k_qk_norm_rope(float *q, float *k, const float *__restrict__ qn, const float *__restrict__ kn, float eps,
                               const int32_t *__restrict__ pos, int n, int n_heads, int n_kv, int hd, float theta, const float *v,
                               qtts_k_kv cache, int layer, const int32_t *__restrict__ slot) {
    pdl_prologue();
    int lane = threadIdx.x & 31;
    int64_t wid = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    bool store = cache.k != nullptr;
    int per_tok = n_heads + n_kv + (store ? n_kv : 0);
    if (wid >= (int64_t)n * per_tok) return; /* whole warp leaves together */
    int i = (int)(wid / per_tok), hh = (int)(wid % per_tok);
    float *x, *dst = nullptr;
    const float *nw;
    if (hh >= n_heads + n_kv) { /* a v head to the cache (warp-uniform branch) */
        int kh = hh - n_heads - n_kv;
        const float *src = v + ((int64_t)i * n_kv + kh) * hd;
        float *d = cache.v + kv_row(cache, layer, slot[i], pos[i]) + (int64_t)kh * hd;
        for (int j = lane; j < hd; j += 32) d[j] = src[j];
        return;
    }
    if (hh < n_heads) {
        x = q + ((int64_t)i * n_heads + hh) * hd;
        nw = qn;
    } else {
        x = k + ((int64_t)i * n_kv + (hh - n_heads)) * hd;
        nw = kn;
        if (store) dst = cache.k + kv_row(cache, layer, slot[i], pos[i]) + (int64_t)(hh - n_heads) * hd;
    }
    norm_rope_head(x, nw, eps, hd, pos[i], theta, dst);
}

extern "C" {

cudaError_t qtts_k_rmsnorm(const float *x, const float *w, float eps, float *y, int n, int dim, qtts_k_stream s) {
    if (n <= 0 || dim <= 0) return cudaSuccess;
    return launch(k_rmsnorm<float>, n, NORM_THREADS, 0, s, x, w, eps, y, dim);
}

cudaError_t qtts_k_rmsnorm_bf16(const float *x, const float *w, float eps, uint16_t *y, int n, int dim, qtts_k_stream s) {
    if (n <= 0 || dim <= 0) return cudaSuccess;
    return launch(k_rmsnorm<uint16_t>, n, NORM_THREADS, 0, s, x, w, eps, y, dim);
}

cudaError_t qtts_k_layernorm(const float *x, const float *w, const float *b, float eps, float *y, int n, int dim, qtts_k_stream s) {
    if (n <= 0 || dim <= 0) return cudaSuccess;
    return launch(k_layernorm, n, NORM_THREADS, 0, s, x, w, b, eps, y, dim);
}

cudaError_t qtts_k_qk_norm_rope(float *q, float *k, const float *qn, const float *kn, float eps, const int32_t *pos, int n, int n_heads,
                                int n_kv, int hd, float theta, qtts_k_stream s) {
    int64_t warps = (int64_t)n * (n_heads + n_kv);
    if (warps <= 0) return cudaSuccess;
    qtts_k_kv none = {};
    return launch(k_qk_norm_rope, (unsigned)((warps + 3) / 4), 128, 0, s, q, k, qn, kn, eps, pos, n, n_heads, n_kv, hd, theta, nullptr, none, 0, nullptr);
}

cudaError_t qtts_k_qk_norm_rope_store(float *q, float *k, const float *v, const float *qn, const float *kn, float eps, const int32_t *slot,
                                      const int32_t *pos, int n, int n_heads, int n_kv, int hd, float theta, qtts_k_kv cache, int layer,
                                      qtts_k_stream s) {
    int64_t warps = (int64_t)n * (n_heads + 2 * n_kv);
    if (warps <= 0) return cudaSuccess;
    if (!cache.k || !cache.v) return cudaErrorInvalidValue;
    return launch(k_qk_norm_rope, (unsigned)((warps + 3) / 4), 128, 0, s, q, k, qn, kn, eps, pos, n, n_heads, n_kv, hd, theta, v, cache, layer, slot);
}

} /* extern "C" */
