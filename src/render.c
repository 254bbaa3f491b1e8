/* Job rendering (see render.h). Utterance seeds come from content, not from
 * position: seed = derive(job seed, item codes_hash, segment, attempt), so an
 * utterance's codes are the same whatever else shares its batch, and a
 * journal record stays valid when other items are added or reordered. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "render.h"

#include <cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sndfile.h>
#include <stdlib.h>
#include <unistd.h>

#include "audio.h"
#include "generate.h"
#include "journal.h"
#include "prompt.h"
#include "sample.h"
#include "segment.h"
#include "synth.h"

typedef struct {
    int item;                 /* flat item index */
    int seg;                  /* segment index within the item */
    qtts_journal_key key;
    int max_frames;           /* runaway guard */
    int attempt;              /* 0, then 1 after a runaway */
    int frames;
    bool done, runaway, failed;
    bool generated;           /* in this run (not from the journal) */
    qtts_prompt prompt;
    double t_start;
} utt_t;

/* One utterance of a refill on its way into a slot: what its
 * qtts_gen_start points into (host buffers, freed once started). */
typedef struct {
    qtts_gen_params gp;
    float *emb, *trail, *pad;
    int utt;
} start_t;

typedef struct {
    const qtts_job_session *s;
    const qtts_job_item *it;
    int session;
    qtts_segmentation seg;
    int first_utt, n_utt, n_done;
    bool failed, written, reused;
    char error[512];
    int frames;
    double seconds, decode_s;
    int runaways;
} item_t;

typedef struct {
    const qtts_job *job;
    qtts_model *m;
    const qtts_tokenizer *tok;
    qtts_codec *codec;
    const qtts_render_params *p;
    qtts_journal *jr;
    item_t *items;
    int n_items;
    utt_t *utts;
    int n_utts;
    cJSON *old_manifest;
    qtts_render_summary *sum;
    double t0, last_progress;
    int64_t total_tokens, done_tokens;
    uint64_t model_fp;
} render_ctx;

/* Fingerprint of the checkpoint: config values, every tensor's name, dtype,
 * shape, and its first 32 bytes. Journal keys and the manifest carry it, so
 * codes made by another checkpoint are never reused (no --fresh needed). */
static uint64_t model_fingerprint(const qtts_model *m) {
    uint64_t h = qtts_fnv1a64(QTTS_FNV64_INIT, &m->cfg, sizeof m->cfg);
    for (int i = 0; i < m->st.n_tensors; i++) {
        const qtts_st_tensor *t = &m->st.tensors[i];
        h = qtts_fnv1a64(h, t->name, strlen(t->name));
        h = qtts_fnv1a64(h, &t->dtype, sizeof t->dtype);
        h = qtts_fnv1a64(h, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        h = qtts_fnv1a64(h, t->data, t->nbytes < 32 ? t->nbytes : 32);
    }
    return h;
}

/* A SIGKILL during an atomic write leaves "<name>.tmp.<pid>" behind: remove
 * those whose writer is gone (nftw has no user pointer; the walk needs none). */
static int remove_stale_tmp(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if (type != FTW_F) return 0;
    const char *t = strstr(path, ".tmp.");
    if (!t) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (*end || pid <= 0 || pid == (long)getpid()) return 0;
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM) return 0; /* its writer still runs */
    unlink(path);
    return 0;
}

qtts_render_params qtts_render_default_params(void) {
    return (qtts_render_params){.max_batch = 0,
                                .fresh = false,
                                .share_prefix = true,
                                .prefill_batch = 0,
                                .decode_chunk = QTTS_CODEC_CHUNK_DEFAULT,
                                .decode_context = QTTS_CODEC_CONTEXT_DEFAULT,
                                .progress = NULL,
                                .stop = NULL};
}

static qtts_prompt_mode voice_mode(const qtts_job_voice *v) {
    return v->kind == QTTS_JOB_VOICE_INSTRUCT ? QTTS_PROMPT_VOICE_DESIGN : QTTS_PROMPT_CUSTOM_VOICE;
}

/* Text of one utterance as a fresh NUL-terminated string. */
static char *utt_text(const item_t *it, int seg) {
    const qtts_segment *s = &it->seg.seg[seg];
    size_t n = s->end - s->start;
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, it->seg.text + s->start, n);
        t[n] = 0;
    }
    return t;
}

static void gen_params_for(const render_ctx *c, const utt_t *u, qtts_gen_params *gp) {
    const qtts_job_params *jp = &c->items[u->item].it->params;
    qtts_gen_params_from_config(gp, &c->m->gen, jp->greedy);
    gp->talker.temperature = jp->temperature;
    gp->talker.top_k = jp->top_k;
    gp->talker.top_p = jp->top_p;
    gp->talker.repetition_penalty = jp->repetition_penalty;
    gp->predictor.temperature = jp->subtalker_temperature;
    gp->predictor.top_k = jp->subtalker_top_k;
    gp->predictor.top_p = jp->subtalker_top_p;
    gp->max_frames = u->max_frames;
    gp->seed = qtts_seed_derive(jp->seed, c->items[u->item].it->codes_hash, (uint64_t)u->seg, (uint64_t)u->attempt);
}

/* ---------------- manifest ---------------- */

static const char *brk_name(qtts_seg_break b) {
    static const char *n[] = {"end", "paragraph", "sentence", "clause", "word", "hard"};
    return (unsigned)b < 6 ? n[b] : "?";
}

