/* End to end through the CLI: `qtts synth --greedy` on every non-ICL fixture
 * case must reproduce the official greedy codes exactly and write a valid
 * audio file of frames x 1920 samples; `qtts decode` of the reference codes
 * must match the reference waveform (SNR >= 60 dB). Needs the fixtures and
 * the tokenizer files from ../shared (skips without them). */
#include <cJSON.h>
#include <dirent.h>
#include <sndfile.h>
#include <stdlib.h>
#include <unistd.h>

#include "npy.h"
#include "testutil.h"

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Shell-quote s into out (single quotes). */
static void quote(char *out, size_t n, const char *s) {
    size_t j = 0;
    out[j++] = '\'';
    for (; *s && j + 5 < n; s++) {
        if (*s == '\'') {
            memcpy(out + j, "'\\''", 4);
            j += 4;
        } else out[j++] = *s;
    }
    out[j++] = '\'';
    out[j] = 0;
}

static float *read_audio(const char *path, int64_t *n, int *sr) {
    SF_INFO info = {0};
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) return NULL;
    float *buf = malloc((size_t)info.frames * sizeof(float));
    *n = sf_readf_float(f, buf, info.frames);
    *sr = info.samplerate;
    sf_close(f);
    return buf;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* --stats-json (what bench_gpu.sh reads): the run's shape and times. On the
 * CPU no step has a fused predictor frame. */
static void check_stats(const char *tmp, const char *name, int frames) {
    char path[1400], *txt = NULL;
    size_t len;
    qtts_err e = {0};
    snprintf(path, sizeof path, "%s/%s.json", tmp, name);
    CHECK(qtts_read_file(path, &txt, &len, &e) == QTTS_OK, "%s: stats: %s", name, e.msg);
    cJSON *s = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    CHECK(s != NULL, "%s: stats JSON does not parse", name);
    if (!s) return;
    const cJSON *st = cJSON_GetObjectItem(s, "stages");
    CHECK(jstr(s, "backend") && !strcmp(jstr(s, "backend"), "cpu") && cJSON_IsObject(cJSON_GetObjectItem(s, "backend_params")),
          "%s: stats backend", name);
    CHECK(jnum(s, "frames") == frames && jnum(s, "generator_steps") == frames && jnum(s, "predictor_fused_steps") == 0,
          "%s: stats frames %.0f, steps %.0f, fused %.0f; want %d, %d, 0", name, jnum(s, "frames"), jnum(s, "generator_steps"),
          jnum(s, "predictor_fused_steps"), frames, frames);
    CHECK(jnum(s, "frames_per_second") > 0 && jnum(s, "realtime_factor") > 0 && jnum(s, "wall_clock_ms") > 0, "%s: stats rates", name);
    const char *keys[] = {"prefill_ms", "talker_ms", "code_predictor_ms", "sampling_ms", "decoder_ms"};
    double sum = 0;
    for (int k = 0; k < 5; k++) {
        CHECK(jnum(st, keys[k]) > 0, "%s: stats stages.%s", name, keys[k]);
        sum += jnum(st, keys[k]);
    }
    CHECK(sum <= jnum(s, "wall_clock_ms"), "%s: stages %.1f ms within the wall clock %.1f ms", name, sum, jnum(s, "wall_clock_ms"));
    cJSON_Delete(s);
    unlink(path);
}

