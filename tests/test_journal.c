/* Journal tests: round trip, reopen, last record wins, torn tails at every byte offset and
 * flipped bytes anywhere in the last record (earlier records all recovered, the next append cuts
 * the tail), foreign files left alone, locking, reset, and a child process SIGKILLed at random
 * points while appending (seeded) whose every recovered record must be intact. */
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "testutil.h"

static char g_root[64];

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Deterministic codes for a key, so a reader can verify a record from its key alone. */
static int frames_of(qtts_journal_key k, int max) { return (int)(mix(k.item_hash ^ mix(k.segment)) % (uint64_t)(max + 1)); }
static int32_t *codes_of(qtts_journal_key k, int frames) {
    int32_t *c = malloc((size_t)(frames ? frames : 1) * 16 * sizeof *c);
    uint64_t s = k.item_hash * 31 + k.segment;
    for (int i = 0; i < frames * 16; i++) c[i] = (int32_t)(mix(s + (uint64_t)i) % 2048);
    return c;
}

static bool verify(qtts_journal *j, qtts_journal_key k, int max) {
    int32_t *got = NULL;
    int frames = -1;
    bool found = false;
    qtts_err err = {0};
    if (qtts_journal_lookup(j, k, &got, &frames, &found, &err) != QTTS_OK || !found) {
        if (err.msg[0]) fprintf(stderr, "    lookup: %s\n", err.msg);
        free(got);
        return false;
    }
    int want_frames = frames_of(k, max);
    int32_t *want = codes_of(k, want_frames);
    bool ok = frames == want_frames && (frames == 0 || !memcmp(got, want, (size_t)frames * 16 * sizeof *got));
    free(want);
    free(got);
    return ok;
}

static qtts_status append_key(qtts_journal *j, qtts_journal_key k, int max, qtts_err *err) {
    int f = frames_of(k, max);
    int32_t *c = codes_of(k, f);
    qtts_status st = qtts_journal_append(j, k, c, f, err);
    free(c);
    return st;
}

static void mkpath(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_root, name); }

static long file_size(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, QTTS_JOURNAL_NAME);
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static unsigned char *read_all(const char *dir, long *n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, QTTS_JOURNAL_NAME);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*n + 1);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return b;
}

static void write_all(const char *dir, const unsigned char *b, long n) {
    mkdir(dir, 0755);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, QTTS_JOURNAL_NAME);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    if (n) fwrite(b, 1, (size_t)n, f);
    fclose(f);
}