static qtts_status write_manifest(render_ctx *c, qtts_err *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "job", c->job->path);
    cJSON_AddStringToObject(root, "model", c->job->model);
    char fp[32];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)c->model_fp);
    cJSON_AddStringToObject(root, "model_fingerprint", fp);
    cJSON_AddStringToObject(root, "format", qtts_audio_format_ext(c->job->format));
    cJSON_AddNumberToObject(root, "sample_rate", qtts_codec_sample_rate(c->codec));
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (int i = 0; i < c->n_items; i++) {
        item_t *it = &c->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "session", it->s->id);
        cJSON_AddStringToObject(o, "id", it->it->id);
        cJSON_AddStringToObject(o, "output", it->it->output);
        char h[32];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)(it->it->audio_hash ^ c->model_fp));
        cJSON_AddStringToObject(o, "audio_hash", h);
        cJSON_AddStringToObject(o, "status", it->failed ? "failed" : it->written || it->reused ? "done" : "pending");
        if (it->failed) cJSON_AddStringToObject(o, "error", it->error);
        cJSON_AddStringToObject(o, "text", it->it->text);
        cJSON_AddNumberToObject(o, "frames", it->frames);
        cJSON_AddNumberToObject(o, "duration_s", it->seconds);
        cJSON_AddNumberToObject(o, "decode_s", it->decode_s);
        cJSON *segs = cJSON_AddArrayToObject(o, "segments");
        cJSON *warn = cJSON_AddArrayToObject(o, "warnings");
        for (int k = 0; k < it->n_utt; k++) {
            utt_t *u = &c->utts[it->first_utt + k];
            cJSON *so = cJSON_CreateObject();
            char *t = utt_text(it, k);
            cJSON_AddStringToObject(so, "text", t ? t : "");
            free(t);
            cJSON_AddNumberToObject(so, "tokens", it->seg.seg[k].n_tokens);
            cJSON_AddNumberToObject(so, "paragraph", it->seg.seg[k].paragraph);
            cJSON_AddStringToObject(so, "break", brk_name(it->seg.seg[k].brk));
            cJSON_AddNumberToObject(so, "frames", u->frames);
            cJSON_AddNumberToObject(so, "duration_s", u->frames / 12.5);
            cJSON_AddNumberToObject(so, "attempts", u->attempt + 1);
            cJSON_AddBoolToObject(so, "runaway", u->runaway);
            cJSON_AddItemToArray(segs, so);
            if (u->runaway) {
                char w[256];
                snprintf(w, sizeof w, "segment %d: no end of speech within %d frames, twice (seeds retried); audio kept, check it", k,
                         u->max_frames);
                cJSON_AddItemToArray(warn, cJSON_CreateString(w));
            }
        }
        cJSON_AddItemToArray(items, o);
    }
    /* sessions: concatenated file and chapter list */
    cJSON *sess = cJSON_AddArrayToObject(root, "sessions");
    for (int s = 0; s < c->job->n_sessions; s++) {
        const qtts_job_session *js = &c->job->sessions[s];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", js->id);
        if (js->output) cJSON_AddStringToObject(o, "output", js->output);
        cJSON *ch = cJSON_AddArrayToObject(o, "chapters");
        double at = 0;
        for (int i = 0; i < c->n_items; i++) {
            if (c->items[i].session != s || c->items[i].failed) continue;
            cJSON *co = cJSON_CreateObject();
            cJSON_AddStringToObject(co, "item", c->items[i].it->id);
            cJSON_AddNumberToObject(co, "start_s", at);
            cJSON_AddNumberToObject(co, "duration_s", c->items[i].seconds);
            cJSON_AddItemToArray(ch, co);
            at += c->items[i].seconds + js->params.pause_paragraph_ms / 1000.0;
        }
        cJSON_AddItemToArray(sess, o);
    }
    qtts_render_summary *S = c->sum;
    cJSON *so = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(so, "items", S->items);
    cJSON_AddNumberToObject(so, "items_written", S->items_written);
    cJSON_AddNumberToObject(so, "items_reused", S->items_reused);
    cJSON_AddNumberToObject(so, "items_failed", S->items_failed);
    cJSON_AddNumberToObject(so, "utterances", S->utterances);
    cJSON_AddNumberToObject(so, "utterances_generated", S->utterances_generated);
    cJSON_AddNumberToObject(so, "utterances_resumed", S->utterances_resumed);
    cJSON_AddNumberToObject(so, "runaway_flags", S->runaway_flags);
    cJSON_AddNumberToObject(so, "audio_seconds", S->audio_seconds);
    cJSON_AddNumberToObject(so, "wall_seconds", qtts_now() - c->t0);
    /* where the time went: generation (decoding included, it runs as items
     * complete) and the decoder alone */
    cJSON_AddNumberToObject(so, "generate_seconds", S->generate_seconds);
    cJSON_AddNumberToObject(so, "decode_seconds", S->decode_seconds);
    cJSON_AddBoolToObject(so, "decode_thread", c->p->decode_thread);
    /* the generator's stages (render.h); the code predictor's time includes its sampling */
    cJSON *sg = cJSON_AddObjectToObject(so, "stages");
    cJSON_AddBoolToObject(sg, "synced", c->p->sync_stages);
    cJSON_AddNumberToObject(sg, "prefill_seconds", S->gen.prefill);
    cJSON_AddNumberToObject(sg, "talker_seconds", S->gen.talker);
    cJSON_AddNumberToObject(sg, "code_predictor_seconds", S->gen.predictor);
    cJSON_AddNumberToObject(sg, "sampling_seconds", S->gen.sampling);
    cJSON_AddNumberToObject(sg, "prefills", (double)S->gen.prefills);
    cJSON_AddNumberToObject(sg, "prefill_batches", (double)S->gen.prefill_batches);
    cJSON_AddNumberToObject(sg, "steps", (double)S->gen.steps);
    cJSON_AddNumberToObject(sg, "frames", (double)S->gen.frames);
    cJSON_AddNumberToObject(sg, "predictor_fused_steps", (double)S->gen.fused_steps);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return qtts_fail(err, QTTS_ERR_OOM, "manifest: out of memory");
    char path[4096];
    qtts_status st = qtts_path_join(path, sizeof path, c->job->output_dir, "manifest.json", err);
    if (!st) st = qtts_write_file_atomic(path, txt, strlen(txt), err);
    free(txt);
    return st;
}

