/* Speech-tokenizer decoder (Qwen3-TTS-Tokenizer-12Hz): 16 codebooks per 80 ms
 * frame -> 1920 samples of 24 kHz audio. RVQ lookup -> causal conv -> sliding-
 * window transformer -> 2x2 ConvNeXt upsampling -> SnakeBeta/transposed-conv
 * vocoder -> clamp. Written once against the op table (backend.h). */
#ifndef QTTS_CODEC_H
#define QTTS_CODEC_H

#include <stdint.h>

#include "backend.h"
#include "config.h"

typedef struct qtts_codec qtts_codec;

/* Reference chunking of the official wrapper (chunked_decode defaults). */
#define QTTS_CODEC_CHUNK_DEFAULT 300
#define QTTS_CODEC_CONTEXT_DEFAULT 25

/* Load codec_dir/config.json and codec_dir/model.safetensors (decoder side
 * only). The codec is read-only afterwards and may be shared. */
qtts_status qtts_codec_load(qtts_codec **c, qtts_backend *be, const char *codec_dir, qtts_err *err);
void qtts_codec_free(qtts_codec *c);
const qtts_codec_config *qtts_codec_get_config(const qtts_codec *c);
/* Samples per code frame (1920) and the output sample rate (24000). */
int qtts_codec_samples_per_frame(const qtts_codec *c);
int qtts_codec_sample_rate(const qtts_codec *c);
/* The backend the codec's weights live on and its decodes run on. */
qtts_backend *qtts_codec_backend(const qtts_codec *c);
int qtts_codec_num_quantizers(const qtts_codec *c);

/* Decode B utterances in one batched call. codes: host int32
 * [B][T_max][num_quantizers], T_max = max T[b]; frames t >= T[b] of item b are
 * padding and ignored. Each item is one full call of the reference decoder
 * (positions from 0, no chunking). wav_out[b] receives a malloc'd array of
 * T[b] * samples_per_frame floats (caller frees); on failure every wav_out[b]
 * is NULL. Codes outside 0..codebook_size-1 -> QTTS_ERR_INVALID_ARG naming
 * item, frame and codebook; T[b] < 1 -> QTTS_ERR_SHAPE. */
qtts_status qtts_codec_decode(qtts_codec *c, const int32_t *codes, const int *T, int B, float **wav_out, qtts_err *err);

/* Same, reproducing the official chunked_decode: windows of `chunk` frames,
 * each decoded independently with up to `left_context` frames of preceding
 * codes whose audio is dropped. chunk <= 0 means one full call. */
qtts_status qtts_codec_decode_chunked(qtts_codec *c, const int32_t *codes, const int *T, int B, int chunk, int left_context,
                                      float **wav_out, qtts_err *err);

#endif
