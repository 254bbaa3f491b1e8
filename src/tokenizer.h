/* Qwen2 byte-level BPE text tokenizer, id-exact with Hugging Face's Qwen2TokenizerFast.
 * encode: split out added/special tokens (raw text) → NFC → Qwen2 pre-tokenizer split →
 * GPT-2 byte mapping → BPE by merge rank. decode: concatenate the tokens' bytes.
 * Read-only after load: one tokenizer serves any number of threads. */
#ifndef QTTS_TOKENIZER_H
#define QTTS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct qtts_tokenizer qtts_tokenizer;

/* Which pre-tokenizer split pattern to use. The official Qwen3-TTS processor loads its
 * tokenizer with fix_mistral_regex=True, and transformers 4.57.3 then REPLACES the Qwen2
 * pattern by a Mistral one for any folder whose config.json says transformers_version
 * 4.57.3 (the released checkpoints do): AUTO reproduces that decision from the folder's
 * config.json. QWEN2 is plain Qwen2TokenizerFast. */
typedef enum qtts_pretok {
    QTTS_PRETOK_AUTO = 0,
    QTTS_PRETOK_QWEN2,
    QTTS_PRETOK_MISTRAL_FIX,
} qtts_pretok;

/* Load from a folder holding vocab.json + merges.txt, or tokenizer.json (used when
 * vocab.json is absent). Added tokens come from tokenizer_config.json
 * `added_tokens_decoder` when that file exists, else from tokenizer.json `added_tokens`.
 * Errors name the file and what was wrong with it. qtts_tokenizer_load = AUTO. */
qtts_status qtts_tokenizer_load(qtts_tokenizer **tok, const char *dir, qtts_err *err);
qtts_status qtts_tokenizer_load_with(qtts_tokenizer **tok, const char *dir, qtts_pretok pretok, qtts_err *err);
/* The pattern in use (never AUTO). */
qtts_pretok qtts_tokenizer_pretok(const qtts_tokenizer *tok);
void qtts_tokenizer_free(qtts_tokenizer *tok);

/* Tokenize len bytes of UTF-8 (need not be NUL-terminated). *ids is malloc'd (caller
 * frees; non-NULL even when *n == 0). No BOS/EOS is added. Invalid UTF-8 is rejected
 * with QTTS_ERR_TEXT naming the byte offset: text is never silently dropped or replaced.
 * Empty text gives zero ids and QTTS_OK (emptiness is the caller's policy). */
qtts_status qtts_tokenizer_encode(const qtts_tokenizer *tok, const char *text, size_t len,
                                  int32_t **ids, int *n, qtts_err *err);
/* Token count of text, same rules as encode (used to size segments). */
qtts_status qtts_tokenizer_count(const qtts_tokenizer *tok, const char *text, size_t len, int *n,
                                 qtts_err *err);

/* Concatenate the tokens' bytes into a malloc'd NUL-terminated buffer (*len excludes the
 * NUL). Added tokens decode to their content. The bytes are returned as they are: a
 * slice of ids that cuts a multi-byte character gives incomplete UTF-8. An id outside the
 * vocabulary is QTTS_ERR_INVALID_ARG. */
qtts_status qtts_tokenizer_decode(const qtts_tokenizer *tok, const int32_t *ids, int n, char **text,
                                  size_t *len, qtts_err *err);

/* Id of a token given by its text (raw bytes, e.g. "<|im_start|>", "assistant", "\n");
 * -1 when the exact string is not one token. */
int qtts_tokenizer_token_id(const qtts_tokenizer *tok, const char *token);
/* Largest id + 1 (regular and added tokens). */
int qtts_tokenizer_n_vocab(const qtts_tokenizer *tok);

/* Offset of the first byte that does not start a valid UTF-8 sequence (overlongs,
 * surrogates and code points above U+10FFFF are invalid), or len when all is valid. */
size_t qtts_utf8_find_invalid(const char *s, size_t len);

#endif
