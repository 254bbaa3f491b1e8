/* libFuzzer target for the tokenizer: any bytes. Valid UTF-8 must encode, count the same,
 * and decode back to text whose NFC equals NFC(input); invalid UTF-8 must be rejected with
 * QTTS_ERR_TEXT at the first bad offset. Both split patterns (Qwen2, official processor). Crashes, leaks and UB are caught by the sanitizers. */
#include <utf8proc.h>

#include "fuzz_common.h"

static void nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *on) {
    utf8proc_ssize_t r = utf8proc_map(s, (utf8proc_ssize_t)n, out, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) abort();
    *on = (size_t)r;
}

static int one(const qtts_tokenizer *tok, const uint8_t *data, size_t size) {
    int32_t *ids = NULL;
    int n = 0, n2 = -1;
    qtts_err err = {0};
    qtts_status st = qtts_tokenizer_encode(tok, (const char *)data, size, &ids, &n, &err);
    size_t bad = qtts_utf8_find_invalid((const char *)data, size);
    if (bad != size) {
        char want[64];
        snprintf(want, sizeof want, "offset %zu", bad);
        if (st != QTTS_ERR_TEXT || !strstr(err.msg, want) || ids) abort();
        return 0;
    }
    if (st != QTTS_OK) abort();
    if (qtts_tokenizer_count(tok, (const char *)data, size, &n2, &err) != QTTS_OK || n2 != n) abort();
    char *txt;
    size_t tl;
    if (qtts_tokenizer_decode(tok, ids, n, &txt, &tl, &err) != QTTS_OK) abort();
    uint8_t *a, *b;
    size_t an, bn;
    nfc(data, size, &a, &an);
    nfc((const uint8_t *)txt, tl, &b, &bn);
    if (an != bn || memcmp(a, b, an)) abort();
    free(a);
    free(b);
    free(txt);
    free(ids);
    return 0;
}

/* Both split patterns on every input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(fuzz_tokenizer_pattern(0), data, size);
    return one(fuzz_tokenizer_pattern(1), data, size);
}
