/* Audio file output through libsndfile. The container comes from the file
 * extension (.wav: 16-bit PCM, .flac: 16-bit FLAC, .ogg: Vorbis); the file is
 * written under a temporary name in the same folder and renamed, so a
 * failure never leaves a partial file at `path`. */
#ifndef QTTS_AUDIO_H
#define QTTS_AUDIO_H

#include <stdint.h>

#include "util.h"

/* Mono float PCM in [-1, 1] (values outside are clipped). Unknown or missing
 * extension -> QTTS_ERR_INVALID_ARG; unwritable folder -> QTTS_ERR_IO. */
qtts_status qtts_audio_write(const char *path, const float *pcm, int64_t n, int sample_rate, qtts_err *err);

/* The libsndfile major format for path's extension, or 0 if unsupported. */
int qtts_audio_format_for(const char *path);

#endif
