/* Batched frame generation (see generate.h). All per-slot buffers and the
 * scratch of both decoder stacks are planned once in qtts_generator_init;
 * steps allocate nothing. Sampling is an op: tokens stay in backend memory
 * (codebook-major tok[k][row]) and feed the next embedding directly, so a
 * step moves one small buffer to the host: the frame's residual codes and
 * the next codebook-0 code.
 *
 * A step is two fixed op sequences, each depending only on the number of
 * rows it runs and, for the talker, on a bound of the context:
 *   - the code predictor: its inputs are gathered into compact rows
 *     0..nb-1 (predictor KV slot j for row j), its positions are the same
 *     every frame, and its sampling rows are uploaded before it;
 *   - the talker step: frame embedding plus the text rows uploaded before
 *     it, the talker, past_hidden scattered back, the codec head.
 * Everything that changes from step to step (active slots, positions,
 * codes, text, draws) is in backend memory, uploaded before the sequence.
 * Backends with op replay (CUDA graphs) record each sequence once per key
 * and replay it: a frame's 15 x 5 predictor layers and its 28 talker layers
 * are two launches. To keep the keys few, where a backend replays, the n
 * active slots run as nb = step_rows(n) rows (a batch-size bucket): rows
 * n..nb-1 are padding that computes on a spare (inactive) slot at position
 * 0 and is never read; the talker's context bound is a power of two. Rows
 * are independent in every op, so padding does not change the active rows'
 * results on the CPU (test_replay checks it bit for bit). */
#include "generate.h"

#include <stdlib.h>

#define KEY_MAX ((1 << 20) - 1) /* rows and context bounds a recorded-sequence key holds */

typedef struct {
    qtts_seq_state state;
    qtts_gen_params p;
    int P;            /* prompt length */
    int pos;          /* next talker position */
    int n_frames;
    int n_sampled;    /* c0 samples drawn (for min_new_tokens) */
    int c0;           /* last sampled codebook-0 code */
    int32_t *codes;   /* [max_frames][G] host */
    float *trailing;  /* [Q][H] host */
    int Q;
} slot_state;

struct qtts_generator {
    const qtts_model *m;
    qtts_backend *be;
    qtts_predictor_weights pw; /* views of m's code predictor */
    int max_batch, max_ctx, G, H, Hp, V, Vp;
    bool record;
    qtts_kv_cache kv_talker, kv_pred;
    qtts_lm_scratch s_talker, s_pred;
    slot_state *slots;
    /* backend buffers */
    float *past_hidden; /* [max_batch][H] post-norm hidden of each slot */
    float *x, *out;     /* [max_ctx][H] talker input / output */
    float *px, *pout;   /* [2*max_batch][Hp] predictor input / output */
    float *pe;          /* [2*max_batch][H] predictor embeddings before projection */
    float *txt_d;       /* [max_batch][H] text row added to each row's next input */
    float *logits;      /* [max_batch][V] */
    int32_t *tok_d;     /* [G][max_batch] this step's codes by codebook; row 0 then receives the next c0 */
    uint8_t *seen_d;    /* [max_batch][V] codebook-0 codes generated per slot (repetition penalty) */
    int32_t *slot_d, *pos_d; /* [max(max_ctx, 2*max_batch)] */
    /* code predictor batch descriptors (see predict_residuals); act_d and
     * tok_d[0] hold nb rows, padding rows naming a spare slot and code 0 */
    int32_t *act_d;     /* [max_batch] active slots of this step */
    int32_t *pslot_d, *ppos_d; /* [2*max_batch] first predictor pass for pre_n rows */
    int32_t *iota_d;    /* [max_batch] 0, 1, 2, ... */
    int32_t *kpos_d;    /* [G][max_batch] row k: position k */
    qtts_sample_row *rows_d;  /* [max_batch] codebook-0 draws */
    qtts_sample_row *prows_d; /* [(G-1)*n] predictor draws, codebook-major with stride n */
    float *rec_pred_d;  /* [G-1][n][Vp] predictor logits (record_logits only) */
    int pre_n;          /* n that pslot_d / ppos_d hold */
    /* host buffers */
    int32_t *tok_h;     /* [G][max_batch] mirror of tok_d, one transfer per step */
    int32_t *slot_h, *pos_h;
    int32_t *pslot_h, *ppos_h, *iota_h, *kpos_h; /* host mirrors of the predictor descriptors */
    uint8_t *zeros_h;   /* [V] to clear a slot's seen row */
    qtts_sample_row *rows; /* [(G-1)*max_batch] draws staged for rows_d / prows_d */
    int32_t *act;       /* active slots of the current step, then padding rows */
    float *txt_h;       /* [max_batch][H] staging of txt_d */
    float *pad_h;       /* [H] tts_pad */
    float *logits_h;    /* [max_batch][max(V, Vp)] (record_logits only) */
    float *rec_talker;  /* [max_batch][V] */
    float *rec_pred;    /* [max_batch][G-1][Vp] */
    float *rec_hidden;  /* [max_batch][H] */
    float *rec_tmp;     /* [G-1][max_batch][Vp] host staging of rec_pred_d */
    qtts_gen_timing t;
    bool sync_timing;
    uint32_t id;        /* in recorded-sequence keys: generators never share one */
};

