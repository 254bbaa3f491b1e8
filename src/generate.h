/* Autoregressive generation of 16-codebook frames for many sequences at once.
 * Each sequence owns a slot: a talker KV region, its position, its generated
 * codes and its seed. A step advances every active slot by one frame:
 *   code predictor (batched across slots): [proj(past_hidden), proj(C(c0))]
 *     -> c1, then proj(E_{k-1}(c_{k-1})) -> c_k for k = 2..15;
 *   talker (batched): F(frame) + trailing text (or tts_pad) -> past_hidden,
 *     logits -> next c0; EOS (2150) ends the sequence without a frame. */
#ifndef QTTS_GENERATE_H
#define QTTS_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "sample.h"

typedef struct qtts_gen_params {
    qtts_sampler talker;    /* codebook 0 */
    qtts_sampler predictor; /* codebooks 1..15 (no penalty, no suppression) */
    int max_frames;         /* frames produced at most (the reference's max_new_tokens - 1) */
    int min_new_tokens;     /* EOS banned for the first this-many c0 samples (official: 2) */
    uint64_t seed;          /* per-sequence seed (qtts_seed_derive) */
    bool ignore_eos;        /* benchmarks only: never stop on EOS */
} qtts_gen_params;

/* Parameters from generation_config.json; greedy turns both levels to argmax. */
void qtts_gen_params_from_config(qtts_gen_params *p, const qtts_gen_config *g, bool greedy);

typedef enum qtts_seq_state {
    QTTS_SEQ_FREE = 0,
    QTTS_SEQ_ACTIVE,
    QTTS_SEQ_EOS,       /* sampled EOS */
    QTTS_SEQ_MAX,       /* reached max_frames */
} qtts_seq_state;

typedef struct qtts_generator qtts_generator;

/* max_batch slots; max_ctx = longest prompt + frames per slot. record_logits
 * keeps each slot's last talker logits and last frame's predictor logits on
 * the host (tests). */
qtts_status qtts_generator_init(qtts_generator **g, const qtts_model *m, int max_batch, int max_ctx, bool record_logits,
                                qtts_err *err);
void qtts_generator_free(qtts_generator *g);

/* Start a sequence in a free slot: prefill prompt [P, H] (host), keep the
 * trailing text queue [Q, H] (host) and tts_pad [H] (host), sample its first
 * c0. Fails if the slot is busy or P + max_frames + 1 exceeds max_ctx. */
qtts_status qtts_generator_start(qtts_generator *g, int slot, const float *prompt, int P, const float *trailing, int Q,
                                 const float *tts_pad, const qtts_gen_params *p, qtts_err *err);
/* A shared prompt prefix's talker KV (e.g. a session's instruct, role and
 * codec prefix): backend [layers][len][n_kv*head_dim] for K and V. Positions
 * < len of every prompt that shares it get the same KV (attention is causal),
 * so prefilling it once and copying it into each new slot is exact. */
typedef struct qtts_kv_prefix {
    int len;      /* positions to share; set by the caller before first use */
    float *k, *v; /* NULL until the first start with this prefix saved it */
} qtts_kv_prefix;
void qtts_kv_prefix_free(qtts_generator *g, qtts_kv_prefix *p);

/* qtts_generator_start with a shared prefix (NULL or len 0: none). When
 * prefix->k is set, its KV is copied into the slot and only positions
 * >= len are prefilled; otherwise the whole prompt is prefilled and its first
 * len positions are saved into prefix (when the memory for it cannot be had,
 * it is not, and later starts compute it again). Requires len < P. */
qtts_status qtts_generator_start_shared(qtts_generator *g, int slot, const float *prompt, int P, const float *trailing, int Q,
                                        const float *tts_pad, const qtts_gen_params *p, qtts_kv_prefix *prefix, qtts_err *err);

/* One sequence to start: qtts_generator_start_shared's arguments. */
typedef struct qtts_gen_start {
    int slot;
    const float *prompt; /* [P][H] host */
    int P;
    const float *trailing; /* [Q][H] host */
    int Q;
    const float *tts_pad;  /* [H] host */
    const qtts_gen_params *p;
    qtts_kv_prefix *prefix; /* NULL: none */
} qtts_gen_start;

/* Start n sequences with their prompts prefilled together: one talker pass
 * over all their positions (a ragged batch; in groups of at most
 * qtts_generator_prefill_tokens positions), one codec head over their last
 * states and one draw of their first c0s. Each is checked as
 * qtts_generator_start_shared checks it; one that fails leaves its slot free
 * and the others start. errs (NULL, or n of them) get each start's outcome
 * (status QTTS_OK: started). Returns how many started. Where a row's result
 * does not depend on the rows beside it (the CPU backend) the sequences are
 * the same as started one by one; the talker is causal per slot, so only
 * the batch's rounding can differ elsewhere. Several starts that share a
 * prefix not saved yet each compute it; the first saves it (if the memory
 * for it cannot be had, later starts compute it again). */
int qtts_generator_start_many(qtts_generator *g, const qtts_gen_start *starts, int n, qtts_err *errs);
/* The most prompt positions one prefill pass takes (the talker scratch). */
int qtts_generator_prefill_tokens(const qtts_generator *g);

/* Advance every active slot by one frame. */
qtts_status qtts_generator_step(qtts_generator *g, qtts_err *err);

qtts_seq_state qtts_generator_state(const qtts_generator *g, int slot);
/* Frames produced so far: codes [n][16] (valid until the slot is released). */
const int32_t *qtts_generator_codes(const qtts_generator *g, int slot, int *n_frames);
void qtts_generator_release(qtts_generator *g, int slot);
int qtts_generator_active(const qtts_generator *g);
/* With record_logits: last talker logits [3072] (before processors) and the
 * last frame's predictor logits [15][2048]. */
const float *qtts_generator_talker_logits(const qtts_generator *g, int slot);
const float *qtts_generator_predictor_logits(const qtts_generator *g, int slot);
/* With record_logits: the slot's last post-norm talker hidden state [H]. */
const float *qtts_generator_hidden(const qtts_generator *g, int slot);

/* Stage timings accumulated over the generator's life, seconds. */
typedef struct qtts_gen_timing {
    double prefill, talker, predictor, sampling;
    int64_t frames, steps, prefills; /* frames generated, generator steps, prompts prefilled */
    int64_t prefill_batches;         /* talker passes those prefills took (qtts_generator_start_many batches them) */
    int64_t fused_steps;             /* steps whose code predictor was the backend's one-launch frame */
} qtts_gen_timing;
qtts_gen_timing qtts_generator_timing(const qtts_generator *g);
/* Wait for the backend at every stage boundary so that the stage timings are
 * device times (benchmarks; off by default, since the waits cost overlap). */
void qtts_generator_set_sync_timing(qtts_generator *g, bool on);

#endif
