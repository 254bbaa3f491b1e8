/* tests/emu: the CUDA runtime and cuBLAS calls of cuda_runtime_api.h and
 * cublas_v2.h on the host, so that src/backend_cuda.c runs unchanged
 * without a GPU (the emulated build: qtts_core_emu). One device of 80 GB;
 * "device" memory is host memory (256-byte aligned); work on a stream runs
 * at once, in order, so synchronising is a no-op; a stream capture records
 * the work of its thread (kernels, copies, memsets, GEMMs) and the graph
 * replays it, arguments as they were at capture, memory read at replay, as
 * on the GPU. What a capture may not do (synchronise, allocate, free) fails
 * the capture as it would on the GPU. GemmEx computes in fp32 from bf16 or
 * fp32 inputs (the device's tensor cores sum in another order). */
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "cublas_v2.h"
#include "cuda_emu.h"

struct emu_graph {
    std::vector<std::function<void()>> ops;
};

namespace {
std::mutex mem_mu;
std::unordered_map<void *, size_t> live; /* allocation sizes, for cudaMemGetInfo */
size_t in_use;
constexpr size_t total_bytes = (size_t)80 << 30;
thread_local cudaError_t last_error = cudaSuccess;
thread_local bool capture_broken;

cudaError_t fail(cudaError_t e) {
    last_error = e;
    if (emu_recording) capture_broken = true;
    return e;
}
/* inside a capture: the call is not allowed there */
bool in_capture(void) { return emu_recording != nullptr; }

float load(const void *p, cudaDataType t, size_t i) {
    if (t == CUDA_R_16BF) {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return ((const float *)p)[i];
}
} // namespace

#ifdef EMU_FAST_SWITCH
/* emu_switch(void **from, void *to) for cuda_emu.h's fibers: the System V
 * callee-saved registers on the old stack, its pointer into *from, then
 * the new stack's registers and return address (MXCSR and the x87 control
 * word are left alone: no kernel changes them). */
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
#endif

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *device) {
    *device = 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = EMU_SMS; return cudaSuccess;
    case cudaDevAttrCooperativeLaunch: *value = 1; return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue);
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice);
    *prop = {};
    snprintf(prop->name, sizeof prop->name, "qtts CUDA emulator (%d SMs of fibers)", EMU_SMS);
    prop->totalGlobalMem = total_bytes;
    prop->major = 9;
    prop->multiProcessorCount = EMU_SMS;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    }
    return "unknown error";
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    *s = (cudaStream_t) new char;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete (char *)s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return in_capture() ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (in_capture()) return fail(cudaErrorStreamCaptureUnsupported);
    size_t n = (bytes + 255) / 256 * 256; /* what the device would take */
    std::lock_guard<std::mutex> g(mem_mu);
    /* the exact size: under ASan a read past the end is caught, where the
     * GPU's memcheck would catch it */
    if (in_use + n > total_bytes || posix_memalign(p, 256, bytes ? bytes : 1)) return fail(cudaErrorMemoryAllocation);
    memset(*p, EMU_POISON, bytes); /* undefined on the GPU */
    live[*p] = n;
    in_use += n;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (in_capture()) return fail(cudaErrorStreamCaptureUnsupported);
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> g(mem_mu);
    auto it = live.find(p);
    if (it == live.end()) return fail(cudaErrorInvalidValue);
    in_use -= it->second;
    live.erase(it);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    std::lock_guard<std::mutex> g(mem_mu);
    *total = total_bytes;
    *free_bytes = total_bytes - in_use;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    (void)kind;
    if (in_capture()) return fail(cudaErrorStreamCaptureUnsupported);
    memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    (void)kind;
    (void)s;
    emu_submit([=] { memmove(dst, src, bytes); });
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
    (void)s;
    emu_submit([=] { memset(p, value, bytes); });
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    (void)s;
    (void)mode;
    if (in_capture()) return fail(cudaErrorStreamCaptureUnsupported);
    emu_recording = new std::vector<std::function<void()>>;
    capture_broken = false;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    (void)s;
    *g = nullptr;
    if (!in_capture()) return fail(cudaErrorInvalidValue);
    auto *ops = emu_recording;
    emu_recording = nullptr;
    if (capture_broken) {
        delete ops;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    *g = new emu_graph{std::move(*ops)};
    delete ops;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    *e = new emu_graph(*g);
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
    (void)s;
    for (auto &op : e->ops) emu_submit(op);
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (cublasHandle_t) new char;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete (char *)h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    (void)h;
    (void)s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    (void)h;
    (void)ws;
    (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE"; }
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta, void *C,
                            cudaDataType ct, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)h;
    (void)compute;
    (void)algo;
    if (m < 0 || n < 0 || k < 0 || ct != CUDA_R_32F || lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    float al = *(const float *)alpha, be = *(const float *)beta;
    emu_submit([=] {
        float *c = (float *)C;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                float acc = 0.0f;
                for (int p = 0; p < k; p++) {
                    size_t ai = ta == CUBLAS_OP_N ? (size_t)i + (size_t)p * lda : (size_t)p + (size_t)i * lda;
                    size_t bi = tb == CUBLAS_OP_N ? (size_t)p + (size_t)j * ldb : (size_t)j + (size_t)p * ldb;
                    acc += load(A, at, ai) * load(B, bt, bi);
                }
                float *cij = c + (size_t)i + (size_t)j * ldc;
                *cij = al * acc + (be != 0.0f ? be * *cij : 0.0f);
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} /* extern "C" */
