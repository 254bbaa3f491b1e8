/* The pieces of the fused GEMV (gemv.cu's header says what it computes and
 * why) that a kernel assembles: the per-token 1/rms of the norm, and one
 * output row for NT tokens by one warp. k_gemv spreads rows over a grid of
 * 8-warp blocks; the persistent code predictor (predictor.cu) over every warp
 * of its grid, phase after phase. */
#ifndef QTTS_GEMV_CUH
#define QTTS_GEMV_CUH

#include "common.cuh"

/* acc[t] = sum_k w[k] * (norm ? norm[k] : 1) * x[t][k], this lane's share.
 * x has no __restrict__: in the persistent predictor other blocks write it
 * between phases of one kernel, which the non-coherent load path that
 * const __restrict__ allows the compiler to use would not see. */
template <int NT, bool NORM>
static __device__ __forceinline__ void dot_row(const uint16_t *__restrict__ w, const float *x, const float *__restrict__ g,
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

static __device__ __host__ __forceinline__ bool gemv_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Whether job j may take dot_row's 16-byte vector path at input width in. */
static __device__ __host__ __forceinline__ int gemv_vec(const qtts_k_gemv_job &j, int in) {
    int vec = in % 8 == 0 && gemv_aligned16(j.x) && (!j.norm || gemv_aligned16(j.norm));
    for (int k = 0; k < j.nw; k++) vec = vec && gemv_aligned16(j.w[k]);
    return vec;
}

/* rstd[t] = 1/rms of token t of j.x (j.norm set); every thread of the block
 * calls it, and gets rstd[] published (red: 32 floats of shared memory). */
template <int NT>
static __device__ __forceinline__ void gemv_rstd(const qtts_k_gemv_job &j, int in, float *red, float *rstd) {
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

/* Output row r (numbered across the job's weights, j.out[k] = 0 past nw)
 * for NT tokens, by the calling warp; rstd from gemv_rstd when NORM. */
template <int NT, bool NORM>
static __device__ __forceinline__ void gemv_row(const qtts_k_gemv_job &j, int in, int vec, int r, const float *rstd, int lane) {
    int seg = 0; /* which weight */
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

/* The rows a job has (its weights' outputs; SWIGLU: the gate rows). */
static __device__ __host__ __forceinline__ int gemv_rows(const qtts_k_gemv_job &j) {
    int rows = 0;
    for (int k = 0; k < j.nw; k++) rows += j.out[k];
    return rows;
}

#endif
