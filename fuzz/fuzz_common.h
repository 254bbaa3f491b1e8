/* Shared by the fuzz harnesses: the tokenizer they run against, loaded once. The folder is
 * $QTTS_FUZZ_TOKENIZER when set (harness-only convenience), else the repository's
 * ../shared/data/qwen2-tokenizer found from this file's compiled-in path. */
#ifndef QTTS_FUZZ_COMMON_H
#define QTTS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static const qtts_tokenizer *fuzz_tokenizer(void) {
    static qtts_tokenizer *tok;
    if (tok) return tok;
    char dir[4096];
    const char *env = getenv("QTTS_FUZZ_TOKENIZER");
    if (env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        strncat(dir, "/../../shared/data/qwen2-tokenizer", sizeof dir - strlen(dir) - 1);
    }
    qtts_err err = {0};
    if (qtts_tokenizer_load(&tok, dir, &err)) {
        fprintf(stderr, "fuzz: cannot load tokenizer from %s: %s (set QTTS_FUZZ_TOKENIZER)\n", dir, err.msg);
        abort();
    }
    return tok;
}

#endif
