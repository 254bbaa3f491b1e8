/* qtts command-line front end: one function per sub-command. Only the CLI
 * chooses exit codes: 0 success, 1 runtime failure, 2 usage error. */
#ifndef QTTS_CLI_H
#define QTTS_CLI_H

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

/* The backend when --backend is not given: $QTTS_BACKEND, else "auto" (CUDA
 * when this build has it and a GPU is present, else the CPU). */
const char *cli_default_backend(void);
/* backend name plus --device N (-1: none given) as "cuda:N"; buf holds the result. */
const char *cli_backend_name(const char *backend, int device, char *buf, size_t n);

/* Print "qtts: <status>: <msg>" to stderr and return CLI_FAIL. */
int cli_report(const char *cmd, const qtts_err *err);

#endif