/* Host clock for stage timings; with sync_timing, after the device caught up. */
static double stamp(qtts_generator *g) {
    if (g->sync_timing) g->be->ops->sync(g->be);
    return qtts_now();
}

void qtts_generator_set_sync_timing(qtts_generator *g, bool on) { g->sync_timing = on; }

void qtts_gen_params_from_config(qtts_gen_params *p, const qtts_gen_config *g, bool greedy) {
    memset(p, 0, sizeof *p);
    p->talker = (qtts_sampler){.greedy = greedy || !g->do_sample, .temperature = g->temperature, .top_k = g->top_k,
                               .top_p = g->top_p, .repetition_penalty = g->repetition_penalty};
    p->predictor = (qtts_sampler){.greedy = greedy || !g->sub_do_sample, .temperature = g->sub_temperature,
                                  .top_k = g->sub_top_k, .top_p = g->sub_top_p, .repetition_penalty = 1.0f};
    /* the reference's max_new_tokens counts c0 samples: the last never gets its residual codes */
    p->max_frames = g->max_new_tokens > 1 ? g->max_new_tokens - 1 : 1;
    p->min_new_tokens = 2;
    p->seed = 0;
}

static void *balloc(qtts_generator *g, size_t bytes, bool *ok) {
    void *p = g->be->ops->alloc(g->be, bytes);
    if (!p) *ok = false;
    return p;
}

qtts_status qtts_generator_init(qtts_generator **out, const qtts_model *m, int max_batch, int max_ctx, bool record_logits,
                                qtts_err *err) {
    qtts_status st = QTTS_OK;
    *out = NULL;
    if (max_batch < 1 || max_ctx < 2) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "generator: max_batch %d / max_ctx %d too small", max_batch, max_ctx);
    if (max_batch > KEY_MAX || max_ctx > KEY_MAX)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "generator: max_batch %d / max_ctx %d above the limit of %d", max_batch, max_ctx, KEY_MAX);
    qtts_generator *g = qtts_calloc(1, sizeof *g, err, "generator");
    if (!g) return QTTS_ERR_OOM;
    static uint32_t next_id;
    g->m = m;
    g->be = m->be;
    g->id = ++next_id;
    g->max_batch = max_batch;
    g->max_ctx = max_ctx;
    g->G = m->n_groups;
    g->H = m->cfg.talker.hidden_size;
    g->Hp = m->cfg.predictor.hidden_size;
    g->V = m->cfg.talker.vocab_size;
    g->Vp = m->cfg.predictor.vocab_size;
    g->record = record_logits;
    qtts_model_predictor_weights(m, &g->pw);
    QTTS_TRY(qtts_kv_init(&g->kv_talker, g->be, &m->cfg.talker, max_batch, max_ctx, err));
    QTTS_TRY(qtts_kv_init(&g->kv_pred, g->be, &m->cfg.predictor, max_batch, g->G, err));
    QTTS_TRY(qtts_lm_scratch_init(&g->s_talker, g->be, &m->cfg.talker, max_ctx > max_batch ? max_ctx : max_batch, err));
    QTTS_TRY(qtts_lm_scratch_init(&g->s_pred, g->be, &m->cfg.predictor, 2 * max_batch, err));
    size_t B = (size_t)max_batch, H = (size_t)g->H, Hp = (size_t)g->Hp, f = sizeof(float);
    size_t ntok = (size_t)(max_ctx > 2 * max_batch ? max_ctx : 2 * max_batch);
    size_t vmax = (size_t)(g->V > g->Vp ? g->V : g->Vp);
    bool ok = true;
    g->past_hidden = balloc(g, B * H * f, &ok);
    g->x = balloc(g, ntok * H * f, &ok);
    g->out = balloc(g, ntok * H * f, &ok);
    g->px = balloc(g, 2 * B * Hp * f, &ok);
    g->pout = balloc(g, 2 * B * Hp * f, &ok);
    g->pe = balloc(g, 2 * B * H * f, &ok);
    g->txt_d = balloc(g, B * H * f, &ok);
    g->logits = balloc(g, B * vmax * f, &ok);
    g->tok_d = balloc(g, (size_t)g->G * B * sizeof(int32_t), &ok);
    g->seen_d = balloc(g, B * (size_t)g->V, &ok);
    g->slot_d = balloc(g, ntok * sizeof(int32_t), &ok);
    g->pos_d = balloc(g, ntok * sizeof(int32_t), &ok);
    g->act_d = balloc(g, B * sizeof(int32_t), &ok);
    g->pslot_d = balloc(g, 2 * B * sizeof(int32_t), &ok);
    g->ppos_d = balloc(g, 2 * B * sizeof(int32_t), &ok);
    g->iota_d = balloc(g, B * sizeof(int32_t), &ok);
    g->kpos_d = balloc(g, (size_t)g->G * B * sizeof(int32_t), &ok);
    g->rows_d = balloc(g, B * sizeof(qtts_sample_row), &ok);
    g->prows_d = balloc(g, (size_t)(g->G - 1) * B * sizeof(qtts_sample_row), &ok);
    if (record_logits) g->rec_pred_d = balloc(g, (size_t)(g->G - 1) * B * g->Vp * f, &ok);
    QTTS_CHECK(ok, err, QTTS_ERR_OOM, "generator buffers for %d slots x %d positions: out of memory", max_batch, max_ctx);
    g->tok_h = qtts_calloc((size_t)g->G * B, sizeof(int32_t), err, "generator");
    g->slot_h = qtts_calloc(ntok, sizeof(int32_t), err, "generator");
    g->pos_h = qtts_calloc(ntok, sizeof(int32_t), err, "generator");
    g->zeros_h = qtts_calloc((size_t)g->V, 1, err, "generator");
    g->rows = qtts_calloc((size_t)(g->G - 1) * B, sizeof *g->rows, err, "generator");
    g->pslot_h = qtts_calloc(2 * B, sizeof(int32_t), err, "generator");
    g->ppos_h = qtts_calloc(2 * B, sizeof(int32_t), err, "generator");
    g->iota_h = qtts_calloc(B, sizeof(int32_t), err, "generator");
    g->kpos_h = qtts_calloc((size_t)g->G * B, sizeof(int32_t), err, "generator");
    g->act = qtts_calloc(B, sizeof *g->act, err, "generator");
    g->txt_h = qtts_calloc(B * H, f, err, "generator");
    g->pad_h = qtts_calloc(H, f, err, "generator");
    g->slots = qtts_calloc(B, sizeof *g->slots, err, "generator");
    QTTS_CHECK(g->tok_h && g->slot_h && g->pos_h && g->zeros_h && g->rows && g->act && g->slots && g->pslot_h && g->ppos_h &&
                   g->iota_h && g->kpos_h && g->txt_h && g->pad_h,
               err, QTTS_ERR_OOM, "generator: out of memory");
    for (size_t i = 0; i < B; i++) g->iota_h[i] = (int32_t)i;
    for (int k = 0; k < g->G; k++)
        for (size_t i = 0; i < B; i++) g->kpos_h[(size_t)k * B + i] = k;
    g->be->ops->to_device(g->be, g->iota_d, g->iota_h, B * sizeof(int32_t));
    g->be->ops->to_device(g->be, g->kpos_d, g->kpos_h, (size_t)g->G * B * sizeof(int32_t));
    if (record_logits) {
        g->logits_h = qtts_calloc(B * vmax, f, err, "generator");
        g->rec_talker = qtts_calloc(B * (size_t)g->V, f, err, "generator");
        g->rec_pred = qtts_calloc(B * (size_t)(g->G - 1) * g->Vp, f, err, "generator");
        g->rec_hidden = qtts_calloc(B * H, f, err, "generator");
        g->rec_tmp = qtts_calloc(B * (size_t)(g->G - 1) * g->Vp, f, err, "generator");
        QTTS_CHECK(g->logits_h && g->rec_talker && g->rec_pred && g->rec_hidden && g->rec_tmp, err, QTTS_ERR_OOM,
                   "generator: out of memory");
    }
    *out = g;
    return QTTS_OK;