/* An item whose audio file exists and whose previous manifest entry has the
 * same audio hash needs no assembly; its frames and duration are taken from
 * that entry. */
static bool reusable(const render_ctx *c, item_t *it) {
    if (!c->old_manifest || c->p->fresh) return false;
    char path[4096];
    if (qtts_path_join(path, sizeof path, c->job->output_dir, it->it->output, NULL) || !qtts_file_exists(path)) return false;
    char h[32];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)(it->it->audio_hash ^ c->model_fp));
    const cJSON *arr = cJSON_GetObjectItem(c->old_manifest, "items");
    for (const cJSON *o = arr ? arr->child : NULL; o; o = o->next) {
        const cJSON *ss = cJSON_GetObjectItem(o, "session"), *id = cJSON_GetObjectItem(o, "id");
        const cJSON *ah = cJSON_GetObjectItem(o, "audio_hash"), *stt = cJSON_GetObjectItem(o, "status");
        const cJSON *out = cJSON_GetObjectItem(o, "output");
        if (cJSON_IsString(ss) && cJSON_IsString(id) && cJSON_IsString(ah) && cJSON_IsString(stt) && cJSON_IsString(out) &&
            !strcmp(ss->valuestring, it->s->id) && !strcmp(id->valuestring, it->it->id) && !strcmp(ah->valuestring, h) &&
            !strcmp(out->valuestring, it->it->output) && !strcmp(stt->valuestring, "done")) {
            const cJSON *fr = cJSON_GetObjectItem(o, "frames"), *du = cJSON_GetObjectItem(o, "duration_s");
            it->frames = cJSON_IsNumber(fr) ? fr->valueint : 0;
            it->seconds = cJSON_IsNumber(du) ? du->valuedouble : 0;
            return true;
        }
    }
    return false;
}

/* ---------------- assembly ---------------- */

static int pause_ms(const qtts_job_params *p, qtts_seg_break b) {
    switch (b) {
    case QTTS_SEG_BREAK_PARAGRAPH: return p->pause_paragraph_ms;
    case QTTS_SEG_BREAK_SENTENCE: return p->pause_sentence_ms;
    case QTTS_SEG_BREAK_CLAUSE: return p->pause_sentence_ms / 2; /* a split inside a long sentence */
    default: return 0;                                           /* word/hard splits and the end: no pause */
    }
}

/* An item's audio, from its journaled codes to its file: prepared and
 * finished on the generating thread (journal, bookkeeping, manifest), run
 * there too or on the decoder thread (decode, join, write). */
typedef struct {
    int item;
    int B;
    int *T;           /* [B] frames per utterance */
    int32_t *codes;   /* [B][Tmax][16] */
    int64_t *gap;     /* [B] samples of silence after each utterance */
    char path[4096];
    /* results of the run */
    qtts_status st;
    qtts_err err;
    double decode_s, seconds;
} decode_job;

static void decode_job_free(decode_job *j) {
    if (!j) return;
    free(j->T);
    free(j->codes);
    free(j->gap);
    free(j);
}

/* The item's codes from the journal, into one decode batch. */
static qtts_status prepare_decode(render_ctx *c, int item, decode_job **out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    item_t *it = &c->items[item];
    int B = it->n_utt, G = QTTS_JOURNAL_CODEBOOKS, sr = qtts_codec_sample_rate(c->codec), Tmax = 0;
    int32_t **cs = NULL;
    decode_job *j = calloc(1, sizeof *j);
    QTTS_CHECK(j, err, QTTS_ERR_OOM, "out of memory");
    j->item = item;
    j->B = B;
    j->T = calloc((size_t)B, sizeof *j->T);
    j->gap = calloc((size_t)B, sizeof *j->gap);
    cs = calloc((size_t)B, sizeof *cs);
    QTTS_CHECK(j->T && j->gap && cs, err, QTTS_ERR_OOM, "out of memory");
    for (int k = 0; k < B; k++) {
        utt_t *u = &c->utts[it->first_utt + k];
        bool found = false;
        QTTS_TRY(qtts_journal_lookup(c->jr, u->key, &cs[k], &j->T[k], &found, err));
        QTTS_CHECK(found && j->T[k] > 0, err, QTTS_ERR_INTERNAL, "segment %d: no codes in the journal", k);
        Tmax = j->T[k] > Tmax ? j->T[k] : Tmax;
        j->gap[k] = k + 1 < B ? (int64_t)pause_ms(&it->it->params, it->seg.seg[k].brk) * sr / 1000 : 0;
    }
    j->codes = calloc((size_t)B * Tmax * G, sizeof *j->codes);
    QTTS_CHECK(j->codes, err, QTTS_ERR_OOM, "decode batch: out of memory");
    for (int k = 0; k < B; k++) memcpy(j->codes + (size_t)k * Tmax * G, cs[k], (size_t)j->T[k] * G * sizeof(int32_t));
    QTTS_TRY(qtts_path_join(j->path, sizeof j->path, c->job->output_dir, it->it->output, err));
cleanup:
    for (int k = 0; cs && k < B; k++) free(cs[k]);
    free(cs);
    if (st != QTTS_OK) {
        decode_job_free(j);
        j = NULL;
    }
    *out = j;
    return st;
}

