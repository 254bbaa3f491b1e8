/* Matrix-vector products for decode, with the ops around a projection fused
 * in: for n <= QTTS_GEMV_MAX_N tokens, W bf16 row-major, x, y, bias fp32,
 *
 *   SET     y[t][r] = x[t] . W[r] (+ bias[r])
 *   ADD     y[t][r] += x[t] . W[r]                 (the residual add after o/down)
 *   SWIGLU  y[t][r] = silu(x[t] . W[r]) * (x[t] . W[I + r]),  W [2I][in]
 *
 * where x[t] is first RMS-normalised and scaled by `norm` when a norm is
 * given (the RMSNorm before q/k/v and before the MLP), and up to
 * QTTS_GEMV_MAX_W weights sharing x run in one launch (q, k and v), their
 * rows numbered one after the other.
 *
 * Why this exists beside cuBLAS: at decode a step has a handful of tokens,
 * the product is bound by reading W once, and each of a layer's ~10 small
 * launches costs microseconds of its own (the code predictor runs 15 x 5
 * layers per frame). Here a layer is 6 launches, and x stays fp32 (cuBLAS's
 * bf16 GEMM needs the activations rounded to bf16), so this path is exact up
 * to fp32 summation order.
 *
 * Geometry: one warp per output row (two rows, gate and up, for SWIGLU),
 * 8 warps (256 threads) per block, grid ceil(rows/8). The warp reads its W
 * row once and applies it to all n tokens (n is a template parameter so the
 * accumulators stay in registers). Vector path when in % 8 == 0 and x, W and
 * norm are 16-byte aligned: each lane loads 8 bf16 (one 16-byte load) and the
 * matching 2 float4 of each x row; otherwise a scalar path with lanes
 * striding the row. Lane partials meet in a warp shuffle sum.
 *
 * The norm: every block first computes each token's 1/rms over x (a block
 * reduction; x is a few KB and stays in L1/L2), then the warps take
 * sum_k W[r][k] * norm[k] * x[k] and scale it by 1/rms. That reads x once
 * more per block instead of launching a norm kernel and writing a normalised
 * copy. The CPU twin normalises first (src/backend_cpu.c); the two differ by
 * fp32 rounding (tests/test_cuda_ops.c: test_fused). */
#include "common.cuh"

#define GEMV_WARPS 8

/* acc[t] = sum_k w[k] * (norm ? norm[k] : 1) * x[t][k], this lane's share. */
template <int NT, bool NORM>
static __device__ __forceinline__ void dot_row(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *__restrict__ g,
                                               int in, int vec, int lane, float *acc) {
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if (vec) {
        int nv = in / 8;
        const uint4 *wv = (const uint4 *)w;
#pragma unroll 4
        for (int v = lane; v < nv; v += 32) {
            uint4 q = wv[v];
            float wf[8] = {__uint_as_float(q.x << 16), __uint_as_float(q.x & 0xffff0000u), __uint_as_float(q.y << 16),
                           __uint_as_float(q.y & 0xffff0000u), __uint_as_float(q.z << 16), __uint_as_float(q.z & 0xffff0000u),
                           __uint_as_float(q.w << 16), __uint_as_float(q.w & 0xffff0000u)};
            if (NORM) {
                const float4 *gp = (const float4 *)g + 2 * v;
                float4 ga = gp[0], gb = gp[1];
                wf[0] *= ga.x, wf[1] *= ga.y, wf[2] *= ga.z, wf[3] *= ga.w;
                wf[4] *= gb.x, wf[5] *= gb.y, wf[6] *= gb.z, wf[7] *= gb.w;
            }
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const float4 *xp = (const float4 *)(x + (int64_t)t * in) + 2 * v;
                float4 a = xp[0], b = xp[1];
                acc[t] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
            }
        }
    } else {
        for (int k = lane; k < in; k += 32) {
            float wf = bf16f(w[k]);
            if (NORM) wf *= g[k];
#pragma unroll
            for (int t = 0; t < NT; t++) acc[t] += wf * x[(int64_t)t * in + k];
        }
    }
}

