/* The kernels of kernels/ (the .cu files) on the CPU, for tests without a GPU
 * (tests/test_kernels_emu.cpp, and the emulated CUDA backend: runtime.cpp).
 * This replaces the CUDA headers: the .cu
 * files compile as C++ (they launch through launch() in common.cuh, never
 * <<<>>>), and cudaLaunchKernelEx runs the grid here:
 *   - blocks one after another (a cooperative launch's all at once, on
 *     EMU_SMS emulated multiprocessors); a block's threads are fibers on
 *     one OS thread, each run until it reaches a barrier, spins
 *     (__nanosleep) or returns, in ascending order in one block and
 *     descending in the next (the other way round in the next launch), so
 *     that a thread reading what another writes with no barrier between
 *     them reads, in one of the orders, what was there before (poison, or a
 *     stale value);
 *   - __syncthreads is a barrier of the block's fibers, __syncwarp and the
 *     warp shuffles one of the warp's (a shuffle writes the lane's value,
 *     waits, reads its partner's, waits); a thread that returns drops out of
 *     both, as an exited thread stops counting at a CUDA barrier;
 *   - __shared__ variables are function statics (blocks do not overlap;
 *     a cooperative kernel must keep its shared memory in DYN_SHARED),
 *     DYN_SHARED the launch's dynamicSmemBytes; both are filled per block
 *     with 0xff bytes (EMU_POISON), as is every cudaMalloc: what a GPU leaves
 *     undefined reads here as NaN (float and bf16) or -1 (integers), so
 *     that a kernel reading memory nobody wrote fails its test instead of
 *     passing on zeros that a GPU would not have;
 *   - device memory is host memory, allocated at its exact size (under
 *     ASan a read past a buffer's end is caught); PDL's griddepcontrol is
 *     compiled out (it sits under __CUDA_ARCH__).
 * What this checks: index arithmetic, bounds, the split of work between
 * threads, warps and blocks, and that every barrier is reached by the
 * threads it waits for (a wrong one deadlocks or races visibly). What it
 * cannot: timing, occupancy, the GPU memory model, fp32 results bit for bit
 * (the host libm is not the device's). It is not a substitute for the GPU
 * run (scripts/gpu_check.sh). */
#ifndef QTTS_CUDA_EMU_H
#define QTTS_CUDA_EMU_H

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <functional>
#include <tuple>
#include <vector>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
/* __shared__ variables: statics in a section of their own, so that every
 * block starts with them poisoned (emu_run_grid) */
#define __shared__ static __attribute__((section("emu_shared"), used))
extern "C" char __start_emu_shared[] __attribute__((weak)), __stop_emu_shared[] __attribute__((weak)); /* the linker's */

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

