/* tests/emu: what the kernels/ .cu files include: the runtime API and the
 * kernel execution on CPU threads (C++). */
#include "cuda_runtime_api.h"
#include "cuda_emu.h"