static void test_round_trip(void) {
    char dir[256];
    mkpath(dir, sizeof dir, "rt/nested/out"); /* folders are created */
    qtts_journal *j = NULL;
    qtts_err err = {0};
    CHECK(qtts_journal_open(dir, &j, &err) == QTTS_OK, "open: %s", err.msg);
    if (!j) return;
    for (uint32_t s = 0; s < 60; s++) {
        qtts_journal_key k = {0xabcdef0123ULL + (s / 4), s % 4};
        CHECK(append_key(j, k, 300, &err) == QTTS_OK, "append %u: %s", s, err.msg);
    }
    int bad = 0;
    for (uint32_t s = 0; s < 60; s++) bad += !verify(j, (qtts_journal_key){0xabcdef0123ULL + (s / 4), s % 4}, 300);
    CHECK(bad == 0, "%d records differ", bad);
    int32_t *c = NULL;
    int f = 0;
    bool found = true;
    CHECK(qtts_journal_lookup(j, (qtts_journal_key){0xabcdef0123ULL, 4}, &c, &f, &found, &err) == QTTS_OK && !found && !c,
          "absent key");
    CHECK(!qtts_journal_has(j, (qtts_journal_key){1, 0}) && qtts_journal_has(j, (qtts_journal_key){0xabcdef0123ULL, 3}),
          "has");
    CHECK(qtts_journal_get_stats(j).records == 60, "records");
    int badf = 0;
    for (uint32_t s = 0; s < 60; s++) {
        qtts_journal_key k = {0xabcdef0123ULL + (s / 4), s % 4};
        badf += qtts_journal_frames(j, k) != frames_of(k, 300);
    }
    CHECK(badf == 0 && qtts_journal_frames(j, (qtts_journal_key){1, 0}) == -1, "frames from the index: %d wrong", badf);
    /* out-of-range codes are refused, nothing written */
    long before = file_size(dir);
    int32_t neg[16] = {-1};
    CHECK(qtts_journal_append(j, (qtts_journal_key){9, 9}, neg, 1, &err) == QTTS_ERR_INVALID_ARG, "negative code");
    CHECK(file_size(dir) == before, "nothing written");
    /* a second opener (another process or this one) is refused while the journal is held */
    qtts_journal *j2 = NULL;
    CHECK(qtts_journal_open(dir, &j2, &err) == QTTS_ERR_IO && strstr(err.msg, "locked"), "lock: %s", err.msg);
    /* the same key again: the last record wins, now and after reopening */
    qtts_journal_key k0 = {0xabcdef0123ULL, 0};
    int32_t one[16];
    for (int i = 0; i < 16; i++) one[i] = 1000 + i;
    CHECK(qtts_journal_append(j, k0, one, 1, &err) == QTTS_OK, "re-append");
    qtts_journal_close(j);
    j = NULL;

    CHECK(qtts_journal_open(dir, &j, &err) == QTTS_OK, "reopen: %s", err.msg);
    if (!j) return;
    qtts_journal_stats st = qtts_journal_get_stats(j);
    CHECK(st.recovered == 61 && st.dropped_bytes == 0, "reopen stats %lld %lld", (long long)st.recovered,
          (long long)st.dropped_bytes);
    bad = 0;
    for (uint32_t s = 1; s < 60; s++) bad += !verify(j, (qtts_journal_key){0xabcdef0123ULL + (s / 4), s % 4}, 300);
    CHECK(bad == 0, "%d records differ after reopen", bad);
    badf = 0;
    for (uint32_t s = 1; s < 60; s++) {
        qtts_journal_key k = {0xabcdef0123ULL + (s / 4), s % 4};
        badf += qtts_journal_frames(j, k) != frames_of(k, 300);
    }
    CHECK(badf == 0 && qtts_journal_frames(j, k0) == 1, "frames from the rescanned index: %d wrong", badf);
    CHECK(qtts_journal_lookup(j, k0, &c, &f, &found, &err) == QTTS_OK && found && f == 1 && c && c[0] == 1000 &&
              c[15] == 1015,
          "last wins");
    free(c);
    /* --fresh */
    CHECK(qtts_journal_reset(j, &err) == QTTS_OK, "reset");
    CHECK(!qtts_journal_has(j, k0) && qtts_journal_get_stats(j).records == 0, "reset forgets");
    CHECK(append_key(j, (qtts_journal_key){5, 5}, 10, &err) == QTTS_OK, "append after reset");
    qtts_journal_close(j);
    j = NULL;
    CHECK(qtts_journal_open(dir, &j, &err) == QTTS_OK, "reopen after reset");
    if (j) CHECK(qtts_journal_get_stats(j).recovered == 1 && verify(j, (qtts_journal_key){5, 5}, 10), "after reset");
    qtts_journal_close(j);
}

/* Journal with 4 records, then a small 5th: the image and where the 5th starts. */
static unsigned char *five_records(long *n, long *last_start) {
    char dir[256];
    mkpath(dir, sizeof dir, "five");
    qtts_journal *j = NULL;
    qtts_err err = {0};
    if (qtts_journal_open(dir, &j, &err) != QTTS_OK || qtts_journal_reset(j, &err) != QTTS_OK) {
        qtts_journal_close(j);
        return NULL;
    }
    for (uint32_t s = 0; s < 4; s++) append_key(j, (qtts_journal_key){77, s}, 50, &err);
    *last_start = file_size(dir);
    int32_t c[3 * 16];
    for (int i = 0; i < 48; i++) c[i] = i * 37 % 2048;
    qtts_journal_append(j, (qtts_journal_key){77, 4}, c, 3, &err);
    qtts_journal_close(j);
    return read_all(dir, n);
}

