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
 * Two implementations. Direct kernels (k_conv1d, k_conv_transpose1d) for
 * grouped/depthwise and tiny convolutions. For the rest the backend lowers to
 * fp32 cuBLAS GEMMs with the kernels at the end of this file: im2col
 * (xcol[t][ci*K+k] = x[ci][t + k*dil - pad]) for conv1d, and for the
 * transposed conv a GEMM to z[t][co*K+k] = sum_ci W[ci][co][k] x[ci][t]
 * followed by the col2im gather y[co][u] += sum_{t*s+k=u} z[t][co*K+k]; a
 * channel-bias fill/add kernel completes both. The first H100 run showed the
 * direct kernels at ~2 TFLOP/s made the decoder 70% of a batched render.
 *
 * Direct geometry (both): one thread per output sample, block 128 threads along t,
 * grid (ceil(Tout/128), cout, B). The threads of a block share o, so weight
 * reads are warp-uniform (broadcast) and x reads are coalesced along t.
 * Why this simple direct form: it is obviously right and covers dilation,
 * groups and the depthwise convolutions with one kernel. It does no data
 * reuse through shared memory; the pointwise (K=1) and wide convolutions
 * belong on cuBLAS (im2col + GEMM) once an H100 profile shows the decoder
 * matters. Sums are fp32 in the CPU twin's order (ci outer, k inner) except
 * that the CPU adds k-major per ci; differences are fp32 rounding. */
#include "common.cuh"

#define CONV_THREADS 128

__global__ void k_conv1d(const float *__restrict__ x, const uint16_t *__restrict__ w, const float *__restrict__ bias,
                         float *__restrict__ y, int cin, int cout, int T, int K, int dil, int groups) {
    pdl_prologue();
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
    pdl_prologue();
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

/* im2col for one item: col[tt][ci*K + k] = x[ci][t0 + tt + k*dil - (K-1)*dil], 0 before time 0. */
__global__ void k_im2col(const float *__restrict__ x, float *__restrict__ col, int cin, int T, int K, int dil, int t0, int nt) {
    pdl_prologue();
    int64_t ck = (int64_t)cin * K, len = (int64_t)nt * ck;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t tt = i / ck, r = i % ck;
        int ci = (int)(r / K), k = (int)(r % K);
        int64_t t = t0 + tt + (int64_t)k * dil - (int64_t)(K - 1) * dil;
        col[i] = t >= 0 ? x[(int64_t)ci * T + t] : 0.0f;
    }
}

/* col2im of a transposed conv, one item, for the z rows of t in [t0, t0+nt):
 * y[co][u] += sum_{t in tile, k = u - t*s in [0, K)} z[t - t0][co*K + k],
 * over the outputs u those rows reach (a gather: each u written once per tile). */
__global__ void k_col2im_t(const float *__restrict__ z, float *__restrict__ y, int cout, int T, int K, int s, int t0, int nt) {
    pdl_prologue();
    int64_t To = (int64_t)T * s, u0 = (int64_t)t0 * s, u1 = (int64_t)(t0 + nt - 1) * s + K;
    if (u1 > To) u1 = To;
    int64_t span = u1 - u0, len = span * cout, ckz = (int64_t)cout * K;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) {
        int co = (int)(i / span);
        int64_t u = u0 + i % span;
        int64_t lo_num = u - K + 1;
        int64_t t_lo = lo_num <= 0 ? 0 : (lo_num + s - 1) / s, t_hi = u / s;
        if (t_lo < t0) t_lo = t0;
        if (t_hi > t0 + nt - 1) t_hi = t0 + nt - 1;
        float acc = 0.0f;
        for (int64_t t = t_lo; t <= t_hi; t++) acc += z[(t - t0) * ckz + (int64_t)co * K + (u - t * s)];
        y[(int64_t)co * To + u] += acc;
    }
}

/* y [B][C][T]: y = bias[c] (or 0 without a bias) when set, else y += bias[c]. */
__global__ void k_channel_bias(float *__restrict__ y, const float *__restrict__ bias, int64_t len, int C, int T, int set) {
    pdl_prologue();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) {
        float b = bias ? bias[(i / T) % C] : 0.0f;
        y[i] = set ? b : y[i] + b;
    }
}

__global__ void k_bf16_to_f32(const uint16_t *__restrict__ x, float *__restrict__ y, int64_t len) {
    pdl_prologue();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) y[i] = bf16f(x[i]);
}

extern "C" {

cudaError_t qtts_k_im2col(const float *x, float *col, int cin, int T, int K, int dil, int t0, int nt, qtts_k_stream s) {
    if (nt <= 0 || cin <= 0) return cudaSuccess;
    return launch(k_im2col, grid_for((int64_t)nt * cin * K, 256), 256, 0, s, x, col, cin, T, K, dil, t0, nt);
}

cudaError_t qtts_k_col2im_t(const float *z, float *y, int cout, int T, int K, int stride, int t0, int nt, qtts_k_stream s) {
    if (nt <= 0 || cout <= 0) return cudaSuccess;
    return launch(k_col2im_t, grid_for((int64_t)cout * ((int64_t)nt * stride + K), 256), 256, 0, s, z, y, cout, T, K, stride, t0, nt);
}

cudaError_t qtts_k_channel_bias(float *y, const float *bias, int B, int C, int64_t T, int set, qtts_k_stream s) {
    int64_t len = (int64_t)B * C * T;
    if (len <= 0) return cudaSuccess;
    return launch(k_channel_bias, grid_for(len, 256), 256, 0, s, y, bias, len, C, (int)T, set);
}

cudaError_t qtts_k_bf16_to_f32(const uint16_t *x, float *y, int64_t len, qtts_k_stream s) {
    if (len <= 0) return cudaSuccess;
    return launch(k_bf16_to_f32, grid_for(len, 256), 256, 0, s, x, y, len);
}

cudaError_t qtts_k_conv1d(const float *x, const uint16_t *w, const float *bias, float *y, int B, int cin, int cout, int T, int K,
                          int dilation, int groups, qtts_k_stream s) {
    if (B <= 0 || cout <= 0 || T <= 0) return cudaSuccess;
    if (groups < 1 || cin % groups || cout % groups || cout > 65535 || B > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((T + CONV_THREADS - 1) / CONV_THREADS), (unsigned)cout, (unsigned)B);
    return launch(k_conv1d, grid, CONV_THREADS, 0, s, x, w, bias, y, cin, cout, T, K, dilation, groups);
}

cudaError_t qtts_k_conv_transpose1d(const float *x, const uint16_t *w, const float *bias, float *y, int B, int cin, int cout, int T,
                                    int K, int stride, qtts_k_stream s) {
    int64_t To = (int64_t)T * stride;
    if (B <= 0 || cout <= 0 || To <= 0) return cudaSuccess;
    if (stride < 1 || cout > 65535 || B > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((To + CONV_THREADS - 1) / CONV_THREADS), (unsigned)cout, (unsigned)B);
    return launch(k_conv_transpose1d, grid, CONV_THREADS, 0, s, x, w, bias, y, cin, cout, T, K, stride);
}

} /* extern "C" */
