/* Codec decoder benchmark and chunking measurement: decodes seeded random
 * codes [T,16] with one full call and with the official chunking (300/25 by
 * default), reports decode speed (frames/s) and the SNR of chunked against
 * full (float, before any 16-bit quantisation). Writes JSON to stdout.
 * Usage: bench_codec CODEC_DIR [FRAMES] [CHUNK] [CONTEXT] [BATCH] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"

static double snr_db(const float *got, const float *ref, int64_t n) {
    double s = 0, e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        s += (double)ref[i] * ref[i];
        e += d * d;
    }
    return e == 0 ? INFINITY : 10 * log10(s / e);
}

/* A dB value as JSON: identical signals (infinite SNR) print as null, since
 * JSON has no infinity; "chunked_identical" says so in words. */
static const char *json_db(char *buf, size_t cap, double db) {
    if (isfinite(db)) snprintf(buf, cap, "%.2f", db);
    else snprintf(buf, cap, "null");
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_codec CODEC_DIR [FRAMES] [CHUNK] [CONTEXT] [BATCH]\n");
        return 2;
    }
    int T = argc > 2 ? atoi(argv[2]) : 400, chunk = argc > 3 ? atoi(argv[3]) : QTTS_CODEC_CHUNK_DEFAULT;
    int ctx = argc > 4 ? atoi(argv[4]) : QTTS_CODEC_CONTEXT_DEFAULT, B = argc > 5 ? atoi(argv[5]) : 1;
    qtts_err e = {0};
    qtts_backend be;
    qtts_codec *c = NULL;
    qtts_backend_cpu_init(&be, &e);
    double t0 = qtts_now();
    if (qtts_codec_load(&c, &be, argv[1], &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double t_load = qtts_now() - t0;
    int nq = qtts_codec_num_quantizers(c), spf = qtts_codec_samples_per_frame(c);
    int32_t *codes = malloc((size_t)B * T * nq * sizeof *codes);
    int *Ts = malloc((size_t)B * sizeof *Ts);
    uint64_t s = 12345;
    for (int64_t i = 0; i < (int64_t)B * T * nq; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        codes[i] = (int32_t)((s >> 33) % 2048);
    }
    for (int b = 0; b < B; b++) Ts[b] = T;
    float **full = calloc((size_t)B, sizeof *full), **chk = calloc((size_t)B, sizeof *chk);
    t0 = qtts_now();
    if (qtts_codec_decode(c, codes, Ts, B, full, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double t_full = qtts_now() - t0;
    t0 = qtts_now();
    if (qtts_codec_decode_chunked(c, codes, Ts, B, chunk, ctx, chk, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double t_chunk = qtts_now() - t0;
    int64_t n = (int64_t)T * spf;
    double rms = 0;
    for (int64_t i = 0; i < n; i++) rms += (double)full[0][i] * full[0][i];
    rms = sqrt(rms / n);
    /* SNR of the seams' region vs the first chunk (exact by construction) */
    double snr_all = snr_db(chk[0], full[0], n);
    double snr_first = snr_db(chk[0], full[0], (int64_t)(chunk < T ? chunk : T) * spf);
    char db_all[32], db_first[32];
    printf("{\"benchmark\": \"codec-decode\", \"frames\": %d, \"batch\": %d, \"load_ms\": %.1f, \"full_decode_ms\": %.1f, "
           "\"full_frames_per_second\": %.2f, \"chunked_decode_ms\": %.1f, \"chunk\": %d, \"context\": %d, "
           "\"chunked_vs_full_snr_db\": %s, \"first_chunk_snr_db\": %s, \"chunked_identical\": %s, \"output_rms\": %.3e}\n",
           T, B, t_load * 1e3, t_full * 1e3, B * T / t_full, t_chunk * 1e3, chunk, ctx, json_db(db_all, sizeof db_all, snr_all),
           json_db(db_first, sizeof db_first, snr_first), isinf(snr_all) ? "true" : "false", rms);
    for (int b = 0; b < B; b++) {
        free(full[b]);
        free(chk[b]);
    }
    free(full);
    free(chk);
    free(codes);
    free(Ts);
    qtts_codec_free(c);
    qtts_backend_free(&be);
    return 0;
}
