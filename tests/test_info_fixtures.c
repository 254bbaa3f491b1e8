/* `qtts info --json` on every tiny fixture checkpoint: the variant and the
 * main model's parameter count must equal what the official package reported
 * when it built the checkpoint (tests/fixtures/manifest.json models.*.n_params,
 * torch's own count of its parameters). */
#include <cJSON.h>
#include <stdlib.h>

#include "testutil.h"
#include "util.h"

static cJSON *load_json(const char *path) {
    char *t = NULL;
    size_t n;
    qtts_err e = {0};
    if (qtts_read_file(path, &t, &n, &e)) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

int main(void) {
    char path[2048];
    snprintf(path, sizeof path, "%s/manifest.json", tu_fixture_dir());
    cJSON *man = load_json(path);
    if (!man) return tu_skip("no tests/fixtures/manifest.json");
    const cJSON *models = cJSON_GetObjectItem(man, "models");
    static const struct {
        const char *type, *variant;
    } names[] = {{"custom_voice", "CustomVoice"}, {"voice_design", "VoiceDesign"}, {"base", "Base"}};
    int n = 0;
    for (const cJSON *m = models ? models->child : NULL; m; m = m->next) {
        if (!cJSON_IsString(cJSON_GetObjectItem(m, "tts_model_type"))) continue; /* the shared speech tokenizer */
        n++;
        char cmd[4096], out[65536];
        snprintf(cmd, sizeof cmd, "%s info --json %s/fixtures/models/%s", QTTS_EXE, QTTS_BINARY_DIR, m->string);
        int rc = tu_run(cmd, out, sizeof out);
        CHECK(rc == 0, "%s: qtts info exited %d: %.300s", m->string, rc, out);
        cJSON *info = cJSON_Parse(out);
        CHECK(info, "%s: qtts info --json is not JSON", m->string);
        if (!info) continue;
        const char *type = cJSON_GetObjectItem(m, "tts_model_type")->valuestring, *want = "?";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(type, names[i].type)) want = names[i].variant;
        const cJSON *variant = cJSON_GetObjectItem(info, "variant");
        CHECK(cJSON_IsString(variant) && !strcmp(variant->valuestring, want), "%s: variant %s, want %s", m->string,
              cJSON_IsString(variant) ? variant->valuestring : "?", want);
        double got = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(info, "components"), "main_total"), "params")->valuedouble;
        double ref = cJSON_GetObjectItem(m, "n_params")->valuedouble;
        CHECK(got == ref, "%s: %.0f parameters, the official package counted %.0f", m->string, got, ref);
        printf("%s: %s, %.0f parameters (official %.0f)\n", m->string, want, got, ref);
        cJSON_Delete(info);
    }
    CHECK(n == 3, "%d fixture models", n);
    cJSON_Delete(man);
    return tu_finish("test_info_fixtures");
}