cleanup:
    qtts_generator_free(g);
    return st;
}

void qtts_generator_release(qtts_generator *g, int slot) {
    if (slot < 0 || slot >= g->max_batch) return;
    slot_state *s = &g->slots[slot];
    free(s->codes);
    free(s->trailing);
    memset(s, 0, sizeof *s);
}

void qtts_generator_free(qtts_generator *g) {
    if (!g) return;
    qtts_backend *be = g->be;
    if (be->ops->graph_reset) be->ops->graph_reset(be); /* recorded sequences use our buffers */
    if (g->slots)
        for (int i = 0; i < g->max_batch; i++) qtts_generator_release(g, i);
    qtts_kv_free(&g->kv_talker, be);
    qtts_kv_free(&g->kv_pred, be);
    qtts_lm_scratch_free(&g->s_talker, be);
    qtts_lm_scratch_free(&g->s_pred, be);
    void *dev[] = {g->past_hidden, g->x,      g->out,    g->px,      g->pout,   g->pe,
                   g->txt_d,       g->logits, g->tok_d,  g->seen_d,  g->slot_d, g->pos_d,  g->act_d,
                   g->pslot_d,     g->ppos_d, g->iota_d, g->kpos_d,  g->rows_d, g->prows_d, g->rec_pred_d};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) be->ops->free(be, dev[i]);
    free(g->tok_h);
    free(g->slot_h);
    free(g->pos_h);
    free(g->zeros_h);
    free(g->rows);
    free(g->pslot_h);
    free(g->ppos_h);
    free(g->iota_h);
    free(g->kpos_h);
    free(g->act);
    free(g->txt_h);
    free(g->pad_h);
    free(g->logits_h);
    free(g->rec_talker);
    free(g->rec_pred);
    free(g->rec_hidden);
    free(g->rec_tmp);
    free(g->slots);
    free(g);
}

