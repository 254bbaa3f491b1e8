/* Job file tests: every schema error is reported with its JSON path, many at once; a valid job
 * resolves effective parameters (defaults <- overrides) and text files relative to the job file;
 * content hashes follow text, voice and parameters but not output names. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "job.h"
#include "tokenizer.h"
#include "modelfix.h"
#include "testutil.h"

static char g_dir[64];
static qtts_model_config g_cv, g_vd;

static void write_text(const char *name, const char *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        return;
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Load json written as jobs/<name>.json; returns status, fills errors (caller frees). */
static qtts_status load(const char *json, const qtts_model_config *cfg, qtts_job **job, qtts_job_errors *errs,
                        qtts_err *err) {
    write_text("job.json", json, strlen(json));
    char p[512];
    snprintf(p, sizeof p, "%s/job.json", g_dir);
    return qtts_job_load(p, cfg, NULL, job, errs, err);
}

static bool has_error(const qtts_job_errors *e, const char *a, const char *b) {
    for (int i = 0; i < e->n; i++)
        if (strstr(e->msg[i], a) && (!b || strstr(e->msg[i], b))) return true;
    return false;
}

static void dump(const qtts_job_errors *e) {
    for (int i = 0; i < e->n; i++) fprintf(stderr, "    %s\n", e->msg[i]);
}

/* One bad job: expect failure and an error message containing both substrings. */
static void expect_error(const char *json, const qtts_model_config *cfg, const char *path, const char *what) {
    qtts_job *job = NULL;
    qtts_job_errors errs = {0};
    qtts_err err = {0};
    qtts_status st = load(json, cfg, &job, &errs, &err);
    CHECK(st == QTTS_ERR_JOB, "status %s for %s", qtts_status_str(st), path);
    CHECK(job == NULL, "no job on error");
    bool ok = has_error(&errs, path, what);
    CHECK(ok, "no error with \"%s\" and \"%s\"", path, what ? what : "");
    if (!ok) dump(&errs);
    qtts_job_errors_free(&errs);
    qtts_job_free(job);
}

#define HEAD "{\"model\": \"m\", \"output\": {\"dir\": \"out\"}, "
#define ONE_SESSION(voice, item) "\"sessions\": [{\"id\": \"s\", \"voice\": " voice ", \"items\": [" item "]}]}"
#define OK_ITEM "{\"id\": \"a\", \"text\": \"Hello.\"}"
#define OK_VOICE "{\"speaker\": \"ryan\"}"

