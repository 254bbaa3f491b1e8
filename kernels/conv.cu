/* Codec-decoder convolutions, x and y [B, C, T] channel-major per item,
 * weights bf16, bias fp32 (may be NULL).
 *
 *   conv1d (causal, stride 1, W [cout][cin/groups][K]):
 *     y[b,o,t] = bias[o] + sum_{ci<cin/g, k<K} W[o,ci,k] x[b, g*cin/g + ci, t + k*dil - (K-1)*dil]
 *     (x at negative time is zero: left padding of (K-1)*dil).
 *   conv_transpose1d (W [cin][cout][K], stride s, output T*s, i.e. the full
 *   (T-1)*s + K trimmed right by K - s):
 *     y[b,o,u] = bias[o] + sum_ci sum_{t,k: t*s + k = u} x[b,ci,t] W[ci,o,k]
 *     computed as a gather: for output u the contributing t run from
 *     ceil((u-K+1)/s) to floor(u/s), clipped to [0, T).
 *
 * Geometry (both): one thread per output sample, block 128 threads along t,
 * grid (ceil(Tout/128), cout, B). The threads of a block share o, so weight
 * reads are warp-uniform (broadcast) and x reads are coalesced along t.
 * Why this simple direct form: it is obviously right and covers dilation,
 * groups and the depthwise convolutions with one kernel. It does no data
 * reuse through shared memory; the pointwise (K=1) and wide convolutions
 * belong on cuBLAS (im2col + GEMM) once an H100 profile shows the decoder
 * matters. Sums are fp32 in the CPU twin's order (ci outer, k inner) except
 * that the CPU adds k-major per ci; differences are fp32 rounding.
 * Not yet run on a GPU. */
#include "common.cuh"

#define CONV_THREADS 128

__global__ void k_conv1d(const float *__restrict__ x, const uint16_t *__restrict__ w, const float *__restrict__ bias,
                         float *__restrict__ y, int cin, int cout, int T, int K, int dil, int groups) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    int o = blockIdx.y, b = blockIdx.z;
    if (t >= T) return;
    int cpg_in = cin / groups, cpg_out = cout / groups, g = o / cpg_out, pad = (K - 1) * dil;
    const float *xb = x + ((int64_t)b * cin + (int64_t)g * cpg_in) * T;
    const uint16_t *wo = w + (int64_t)o * cpg_in * K;
    float acc = bias ? bias[o] : 0.0f;
    for (int ci = 0; ci < cpg_in; ci++) {
        const float *xc = xb + (int64_t)ci * T;
        const uint16_t *wk = wo + (int64_t)ci * K;
        for (int k = 0; k < K; k++) {
            int ti = t + k * dil - pad;
            if (ti >= 0) acc += bf16f(wk[k]) * xc[ti];
        }
    }
    y[((int64_t)b * cout + o) * T + t] = acc;
}

__global__ void k_conv_transpose1d(const float *__restrict__ x, const uint16_t *__restrict__ w, const float *__restrict__ bias,
                                   float *__restrict__ y, int cin, int cout, int T, int K, int stride) {
    int64_t To = (int64_t)T * stride;
    int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int o = blockIdx.y, b = blockIdx.z;
    if (u >= To) return;
    /* t*stride + k = u with 0 <= k < K  <=>  (u-K+1)/stride <= t <= u/stride */
    int64_t lo_num = u - K + 1;
    int64_t t_lo = lo_num <= 0 ? 0 : (lo_num + stride - 1) / stride;
    int64_t t_hi = u / stride;
    if (t_hi > T - 1) t_hi = T - 1;
    float acc = bias ? bias[o] : 0.0f;
    for (int ci = 0; ci < cin; ci++) {
        const float *xc = x + ((int64_t)b * cin + ci) * T;
        const uint16_t *wk = w + ((int64_t)ci * cout + o) * K;
        for (int64_t t = t_lo; t <= t_hi; t++) acc += xc[t] * bf16f(wk[u - t * stride]);
    }
    y[((int64_t)b * cout + o) * To + u] = acc;
}

extern "C" {

cudaError_t qtts_k_conv1d(const float *x, const uint16_t *w, const float *bias, float *y, int B, int cin, int cout, int T, int K,
                          int dilation, int groups, cudaStream_t s) {
    if (B <= 0 || cout <= 0 || T <= 0) return cudaSuccess;
    if (groups < 1 || cin % groups || cout % groups || cout > 65535 || B > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((T + CONV_THREADS - 1) / CONV_THREADS), (unsigned)cout, (unsigned)B);
    k_conv1d<<<grid, CONV_THREADS, 0, s>>>(x, w, bias, y, cin, cout, T, K, dilation, groups);
    return cudaGetLastError();
}

cudaError_t qtts_k_conv_transpose1d(const float *x, const uint16_t *w, const float *bias, float *y, int B, int cin, int cout, int T,
                                    int K, int stride, cudaStream_t s) {
    int64_t To = (int64_t)T * stride;
    if (B <= 0 || cout <= 0 || To <= 0) return cudaSuccess;
    if (stride < 1 || cout > 65535 || B > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((To + CONV_THREADS - 1) / CONV_THREADS), (unsigned)cout, (unsigned)B);
    k_conv_transpose1d<<<grid, CONV_THREADS, 0, s>>>(x, w, bias, y, cin, cout, T, K, stride);
    return cudaGetLastError();
}

} /* extern "C" */
