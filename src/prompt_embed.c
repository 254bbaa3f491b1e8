/* Prompt embeddings: position i = T(text_id_i) (if any) + codec term_i, the
 * "dual track" sum the official generate builds; the trailing queue is
 * T(id) per entry. Prompt-time only, so it may allocate. */
#include <stdlib.h>

#include "synth.h"

qtts_status qtts_prompt_embed(const qtts_model *m, const qtts_prompt *p, const float *xvector, const int32_t *ref_codes, int n_ref,
                              float **emb_out, float **trail_out, float **pad_out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    qtts_backend *be = m->be;
    const qtts_ops *o = be->ops;
    int P = p->n_pos, Q = p->n_trailing, H = m->cfg.talker.hidden_size, G = m->n_groups;
    size_t rowb = (size_t)H * sizeof(float);
    float *emb = NULL, *trail = NULL, *pad = NULL, *dev = NULL, *host = NULL;
    int32_t *ids = NULL, *ids_d = NULL;
    int *where = NULL;
    *emb_out = *trail_out = *pad_out = NULL;
    QTTS_CHECK(P > 0, err, QTTS_ERR_INVALID_ARG, "empty prompt");
    int nmax = (P > Q ? P : Q) + 1;
    emb = qtts_calloc((size_t)P, rowb, err, "prompt embeddings");
    trail = qtts_calloc((size_t)(Q ? Q : 1), rowb, err, "trailing text");
    pad = qtts_calloc(1, rowb, err, "tts_pad");
    host = qtts_calloc((size_t)nmax, rowb, err, "prompt");
    ids = qtts_calloc((size_t)nmax, sizeof *ids, err, "prompt");
    where = qtts_calloc((size_t)nmax, sizeof *where, err, "prompt");
    dev = o->alloc(be, (size_t)nmax * rowb);
    ids_d = o->alloc(be, (size_t)nmax * sizeof(int32_t));
    QTTS_CHECK(emb && trail && pad && host && ids && where && dev && ids_d, err, QTTS_ERR_OOM, "prompt of %d positions: out of memory", P);

    /* text track, one batched projection */
    int n = 0;
    for (int i = 0; i < P; i++)
        if (p->pos[i].text_id >= 0) {
            ids[n] = p->pos[i].text_id;
            where[n++] = i;
        }
    if (n) {
        QTTS_TRY(qtts_model_text_embed(m, ids, n, dev, err));
        o->to_host(be, host, dev, (size_t)n * rowb);
        for (int j = 0; j < n; j++) memcpy(emb + (size_t)where[j] * H, host + (size_t)j * H, rowb);
    }
    /* codec track: control/speaker ids */
    n = 0;
    for (int i = 0; i < P; i++)
        if (p->pos[i].codec_kind == QTTS_CODEC_ID) {
            QTTS_CHECK(p->pos[i].codec_val >= 0 && p->pos[i].codec_val < m->cfg.talker.vocab_size, err, QTTS_ERR_INVALID_ARG,
                       "prompt position %d: codec id %d out of range", i, p->pos[i].codec_val);
            ids[n] = p->pos[i].codec_val;
            where[n++] = i;
        }
    if (n) {
        o->to_device(be, ids_d, ids, (size_t)n * sizeof(int32_t));
        o->embed(be, &m->codec_embed, ids_d, n, dev);
        o->to_host(be, host, dev, (size_t)n * rowb);
        for (int j = 0; j < n; j++) {
            float *e = emb + (size_t)where[j] * H;
            for (int d = 0; d < H; d++) e[d] += host[(size_t)j * H + d];
        }
    }
    /* speaker x-vector */
    for (int i = 0; i < P; i++)
        if (p->pos[i].codec_kind == QTTS_CODEC_SPEAKER) {
            QTTS_CHECK(xvector, err, QTTS_ERR_INVALID_ARG, "the prompt has a speaker slot but no x-vector was given");
            float *e = emb + (size_t)i * H;
            for (int d = 0; d < H; d++) e[d] += xvector[d];
        }
    /* reference frames F(R_j), one batched embedding */
    n = 0;
    for (int i = 0; i < P; i++)
        if (p->pos[i].codec_kind == QTTS_CODEC_REF_FRAME) {
            int j = p->pos[i].codec_val;
            QTTS_CHECK(ref_codes && j >= 0 && j < n_ref, err, QTTS_ERR_INVALID_ARG, "prompt position %d: reference frame %d of %d", i, j,
                       n_ref);
            where[n++] = i;
        }
    if (n) {
        int32_t *frames = qtts_malloc((size_t)n * G * sizeof *frames, err, "reference frames");
        QTTS_CHECK(frames, err, QTTS_ERR_OOM, "reference frames: out of memory");
        for (int k = 0; k < n; k++)
            memcpy(frames + (size_t)k * G, ref_codes + (size_t)p->pos[where[k]].codec_val * G, (size_t)G * sizeof *frames);
        st = qtts_model_frame_embed(m, frames, n, dev, err);
        free(frames);
        if (st) goto cleanup;
        o->to_host(be, host, dev, (size_t)n * rowb);
        for (int k = 0; k < n; k++) {
            float *e = emb + (size_t)where[k] * H;
            for (int d = 0; d < H; d++) e[d] += host[(size_t)k * H + d];
        }
    }
    /* trailing queue and tts_pad */
    if (Q) {
        QTTS_TRY(qtts_model_text_embed(m, p->trailing, Q, dev, err));
        o->to_host(be, trail, dev, (size_t)Q * rowb);
    }
    int32_t pad_id = m->cfg.tts_pad_id;
    QTTS_TRY(qtts_model_text_embed(m, &pad_id, 1, dev, err));
    o->to_host(be, pad, dev, rowb);
    *emb_out = emb;
    *trail_out = trail;
    *pad_out = pad;
    emb = trail = pad = NULL;
cleanup:
    free(emb);
    free(trail);
    free(pad);
    free(host);
    free(ids);
    free(where);
    if (dev) o->free(be, dev);
    if (ids_d) o->free(be, ids_d);
    return st;
}
