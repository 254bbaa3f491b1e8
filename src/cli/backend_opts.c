/* The backend options the model-running commands share (cli.h:
 * cli_backend): parsed into qtts_backend_params, checked once here so that
 * every command gives the same messages. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>

#include "cli.h"

const char *cli_default_backend(void) {
    const char *b = getenv("QTTS_BACKEND");
    return b && *b ? b : "auto";
}

void cli_backend_init(cli_backend *b) {
    b->name = cli_default_backend();
    b->device_given = false;
    b->params = qtts_backend_default_params();
}

void cli_backend_usage(FILE *f, int indent) {
    static const char *const lines[][2] = {
        {"--backend B", "auto (default: cuda when a GPU is present, else cpu; $QTTS_BACKEND"},
        {"", "overrides), cpu, cuda or cuda:N"},
        {"--device N", "the GPU to use (default 0)"},
        {"--cuda-graphs on|off", "replay each step as a CUDA graph (default on)"},
        {"--cuda-pdl on|off", "programmatic dependent launch between kernels (default off:"},
        {"", "not yet measured on a GPU)"},
        {"--cuda-persistent on|off", "the code predictor's frame as one persistent kernel, up to"},
        {"", "4 rows (default off: not yet measured on a GPU)"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        int w = (int)strlen(lines[i][0]);
        if (w + 3 > indent) fprintf(f, "  %s\n  %*s%s\n", lines[i][0], indent - 2, "", lines[i][1]);
        else fprintf(f, "  %-*s%s\n", indent - 2, lines[i][0], lines[i][1]);
    }
}

static int on_off(const char *arg, bool *out, const char *opt, const char *cmd) {
    if (!strcmp(arg, "on")) *out = true;
    else if (!strcmp(arg, "off")) *out = false;
    else {
        fprintf(stderr, "qtts %s: %s: '%s' is not on or off\n", cmd, opt, arg);
        return -1;
    }
    return 1;
}

int cli_backend_option(cli_backend *b, int c, const char *arg, const char *cmd) {
    switch (c) {
    case CLI_O_BACKEND: b->name = arg; return 1;
    case CLI_O_DEVICE: {
        char *end;
        errno = 0;
        long d = strtol(arg, &end, 10);
        if (errno || end == arg || *end || d < 0 || d > INT_MAX) {
            fprintf(stderr, "qtts %s: --device: expected a GPU index (0, 1, ...), got '%s'\n", cmd, arg);
            return -1;
        }
        b->params.device = (int)d;
        b->device_given = true;
        return 1;
    }
    case CLI_O_GRAPHS: return on_off(arg, &b->params.cuda_graphs, "--cuda-graphs", cmd);
    case CLI_O_PDL: return on_off(arg, &b->params.cuda_pdl, "--cuda-pdl", cmd);
    case CLI_O_PERSISTENT: return on_off(arg, &b->params.cuda_persistent, "--cuda-persistent", cmd);
    }
    return 0;
}

const char *cli_backend_resolve(const cli_backend *b, const char *cmd) {
    const char *name = b->name && *b->name ? b->name : "auto";
    if (!b->device_given) return name;
    if (!strcmp(name, "auto")) return "cuda";
    if (!strncmp(name, "cpu", 3)) {
        fprintf(stderr, "qtts %s: --device %d: the %s backend has no devices (use --backend cuda)\n", cmd, b->params.device, name);
        return NULL;
    }
    return name;
}
