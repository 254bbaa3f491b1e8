/* `qtts info MODEL_DIR [--json]`: reads config.json, generation_config.json,
 * speech_tokenizer/config.json and the safetensors headers (no weights are
 * touched), then prints the variant, dimensions, speaker/language tables and the
 * parameter count and byte size of each component, as text or as JSON. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "safetensors.h"

/* One row of the parameter table: tensors under `prefix` minus `exclude`. */
typedef struct {
    const char *label, *key;
    int64_t params, bytes;
    unsigned dtypes; /* QTTS_DTM mask of the dtypes seen */
    int n_tensors;
} info_part;

static void count_part(const qtts_safetensors *st, const char *prefix, const char *const *exclude, info_part *p) {
    qtts_st_count(st, prefix, exclude, &p->params, &p->bytes);
    size_t pl = strlen(prefix);
    p->dtypes = 0;
    p->n_tensors = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *n = st->tensors[i].name;
        if (strncmp(n, prefix, pl) != 0) continue;
        bool skip = false;
        for (int e = 0; exclude && exclude[e] && !skip; e++) skip = !strncmp(n, exclude[e], strlen(exclude[e]));
        if (skip) continue;
        p->dtypes |= QTTS_DTM(st->tensors[i].dtype);
        p->n_tensors++;
    }
}

/* "BF16", "F32", or "BF16+F32" for a mixed component. */
static void dtype_label(unsigned mask, char *out, size_t n) {
    int w = 0;
    out[0] = 0;
    for (int d = 0; d < QTTS_DT_COUNT; d++)
        if (mask & QTTS_DTM(d)) w += snprintf(out + w, n - (size_t)w, w ? "+%s" : "%s", qtts_dtype_name((qtts_dtype)d));
}

static void print_part(const info_part *p) {
    char dl[64];
    if (p->n_tensors == 0) {
        printf("  %-26s absent\n", p->label);
        return;
    }
    dtype_label(p->dtypes, dl, sizeof dl);
    printf("  %-26s %8.1f M params  %8.1f MB (%s)\n", p->label, (double)p->params / 1e6, (double)p->bytes / 1e6, dl);
}

static void json_part(cJSON *parts, const info_part *p) {
    char dl[64];
    cJSON *o = cJSON_AddObjectToObject(parts, p->key);
    dtype_label(p->dtypes, dl, sizeof dl);
    cJSON_AddBoolToObject(o, "present", p->n_tensors > 0);
    cJSON_AddNumberToObject(o, "tensors", p->n_tensors);
    cJSON_AddNumberToObject(o, "params", (double)p->params);
    cJSON_AddNumberToObject(o, "bytes", (double)p->bytes);
    cJSON_AddStringToObject(o, "dtype", dl);
}

static cJSON *json_lm(const qtts_lm_config *lm) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "hidden_size", lm->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", lm->intermediate_size);
    cJSON_AddNumberToObject(o, "num_layers", lm->num_layers);
    cJSON_AddNumberToObject(o, "num_heads", lm->num_heads);
    cJSON_AddNumberToObject(o, "num_kv_heads", lm->num_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", lm->head_dim);
    cJSON_AddNumberToObject(o, "vocab_size", lm->vocab_size);
    return o;
}

static void print_lm(const char *label, const qtts_lm_config *lm) {
    printf("%-12s %d layers, hidden %d, intermediate %d, heads %d (kv %d) x %d, vocab %d\n", label, lm->num_layers,
           lm->hidden_size, lm->intermediate_size, lm->num_heads, lm->num_kv_heads, lm->head_dim, lm->vocab_size);
}

static int usage(FILE *f) {
    fprintf(f, "usage: qtts info MODEL_DIR [--json]\n"
               "  Print the variant, dimensions, speakers, languages and per-component\n"
               "  parameter counts of a Qwen3-TTS model folder (headers only, fast).\n");
    return f == stdout ? CLI_OK : CLI_USAGE;
}

