/* tests/emu: every kernels/ .cu file compiled as C++ for the CPU threads of
 * cuda_emu.h: the launchers the emulated CUDA backend calls. */
#include "../../kernels/attention.cu"
#include "../../kernels/conv.cu"
#include "../../kernels/elementwise.cu"
#include "../../kernels/gemv.cu"
#include "../../kernels/norm.cu"
#include "../../kernels/predictor.cu"
#include "../../kernels/sample.cu"