/* Upload slot_h / pos_h [n] into slot_d / pos_d (outside a recorded sequence). */
static void upload_batch(qtts_generator *g, int n) {
    g->be->ops->to_device(g->be, g->slot_d, g->slot_h, (size_t)n * sizeof(int32_t));
    g->be->ops->to_device(g->be, g->pos_d, g->pos_h, (size_t)n * sizeof(int32_t));
}

/* The talker batch of the n tokens in slot_d / pos_d, every position < ctx_bound. */
static qtts_batch talker_batch(qtts_generator *g, int n, int ctx_bound) {
    return (qtts_batch){.n = n, .slot = g->slot_d, .pos = g->pos_d, .h_slot = g->slot_h, .h_pos = g->pos_h, .ctx_bound = ctx_bound};
}

/* Recorded op sequences: one key per generator, kind, row count and context bound. */
enum { SEQ_PREDICTOR = 0, SEQ_TALKER = 1 };
static uint64_t seq_key(const qtts_generator *g, int kind, int rows, int ctx_bound) {
    return (uint64_t)rows | (uint64_t)ctx_bound << 20 | (uint64_t)g->record << 40 | (uint64_t)kind << 41 |
           (uint64_t)(g->id & 0x3fffff) << 42;
}

/* The rows a step runs for n active slots (see the top of this file). */
static int step_rows(const qtts_generator *g, int n) {
    if (!g->be->ops->graph_begin) return n;
    int nb = n <= 4 ? n : n <= 64 ? (n + 7) / 8 * 8 : (n + 31) / 32 * 32;
    return nb < g->max_batch ? nb : g->max_batch;
}

/* Run the op sequence fn(g, a, b) under `key`, or replay its recording. */
static void run_seq(qtts_generator *g, uint64_t key, void (*fn)(qtts_generator *, int, int), int a, int b) {
    const qtts_ops *o = g->be->ops;
    if (o->graph_begin && o->graph_begin(g->be, key)) return;
    fn(g, a, b);
    if (o->graph_end) o->graph_end(g->be, key);
}

/* The draw of codebook 0 for a slot: the official processors (penalty over
 * the codes generated so far, EOS banned for the first min_new_tokens
 * samples, the top 1024 codec ids but EOS suppressed) and its own counter. */
static qtts_sample_row c0_row(const qtts_generator *g, int slot) {
    const slot_state *s = &g->slots[slot];
    int eos = g->m->cfg.codec_eos_id;
    const qtts_sampler *p = &s->p.talker;
    return (qtts_sample_row){.seed = s->p.seed, .counter = (uint64_t)s->n_sampled * (uint64_t)g->G, .temperature = p->temperature,
                             .top_p = p->top_p, .penalty = p->repetition_penalty, .top_k = p->top_k, .greedy = p->greedy,
                             .seen_row = slot, .ban_from = g->V - 1024, .keep_id = eos,
                             .ban_id = (s->n_sampled < s->p.min_new_tokens || s->p.ignore_eos) ? eos : -1};
}

/* Take a sampled codebook-0 token: EOS (or nothing left) ends the sequence. */
static void accept_c0(qtts_generator *g, int slot, int tok) {
    slot_state *s = &g->slots[slot];
    s->n_sampled++;
    if (tok < 0 || tok == g->m->cfg.codec_eos_id) s->state = QTTS_SEQ_EOS;
    else s->c0 = tok;
}

/* record_logits: raw talker logits rows (before processors) and hidden states. */
static void record_talker(qtts_generator *g, int n) {
    if (!g->record) return;
    g->be->ops->to_host(g->be, g->logits_h, g->logits, (size_t)n * g->V * sizeof(float));
    for (int j = 0; j < n; j++) {
        int slot = g->act[j];
        memcpy(g->rec_talker + (size_t)slot * g->V, g->logits_h + (size_t)j * g->V, (size_t)g->V * sizeof(float));
        g->be->ops->to_host(g->be, g->rec_hidden + (size_t)slot * g->H, g->past_hidden + (size_t)slot * g->H, (size_t)g->H * sizeof(float));
    }
}

void qtts_kv_prefix_free(qtts_generator *g, qtts_kv_prefix *p) {
    if (p->k) g->be->ops->free(g->be, p->k);
    if (p->v) g->be->ops->free(g->be, p->v);
    p->k = p->v = NULL;
}

/* Copy positions [0, len) of `slot` between the talker cache and a prefix
 * store; per layer those positions are one contiguous block. */
static void prefix_copy(qtts_generator *g, int slot, qtts_kv_prefix *pf, bool to_cache) {
    const qtts_kv_cache *c = &g->kv_talker;
    size_t row = (size_t)c->n_kv_heads * c->head_dim, block = (size_t)pf->len * row;
    for (int l = 0; l < c->n_layers; l++) {
        size_t off = (((size_t)l * c->n_slots + slot) * c->max_len) * row;
        float *ck = c->k + off, *cv = c->v + off, *pk = pf->k + (size_t)l * block, *pv = pf->v + (size_t)l * block;
        if (to_cache) {
            g->be->ops->copy(g->be, ck, pk, block * sizeof(float));
            g->be->ops->copy(g->be, cv, pv, block * sizeof(float));
        } else {
            g->be->ops->copy(g->be, pk, ck, block * sizeof(float));
            g->be->ops->copy(g->be, pv, cv, block * sizeof(float));
        }
    }
}

