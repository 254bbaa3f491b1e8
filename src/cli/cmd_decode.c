/* `qtts decode --model DIR --codes FILE.npy --out FILE`: codes [frames, 16]
 * (int64 or int32 NPY, .npy.zst accepted) -> speech-tokenizer decoder ->
 * 24 kHz mono audio (.wav/.flac/.ogg). Everything that can be checked before
 * the decode is checked first; the audio is written atomically. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio.h"
#include "cli.h"
#include "codec.h"
#include "npy.h"

static void decode_usage(FILE *f) {
    fprintf(f,
            "usage: qtts decode --model DIR --codes FILE.npy --out FILE.{wav,flac,ogg} [options]\n"
            "  --model DIR     model folder (its speech_tokenizer/ is used) or a speech_tokenizer folder\n"
            "  --codes FILE    NPY int64/int32 array [frames, 16] (.npy.zst accepted)\n"
            "  --out FILE      output audio; the extension picks the format\n"
            "  --chunk N       frames per decoder call, as the official chunked_decode (default %d; 0 = one full call)\n"
            "  --context N     left-context frames per chunk (default %d)\n"
            "  --backend cpu   compute backend (default cpu)\n",
            QTTS_CODEC_CHUNK_DEFAULT, QTTS_CODEC_CONTEXT_DEFAULT);
}

static bool parse_nonneg(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000) return false;
    *out = (int)v;
    return true;
}

int qtts_cmd_decode(int argc, char **argv) {
    const char *model = NULL, *codes_path = NULL, *out = NULL, *backend = "cpu";
    int chunk = QTTS_CODEC_CHUNK_DEFAULT, context = QTTS_CODEC_CONTEXT_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            decode_usage(stdout);
            return CLI_OK;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "qtts decode: %s: missing value or unknown option\n", a);
            decode_usage(stderr);
            return CLI_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--codes")) codes_path = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--chunk") || !strcmp(a, "--context")) {
            if (!parse_nonneg(v, !strcmp(a, "--chunk") ? &chunk : &context)) {
                fprintf(stderr, "qtts decode: %s: expected a non-negative integer, got '%s'\n", a, v);
                return CLI_USAGE;
            }
        } else {
            fprintf(stderr, "qtts decode: unknown option %s\n", a);
            decode_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (!model || !codes_path || !out) {
        fprintf(stderr, "qtts decode: --model, --codes and --out are required\n");
        decode_usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(backend, "cpu") != 0) {
        fprintf(stderr, "qtts decode: --backend %s: not available in this build (cpu)\n", backend);
        return CLI_USAGE;
    }

    qtts_err err = {0};
    qtts_status st = QTTS_OK;
    qtts_backend be = {0};
    qtts_codec *codec = NULL;
    qtts_npy codes = {0};
    int32_t *ci = NULL;
    float *wav[1] = {NULL};
    char codec_dir[4096], probe[4096];
    bool be_up = false;

    /* output checks first: no decode just to fail at the write */
    if (!qtts_audio_format_for(out)) {
        st = qtts_fail(&err, QTTS_ERR_INVALID_ARG, "%s: unknown audio format (use a .wav, .flac or .ogg extension)", out);
        goto cleanup;
    }
    {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", out);
        const char *folder = dirname(tmp);
        QTTS_CHECK(access(folder, W_OK) == 0, &err, QTTS_ERR_IO, "%s: output folder %s is not writable: %s", out, folder, strerror(errno));
    }
    QTTS_CHECK(qtts_file_exists(codes_path), &err, QTTS_ERR_MISSING, "%s: no such codes file", codes_path);
    QTTS_TRY(qtts_npy_load(codes_path, &codes, &err));
    QTTS_CHECK(codes.dtype == QTTS_NPY_I64 || codes.dtype == QTTS_NPY_I32, &err, QTTS_ERR_DTYPE,
               "%s: codes must be an integer array (int64 or int32)", codes_path);

    snprintf(probe, sizeof probe, "%s/speech_tokenizer/config.json", model);
    if (qtts_file_exists(probe)) snprintf(codec_dir, sizeof codec_dir, "%s/speech_tokenizer", model);
    else snprintf(codec_dir, sizeof codec_dir, "%s", model);
    QTTS_TRY(qtts_backend_cpu_init(&be, &err));
    be_up = true;
    QTTS_TRY(qtts_codec_load(&codec, &be, codec_dir, &err));

    int nq = qtts_codec_num_quantizers(codec);
    char shp[128] = "";
    for (int d = 0, o = 0; d < codes.ndim && o < (int)sizeof shp - 24; d++)
        o += snprintf(shp + o, sizeof shp - (size_t)o, "%s%lld", d ? ", " : "", (long long)codes.shape[d]);
    QTTS_CHECK(codes.ndim == 2 && codes.shape[1] == nq && codes.shape[0] >= 1 && codes.shape[0] <= (1 << 24), &err, QTTS_ERR_SHAPE,
               "%s: codes have shape [%s], expected [frames, %d]", codes_path, shp, nq);
    int T = (int)codes.shape[0];
    ci = qtts_malloc((size_t)T * nq * sizeof(int32_t), &err, "codes");
    if (!ci) {
        st = QTTS_ERR_OOM;
        goto cleanup;
    }
    for (int64_t i = 0; i < (int64_t)T * nq; i++) {
        int64_t v = codes.dtype == QTTS_NPY_I64 ? ((int64_t *)codes.data)[i] : ((int32_t *)codes.data)[i];
        /* out-of-int32 values become -1 so that the decoder names the frame and codebook */
        ci[i] = v < INT32_MIN || v > INT32_MAX ? -1 : (int32_t)v;
    }
    double t0 = qtts_now();
    QTTS_TRY(qtts_codec_decode_chunked(codec, ci, &T, 1, chunk, context, wav, &err));
    double dt = qtts_now() - t0;
    int64_t n = (int64_t)T * qtts_codec_samples_per_frame(codec);
    QTTS_TRY(qtts_audio_write(out, wav[0], n, qtts_codec_sample_rate(codec), &err));
    fprintf(stderr, "qtts decode: %d frames -> %lld samples (%.2f s of audio) in %.2f s -> %s\n", T, (long long)n,
            (double)n / qtts_codec_sample_rate(codec), dt, out);
cleanup:
    free(wav[0]);
    free(ci);
    qtts_npy_free(&codes);
    qtts_codec_free(codec);
    if (be_up) qtts_backend_free(&be);
    return st == QTTS_OK ? CLI_OK : cli_report("decode", &err);
}
