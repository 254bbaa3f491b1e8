/* Shared by the fuzz harnesses: the tokenizer they run against, loaded once. The folder is
 * $QTTS_FUZZ_TOKENIZER when set (harness-only convenience), else the repository's
 * ../shared/data/qwen2-tokenizer found from this file's compiled-in path. */
#ifndef QTTS_FUZZ_COMMON_H
#define QTTS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

/* which: 0 = plain Qwen2 split pattern, 1 = the official processor's (fix_mistral_regex). */
static const qtts_tokenizer *fuzz_tokenizer_pattern(int which) {
    static qtts_tokenizer *toks[2];
    if (toks[which]) return toks[which];
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
    if (qtts_tokenizer_load_with(&toks[which], dir, which ? QTTS_PRETOK_MISTRAL_FIX : QTTS_PRETOK_QWEN2, &err)) {
        fprintf(stderr, "fuzz: cannot load tokenizer from %s: %s (set QTTS_FUZZ_TOKENIZER)\n", dir, err.msg);
        abort();
    }
    return toks[which];
}

static const qtts_tokenizer *fuzz_tokenizer(void) { return fuzz_tokenizer_pattern(0); }

#endif
