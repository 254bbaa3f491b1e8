/* The cpu-replay backend (src/backend_replay.c: CUDA-graph semantics on the
 * CPU) and the generator's recorded op sequences:
 *  - a key runs plainly, is recorded (its ops do not run until graph_end),
 *    then replays with its recorded arguments over live memory;
 *  - transfers, waits, allocations, frees and batches without ctx_bound
 *    inside a recording, and positions past a batch's ctx_bound, are
 *    reported by qtts_backend_check;
 *  - continuous batching on the tiny fixture model (slots ending at
 *    different frames, a slot started mid-run, sampling, contexts crossing
 *    the 256-position bound, padded batch-size buckets) gives the same codes
 *    bit for bit on cpu and cpu-replay, with the sequences replayed. */
#include <stdlib.h>

#include "backend_replay.h"
#include "generate.h"
#include "model.h"
#include "testutil.h"

static void init_replay(qtts_backend *be) {
    qtts_err e = {0};
    CHECK(qtts_backend_init_named(be, "cpu-replay", NULL, &e) == QTTS_OK, "cpu-replay: %s", e.msg);
}

/* y = a + b as a recorded sequence: what runs when, and with which arguments. */
static void test_semantics(void) {
    qtts_backend be;
    init_replay(&be);
    const qtts_ops *o = be.ops;
    CHECK(o->graph_begin && o->graph_end && o->graph_reset, "cpu-replay has the graph ops");
    float *a = o->alloc(&be, 4 * sizeof(float)), *b = o->alloc(&be, 4 * sizeof(float)), *y = o->alloc(&be, 4 * sizeof(float));
    float ha[4] = {1, 2, 3, 4}, hb[4] = {10, 20, 30, 40}, hy[4];
    o->to_device(&be, a, ha, sizeof ha);
    o->to_device(&be, b, hb, sizeof hb);
    int64_t len = 4;
    float z[4] = {0};
    qtts_err e = {0};
    CHECK(!o->graph_begin(&be, 7), "first sight runs plainly");
    o->add(&be, a, b, y, len);
    o->graph_end(&be, 7);
    o->to_host(&be, hy, y, sizeof hy);
    CHECK(hy[0] == 11 && hy[3] == 44, "the plain run computed: %g %g", hy[0], hy[3]);
    o->to_device(&be, y, z, sizeof z);
    CHECK(!o->graph_begin(&be, 7), "second sight records");
    o->add(&be, a, b, y, len);
    CHECK(y[0] == 0, "a recorded op does not run when issued");
    o->graph_end(&be, 7);
    CHECK(y[0] == 11 && y[3] == 44, "graph_end runs the recording");
    /* 3rd: replayed; live memory, recorded arguments */
    ha[0] = 100;
    o->to_device(&be, a, ha, sizeof ha);
    CHECK(o->graph_begin(&be, 7), "third sight replays");
    o->to_host(&be, hy, y, sizeof hy);
    CHECK(hy[0] == 110, "a replay reads memory as it is now: %g", hy[0]);
    CHECK(hy[3] == 44, "a replay runs the recorded length: %g", hy[3]);
    CHECK(!o->graph_begin(&be, 8), "another key runs plainly");
    o->graph_end(&be, 8);
    o->graph_reset(&be);
    CHECK(!o->graph_begin(&be, 7), "after graph_reset a key starts over");
    o->graph_end(&be, 7);
    qtts_replay_stats st;
    CHECK(qtts_backend_replay_stats(&be, &st) && st.plain == 3 && st.recorded == 1 && st.replayed == 2 && st.ops_replayed == 2,
          "stats: plain %lld recorded %lld replayed %lld ops %lld", (long long)st.plain, (long long)st.recorded, (long long)st.replayed,
          (long long)st.ops_replayed);
    CHECK(qtts_backend_check(&be, &e) == QTTS_OK, "no misuse: %s", e.msg);
    o->free(&be, a);
    o->free(&be, b);
    o->free(&be, y);
    qtts_backend_free(&be);
    qtts_backend cpu;
    CHECK(qtts_backend_cpu_init(&cpu, &e) == QTTS_OK && !qtts_backend_replay_stats(&cpu, &st), "stats only on cpu-replay");
}