qtts_status qtts_generator_start(qtts_generator *g, int slot, const float *prompt, int P, const float *trailing, int Q,
                                 const float *tts_pad, const qtts_gen_params *p, qtts_err *err) {
    return qtts_generator_start_shared(g, slot, prompt, P, trailing, Q, tts_pad, p, NULL, err);
}

qtts_status qtts_generator_start_shared(qtts_generator *g, int slot, const float *prompt, int P, const float *trailing, int Q,
                                        const float *tts_pad, const qtts_gen_params *p, qtts_kv_prefix *prefix, qtts_err *err) {
    qtts_gen_start s = {.slot = slot, .prompt = prompt, .P = P, .trailing = trailing, .Q = Q, .tts_pad = tts_pad, .p = p, .prefix = prefix};
    qtts_err e = {0};
    if (qtts_generator_start_many(g, &s, 1, &e) == 1) return QTTS_OK;
    if (err) *err = e;
    return e.status;
}

int qtts_generator_prefill_tokens(const qtts_generator *g) { return g->max_ctx > g->max_batch ? g->max_ctx : g->max_batch; }

/* Check a start and claim its slot (state ACTIVE at position P; the prefill
 * follows): codes, trailing text and a clear seen row. */
static qtts_status claim(qtts_generator *g, const qtts_gen_start *a, qtts_err *err) {
    int slot = a->slot, P = a->P;
    const qtts_gen_params *p = a->p;
    if (slot < 0 || slot >= g->max_batch) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "slot %d out of range [0, %d)", slot, g->max_batch);
    if (g->slots[slot].state != QTTS_SEQ_FREE) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "slot %d is busy", slot);
    if (P < 1 || p->max_frames < 1) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "empty prompt or max_frames < 1");
    int L = a->prefix ? a->prefix->len : 0;
    if (L < 0 || (L > 0 && L >= P)) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "shared prefix of %d positions for a prompt of %d", L, P);
    if ((int64_t)P + p->max_frames + 1 > g->max_ctx)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "prompt %d + %d frames exceeds the context of %d positions", P, p->max_frames,
                         g->max_ctx);
    slot_state *s = &g->slots[slot];
    size_t H = (size_t)g->H;
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->P = P;
    s->Q = a->Q;
    s->codes = qtts_calloc((size_t)p->max_frames, (size_t)g->G * sizeof(int32_t), err, "codes");
    s->trailing = malloc((a->Q ? (size_t)a->Q : 1) * H * sizeof(float));
    if (!s->codes || !s->trailing) {
        qtts_generator_release(g, slot);
        return qtts_fail(err, QTTS_ERR_OOM, "slot %d: out of memory for %d frames", slot, p->max_frames);
    }
    if (a->Q) memcpy(s->trailing, a->trailing, (size_t)a->Q * H * sizeof(float));
    memcpy(g->pad_h, a->tts_pad, H * sizeof(float));
    g->be->ops->to_device(g->be, g->seen_d + (size_t)slot * g->V, g->zeros_h, (size_t)g->V);
    s->state = QTTS_SEQ_ACTIVE;
    s->pos = P;
    return QTTS_OK;
}

/* The first position of a start's prompt that its prefill computes: past a
 * shared prefix already saved, else 0. */
static int first_pos(const qtts_gen_start *a) {
    const qtts_kv_prefix *pf = a->prefix;
    return pf && pf->len > 0 && pf->k ? pf->len : 0;
}

/* Prefill the claimed starts a[0..n) (their tokens fit the talker scratch)
 * as one ragged batch, then one codec head and one draw for their first c0. */
