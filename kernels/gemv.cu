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
 * Geometry: one warp per output row (two rows, gate and up, for SWIGLU,
 * loaded side by side), 8 warps (256 threads) per block, grid ceil(rows/8).
 * The warp reads its W row once and applies it to all n tokens (n is a
 * template parameter so the accumulators stay in registers). Vector path when in % 8 == 0 and x, W and
 * norm are 16-byte aligned: each lane loads 8 bf16 (one 16-byte load) and the
 * matching 2 float4 of each x row; otherwise a scalar path with lanes
 * striding the row. Lane partials meet in a warp shuffle sum.
 *
 * The norm: the warps take sum_k W[r][k] * norm[k] * x[k], then every block
 * computes each token's 1/rms over x (a block reduction; x is a few KB and
 * stays in L1/L2) and the warps scale their sums by it. That reads x once
 * more per block instead of launching a norm kernel and writing a normalised
 * copy. The CPU twin normalises first (src/backend_cpu.c); the two differ by
 * fp32 rounding (tests/test_cuda_ops.c: test_fused). */
#include "gemv.cuh"

#define GEMV_WARPS 8

/* Ask L2 for output row s's weight rows (two for SWIGLU), the warp's lanes
 * taking 128-byte lines in turn. */
static __device__ __forceinline__ void prefetch_row(const qtts_k_gemv_job &j, const gemv_seg &s, int in, int lane) {
    for (int k = 0; k < (j.mode == QTTS_GEMV_SWIGLU ? 2 : 1); k++)
        l2_prefetch(s.w + (int64_t)(s.r + k * s.out) * in, (int64_t)in * 2, lane, 32);
}

/* pre (the launch has PDL): the warp asks for its weight rows before the
 * dependency wait, so that they stream from HBM while the kernel before
 * finishes (weights are never written by a kernel). The dot product comes
 * before the norm's 1/rms: the block reduction's barriers would otherwise
 * hold every weight load back by an x read and two barriers. */
template <int NT, bool NORM>
__global__ void __launch_bounds__(32 * GEMV_WARPS) k_gemv(qtts_k_gemv_job j, int in, int vec, int rows, int pre) {
    int r = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    gemv_seg sg = gemv_find(j, r < rows ? r : 0);
    if (pre && r < rows) prefetch_row(j, sg, in, lane);
    pdl_prologue();
    __shared__ float red[32];
    __shared__ float rstd[NT];
    float a[2][NT] = {}; /* a[1]: SWIGLU only */
    if (r < rows) gemv_row_dot<NT, NORM>(j, sg, in, vec, lane, a); /* whole warp */
    if (NORM) gemv_rstd<NT>(j, in, red, rstd);                     /* every thread takes part */
    if (r < rows) gemv_row_out<NT, NORM>(j, sg, rstd, lane, a);
}

template <bool NORM>
static cudaError_t launch_gemv(const qtts_k_gemv_job &j, int n, int in, int vec, int rows, qtts_k_stream s) {
    dim3 grid((unsigned)((rows + GEMV_WARPS - 1) / GEMV_WARPS)), block(32 * GEMV_WARPS);
    switch (n) {
#define CASE(N) \
    case N: return launch(k_gemv<N, NORM>, grid, block, 0, s, j, in, vec, rows, s.pdl);
        CASE(1) CASE(2) CASE(3) CASE(4)
#undef CASE
    }
    return cudaErrorInvalidValue;
}
static_assert(QTTS_GEMV_MAX_N <= 4, "k_gemv is instantiated for 1..4 tokens");

extern "C" cudaError_t qtts_k_gemv_fused(const qtts_k_gemv_job *job, int n, int in, qtts_k_stream s) {
    qtts_k_gemv_job j = *job;
    if (n <= 0) return cudaSuccess;
    if (n > QTTS_GEMV_MAX_N || j.nw < 1 || j.nw > QTTS_GEMV_MAX_W || in <= 0) return cudaErrorInvalidValue;
    if (j.mode == QTTS_GEMV_SWIGLU && j.nw != 1) return cudaErrorInvalidValue;
    if (j.bias && (j.mode != QTTS_GEMV_SET || j.nw != 1)) return cudaErrorInvalidValue;
    for (int k = j.nw; k < QTTS_GEMV_MAX_W; k++) j.out[k] = 0; /* rows past the used weights: none */
    int rows = gemv_rows(j), vec = gemv_vec(j, in);
    if (rows <= 0) return cudaSuccess;
    return j.norm ? launch_gemv<true>(j, n, in, vec, rows, s) : launch_gemv<false>(j, n, in, vec, rows, s);
}

extern "C" cudaError_t qtts_k_gemv(const float *x, const uint16_t *w, const float *bias, float *y, int n, int out, int in,
                                   qtts_k_stream s) {
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
