/* A full-size random-weight checkpoint folder for benchmarks on machines that
 * cannot run the official package (the GPU machine has no registry; a 3.8 GB
 * folder cannot travel): the released config.json values, the released tensor
 * names, shapes and dtypes (tests/modelfix.h, the same lists `qtts info` is
 * checked against), and seeded random values with Hugging Face's default
 * initialisation rules: matrices and embeddings ~ N(0, 0.02) (an Irwin-Hall
 * approximation), norm weights 1, biases 0, layer scales 0.01, Snake
 * log-parameters 0, codebook usage 1. Speed does not depend on the values;
 * `scripts/make_fixtures.py --full-size` makes the official package's own
 * random checkpoints where it can run.
 *
 *   make_random_model OUT_DIR [--size 0.6B|1.7B] [--type custom_voice|voice_design]
 *                     [--tokenizer DIR] [--seed N]
 *
 * --tokenizer copies vocab.json, merges.txt and tokenizer_config.json in. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal.h"
#include "modelfix.h"
#include "sample.h"
#include "util.h"

static uint64_t hash_name(const char *s, uint64_t seed) {
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The constant a tensor is initialised to, or NAN for random N(0, 0.02). */
static float init_constant(const char *name) {
    if (ends_with(name, "norm.weight") || ends_with(name, "layernorm.weight") || ends_with(name, "cluster_usage")) return 1.0f;
    if (ends_with(name, ".bias")) return 0.0f;
    if (ends_with(name, "layer_scale.scale") || ends_with(name, ".gamma")) return 0.01f;
    if (ends_with(name, ".alpha") || ends_with(name, ".beta")) return 0.0f;
    return NAN;
}

static int write_tensor(FILE *f, const stw_tensor *t, uint64_t seed) {
    size_t n = 1, es = stw_dsize(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    float c = init_constant(t->name);
    uint64_t s = hash_name(t->name, seed);
    enum { CH = 1 << 16 };
    static unsigned char buf[CH * 4];
    for (size_t done = 0; done < n;) {
        size_t m = n - done < CH ? n - done : CH;
        for (size_t i = 0; i < m; i++) {
            float v = c;
            if (isnan(c)) {
                /* sum of four uniforms: mean 2, variance 1/3 */
                uint64_t r = qtts_mix64(s + done + i);
                float u = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) + (float)(r >> 48);
                v = (u / 65536.0f - 2.0f) * 1.7320508f * 0.02f;
            }
            if (es == 2) {
                uint16_t b = qtts_f32_to_bf16(v);
                memcpy(buf + 2 * i, &b, 2);
            } else {
                memcpy(buf + 4 * i, &v, 4);
            }
        }
        if (fwrite(buf, es, m, f) != m) return -1;
        done += m;
    }
    return 0;
}

static int write_checkpoint(const char *path, const stw_list *l, uint64_t seed) {
    size_t data;
    char *h = stw_header(l, &data);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "make_random_model: %s: %s\n", path, strerror(errno));
        free(h);
        return -1;
    }
    uint64_t hl = strlen(h);
    int rc = fwrite(&hl, 8, 1, f) == 1 && fwrite(h, 1, hl, f) == hl ? 0 : -1;
    for (int i = 0; rc == 0 && i < l->n; i++) rc = write_tensor(f, &l->t[i], seed);
    if (fclose(f) != 0) rc = -1;
    if (rc) fprintf(stderr, "make_random_model: %s: write failed: %s\n", path, strerror(errno));
    free(h);
    return rc;
}

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb");
    if (!a) {
        fprintf(stderr, "make_random_model: %s: %s\n", from, strerror(errno));
        return -1;
    }
    FILE *b = fopen(to, "wb");
    if (!b) {
        fprintf(stderr, "make_random_model: %s: %s\n", to, strerror(errno));
        fclose(a);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) rc = -1;
    fclose(a);
    if (fclose(b) != 0) rc = -1;
    return rc;
}

static const char gen_config[] =
    "{\"do_sample\": true, \"repetition_penalty\": 1.05, \"temperature\": 0.9, \"top_p\": 1.0, \"top_k\": 50,"
    " \"subtalker_dosample\": true, \"subtalker_temperature\": 0.9, \"subtalker_top_p\": 1.0, \"subtalker_top_k\": 50,"
    " \"max_new_tokens\": 8192}\n";
static const char preproc_config[] =
    "{\"chunk_length_s\": null, \"feature_extractor_type\": \"EncodecFeatureExtractor\", \"feature_size\": 1,"
    " \"overlap\": null, \"padding_side\": \"right\", \"padding_value\": 0.0, \"return_attention_mask\": true,"
    " \"sampling_rate\": 24000}\n";

int main(int argc, char **argv) {
    const char *size = "0.6B", *type = "custom_voice", *tok = NULL;
    uint64_t seed = 1;
    static const struct option opts[] = {{"size", required_argument, 0, 's'},
                                         {"type", required_argument, 0, 't'},
                                         {"tokenizer", required_argument, 0, 'k'},
                                         {"seed", required_argument, 0, 'r'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': size = optarg; break;
        case 't': type = optarg; break;
        case 'k': tok = optarg; break;
        case 'r': seed = strtoull(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    bool big = !strcmp(size, "1.7B");
    if ((!big && strcmp(size, "0.6B")) || (strcmp(type, "custom_voice") && strcmp(type, "voice_design")) || optind != argc - 1) {
        fprintf(stderr, "usage: make_random_model OUT_DIR [--size 0.6B|1.7B] [--type custom_voice|voice_design] "
                        "[--tokenizer DIR] [--seed N]\n");
        return 2;
    }
    const char *dir = argv[optind];
    char p[4096], q[4096];
    snprintf(p, sizeof p, "%s/speech_tokenizer", dir);
    qtts_err e = {0};
    if (qtts_mkdirs(p, false, &e) != QTTS_OK) { /* parents too */
        fprintf(stderr, "make_random_model: %s\n", e.msg);
        return 1;
    }
    static char cfg[16384];
    mf_config_json(cfg, sizeof cfg, big, type);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (stw_write_text(p, cfg)) return 1;
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    if (stw_write_text(p, gen_config)) return 1;
    snprintf(p, sizeof p, "%s/speech_tokenizer/config.json", dir);
    if (stw_write_text(p, mf_codec_config_json)) return 1;
    snprintf(p, sizeof p, "%s/speech_tokenizer/preprocessor_config.json", dir);
    if (stw_write_text(p, preproc_config)) return 1;
    stw_list l = {0};
    mf_main_tensors(&l, big, false);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = write_checkpoint(p, &l, seed);
    free(l.t);
    if (rc) return 1;
    stw_list d = {0};
    mf_decoder_tensors(&d);
    snprintf(p, sizeof p, "%s/speech_tokenizer/model.safetensors", dir);
    rc = write_checkpoint(p, &d, seed + 1);
    free(d.t);
    if (rc) return 1;
    if (tok) {
        const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", tok, files[i]);
            snprintf(q, sizeof q, "%s/%s", dir, files[i]);
            if (copy_file(p, q)) return 1;
        }
    }
    fprintf(stderr, "make_random_model: wrote %s (%s %s, seed %llu)\n", dir, size, type, (unsigned long long)seed);
    return 0;
}