static int run_case(const char *dir, const char *name, const char *tmp) {
    char path[1400], *txt = NULL;
    size_t len;
    qtts_err e = {0};
    snprintf(path, sizeof path, "%s/meta.json", dir);
    if (qtts_read_file(path, &txt, &len, &e)) return 0;
    cJSON *meta = cJSON_Parse(txt);
    free(txt);
    const char *mode = jstr(meta, "mode");
    if (!mode || strstr(mode, "icl")) { /* ICL cloning is not a synth option yet */
        cJSON_Delete(meta);
        return 0;
    }
    char cmd[8192], q[2048], out[2048];
    snprintf(cmd, sizeof cmd, "%s synth --quiet --greedy --model %s/fixtures/models/%s --out %s/%s.wav --codes-out %s/%s.npy --stats-json %s/%s.json",
             QTTS_EXE, QTTS_BINARY_DIR, jstr(meta, "model"), tmp, name, tmp, name, tmp, name);
    const char *keys[][2] = {{"text", "--text"}, {"speaker", "--speaker"}, {"instruct", "--instruct"}, {"language", "--language"}};
    for (int k = 0; k < 4; k++)
        if (jstr(meta, keys[k][0])) {
            quote(q, sizeof q, jstr(meta, keys[k][0]));
            snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s %s", keys[k][1], q);
        }
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s --max-frames %d",
             cJSON_IsTrue(cJSON_GetObjectItem(meta, "non_streaming_mode")) ? "--non-streaming-text" : "--streaming-text",
             cJSON_GetObjectItem(meta, "n_frames")->valueint);
    snprintf(path, sizeof path, "%s/xvector.npy", dir);
    if (qtts_file_exists(path)) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " --xvector %s", path);
    int rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 0, "%s: synth exited %d: %s", name, rc, out);
    qtts_npy got = {0}, want = {0};
    snprintf(path, sizeof path, "%s/%s.npy", tmp, name);
    CHECK(qtts_npy_load(path, &got, &e) == QTTS_OK, "%s: codes: %s", name, e.msg);
    snprintf(path, sizeof path, "%s/codes.npy", dir);
    CHECK(qtts_npy_load(path, &want, &e) == QTTS_OK, "%s: reference codes: %s", name, e.msg);
    bool same = got.data && want.data && got.count == want.count && !memcmp(got.data, want.data, (size_t)got.count * 8);
    CHECK(same, "%s: synth codes differ from the reference (%lld vs %lld values)", name, (long long)got.count, (long long)want.count);
    int64_t ns = 0;
    int sr = 0;
    snprintf(path, sizeof path, "%s/%s.wav", tmp, name);
    float *a = read_audio(path, &ns, &sr);
    CHECK(a && sr == 24000 && ns == want.shape[0] * 1920, "%s: audio %lld samples at %d Hz", name, (long long)ns, sr);
    printf("%s: codes %s, %lld samples\n", name, same ? "identical" : "DIFFER", (long long)ns);
    check_stats(tmp, name, (int)want.shape[0]);
    free(a);
    unlink(path);
    qtts_npy_free(&got);
    qtts_npy_free(&want);
    cJSON_Delete(meta);
    return 1;
}

int main(void) {
    char root[1024], tok[1024];
    snprintf(root, sizeof root, "%s/cases", tu_fixture_dir());
    snprintf(tok, sizeof tok, "%s/fixtures/models/custom_voice/vocab.json", QTTS_BINARY_DIR);
    DIR *d = opendir(root);
    if (!d) return tu_skip("no tests/fixtures/cases");
    if (!qtts_file_exists(tok)) {
        closedir(d);
        return tu_skip("tokenizer files absent (../shared/data/qwen2-tokenizer not found at configure time)");
    }
    char tmp[] = "/tmp/qtts_cli_synthXXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            char dir[1100];
            snprintf(dir, sizeof dir, "%s/%s", root, de->d_name);
            n += run_case(dir, de->d_name, tmp);
        }
    closedir(d);
    CHECK(n >= 3, "only %d cases ran", n);

    /* qtts decode of the reference codes against the reference waveform */
    char cmd[4096], out[2048], wav[1200];
    snprintf(wav, sizeof wav, "%s/decode.wav", tmp);
    snprintf(cmd, sizeof cmd, "%s decode --model %s/fixtures/models/custom_voice --codes %s/codec/codes.npy --chunk 0 --out %s", QTTS_EXE,
             QTTS_BINARY_DIR, tu_fixture_dir(), wav);
    CHECK(tu_run(cmd, out, sizeof out) == 0, "decode: %s", out);
    int64_t ns = 0;
    int sr;
    float *a = read_audio(wav, &ns, &sr);
    char ref[1200];
    snprintf(ref, sizeof ref, "%s/codec/wav_full.npy", tu_fixture_dir());
    if (!qtts_file_exists(ref)) snprintf(ref, sizeof ref, "%s/codec/wav_full.npy.zst", tu_fixture_dir());
    float *r = NULL;
    int64_t rn = 0;
    qtts_err e = {0};
    CHECK(qtts_npy_load_f32(ref, &r, &rn, NULL, &e) == QTTS_OK, "reference waveform: %s", e.msg);
    if (a && r && rn == ns) {
        /* the wav holds 16-bit PCM: quantisation bounds the SNR near 90 dB for a full-scale signal */
        double snr = tu_snr_db(a, r, (size_t)ns);
        printf("qtts decode vs reference waveform: %.1f dB (16-bit wav)\n", snr);
        CHECK(snr >= 60.0, "decode SNR %.1f dB < 60", snr);
    } else {
        CHECK(0, "decode length %lld vs reference %lld", (long long)ns, (long long)rn);
    }
    free(a);
    free(r);
    unlink(wav);
    rmdir(tmp);
    return tu_finish("test_cli_synth");
}
