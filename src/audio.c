/* Audio output: libsndfile with the format picked from the extension, written
 * to path.tmp.PID and renamed into place only after a clean close. */
#include <sndfile.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#include "audio.h"

int qtts_audio_format_for(const char *path) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return 0;
    if (!strcasecmp(dot, ".wav")) return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    if (!strcasecmp(dot, ".flac")) return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    if (!strcasecmp(dot, ".ogg")) return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    return 0;
}

qtts_status qtts_audio_write(const char *path, const float *pcm, int64_t n, int sample_rate, qtts_err *err) {
    int fmt = qtts_audio_format_for(path);
    if (!fmt) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: unknown audio format (use a .wav, .flac or .ogg extension)", path);
    if (n < 0 || sample_rate <= 0) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: bad sample count or rate", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: path too long", path);
    SF_INFO info = {.samplerate = sample_rate, .channels = 1, .format = fmt};
    SNDFILE *f = sf_open(tmp, SFM_WRITE, &info);
    if (!f) return qtts_fail(err, QTTS_ERR_IO, "%s: cannot create: %s", path, sf_strerror(NULL));
    sf_command(f, SFC_SET_CLIPPING, NULL, SF_TRUE);
    sf_count_t done = 0;
    while (done < n) { /* in blocks: some encoders misbehave on one huge call */
        sf_count_t k = n - done < 65536 ? n - done : 65536;
        sf_count_t w = sf_writef_float(f, pcm + done, k);
        if (w != k) {
            qtts_fail(err, QTTS_ERR_IO, "%s: write failed after %lld samples: %s", path, (long long)done, sf_strerror(f));
            sf_close(f);
            unlink(tmp);
            return QTTS_ERR_IO;
        }
        done += k;
    }
    if (sf_close(f) != 0) {
        unlink(tmp);
        return qtts_fail(err, QTTS_ERR_IO, "%s: close failed", path);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return qtts_fail(err, QTTS_ERR_IO, "%s: cannot rename the temporary file into place", path);
    }
    return QTTS_OK;
}