static void test_schema_errors(void) {
    /* unknown keys with suggestions */
    expect_error(HEAD "\"defaults\": {\"temprature\": 0.7}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv,
                 "defaults.temprature", "did you mean \"temperature\"");
    expect_error(HEAD "\"sesions\": []}", &g_cv, "sesions", "did you mean \"sessions\"");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"txt\": \"x\"}"), &g_cv, "sessions[0].items[0].txt",
                 "did you mean \"text\"");
    expect_error(HEAD ONE_SESSION("{\"speeker\": \"ryan\"}", OK_ITEM), &g_cv, "sessions[0].voice.speeker",
                 "did you mean \"speaker\"");
    /* wrong types */
    expect_error(HEAD "\"defaults\": {\"top_k\": \"50\"}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "defaults.top_k",
                 "expected an integer, got string");
    expect_error(HEAD "\"defaults\": {\"top_k\": 2.5}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "defaults.top_k",
                 "expected an integer, got number 2.5");
    expect_error(HEAD "\"defaults\": {\"greedy\": 1}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "defaults.greedy",
                 "expected a boolean, got number");
    expect_error(HEAD "\"defaults\": {\"top_p\": 1.5}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "defaults.top_p",
                 "out of range");
    expect_error(HEAD "\"defaults\": {\"temperature\": 0}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv,
                 "defaults.temperature", "out of range");
    expect_error(HEAD "\"defaults\": {\"seed\": -1}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "defaults.seed",
                 "out of range");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": 7, \"text\": \"x\"}"), &g_cv, "sessions[0].items[0].id",
                 "expected a string, got number");
    expect_error(HEAD "\"sessions\": {}}", &g_cv, "sessions", "expected an array, got object");
    expect_error("[1, 2]", &g_cv, "(top level)", "expected a JSON object, got array");
    expect_error("{\"model\": \"m\",", &g_cv, "(top level)", "not valid JSON");
    expect_error(HEAD "\"sessions\": [{\"id\": \"s\", \"voice\": " OK_VOICE ", \"items\": [" OK_ITEM
                      "], \"overrides\": {\"seed\": \"x\"}}]}",
                 &g_cv, "sessions[0].overrides.seed", "expected an integer, got string");
    /* duplicate JSON keys */
    expect_error(HEAD "\"defaults\": {\"seed\": 1, \"seed\": 2}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv,
                 "defaults.seed", "duplicate key");
    /* missing required keys */
    expect_error("{\"output\": {\"dir\": \"o\"}, " ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "model", "missing");
    expect_error("{\"model\": \"m\", " ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "output", "missing");
    expect_error("{\"model\": \"m\", \"output\": {}, " ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv, "output.dir", "missing");
    expect_error(HEAD "\"sessions\": [{\"voice\": " OK_VOICE ", \"items\": [" OK_ITEM "]}]}", &g_cv,
                 "sessions[0].id", "missing");
    expect_error(HEAD "\"sessions\": [{\"id\": \"s\", \"items\": [" OK_ITEM "]}]}", &g_cv, "sessions[0].voice",
                 "missing");
    expect_error(HEAD "\"sessions\": [{\"id\": \"s\", \"voice\": " OK_VOICE "}]}", &g_cv, "sessions[0].items",
                 "missing");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\"}"), &g_cv, "sessions[0].items[0]",
                 "missing \"text\" or \"text_file\"");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"text_file\": \"t\"}"), &g_cv,
                 "sessions[0].items[0]", "not both");
    expect_error(HEAD "\"sessions\": []}", &g_cv, "sessions", "no sessions");
    expect_error(HEAD ONE_SESSION(OK_VOICE, ""), &g_cv, "sessions[0].items", "no items");
    expect_error(HEAD ONE_SESSION("{}", OK_ITEM), &g_cv, "sessions[0].voice", "needs \"speaker\"");
    /* empty text, invalid UTF-8 (inline and in a file), missing file */
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"  \\n \"}"), &g_cv,
                 "sessions[0].items[0].text", "empty");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"ab\xc3(\"}"), &g_cv,
                 "sessions[0].items[0].text", "not valid UTF-8 (byte offset 2)");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"\xed\xa0\x80\"}"), &g_cv,
                 "sessions[0].items[0].text", "byte offset 0"); /* surrogate */
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\xc0\xaf\"}"), &g_cv,
                 "sessions[0].items[0].text", "byte offset 1"); /* overlong '/' */
    write_text("bad.txt", "Chapter one.\n\xff\xfe", 15);
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text_file\": \"bad.txt\"}"), &g_cv,
                 "sessions[0].items[0].text_file", "not valid UTF-8 (byte offset 13)");
    write_text("blank.txt", "\xef\xbb\xbf \n\n", 6);
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text_file\": \"blank.txt\"}"), &g_cv,
                 "sessions[0].items[0].text_file", "empty");
    write_text("nul.txt", "ab\0cd", 5);
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text_file\": \"nul.txt\"}"), &g_cv,
                 "sessions[0].items[0].text_file", "NUL byte (byte offset 2)");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text_file\": \"nope.txt\"}"), &g_cv,
                 "sessions[0].items[0].text_file", "no such file");
    /* speakers, voice modes, languages */
    expect_error(HEAD ONE_SESSION("{\"speaker\": \"bob\"}", OK_ITEM), &g_cv, "sessions[0].voice.speaker",
                 "unknown speaker \"bob\" (valid: serena, vivian");
    expect_error(HEAD ONE_SESSION("{\"speaker\": \"ryan\"}", OK_ITEM), &g_vd, "sessions[0].voice.speaker",
                 "no built-in speakers");
    expect_error(HEAD ONE_SESSION("{\"instruct\": \"A calm voice.\"}", OK_ITEM), &g_cv, "sessions[0].voice",
                 "needs a VoiceDesign model");
    expect_error(HEAD ONE_SESSION("{\"reference\": {\"audio\": \"r.wav\", \"text\": \"hi\"}}", OK_ITEM), &g_cv,
                 "sessions[0].voice.reference", "not supported yet");
    expect_error(HEAD ONE_SESSION("{\"reference\": {\"audio\": \"r.wav\", \"txt\": \"hi\"}}", OK_ITEM), &g_cv,
                 "sessions[0].voice.reference.txt", "did you mean \"text\"");
    expect_error(HEAD "\"defaults\": {\"language\": \"klingon\"}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv,
                 "defaults.language", "unknown language \"klingon\" (valid: auto, chinese");
    expect_error(HEAD "\"defaults\": {\"language\": \"sichuan_dialect\"}," ONE_SESSION(OK_VOICE, OK_ITEM), &g_cv,
                 "defaults.language", "unknown language");
    expect_error("{\"model\": \"m\", \"output\": {\"dir\": \"o\", \"format\": \"mp3\"}, " ONE_SESSION(OK_VOICE, OK_ITEM),
                 &g_cv, "output.format", "unknown format");
    /* ids and output names */
    expect_error(HEAD "\"sessions\": [{\"id\": \"s\", \"voice\": " OK_VOICE ", \"items\": [" OK_ITEM ", " OK_ITEM "]}]}",
                 &g_cv, "sessions[0].items[1].id", "duplicate item id \"a\" (also at sessions[0].items[0].id)");
    expect_error(HEAD "\"sessions\": [{\"id\": \"s\", \"voice\": " OK_VOICE ", \"items\": [" OK_ITEM "]},"
                      "{\"id\": \"S\", \"voice\": " OK_VOICE ", \"items\": [" OK_ITEM "]}]}",
                 &g_cv, "sessions[1].id", "duplicate session id \"S\" (also at sessions[0].id)");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a/b\", \"text\": \"x\"}"), &g_cv, "sessions[0].items[0].id",
                 "invalid id");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"output\": \"../up\"}"), &g_cv,
                 "sessions[0].items[0].output", "escapes the output folder");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"output\": \"x/../../up\"}"), &g_cv,
                 "sessions[0].items[0].output", "escapes the output folder");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"output\": \"/etc/passwd\"}"), &g_cv,
                 "sessions[0].items[0].output", "absolute");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"output\": \".qtts-journal\"}"), &g_cv,
                 "sessions[0].items[0].output", "hidden");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"output\": \"a.flac\"}"), &g_cv,
                 "sessions[0].items[0].output", "does not match output.format");
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\", \"output\": \"one\"},"
                                            "{\"id\": \"b\", \"text\": \"x\", \"output\": \"one.wav\"}"),
                 &g_cv, "sessions[0].items[1].output", "duplicate output name \"one.wav\" (also at sessions[0].items[0].output)");
    /* an explicit name colliding with another item's default name */
    expect_error(HEAD ONE_SESSION(OK_VOICE, "{\"id\": \"a\", \"text\": \"x\"},"
                                            "{\"id\": \"b\", \"text\": \"x\", \"output\": \"s/a\"}"),
                 &g_cv, "output name \"s/a.wav\"", "sessions[0].items[0] (default output)");
}

