/* Profiler ranges: the model code marks its stages through the op table
 * (NVTX on the CUDA backend). A recording backend (CPU ops plus range hooks)
 * checks that every stage is marked, ranges nest and balance, and each
 * appears as often as the work implies: one "talker step" per frame step,
 * one "code predictor" per step, a "prefill" per prefill pass (sequences
 * started together share one), a "decoder" per decode window; and a
 * generator step, or a prefill pass, moves exactly one buffer to the host.
 * NVTX itself is only linked on CUDA builds. */
#include <stdlib.h>

#include "codec.h"
#include "generate.h"
#include "testutil.h"

#define MAXD 16
static const char *stack[MAXD];
static int depth, max_depth, unbalanced;
static int counts[8];
static const char *stages[] = {"prefill", "talker step", "code predictor", "sampling", "decoder", "host transfer"};

static void rec_push(qtts_backend *be, const char *name) {
    (void)be;
    if (depth < MAXD) stack[depth] = name;
    depth++;
    max_depth = depth > max_depth ? depth : max_depth;
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, stages[i])) counts[i]++;
}

static int to_host_calls;
static void (*cpu_to_host)(qtts_backend *, void *, const void *, size_t);
static void rec_to_host(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    to_host_calls++;
    cpu_to_host(be, dst, src, bytes);
}

static void rec_pop(qtts_backend *be) {
    (void)be;
    if (depth == 0) unbalanced++;
    else depth--;
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/models/custom_voice", QTTS_BINARY_DIR);
    if (!qtts_file_exists(dir)) return tu_skip("fixture checkpoint absent");
    qtts_backend be;
    qtts_err e = {0};
    qtts_backend_cpu_init(&be, &e);
    qtts_ops ops = *be.ops;
    ops.range_push = rec_push;
    ops.range_pop = rec_pop;
    cpu_to_host = ops.to_host;
    ops.to_host = rec_to_host;
    be.ops = &ops;
    qtts_model *m = NULL;
    CHECK(qtts_model_load(&m, &be, dir, &e) == QTTS_OK, "%s", e.msg);
    if (!m) return tu_finish("test_profile_ranges");
    int H = m->cfg.talker.hidden_size, P = 6, frames = 5;
    float *prompt = calloc((size_t)P * H, sizeof(float)), *pad = calloc((size_t)H, sizeof(float));
    uint64_t s = 3;
    for (int i = 0; i < P * H; i++) prompt[i] = tu_rand_uniform(&s);
    qtts_gen_params gp;
    qtts_gen_params_from_config(&gp, &m->gen, true);
    gp.max_frames = frames;
    gp.ignore_eos = true;
    qtts_generator *g = NULL;
    CHECK(qtts_generator_init(&g, m, 2, 32, false, &e) == QTTS_OK, "%s", e.msg);
    CHECK(qtts_generator_start(g, 0, prompt, P, NULL, 0, pad, &gp, &e) == QTTS_OK, "%s", e.msg);
    CHECK(qtts_generator_start(g, 1, prompt, P, NULL, 0, pad, &gp, &e) == QTTS_OK, "%s", e.msg);
    int steps = 0, host_before = to_host_calls;
    while (qtts_generator_active(g) > 0) {
        qtts_generator_step(g, &e);
        steps++;
    }
    CHECK(steps == frames, "%d steps", steps);
    CHECK(counts[0] == 2, "prefill ranges %d, want 2", counts[0]);
    CHECK(counts[1] == steps, "talker step ranges %d, want %d", counts[1], steps);
    CHECK(counts[2] == steps, "code predictor ranges %d, want %d", counts[2], steps);
    /* sampling: one per prefill and per step for c0; the predictor's 15 draws
     * are inside its range (one op sequence, replayed as a CUDA graph) */
    CHECK(counts[3] == 2 + steps, "sampling ranges %d, want %d", counts[3], 2 + steps);
    /* at most one device-to-host transfer per frame: the step's codes */
    CHECK(to_host_calls - host_before == steps, "%d device-to-host transfers in %d steps", to_host_calls - host_before, steps);
    CHECK(counts[5] == 2 + steps, "host transfer ranges %d, want one per prefill and per step (%d)", counts[5], 2 + steps);
    /* two prompts prefilled together: one prefill, one draw, one transfer */
    int32_t *keep = malloc((size_t)frames * 16 * sizeof(int32_t)); /* slot 0's codes, decoded below */
    int nk;
    memcpy(keep, qtts_generator_codes(g, 0, &nk), (size_t)frames * 16 * sizeof(int32_t));
    qtts_generator_release(g, 0);
    qtts_generator_release(g, 1);
    qtts_gen_start st[2] = {{.slot = 0, .prompt = prompt, .P = P, .tts_pad = pad, .p = &gp},
                            {.slot = 1, .prompt = prompt, .P = P, .tts_pad = pad, .p = &gp}};
    host_before = to_host_calls;
    CHECK(qtts_generator_start_many(g, st, 2, NULL) == 2, "start_many");
    CHECK(counts[0] == 3 && counts[3] == 3 + steps && counts[5] == 3 + steps && to_host_calls - host_before == 1,
          "batched prefill of 2: %d prefill, %d sampling, %d host transfer ranges, %d transfers; want 3, %d, %d, 1", counts[0], counts[3],
          counts[5], to_host_calls - host_before, 3 + steps, 3 + steps);

    char cdir[1100];
    snprintf(cdir, sizeof cdir, "%s/speech_tokenizer", dir);
    qtts_codec *c = NULL;
    CHECK(qtts_codec_load(&c, &be, cdir, &e) == QTTS_OK, "%s", e.msg);
    int nf = nk;
    const int32_t *codes = keep;
    float *wav = NULL;
    int before = counts[4];
    CHECK(c && qtts_codec_decode_chunked(c, codes, &nf, 1, 2, 1, &wav, &e) == QTTS_OK, "%s", e.msg);
    CHECK(counts[4] - before == (nf + 1) / 2, "decoder ranges %d for %d frames in windows of 2", counts[4] - before, nf);
    CHECK(depth == 0 && unbalanced == 0, "ranges unbalanced: depth %d, %d extra pops", depth, unbalanced);
    CHECK(max_depth == 2, "ranges nest at most two deep (stage > host transfer): %d", max_depth);
    free(wav);
    free(keep);
    qtts_codec_free(c);
    qtts_generator_free(g);
    qtts_model_free(m);
    free(prompt);
    free(pad);
    be.ops = NULL;
    return tu_finish("test_profile_ranges");
}
