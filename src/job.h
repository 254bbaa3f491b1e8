/* Job files for `qtts render`: one JSON document naming a model, an output folder and many
 * sessions (voices), each with many items (chapters). JSON -> validated plain structs, with each
 * item's effective parameters resolved as defaults <- session overrides. Validation collects
 * every error (each naming its JSON path) instead of stopping at the first. Schema: jobs/README.md. */
#ifndef QTTS_JOB_H
#define QTTS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

typedef enum qtts_audio_format {
    QTTS_AUDIO_WAV = 0,
    QTTS_AUDIO_FLAC,
    QTTS_AUDIO_OGG,
} qtts_audio_format;
const char *qtts_audio_format_ext(qtts_audio_format f); /* "wav", "flac", "ogg" */

/* Rendering parameters: the job file's `defaults` and each session's `overrides` hold the same
 * keys, one field per key. */
typedef struct qtts_job_params {
    char language[QTTS_NAME_LEN];  /* "auto" or a language of the model, lower-cased */
    uint64_t seed;                 /* job seed; per-utterance seeds are derived from it */
    bool greedy;                   /* argmax at both levels */
    float temperature;             /* talker (codebook 0), > 0 */
    int top_k;                     /* 0 = off */
    float top_p;                   /* (0, 1]; 1 = off */
    float repetition_penalty;      /* > 0; 1 = off */
    float subtalker_temperature;   /* code predictor (codebooks 1..15) */
    int subtalker_top_k;
    float subtalker_top_p;
    int max_frames_per_token;      /* runaway guard: frames per text token of an utterance */
    int max_tokens_per_utterance;  /* text is split into utterances of at most this many tokens */
    int pause_sentence_ms;         /* silence between utterances inside a paragraph */
    int pause_paragraph_ms;        /* silence at a paragraph break (blank line) */
    bool non_streaming_text;       /* whole text in the prompt (official default) vs streamed */
} qtts_job_params;

/* Defaults: language "auto", seed 0, not greedy, sampling values from g (NULL: the reference
 * generation_config values of qtts_gen_config_default), max_frames_per_token 40,
 * max_tokens_per_utterance 200, pauses 300 / 800 ms, non_streaming_text true. */
void qtts_job_default_params(qtts_job_params *p, const qtts_gen_config *g);

typedef enum qtts_job_voice_kind {
    QTTS_JOB_VOICE_SPEAKER = 0, /* CustomVoice speaker (optionally with an instruct, 1.7B) */
    QTTS_JOB_VOICE_INSTRUCT,    /* VoiceDesign: the instruct describes the voice */
    QTTS_JOB_VOICE_REFERENCE,   /* voice clone from reference audio: in the schema, not served yet */
} qtts_job_voice_kind;

typedef struct qtts_job_voice {
    qtts_job_voice_kind kind;
    char *speaker;   /* SPEAKER: name as in the model config when one was given, else lower-cased */
    char *instruct;  /* INSTRUCT, or SPEAKER with a style instruction; NULL = none */
    char *ref_audio; /* REFERENCE (resolved path) */
    char *ref_text;
} qtts_job_voice;

typedef struct qtts_job_item {
    char *id;          /* unique within its session */
    char *text;        /* UTF-8, leading BOM removed (text_file content is read at load) */
    char *text_file;   /* resolved path of the text file, NULL when the text was inline */
    char *output;      /* output file path relative to the output dir, extension included */
    qtts_job_params params; /* effective: defaults <- session overrides */
    /* Content hashes (FNV-1a 64). codes_hash covers what changes the generated codes: text,
     * voice, language, seed, sampling, max_frames_per_token, max_tokens_per_utterance,
     * non_streaming_text; journal records are keyed by it. audio_hash adds the pauses (which only
     * change assembly). Neither covers the output name, format, or the model folder. */
    uint64_t codes_hash;
    uint64_t audio_hash;
} qtts_job_item;

typedef struct qtts_job_session {
    char *id;          /* unique within the job */
    qtts_job_voice voice;
    qtts_job_params params; /* defaults <- overrides (every item of the session shares them) */
    int n_items;
    qtts_job_item *items;
    char *output;      /* concat_sessions: the session's whole-audio file (relative), else NULL */
} qtts_job_session;

typedef struct qtts_job {
    char *path;        /* the job file as given ("<buffer>" when parsed from memory) */
    char *base_dir;    /* folder relative paths resolve against: the job file's folder */
    char *model;       /* resolved model folder */
    char *output_dir;  /* resolved output folder */
    qtts_audio_format format;
    bool concat_sessions;
    qtts_job_params defaults;
    int n_sessions;
    qtts_job_session *sessions;
    int n_items_total;
} qtts_job;

/* Every validation message, one per line for the CLI to print ("sessions[0].voice.speaker:
 * unknown speaker ..."). */
typedef struct qtts_job_errors {
    int n;
    char **msg; /* [n] */
} qtts_job_errors;
void qtts_job_errors_free(qtts_job_errors *e);

/* Load and validate a job file. cfg (may be NULL: speaker, language and voice-mode checks are
 * skipped) is the model's config, so validation runs before any weights load; gen (may be NULL)
 * supplies the sampling defaults. On any validation error returns QTTS_ERR_JOB, *out = NULL,
 * err->msg = "job.json: 3 errors; first: <message>", and, when errors is not NULL, the full
 * list (the caller frees it with qtts_job_errors_free). An unreadable job file is QTTS_ERR_IO. */
qtts_status qtts_job_load(const char *path, const qtts_model_config *cfg, const qtts_gen_config *gen, qtts_job **out,
                          qtts_job_errors *errors, qtts_err *err);
/* The same from a buffer (need not be NUL-terminated); name is used in messages, base_dir is
 * the folder relative paths (model, output.dir, text_file) resolve against. */
qtts_status qtts_job_parse(const char *json, size_t len, const char *name, const char *base_dir,
                           const qtts_model_config *cfg, const qtts_gen_config *gen, qtts_job **out,
                           qtts_job_errors *errors, qtts_err *err);
void qtts_job_free(qtts_job *job);

/* FNV-1a 64 over bytes, continuing from h (start with QTTS_FNV64_INIT). */
#define QTTS_FNV64_INIT 0xcbf29ce484222325ULL
uint64_t qtts_fnv1a64(uint64_t h, const void *data, size_t n);


#endif