int qtts_cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) as_json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "qtts info: unknown option '%s'\n", argv[i]);
            return usage(stderr);
        } else if (dir) {
            fprintf(stderr, "qtts info: more than one MODEL_DIR\n");
            return usage(stderr);
        } else dir = argv[i];
    }
    if (!dir) return usage(stderr);

    qtts_err err = {0};
    qtts_status st = QTTS_OK;
    qtts_model_config mc;
    qtts_gen_config gc;
    qtts_codec_config cc;
    qtts_safetensors main_st = {0}, codec_st = {0};
    bool have_codec_cfg = false, have_codec_st = false;
    char codec_dir[4096], path[4096];
    cJSON *js = NULL;
    int rc = CLI_FAIL;

    QTTS_TRY(qtts_model_config_load(dir, &mc, &err));
    QTTS_TRY(qtts_gen_config_load(dir, &gc, &err));
    QTTS_TRY(qtts_st_open(&main_st, dir, &err));
    QTTS_TRY(qtts_path_join(codec_dir, sizeof codec_dir, dir, "speech_tokenizer", &err));
    QTTS_TRY(qtts_path_join(path, sizeof path, codec_dir, "config.json", &err));
    if (qtts_file_exists(path)) {
        QTTS_TRY(qtts_codec_config_load(codec_dir, &cc, &err));
        have_codec_cfg = true;
    }
    QTTS_TRY(qtts_path_join(path, sizeof path, codec_dir, "model.safetensors", &err));
    char idx[4096];
    QTTS_TRY(qtts_path_join(idx, sizeof idx, codec_dir, "model.safetensors.index.json", &err));
    if (qtts_file_exists(path) || qtts_file_exists(idx)) {
        QTTS_TRY(qtts_st_open(&codec_st, codec_dir, &err));
        have_codec_st = true;
    }

    static const char *const not_predictor[] = {"talker.code_predictor.", NULL};
    info_part parts[6] = {
        {.label = "talker", .key = "talker"},
        {.label = "code predictor", .key = "code_predictor"},
        {.label = "speaker encoder", .key = "speaker_encoder"},
        {.label = "main model total", .key = "main_total"},
        {.label = "speech tokenizer decoder", .key = "speech_tokenizer_decoder"},
        {.label = "speech tokenizer encoder", .key = "speech_tokenizer_encoder"},
    };
    count_part(&main_st, "talker.", not_predictor, &parts[0]);
    count_part(&main_st, "talker.code_predictor.", NULL, &parts[1]);
    count_part(&main_st, "speaker_encoder.", NULL, &parts[2]);
    count_part(&main_st, "", NULL, &parts[3]);
    if (have_codec_st) {
        count_part(&codec_st, "decoder.", NULL, &parts[4]);
        count_part(&codec_st, "encoder.", NULL, &parts[5]);
    }

    if (as_json) {
        js = cJSON_CreateObject();
        cJSON_AddStringToObject(js, "model_dir", dir);
        cJSON_AddStringToObject(js, "variant", qtts_variant_name(mc.variant));
        cJSON_AddStringToObject(js, "size", mc.size_tag);
        cJSON *t = json_lm(&mc.talker);
        cJSON_AddNumberToObject(t, "text_vocab_size", mc.text_vocab_size);
        cJSON_AddNumberToObject(t, "text_hidden_size", mc.text_hidden_size);
        cJSON_AddNumberToObject(t, "num_code_groups", mc.num_code_groups);
        cJSON_AddItemToObject(js, "talker", t);
        cJSON_AddItemToObject(js, "code_predictor", json_lm(&mc.predictor));
        cJSON *langs = cJSON_AddObjectToObject(js, "languages");
        for (int i = 0; i < mc.n_languages; i++) cJSON_AddNumberToObject(langs, mc.languages[i].name, mc.languages[i].id);
        cJSON *spk = cJSON_AddArrayToObject(js, "speakers");
        for (int i = 0; i < mc.n_speakers; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "name", mc.speakers[i].name);
            cJSON_AddNumberToObject(s, "id", mc.speakers[i].id);
            if (mc.speakers[i].dialect[0]) cJSON_AddStringToObject(s, "dialect", mc.speakers[i].dialect);
            else cJSON_AddNullToObject(s, "dialect");
            cJSON_AddItemToArray(spk, s);
        }
        if (mc.has_speaker_encoder) cJSON_AddNumberToObject(js, "speaker_encoder_dim", mc.speaker_enc_dim);
        cJSON *parts_js = cJSON_AddObjectToObject(js, "components");
        for (int i = 0; i < 4; i++) json_part(parts_js, &parts[i]);
        if (have_codec_st)
            for (int i = 4; i < 6; i++) json_part(parts_js, &parts[i]);
        cJSON_AddBoolToObject(js, "speech_tokenizer", have_codec_st);
        if (have_codec_cfg) {
            cJSON *c = cJSON_AddObjectToObject(js, "codec");
            cJSON_AddNumberToObject(c, "output_sample_rate", cc.output_sample_rate);
            cJSON_AddNumberToObject(c, "decode_upsample_rate", cc.decode_upsample_rate);
            cJSON_AddNumberToObject(c, "num_quantizers", cc.num_quantizers);
            cJSON_AddNumberToObject(c, "codebook_size", cc.codebook_size);
        }
        cJSON *g = cJSON_AddObjectToObject(js, "generation");
        cJSON_AddBoolToObject(g, "do_sample", gc.do_sample);
        cJSON_AddNumberToObject(g, "temperature", gc.temperature);
        cJSON_AddNumberToObject(g, "top_k", gc.top_k);
        cJSON_AddNumberToObject(g, "top_p", gc.top_p);
        cJSON_AddNumberToObject(g, "repetition_penalty", gc.repetition_penalty);
        cJSON_AddNumberToObject(g, "max_new_tokens", gc.max_new_tokens);
        char *txt = cJSON_Print(js);
        QTTS_CHECK(txt, &err, QTTS_ERR_OOM, "out of memory printing JSON");
        printf("%s\n", txt);
        free(txt);
    } else {
        printf("model:       %s\n", dir);
        printf("variant:     %s\n", qtts_variant_name(mc.variant));
        printf("size:        %s\n", mc.size_tag);
        print_lm("talker:", &mc.talker);
        printf("             text vocab %d x %d, %d code groups\n", mc.text_vocab_size, mc.text_hidden_size, mc.num_code_groups);
        print_lm("predictor:", &mc.predictor);
        printf("languages:   %d:", mc.n_languages);
        for (int i = 0; i < mc.n_languages; i++) printf(" %s", mc.languages[i].name);
        printf("\nspeakers:    %d%s", mc.n_speakers, mc.n_speakers ? ":" : "");
        for (int i = 0; i < mc.n_speakers; i++) {
            printf(" %s", mc.speakers[i].name);
            if (mc.speakers[i].dialect[0]) printf(" (%s)", mc.speakers[i].dialect);
        }
        printf("\n");
        if (mc.has_speaker_encoder) printf("speaker enc: x-vector dim %d, %d Hz\n", mc.speaker_enc_dim, mc.speaker_sample_rate);
        if (have_codec_cfg)
            printf("codec:       %d Hz, %d samples/frame, %d codebooks x %d\n", cc.output_sample_rate, cc.decode_upsample_rate,
                   cc.num_quantizers, cc.codebook_size);
        printf("generation:  %s, temperature %.2f, top-k %d, top-p %.2f, repetition penalty %.2f, max %d frames\n",
               gc.do_sample ? "sampling" : "greedy", (double)gc.temperature, gc.top_k, (double)gc.top_p,
               (double)gc.repetition_penalty, gc.max_new_tokens);
        printf("parameters:\n");
        for (int i = 0; i < 4; i++) print_part(&parts[i]);
        if (have_codec_st)
            for (int i = 4; i < 6; i++) print_part(&parts[i]);
        else printf("  speech tokenizer: not found (%s/model.safetensors)\n", codec_dir);
    }
    rc = CLI_OK;
cleanup:
    cJSON_Delete(js);
    qtts_st_close(&main_st);
    qtts_st_close(&codec_st);
    if (st != QTTS_OK) return cli_report("info", &err);
    return rc;
}