/* Each misuse on a fresh backend: the report names it. */
static void test_misuse(void) {
    const char *what[] = {"alloc", "free", "to_device", "to_host", "sync", "ctx_bound", "outside"};
    for (int k = 0; k < 7; k++) {
        qtts_backend be;
        init_replay(&be);
        const qtts_ops *o = be.ops;
        int32_t *slot = o->alloc(&be, 2 * sizeof(int32_t)), *pos = o->alloc(&be, 2 * sizeof(int32_t));
        float *q = o->alloc(&be, 2 * 4 * sizeof(float)), *out = o->alloc(&be, 2 * 4 * sizeof(float));
        qtts_kv_cache kv = {o->alloc(&be, 8 * 4 * sizeof(float)), o->alloc(&be, 8 * 4 * sizeof(float)), 1, 1, 8, 1, 4};
        int32_t hs[2] = {0, 0}, hp[2] = {3, 5}, tmp;
        o->to_device(&be, slot, hs, sizeof hs);
        o->to_device(&be, pos, hp, sizeof hp);
        qtts_batch b = {.n = 2, .slot = slot, .pos = pos, .h_slot = hs, .h_pos = hp, .ctx_bound = 8};
        if (k < 6) {
            CHECK(!o->graph_begin(&be, 1), "plain");
            o->graph_end(&be, 1);
            CHECK(!o->graph_begin(&be, 1), "records");
        }
        switch (k) {
        case 0: CHECK(o->alloc(&be, 4) == NULL, "alloc refused in a recording"); break;
        case 1: o->free(&be, q); break; /* refused: q stays allocated */
        case 2: o->to_device(&be, &tmp, hs, sizeof tmp); break;
        case 3: o->to_host(&be, &tmp, slot, sizeof tmp); break;
        case 4: o->sync(&be); break;
        case 5: b.ctx_bound = 0; o->attention(&be, q, &kv, 0, &b, 1, 1.0f, 0, out); break;
        case 6: b.ctx_bound = 5; o->attention(&be, q, &kv, 0, &b, 1, 1.0f, 0, out); break; /* position 5 >= bound 5 */
        }
        if (k < 6) o->graph_end(&be, 1);
        qtts_err e = {0};
        CHECK(qtts_backend_check(&be, &e) != QTTS_OK && strstr(e.msg, what[k]), "misuse %s reported: %s", what[k], e.msg);
        void *bufs[] = {slot, pos, q, out, kv.k, kv.v};
        for (int i = 0; i < 6; i++) o->free(&be, bufs[i]);
        qtts_backend_free(&be);
    }
}

typedef struct {
    int P, Q, frames, start_at; /* start_at: the step before which the slot starts */
} seq_spec;

/* Run the specs on a backend; codes[i] receives sequence i's frames. */
static int run_batch(const char *backend, const seq_spec *spec, int n_seq, int max_batch, int32_t **codes, int *n_frames,
                     qtts_replay_stats *st) {
    qtts_backend be;
    qtts_err e = {0};
    CHECK(qtts_backend_init_named(&be, backend, NULL, &e) == QTTS_OK, "%s: %s", backend, e.msg);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/models/custom_voice", QTTS_BINARY_DIR);
    qtts_model *m = NULL;
    if (qtts_model_load(&m, &be, dir, &e) != QTTS_OK) {
        CHECK(0, "load %s: %s", dir, e.msg);
        qtts_backend_free(&be);
        return -1;
    }
    int H = m->cfg.talker.hidden_size, max_ctx = 0;
    for (int i = 0; i < n_seq; i++) max_ctx = spec[i].P + spec[i].frames + 2 > max_ctx ? spec[i].P + spec[i].frames + 2 : max_ctx;
    qtts_generator *g = NULL;
    CHECK(qtts_generator_init(&g, m, max_batch, max_ctx, false, &e) == QTTS_OK, "generator: %s", e.msg);
    int slot_of[16], steps = 0, started = 0, done = 0;
    for (int i = 0; i < n_seq; i++) slot_of[i] = -1;
    uint64_t rng = 99;
    float *pad = malloc((size_t)H * sizeof(float));
    for (int d = 0; d < H; d++) pad[d] = 0.02f * tu_rand_uniform(&rng);
    while (g && done < n_seq && steps < 1000) {
        for (int i = 0; i < n_seq; i++) {
            if (slot_of[i] >= 0 || spec[i].start_at > steps || n_frames[i] >= 0) continue;
            int slot = -1;
            for (int s = 0; s < max_batch && slot < 0; s++)
                if (qtts_generator_state(g, s) == QTTS_SEQ_FREE) slot = s;
            if (slot < 0) continue;
            uint64_t r = 1000 + (uint64_t)i; /* each sequence's inputs depend only on i */
            float *prompt = malloc((size_t)spec[i].P * H * sizeof(float)), *trail = malloc((size_t)(spec[i].Q + 1) * H * sizeof(float));
            for (size_t k = 0; k < (size_t)spec[i].P * H; k++) prompt[k] = 0.05f * tu_rand_uniform(&r);
            for (size_t k = 0; k < (size_t)spec[i].Q * H; k++) trail[k] = 0.05f * tu_rand_uniform(&r);
            qtts_gen_params gp;
            qtts_gen_params_from_config(&gp, &m->gen, false); /* sampling */
            gp.max_frames = spec[i].frames;
            gp.seed = 0x5eed0000u + (uint64_t)i;
            gp.ignore_eos = true;
            CHECK(qtts_generator_start(g, slot, prompt, spec[i].P, trail, spec[i].Q, pad, &gp, &e) == QTTS_OK, "start %d: %s", i, e.msg);
            slot_of[i] = slot;
            started++;
            free(prompt);
            free(trail);
        }
        CHECK(qtts_generator_step(g, &e) == QTTS_OK, "step: %s", e.msg);
        steps++;
        for (int i = 0; i < n_seq; i++) {
            if (slot_of[i] < 0 || qtts_generator_state(g, slot_of[i]) == QTTS_SEQ_ACTIVE) continue;
            const int32_t *c = qtts_generator_codes(g, slot_of[i], &n_frames[i]);
            codes[i] = malloc((size_t)n_frames[i] * 16 * sizeof(int32_t));
            memcpy(codes[i], c, (size_t)n_frames[i] * 16 * sizeof(int32_t));
            qtts_generator_release(g, slot_of[i]);
            slot_of[i] = -1;
            done++;
        }
    }
    CHECK(qtts_backend_check(&be, &e) == QTTS_OK, "%s: %s", backend, e.msg);
    if (st && !qtts_backend_replay_stats(&be, st)) memset(st, 0, sizeof *st);
    free(pad);
    qtts_generator_free(g);
    qtts_model_free(m);
    qtts_backend_free(&be);
    return done;
}

