/* libFuzzer target for segmentation: the first byte picks max_tokens (8..71), the rest is
 * the text. Checks the invariants of tests/test_segment.c: segments in order, non-empty,
 * within the limit, only whitespace between them, covering the normalised text. */
#include "fuzz_common.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const qtts_tokenizer *tok = fuzz_tokenizer();
    qtts_segment_params p = {8 + data[0] % 64};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    qtts_segmentation s;
    qtts_err err = {0};
    qtts_status st = qtts_segment_text(tok, text, len, &p, &s, &err);
    if (qtts_utf8_find_invalid(text, len) != len) {
        if (st != QTTS_ERR_TEXT) abort();
        return 0;
    }
    if (st != QTTS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    size_t pos = 0;
    for (int i = 0; i < s.n; i++) {
        const qtts_segment *g = &s.seg[i];
        if (g->start < pos || g->end <= g->start || g->end > s.len) abort();
        for (size_t k = pos; k < g->start; k++)
            if (s.text[k] != ' ' && s.text[k] != '\n') abort();
        int n = -1;
        if (qtts_tokenizer_count(tok, s.text + g->start, g->end - g->start, &n, &err) || n != g->n_tokens ||
            n > p.max_tokens)
            abort();
        pos = g->end;
    }
    for (size_t k = pos; k < s.len; k++)
        if (s.text[k] != ' ' && s.text[k] != '\n') abort();
    qtts_segmentation_free(&s);
    return 0;
}
