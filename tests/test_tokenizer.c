/* Tokenizer tests: every line of tests/data/tokenizer_corpus.jsonl (ids from Hugging Face
 * Qwen2TokenizerFast, scripts/make_tokenizer_corpus.py) must encode to exactly the same
 * ids and decode back to NFC(text); invalid UTF-8 is rejected naming the byte offset;
 * concurrent encodes on one tokenizer agree. Needs ../shared/data/qwen2-tokenizer. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tokenizer.h"

typedef struct line {
    char *text, *nfc;
    int32_t *ids, *ids_fix; /* plain Qwen2; as the official processor tokenizes (fix_mistral_regex) */
    int n, n_fix;
} line;

static line *lines;
static int n_lines;

static int load_corpus(const char *path) {
    char *buf;
    size_t n;
    qtts_err err = {0};
    if (qtts_read_file(path, &buf, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int cap = 0;
    for (char *p = buf; p < buf + n;) {
        char *nl = memchr(p, '\n', (size_t)(buf + n - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(buf + n - p);
        cJSON *j = cJSON_ParseWithLength(p, ll);
        p += ll + 1;
        if (!j) continue;
        if (n_lines == cap) lines = realloc(lines, (size_t)(cap = cap ? cap * 2 : 1024) * sizeof *lines);
        line *l = &lines[n_lines++];
        const cJSON *t = cJSON_GetObjectItem(j, "text"), *f = cJSON_GetObjectItem(j, "nfc"),
                    *ids = cJSON_GetObjectItem(j, "ids");
        l->text = strdup(t->valuestring);
        l->nfc = strdup(f ? f->valuestring : t->valuestring);
        l->n = cJSON_GetArraySize(ids);
        l->ids = malloc(((size_t)l->n + 1) * sizeof *l->ids);
        for (int i = 0; i < l->n; i++) l->ids[i] = cJSON_GetArrayItem(ids, i)->valueint;
        const cJSON *fx = cJSON_GetObjectItem(j, "ids_fix");
        if (!fx) fx = ids;
        l->n_fix = cJSON_GetArraySize(fx);
        l->ids_fix = malloc(((size_t)l->n_fix + 1) * sizeof *l->ids_fix);
        for (int i = 0; i < l->n_fix; i++) l->ids_fix[i] = cJSON_GetArrayItem(fx, i)->valueint;
        cJSON_Delete(j);
    }
    free(buf);
    return n_lines;
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

static void test_corpus(const qtts_tokenizer *tok, bool fix) {
    int bad = 0, bad_rt = 0;
    for (int i = 0; i < n_lines; i++) {
        line L = lines[i], *l = &L;
        if (fix) l->ids = l->ids_fix, l->n = l->n_fix;
        int32_t *ids;
        int n;
        qtts_err err = {0};
        qtts_status st = qtts_tokenizer_encode(tok, l->text, strlen(l->text), &ids, &n, &err);
        bool same = st == QTTS_OK && n == l->n && !memcmp(ids, l->ids, (size_t)n * sizeof *ids);
        if (!same && bad++ < 10) {
            fprintf(stderr, "corpus line %d differs (%s %s)\n", i + 1, qtts_status_str(st), err.msg);
            print_ids("want", l->ids, l->n);
            if (st == QTTS_OK) print_ids("got ", ids, n);
        }
        if (st == QTTS_OK) {
            char *txt;
            size_t tl;
            int cnt = -1;
            qtts_tokenizer_count(tok, l->text, strlen(l->text), &cnt, &err);
            if (cnt != n) bad_rt++;
            if (qtts_tokenizer_decode(tok, ids, n, &txt, &tl, &err) || tl != strlen(l->nfc) || memcmp(txt, l->nfc, tl)) {
                if (bad_rt++ < 5) fprintf(stderr, "round trip differs on line %d\n", i + 1);
            }
            free(txt);
            free(ids);
        }
    }
    const char *what = fix ? "official processor (fix_mistral_regex pattern)" : "plain Qwen2TokenizerFast";
    CHECK(bad == 0, "%d of %d corpus lines differ from Hugging Face, %s", bad, n_lines, what);
    CHECK(bad_rt == 0, "%d lines: decode(encode(x)) != NFC(x) or count != encode (%s)", bad_rt, what);
    printf("corpus: %d lines compared against %s\n", n_lines, what);
}

static void test_invalid_utf8(const qtts_tokenizer *tok) {
    static const struct { const char *s; size_t len, off; } cases[] = {
        {"abc\xff", 4, 3},          {"\x80", 1, 0},           {"ok \xc3", 4, 3},          /* truncated */
        {"\xc0\xaf", 2, 0},         {"xx\xe0\x80\xaf", 5, 2}, {"\xed\xa0\x80", 3, 0},     /* overlong, surrogate */
        {"\xf4\x90\x80\x80", 4, 0}, {"h\xc3\x28", 3, 1},      {"<|im_start|>\xfe", 13, 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids = NULL;
        int n = -1;
        qtts_err err = {0};
        qtts_status st = qtts_tokenizer_encode(tok, cases[i].s, cases[i].len, &ids, &n, &err);
        char want[64];
        snprintf(want, sizeof want, "at offset %zu", cases[i].off);
        CHECK(st == QTTS_ERR_TEXT && strstr(err.msg, want) && !ids && n == 0, "case %zu: %s %s", i,
              qtts_status_str(st), err.msg);
        CHECK(qtts_utf8_find_invalid(cases[i].s, cases[i].len) == cases[i].off, "find_invalid %zu", i);
    }
    /* NUL is a valid character and is tokenized, not a terminator */
    int32_t *ids;
    int n;
    qtts_err err = {0};
    CHECK(qtts_tokenizer_encode(tok, "a\0b", 3, &ids, &n, &err) == QTTS_OK && n == 3, "embedded NUL: %d", n);
    free(ids);
    CHECK(qtts_tokenizer_encode(tok, "", 0, &ids, &n, &err) == QTTS_OK && n == 0 && ids, "empty text");
    free(ids);
}

static void test_api(const qtts_tokenizer *tok) {
    CHECK(qtts_tokenizer_token_id(tok, "<|im_start|>") == 151644, "im_start");
    CHECK(qtts_tokenizer_token_id(tok, "<|im_end|>") == 151645, "im_end");
    CHECK(qtts_tokenizer_token_id(tok, "assistant") == 77091, "assistant");
    CHECK(qtts_tokenizer_token_id(tok, "\n") == 198, "newline");
    CHECK(qtts_tokenizer_token_id(tok, "<tts_pad>") == -1, "not in this vocab");
    CHECK(qtts_tokenizer_n_vocab(tok) == 151646, "n_vocab %d", qtts_tokenizer_n_vocab(tok));
    int32_t bad[] = {5, 151646};
    char *txt;
    size_t tl;
    qtts_err err = {0};
    CHECK(qtts_tokenizer_decode(tok, bad, 2, &txt, &tl, &err) == QTTS_ERR_INVALID_ARG && strstr(err.msg, "151646"),
          "bad id: %s", err.msg);
    /* the template slicing of the spec (§3.2): role prefix is 3 ids, suffix 5 */
    const char *tpl = "<|im_start|>assistant\nHello world.<|im_end|>\n<|im_start|>assistant\n";
    int32_t *ids;
    int n;
    CHECK(qtts_tokenizer_encode(tok, tpl, strlen(tpl), &ids, &n, &err) == QTTS_OK, "template");
    int32_t want[] = {151644, 77091, 198, 9707, 1879, 13, 151645, 198, 151644, 77091, 198};
    CHECK(n == 11 && !memcmp(ids, want, sizeof want), "template ids (n=%d)", n);
    free(ids);
}

typedef struct { const qtts_tokenizer *tok; int bad; } thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    for (int i = 0; i < n_lines; i++) {
        int32_t *ids;
        int n;
        qtts_err err = {0};
        if (qtts_tokenizer_encode(a->tok, lines[i].text, strlen(lines[i].text), &ids, &n, &err) != QTTS_OK) {
            a->bad++;
            continue;
        }
        if (n != lines[i].n || memcmp(ids, lines[i].ids, (size_t)n * sizeof *ids)) a->bad++;
        free(ids);
    }
    return NULL;
}

static void test_threads(const qtts_tokenizer *tok) {
    pthread_t th[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg){tok, 0};
        pthread_create(&th[i], NULL, thr_main, &a[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += a[i].bad;
    }
    CHECK(bad == 0, "%d mismatches under 4 concurrent threads", bad);
}

/* The CLI prints exactly the ids of the whole file as one text. */
static void test_cli(const char *dir) {
    char path[256], cmd[8192], out[1 << 16];
    snprintf(path, sizeof path, "%s/tok_cli.%d.txt", QTTS_BINARY_DIR, (int)getpid());
    FILE *f = fopen(path, "wb");
    int pick[] = {0, 1, 5, 20, 40};
    int32_t want[4096];
    int nw = 0;
    for (size_t k = 0; k < sizeof pick / sizeof pick[0]; k++) {
        fputs(lines[pick[k]].text, f);
        fputs("<|im_end|>", f); /* added tokens stop merges across the joins */
    }
    fclose(f);
    for (size_t k = 0; k < sizeof pick / sizeof pick[0]; k++) {
        memcpy(want + nw, lines[pick[k]].ids, (size_t)lines[pick[k]].n * sizeof *want);
        nw += lines[pick[k]].n;
        want[nw++] = 151645;
    }
    char expect[1 << 16];
    size_t o = 0;
    for (int i = 0; i < nw; i++) o += (size_t)snprintf(expect + o, sizeof expect - o, i ? " %d" : "%d", want[i]);
    snprintf(expect + o, sizeof expect - o, "\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --tokenizer '%s' --file '%s'", QTTS_EXE, dir, path);
    int rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 0 && !strcmp(out, expect), "qtts tokenize: rc %d, output %.200s", rc, out);
    f = fopen(path, "wb");
    fputs("fine\xc3", f);
    fclose(f);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "offset 4"), "qtts tokenize on invalid UTF-8: rc %d, %s", rc, out);
    remove(path);
}

/* A tiny tokenizer.json (no vocab.json): both merge spellings ("a b" and ["ab","c"]) and
 * added tokens with lstrip/rstrip and normalized=true, expectations derived by hand. */
static void test_tokenizer_json(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/tokjson.%d", QTTS_BINARY_DIR, (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"added_tokens\": [\n"
               " {\"id\": 300, \"content\": \"<X>\", \"single_word\": false, \"lstrip\": true, \"rstrip\": true,"
               " \"normalized\": false, \"special\": true},\n"
               " {\"id\": 301, \"content\": \"\u00e9!\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false,"
               " \"normalized\": true, \"special\": false}],\n"
               "\"model\": {\"type\": \"BPE\", \"vocab\": {");
    int extra = 0;
    for (int b = 0; b < 256; b++) { /* GPT-2 byte → code point */
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        fprintf(f, "\"\\u%04x\": %d, ", keep ? b : 256 + extra++, b);
    }
    fprintf(f, "\"ab\": 256, \"abc\": 257, \"\u0120a\": 258, \"\u0120\u0120\": 259},\n"
               "\"merges\": [\"a b\", [\"ab\", \"c\"], \"\u0120 a\", [\"\u0120\", \"\u0120\"]]}}\n");
    fclose(f);
    qtts_tokenizer *tok = NULL;
    qtts_err err = {0};
    CHECK(qtts_tokenizer_load(&tok, dir, &err) == QTTS_OK, "tokenizer.json load: %s", err.msg);
    if (tok) {
        static const struct { const char *in; int32_t want[8]; int n; } cases[] = {
            {"abc ab<X> a", {257, 32, 256, 300, 97}, 5},  /* rstrip eats the space after <X> */
            {"a <X>b", {97, 300, 98}, 3},                  /* lstrip eats the space before it */
            {"xe\xcc\x81!y", {120, 301, 121}, 3},         /* normalized token matched after NFC */
            {"  a", {32, 258}, 2},                         /* \s+(?!\S) leaves the last space to " a" */
            {"a  ", {97, 259}, 2},                         /* ...but takes the whole run at the end */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int32_t *ids;
            int n;
            bool ok = qtts_tokenizer_encode(tok, cases[i].in, strlen(cases[i].in), &ids, &n, &err) == QTTS_OK &&
                      n == cases[i].n && !memcmp(ids, cases[i].want, (size_t)n * sizeof *ids);
            if (!ok) print_ids("got", ids, n);
            CHECK(ok, "tokenizer.json case %zu", i);
            free(ids);
        }
        CHECK(qtts_tokenizer_n_vocab(tok) == 302 && qtts_tokenizer_token_id(tok, "<X>") == 300, "added ids");
        qtts_tokenizer_free(tok);
    }
    remove(path);
    rmdir(dir);
}

/* AUTO reproduces transformers 4.57.3 _patch_mistral_regex(fix_mistral_regex=True) from the
 * folder's config.json. */
static void test_pretok_auto(const char *src) {
    static const struct { const char *cfg; qtts_pretok want; } cases[] = {
        {NULL, QTTS_PRETOK_QWEN2},
        {"{\"model_type\": \"qwen3_tts\", \"transformers_version\": \"4.57.3\"}", QTTS_PRETOK_MISTRAL_FIX},
        {"{\"model_type\": \"qwen3_tts\", \"transformers_version\": \"4.57.2\"}", QTTS_PRETOK_QWEN2},
        {"{\"model_type\": \"mistral\", \"transformers_version\": \"4.50.0\"}", QTTS_PRETOK_MISTRAL_FIX},
        {"{\"model_type\": \"qwen3_tts\", \"transformers_version\": \"5.0.0\"}", QTTS_PRETOK_QWEN2},
        {"{\"model_type\": \"qwen3_tts\"}", QTTS_PRETOK_MISTRAL_FIX},
    };
    char dir[512], path[700], target[4200];
    snprintf(dir, sizeof dir, "%s/pretok.%d", QTTS_BINARY_DIR, (int)getpid());
    mkdir(dir, 0755);
    static const char *const files[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        snprintf(target, sizeof target, "%s/%s", src, files[f]);
        CHECK(symlink(target, path) == 0, "symlink %s", path);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        remove(path);
        if (cases[i].cfg) {
            FILE *f = fopen(path, "w");
            fputs(cases[i].cfg, f);
            fclose(f);
        }
        qtts_tokenizer *tok = NULL;
        qtts_err err = {0};
        CHECK(qtts_tokenizer_load(&tok, dir, &err) == QTTS_OK && qtts_tokenizer_pretok(tok) == cases[i].want,
              "auto pattern, config %s: %s", cases[i].cfg ? cases[i].cfg : "(none)", err.msg);
        qtts_tokenizer_free(tok);
    }
    remove(path);
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        remove(path);
    }
    rmdir(dir);
}

static void test_load_errors(void) {
    qtts_tokenizer *tok = NULL;
    qtts_err err = {0};
    CHECK(qtts_tokenizer_load(&tok, "/nonexistent-dir", &err) == QTTS_ERR_MISSING && !tok, "missing dir: %s", err.msg);
}

int main(void) {
    char dir[4096], corpus[4096];
    snprintf(dir, sizeof dir, "%s/data/qwen2-tokenizer", tu_shared_dir());
    snprintf(corpus, sizeof corpus, "%s/tests/data/tokenizer_corpus.jsonl", QTTS_SOURCE_DIR);
    test_load_errors();
    test_tokenizer_json();
    if (!qtts_file_exists(dir)) return tu_skip("no shared/data/qwen2-tokenizer");
    qtts_tokenizer *tok;
    qtts_err err = {0};
    double t0 = qtts_now();
    if (qtts_tokenizer_load(&tok, dir, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        CHECK(0, "tokenizer load");
        return tu_finish("tokenizer");
    }
    printf("load: %.3f s\n", qtts_now() - t0);
    CHECK(load_corpus(corpus) > 1000, "corpus %s", corpus);
    test_api(tok);
    test_corpus(tok, false);
    qtts_tokenizer *tok_fix;
    CHECK(qtts_tokenizer_load_with(&tok_fix, dir, QTTS_PRETOK_MISTRAL_FIX, &err) == QTTS_OK, "load: %s", err.msg);
    test_corpus(tok_fix, true);
    qtts_tokenizer_free(tok_fix);
    test_pretok_auto(dir);
    test_invalid_utf8(tok);
    test_threads(tok);
    test_cli(dir);
    qtts_tokenizer_free(tok);
    for (int i = 0; i < n_lines; i++) free(lines[i].text), free(lines[i].nfc), free(lines[i].ids), free(lines[i].ids_fix);
    free(lines);
    return tu_finish("tokenizer");
}
