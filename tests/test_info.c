/* `qtts info` end to end on header-only full-size checkpoints (sparse files with
 * the real tensor lists and config.json values): the printed totals must be
 * the spec's 905.8 M (0.6B) and 1916.7 M (1.7B); bad folders must exit non-zero
 * naming the file and the tensor or key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "modelfix.h"
#include "testutil.h"

static char root[512];
static char out[1 << 16];

/* Make root/name with config.json and a sparse model.safetensors; with_codec adds speech_tokenizer/. */
static void make_model(char *dir, size_t n, const char *name, bool big, const char *type, bool with_codec) {
    char p[1024], cfg[8192];
    snprintf(dir, n, "%s/%s", root, name);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    mf_config_json(cfg, sizeof cfg, big, type);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(stw_write_text(p, cfg) == 0, "write %s", p);
    stw_list l = {0};
    mf_main_tensors(&l, big, !strcmp(type, "base"));
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(mf_write_sparse(p, &l) == 0, "write %s", p);
    free(l.t);
    if (!with_codec) return;
    snprintf(p, sizeof p, "%s/speech_tokenizer", dir);
    CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
    snprintf(p, sizeof p, "%s/speech_tokenizer/config.json", dir);
    CHECK(stw_write_text(p, mf_codec_config_json) == 0, "write %s", p);
    stw_list d = {0};
    mf_decoder_tensors(&d);
    snprintf(p, sizeof p, "%s/speech_tokenizer/model.safetensors", dir);
    CHECK(mf_write_sparse(p, &d) == 0, "write %s", p);
    free(d.t);
}

static int run_info(const char *dir, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' info '%s' %s", QTTS_EXE, dir, extra);
    return tu_run(cmd, out, sizeof out);
}

static void expect(const char *what, const char *needle) { CHECK(strstr(out, needle) != NULL, "%s: no '%s' in:\n%s", what, needle, out); }

static void test_full_size(void) {
    char d06[700], d17[700], db[700];
    make_model(d06, sizeof d06, "Qwen3-TTS-12Hz-0.6B-CustomVoice", false, "custom_voice", true);
    int rc = run_info(d06, "");
    printf("--- qtts info (synthetic 0.6B CustomVoice) ---\n%s", out);
    CHECK(rc == 0, "info 0.6B exit %d", rc);
    expect("0.6B", "variant:     CustomVoice");
    expect("0.6B", "size:        0b6");
    expect("0.6B total", "main model total              905.8 M params    1811.");
    expect("0.6B", "(BF16)");
    expect("0.6B decoder", "speech tokenizer decoder      114.3 M params     457.");
    expect("0.6B", "eric (sichuan_dialect)");
    expect("0.6B", "dylan (beijing_dialect)");
    expect("0.6B", "28 layers, hidden 1024, intermediate 3072, heads 16 (kv 8) x 128");
    expect("0.6B", "speaker encoder            absent");
    expect("0.6B", "speech tokenizer encoder   absent");

    rc = run_info(d06, "--json");
    CHECK(rc == 0, "info --json exit %d", rc);
    expect("json", "\"variant\":\t\"CustomVoice\"");
    expect("json", "\"params\":\t905");

    make_model(d17, sizeof d17, "Qwen3-TTS-12Hz-1.7B-CustomVoice", true, "custom_voice", false);
    rc = run_info(d17, "");
    printf("--- qtts info (synthetic 1.7B CustomVoice) ---\n%s", out);
    CHECK(rc == 0, "info 1.7B exit %d", rc);
    expect("1.7B total", "main model total             1916.7 M params    3833.");
    expect("1.7B", "28 layers, hidden 2048, intermediate 6144");
    expect("1.7B", "speech tokenizer: not found");

    make_model(db, sizeof db, "Qwen3-TTS-12Hz-0.6B-Base", false, "base", false);
    rc = run_info(db, "");
    printf("--- qtts info (synthetic 0.6B Base) ---\n%s", out);
    CHECK(rc == 0, "info Base exit %d", rc);
    expect("Base", "variant:     Base");
    expect("Base", "speakers:    0");
    expect("Base speaker encoder", "speaker encoder                 8.9 M params");
    expect("Base", "x-vector dim 1024");
}

static void test_bad_folders(void) {
    char d[700], p[1024];
    /* overlapping tensors in model.safetensors */
    make_model(d, sizeof d, "bad-overlap", false, "voice_design", false);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    CHECK(stw_write(p, "{\"talker.a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                       "\"talker.b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[4,12]}}",
                    "0123456789ab", 12) == 0,
          "write");
    int rc = run_info(d, "");
    CHECK(rc == 1, "overlap: exit %d", rc);
    expect("overlap", "model.safetensors: tensors talker.a and talker.b overlap");

    /* a missing key in config.json */
    make_model(d, sizeof d, "bad-config", false, "custom_voice", false);
    char cfg[8192];
    mf_config_json(cfg, sizeof cfg, false, "custom_voice");
    char *k = strstr(cfg, "\"hidden_size\": 1024, \"initializer_range\"");
    CHECK(k != NULL, "fixture has the talker hidden_size");
    if (k) memcpy(k, "\"hidden_sizX\"", 13);
    snprintf(p, sizeof p, "%s/config.json", d);
    CHECK(stw_write_text(p, cfg) == 0, "write");
    rc = run_info(d, "");
    CHECK(rc == 1, "missing key: exit %d", rc);
    expect("missing key", "config.json: talker_config.hidden_size: missing");

    /* a truncated speech tokenizer */
    make_model(d, sizeof d, "bad-codec", false, "custom_voice", true);
    snprintf(p, sizeof p, "%s/speech_tokenizer/model.safetensors", d);
    CHECK(truncate(p, 100000) == 0, "truncate");
    rc = run_info(d, "");
    CHECK(rc == 1, "truncated codec: exit %d", rc);
    expect("truncated codec", "speech_tokenizer/model.safetensors");
    expect("truncated codec", "truncated");

    /* usage errors */
    rc = run_info(d, "--bogus");
    CHECK(rc == 2, "unknown option: exit %d", rc);
    rc = run_info("/nonexistent/qtts-model", "");
    CHECK(rc == 1, "missing folder: exit %d", rc);
    expect("missing folder", "/nonexistent/qtts-model/config.json");
}

int main(void) {
    stw_tmpdir(root, sizeof root, "info");
    test_full_size();
    test_bad_folders();
    stw_rmrf(root);
    return tu_finish("info");
}
