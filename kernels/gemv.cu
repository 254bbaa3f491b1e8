/* Matrix-vector products for decode: y[n,out] = x[n,in] W[out,in]^T (+ bias)
 * for n <= QTTS_GEMV_MAX_N tokens, W bf16 row-major, x, y, bias fp32.
 *
 * Why this exists beside cuBLAS: at decode a step has a handful of tokens,
 * the product is bound by reading W once, and cuBLAS would also need the
 * activations converted to bf16 (its bf16 GEMM takes A and B of one type).
 * Here x stays fp32, so this path is exact up to fp32 summation order.
 *
 * Geometry: one warp per output row, 8 warps (256 threads) per block, grid
 * ceil(out/8). The warp reads its W row once and applies it to all n tokens
 * (n is a template parameter so the accumulators stay in registers). Vector
 * path when in % 8 == 0 and both pointers are 16-byte aligned: each lane
 * loads 8 bf16 (one 16-byte load) and the matching 2 float4 of each x row;
 * otherwise a scalar path with lanes striding the row. Lane partials meet in
 * a warp shuffle sum. Run on an H100 (tests/test_cuda_ops.c); no attempt yet at split-K for
 * short wide matrices or at keeping x in shared memory. */
#include "common.cuh"

#define GEMV_WARPS 8

template <int NT>
__global__ void k_gemv(const float *__restrict__ x, const uint16_t *__restrict__ w, const float *__restrict__ bias,
                       float *__restrict__ y, int out, int in, int vec) {
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= out) return; /* whole warp */
    const uint16_t *wr = w + (int64_t)row * in;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if (vec) {
        int nv = in / 8;
        const uint4 *wv = (const uint4 *)wr;
        for (int v = lane; v < nv; v += 32) {
            uint4 q = wv[v];
            float wf[8] = {__uint_as_float(q.x << 16), __uint_as_float(q.x & 0xffff0000u), __uint_as_float(q.y << 16),
                           __uint_as_float(q.y & 0xffff0000u), __uint_as_float(q.z << 16), __uint_as_float(q.z & 0xffff0000u),
                           __uint_as_float(q.w << 16), __uint_as_float(q.w & 0xffff0000u)};
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const float4 *xp = (const float4 *)(x + (int64_t)t * in) + 2 * v;
                float4 a = xp[0], b = xp[1];
                acc[t] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
            }
        }
    } else {
        for (int k = lane; k < in; k += 32) {
            float wf = bf16f(wr[k]);
#pragma unroll
            for (int t = 0; t < NT; t++) acc[t] += wf * x[(int64_t)t * in + k];
        }
    }
    float b0 = bias ? bias[row] : 0.0f;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float v = warp_sum(acc[t]);
        if (lane == 0) y[(int64_t)t * out + row] = v + b0;
    }
}

extern "C" cudaError_t qtts_k_gemv(const float *x, const uint16_t *w, const float *bias, float *y, int n, int out, int in,
                                   cudaStream_t s) {
    if (n <= 0 || out <= 0) return cudaSuccess;
    if (n > QTTS_GEMV_MAX_N) return cudaErrorInvalidValue;
    int vec = in % 8 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)w & 15) == 0;
    dim3 grid((unsigned)((out + GEMV_WARPS - 1) / GEMV_WARPS)), block(32 * GEMV_WARPS);
    switch (n) {
#define CASE(N) \
    case N: k_gemv<N><<<grid, block, 0, s>>>(x, w, bias, y, out, in, vec); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    }
    return cudaGetLastError();
}