/* Decode every utterance of the job in one batched call, join them with
 * their pauses, write the file. Touches nothing but the job, the codec and
 * the file system: safe on the decoder thread. */
static void run_decode(qtts_codec *codec, const qtts_render_params *p, decode_job *j) {
    qtts_status st = QTTS_OK;
    qtts_err *err = &j->err;
    int spf = qtts_codec_samples_per_frame(codec), sr = qtts_codec_sample_rate(codec);
    float **wav = calloc((size_t)j->B, sizeof *wav), *pcm = NULL;
    QTTS_CHECK(wav, err, QTTS_ERR_OOM, "out of memory");
    double t0 = qtts_now();
    QTTS_TRY(qtts_codec_decode_chunked(codec, j->codes, j->T, j->B, p->decode_chunk, p->decode_context, wav, err));
    QTTS_TRY(qtts_backend_check(qtts_codec_backend(codec), err));
    j->decode_s = qtts_now() - t0;
    int64_t total = 0;
    for (int k = 0; k < j->B; k++) total += (int64_t)j->T[k] * spf + j->gap[k];
    pcm = calloc((size_t)total, sizeof *pcm);
    QTTS_CHECK(pcm, err, QTTS_ERR_OOM, "item audio (%lld samples): out of memory", (long long)total);
    int64_t at = 0;
    for (int k = 0; k < j->B; k++) {
        memcpy(pcm + at, wav[k], (size_t)j->T[k] * spf * sizeof(float));
        at += (int64_t)j->T[k] * spf + j->gap[k];
    }
    QTTS_TRY(qtts_mkdirs(j->path, true, err));
    QTTS_TRY(qtts_audio_write(j->path, pcm, total, sr, err));
    j->seconds = (double)total / sr;
cleanup:
    for (int k = 0; wav && k < j->B; k++) free(wav[k]);
    free(wav);
    free(pcm);
    j->st = st;
}

/* Mark an item failed with the message in err (its other utterances are skipped). */
static void fail_item(render_ctx *c, item_t *it, const qtts_err *e) {
    if (it->failed) return;
    it->failed = true;
    snprintf(it->error, sizeof it->error, "%s: %s", qtts_status_str(e->status), e->msg);
    c->sum->items_failed++;
    if (c->p->progress)
        fprintf(c->p->progress, "\nqtts render: %s/%s: %s\n", it->s->id, it->it->id, it->error);
}

/* A run job's results into the item, the summary and the manifest. */
static void finish_decode(render_ctx *c, decode_job *j) {
    item_t *it = &c->items[j->item];
    if (j->st != QTTS_OK) {
        fail_item(c, it, &j->err);
        decode_job_free(j);
        return;
    }
    it->decode_s = j->decode_s;
    c->sum->decode_seconds += j->decode_s;
    it->frames = 0;
    for (int k = 0; k < j->B; k++) {
        it->frames += j->T[k];
        c->utts[it->first_utt + k].frames = j->T[k];
    }
    it->seconds = j->seconds;
    it->written = true;
    c->sum->items_written++;
    c->sum->audio_seconds += it->seconds;
    decode_job_free(j);
    qtts_err me = {0};
    if (write_manifest(c, &me) != QTTS_OK && c->p->progress) fprintf(c->p->progress, "\nqtts render: manifest: %s\n", me.msg);
}

/* The decoder thread (params.decode_thread): items in a FIFO of at most
 * DECODE_QUEUE jobs, run in order by one worker on the codec's own backend,
 * while the generating thread goes on; finished jobs are collected from the
 * head of the FIFO by the generating thread. The bound keeps the codes
 * waiting for decoding few (the generating thread waits when it is full). */
#define DECODE_QUEUE 8
typedef struct {
    qtts_codec *codec;
    const qtts_render_params *p;
    pthread_t th;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    decode_job *q[DECODE_QUEUE]; /* FIFO: q[(head + i) % DECODE_QUEUE] for i < n */
    int head, n;
    int started, finished;       /* of the n: taken by the worker, and done (started <= n, finished <= started) */
    bool quit;                   /* take no more jobs */
} decoder;

static void *decoder_main(void *arg) {
    decoder *d = arg;
    qtts_backend_bind_thread(qtts_codec_backend(d->codec));
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->quit && d->started == d->n) pthread_cond_wait(&d->cv, &d->mu);
        if (d->quit) break;
        decode_job *j = d->q[(d->head + d->started) % DECODE_QUEUE];
        d->started++;
        pthread_mutex_unlock(&d->mu);
        run_decode(d->codec, d->p, j);
        pthread_mutex_lock(&d->mu);
        d->finished++;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static qtts_status decoder_start(decoder *d, qtts_codec *codec, const qtts_render_params *p, qtts_err *err) {
    memset(d, 0, sizeof *d);
    d->codec = codec;
    d->p = p;
    if (!p->decode_thread) return QTTS_OK;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    int e = pthread_create(&d->th, NULL, decoder_main, d);
    if (e) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        return qtts_fail(err, QTTS_ERR_INTERNAL, "decoder thread: %s", strerror(e));
    }
    d->running = true;
    return QTTS_OK;
}

