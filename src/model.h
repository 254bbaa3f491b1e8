/* The loaded Qwen3-TTS model: config, talker, code predictor and text
 * projection weights in backend memory. Read-only after load; all mutable
 * state (KV caches, positions, RNG, codes) lives in qtts_generator. */
#ifndef QTTS_MODEL_H
#define QTTS_MODEL_H

#include "backend.h"
#include "config.h"
#include "safetensors.h"

typedef struct qtts_lm {
    qtts_lm_config cfg;
    qtts_lm_layer *layers; /* [num_layers] */
    qtts_tensor norm;      /* [H] final RMSNorm */
} qtts_lm;

typedef struct qtts_model {
    qtts_model_config cfg;
    qtts_gen_config gen;
    qtts_backend *be;
    qtts_safetensors st;               /* kept mapped: text embedding rows are read from it */
    const qtts_st_tensor *text_embed;  /* [text_vocab, text_hidden], host (mmap) */
    qtts_tensor text_fc1_w, text_fc1_b; /* [Th, Th], [Th] */
    qtts_tensor text_fc2_w, text_fc2_b; /* [H, Th], [H] */
    qtts_tensor codec_embed;           /* [3072, H] talker codec embedding */
    qtts_lm talker;
    qtts_tensor codec_head;            /* [3072, H] */
    qtts_lm predictor;
    int n_groups;                      /* num_code_groups (16) */
    qtts_tensor *cp_embed;             /* [n_groups-1] x [2048, H] */
    qtts_tensor *cp_head;              /* [n_groups-1] x [2048, Hp] */
    bool has_mtp_proj;                 /* predictor hidden != talker hidden (1.7B) */
    qtts_tensor mtp_w, mtp_b;          /* [Hp, H], [Hp] */
    char dir[1024];
} qtts_model;

qtts_status qtts_model_load(qtts_model **out, qtts_backend *be, const char *model_dir, qtts_err *err);
void qtts_model_free(qtts_model *m);

/* Scratch for qtts_lm_forward, planned for up to max_tokens tokens. */
typedef struct qtts_lm_scratch {
    int max_tokens;
    float *q, *k, *v, *att, *mlp; /* backend memory: projections, attention output, the MLP's hidden activation */
} qtts_lm_scratch;

qtts_status qtts_lm_scratch_init(qtts_lm_scratch *s, qtts_backend *be, const qtts_lm_config *c, int max_tokens, qtts_err *err);
void qtts_lm_scratch_free(qtts_lm_scratch *s, qtts_backend *be);

/* Run the decoder stack on b->n tokens: x [n, H] (backend memory) is the
 * input embedding and is overwritten with the residual stream; out [n, H]
 * receives the final-norm output. If capture is non-NULL it receives the
 * input of every layer and the final-norm output: [(L+1), n, H] (the layout
 * of Hugging Face's output_hidden_states). */
void qtts_lm_forward(qtts_backend *be, const qtts_lm *lm, qtts_kv_cache *kv, const qtts_batch *b, float *x, float *out,
                     qtts_lm_scratch *s, float *capture);

/* The code predictor's weights as predict_frame takes them (views of m). */
void qtts_model_predictor_weights(const qtts_model *m, qtts_predictor_weights *w);
/* One frame of the code predictor (backend.h: qtts_predictor_frame) as the
 * op sequence, the twin of the backend's fused predict_frame (which the
 * caller tries first): the first pass over each row's last talker hidden
 * state and its codebook-0 embedding, then one pass per codebook; each
 * pass's head and draw give the next codebook, whose embedding is the next
 * pass's input. Issues no transfer and no wait. */
void qtts_predict_frame(qtts_backend *be, const qtts_predictor_weights *w, const qtts_predictor_frame *f);

/* KV cache for one stack with n_slots x max_len positions. */
qtts_status qtts_kv_init(qtts_kv_cache *c, qtts_backend *be, const qtts_lm_config *cfg, int n_slots, int max_len, qtts_err *err);
void qtts_kv_free(qtts_kv_cache *c, qtts_backend *be);

/* T(id) for n host text ids: text_projection(text_embedding[id]) -> out
 * [n, H] (backend memory). Prompt-time only: allocates its temporaries. */
qtts_status qtts_model_text_embed(const qtts_model *m, const int32_t *ids, int n, float *out, qtts_err *err);
/* Frame embedding F(codes) = C(c0) + sum_k cp_embed[k-1](c_k) for n frames of
 * n_groups host codes each -> out [n, H] (backend memory). */
qtts_status qtts_model_frame_embed(const qtts_model *m, const int32_t *codes, int n, float *out, qtts_err *err);
/* The same from codes already in backend memory, codebook-major: ids of
 * codebook k for frame i at ids[k * stride + i] (the generator's layout).
 * One embed_sum op; allocates nothing. */
void qtts_model_frame_embed_dev(const qtts_model *m, const int32_t *ids, int stride, int n, float *out);

#endif
