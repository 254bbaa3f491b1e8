/* Device helpers shared by the kernels/ .cu files: bf16 decode, warp/block sums and
 * maxima, 1-D grid sizing. bf16 is handled as raw uint16_t (the high half of
 * an fp32) so that the C side and the kernels agree on one plain type. */
#ifndef QTTS_COMMON_CUH
#define QTTS_COMMON_CUH

#include <stdint.h>

#include <cuda_runtime.h>

#include "qtts_kernels.h"

/* A kernel's dynamic shared memory as an array of T (sized by the launch).
 * tests/emu (the kernels on CPU threads) defines its own. */
#ifndef DYN_SHARED
#define DYN_SHARED(T, name) extern __shared__ T name[]
#endif

static __device__ __forceinline__ float bf16f(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

/* fp32 to bf16, round to nearest even, NaN kept quiet: the same as qtts_f32_to_bf16 */
static __device__ __forceinline__ uint16_t f2bf16(float x) {
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static __device__ __forceinline__ float silu_f(float v) { return v / (1.0f + expf(-v)); }

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets
 * the result. `red` is 32 floats of shared memory; reusable after return. */
static __device__ __forceinline__ float block_sum(float v, float *red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0f;
    return warp_sum(v);
}
static __device__ __forceinline__ float block_max(float v, float *red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : -INFINITY;
    return warp_max(v);
}

/* Programmatic dependent launch (Hopper; on for a qtts_k_stream with pdl set).
 * Launched with it, a kernel may be scheduled while the kernel before it on
 * the stream is still running, which hides the launch gap between the
 * hundreds of small dependent kernels of a decode step. Every kernel here
 * therefore starts with pdl_prologue(): griddepcontrol.wait holds it until
 * the previous kernel has completed and its writes are visible (so no
 * access to activations, not even a write that a running kernel's read
 * could race with, happens before it; the one thing before it is the
 * GEMV's L2 prefetch of its weights, which no kernel writes), then
 * launch_dependents lets the next kernel be scheduled.
 * Without the launch attribute both instructions are no-ops. */
static __device__ __forceinline__ void pdl_prologue() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Ask L2 for the 128-byte lines covering [p, p + bytes), lines first,
 * first + step, ... of them (a thread's share). A hint: results do not
 * change (the emulator skips it). */
static __device__ __forceinline__ void l2_prefetch(const void *p, int64_t bytes, int64_t first, int64_t step) {
#ifdef __CUDA_ARCH__
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)127;
    int64_t lines = (int64_t)(((uintptr_t)p + (uintptr_t)bytes - base + 127) / 128);
    for (int64_t i = first; i < lines; i += step) asm volatile("prefetch.global.L2 [%0];" ::"l"(base + (uintptr_t)i * 128));
#else
    (void)p, (void)bytes, (void)first, (void)step;
#endif
}

/* kernel<<<grid, block, smem, s>>>(args...), with programmatic stream
 * serialization when PDL is on; returns the launch's error. */
template <typename... Params, typename... Args>
static cudaError_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, qtts_k_stream s, Args... args) {
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s.stream;
    cfg.attrs = at;
    cfg.numAttrs = s.pdl ? 1 : 0;
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args...);
    return e != cudaSuccess ? e : cudaGetLastError();
}

/* One head of hd values in place, by one warp: RMSNorm with weight nw (when
 * not NULL), then NeoX rotate-half RoPE at position pos; dst (when not
 * NULL) gets a copy of the result. Each lane owns pairs (j, j + hd/2), so
 * the in-place update never races. The inverse frequency is computed as the
 * CPU does, in double then rounded to fp32; cos/sin of the fp32 angle in fp32. */
static __device__ __forceinline__ void norm_rope_head(float *x, const float *__restrict__ nw, float eps, int hd, int pos, float theta,
                                                      float *dst) {
    int lane = threadIdx.x & 31;
    float r = 1.0f;
    if (nw) {
        float ss = 0.0f;
        for (int j = lane; j < hd; j += 32) ss += x[j] * x[j];
        ss = warp_sum(ss);
        r = 1.0f / sqrtf(ss / (float)hd + eps);
    }
    __syncwarp();
    int h = hd / 2;
    float p = (float)pos;
    for (int j = lane; j < h; j += 32) {
        float a = x[j], b = x[j + h];
        if (nw) {
            a = a * r * nw[j];
            b = b * r * nw[j + h];
        }
        float inv_f = (float)pow((double)theta, -2.0 * j / hd);
        float ang = p * inv_f;
        float c = cosf(ang), sn = sinf(ang);
        x[j] = a * c - b * sn;
        x[j + h] = b * c + a * sn;
        if (dst) {
            dst[j] = x[j];
            dst[j + h] = x[j + h];
        }
    }
    if ((hd & 1) && lane == 0) { /* odd hd: the last value is normed, not rotated */
        if (nw) x[hd - 1] = x[hd - 1] * r * nw[hd - 1];
        if (dst) dst[hd - 1] = x[hd - 1];
    }
}

/* Offset of (layer, slot, pos) in a KV cache [layer][slot][pos][kv_head][head_dim]. */
static __device__ __forceinline__ int64_t kv_row(const qtts_k_kv &c, int layer, int slot, int pos) {
    return (((int64_t)layer * c.n_slots + slot) * c.max_len + pos) * c.n_kv_heads * c.head_dim;
}

/* Blocks for a grid-stride loop over len items: enough to fill an H100
 * (132 SMs x a few blocks) without launching millions of tiny blocks. */
static inline unsigned grid_for(int64_t len, int threads) {
    int64_t b = (len + threads - 1) / threads;
    if (b > 4096) b = 4096;
    return (unsigned)(b < 1 ? 1 : b);
}

#endif