/* Finish every job the worker has completed (generating thread). */
static void decoder_collect(decoder *d, render_ctx *c) {
    if (!d->running) return;
    decode_job *done[DECODE_QUEUE];
    pthread_mutex_lock(&d->mu);
    int k = d->finished;
    for (int i = 0; i < k; i++) done[i] = d->q[(d->head + i) % DECODE_QUEUE];
    d->head = (d->head + k) % DECODE_QUEUE;
    d->n -= k;
    d->started -= k;
    d->finished = 0;
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < k; i++) finish_decode(c, done[i]);
}

/* Decode and write an item: at once without the thread, else queued. */
static void decoder_submit(decoder *d, render_ctx *c, decode_job *j) {
    if (!d->running) {
        run_decode(c->codec, c->p, j);
        finish_decode(c, j);
        return;
    }
    for (;;) {
        decoder_collect(d, c);
        pthread_mutex_lock(&d->mu);
        if (d->n < DECODE_QUEUE) {
            d->q[(d->head + d->n) % DECODE_QUEUE] = j;
            d->n++;
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
            return;
        }
        while (d->finished == 0) pthread_cond_wait(&d->cv, &d->mu); /* full: wait for one to finish */
        pthread_mutex_unlock(&d->mu);
    }
}

/* Wait for every queued job and finish them all. */
static void decoder_drain(decoder *d, render_ctx *c) {
    if (!d->running) return;
    pthread_mutex_lock(&d->mu);
    while (d->finished < d->n) pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
    decoder_collect(d, c);
}

/* Stop the worker after its current job; finish what is done and drop the
 * jobs it had not started (their codes stay in the journal: a rerun writes
 * those items). */
static void decoder_stop(decoder *d, render_ctx *c) {
    if (!d->running) return;
    pthread_mutex_lock(&d->mu);
    d->quit = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->th, NULL);
    d->running = false;
    for (int i = 0; i < d->finished; i++) finish_decode(c, d->q[(d->head + i) % DECODE_QUEUE]);
    for (int i = d->finished; i < d->n; i++) decode_job_free(d->q[(d->head + i) % DECODE_QUEUE]);
    d->n = d->started = d->finished = 0;
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

/* One more of the item's utterances is journaled: when it was the last,
 * the item goes to the decoder. */
static void item_utterance_done(render_ctx *c, decoder *d, item_t *it) {
    it->n_done++;
    if (it->n_done < it->n_utt || it->failed) return;
    decode_job *j = NULL;
    qtts_err e = {0};
    if (prepare_decode(c, (int)(it - c->items), &j, &e) != QTTS_OK) {
        fail_item(c, it, &e);
        return;
    }
    decoder_submit(d, c, j);
}

static void progress(render_ctx *c, bool force) {
    if (!c->p->progress) return;
    double now = qtts_now();
    if (!force && now - c->last_progress < 0.5) return;
    c->last_progress = now;
    qtts_render_summary *S = c->sum;
    int items_done = S->items_written + S->items_reused + S->items_failed;
    int utt_done = S->utterances_generated + S->utterances_resumed;
    double el = now - c->t0, frac = c->total_tokens ? (double)c->done_tokens / c->total_tokens : 1;
    double gen_audio = 0;
    for (int i = 0; i < c->n_utts; i++)
        if (c->utts[i].generated) gen_audio += c->utts[i].frames / 12.5;
    double eta = frac > 0.001 ? el * (1 - frac) / frac : 0;
    fprintf(c->p->progress, "\r[%3.0f%%] items %d/%d  utterances %d/%d  generated %.1f s of audio  %.1fx real time  ETA %d:%02d:%02d   ",
            100 * frac, items_done, S->items, utt_done, S->utterances, gen_audio, el > 0 ? gen_audio / el : 0, (int)eta / 3600,
            ((int)eta / 60) % 60, (int)eta % 60);
    fflush(c->p->progress);
}

/* Slots from memory: the talker KV cache dominates (fp32 on the CPU backend).
 * Give it at most a quarter of physical memory, and at most 64 slots. */
static int auto_batch(const qtts_model *m, int max_ctx, int pending) {
    double per_slot = 2.0 * m->cfg.talker.num_layers * m->cfg.talker.num_kv_heads * m->cfg.talker.head_dim * 4.0 * max_ctx;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
    double budget = pages > 0 && psize > 0 ? (double)pages * psize / 4 : 4e9;
    int n = (int)(budget / per_slot);
    if (n > 64) n = 64;
    if (n > pending) n = pending;
    return n < 1 ? 1 : n;
}

