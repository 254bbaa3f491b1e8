/* libFuzzer target: arbitrary bytes as one safetensors file image through
 * qtts_st_parse; whatever parses is looked up with qtts_st_get and converted
 * with qtts_st_to_f32 / qtts_st_rows_to_f32, so every accepted offset is read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qtts_st_tensor *ts = NULL;
    char *names = NULL;
    int n = 0;
    qtts_err err = {0};
    if (qtts_st_parse(data, size, "fuzz.safetensors", 0, &ts, &n, &names, &err) != QTTS_OK) return 0;
    qtts_safetensors st = {.n_tensors = n, .tensors = ts};
    float sink = 0;
    for (int i = 0; i < n; i++) {
        const qtts_st_tensor *t;
        if (qtts_st_get(&st, ts[i].name, QTTS_DTM_FLOAT, ts[i].ndim, ts[i].shape, &t, &err) != QTTS_OK) continue;
        if (t->numel > (1 << 20)) continue;
        float *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *buf);
        if (!buf) continue;
        qtts_st_to_f32(t, buf);
        if (t->ndim >= 2 && t->shape[0] > 0) qtts_st_rows_to_f32(t, t->shape[0] - 1, 1, buf);
        for (int64_t k = 0; k < t->numel; k++) sink += buf[k];
        free(buf);
    }
    /* a wrong-shape lookup formats both shapes into the message */
    if (n > 0) {
        const qtts_st_tensor *t;
        int64_t shape[QTTS_ST_MAX_DIMS] = {7, 7, 7, 7, 7, 7, 7, 7};
        (void)qtts_st_get(&st, ts[0].name, QTTS_DTM(QTTS_DT_BOOL), QTTS_ST_MAX_DIMS, shape, &t, &err);
    }
    int64_t p, b;
    qtts_st_count(&st, "", NULL, &p, &b);
    (void)sink;
    free(ts);
    free(names);
    return 0;
}
