/* `qtts tokenize`: the whole input (file or stdin) as one text through the Qwen2 tokenizer;
 * prints the ids on one line separated by single spaces. A debugging and parity tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer.h"

static int tokenize_usage(FILE *f) {
    fprintf(f, "usage: qtts tokenize --tokenizer DIR [--file F] [--pattern auto|qwen2|mistral-fix]\n"
               "  --tokenizer DIR  folder with vocab.json + merges.txt (or tokenizer.json) and tokenizer_config.json\n"
               "  --file F         text to tokenize (default: stdin), taken whole as one text\n"
               "  --pattern P      pre-tokenizer split: auto (default) decides from DIR/config.json as the\n"
               "                   official processor does; qwen2 = plain Qwen2; mistral-fix = the pattern\n"
               "                   transformers 4.57.3 installs for the released Qwen3-TTS checkpoints\n");
    return f == stdout ? CLI_OK : CLI_USAGE;
}

static qtts_status read_stream(FILE *f, char **data, size_t *len, qtts_err *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return qtts_fail(err, QTTS_ERR_OOM, "stdin buffer");
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                return qtts_fail(err, QTTS_ERR_OOM, "stdin buffer");
            }
            buf = b;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return qtts_fail(err, QTTS_ERR_IO, "stdin: read error");
    }
    *data = buf;
    *len = n;
    return QTTS_OK;
}

int qtts_cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *file = NULL;
    qtts_pretok pretok = QTTS_PRETOK_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return tokenize_usage(stdout);
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--pattern") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) pretok = QTTS_PRETOK_AUTO;
            else if (!strcmp(v, "qwen2")) pretok = QTTS_PRETOK_QWEN2;
            else if (!strcmp(v, "mistral-fix")) pretok = QTTS_PRETOK_MISTRAL_FIX;
            else {
                fprintf(stderr, "qtts tokenize: --pattern must be auto, qwen2 or mistral-fix, not '%s'\n", v);
                return tokenize_usage(stderr);
            }
        }
        else {
            fprintf(stderr, "qtts tokenize: unknown or incomplete option '%s'\n", argv[i]);
            return tokenize_usage(stderr);
        }
    }
    if (!dir) {
        fprintf(stderr, "qtts tokenize: --tokenizer DIR is required\n");
        return tokenize_usage(stderr);
    }
    qtts_err err = {0};
    qtts_status st;
    qtts_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int n = 0;
    QTTS_TRY(qtts_tokenizer_load_with(&tok, dir, pretok, &err));
    QTTS_TRY(file ? qtts_read_file(file, &text, &len, &err) : read_stream(stdin, &text, &len, &err));
    QTTS_TRY(qtts_tokenizer_encode(tok, text, len, &ids, &n, &err));
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    if (fflush(stdout)) st = qtts_fail(&err, QTTS_ERR_IO, "stdout: write error");
cleanup:
    free(ids);
    free(text);
    qtts_tokenizer_free(tok);
    return st ? cli_report("tokenize", &err) : CLI_OK;
}