qtts_status qtts_render_run(const qtts_job *job, qtts_model *m, const qtts_tokenizer *tok, qtts_codec *codec,
                            const qtts_render_params *p, qtts_render_summary *sum, qtts_err *err) {
    qtts_status st = QTTS_OK;
    render_ctx c = {.job = job, .m = m, .tok = tok, .codec = codec, .p = p, .sum = sum};
    qtts_generator *g = NULL;
    decoder dec = {0};
    int *pending = NULL, *slot_utt = NULL;
    qtts_kv_prefix *prefixes = NULL; /* [n_sessions] */
    start_t *starts = NULL;          /* [max_batch]: a refill's utterances */
    qtts_gen_start *st_args = NULL;  /* [max_batch]: their starts */
    qtts_err *st_errs = NULL;
    memset(sum, 0, sizeof *sum);
    c.t0 = qtts_now();
    c.model_fp = model_fingerprint(m);
    QTTS_TRY(qtts_mkdirs(job->output_dir, false, err));
    QTTS_TRY(qtts_journal_open(job->output_dir, &c.jr, err));
    nftw(job->output_dir, remove_stale_tmp, 16, FTW_PHYS);
    if (p->fresh) QTTS_TRY(qtts_journal_reset(c.jr, err));
    {
        char mp[4096], *txt = NULL;
        size_t len;
        qtts_err ig = {0};
        if (!qtts_path_join(mp, sizeof mp, job->output_dir, "manifest.json", &ig) && qtts_file_exists(mp) &&
            !qtts_read_file(mp, &txt, &len, &ig))
            c.old_manifest = cJSON_Parse(txt);
        free(txt);
    }

    /* ---- plan ---- */
    c.n_items = job->n_items_total;
    c.items = calloc((size_t)(c.n_items ? c.n_items : 1), sizeof *c.items);
    QTTS_CHECK(c.items, err, QTTS_ERR_OOM, "out of memory");
    int k = 0, n_utts = 0;
    for (int s = 0; s < job->n_sessions; s++)
        for (int i = 0; i < job->sessions[s].n_items; i++, k++) {
            item_t *it = &c.items[k];
            it->s = &job->sessions[s];
            it->it = &job->sessions[s].items[i];
            it->session = s;
            qtts_segment_params sp = qtts_segment_default_params();
            sp.max_tokens = it->it->params.max_tokens_per_utterance;
            qtts_err e = {0};
            if (qtts_segment_text(tok, it->it->text, strlen(it->it->text), &sp, &it->seg, &e) != QTTS_OK) {
                fail_item(&c, it, &e);
                continue;
            }
            if (it->seg.n == 0) {
                qtts_fail(&e, QTTS_ERR_TEXT, "no speakable text");
                fail_item(&c, it, &e);
                continue;
            }
            it->first_utt = n_utts;
            it->n_utt = it->seg.n;
            n_utts += it->seg.n;
        }
    sum->items = c.n_items;
    c.n_utts = n_utts;
    c.utts = calloc((size_t)(n_utts ? n_utts : 1), sizeof *c.utts);
    pending = calloc((size_t)(n_utts ? n_utts : 1) * 2, sizeof *pending);
    QTTS_CHECK(c.utts && pending, err, QTTS_ERR_OOM, "out of memory");
    int n_pending = 0, max_ctx = 2;
    int gen_cap = m->gen.max_new_tokens > 1 ? m->gen.max_new_tokens - 1 : 1;
    for (int i = 0; i < c.n_items; i++) {
        item_t *it = &c.items[i];
        if (it->failed) continue;
        if (reusable(&c, it)) {
            it->reused = true;
            sum->items_reused++;
            sum->audio_seconds += it->seconds;
        }
        for (int s2 = 0; s2 < it->n_utt; s2++) {
            utt_t *u = &c.utts[it->first_utt + s2];
            u->item = i;
            u->seg = s2;
            u->key = (qtts_journal_key){qtts_fnv1a64(it->it->codes_hash, &c.model_fp, sizeof c.model_fp), (uint32_t)s2};
            int ntok = it->seg.seg[s2].n_tokens;
            int64_t mf = (int64_t)it->it->params.max_frames_per_token * (ntok > 0 ? ntok : 1);
            u->max_frames = (int)(mf < gen_cap ? mf : gen_cap);
            c.total_tokens += ntok;
            sum->utterances++;
            if (qtts_journal_has(c.jr, u->key)) {
                u->frames = qtts_journal_frames(c.jr, u->key);
                u->done = true;
                sum->utterances_resumed++;
                c.done_tokens += ntok;
                it->n_done++;
                continue;
            }
            if (it->reused) continue; /* audio is current; its utterances need no codes */
            char *t = utt_text(it, s2);
            qtts_prompt_params pp = qtts_prompt_default_params(voice_mode(&it->s->voice));
            pp.text = t;
            pp.speaker = it->s->voice.speaker;
            pp.instruct = it->s->voice.instruct;
            pp.language = it->it->params.language;
            pp.non_streaming = it->it->params.non_streaming_text;
            qtts_err e = {0};
            qtts_status ps = t ? qtts_prompt_build(tok, &m->cfg, &pp, &u->prompt, &e) : qtts_fail(&e, QTTS_ERR_OOM, "out of memory");
            free(t);
            if (ps != QTTS_OK) {
                qtts_fail_prefix(&e, "segment %d: ", s2);
                fail_item(&c, it, &e);
                u->failed = true;
                continue;
            }
            if (u->prompt.n_pos + u->max_frames + 1 > max_ctx) max_ctx = u->prompt.n_pos + u->max_frames + 1;
            pending[n_pending++] = it->first_utt + s2;
        }
    }
    /* the decoder thread decodes on the codec's backend while the model's
     * generates: two backends (a backend serves one thread at a time) */
    QTTS_CHECK(!p->decode_thread || qtts_codec_backend(codec) != m->be, err, QTTS_ERR_INVALID_ARG,
               "decode_thread: the codec must be loaded on a backend of its own, not the model's");
    QTTS_TRY(decoder_start(&dec, codec, p, err));
    /* items complete from the journal alone are assembled now */
    for (int i = 0; i < c.n_items; i++) {
        item_t *it = &c.items[i];
        if (!it->failed && !it->reused && it->n_utt > 0 && it->n_done == it->n_utt) {
            it->n_done--;
            item_utterance_done(&c, &dec, it);
        }
    }
    if (p->progress)
        fprintf(p->progress, "qtts render: %d items, %d utterances (%d from the journal, %d items unchanged), %d to generate\n",
                sum->items, sum->utterances, sum->utterances_resumed, sum->items_reused, n_pending);

    /* a session's utterances share their prompts' leading positions (instruct,
     * role, codec prefix, speaker): the longest common prefix is prefilled
     * once per session and copied into each new slot */
    prefixes = calloc((size_t)(job->n_sessions ? job->n_sessions : 1), sizeof *prefixes);
    QTTS_CHECK(prefixes, err, QTTS_ERR_OOM, "out of memory");
    if (p->share_prefix) {
        for (int s = 0; s < job->n_sessions; s++) {
            const qtts_prompt *first = NULL;
            int lcp = 0;
            for (int k2 = 0; k2 < n_pending; k2++) {
                const utt_t *u = &c.utts[pending[k2]];
                if (c.items[u->item].session != s) continue;
                const qtts_prompt *pr = &u->prompt;
                if (!first) {
                    first = pr;
                    lcp = pr->n_pos - 1;
                    continue;
                }
                int l = 0;
                while (l < lcp && l < pr->n_pos - 1 && pr->pos[l].text_id == first->pos[l].text_id &&
                       pr->pos[l].codec_kind == first->pos[l].codec_kind && pr->pos[l].codec_val == first->pos[l].codec_val)
                    l++;
                lcp = l;
            }
            prefixes[s].len = lcp >= 2 ? lcp : 0;
        }
    }

    /* ---- generate: continuous batching ---- */
    int max_batch = p->max_batch > 0 ? p->max_batch : auto_batch(m, max_ctx, n_pending);
    if (max_batch > n_pending) max_batch = n_pending;
    double tg = qtts_now();
    if (n_pending > 0) {
        QTTS_TRY(qtts_generator_init(&g, m, max_batch, max_ctx, false, err));
        qtts_generator_set_sync_timing(g, p->sync_stages);
        slot_utt = malloc((size_t)max_batch * sizeof *slot_utt);
        starts = calloc((size_t)max_batch, sizeof *starts);
        st_args = calloc((size_t)max_batch, sizeof *st_args);
        st_errs = calloc((size_t)max_batch, sizeof *st_errs);
        QTTS_CHECK(slot_utt && starts && st_args && st_errs, err, QTTS_ERR_OOM, "out of memory");
        for (int i = 0; i < max_batch; i++) slot_utt[i] = -1;
        int next = 0, active = 0;
        while (next < n_pending || active > 0) {
            if (p->stop && *p->stop) {
                st = qtts_fail(err, QTTS_ERR_INTERRUPTED, "stopped on request; %d utterances kept in the journal",
                               sum->utterances_generated + sum->utterances_resumed);
                goto cleanup;
            }
            /* refill free slots at once, their prompts prefilled together
             * (up to prefill_batch of them): prefills interleave with decode
             * steps. A call takes what one prefill pass takes, so the prompt
             * embeddings held on the host stay within one pass's positions
             * (start_many would cut the groups itself, after they are all made). */
            int cap = qtts_generator_prefill_tokens(g), per = p->prefill_batch > 0 ? p->prefill_batch : max_batch;
            for (int s = 0; s < max_batch && next < n_pending;) {
                int n_st = 0, tokens = 0;
                for (; s < max_batch && next < n_pending && n_st < per; s++) {
                    if (slot_utt[s] >= 0) continue;
                    utt_t *u = &c.utts[pending[next]];
                    item_t *it = &c.items[u->item];
                    if (it->failed) {
                        next++;
                        s--;
                        continue;
                    }
                    if (n_st > 0 && tokens + u->prompt.n_pos > cap) break;
                    next++;
                    qtts_err e = {0};
                    start_t *b = &starts[n_st];
                    if (qtts_prompt_embed(m, &u->prompt, NULL, NULL, 0, &b->emb, &b->trail, &b->pad, &e) != QTTS_OK) {
                        fail_item(&c, it, &e);
                        s--;
                        continue;
                    }
                    qtts_kv_prefix *pf = &prefixes[it->session];
                    gen_params_for(&c, u, &b->gp);
                    b->utt = (int)(u - c.utts);
                    st_args[n_st] = (qtts_gen_start){.slot = s, .prompt = b->emb, .P = u->prompt.n_pos, .trailing = b->trail,
                                                     .Q = u->prompt.n_trailing, .tts_pad = b->pad, .p = &b->gp,
                                                     .prefix = pf->len > 0 && pf->len < u->prompt.n_pos ? pf : NULL};
                    tokens += u->prompt.n_pos;
                    n_st++;
                }
                if (n_st == 0) break;
                qtts_generator_start_many(g, st_args, n_st, st_errs);
                double now = qtts_now();
                for (int k = 0; k < n_st; k++) {
                    utt_t *u = &c.utts[starts[k].utt];
                    free(starts[k].emb);
                    free(starts[k].trail);
                    free(starts[k].pad);
                    starts[k].emb = starts[k].trail = starts[k].pad = NULL;
                    if (st_errs[k].status != QTTS_OK) {
                        fail_item(&c, &c.items[u->item], &st_errs[k]);
                        s = 0; /* its slot is free again */
                        continue;
                    }
                    u->t_start = now;
                    slot_utt[st_args[k].slot] = starts[k].utt;
                    active++;
                }
            }
            if (active == 0) continue;
            QTTS_TRY(qtts_generator_step(g, err));
            QTTS_TRY(qtts_backend_check(m->be, err));
            for (int s = 0; s < max_batch; s++) {
                if (slot_utt[s] < 0) continue;
                qtts_seq_state ss = qtts_generator_state(g, s);
                if (ss == QTTS_SEQ_ACTIVE) continue;
                utt_t *u = &c.utts[slot_utt[s]];
                item_t *it = &c.items[u->item];
                int nf = 0;
                const int32_t *codes = qtts_generator_codes(g, s, &nf);
                if (ss == QTTS_SEQ_MAX && u->attempt == 0) {
                    /* runaway: no end of speech within the guard; once more with another seed */
                    qtts_generator_release(g, s);
                    slot_utt[s] = -1;
                    active--;
                    u->attempt = 1;
                    pending[n_pending++] = (int)(u - c.utts);
                    continue;
                }
                u->runaway = ss == QTTS_SEQ_MAX;
                sum->runaway_flags += u->runaway;
                u->frames = nf;
                qtts_err e = {0};
                if (!it->failed && qtts_journal_append(c.jr, u->key, codes, nf, &e) != QTTS_OK) {
                    /* the journal is what makes finished work durable: stop rather than go on without it */
                    st = qtts_fail(err, e.status, "journal: %s", e.msg);
                    goto cleanup;
                }
                u->done = true;
                u->generated = true;
                sum->utterances_generated++;
                c.done_tokens += it->seg.seg[u->seg].n_tokens;
                qtts_prompt_free(&u->prompt);
                qtts_generator_release(g, s);
                slot_utt[s] = -1;
                active--;
                item_utterance_done(&c, &dec, it);
            }
            decoder_collect(&dec, &c);
            progress(&c, false);
        }
    }
    sum->generate_seconds = qtts_now() - tg;
    if (g) sum->gen = qtts_generator_timing(g);
    decoder_drain(&dec, &c);

    /* ---- sessions joined into one file, chapters in the manifest ---- */
    for (int s = 0; s < job->n_sessions; s++) {
        const qtts_job_session *js = &job->sessions[s];
        if (!js->output) continue;
        int sr = qtts_codec_sample_rate(codec);
        int64_t gap = (int64_t)js->params.pause_paragraph_ms * sr / 1000, total = 0, cap = 0;
        float *all = NULL;
        bool ok = true;
        for (int i = 0; i < c.n_items && ok; i++) {
            if (c.items[i].session != s || c.items[i].failed) continue;
            char path[4096];
            qtts_err e = {0};
            if (qtts_path_join(path, sizeof path, job->output_dir, c.items[i].it->output, &e)) continue;
            SF_INFO info = {0};
            SNDFILE *f = sf_open(path, SFM_READ, &info);
            if (!f) {
                ok = false;
                break;
            }
            int64_t need = total + (total ? gap : 0) + info.frames;
            if (need > cap) {
                cap = need * 2;
                float *na = realloc(all, (size_t)cap * sizeof *na);
                if (!na) {
                    ok = false;
                    sf_close(f);
                    break;
                }
                all = na;
            }
            if (total) {
                memset(all + total, 0, (size_t)gap * sizeof *all);
                total += gap;
            }
            total += sf_readf_float(f, all + total, info.frames);
            sf_close(f);
        }
        char path[4096];
        qtts_err e = {0};
        if (ok && total > 0 && !qtts_path_join(path, sizeof path, job->output_dir, js->output, &e) && !qtts_mkdirs(path, true, &e))
            if (qtts_audio_write(path, all, total, sr, &e) && p->progress) fprintf(p->progress, "\nqtts render: %s: %s\n", js->output, e.msg);
        free(all);
    }
    progress(&c, true);
    QTTS_TRY(write_manifest(&c, err));
cleanup:
    decoder_stop(&dec, &c); /* finished items are kept, unstarted ones stay in the journal */
    sum->wall_seconds = qtts_now() - c.t0;
    if (c.jr && st == QTTS_ERR_INTERRUPTED) {
        qtts_err ig = {0};
        write_manifest(&c, &ig);
    }
    for (int s = 0; prefixes && g && s < job->n_sessions; s++) qtts_kv_prefix_free(g, &prefixes[s]);
    free(prefixes);
    qtts_generator_free(g);
    free(slot_utt);
    free(pending);
    free(starts);
    free(st_args);
    free(st_errs);
    for (int i = 0; c.utts && i < c.n_utts; i++) qtts_prompt_free(&c.utts[i].prompt);
    free(c.utts);
    for (int i = 0; c.items && i < c.n_items; i++) qtts_segmentation_free(&c.items[i].seg);
    free(c.items);
    cJSON_Delete(c.old_manifest);
    qtts_journal_close(c.jr);
    return st;
}
