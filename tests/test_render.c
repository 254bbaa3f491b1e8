/* qtts render end to end on the tiny CustomVoice fixture:
 *  - batch invariance: every output file is byte-identical with --max-batch 1, 3 and 8,
 *    with each session's prompt prefix prefilled once or per utterance, and
 *    on the cpu-replay backend (recorded op sequences, padded batches),
 *    with the decoder thread (items decoded and written beside generation),
 *    and with a refill's prompts prefilled in one pass, in pairs or one by one;
 *  - kill and resume: the renderer is SIGKILLed at seeded random moments again
 *    and again (with and without the decoder thread), rerun each time, and the
 *    final files equal an uninterrupted render;
 *  - an item that cannot be written fails alone (inline and on the decoder
 *    thread) and a rerun writes it from the journal;
 *  - a changed item invalidates exactly its own utterances;
 *  - manifest contents; schema errors named by JSON path before any model work;
 *    count options that are not counts refused. */
#include <cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h" /* qtts_mkdirs */
#include "testutil.h"
#include "util.h"

static const char *items_text[] = {
    "It was a bright cold day in April. The clocks were striking thirteen.",
    "Winston Smith slipped quickly through the glass doors.\n\nA new paragraph starts here. It is short.",
    "Dr. Jones paid 3.50 dollars, e.g. for tea. Then he left.",
    "Good evening, and welcome. Thank you for listening.",
    "One more chapter; it has a clause, and another one. The end.",
};

/* Write a job with all items; `variant` changes the text of item 2. */
static void write_job(const char *dir, const char *name, const char *out, int variant) {
    cJSON *j = cJSON_CreateObject();
    char model[2048];
    snprintf(model, sizeof model, "%s/fixtures/models/custom_voice", QTTS_BINARY_DIR);
    cJSON_AddStringToObject(j, "model", model);
    cJSON *o = cJSON_AddObjectToObject(j, "output");
    cJSON_AddStringToObject(o, "dir", out);
    cJSON_AddStringToObject(o, "format", "wav");
    cJSON_AddBoolToObject(o, "concat_sessions", 1);
    cJSON *d = cJSON_AddObjectToObject(j, "defaults");
    cJSON_AddNumberToObject(d, "seed", 11);
    cJSON_AddNumberToObject(d, "max_frames_per_token", 4);
    cJSON_AddNumberToObject(d, "max_tokens_per_utterance", 12);
    cJSON *ss = cJSON_AddArrayToObject(j, "sessions");
    const char *spk[] = {"ryan", "serena"};
    for (int s = 0; s < 2; s++) {
        cJSON *so = cJSON_CreateObject();
        char id[16];
        snprintf(id, sizeof id, "s%d", s);
        cJSON_AddStringToObject(so, "id", id);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(so, "voice"), "speaker", spk[s]);
        cJSON *its = cJSON_AddArrayToObject(so, "items");
        for (int i = s; i < 5; i += 2) {
            cJSON *io = cJSON_CreateObject();
            snprintf(id, sizeof id, "item%d", i);
            cJSON_AddStringToObject(io, "id", id);
            cJSON_AddStringToObject(io, "text", (i == 2 && variant) ? "Dr. Jones paid four dollars instead. Then he left." : items_text[i]);
            cJSON_AddItemToArray(its, io);
        }
        cJSON_AddItemToArray(ss, so);
    }
    char *txt = cJSON_Print(j);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(txt, f);
    fclose(f);
    free(txt);
    cJSON_Delete(j);
}

static const char *outputs[] = {"s0/item0.wav", "s0/item2.wav", "s0/item4.wav", "s1/item1.wav", "s1/item3.wav", "s0.wav", "s1.wav"};
#define N_OUT 7

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    qtts_err e = {0};
    bool ok = !qtts_read_file(a, &x, &nx, &e) && !qtts_read_file(b, &y, &ny, &e) && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return ok;
}

