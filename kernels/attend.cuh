/* Attention pieces shared by attention.cu and the persistent code predictor
 * (predictor.cu): the block softmax, and a decode token's q/k norm, RoPE,
 * KV append and attention for one kv head by one block. */
#ifndef QTTS_ATTEND_CUH
#define QTTS_ATTEND_CUH

#include "common.cuh"

/* The block's scores s[0..len) in shared memory become exp(s - max) in
 * place; returns their sum and the max (every thread gets both). The
 * reductions' barriers also publish the s[] writes to the whole block. */
static __device__ float block_softmax(float *s, int len, float *red, float *max_out) {
    float mx = -INFINITY;
    for (int p = threadIdx.x; p < len; p += blockDim.x) mx = fmaxf(mx, s[p]);
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int p = threadIdx.x; p < len; p += blockDim.x) {
        float e = expf(s[p] - mx);
        s[p] = e;
        sum += e;
    }
    *max_out = mx;
    return block_sum(sum, red);
}

/* Positions a warp of span_scores takes at once: the rows whose loads it
 * has in flight together. */
#define SPAN_ROWS 4

/* sc[p] = scale * (q . K[p]) for p < len, K[p] at kbase + p * pstride, by
 * the whole block: each warp takes SPAN_ROWS positions at a time, its lanes
 * striding head_dim, so that SPAN_ROWS rows' loads are in flight per warp
 * (a warp per position waited out each row's load latency in turn: decode
 * attention ran at a fraction of the bandwidth). q (qs) in shared memory;
 * the scores land in shared memory for the caller to publish with a
 * barrier. Positions past len in a warp's last group read a valid row
 * (len - 1) and write nothing. */
static __device__ void span_scores(const float *qs, const float *kbase, int64_t pstride, int hd, int len, float scale, float *sc) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int p0 = SPAN_ROWS * warp; p0 < len; p0 += SPAN_ROWS * nw) {
        const float *kp[SPAN_ROWS];
        float a[SPAN_ROWS];
#pragma unroll
        for (int u = 0; u < SPAN_ROWS; u++) {
            kp[u] = kbase + (int64_t)min(p0 + u, len - 1) * pstride;
            a[u] = 0.0f;
        }
        for (int d = lane; d < hd; d += 32) {
            float qv = qs[d];
#pragma unroll
            for (int u = 0; u < SPAN_ROWS; u++) a[u] += qv * kp[u][d];
        }
#pragma unroll
        for (int u = 0; u < SPAN_ROWS; u++) {
            float s = warp_sum(a[u]);
            if (lane == 0 && p0 + u < len) sc[p0 + u] = s * scale;
        }
    }
}

/* sum of e[p] * v[p * pstride] over p = p0, p0 + step, ... < len, four
 * positions at a time (four loads in flight, four partial sums). */
static __device__ __forceinline__ float span_dot(const float *e, const float *v, int64_t pstride, int p0, int len, int step) {
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int p = p0;
    for (; p + 3 * step < len; p += 4 * step) {
        a0 += e[p] * v[p * pstride];
        a1 += e[p + step] * v[(p + step) * pstride];
        a2 += e[p + 2 * step] * v[(p + 2 * step) * pstride];
        a3 += e[p + 3 * step] * v[(p + 3 * step) * pstride];
    }
    for (; p < len; p += step) a0 += e[p] * v[p * pstride];
    return (a0 + a1) + (a2 + a3);
}

/* out[d] = mul * sum_p e[p] V[p][d] for d < hd, V[p] at vbase + p * pstride,
 * by the whole block: with hd <= blockDim the threads split the positions
 * ns = blockDim / hd ways (thread t: dim t % hd, positions t / hd, + ns,
 * ...), and the ns partial sums meet in part[] (blockDim floats of shared
 * memory); with a wider head each thread takes dims in turn. e[] must be
 * published (a barrier) before; ends with a barrier, after which part[] and
 * e[] may be reused. Reads of one row coalesce across the threads of a dim
 * range. */
static __device__ void span_values(const float *e, const float *vbase, int64_t pstride, int hd, int len, float mul, float *part,
                                   float *out) {
    int t = threadIdx.x, ns = (int)blockDim.x / hd;
    if (ns <= 1) {
        for (int d = t; d < hd; d += blockDim.x) out[d] = mul * span_dot(e, vbase + d, pstride, 0, len, 1);
        __syncthreads();
        return;
    }
    if (t < ns * hd) part[t] = span_dot(e, vbase + t % hd, pstride, t / hd, len, ns);
    __syncthreads();
    if (t < hd) {
        float s = 0.0f;
        for (int i = 0; i < ns; i++) s += part[i * hd + t];
        out[t] = mul * s;
    }
    __syncthreads();
}

/* Floats of shared memory rope_attend_head needs: the group's rotated
 * queries and their scores over up to `chunk` positions, and span_values's
 * partial sums for a block of `threads`. */
static __device__ __host__ __forceinline__ size_t rope_attend_smem(int group, int hd, int chunk, int threads) {
    return (size_t)group * (size_t)(hd + chunk) + (size_t)threads;
}

/* Token i (slot, position pi <= chunk - 1) and kv head kh, by the whole
 * block: the warps norm and rotate the group's q heads (in place, and into
 * sm) and the k head (in place, and into the cache at (slot, pi)); the v
 * head is copied into the cache; then, after a barrier, the block attends
 * each of its q heads over positions 0..pi as k_attention does with one
 * split. sm: rope_attend_smem(group, hd, chunk, blockDim.x) floats; red: 32 floats.
 * Positions below pi must be in the cache already (an earlier launch, or
 * this block before a __syncthreads). Activations (q, k, v, out) carry no
 * __restrict__: the persistent predictor writes them between phases of one
 * kernel (gemv.cuh: dot_row). */
static __device__ void rope_attend_head(float *q, float *k, const float *v, const float *__restrict__ qn,
                                        const float *__restrict__ kn, float eps, int i, int slot, int pi, int n_heads, float theta,
                                        const qtts_k_kv &c, int layer, float scale, float *out, int kh, float *sm, int chunk,
                                        float *red) {
    int hd = c.head_dim, nkv = c.n_kv_heads, group = n_heads / nkv;
    int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    int len = pi + 1;
    float *qs = sm, *sc = sm + group * hd;
    float *kbase = c.k + kv_row(c, layer, slot, 0) + (int64_t)kh * hd; /* position 0 of this kv head */
    float *vbase = c.v + kv_row(c, layer, slot, 0) + (int64_t)kh * hd;
    int64_t pstride = (int64_t)nkv * hd, at = (int64_t)pi * pstride;
    for (int hh = warp; hh <= group; hh += nw) { /* the group's q heads, then the k head: a warp each */
        if (hh < group)
            norm_rope_head(q + ((int64_t)i * n_heads + kh * group + hh) * hd, qn, eps, hd, pi, theta, qs + hh * hd);
        else
            norm_rope_head(k + ((int64_t)i * nkv + kh) * hd, kn, eps, hd, pi, theta, kbase + at);
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) vbase[at + d] = v[((int64_t)i * nkv + kh) * hd + d];
    __syncthreads();
    for (int g = 0; g < group; g++) span_scores(qs + g * hd, kbase, pstride, hd, len, scale, sc + g * chunk);
    __syncthreads();
    float *part = sc + group * chunk;
    for (int g = 0; g < group; g++) {
        float *s = sc + g * chunk, mx, sum = block_softmax(s, len, red, &mx);
        span_values(s, vbase, pstride, hd, len, 1.0f / sum, part, out + ((int64_t)i * n_heads + kh * group + g) * hd);
    }
}

#endif