static void test_torn_tail(void) {
    long n = 0, last = 0;
    unsigned char *img = five_records(&n, &last);
    CHECK(img && n > last && last > 16, "image");
    if (!img) return;
    char dir[256];
    mkpath(dir, sizeof dir, "torn");
    int bad_open = 0, bad_recover = 0, bad_records = 0, bad_append = 0;
    for (long t = last; t < n; t++) {
        write_all(dir, img, t);
        qtts_journal *j = NULL;
        qtts_err err = {0};
        if (qtts_journal_open(dir, &j, &err) != QTTS_OK) {
            bad_open++;
            continue;
        }
        qtts_journal_stats s = qtts_journal_get_stats(j);
        if (s.recovered != 4 || s.dropped_bytes != t - last) bad_recover++;
        for (uint32_t k = 0; k < 4; k++) bad_records += !verify(j, (qtts_journal_key){77, k}, 50);
        bad_records += qtts_journal_has(j, (qtts_journal_key){77, 4});
        /* the next append cuts the torn tail: the file is exactly 4 records + the new one */
        if (append_key(j, (qtts_journal_key){88, 0}, 5, &err) != QTTS_OK) bad_append++;
        qtts_journal_close(j);
        j = NULL;
        if (qtts_journal_open(dir, &j, &err) != QTTS_OK) {
            bad_open++;
            continue;
        }
        s = qtts_journal_get_stats(j);
        if (s.recovered != 5 || s.dropped_bytes != 0 || !verify(j, (qtts_journal_key){88, 0}, 5)) bad_append++;
        qtts_journal_close(j);
    }
    CHECK(bad_open == 0 && bad_recover == 0 && bad_records == 0 && bad_append == 0,
          "over %ld cut points: %d open, %d recover, %d records, %d append failures", n - last, bad_open, bad_recover,
          bad_records, bad_append);
    /* a torn file header (crash while creating) is restarted */
    for (long t = 0; t < 16; t++) {
        write_all(dir, img, t);
        qtts_journal *j = NULL;
        qtts_err err = {0};
        CHECK(qtts_journal_open(dir, &j, &err) == QTTS_OK && qtts_journal_get_stats(j).records == 0, "header cut %ld: %s",
              t, err.msg);
        qtts_journal_close(j);
    }
    free(img);
}

static void test_flipped_bytes(void) {
    long n = 0, last = 0;
    unsigned char *img = five_records(&n, &last);
    if (!img) return;
    char dir[256];
    mkpath(dir, sizeof dir, "flip");
    int wrong = 0;
    for (long i = last; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            img[i] ^= (unsigned char)(1u << bit);
            write_all(dir, img, n);
            img[i] ^= (unsigned char)(1u << bit);
            qtts_journal *j = NULL;
            qtts_err err = {0};
            if (qtts_journal_open(dir, &j, &err) != QTTS_OK) {
                wrong++;
                continue;
            }
            qtts_journal_stats s = qtts_journal_get_stats(j);
            if (s.recovered != 4 || s.dropped_bytes != n - last || qtts_journal_has(j, (qtts_journal_key){77, 4})) wrong++;
            qtts_journal_close(j);
        }
    }
    CHECK(wrong == 0, "%d flips of the last record not detected", wrong);
    /* a flip inside the first record drops it and everything after it */
    img[16 + 40] ^= 0x10;
    write_all(dir, img, n);
    qtts_journal *j = NULL;
    qtts_err err = {0};
    CHECK(qtts_journal_open(dir, &j, &err) == QTTS_OK && qtts_journal_get_stats(j).recovered == 0 &&
              qtts_journal_get_stats(j).dropped_bytes == n - 16,
          "flip in the first record");
    qtts_journal_close(j);
    /* not a journal: refused, left untouched */
    const char *foreign = "this is somebody's notes file, not a journal";
    write_all(dir, (const unsigned char *)foreign, (long)strlen(foreign));
    j = NULL;
    CHECK(qtts_journal_open(dir, &j, &err) == QTTS_ERR_FORMAT && strstr(err.msg, "not a qtts journal"), "foreign: %s",
          err.msg);
    CHECK(file_size(dir) == (long)strlen(foreign), "foreign file untouched");
    /* a journal of another version */
    img[8] = 9;
    write_all(dir, img, n);
    CHECK(qtts_journal_open(dir, &j, &err) == QTTS_ERR_FORMAT && strstr(err.msg, "version"), "version: %s", err.msg);
    free(img);
}

