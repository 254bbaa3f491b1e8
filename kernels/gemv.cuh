/* The pieces of the fused GEMV (gemv.cu's header says what it computes and
 * why) that a kernel assembles: the per-token 1/rms of the norm, and one
 * output row for NT tokens by one warp. k_gemv spreads rows over a grid of
 * 8-warp blocks; the persistent code predictor (predictor.cu) over every warp
 * of its grid, phase after phase. */
#ifndef QTTS_GEMV_CUH
#define QTTS_GEMV_CUH

#include "common.cuh"

/* acc[r][t] = sum_k w_r[k] * (norm ? norm[k] : 1) * x[t][k], this lane's
 * share, for NR rows at once (SWIGLU's gate and up: both rows' loads in
 * flight together, and one read of x and norm for both). x has no
 * __restrict__: in the persistent predictor other blocks write it between
 * phases of one kernel, which the non-coherent load path that
 * const __restrict__ allows the compiler to use would not see. */
template <int NT, bool NORM, int NR>
static __device__ __forceinline__ void dot_rows(const uint16_t *const *w, const float *x, const float *__restrict__ g, int in, int vec,
                                                int lane, float (*acc)[NT]) {
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    if (vec) {
        int nv = in / 8;
#pragma unroll 4
        for (int v = lane; v < nv; v += 32) {
            uint4 q[NR];
#pragma unroll
            for (int r = 0; r < NR; r++) q[r] = ((const uint4 *)w[r])[v];
            float4 ga, gb;
            if (NORM) {
                const float4 *gp = (const float4 *)g + 2 * v;
                ga = gp[0], gb = gp[1];
            }
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const float4 *xp = (const float4 *)(x + (int64_t)t * in) + 2 * v;
                float4 a = xp[0], b = xp[1];
                if (NORM) {
                    a.x *= ga.x, a.y *= ga.y, a.z *= ga.z, a.w *= ga.w;
                    b.x *= gb.x, b.y *= gb.y, b.z *= gb.z, b.w *= gb.w;
                }
#pragma unroll
                for (int r = 0; r < NR; r++)
                    acc[r][t] += __uint_as_float(q[r].x << 16) * a.x + __uint_as_float(q[r].x & 0xffff0000u) * a.y +
                                 __uint_as_float(q[r].y << 16) * a.z + __uint_as_float(q[r].y & 0xffff0000u) * a.w +
                                 __uint_as_float(q[r].z << 16) * b.x + __uint_as_float(q[r].z & 0xffff0000u) * b.y +
                                 __uint_as_float(q[r].w << 16) * b.z + __uint_as_float(q[r].w & 0xffff0000u) * b.w;
            }
        }
    } else {
        for (int k = lane; k < in; k += 32) {
            float gk = NORM ? g[k] : 1.0f;
#pragma unroll
            for (int t = 0; t < NT; t++) {
                float xk = x[(int64_t)t * in + k] * gk;
#pragma unroll
                for (int r = 0; r < NR; r++) acc[r][t] += bf16f(w[r][k]) * xk;
            }
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

/* Where output row r (numbered across the job's weights, j.out[k] = 0 past
 * nw) lives: its weight, output and width, and its index in them. */
struct gemv_seg {
    const uint16_t *w;
    float *y;
    int out, r;
};
static __device__ __forceinline__ gemv_seg gemv_find(const qtts_k_gemv_job &j, int r) {
    int seg = 0;
    if (r >= j.out[0]) {
        r -= j.out[0];
        seg = 1;
        if (r >= j.out[1]) {
            r -= j.out[1];
            seg = 2;
        }
    }
    return {seg == 0 ? j.w[0] : seg == 1 ? j.w[1] : j.w[2], seg == 0 ? j.y[0] : seg == 1 ? j.y[1] : j.y[2],
            seg == 0 ? j.out[0] : seg == 1 ? j.out[1] : j.out[2], r};
}

/* The lane partials of output row s (gemv_find) for NT tokens (a[1] the up
 * row, SWIGLU only), by the calling warp; no norm scale yet (gemv_row_out
 * applies it). */
template <int NT, bool NORM>
static __device__ __forceinline__ void gemv_row_dot(const qtts_k_gemv_job &j, const gemv_seg &s, int in, int vec, int lane, float (*a)[NT]) {
    const uint16_t *row = s.w + (int64_t)s.r * in, *w[2] = {row, row};
    if (j.mode == QTTS_GEMV_SWIGLU) {
        w[1] = row + (int64_t)s.out * in;
        dot_rows<NT, NORM, 2>(w, j.x, j.norm, in, vec, lane, a);
    } else {
        dot_rows<NT, NORM, 1>(w, j.x, j.norm, in, vec, lane, a);
    }
}

/* Output row s from gemv_row_dot's partials: the warp sums, the norm's
 * 1/rms (rstd from gemv_rstd when NORM), then set, add or SwiGLU. */
template <int NT, bool NORM>
static __device__ __forceinline__ void gemv_row_out(const qtts_k_gemv_job &j, const gemv_seg &s, const float *rstd, int lane,
                                                    float (*a)[NT]) {
    float b0 = j.bias ? j.bias[s.r] : 0.0f;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float v = warp_sum(a[0][t]);
        if (NORM) v *= rstd[t];
        float *yt = s.y + (int64_t)t * s.out + s.r;
        if (j.mode == QTTS_GEMV_SWIGLU) {
            float up = warp_sum(a[1][t]);
            if (NORM) up *= rstd[t];
            if (lane == 0) *yt = silu_f(v) * up;
        } else if (lane == 0) {
            *yt = j.mode == QTTS_GEMV_ADD ? *yt + v : v + b0;
        }
    }
}

/* Output row r for NT tokens, by the calling warp (rstd already known). */
template <int NT, bool NORM>
static __device__ __forceinline__ void gemv_row(const qtts_k_gemv_job &j, int in, int vec, int r, const float *rstd, int lane) {
    float a[2][NT] = {}; /* a[1]: SWIGLU only */
    gemv_seg s = gemv_find(j, r);
    gemv_row_dot<NT, NORM>(j, s, in, vec, lane, a);
    gemv_row_out<NT, NORM>(j, s, rstd, lane, a);
}

/* The rows a job has (its weights' outputs; SWIGLU: the gate rows). */
static __device__ __host__ __forceinline__ int gemv_rows(const qtts_k_gemv_job &j) {
    int rows = 0;
    for (int k = 0; k < j.nw; k++) rows += j.out[k];
    return rows;
}

#endif
