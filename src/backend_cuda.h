/* CUDA backend: the op table of backend.h on one GPU, one stream, cuBLAS for
 * the large GEMMs and the kernels of kernels/ for everything else. Storage:
 * weights of 2+ dims (matrices, embedding tables, conv kernels) become bf16
 * on upload whatever the checkpoint dtype (F32/F16 are rounded to nearest
 * even); 1-dim weights (norm weights, biases, snake alpha/beta, layer
 * scales) stay fp32. Activations are fp32. Only in builds with
 * QTTS_HAVE_CUDA (CMake: QTTS_CUDA=ON with nvcc found). */
#ifndef QTTS_BACKEND_CUDA_H
#define QTTS_BACKEND_CUDA_H

#include "backend.h"

#ifdef QTTS_HAVE_CUDA
/* Select GPU p->device and set up its stream, cuBLAS handle and NVTX domain
 * "qtts", with p's cuda_* choices (NULL: qtts_backend_default_params). Fails
 * with QTTS_ERR_DEVICE and a message when there is no usable GPU ("no CUDA
 * device: cudaGetDeviceCount returned ..."). Free with qtts_backend_free. */
qtts_status qtts_backend_cuda_init(qtts_backend *be, const qtts_backend_params *p, qtts_err *err);

/* The ops return nothing, so a failed launch, a CUDA or cuBLAS error or a
 * misuse (e.g. an f32 matrix) is recorded, first one wins, and reported
 * here: this synchronises the stream and returns QTTS_ERR_DEVICE with the op
 * and the CUDA message, or QTTS_OK. Call it once per step or per job. */
qtts_status qtts_backend_cuda_check(qtts_backend *be, qtts_err *err);
/* The op table (no GPU needed: tests check that every op is set). */
const qtts_ops *qtts_backend_cuda_ops(void);
/* Number of usable GPUs (0 when the driver or the device is missing). */
int qtts_backend_cuda_device_count(void);
/* One line per GPU into buf ("GPU 0: NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB,
 * 132 SMs"), or why there is none (the CUDA runtime's message). */
void qtts_backend_cuda_describe(char *buf, size_t n);
#endif

#endif