static void test_many_errors(void) {
    const char *json = "{\"model\": 3, \"output\": {\"dir\": \"o\", \"fromat\": \"wav\"},"
                       " \"defaults\": {\"top_k\": \"x\", \"language\": \"elvish\"},"
                       " \"sessions\": [{\"id\": \"s\", \"voice\": {\"speaker\": \"bob\"}, \"items\": ["
                       "   {\"id\": \"a\", \"text\": \"\"}, {\"id\": \"b\", \"text_file\": \"missing.txt\"}]},"
                       "  {\"id\": \"t\", \"voice\": {\"speaker\": \"eric\"}, \"items\": [{\"id\": \"c\", \"text\": \"ok\"}]}]}";
    qtts_job *job = NULL;
    qtts_job_errors errs = {0};
    qtts_err err = {0};
    qtts_status st = load(json, &g_cv, &job, &errs, &err);
    CHECK(st == QTTS_ERR_JOB, "status");
    CHECK(errs.n == 7, "7 errors, got %d", errs.n);
    if (errs.n != 7) dump(&errs);
    const char *paths[] = {"model:", "output.fromat", "defaults.top_k", "defaults.language", "sessions[0].voice.speaker",
                           "sessions[0].items[0].text", "sessions[0].items[1].text_file"};
    for (int i = 0; i < 7; i++) CHECK(has_error(&errs, paths[i], NULL), "missing error for %s", paths[i]);
    CHECK(strstr(err.msg, "7 errors") && strstr(err.msg, "job.json"), "summary: %s", err.msg);
    qtts_job_errors_free(&errs);

    /* more errors than are kept: the list ends with a count of the rest */
    char *big = malloc(200000);
    size_t off = (size_t)snprintf(big, 200000, HEAD "\"sessions\": [{\"id\": \"s\", \"voice\": " OK_VOICE ", \"items\": [");
    for (int i = 0; i < 300; i++) off += (size_t)snprintf(big + off, 200000 - off, "%s{\"id\": \"i%d\", \"text\": \"\"}", i ? "," : "", i);
    snprintf(big + off, 200000 - off, "]}]}");
    st = load(big, &g_cv, &job, &errs, &err);
    CHECK(st == QTTS_ERR_JOB && strstr(err.msg, "300 errors"), "summary: %s", err.msg);
    CHECK(errs.n > 0 && strstr(errs.msg[errs.n - 1], "more errors"), "overflow line");
    qtts_job_errors_free(&errs);
    free(big);
    /* NULL error list is allowed */
    st = load("{}", &g_cv, &job, NULL, &err);
    CHECK(st == QTTS_ERR_JOB && strstr(err.msg, "model: missing"), "summary without list: %s", err.msg);
}