template <int NT, bool NORM>
__global__ void __launch_bounds__(32 * GEMV_WARPS) k_gemv(qtts_k_gemv_job j, int in, int vec, int rows) {
    pdl_prologue();
    __shared__ float red[32];
    __shared__ float rstd[NT];
    if (NORM) { /* every thread takes part: no warp may leave before this */
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float *xt = j.x + (int64_t)t * in;
            float ss = 0.0f;
            for (int k = threadIdx.x; k < in; k += blockDim.x) ss += xt[k] * xt[k];
            ss = block_sum(ss, red);
            if (threadIdx.x == 0) rstd[t] = 1.0f / sqrtf(ss / (float)in + j.eps);
        }
        __syncthreads();
    }
    int lane = threadIdx.x & 31;
    int r = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return; /* whole warp */
    int seg = 0;           /* which weight: rows are numbered across them */
    if (r >= j.out[0]) {
        r -= j.out[0];
        seg = 1;
        if (r >= j.out[1]) {
            r -= j.out[1];
            seg = 2;
        }
    }
    const uint16_t *w = seg == 0 ? j.w[0] : seg == 1 ? j.w[1] : j.w[2];
    float *y = seg == 0 ? j.y[0] : seg == 1 ? j.y[1] : j.y[2];
    int out = seg == 0 ? j.out[0] : seg == 1 ? j.out[1] : j.out[2];
    float a[NT], u[NT] = {}; /* u: the up row, SWIGLU only */
    dot_row<NT, NORM>(w + (int64_t)r * in, j.x, j.norm, in, vec, lane, a);
    if (j.mode == QTTS_GEMV_SWIGLU) dot_row<NT, NORM>(w + (int64_t)(r + out) * in, j.x, j.norm, in, vec, lane, u);
    float b0 = j.bias ? j.bias[r] : 0.0f;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float v = warp_sum(a[t]);
        if (NORM) v *= rstd[t];
        float *yt = y + (int64_t)t * out + r;
        if (j.mode == QTTS_GEMV_SWIGLU) {
            float up = warp_sum(u[t]);
            if (NORM) up *= rstd[t];
            if (lane == 0) *yt = silu_f(v) * up;
        } else if (lane == 0) {
            *yt = j.mode == QTTS_GEMV_ADD ? *yt + v : v + b0;
        }
    }
}

template <bool NORM>
static cudaError_t launch_gemv(const qtts_k_gemv_job &j, int n, int in, int vec, int rows, cudaStream_t s) {
    dim3 grid((unsigned)((rows + GEMV_WARPS - 1) / GEMV_WARPS)), block(32 * GEMV_WARPS);
    switch (n) {
#define CASE(N) \
    case N: return launch(k_gemv<N, NORM>, grid, block, 0, s, j, in, vec, rows);
        CASE(1) CASE(2) CASE(3) CASE(4)
#undef CASE
    }
    return cudaErrorInvalidValue;
}
static_assert(QTTS_GEMV_MAX_N <= 4, "k_gemv is instantiated for 1..4 tokens");

static bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

extern "C" cudaError_t qtts_k_gemv_fused(const qtts_k_gemv_job *job, int n, int in, cudaStream_t s) {
    qtts_k_gemv_job j = *job;
    if (n <= 0) return cudaSuccess;
    if (n > QTTS_GEMV_MAX_N || j.nw < 1 || j.nw > QTTS_GEMV_MAX_W || in <= 0) return cudaErrorInvalidValue;
    if (j.mode == QTTS_GEMV_SWIGLU && j.nw != 1) return cudaErrorInvalidValue;
    if (j.bias && (j.mode != QTTS_GEMV_SET || j.nw != 1)) return cudaErrorInvalidValue;
    int rows = 0, vec = in % 8 == 0 && aligned16(j.x) && (!j.norm || aligned16(j.norm));
    for (int k = 0; k < QTTS_GEMV_MAX_W; k++) {
        if (k >= j.nw) j.out[k] = 0; /* rows past the used weights: none */
        rows += j.out[k];
        if (k < j.nw) vec = vec && aligned16(j.w[k]);
    }
    if (rows <= 0) return cudaSuccess;
    return j.norm ? launch_gemv<true>(j, n, in, vec, rows, s) : launch_gemv<false>(j, n, in, vec, rows, s);
}

extern "C" cudaError_t qtts_k_gemv(const float *x, const uint16_t *w, const float *bias, float *y, int n, int out, int in,
                                   cudaStream_t s) {
    qtts_k_gemv_job j = {};
    j.x = x;
    j.bias = bias;
    j.w[0] = w;
    j.y[0] = y;
    j.out[0] = out;
    j.nw = 1;
    j.mode = QTTS_GEMV_SET;
    return qtts_k_gemv_fused(&j, n, in, s);
}