/* A child appends (round, seq) records until killed at a random moment; the parent reopens and
 * checks every round's records form an intact prefix 0..k-1. */
static void test_kill(void) {
    char dir[256];
    mkpath(dir, sizeof dir, "kill");
    uint64_t rng = 20240601;
    int rounds = 0, bad = 0;
    int64_t total = 0, dropped_seen = 0;
    int count[64] = {0};
    double t0 = qtts_now();
    for (int r = 0; r < 64 && qtts_now() - t0 < 3.0; r++, rounds++) {
        pid_t pid = fork();
        if (pid < 0) break;
        if (pid == 0) {
            qtts_journal *j = NULL;
            qtts_err err = {0};
            if (qtts_journal_open(dir, &j, &err) != QTTS_OK) _exit(3);
            for (uint32_t s = 0;; s++)
                if (append_key(j, (qtts_journal_key){1000 + (uint64_t)r, s}, 400, &err) != QTTS_OK) _exit(4);
        }
        useconds_t wait_us = (useconds_t)(tu_rand_u64(&rng) % 40000);
        usleep(wait_us);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "    child exited with %d\n", WEXITSTATUS(status));
            bad++;
            continue;
        }
        qtts_journal *j = NULL;
        qtts_err err = {0};
        if (qtts_journal_open(dir, &j, &err) != QTTS_OK) {
            fprintf(stderr, "    reopen: %s\n", err.msg);
            bad++;
            continue;
        }
        qtts_journal_stats st = qtts_journal_get_stats(j);
        dropped_seen += st.dropped_bytes > 0;
        /* earlier rounds unchanged, this round a contiguous intact prefix */
        int64_t sum = 0;
        for (int q = 0; q <= r; q++) {
            int k = 0;
            while (qtts_journal_has(j, (qtts_journal_key){1000 + (uint64_t)q, (uint32_t)k})) {
                if (!verify(j, (qtts_journal_key){1000 + (uint64_t)q, (uint32_t)k}, 400)) bad++;
                k++;
            }
            for (int g = 1; g <= 3; g++)
                if (qtts_journal_has(j, (qtts_journal_key){1000 + (uint64_t)q, (uint32_t)(k + g)})) bad++;
            if (q < r && k != count[q]) bad++;
            count[q] = k;
            sum += k;
        }
        if (sum != st.recovered) bad++;
        total = sum;
        qtts_journal_close(j);
    }
    fprintf(stderr, "kill test: %d rounds, %lld records survived, %lld reopens found a torn tail\n", rounds,
            (long long)total, (long long)dropped_seen);
    CHECK(rounds >= 5, "rounds %d", rounds);
    CHECK(bad == 0, "%d inconsistencies after SIGKILL", bad);
    CHECK(total > 0, "some records were written");
}

static void test_output_commit(void) {
    char dir[256], fin[300], tmp[400];
    mkpath(dir, sizeof dir, "outs/a/b");
    qtts_err err = {0};
    snprintf(fin, sizeof fin, "%s/x.wav", dir);
    CHECK(qtts_mkdirs(fin, true, &err) == QTTS_OK, "mkdirs: %s", err.msg);
    CHECK(qtts_output_tmp_path(fin, tmp, sizeof tmp, &err) == QTTS_OK && strstr(tmp, "x.wav.tmp."), "tmp %s", tmp);
    FILE *f = fopen(tmp, "wb");
    CHECK(f != NULL, "create tmp");
    if (!f) return;
    fputs("RIFF", f);
    fclose(f);
    CHECK(qtts_output_commit(tmp, fin, &err) == QTTS_OK, "commit: %s", err.msg);
    CHECK(qtts_file_exists(fin) && !qtts_file_exists(tmp), "renamed");
    CHECK(qtts_output_commit(tmp, fin, &err) == QTTS_ERR_IO, "missing tmp");
    char small[8];
    CHECK(qtts_output_tmp_path(fin, small, sizeof small, &err) == QTTS_ERR_INVALID_ARG, "too long");
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/qtts_test_journalXXXXXX");
    if (!mkdtemp(g_root)) return tu_skip("mkdtemp failed");
    test_round_trip();
    test_torn_tail();
    test_flipped_bytes();
    test_kill();
    test_output_commit();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_root);
    return tu_finish("journal");
}