static bool same_outputs(const char *d1, const char *d2, const char *what) {
    bool all = true;
    for (int i = 0; i < N_OUT; i++) {
        char a[2048], b[2048];
        snprintf(a, sizeof a, "%s/%s", d1, outputs[i]);
        snprintf(b, sizeof b, "%s/%s", d2, outputs[i]);
        bool ok = same_file(a, b);
        if (!ok) fprintf(stderr, "  %s: %s differs\n", what, outputs[i]);
        all &= ok;
    }
    return all;
}

static int render(const char *job, const char *extra, char *out, size_t n) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s render --quiet %s %s", QTTS_EXE, job, extra);
    return tu_run(cmd, out, n);
}

static cJSON *manifest(const char *dir) {
    char p[2048], *t = NULL;
    size_t n;
    qtts_err e = {0};
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    if (qtts_read_file(p, &t, &n, &e)) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

static int summary(const cJSON *m, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "summary"), key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static double stage(const cJSON *m, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "summary"), "stages"), key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The summary's generator stages: every utterance generated was prefilled
 * (a runaway retry is prefilled again), each step made 1..max_batch frames,
 * and the stages are disjoint parts of the generation time. */
static void check_stages(const cJSON *m, int max_batch, bool synced, bool one_by_one, const char *what) {
    const cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "summary"), "stages");
    CHECK(st && cJSON_IsBool(cJSON_GetObjectItem(st, "synced")) && cJSON_IsTrue(cJSON_GetObjectItem(st, "synced")) == synced,
          "%s: stages.synced", what);
    double prefills = stage(m, "prefills"), steps = stage(m, "steps"), frames = stage(m, "frames");
    CHECK(prefills >= summary(m, "utterances_generated") && prefills <= 2 * summary(m, "utterances_generated"),
          "%s: %.0f prefills for %d utterances", what, prefills, summary(m, "utterances_generated"));
    CHECK(steps >= 1 && frames >= steps && frames <= steps * max_batch, "%s: %.0f frames in %.0f steps of at most %d", what, frames,
          steps, max_batch);
    /* a refill's prompts are prefilled in one pass (up to --prefill-batch):
     * the first fills every slot at once */
    double batches = stage(m, "prefill_batches");
    if (max_batch == 1 || one_by_one) CHECK(batches == prefills, "%s: %.0f prefill passes for %.0f prefills", what, batches, prefills);
    else CHECK(batches >= 1 && batches < prefills, "%s: %.0f prefill passes for %.0f prefills (batched)", what, batches, prefills);
    double sum = 0;
    const char *keys[] = {"prefill_seconds", "talker_seconds", "code_predictor_seconds", "sampling_seconds"};
    for (int k = 0; k < 4; k++) {
        CHECK(stage(m, keys[k]) > 0, "%s: %s", what, keys[k]);
        sum += stage(m, keys[k]);
    }
    const cJSON *gen = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "summary"), "generate_seconds");
    CHECK(cJSON_IsNumber(gen) && sum <= gen->valuedouble, "%s: stages %.3f s within generation %.3f s", what, sum,
          cJSON_IsNumber(gen) ? gen->valuedouble : -1);
}

/* Start a render (with or without the decoder thread) and SIGKILL it after
 * delay_us; returns 1 if it finished first. */
