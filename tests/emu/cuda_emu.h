/* The kernels of kernels/ (the .cu files) on CPU threads, for tests without a GPU
 * (tests/test_kernels_emu.cpp). This replaces the CUDA headers: the .cu
 * files compile as C++ (they launch through launch() in common.cuh, never
 * <<<>>>), and cudaLaunchKernelEx runs the grid here:
 *   - blocks one after another, each as blockDim std::threads;
 *   - __syncthreads is a std::barrier of the block, __syncwarp and the warp
 *     shuffles one of the warp (a shuffle writes the lane's value, waits,
 *     reads its partner's, waits); a thread that returns drops out of both,
 *     as an exited thread stops counting at a CUDA barrier;
 *   - __shared__ variables are function statics (blocks do not overlap),
 *     DYN_SHARED the launch's dynamicSmemBytes, zero-filled per block;
 *   - device memory is host memory; PDL's griddepcontrol is compiled out
 *     (it sits under __CUDA_ARCH__).
 * What this checks: index arithmetic, bounds, the split of work between
 * threads, warps and blocks, and that every barrier is reached by the
 * threads it waits for (a wrong one deadlocks or races visibly). What it
 * cannot: timing, occupancy, the GPU memory model, fp32 results bit for bit
 * (the host libm is not the device's). It is not a substitute for the GPU
 * run (scripts/gpu_check.sh). */
#ifndef QTTS_CUDA_EMU_H
#define QTTS_CUDA_EMU_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

using std::isinf;
using std::isnan;
using std::max;
using std::min;

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

typedef enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorLaunchFailure = 4 } cudaError_t;
typedef struct emu_stream *cudaStream_t;
typedef enum { cudaLaunchAttributeProgrammaticStreamSerialization = 5 } cudaLaunchAttributeID;
typedef struct {
    cudaLaunchAttributeID id;
    union {
        int programmaticStreamSerializationAllowed;
    } val;
} cudaLaunchAttribute;
typedef struct {
    dim3 gridDim, blockDim;
    size_t dynamicSmemBytes;
    cudaStream_t stream;
    cudaLaunchAttribute *attrs;
    unsigned numAttrs;
} cudaLaunchConfig_t;

static inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
static inline const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "invalid argument"; }
static inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}

/* ---- the running block ---- */
struct emu_block {
    std::barrier<> block;
    std::vector<std::unique_ptr<std::barrier<>>> warp;
    std::vector<uint64_t> xchg; /* [warps][32]: shuffle values */
    std::vector<unsigned char> dyn;
    emu_block(unsigned threads, size_t dyn_bytes) : block((std::ptrdiff_t)threads), xchg((threads + 31) / 32 * 32), dyn(dyn_bytes + 16) {
        for (unsigned w = 0; w < (threads + 31) / 32; w++) {
            unsigned lanes = threads - 32 * w < 32 ? threads - 32 * w : 32;
            warp.emplace_back(new std::barrier<>((std::ptrdiff_t)lanes));
        }
    }
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim; /* one launch at a time */
inline thread_local emu_block *emu_cur;
inline thread_local unsigned emu_tid;

#define DYN_SHARED(T, name) T *name = (T *)emu_cur->dyn.data()

static inline void __syncthreads(void) { emu_cur->block.arrive_and_wait(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void)mask;
    emu_cur->warp[emu_tid / 32]->arrive_and_wait();
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a word");
    unsigned w = emu_tid / 32, lane = emu_tid % 32;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    emu_cur->xchg[w * 32 + lane] = bits;
    __syncwarp(mask);
    bits = emu_cur->xchg[w * 32 + (lane ^ (unsigned)lane_mask)];
    __syncwarp(mask);
    T r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}

template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a word");
    unsigned w = emu_tid / 32, lane = emu_tid % 32;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    emu_cur->xchg[w * 32 + lane] = bits;
    __syncwarp(mask);
    if (lane + delta < 32) bits = emu_cur->xchg[w * 32 + lane + delta]; /* past the warp: the lane keeps its own */
    __syncwarp(mask);
    T r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}
template <typename T>
static inline T atomicAdd(T *p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v);
}

/* Launches counted, so a test can tell that a path ran (and how many kernels it took). */
inline long emu_launches;

template <typename... Params, typename... Args>
static cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t *cfg, void (*kernel)(Params...), Args &&...args) {
    std::tuple<Params...> params(std::forward<Args>(args)...); /* coerced as the real launch does */
    dim3 g = cfg->gridDim, b = cfg->blockDim;
    unsigned threads = b.x * b.y * b.z;
    if (threads == 0 || threads > 1024 || g.x == 0 || g.y == 0 || g.z == 0) return cudaErrorInvalidValue;
    gridDim = g;
    blockDim = b;
    emu_launches++;
    for (unsigned bz = 0; bz < g.z; bz++)
        for (unsigned by = 0; by < g.y; by++)
            for (unsigned bx = 0; bx < g.x; bx++) {
                emu_block blk(threads, cfg->dynamicSmemBytes);
                std::vector<std::thread> th;
                th.reserve(threads);
                for (unsigned t = 0; t < threads; t++)
                    th.emplace_back([&, t] {
                        emu_cur = &blk;
                        emu_tid = t;
                        blockIdx = dim3(bx, by, bz);
                        threadIdx = dim3(t % b.x, t / b.x % b.y, t / (b.x * b.y));
                        std::apply(kernel, params); /* each thread gets the parameters by value */
                        blk.warp[t / 32]->arrive_and_drop();
                        blk.block.arrive_and_drop();
                    });
                for (auto &x : th) x.join();
            }
    return cudaSuccess;
}

#endif