static void test_generator(void) {
    /* 6 sequences over 5 slots (no padding: 1..4 rows run exact, 5 is
     * max_batch): ends at different frames, a sequence that waits for a
     * free slot, and one whose context crosses the 256-position bound */
    const seq_spec spec[] = {{12, 3, 20, 0}, {30, 0, 9, 0}, {7, 5, 31, 0}, {240, 2, 40, 0}, {18, 4, 14, 3}, {9, 1, 12, 5}};
    int n = 6;
    int32_t *ca[6] = {0}, *cb[6] = {0};
    int fa[6], fb[6];
    for (int i = 0; i < n; i++) fa[i] = fb[i] = -1;
    qtts_replay_stats st;
    int da = run_batch("cpu", spec, n, 5, ca, fa, NULL);
    int db = run_batch("cpu-replay", spec, n, 5, cb, fb, &st);
    CHECK(da == n && db == n, "all sequences finished: %d %d", da, db);
    for (int i = 0; i < n; i++) {
        CHECK(fa[i] == spec[i].frames && fb[i] == fa[i], "sequence %d: %d / %d frames, want %d", i, fa[i], fb[i], spec[i].frames);
        CHECK(ca[i] && cb[i] && fa[i] == fb[i] && !memcmp(ca[i], cb[i], (size_t)fa[i] * 16 * sizeof(int32_t)),
              "sequence %d: cpu-replay codes differ from cpu", i);
        free(ca[i]);
        free(cb[i]);
    }
    printf("generator on cpu-replay: %lld keys run plainly, %lld recorded, %lld replays\n", (long long)st.plain, (long long)st.recorded,
           (long long)st.replayed);
    CHECK(st.recorded >= 4 && st.replayed > 2 * st.recorded, "sequences were recorded and replayed");

    /* 8 slots: 5..8 active rows run as 8, padded on a spare slot */
    const seq_spec spec2[] = {{12, 3, 20, 0}, {30, 0, 9, 0}, {7, 5, 31, 0}, {20, 2, 26, 0}, {18, 4, 14, 0}, {9, 1, 12, 2}};
    for (int i = 0; i < n; i++) fa[i] = fb[i] = -1;
    da = run_batch("cpu", spec2, n, 8, ca, fa, NULL);
    db = run_batch("cpu-replay", spec2, n, 8, cb, fb, &st);
    CHECK(da == n && db == n, "all sequences finished: %d %d", da, db);
    for (int i = 0; i < n; i++) {
        CHECK(ca[i] && cb[i] && fa[i] == fb[i] && !memcmp(ca[i], cb[i], (size_t)fa[i] * 16 * sizeof(int32_t)),
              "batch 8, sequence %d: cpu-replay codes differ from cpu", i);
        free(ca[i]);
        free(cb[i]);
    }
}

int main(void) {
    test_semantics();
    test_misuse();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/models/custom_voice/model.safetensors", QTTS_BINARY_DIR);
    if (qtts_file_exists(dir)) test_generator();
    else printf("fixture model absent (%s): generator comparison not run\n", dir);
    return tu_finish("test_replay");
}
