/* Parsed config.json (model), speech_tokenizer/config.json (codec) and
 * generation_config.json (sampling defaults). Values are always read from
 * the files: the Python class defaults are not the released values. */
#ifndef QTTS_CONFIG_H
#define QTTS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define QTTS_MAX_NAMED 64
#define QTTS_NAME_LEN 64

typedef enum qtts_variant {
    QTTS_VARIANT_BASE = 0,
    QTTS_VARIANT_CUSTOM_VOICE,
    QTTS_VARIANT_VOICE_DESIGN,
} qtts_variant;
const char *qtts_variant_name(qtts_variant v); /* "Base", "CustomVoice", "VoiceDesign" */

typedef struct qtts_named_id {
    char name[QTTS_NAME_LEN]; /* lower-case as in the file */
    int id;
    char dialect[QTTS_NAME_LEN]; /* speakers: spk_is_dialect value, "" when false */
} qtts_named_id;

/* A Qwen3 decoder stack (talker or code predictor). */
typedef struct qtts_lm_config {
    int hidden_size, intermediate_size, num_layers;
    int num_heads, num_kv_heads, head_dim;
    float rms_norm_eps, rope_theta;
    int vocab_size;
    int max_position_embeddings;
    /* rope_scaling (talker): multimodal RoPE sections over head_dim/2 frequency
     * pairs, interleaved or not; all zero for plain RoPE (code predictor). */
    int mrope_section[3];
    bool rope_interleaved;
} qtts_lm_config;

typedef struct qtts_model_config {
    qtts_variant variant;
    char size_tag[16];       /* tts_model_size: "0b6" / "1b7" */
    qtts_lm_config talker;   /* talker_config */
    int text_vocab_size, text_hidden_size, num_code_groups;
    /* codec control ids (talker_config) */
    int codec_pad_id, codec_bos_id, codec_eos_id;
    int codec_think_id, codec_nothink_id, codec_think_bos_id, codec_think_eos_id;
    /* text special ids (top level) */
    int im_start_id, im_end_id, assistant_id;
    int tts_pad_id, tts_bos_id, tts_eos_id;
    qtts_lm_config predictor; /* talker_config.code_predictor_config */
    int n_languages;
    qtts_named_id languages[QTTS_MAX_NAMED]; /* codec_language_id */
    int n_speakers;
    qtts_named_id speakers[QTTS_MAX_NAMED];  /* spk_id (+ spk_is_dialect) */
    bool has_speaker_encoder;
    int speaker_enc_dim;     /* speaker_encoder_config.enc_dim (Base) */
    int speaker_sample_rate;
} qtts_model_config;

typedef struct qtts_codec_config {
    int codebook_size, codebook_dim, latent_dim;
    int hidden_size, intermediate_size, num_layers;
    int num_heads, num_kv_heads, head_dim;
    float rms_norm_eps, rope_theta, layer_scale_initial_scale;
    int sliding_window, num_quantizers, num_semantic_quantizers;
    int upsample_rates[8], n_upsample_rates;       /* [8,5,4,3] */
    int upsampling_ratios[8], n_upsampling_ratios; /* [2,2] */
    int decoder_dim;
    int max_position_embeddings;
    int output_sample_rate, decode_upsample_rate;  /* 24000, 1920 */
    int encoder_valid_num_quantizers;
} qtts_codec_config;

typedef struct qtts_gen_config {
    bool do_sample;
    float temperature, top_p, repetition_penalty;
    int top_k;
    bool sub_do_sample;
    float sub_temperature, sub_top_p;
    int sub_top_k;
    int max_new_tokens;
} qtts_gen_config;

/* Errors name the file and the key path, e.g.
 * "config.json: talker_config.hidden_size: missing" or "...: expected integer". */
qtts_status qtts_model_config_load(const char *model_dir, qtts_model_config *cfg, qtts_err *err);
qtts_status qtts_model_config_parse(const char *json, size_t len, const char *name, qtts_model_config *cfg, qtts_err *err);
qtts_status qtts_codec_config_load(const char *codec_dir, qtts_codec_config *cfg, qtts_err *err);
qtts_status qtts_codec_config_parse(const char *json, size_t len, const char *name, qtts_codec_config *cfg, qtts_err *err);
/* Missing file → the reference defaults (do_sample, T 0.9, top-k 50, top-p 1,
 * rep 1.05, subtalker same, max_new_tokens 8192); malformed file → error. */
qtts_status qtts_gen_config_load(const char *model_dir, qtts_gen_config *cfg, qtts_err *err);
void qtts_gen_config_default(qtts_gen_config *cfg);

/* Lookups (case-insensitive); -1 / NULL when absent. */
int qtts_config_language_id(const qtts_model_config *cfg, const char *name);
const qtts_named_id *qtts_config_speaker(const qtts_model_config *cfg, const char *name);

#endif