static qtts_job *load_ok(const char *json, const qtts_model_config *cfg) {
    qtts_job *job = NULL;
    qtts_job_errors errs = {0};
    qtts_err err = {0};
    qtts_status st = load(json, cfg, &job, &errs, &err);
    CHECK(st == QTTS_OK, "load: %s", err.msg);
    if (st != QTTS_OK) dump(&errs);
    qtts_job_errors_free(&errs);
    return job;
}

static void test_valid(void) {
    mkdir(g_dir, 0755);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/text", g_dir);
    mkdir(sub, 0755);
    const char *ch1 = "\xef\xbb\xbf" "Chapter one.\n\nIt was a dark night.";
    write_text("text/ch1.txt", ch1, strlen(ch1));
    const char *json =
        "{\"model\": \"models/cv\", \"output\": {\"dir\": \"out\", \"format\": \"flac\", \"concat_sessions\": true},"
        " \"defaults\": {\"language\": \"English\", \"seed\": 42, \"temperature\": 0.7, \"top_k\": 30,"
        "   \"max_tokens_per_utterance\": 120, \"pause_sentence_ms\": 250},"
        " \"sessions\": ["
        "  {\"id\": \"narrator\", \"voice\": {\"speaker\": \"Ryan\"}, \"items\": ["
        "    {\"id\": \"ch1\", \"text_file\": \"text/ch1.txt\"},"
        "    {\"id\": \"ch2\", \"text\": \"Two.\", \"output\": \"chapters/two\"}]},"
        "  {\"id\": \"villain\", \"voice\": {\"speaker\": \"eric\", \"instruct\": \"Menacing.\"},"
        "   \"overrides\": {\"temperature\": 1.1, \"greedy\": true, \"language\": \"auto\", \"subtalker_top_k\": 10},"
        "   \"items\": [{\"id\": \"ch1\", \"text\": \"Ha.\"}]}]}";
    qtts_job *job = load_ok(json, &g_cv);
    if (!job) return;
    char want[512];
    snprintf(want, sizeof want, "%s/models/cv", g_dir);
    CHECK(!strcmp(job->model, want), "model %s", job->model);
    snprintf(want, sizeof want, "%s/out", g_dir);
    CHECK(!strcmp(job->output_dir, want), "output dir %s", job->output_dir);
    CHECK(job->format == QTTS_AUDIO_FLAC && job->concat_sessions, "output");
    CHECK(job->n_sessions == 2 && job->n_items_total == 3, "counts");
    qtts_job_session *n = &job->sessions[0], *v = &job->sessions[1];
    CHECK(!strcmp(n->id, "narrator") && n->voice.kind == QTTS_JOB_VOICE_SPEAKER && !strcmp(n->voice.speaker, "ryan"),
          "speaker canonical: %s", n->voice.speaker);
    CHECK(!strcmp(n->output, "narrator.flac"), "session output %s", n->output);
    qtts_job_item *c1 = &n->items[0], *c2 = &n->items[1], *vc = &v->items[0];
    CHECK(!strcmp(c1->text, "Chapter one.\n\nIt was a dark night."), "text file read, BOM gone: [%s]", c1->text);
    snprintf(want, sizeof want, "%s/text/ch1.txt", g_dir);
    CHECK(c1->text_file && !strcmp(c1->text_file, want), "text_file resolved %s", c1->text_file);
    CHECK(!strcmp(c1->output, "narrator/ch1.flac"), "default output %s", c1->output);
    CHECK(!strcmp(c2->output, "chapters/two.flac"), "explicit output %s", c2->output);
    CHECK(!strcmp(vc->output, "villain/ch1.flac"), "item ids are per session: %s", vc->output);
    /* defaults applied, untouched ones from generation_config defaults */
    const qtts_job_params *p = &c1->params;
    CHECK(!strcmp(p->language, "english") && p->seed == 42 && p->temperature == 0.7f && p->top_k == 30, "defaults");
    CHECK(p->max_tokens_per_utterance == 120 && p->pause_sentence_ms == 250 && !p->greedy, "defaults 2");
    CHECK(p->top_p == 1.0f && p->repetition_penalty == 1.05f && p->subtalker_top_k == 50 && p->non_streaming_text,
          "reference defaults");
    /* overrides on top of defaults */
    const qtts_job_params *q = &vc->params;
    CHECK(q->temperature == 1.1f && q->greedy && !strcmp(q->language, "auto") && q->subtalker_top_k == 10, "overrides");
    CHECK(q->seed == 42 && q->top_k == 30 && q->pause_sentence_ms == 250, "overrides keep the other defaults");
    CHECK(v->voice.instruct && !strcmp(v->voice.instruct, "Menacing."), "instruct");
    CHECK(c1->codes_hash != c2->codes_hash && c1->codes_hash != c1->audio_hash, "hashes differ");
    qtts_job_free(job);

    /* cfg NULL: model-dependent checks skipped */
    job = load_ok(HEAD "\"defaults\": {\"language\": \"klingon\"}," ONE_SESSION("{\"speaker\": \"Bob\"}", OK_ITEM), NULL);
    if (job) {
        CHECK(!strcmp(job->sessions[0].voice.speaker, "bob"), "lower-cased");
        CHECK(!strcmp(job->sessions[0].items[0].output, "s/a.wav"), "wav default");
    }
    qtts_job_free(job);
    /* VoiceDesign: instruct alone */
    job = load_ok(HEAD ONE_SESSION("{\"instruct\": \"A warm, low voice.\"}", OK_ITEM), &g_vd);
    if (job) CHECK(job->sessions[0].voice.kind == QTTS_JOB_VOICE_INSTRUCT, "instruct kind");
    qtts_job_free(job);
    /* parse from a buffer resolves against base_dir */
    const char *b = HEAD ONE_SESSION(OK_VOICE, OK_ITEM);
    qtts_err err = {0};
    CHECK(qtts_job_parse(b, strlen(b), "mem", "/base", &g_cv, NULL, &job, NULL, &err) == QTTS_OK, "%s", err.msg);
    if (job) CHECK(!strcmp(job->model, "/base/m") && !strcmp(job->output_dir, "/base/out"), "base dir");
    qtts_job_free(job);
}

