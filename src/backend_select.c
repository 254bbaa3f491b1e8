/* Backend selection by name, so that the CLI and the engine need no #ifdefs. */
#include "backend.h"
#include "backend_replay.h"
#ifdef QTTS_HAVE_CUDA
#include "backend_cuda.h"
#endif

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

bool qtts_cuda_available(void) {
#ifdef QTTS_HAVE_CUDA
    return qtts_backend_cuda_device_count() > 0;
#else
    return false;
#endif
}

qtts_backend_params qtts_backend_default_params(void) {
    return (qtts_backend_params){.device = 0, .cuda_graphs = true, .cuda_pdl = false, .cuda_persistent = false, .cuda_conv_tile = 0};
}

qtts_status qtts_backend_init_named(qtts_backend *be, const char *name, const qtts_backend_params *p, qtts_err *err) {
    qtts_backend_params bp = p ? *p : qtts_backend_default_params();
    char nm[32];
    if (!name || !*name || !strcmp(name, "auto")) name = qtts_cuda_available() ? "cuda" : "cpu";
    /* "cuda:N" names the device too */
    const char *colon = strchr(name, ':');
    if (colon && colon - name == 4 && !strncmp(name, "cuda", 4)) {
        char *end;
        long d = strtol(colon + 1, &end, 10);
        if (*end || end == colon + 1 || d < 0 || d > INT_MAX) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "backend '%s': expected cuda:N", name);
        bp.device = (int)d;
        snprintf(nm, sizeof nm, "cuda");
        name = nm;
    }
    if (!strcmp(name, "cpu")) return qtts_backend_cpu_init(be, err);
    if (!strcmp(name, "cpu-replay")) return qtts_backend_replay_init(be, err);
    if (!strcmp(name, "cuda")) {
#ifdef QTTS_HAVE_CUDA
        return qtts_backend_cuda_init(be, &bp, err);
#else
        (void)bp;
        return qtts_fail(err, QTTS_ERR_UNSUPPORTED, "backend cuda: this build has no CUDA backend (configure with nvcc and QTTS_CUDA=ON)");
#endif
    }
    return qtts_fail(err, QTTS_ERR_INVALID_ARG, "unknown backend '%s' (auto, cpu, cuda, cuda:N or cpu-replay)", name);
}

qtts_status qtts_backend_check(qtts_backend *be, qtts_err *err) {
    return be->ops && be->ops->check ? be->ops->check(be, err) : QTTS_OK;
}
