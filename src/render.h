/* qtts render: a whole job (many sessions x many items) to audio files.
 * Plan: segment every item into utterances; those already in the journal are
 * done. Generate: continuous batching of all remaining utterances of all
 * sessions on one generator (finished slots are refilled at once, between
 * decode steps, their prompts prefilled together); each finished
 * utterance's codes go to the journal before any audio is assembled.
 * Assemble: when an item's utterances are all journaled, decode them in one
 * batched call, join them with pauses and write the file atomically; then
 * the manifest. */
#ifndef QTTS_RENDER_H
#define QTTS_RENDER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "codec.h"
#include "generate.h"
#include "job.h"
#include "model.h"
#include "tokenizer.h"

typedef struct qtts_render_params {
    int max_batch;          /* slots; 0 = sized from memory (see render.c) */
    bool fresh;             /* forget the journal and previous outputs' state */
    bool share_prefix;      /* prefill a session's common prompt prefix once (exact; on by default) */
    /* prompts prefilled in one talker pass when slots are refilled; 0 = as
     * many as there are free slots (and the talker scratch takes), 1 = one by
     * one. The files are the same bytes either way on the CPU backend. */
    int prefill_batch;
    int decode_chunk;       /* codec windows (official 300 / 25); 0 = one call */
    int decode_context;
    /* decode and write items on a second thread while generation goes on;
     * the codec must then be loaded on a backend of its own (not the
     * model's). The files are the same bytes either way. */
    bool decode_thread;
    /* wait for the device at every stage boundary, so that the summary's
     * stage times are device times (benchmarks: the waits cost overlap) */
    bool sync_stages;
    FILE *progress;         /* progress bar and summary; NULL = quiet */
    volatile sig_atomic_t *stop; /* set asynchronously (SIGINT/SIGTERM): finish the step, keep the journal, stop */
} qtts_render_params;

qtts_render_params qtts_render_default_params(void);

typedef struct qtts_render_summary {
    int items, items_written, items_failed, items_reused;
    int utterances, utterances_generated, utterances_resumed, runaway_flags;
    double audio_seconds, wall_seconds, generate_seconds, decode_seconds;
    /* where generation went: the generator's stage timings (host time,
     * which includes the device's only where the host waits for it, unless
     * sync_stages), prefills, steps and frames */
    qtts_gen_timing gen;
} qtts_render_summary;

/* Render `job` with a loaded model, tokenizer and codec. Per-item failures
 * (e.g. text that gives no tokens) are recorded in the manifest and counted
 * in items_failed; the others still render. Returns QTTS_ERR_INTERRUPTED
 * when stopped through params->stop (every finished utterance is kept). */
qtts_status qtts_render_run(const qtts_job *job, qtts_model *m, const qtts_tokenizer *tok, qtts_codec *codec,
                            const qtts_render_params *p, qtts_render_summary *sum, qtts_err *err);

#endif
