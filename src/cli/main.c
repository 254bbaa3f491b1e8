/* qtts entry point: dispatches `qtts <command> ...` to src/cli/cmd_*.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#ifdef QTTS_HAVE_CUDA
#include "backend_cuda.h"
#endif

/* The version, the backends this build has and, with CUDA, the GPUs it sees
 * (or why it sees none: the first thing to check when --backend auto picks
 * the CPU). */
static int cmd_version(int argc, char **argv) {
    (void)argc, (void)argv;
#ifdef QTTS_HAVE_CUDA
    char gpus[2048];
    qtts_backend_cuda_describe(gpus, sizeof gpus);
    printf("qtts 0.1.0 (backends: cpu, cuda)\n%s\n", gpus);
#else
    printf("qtts 0.1.0 (backends: cpu)\n");
#endif
    return CLI_OK;
}

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} cli_command;

static const cli_command commands[] = {
    {"version", cmd_version, "version                   print the version, the backends this build has and the GPUs it sees"},
    {"decode", qtts_cmd_decode, "decode --model DIR --codes FILE.npy --out FILE.wav   codes [frames,16] to audio"},
    {"info", qtts_cmd_info, "info MODEL_DIR [--json]   describe a model folder: variant, speakers, languages, parameter counts"},
    {"render", qtts_cmd_render, "render JOB.json [--max-batch N] [--fresh]   render a whole job (jobs/README.md)"},
    {"synth", qtts_cmd_synth, "synth --model DIR --text T --out F   speak one text into an audio file"},
    {"tokenize", qtts_cmd_tokenize, "tokenize --tokenizer DIR  print the Qwen2 token ids of a text (--file F or stdin)"},
};

int cli_report(const char *cmd, const qtts_err *err) {
    fprintf(stderr, "qtts %s: %s: %s\n", cmd, qtts_status_str(err->status), err->msg);
    return CLI_FAIL;
}

bool cli_count_option(const char *cmd, const char *opt, const char *arg, int *out) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < 0 || v > 1000000) {
        fprintf(stderr, "qtts %s: --%s: expected a non-negative integer, got '%s'\n", cmd, opt, arg);
        return false;
    }
    *out = (int)v;
    return true;
}

static void usage(FILE *f) {
    fprintf(f, "usage: qtts <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %s\n", commands[i].help);
    fprintf(f, "\n`qtts <command> --help` describes each command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qtts: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