typedef enum { cudaLaunchAttributeCooperative = 2, cudaLaunchAttributeProgrammaticStreamSerialization = 6 } cudaLaunchAttributeID;
typedef struct {
    cudaLaunchAttributeID id;
    union {
        int cooperative;
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

/* ---- fibers: a hand-written x86-64 stack switch (swapcontext makes a
 * signal-mask system call per switch, 85% of an emulated generator run, and
 * under ASan its interceptor clears the shadow of the whole new stack at
 * every switch); ucontext off x86-64. ASan is told of each switch
 * (__sanitizer_start/finish_switch_fiber), so it checks the kernels' memory
 * accesses on the fibers' stacks as on any other. ---- */
#if defined(__x86_64__)
#define EMU_FAST_SWITCH 1
struct emu_ctx {
    void *sp;
    const void *stack; /* the stack's lowest address and size, for ASan (the */
    size_t size;       /* scheduler's are learnt on its first switch to a fiber) */
};
/* runtime.cpp: push the callee-saved registers, save the stack pointer in
 * *from, load to, pop, return into the other fiber */
extern "C" void emu_switch(void **from, void *to);
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
/* Switches go between the scheduler and a fiber, so the side that resumes
 * us is always the one we switched to: ASan's "where we came from" is to's
 * stack. from_dead: from never runs again (its fake stack is dropped). */
static inline void emu_ctx_switch(emu_ctx *from, emu_ctx *to, bool from_dead = false) {
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(from_dead ? nullptr : &fake, to->stack, to->size);
    emu_switch(&from->sp, to->sp);
    __sanitizer_finish_switch_fiber(fake, &to->stack, &to->size);
}
/* A fiber's first instructions: where the scheduler's stack is. */
static inline void emu_fiber_enter(emu_ctx *sched) { __sanitizer_finish_switch_fiber(nullptr, &sched->stack, &sched->size); }
/* A reused stack may keep the shadow of a dead fiber's last frames. */
static inline void emu_stack_clean(char *stack, size_t size) { ASAN_UNPOISON_MEMORY_REGION(stack, size); }
#else
static inline void emu_ctx_switch(emu_ctx *from, emu_ctx *to, bool from_dead = false) {
    (void)from_dead;
    emu_switch(&from->sp, to->sp);
}
static inline void emu_fiber_enter(emu_ctx *sched) { (void)sched; }
static inline void emu_stack_clean(char *stack, size_t size) { (void)stack, (void)size; }
#endif
#else
typedef ucontext_t emu_ctx;
static inline void emu_ctx_switch(emu_ctx *from, emu_ctx *to) { swapcontext(from, to); }
#endif

/* The byte that fills memory a GPU leaves undefined (fresh device memory,
 * static and dynamic shared memory): NaN as a float or bf16, -1 as an integer. */
#define EMU_POISON 0xff

/* ---- the running block: its threads are fibers on one OS
 * thread, switched at barriers: cheap enough for the thousands of launches
 * of a generator run. ---- */
struct emu_bar {
    unsigned live = 0, arrived = 0; /* threads still running; those waiting */
    unsigned long gen = 0;          /* completed phases */
};
struct emu_block {
    emu_bar block;
    std::vector<emu_bar> warp;
    std::vector<uint64_t> xchg; /* [warps][32]: shuffle values */
    std::vector<unsigned char> dyn;
    std::vector<emu_ctx> ctx;
    std::vector<char> done;
    emu_ctx sched{};
    std::function<void()> body; /* the kernel with its parameters */
    dim3 idx;                   /* blockIdx */
    bool down = false;          /* its threads run in descending order (emu_run_grid) */
    emu_block(unsigned threads, size_t dyn_bytes)
        : warp((threads + 31) / 32), xchg((threads + 31) / 32 * 32), dyn(dyn_bytes + 16, EMU_POISON), ctx(threads), done(threads, 0) {
        block.live = threads;
        for (unsigned w = 0; w < warp.size(); w++) warp[w].live = threads - 32 * w < 32 ? threads - 32 * w : 32;
    }
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim; /* one launch at a time */
inline thread_local emu_block *emu_cur;
inline thread_local unsigned emu_tid;

static inline void emu_yield(void) { emu_ctx_switch(&emu_cur->ctx[emu_tid], &emu_cur->sched); }
/* Arrive and wait for the phase to complete (every live participant arrived). */
static inline void emu_wait(emu_bar &b) {
    unsigned long g = b.gen;
    if (++b.arrived == b.live) {
        b.arrived = 0;
        b.gen++;
        return;
    }
    while (b.gen == g) emu_yield();
}
/* A thread that returns stops counting, as an exited thread at a CUDA barrier. */
static inline void emu_leave(emu_bar &b) {
    b.live--;
    if (b.live > 0 && b.arrived == b.live) {
        b.arrived = 0;
        b.gen++;
    }
}

#define DYN_SHARED(T, name) T *name = (T *)emu_cur->dyn.data()

static inline void __syncthreads(void) { emu_wait(emu_cur->block); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void)mask;
    emu_wait(emu_cur->warp[emu_tid / 32]);
}
/* The warp's exchange: each lane posts v, then reads lane src's value (its
 * own where src is outside the warp). */
template <typename T>
static inline T emu_shuffle(T v, unsigned src) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a word");
    unsigned w = emu_tid / 32, lane = emu_tid % 32;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    emu_cur->xchg[w * 32 + lane] = bits;
    __syncwarp();
    if (src < 32) bits = emu_cur->xchg[w * 32 + src];
    __syncwarp();
    T r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    (void)mask;
    return emu_shuffle(v, (emu_tid % 32) ^ (unsigned)lane_mask);
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
    (void)mask;
    return emu_shuffle(v, emu_tid % 32 + delta);
}
/* A spinning thread (the persistent kernel's grid barrier) lets the others run. */
static inline void __nanosleep(unsigned ns) {
    (void)ns;
    emu_yield();
}
static inline void __threadfence(void) {} /* one OS thread: every write is visible */
template <typename T>
static inline T atomicAdd(T *p, T v) { /* the grid's threads share one OS thread */
    T old = *p;
    *p = old + v;
    return old;
}

/* Launches counted, so a test can tell that a path ran (and how many kernels
 * it took), and those that asked for programmatic dependent launch. */
inline long emu_launches, emu_pdl_launches;

/* Work on a stream runs at once, unless this thread is capturing a graph
 * (runtime.cpp: cudaStreamBeginCapture): then it is recorded for replay. */
inline thread_local std::vector<std::function<void()>> *emu_recording;
static inline void emu_submit(std::function<void()> f) {
    if (emu_recording) emu_recording->push_back(std::move(f));
    else f();
}

/* A fiber's life: the kernel body, leaving the barriers, then back to the
 * scheduler for good. */
inline void emu_fiber_main(void) {
    emu_block *blk = emu_cur;
    unsigned t = emu_tid;
#ifdef EMU_FAST_SWITCH
    emu_fiber_enter(&blk->sched);
#endif
    blk->body();
    emu_leave(blk->warp[t / 32]);
    emu_leave(blk->block);
    blk->done[t] = 1;
#ifdef EMU_FAST_SWITCH
    emu_ctx_switch(&blk->ctx[t], &blk->sched, true); /* never resumed */
    __builtin_unreachable();
#endif /* ucontext: returns to blk->sched (uc_link) */
}

/* A fiber that starts in emu_fiber_main on the given stack. */
#ifdef EMU_FAST_SWITCH
inline void emu_make_fiber(emu_ctx *c, char *stack, size_t size, emu_ctx *back) {
    (void)back;
    emu_stack_clean(stack, size);
    c->stack = stack;
    c->size = size;
    void **sp = (void **)(((uintptr_t)(stack + size)) & ~(uintptr_t)15);
    *--sp = nullptr;                      /* the entry's return address: never used */
    *--sp = (void *)emu_fiber_main;       /* where the first switch returns to */
    for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp rbx r12-r15 */
    c->sp = sp;
}
#else
/* (a function of its own: getcontext returns twice, which must not touch
 * the caller's loop variables) */
__attribute__((noinline)) inline void emu_make_fiber(emu_ctx *c, char *stack, size_t size, emu_ctx *back) {
    getcontext(c);
    c->uc_stack.ss_sp = stack;
    c->uc_stack.ss_size = size;
    c->uc_link = back;
    makecontext(c, emu_fiber_main, 0);
}
#endif

/* The emulated device: its multiprocessors, and the fibers one launch may
 * have at once (a cooperative grid runs all its blocks together). */
#define EMU_SMS 2
#define EMU_FIBERS 1024u

/* Run a grid: blocks one after another, or (coop: a cooperative launch,
 * whose blocks may wait for each other) all at once; a block's threads as
 * fibers, run in turn until each reaches a barrier or returns. */
template <typename... Params>
static void emu_run_grid(dim3 g, dim3 b, size_t dyn, bool coop, void (*kernel)(Params...), const std::tuple<Params...> &params) {
    enum : size_t { STACK = 128 << 10 };
    static thread_local std::unique_ptr<char[]> stacks; /* EMU_FIBERS fiber stacks, reused */
    if (!stacks) stacks.reset(new char[EMU_FIBERS * STACK]);
    unsigned threads = b.x * b.y * b.z, nblk = g.x * g.y * g.z, together = coop ? nblk : 1;
    gridDim = g;
    blockDim = b;
    emu_launches++;
    emu_block *outer = emu_cur;
    unsigned outer_tid = emu_tid;
    for (unsigned b0 = 0; b0 < nblk; b0 += together) {
        if (char *sh = __start_emu_shared) memset(sh, EMU_POISON, (size_t)(__stop_emu_shared - sh));
        std::vector<std::unique_ptr<emu_block>> blks;
        for (unsigned i = 0; i < together; i++) {
            unsigned bi = b0 + i;
            blks.emplace_back(new emu_block(threads, dyn));
            emu_block &blk = *blks.back();
            blk.idx = dim3(bi % g.x, bi / g.x % g.y, bi / (g.x * g.y));
            blk.down = (emu_launches + bi) & 1;
            blk.body = [&] { std::apply(kernel, params); }; /* each thread gets the parameters by value */
            for (unsigned t = 0; t < threads; t++)
                emu_make_fiber(&blk.ctx[t], stacks.get() + ((size_t)i * threads + t) * STACK, STACK, &blk.sched);
        }
        for (unsigned left = together * threads; left > 0;)
            for (auto &bp : blks) {
                emu_block &blk = *bp;
                emu_cur = &blk;
                blockIdx = blk.idx;
                for (unsigned k = 0; k < threads; k++) {
                    unsigned t = blk.down ? threads - 1 - k : k;
                    if (blk.done[t]) continue;
                    emu_tid = t;
                    threadIdx = dim3(t % b.x, t / b.x % b.y, t / (b.x * b.y));
                    emu_ctx_switch(&blk.sched, &blk.ctx[t]);
                    if (blk.done[t]) left--;
                }
            }
    }
    emu_cur = outer;
    emu_tid = outer_tid;
}

template <typename... Params, typename... Args>
static cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t *cfg, void (*kernel)(Params...), Args &&...args) {
    std::tuple<Params...> params(std::forward<Args>(args)...); /* coerced as the real launch does */
    dim3 g = cfg->gridDim, b = cfg->blockDim;
    unsigned threads = b.x * b.y * b.z;
    if (threads == 0 || threads > 1024 || g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535) return cudaErrorInvalidValue;
    bool coop = false;
    for (unsigned i = 0; i < cfg->numAttrs; i++) {
        if (cfg->attrs[i].id == cudaLaunchAttributeCooperative && cfg->attrs[i].val.cooperative) coop = true;
        if (cfg->attrs[i].id == cudaLaunchAttributeProgrammaticStreamSerialization && cfg->attrs[i].val.programmaticStreamSerializationAllowed)
            emu_pdl_launches++; /* a stream runs its work in order here anyway */
    }
    if (coop && (size_t)g.x * g.y * g.z * threads > EMU_FIBERS) return cudaErrorCooperativeLaunchTooLarge;
    size_t dyn = cfg->dynamicSmemBytes;
    emu_submit([=] { emu_run_grid(g, b, dyn, coop, kernel, params); });
    return cudaSuccess;
}

/* Blocks of `threads` one emulated multiprocessor holds: its share of the fibers. */
template <typename... Params>
static cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, void (*kernel)(Params...), int threads, size_t smem) {
    (void)kernel;
    if (threads <= 0 || threads > 1024) return cudaErrorInvalidValue;
    *n = smem <= (227u << 10) ? (int)(EMU_FIBERS / EMU_SMS / (unsigned)threads) : 0;
    return cudaSuccess;
}

#endif
