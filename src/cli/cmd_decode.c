/* `qtts decode --model DIR --codes FILE.npy --out FILE`: codes [frames, 16]
 * (int64 or int32 NPY, .npy.zst accepted) -> speech-tokenizer decoder ->
 * 24 kHz mono audio (.wav/.flac/.ogg). Everything that can be checked before
 * the decode is checked first; the audio is written atomically. */
#include <errno.h>
#include <getopt.h>
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
            "Backend:\n",
            QTTS_CODEC_CHUNK_DEFAULT, QTTS_CODEC_CONTEXT_DEFAULT);
    cli_backend_usage(f, 18);
}

int qtts_cmd_decode(int argc, char **argv) {
    const char *model = NULL, *codes_path = NULL, *out = NULL;
    int chunk = QTTS_CODEC_CHUNK_DEFAULT, context = QTTS_CODEC_CONTEXT_DEFAULT;
    cli_backend bk;
    cli_backend_init(&bk);
    enum { O_MODEL = 256, O_CODES, O_OUT, O_CHUNK, O_CTX };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL}, {"codes", required_argument, 0, O_CODES},
                                         {"out", required_argument, 0, O_OUT},     {"chunk", required_argument, 0, O_CHUNK},
                                         {"context", required_argument, 0, O_CTX}, {"help", no_argument, 0, 'h'},
                                         CLI_BACKEND_LONGOPTS,                     {0, 0, 0, 0}};
    optind = 1;
    int c;
    int li = 0; /* the long option's index: its name for messages */
    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        int taken = cli_backend_option(&bk, c, optarg, "decode");
        if (taken < 0) return CLI_USAGE;
        if (taken) continue;
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_CODES: codes_path = optarg; break;
        case O_OUT: out = optarg; break;
        case O_CHUNK:
        case O_CTX:
            if (!cli_count_option("decode", opts[li].name, optarg, c == O_CHUNK ? &chunk : &context)) return CLI_USAGE;
            break;
        case 'h': decode_usage(stdout); return CLI_OK;
        default: decode_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qtts decode: unexpected argument '%s'\n", argv[optind]);
        decode_usage(stderr);
        return CLI_USAGE;
    }
    if (!model || !codes_path || !out) {
        fprintf(stderr, "qtts decode: --model, --codes and --out are required\n");
        decode_usage(stderr);
        return CLI_USAGE;
    }
    const char *backend = cli_backend_resolve(&bk, "decode");
    if (!backend) return CLI_USAGE;

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
    QTTS_TRY(qtts_backend_init_named(&be, backend, &bk.params, &err));
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
    fprintf(stderr, "qtts decode: %d frames -> %lld samples (%.2f s of audio) in %.2f s on %s -> %s\n", T, (long long)n,
            (double)n / qtts_codec_sample_rate(codec), dt, be.ops->name, out);
cleanup:
    free(wav[0]);
    free(ci);
    qtts_npy_free(&codes);
    qtts_codec_free(codec);
    if (be_up) qtts_backend_free(&be);
    return st == QTTS_OK ? CLI_OK : cli_report("decode", &err);
}
