/* The public engine API (include/qtts/qtts.h): model + tokenizer + codec
 * behind one opaque handle, and one-text synthesis on the generator. */
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"
#include "synth.h"
#include "tokenizer.h"

struct qtts_engine {
    qtts_backend be;
    qtts_model *m;
    qtts_tokenizer *tok;
    qtts_codec *codec;
};

const char *qtts_engine_backend(const qtts_engine *e) { return e->be.ops ? e->be.ops->name : "none"; }

void qtts_synth_request_default(qtts_synth_request *r) {
    memset(r, 0, sizeof *r);
    r->text_mode = -1;
    r->decode_chunk = QTTS_CODEC_CHUNK_DEFAULT;
    r->decode_context = QTTS_CODEC_CONTEXT_DEFAULT;
}

qtts_status qtts_engine_open(const char *model_dir, const char *backend, const qtts_backend_params *bp, qtts_engine **out,
                             qtts_err *err) {
    qtts_status st = QTTS_OK;
    *out = NULL;
    qtts_engine *e = qtts_calloc(1, sizeof *e, err, "engine");
    if (!e) return QTTS_ERR_OOM;
    QTTS_TRY(qtts_backend_init_named(&e->be, backend, bp, err));
    QTTS_TRY(qtts_model_load(&e->m, &e->be, model_dir, err));
    QTTS_TRY(qtts_tokenizer_load(&e->tok, model_dir, err));
    char cdir[4096];
    QTTS_TRY(qtts_path_join(cdir, sizeof cdir, model_dir, "speech_tokenizer", err));
    QTTS_TRY(qtts_codec_load(&e->codec, &e->be, cdir, err));
    if (e->be.ops->device) {
        /* GPU warm-up, part of opening: the first decode pays for cuBLAS's
         * per-shape setup (~0.1 s on an H100), which would otherwise land on
         * the first audio of the first request */
        int32_t codes[2 * 16] = {0};
        int T = 2;
        float *w[1] = {NULL};
        st = qtts_codec_decode(e->codec, codes, &T, 1, w, err);
        free(w[0]);
        QTTS_TRY(st);
        QTTS_TRY(qtts_backend_check(&e->be, err));
    }
    *out = e;
    return QTTS_OK;
cleanup:
    qtts_engine_close(e);
    return st;
}

void qtts_engine_close(qtts_engine *e) {
    if (!e) return;
    qtts_codec_free(e->codec);
    qtts_tokenizer_free(e->tok);
    qtts_model_free(e->m);
    if (e->be.ops) qtts_backend_free(&e->be);
    free(e);
}

void qtts_synth_result_free(qtts_synth_result *r) {
    free(r->pcm);
    free(r->codes);
    memset(r, 0, sizeof *r);
}

static qtts_status check_request(const qtts_engine *e, const qtts_synth_request *r, qtts_prompt_mode *mode, qtts_err *err) {
    const qtts_model_config *cfg = &e->m->cfg;
    int H = cfg->talker.hidden_size;
    *mode = cfg->variant == QTTS_VARIANT_CUSTOM_VOICE ? QTTS_PROMPT_CUSTOM_VOICE
            : cfg->variant == QTTS_VARIANT_VOICE_DESIGN ? QTTS_PROMPT_VOICE_DESIGN
                                                        : QTTS_PROMPT_BASE_XVECTOR;
    if (*mode == QTTS_PROMPT_CUSTOM_VOICE && !r->speaker) {
        char names[1024] = "";
        for (int i = 0; i < cfg->n_speakers; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", cfg->speakers[i].name);
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "this CustomVoice checkpoint needs --speaker (one of: %s)", names);
    }
    if (*mode != QTTS_PROMPT_CUSTOM_VOICE && r->speaker)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "--speaker: a %s checkpoint has no built-in speakers", qtts_variant_name(cfg->variant));
    if (*mode == QTTS_PROMPT_BASE_XVECTOR && r->instruct)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "--instruct: a Base checkpoint does not take instructions");
    if (*mode != QTTS_PROMPT_BASE_XVECTOR && r->xvector)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "--xvector: only Base checkpoints take an x-vector");
    if (*mode == QTTS_PROMPT_BASE_XVECTOR && !r->xvector)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "this Base checkpoint clones a voice: give --xvector FILE.npy (float32 [%d])", H);
    if (r->xvector && r->xvector_len != H)
        return qtts_fail(err, QTTS_ERR_SHAPE, "x-vector has %d values, this model needs %d", r->xvector_len, H);
    return QTTS_OK;
}

