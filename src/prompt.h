/* Talker prompt assembly at the id level, as the official qwen_tts generate() builds it
 * (spec §3; modeling_qwen3_tts.py generate()/generate_icl_prompt()): per position one
 * text id for T() and one codec term, summed by the engine; plus the trailing text queue
 * that is added to the codec input at each generation step. */
#ifndef QTTS_PROMPT_H
#define QTTS_PROMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "tokenizer.h"
#include "util.h"

typedef enum { QTTS_CODEC_NONE = 0, QTTS_CODEC_ID, QTTS_CODEC_SPEAKER, QTTS_CODEC_REF_FRAME } qtts_codec_kind;

typedef struct qtts_prompt_pos {
    int32_t text_id;    /* Qwen2 id embedded with T(); -1 = no text term */
    uint8_t codec_kind; /* qtts_codec_kind */
    int32_t codec_val;  /* ID: codec vocab id for C(); SPEAKER: unused (the engine supplies the
                           x-vector; CustomVoice speakers are emitted as QTTS_CODEC_ID);
                           REF_FRAME: index j of the reference frame F(R_j) */
} qtts_prompt_pos;

typedef struct qtts_prompt {
    int n_pos;
    qtts_prompt_pos *pos;   /* [n_pos] */
    int n_trailing;
    int32_t *trailing;      /* [n_trailing] text ids T() of the queue, tts_eos/tts_pad included */
    /* Informational */
    int n_instruct;         /* leading positions that are the instruct template */
    int n_text;             /* target text tokens t_1..t_N */
    bool instruct_ignored;  /* an instruct was given to a 0.6B CustomVoice checkpoint and, as
                               the official wrapper does, dropped: callers should warn */
} qtts_prompt;

typedef enum qtts_prompt_mode {
    QTTS_PROMPT_CUSTOM_VOICE = 0, /* speaker (+ instruct on 1.7B) */
    QTTS_PROMPT_VOICE_DESIGN,     /* instruct describes the voice */
    QTTS_PROMPT_BASE_XVECTOR,     /* voice clone from the speaker x-vector only */
    QTTS_PROMPT_BASE_ICL,         /* voice clone continuing reference audio + its transcript */
} qtts_prompt_mode;

typedef struct qtts_prompt_params {
    qtts_prompt_mode mode;
    const char *text;     /* target text, UTF-8; must give at least one token */
    const char *speaker;  /* CustomVoice speaker name (case-insensitive); NULL/"" = none */
    const char *instruct; /* NULL/"" = none */
    const char *language; /* NULL = "auto"; case-insensitive; dialect names are not selectable */
    bool non_streaming;   /* true: whole text in the prompt; false: text streamed one token
                             per step through the trailing queue */
    const char *ref_text; /* ICL: transcript of the reference audio (required) */
    int n_ref_frames;     /* ICL: frames of reference codes (>= 1) */
    bool has_xvector;     /* Base: a speaker-encoder x-vector is supplied (required for
                             x-vector mode; ICL puts it in the speaker slot when present) */
} qtts_prompt_params;

/* Defaults of the official API for a mode: language auto, non_streaming true for
 * CustomVoice/VoiceDesign and false for voice clone; has_xvector true for Base modes. */
qtts_prompt_params qtts_prompt_default_params(qtts_prompt_mode mode);

/* Errors: empty text (or text giving no tokens), empty ICL reference text → QTTS_ERR_TEXT;
 * unknown speaker or language → QTTS_ERR_UNKNOWN_NAME listing the valid names; a mode the
 * checkpoint's variant does not serve → QTTS_ERR_UNSUPPORTED; inconsistent parameters →
 * QTTS_ERR_INVALID_ARG. On error *out is left empty. */
qtts_status qtts_prompt_build(const qtts_tokenizer *tok, const qtts_model_config *cfg, const qtts_prompt_params *p,
                              qtts_prompt *out, qtts_err *err);
void qtts_prompt_free(qtts_prompt *p);

#endif