static int run_and_kill(const char *job, useconds_t delay_us, bool decode_thread) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(QTTS_EXE, QTTS_EXE, "render", "--quiet", "--decode-thread", decode_thread ? "on" : "off", job, (char *)NULL);
        _exit(127);
    }
    useconds_t waited = 0;
    int status;
    while (waited < delay_us) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        usleep(2000);
        waited += 2000;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void) {
    char tok[1024];
    snprintf(tok, sizeof tok, "%s/fixtures/models/custom_voice/vocab.json", QTTS_BINARY_DIR);
    if (!qtts_file_exists(tok)) return tu_skip("tokenizer files absent (../shared/data/qwen2-tokenizer not found at configure time)");
    char tmp[] = "/tmp/qtts_renderXXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char out[8192], ref[1100], job[1100];
    snprintf(ref, sizeof ref, "%s/ref", tmp);

    /* reference: uninterrupted, batch 8 */
    write_job(tmp, "ref.json", ref, 0);
    snprintf(job, sizeof job, "%s/ref.json", tmp);
    int rc = render(job, "--max-batch 8", out, sizeof out);
    CHECK(rc == 0, "reference render exited %d: %s", rc, out);
    cJSON *m = manifest(ref);
    CHECK(m && summary(m, "items") == 5 && summary(m, "items_written") == 5 && summary(m, "items_failed") == 0, "manifest summary");
    int n_utt = summary(m, "utterances");
    CHECK(n_utt >= 8, "segmentation into several utterances per item: %d", n_utt);
    /* manifest: every item done, segments cover the text, durations add up */
    const cJSON *items = cJSON_GetObjectItem(m, "items");
    int n_items = 0;
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next, n_items++) {
        CHECK(!strcmp(cJSON_GetObjectItem(it, "status")->valuestring, "done"), "item status");
        const cJSON *segs = cJSON_GetObjectItem(it, "segments");
        int frames = 0;
        for (const cJSON *s = segs->child; s; s = s->next) frames += cJSON_GetObjectItem(s, "frames")->valueint;
        CHECK(frames == cJSON_GetObjectItem(it, "frames")->valueint && frames > 0, "item frames = sum of segment frames");
        CHECK(cJSON_GetObjectItem(it, "duration_s")->valuedouble >= frames / 12.5, "duration includes the audio");
        CHECK(cJSON_IsArray(cJSON_GetObjectItem(it, "warnings")), "warnings array");
    }
    CHECK(n_items == 5, "%d items in the manifest", n_items);
    const cJSON *sess = cJSON_GetObjectItem(m, "sessions");
    CHECK(sess && cJSON_GetArraySize(sess) == 2 && cJSON_GetArraySize(cJSON_GetObjectItem(sess->child, "chapters")) == 3, "chapters");
    cJSON_Delete(m);

    /* batch invariance: batch 1 and 3 give byte-identical files; and the
     * CPU with CUDA-graph semantics (recorded talker and predictor
     * sequences, padded batch buckets) the same bytes as the CPU */
    const char *batches[] = {"1", "3", "4 --no-prefix-sharing", "8 --backend cpu-replay", "3 --backend cpu-replay",
                             "3 --decode-thread on", "8 --backend cpu-replay --decode-thread on", "3 --sync-stages",
                             "8 --prefill-batch 1", "8 --prefill-batch 2 --backend cpu-replay"};
    for (int b = 0; b < (int)(sizeof batches / sizeof batches[0]); b++) {
        char dir[1200], jb[1200], extra[96];
        snprintf(dir, sizeof dir, "%s/b%d", tmp, b);
        snprintf(jb, sizeof jb, "b%d.json", b);
        write_job(tmp, jb, dir, 0);
        snprintf(jb, sizeof jb, "%s/b%d.json", tmp, b);
        snprintf(extra, sizeof extra, "--max-batch %s", batches[b]);
        CHECK(render(jb, extra, out, sizeof out) == 0, "batch %s: %s", batches[b], out);
        CHECK(same_outputs(ref, dir, extra), "--max-batch %s changes the audio", batches[b]);
        /* the manifest says whether decoding had a thread (auto: not on the CPU) */
        cJSON *mb = manifest(dir);
        const cJSON *dt = mb ? cJSON_GetObjectItem(cJSON_GetObjectItem(mb, "summary"), "decode_thread") : NULL;
        CHECK(cJSON_IsBool(dt) && cJSON_IsTrue(dt) == (strstr(batches[b], "--decode-thread on") != NULL), "batch %s: manifest decode_thread",
              batches[b]);
        if (mb)
            check_stages(mb, atoi(batches[b]), strstr(batches[b], "--sync-stages") != NULL, strstr(batches[b], "--prefill-batch 1") != NULL,
                         extra);
        cJSON_Delete(mb);
    }

    /* an item whose file cannot be written (a folder in its place) fails
     * alone, named in the manifest, decoded inline or on the decoder
     * thread; the other files are written; once the folder is gone, a rerun
     * writes it from the journal without generating anything */
    for (int t = 0; t < 2; t++) {
        char dir[1200], jb[1200], blocker[1300], extra[64];
        snprintf(dir, sizeof dir, "%s/blocked%d", tmp, t);
        write_job(tmp, "blocked.json", dir, 0);
        snprintf(jb, sizeof jb, "%s/blocked.json", tmp);
        snprintf(blocker, sizeof blocker, "%s/s0/item2.wav/x", dir);
        qtts_err e = {0};
        CHECK(qtts_mkdirs(blocker, true, &e) == QTTS_OK, "blocker folder: %s", e.msg);
        snprintf(extra, sizeof extra, "--max-batch 3 --decode-thread %s", t ? "on" : "off");
        rc = render(jb, extra, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "1 item failed"), "%s with an unwritable item: exit %d: %s", extra, rc, out);
        m = manifest(dir);
        CHECK(m && summary(m, "items_written") == 4 && summary(m, "items_failed") == 1, "%s: 4 written, 1 failed", extra);
        bool named = false;
        for (const cJSON *it = m ? cJSON_GetObjectItem(m, "items")->child : NULL; it; it = it->next) {
            const cJSON *err = cJSON_GetObjectItem(it, "error");
            if (!strcmp(cJSON_GetObjectItem(it, "id")->valuestring, "item2"))
                named = cJSON_IsString(err) && strstr(err->valuestring, "item2.wav") && strstr(err->valuestring, "rename");
            else CHECK(!err, "%s: only item2 failed", extra);
        }
        CHECK(named, "%s: item2's error names its file", extra);
        cJSON_Delete(m);
        for (int i = 0; i < N_OUT - 2; i++) { /* the per-item files; the session files lack item2 */
            if (!strcmp(outputs[i], "s0/item2.wav")) continue;
            char a[2048], b[2048];
            snprintf(a, sizeof a, "%s/%s", ref, outputs[i]);
            snprintf(b, sizeof b, "%s/%s", dir, outputs[i]);
            CHECK(same_file(a, b), "%s: %s differs from the reference", extra, outputs[i]);
        }
        snprintf(blocker, sizeof blocker, "rm -r %s/s0/item2.wav", dir);
        CHECK(system(blocker) == 0, "remove the blocker");
        CHECK(render(jb, extra, out, sizeof out) == 0, "%s rerun: %s", extra, out);
        m = manifest(dir);
        CHECK(m && summary(m, "utterances_generated") == 0 && summary(m, "items_failed") == 0, "%s rerun: from the journal", extra);
        cJSON_Delete(m);
        CHECK(same_outputs(ref, dir, extra), "%s rerun: outputs differ from the reference", extra);
    }

    /* kill and resume, again and again */
    char kd[1200], kj[1200];
    snprintf(kd, sizeof kd, "%s/killed", tmp);
    write_job(tmp, "killed.json", kd, 0);
    snprintf(kj, sizeof kj, "%s/killed.json", tmp);
    uint64_t seed = 2026;
    int kills = 0, finished = 0;
    for (int round = 0; round < 60 && !finished; round++) {
        useconds_t delay = (useconds_t)(20000 + tu_rand_u64(&seed) % 400000);
        finished = run_and_kill(kj, delay, round % 2 == 0);
        kills += !finished;
    }
    if (!finished) finished = render(kj, "", out, sizeof out) == 0;
    CHECK(finished, "render after kills did not finish");
    CHECK(kills >= 3, "only %d kills landed", kills);
    CHECK(same_outputs(ref, kd, "kill/resume"), "resumed render differs from the uninterrupted one");
    snprintf(out, sizeof out, "find %s -name '*.tmp.*' | wc -l", kd);
    {
        char cnt[256];
        tu_run(out, cnt, sizeof cnt);
        CHECK(atoi(cnt) == 0, "temporary files of killed runs left in the output folder: %s", cnt);
    }
    m = manifest(kd);
    printf("kill and resume: %d SIGKILLs, final run resumed %d utterances\n", kills, m ? summary(m, "utterances_resumed") : -1);
    cJSON_Delete(m);

    /* a changed item invalidates exactly its utterances */
    write_job(tmp, "ref.json", ref, 1);
    CHECK(render(job, "", out, sizeof out) == 0, "changed job: %s", out);
    m = manifest(ref);
    int gen = summary(m, "utterances_generated"), reused = summary(m, "items_reused"), written = summary(m, "items_written");
    CHECK(reused == 4 && written == 1, "changed job: %d items reused, %d written (want 4, 1)", reused, written);
    CHECK(gen >= 1 && gen <= 3, "changed job regenerated %d utterances (only item2's)", gen);
    cJSON_Delete(m);
    CHECK(render(job, "", out, sizeof out) == 0 && (m = manifest(ref)) && summary(m, "utterances_generated") == 0, "rerun: nothing to do");
    cJSON_Delete(m);

    /* schema errors: all reported, by JSON path, before any model work */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/bad.json", tmp);
    FILE *f = fopen(bad, "w");
    fprintf(f, "{\"model\": \"%s/fixtures/models/custom_voice\", \"output\": {\"dir\": \"o\"}, \"sessions\": [{\"id\": \"a\", "
               "\"voice\": {\"speaker\": \"bob\"}, \"items\": [{\"id\": \"x\", \"text_file\": \"nope.txt\"}, {\"id\": \"x\", \"txt\": \"hi\"}]}]}",
            QTTS_BINARY_DIR);
    fclose(f);
    rc = render(bad, "", out, sizeof out);
    CHECK(rc == 1, "bad job exit %d", rc);
    CHECK(strstr(out, "sessions[0].voice.speaker") && strstr(out, "bob"), "unknown speaker named: %s", out);
    CHECK(strstr(out, "sessions[0].items[0].text_file"), "missing text file named: %s", out);
    CHECK(strstr(out, "sessions[0].items[1]"), "second item errors named: %s", out);
    /* an output folder that cannot be created is reported before any model work */
    char uj[1200];
    snprintf(uj, sizeof uj, "%s/unwritable.json", tmp);
    write_job(tmp, "unwritable.json", "/proc/qtts-no-such-dir/out", 0);
    rc = render(uj, "", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "/proc/qtts-no-such-dir") && strstr(out, "cannot create") && !strstr(out, "loading"), "unwritable output: exit %d: %s", rc, out);
    rc = render("/nonexistent/job.json", "", out, sizeof out);
    CHECK(rc == 1 && strstr(out, "/nonexistent/job.json"), "missing job file: exit %d: %s", rc, out);
    /* a count option that is not a count is a usage error naming it (it was read as 0: auto) */
    const char *bad_opts[][2] = {{"--max-batch 8x", "--max-batch: "}, {"--prefill-batch -1", "--prefill-batch: "}, {"--chunk x", "--chunk: "}};
    for (int k = 0; k < 3; k++) {
        rc = render(uj, bad_opts[k][0], out, sizeof out);
        CHECK(rc == 2 && strstr(out, bad_opts[k][1]) && strstr(out, "non-negative integer"), "%s: exit %d: %s", bad_opts[k][0], rc, out);
    }
    snprintf(out, sizeof out, "rm -rf %s", tmp);
    CHECK(system(out) == 0, "cleanup");
    return tu_finish("test_render");
}
