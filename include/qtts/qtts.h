/* qtts public API: status codes and the error record every call fills.
 * Library calls never exit or abort on bad input: they return a qtts_status and
 * write a detail message into the caller's qtts_err naming what failed. */
#ifndef QTTS_QTTS_H
#define QTTS_QTTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qtts_status {
    QTTS_OK = 0,
    QTTS_ERR_INVALID_ARG,   /* a caller passed something impossible */
    QTTS_ERR_IO,            /* open/read/write/mmap failed */
    QTTS_ERR_FORMAT,        /* a file is corrupt, truncated or malformed */
    QTTS_ERR_MISSING,       /* a tensor, key or file that must exist does not */
    QTTS_ERR_DTYPE,         /* a tensor has the wrong or an unknown dtype */
    QTTS_ERR_SHAPE,         /* a tensor or array has the wrong shape */
    QTTS_ERR_CONFIG,        /* a config value is missing, of the wrong type, or unsupported */
    QTTS_ERR_TEXT,          /* text is empty or not valid UTF-8 */
    QTTS_ERR_UNKNOWN_NAME,  /* unknown speaker, language, mode */
    QTTS_ERR_OOM,           /* allocation failed */
    QTTS_ERR_UNSUPPORTED,   /* valid request this build or checkpoint cannot serve */
    QTTS_ERR_DEVICE,        /* CUDA / cuBLAS failure or no usable GPU */
    QTTS_ERR_JOB,           /* a job file is invalid */
    QTTS_ERR_INTERRUPTED,   /* stopped on request (signal) */
    QTTS_ERR_INTERNAL,      /* a bug: an invariant did not hold */
    QTTS_STATUS_COUNT
} qtts_status;

/* Short stable name of a status, e.g. "QTTS_ERR_SHAPE". Never NULL. */
const char *qtts_status_str(qtts_status s);

/* Error record: status plus a human-readable detail naming the offending
 * file, tensor, key or JSON path. Zero-initialise before first use. */
typedef struct qtts_err {
    qtts_status status;
    char msg[1024];
} qtts_err;

/* How a compute backend is opened. The CPU backend reads none of it; the
 * cuda_* fields choose how the GPU runs the computation (the CLI's --cuda-*
 * options), not what it computes. */
typedef struct qtts_backend_params {
    int device;            /* GPU index ("cuda:N" as the backend name overrides) */
    bool cuda_graphs;      /* replay each recorded step (talker, code predictor) as a CUDA graph */
    bool cuda_pdl;         /* launch kernels with programmatic dependent launch (Hopper) */
    bool cuda_persistent;  /* the code predictor's frame as one persistent kernel (up to 4 rows) */
    size_t cuda_conv_tile; /* bytes of one codec-convolution im2col/col2im tile; 0: the default (128 MB) */
} qtts_backend_params;

/* device 0, graphs on; PDL and the persistent predictor off until measured
 * on a GPU (bench/README.md); the default convolution tile. */
qtts_backend_params qtts_backend_default_params(void);

/* ---- Engine: one loaded model (weights, tokenizer, speech tokenizer) ----
 * Opaque and read-only after qtts_engine_open: requests on one engine run one
 * at a time (the batch renderer, `qtts render`, batches many). */
typedef struct qtts_engine qtts_engine;

typedef struct qtts_synth_request {
    const char *text;      /* UTF-8, required */
    const char *speaker;   /* CustomVoice speaker; NULL otherwise */
    const char *instruct;  /* VoiceDesign (required) or 1.7B CustomVoice style; NULL = none */
    const char *language;  /* NULL = "auto" */
    const float *xvector;  /* Base models: speaker x-vector of xvector_len = talker hidden floats */
    int xvector_len;
    uint64_t seed;
    int greedy;            /* argmax at both levels (reproduces the reference exactly) */
    int max_frames;        /* 0 = from generation_config.json */
    int text_mode;         /* -1 = the official default for the mode, 0 = streamed text, 1 = whole text in the prompt */
    int decode_chunk;      /* decoder windows: official 300 / 25; 0 = one call */
    int decode_context;
    int ignore_eos;        /* benchmarks only */
    int first_chunk;       /* decode the first N frames as soon as they exist (time to first audio); 0 = no */
    int sync_stages;       /* wait for the device at stage boundaries: stage times become device times (benchmarks) */
} qtts_synth_request;

typedef struct qtts_synth_result {
    float *pcm;            /* n_samples mono floats in [-1, 1] at sample_rate (free with qtts_synth_result_free) */
    int64_t n_samples;
    int sample_rate;
    int32_t *codes;        /* [n_frames][16] */
    int n_frames;
    int prompt_tokens;
    double prefill_s, talker_s, predictor_s, sampling_s, decode_s, total_s;
    double first_chunk_s;  /* prefill start to the first_chunk frames' audio on the host; 0 when not asked */
    double peak_device_mb; /* most GPU memory in use (CUDA backend); 0 on the CPU */
    int steps;             /* generator steps (one frame each) */
    int fused_steps;       /* of those, the steps whose code predictor ran as one fused launch (--cuda-persistent on) */
} qtts_synth_result;

/* Progress callback: frames generated so far; return nonzero to stop. */
typedef int (*qtts_progress_fn)(void *user, int frames);

void qtts_synth_request_default(qtts_synth_request *r);
/* backend: "auto" or NULL (cuda when built with it and a GPU is present, else cpu), "cpu", "cuda" or "cuda:N";
 * bp: how it is opened (NULL: qtts_backend_default_params()). */
qtts_status qtts_engine_open(const char *model_dir, const char *backend, const qtts_backend_params *bp, qtts_engine **out,
                             qtts_err *err);
void qtts_engine_close(qtts_engine *e);
/* The backend the engine runs on ("cpu" or "cuda"; "auto" resolved). */
const char *qtts_engine_backend(const qtts_engine *e);
/* One text to audio. Validates the request against the checkpoint (speaker,
 * instruct rules, x-vector size, text) before generating. */
qtts_status qtts_engine_synth(qtts_engine *e, const qtts_synth_request *r, qtts_progress_fn progress, void *user,
                              qtts_synth_result *out, qtts_err *err);
void qtts_synth_result_free(qtts_synth_result *r);

#ifdef __cplusplus
}
#endif
#endif