static void prefill_group(qtts_generator *g, const qtts_gen_start *a, int n) {
    const qtts_ops *o = g->be->ops;
    size_t H = (size_t)g->H;
    double t0 = stamp(g);
    qtts_range_push(g->be, "prefill");
    int tok = 0, bound = 1;
    for (int j = 0; j < n; j++) {
        int first = first_pos(&a[j]), P = a[j].P;
        if (first) prefix_copy(g, a[j].slot, a[j].prefix, true);
        o->to_device(g->be, g->x + (size_t)tok * H, a[j].prompt + (size_t)first * H, (size_t)(P - first) * H * sizeof(float));
        for (int i = first; i < P; i++, tok++) {
            g->slot_h[tok] = a[j].slot;
            g->pos_h[tok] = i;
        }
        g->act[j] = tok - 1; /* the row of its last position, for the gather below */
        bound = P > bound ? P : bound;
    }
    upload_batch(g, tok);
    qtts_batch b = talker_batch(g, tok, bound); /* several tokens per slot: attention reads what the batch stores */
    qtts_lm_forward(g->be, &g->m->talker, &g->kv_talker, &b, g->x, g->out, &g->s_talker, NULL);
    /* the first start of a prefix not saved yet saves it; a failed
     * allocation only means later starts compute it again */
    for (int j = 0; j < n; j++) {
        qtts_kv_prefix *pf = a[j].prefix;
        if (!pf || pf->len <= 0 || pf->k) continue;
        const qtts_kv_cache *c = &g->kv_talker;
        size_t bytes = (size_t)c->n_layers * pf->len * c->n_kv_heads * c->head_dim * sizeof(float);
        pf->k = o->alloc(g->be, bytes);
        pf->v = o->alloc(g->be, bytes);
        if (pf->k && pf->v) prefix_copy(g, a[j].slot, pf, false);
        else qtts_kv_prefix_free(g, pf);
    }
    /* each start's last hidden state: rows 0..n-1 of x (free after the
     * forward), then to its slot's past_hidden, and the codec head over them;
     * slot_d and act_d carry the indices (the batch is done with them) */
    o->to_device(g->be, g->slot_d, g->act, (size_t)n * sizeof(int32_t));
    o->gather_rows(g->be, g->out, g->slot_d, n, (int)H, g->x);
    for (int j = 0; j < n; j++) g->act[j] = a[j].slot;
    o->to_device(g->be, g->act_d, g->act, (size_t)n * sizeof(int32_t));
    o->scatter_rows(g->be, g->x, g->act_d, n, (int)H, g->past_hidden);
    o->matmul(g->be, g->x, &g->m->codec_head, NULL, g->logits, n);
    qtts_range_pop(g->be);
    double t1 = stamp(g);
    record_talker(g, n);
    qtts_range_push(g->be, "sampling");
    for (int j = 0; j < n; j++) g->rows[j] = c0_row(g, a[j].slot);
    o->to_device(g->be, g->rows_d, g->rows, (size_t)n * sizeof *g->rows);
    o->sample(g->be, g->logits, n, g->V, g->rows_d, g->seen_d, g->tok_d);
    qtts_range_push(g->be, "host transfer");
    o->to_host(g->be, g->tok_h, g->tok_d, (size_t)n * sizeof(int32_t));
    qtts_range_pop(g->be);
    for (int j = 0; j < n; j++) accept_c0(g, a[j].slot, g->tok_h[j]);
    qtts_range_pop(g->be);
    g->t.prefill += t1 - t0;
    g->t.sampling += qtts_now() - t1;
    g->t.prefills += n;
    g->t.prefill_batches++;
}

int qtts_generator_start_many(qtts_generator *g, const qtts_gen_start *starts, int n, qtts_err *errs) {
    qtts_gen_start *ok = n > 0 ? malloc((size_t)n * sizeof *ok) : NULL;
    int n_ok = 0;
    for (int i = 0; i < n; i++) {
        qtts_err e = {0};
        if (!ok) qtts_fail(&e, QTTS_ERR_OOM, "out of memory");
        else if (claim(g, &starts[i], &e) == QTTS_OK) ok[n_ok++] = starts[i];
        if (errs) errs[i] = e;
    }
    /* groups of starts whose computed positions fit the talker scratch (one
     * start always does: claim checked it against the context); a group
     * computes less of a prompt whose prefix an earlier group saved */
    int cap = qtts_generator_prefill_tokens(g);
    for (int i = 0; i < n_ok;) {
        int j = i, tok = 0;
        for (; j < n_ok; j++) {
            int t = ok[j].P - first_pos(&ok[j]);
            if (j > i && tok + t > cap) break;
            tok += t;
        }
        prefill_group(g, ok + i, j - i);
        i = j;
    }
    free(ok);
    return n_ok;
}

/* The buffers of a predictor frame of nb rows (backend.h: qtts_predictor_frame). */
static qtts_predictor_frame predictor_frame(qtts_generator *g, int nb) {
    size_t B = (size_t)g->max_batch;
    return (qtts_predictor_frame){.nb = nb, .past_hidden = g->past_hidden, .act = g->act_d, .tok = g->tok_d, .tok_stride = (int)B,
                                  .rows = g->prows_d, .logits = g->logits, .rec_logits = g->record ? g->rec_pred_d : NULL,
                                  .kv = &g->kv_pred, .pe = g->pe, .px = g->px, .pout = g->pout, .q = g->s_pred.q, .k = g->s_pred.k,
                                  .v = g->s_pred.v, .att = g->s_pred.att, .mlp = g->s_pred.mlp, .slot1 = g->pslot_d, .pos1 = g->ppos_d,
                                  .iota = g->iota_d, .kpos = g->kpos_d, .h_slot1 = g->pslot_h, .h_pos1 = g->ppos_h, .h_iota = g->iota_h,
                                  .h_kpos = g->kpos_h, .kpos_stride = B};
}

/* The code predictor's fixed op sequence for nb rows, positions below
 * ctx_bound (G) (see the top of this file): samples codebooks 1..G-1 of
 * each row's new frame into tok_d[k][j] (model.c: qtts_predict_frame);
 * codebook 0 (the c0 sampled last step) must already be in tok_d[0][j], the
 * rows' slots in act_d, the draws in prows_d and the first pass's
 * descriptors in pslot_d / ppos_d. Issues no transfer and no wait. */