qtts_status qtts_engine_synth(qtts_engine *e, const qtts_synth_request *r, qtts_progress_fn progress, void *user,
                              qtts_synth_result *out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    qtts_prompt pr = {0};
    qtts_generator *g = NULL;
    float *emb = NULL, *trail = NULL, *pad = NULL, **wav = NULL;
    memset(out, 0, sizeof *out);
    double t0 = qtts_now();
    qtts_prompt_mode mode;
    QTTS_TRY(check_request(e, r, &mode, err));
    qtts_prompt_params pp = qtts_prompt_default_params(mode);
    pp.text = r->text;
    pp.speaker = r->speaker;
    pp.instruct = r->instruct;
    pp.language = r->language;
    pp.has_xvector = r->xvector != NULL;
    if (r->text_mode >= 0) pp.non_streaming = r->text_mode == 1;
    QTTS_TRY(qtts_prompt_build(e->tok, &e->m->cfg, &pp, &pr, err));
    QTTS_CHECK(!pr.instruct_ignored, err, QTTS_ERR_UNSUPPORTED,
               "--instruct: this 0.6B CustomVoice checkpoint ignores instructions (the official wrapper drops them); remove --instruct");
    QTTS_TRY(qtts_prompt_embed(e->m, &pr, r->xvector, NULL, 0, &emb, &trail, &pad, err));

    qtts_gen_params gp;
    qtts_gen_params_from_config(&gp, &e->m->gen, r->greedy);
    if (r->max_frames > 0) gp.max_frames = r->max_frames;
    gp.seed = qtts_seed_derive(r->seed, 0, 0, 0);
    gp.ignore_eos = r->ignore_eos;
    QTTS_TRY(qtts_generator_init(&g, e->m, 1, pr.n_pos + gp.max_frames + 1, false, err));
    qtts_generator_set_sync_timing(g, r->sync_stages != 0);
    double t_prefill = qtts_now(), first_decode_s = 0;
    QTTS_TRY(qtts_generator_start(g, 0, emb, pr.n_pos, trail, pr.n_trailing, pad, &gp, err));
    int nf = 0;
    bool first_done = r->first_chunk <= 0;
    while (qtts_generator_state(g, 0) == QTTS_SEQ_ACTIVE) {
        QTTS_TRY(qtts_generator_step(g, err));
        const int32_t *c = qtts_generator_codes(g, 0, &nf);
        if (!first_done && (nf >= r->first_chunk || qtts_generator_state(g, 0) != QTTS_SEQ_ACTIVE)) {
            /* the decoder is causal: these samples are the start of the final audio */
            double tf = qtts_now();
            float *w[1] = {NULL};
            int T = nf;
            st = qtts_codec_decode(e->codec, c, &T, 1, w, err);
            free(w[0]);
            QTTS_TRY(st);
            out->first_chunk_s = qtts_now() - t_prefill;
            first_decode_s = qtts_now() - tf;
            first_done = true;
        }
        QTTS_CHECK(!progress || !progress(user, nf), err, QTTS_ERR_INTERRUPTED, "stopped after %d frames", nf);
    }
    QTTS_TRY(qtts_backend_check(&e->be, err));
    const int32_t *codes = qtts_generator_codes(g, 0, &nf);
    QTTS_CHECK(nf > 0, err, QTTS_ERR_INTERNAL, "the model ended the utterance before its first frame");
    qtts_gen_timing tm = qtts_generator_timing(g);
    int G = e->m->n_groups;
    out->codes = qtts_malloc((size_t)nf * G * sizeof *out->codes, err, "codes");
    wav = qtts_calloc(1, sizeof *wav, err, "audio");
    QTTS_CHECK(out->codes && wav, err, QTTS_ERR_OOM, "out of memory");
    memcpy(out->codes, codes, (size_t)nf * G * sizeof *out->codes);
    double td = qtts_now();
    QTTS_TRY(qtts_codec_decode_chunked(e->codec, codes, &nf, 1, r->decode_chunk, r->decode_context, wav, err));
    QTTS_TRY(qtts_backend_check(&e->be, err));
    out->pcm = wav[0];
    out->n_samples = (int64_t)nf * qtts_codec_samples_per_frame(e->codec);
    out->sample_rate = qtts_codec_sample_rate(e->codec);
    out->n_frames = nf;
    out->prompt_tokens = pr.n_pos;
    out->prefill_s = tm.prefill;
    out->talker_s = tm.talker;
    out->predictor_s = tm.predictor;
    out->sampling_s = tm.sampling;
    out->steps = (int)tm.steps;
    out->fused_steps = (int)tm.fused_steps;
    out->decode_s = qtts_now() - td + first_decode_s;
    out->peak_device_mb = e->be.ops->peak_bytes ? (double)e->be.ops->peak_bytes(&e->be) / (1024.0 * 1024.0) : 0;
    out->total_s = qtts_now() - t0;
cleanup:
    if (st != QTTS_OK) qtts_synth_result_free(out);
    free(wav);
    free(emb);
    free(trail);
    free(pad);
    qtts_prompt_free(&pr);
    qtts_generator_free(g);
    return st;
}
