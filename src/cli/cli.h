/* qtts command-line front end: one function per sub-command. Only the CLI
 * chooses exit codes: 0 success, 1 runtime failure, 2 usage error. */
#ifndef QTTS_CLI_H
#define QTTS_CLI_H

#include <stdio.h>

#include "util.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* qtts info MODEL_DIR [--json]: variant, dimensions, tables, parameter counts. */
int qtts_cmd_info(int argc, char **argv);
int qtts_cmd_tokenize(int argc, char **argv);
/* qtts synth: one text to an audio file on the CPU reference path. */
int qtts_cmd_synth(int argc, char **argv);
/* qtts render: a whole job file with continuous batching and resumable output. */
int qtts_cmd_render(int argc, char **argv);

/* qtts decode --model DIR --codes FILE.npy --out FILE: speech-tokenizer decode to audio. */
int qtts_cmd_decode(int argc, char **argv);

/* The backend options of every command that runs a model:
 *   --backend B, --device N, --cuda-graphs on|off, --cuda-pdl on|off,
 *   --cuda-persistent on|off
 * A command puts CLI_BACKEND_LONGOPTS in its getopt_long table, hands each
 * code to cli_backend_option and, after parsing, opens the backend that
 * cli_backend_resolve names with `params`. */
typedef struct cli_backend {
    const char *name;           /* --backend; default cli_default_backend() */
    bool device_given;          /* --device N was given */
    qtts_backend_params params; /* --device and the --cuda-* choices */
} cli_backend;

enum { CLI_O_BACKEND = 1000, CLI_O_DEVICE, CLI_O_GRAPHS, CLI_O_PDL, CLI_O_PERSISTENT };
#define CLI_BACKEND_LONGOPTS                                                                                           \
    {"backend", required_argument, 0, CLI_O_BACKEND}, {"device", required_argument, 0, CLI_O_DEVICE},                 \
        {"cuda-graphs", required_argument, 0, CLI_O_GRAPHS}, {"cuda-pdl", required_argument, 0, CLI_O_PDL},           \
        {"cuda-persistent", required_argument, 0, CLI_O_PERSISTENT}

/* Help lines for the options above, indented to column `indent`. */
void cli_backend_usage(FILE *f, int indent);
void cli_backend_init(cli_backend *b);
/* getopt_long's code c with its argument: 1 when it was one of ours and
 * valid, 0 when c is not one of ours, -1 for a bad value (printed, with
 * `cmd` naming the command). */
int cli_backend_option(cli_backend *b, int c, const char *arg, const char *cmd);
/* The backend name to open after parsing ("auto" with --device becomes
 * "cuda": a device index asks for a GPU), or NULL with the problem printed
 * (--device with a CPU backend). */
const char *cli_backend_resolve(const cli_backend *b, const char *cmd);

/* The backend when --backend is not given: $QTTS_BACKEND, else "auto" (CUDA
 * when this build has it and a GPU is present, else the CPU). */
const char *cli_default_backend(void);

/* The value of count option --`opt` of command `cmd`: a whole decimal number
 * in [0, 1000000], nothing after it. Otherwise the problem is printed and
 * the result is false (out untouched). */
bool cli_count_option(const char *cmd, const char *opt, const char *arg, int *out);

/* Print "qtts: <status>: <msg>" to stderr and return CLI_FAIL. */
int cli_report(const char *cmd, const qtts_err *err);

#endif