static void predictor_ops(qtts_generator *g, int nb, int ctx_bound) {
    (void)ctx_bound; /* G: the key's bound, implied by the model */
    qtts_predictor_frame f = predictor_frame(g, nb);
    qtts_predict_frame(g->be, &g->pw, &f);
}

/* Code predictor for the n active slots in g->act (nb rows with padding):
 * stage its inputs, then the backend's fused frame where it has one for nb
 * rows, else run (or replay) predictor_ops. */
static void predict_residuals(qtts_generator *g, int n, int nb) {
    const qtts_ops *o = g->be->ops;
    if (nb != g->pre_n) {
        for (int j = 0; j < nb; j++) {
            g->pslot_h[j] = g->pslot_h[nb + j] = j;
            g->ppos_h[j] = 0;
            g->ppos_h[nb + j] = 1;
        }
        o->to_device(g->be, g->pslot_d, g->pslot_h, 2 * (size_t)nb * sizeof(int32_t));
        o->to_device(g->be, g->ppos_d, g->ppos_h, 2 * (size_t)nb * sizeof(int32_t));
        g->pre_n = nb;
    }
    for (int k = 1; k < g->G; k++)
        for (int j = 0; j < nb; j++) {
            qtts_sample_row *r = &g->rows[(size_t)(k - 1) * nb + j];
            if (j >= n) { /* padding: a greedy draw */
                *r = (qtts_sample_row){.temperature = 1, .top_p = 1, .penalty = 1, .greedy = 1, .seen_row = -1, .ban_from = g->Vp,
                                       .keep_id = -1, .ban_id = -1};
                continue;
            }
            const slot_state *s = &g->slots[g->act[j]];
            const qtts_sampler *p = &s->p.predictor;
            /* draw counter f*G + k for codebook k of frame f (c0 of frame f used f*G) */
            *r = (qtts_sample_row){.seed = s->p.seed, .counter = (uint64_t)s->n_frames * g->G + (uint64_t)k, .temperature = p->temperature,
                                   .top_p = p->top_p, .penalty = 1, .top_k = p->top_k, .greedy = p->greedy, .seen_row = -1,
                                   .ban_from = g->Vp, .keep_id = -1, .ban_id = -1};
        }
    o->to_device(g->be, g->prows_d, g->rows, (size_t)(g->G - 1) * nb * sizeof *g->rows);
    /* a backend's fused frame is one launch: nothing to record, and it is
     * never inside a capture (CUDA: a cooperative launch) */
    qtts_predictor_frame f = predictor_frame(g, nb);
    if (o->predict_frame && o->predict_frame(g->be, &g->pw, &f)) g->t.fused_steps++;
    else run_seq(g, seq_key(g, SEQ_PREDICTOR, nb, g->G), predictor_ops, nb, g->G);
    if (g->record) {
        o->to_host(g->be, g->rec_tmp, g->rec_pred_d, (size_t)(g->G - 1) * nb * g->Vp * sizeof(float));
        for (int k = 0; k < g->G - 1; k++)
            for (int j = 0; j < n; j++)
                memcpy(g->rec_pred + ((size_t)g->act[j] * (g->G - 1) + k) * g->Vp, g->rec_tmp + ((size_t)k * nb + j) * g->Vp,
                       (size_t)g->Vp * sizeof(float));
    }
}

/* The talker step's fixed op sequence for nb rows whose positions are all
 * below ctx_bound: input F(frame) + text row, the talker, each row's hidden
 * state back to its slot's past_hidden, the codec head into logits. The
 * frame's codes are in tok_d, the text rows in txt_d, the rows' slots in
 * act_d and their batch in slot_d / pos_d. */
static void talker_ops(qtts_generator *g, int nb, int ctx_bound) {
    const qtts_ops *o = g->be->ops;
    size_t H = (size_t)g->H;
    qtts_model_frame_embed_dev(g->m, g->tok_d, g->max_batch, nb, g->x);
    o->add(g->be, g->x, g->txt_d, g->x, (int64_t)nb * (int64_t)H);
    qtts_batch b = talker_batch(g, nb, ctx_bound);
    b.one_per_slot = true; /* each active slot once; padding rows are identical, at the spare slot's position 0 */
    qtts_lm_forward(g->be, &g->m->talker, &g->kv_talker, &b, g->x, g->out, &g->s_talker, NULL);
    o->scatter_rows(g->be, g->out, g->act_d, nb, (int)H, g->past_hidden);
    o->matmul(g->be, g->out, &g->m->codec_head, NULL, g->logits, nb);
}

