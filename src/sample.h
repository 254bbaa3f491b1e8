/* Token sampling exactly as the official generate (transformers 4.57):
 * repetition penalty over the codes already generated, min-new-tokens EOS
 * ban, suppressed ids, then temperature, top-k (ties kept), top-p, and a
 * multinomial draw. Randomness is counter-based: the uniform for draw
 * (frame, codebook) of a sequence depends only on its seed, so a sequence's
 * output never depends on what else is in the batch, on either backend. */
#ifndef QTTS_SAMPLE_H
#define QTTS_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct qtts_sampler {
    bool greedy;              /* argmax after penalties/suppression */
    float temperature;        /* > 0 */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float repetition_penalty; /* 1: off */
} qtts_sampler;

/* The splitmix64 finaliser: a well-mixed 64-bit function of z. */
uint64_t qtts_mix64(uint64_t z);
/* Uniform in [0, 1) for (seed, counter): splitmix64 of a mix of both. */
double qtts_rng_uniform(uint64_t seed, uint64_t counter);
/* Derive a sequence seed from a job seed and up to 3 indices (session, item, segment). */
uint64_t qtts_seed_derive(uint64_t job_seed, uint64_t a, uint64_t b, uint64_t c);

/* Apply the repetition penalty in place: for every id with seen[id] != 0,
 * logit > 0 -> logit / p, else logit * p (once per distinct id). */
void qtts_sample_penalize(float *logits, int n, const uint8_t *seen, float penalty);

/* Pick a token from logits[0..n) (modified in place; -INFINITY entries are
 * never chosen). u is the uniform draw (ignored when greedy). Returns -1 if
 * every logit is -inf or NaN. work must hold n floats and n ints. */
int qtts_sample_pick(float *logits, int n, const qtts_sampler *s, double u, float *work_f, int *work_i);

#endif