/* Hash of item 0 of a one-session job, built from parts. */
static uint64_t hash_of(const char *voice, const char *item, const char *defaults, const char *fmt, bool audio) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": \"m\", \"output\": {\"dir\": \"o\", \"format\": \"%s\"}, \"defaults\": {%s},"
             " \"sessions\": [{\"id\": \"s\", \"voice\": %s, \"items\": [%s]}]}",
             fmt, defaults, voice, item);
    qtts_job *job = load_ok(json, &g_cv);
    uint64_t h = 0;
    if (job) h = audio ? job->sessions[0].items[0].audio_hash : job->sessions[0].items[0].codes_hash;
    qtts_job_free(job);
    return h;
}

static void test_hash(void) {
    const char *it = "{\"id\": \"a\", \"text\": \"Hello.\"}";
    uint64_t base = hash_of(OK_VOICE, it, "", "wav", false);
    CHECK(base != 0, "hash");
    CHECK(hash_of(OK_VOICE, it, "", "wav", false) == base, "stable");
    CHECK(hash_of(OK_VOICE, "{\"id\": \"a\", \"text\": \"Hello!\"}", "", "wav", false) != base, "text");
    CHECK(hash_of("{\"speaker\": \"eric\"}", it, "", "wav", false) != base, "speaker");
    CHECK(hash_of("{\"speaker\": \"RYAN\"}", it, "", "wav", false) == base, "speaker case");
    CHECK(hash_of("{\"speaker\": \"ryan\", \"instruct\": \"Slowly.\"}", it, "", "wav", false) != base, "instruct");
    const char *params[] = {"\"seed\": 1", "\"temperature\": 0.5", "\"top_k\": 10", "\"top_p\": 0.9",
                            "\"repetition_penalty\": 1.1", "\"subtalker_temperature\": 0.5", "\"subtalker_top_k\": 5",
                            "\"subtalker_top_p\": 0.8", "\"greedy\": true", "\"language\": \"english\"",
                            "\"max_frames_per_token\": 10", "\"max_tokens_per_utterance\": 50",
                            "\"non_streaming_text\": false"};
    for (int i = 0; i < (int)(sizeof params / sizeof *params); i++)
        CHECK(hash_of(OK_VOICE, it, params[i], "wav", false) != base, "param %s", params[i]);
    /* same values restated explicitly change nothing */
    CHECK(hash_of(OK_VOICE, it, "\"temperature\": 0.9, \"top_k\": 50, \"seed\": 0", "wav", false) == base, "explicit defaults");
    /* output name, id and format do not */
    CHECK(hash_of(OK_VOICE, "{\"id\": \"zz\", \"text\": \"Hello.\", \"output\": \"x/y\"}", "", "wav", false) == base,
          "output name");
    CHECK(hash_of(OK_VOICE, it, "", "ogg", false) == base, "format");
    /* pauses change the assembled audio but not the codes */
    CHECK(hash_of(OK_VOICE, it, "\"pause_sentence_ms\": 1", "wav", false) == base, "pause vs codes");
    uint64_t ab = hash_of(OK_VOICE, it, "", "wav", true);
    CHECK(hash_of(OK_VOICE, it, "\"pause_paragraph_ms\": 1", "wav", true) != ab, "pause vs audio");
    CHECK(hash_of(OK_VOICE, "{\"id\": \"a\", \"text\": \"Hello.\", \"output\": \"q\"}", "", "flac", true) == ab,
          "audio hash ignores output");
}

