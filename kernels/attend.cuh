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

/* Floats of shared memory rope_attend_head needs: the group's rotated
 * queries and their scores over up to `chunk` positions. */
static __device__ __host__ __forceinline__ size_t rope_attend_smem(int group, int hd, int chunk) {
    return (size_t)group * (size_t)(hd + chunk);
}

/* Token i (slot, position pi <= chunk - 1) and kv head kh, by the whole
 * block: the warps norm and rotate the group's q heads (in place, and into
 * sm) and the k head (in place, and into the cache at (slot, pi)); the v
 * head is copied into the cache; then, after a barrier, the block attends
 * each of its q heads over positions 0..pi as k_attention does with one
 * split. sm: rope_attend_smem(group, hd, chunk) floats; red: 32 floats.
 * Positions below pi must be in the cache already (an earlier launch, or
 * this block before a __syncthreads). Activations (q, k, v, out) carry no
 * __restrict__: the persistent predictor writes them between phases of one
 * kernel (gemv.cuh: dot_row). */
static __device__ void rope_attend_head(float *q, float *k, const float *v, const float *__restrict__ qn,
                                        const float *__restrict__ kn, float eps, int i, int slot, int pi, int n_heads, float theta,
                                        const qtts_k_kv &c, int layer, float scale, float *out, int kh, float *sm, int chunk,
                                        float *red) {
    int hd = c.head_dim, nkv = c.n_kv_heads, group = n_heads / nkv;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
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
    for (int p = warp; p < len; p += nw) {
        const float *kp = kbase + p * pstride;
        for (int g = 0; g < group; g++) {
            float dot = 0.0f;
            for (int d = lane; d < hd; d += 32) dot += qs[g * hd + d] * kp[d];
            dot = warp_sum(dot);
            if (lane == 0) sc[g * chunk + p] = dot * scale;
        }
    }
    __syncthreads();
    for (int g = 0; g < group; g++) {
        float *s = sc + g * chunk, mx, sum = block_softmax(s, len, red, &mx);
        float *o = out + ((int64_t)i * n_heads + kh * group + g) * hd;
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            float acc = 0.0f;
            for (int p = 0; p < len; p++) acc += s[p] * vbase[p * pstride + d];
            o[d] = acc / sum;
        }
    }
}

#endif