qtts_status qtts_generator_step(qtts_generator *g, qtts_err *err) {
    (void)err; /* steps allocate nothing; kept for backends whose launches can fail */
    const qtts_ops *o = g->be->ops;
    size_t H = (size_t)g->H, B = (size_t)g->max_batch;
    int n = 0, spare = -1;
    for (int i = 0; i < g->max_batch; i++)
        if (g->slots[i].state == QTTS_SEQ_ACTIVE) g->act[n++] = i;
        else if (spare < 0) spare = i;
    if (n == 0) return QTTS_OK;
    int nb = step_rows(g, n); /* nb > n only when a slot is inactive: spare >= 0 */
    for (int j = 0; j < nb; j++) {
        if (j >= n) g->act[j] = spare;
        g->tok_h[j] = j < n ? g->slots[g->act[j]].c0 : 0;
    }
    o->to_device(g->be, g->tok_d, g->tok_h, (size_t)nb * sizeof(int32_t));
    o->to_device(g->be, g->act_d, g->act, (size_t)nb * sizeof(int32_t));
    double tp = stamp(g);
    qtts_range_push(g->be, "code predictor");
    predict_residuals(g, n, nb);
    qtts_range_pop(g->be);
    g->t.predictor += stamp(g) - tp; /* its sampling included: one op sequence */
    /* frame complete: next talker input F(frame) = C(c0) + sum_k E_k(c_k), plus trailing text */
    int longest = 1;
    for (int j = 0; j < nb; j++) {
        float *txt = g->txt_h + (size_t)j * H;
        if (j < n) {
            slot_state *s = &g->slots[g->act[j]];
            memcpy(txt, s->n_frames < s->Q ? s->trailing + (size_t)s->n_frames * H : g->pad_h, H * sizeof(float));
            g->slot_h[j] = g->act[j];
            g->pos_h[j] = s->pos++;
            longest = s->pos > longest ? s->pos : longest;
        } else { /* padding: the spare slot at position 0 */
            memset(txt, 0, H * sizeof(float));
            g->slot_h[j] = spare;
            g->pos_h[j] = 0;
        }
    }
    /* a power-of-two bound (at least 256) keeps the keys few */
    int bound = 256;
    while (bound < longest) bound *= 2;
    if (bound > g->max_ctx) bound = g->max_ctx;
    g->t.frames += n;
    g->t.steps++;
    double t0 = stamp(g);
    qtts_range_push(g->be, "talker step");
    o->to_device(g->be, g->txt_d, g->txt_h, (size_t)nb * H * sizeof(float));
    upload_batch(g, nb);
    run_seq(g, seq_key(g, SEQ_TALKER, nb, bound), talker_ops, nb, bound);
    qtts_range_pop(g->be);
    double t1 = stamp(g);
    g->t.talker += t1 - t0;
    qtts_range_push(g->be, "sampling");
    /* every active row draws its next c0 (a slot that reached max_frames
     * ignores it); the frame's residual codes were written beside it by the
     * predictor */
    record_talker(g, n);
    for (int j = 0; j < n; j++) g->rows[j] = c0_row(g, g->act[j]);
    o->to_device(g->be, g->rows_d, g->rows, (size_t)n * sizeof *g->rows);
    o->sample(g->be, g->logits, n, g->V, g->rows_d, g->seen_d, g->tok_d);
    qtts_range_push(g->be, "host transfer");
    o->to_host(g->be, g->tok_h, g->tok_d, (size_t)g->G * B * sizeof(int32_t)); /* the step's one transfer */
    qtts_range_pop(g->be);
    for (int j = 0; j < n; j++) {
        slot_state *s = &g->slots[g->act[j]];
        int32_t *frame = s->codes + (size_t)s->n_frames * g->G;
        frame[0] = s->c0;
        for (int k = 1; k < g->G; k++) frame[k] = g->tok_h[(size_t)k * B + j] < 0 ? 0 : g->tok_h[(size_t)k * B + j];
        s->n_frames++;
        if (s->n_frames >= s->p.max_frames) s->state = QTTS_SEQ_MAX;
        else accept_c0(g, g->act[j], g->tok_h[j]);
    }
    qtts_range_pop(g->be);
    g->t.sampling += qtts_now() - t1;
    return QTTS_OK;
}

qtts_seq_state qtts_generator_state(const qtts_generator *g, int slot) {
    return slot >= 0 && slot < g->max_batch ? g->slots[slot].state : QTTS_SEQ_FREE;
}

const int32_t *qtts_generator_codes(const qtts_generator *g, int slot, int *n_frames) {
    *n_frames = g->slots[slot].n_frames;
    return g->slots[slot].codes;
}

int qtts_generator_active(const qtts_generator *g) {
    int n = 0;
    for (int i = 0; i < g->max_batch; i++) n += g->slots[i].state == QTTS_SEQ_ACTIVE;
    return n;
}

const float *qtts_generator_talker_logits(const qtts_generator *g, int slot) {
    return g->rec_talker ? g->rec_talker + (size_t)slot * g->V : NULL;
}

const float *qtts_generator_predictor_logits(const qtts_generator *g, int slot) {
    return g->rec_pred ? g->rec_pred + (size_t)slot * (g->G - 1) * g->Vp : NULL;
}

const float *qtts_generator_hidden(const qtts_generator *g, int slot) {
    return g->rec_hidden ? g->rec_hidden + (size_t)slot * g->H : NULL;
}

qtts_gen_timing qtts_generator_timing(const qtts_generator *g) { return g->t; }