static void test_utf8(void) {
    CHECK(qtts_utf8_find_invalid("plain", 5) == 5, "ascii");
    CHECK(qtts_utf8_find_invalid("\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80", 11) == 11, "cjk + emoji");
    CHECK(qtts_utf8_find_invalid("ab\xe4\xbd", 4) == 2, "truncated");
    CHECK(qtts_utf8_find_invalid("\xf4\x90\x80\x80", 4) == 0, "above U+10FFFF");
    CHECK(qtts_utf8_find_invalid("a\x80", 2) == 1, "stray continuation");
    CHECK(qtts_utf8_find_invalid("\xe0\x80\xaf", 3) == 0, "overlong 3-byte");
}

/* The examples shipped in jobs/ stay valid against a CustomVoice config. */
static void test_examples(void) {
    qtts_job *job = NULL;
    qtts_job_errors errs = {0};
    qtts_err err = {0};
    qtts_status st = qtts_job_load(QTTS_SOURCE_DIR "/jobs/demo.json", &g_cv, NULL, &job, &errs, &err);
    CHECK(st == QTTS_OK, "demo.json: %s", err.msg);
    if (st != QTTS_OK) dump(&errs);
    if (job) {
        CHECK(job->n_sessions == 2 && job->n_items_total == 4, "demo counts");
        CHECK(strstr(job->sessions[0].items[1].text, "thirteen") != NULL, "demo text_file");
        CHECK(!strcmp(job->sessions[1].items[1].output, "guest-goodbye.wav"), "demo output %s", job->sessions[1].items[1].output);
    }
    qtts_job_free(job);
    qtts_job_errors_free(&errs);
    /* the book example names chapter files that are not in the repository: only those fail */
    st = qtts_job_load(QTTS_SOURCE_DIR "/jobs/book-example.json", &g_cv, NULL, &job, &errs, &err);
    CHECK(st == QTTS_ERR_JOB && errs.n == 5, "book-example: %d errors", errs.n);
    for (int i = 0; i < errs.n; i++) CHECK(strstr(errs.msg[i], ".text_file: no such file") != NULL, "%s", errs.msg[i]);
    qtts_job_errors_free(&errs);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/qtts_test_jobXXXXXX");
    if (!mkdtemp(g_dir)) return tu_skip("mkdtemp failed");
    char cfg[16384];
    qtts_err err = {0};
    mf_config_json(cfg, sizeof cfg, true, "custom_voice");
    if (qtts_model_config_parse(cfg, strlen(cfg), "cv", &g_cv, &err) != QTTS_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    mf_config_json(cfg, sizeof cfg, true, "voice_design");
    if (qtts_model_config_parse(cfg, strlen(cfg), "vd", &g_vd, &err) != QTTS_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    test_utf8();
    test_schema_errors();
    test_many_errors();
    test_valid();
    test_hash();
    test_examples();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tu_finish("job");
}
