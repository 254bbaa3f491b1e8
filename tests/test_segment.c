/* Segmentation tests: sentence rules on hand-written cases (abbreviations, decimals,
 * initials, CJK, quotes, paragraphs), and a property test on a seeded random corpus:
 * segments in order, never empty, never over the token limit, only whitespace between
 * them, and together they give back the normalised text with nothing dropped or repeated.
 * Needs ../shared/data/qwen2-tokenizer for the token counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segment.h"
#include "testutil.h"

static char *seg_str(const qtts_segmentation *s, int i) {
    size_t n = s->seg[i].end - s->seg[i].start;
    char *o = malloc(n + 1);
    memcpy(o, s->text + s->seg[i].start, n);
    o[n] = 0;
    return o;
}

/* Expect exactly the listed segments (NULL-terminated). */
static void expect(const qtts_tokenizer *tok, const char *in, int max_tokens, const char *const *want) {
    qtts_segmentation s;
    qtts_err err = {0};
    qtts_segment_params p = {max_tokens};
    qtts_status st = qtts_segment_text(tok, in, strlen(in), &p, &s, &err);
    int nw = 0;
    while (want[nw]) nw++;
    bool ok = st == QTTS_OK && s.n == nw;
    for (int i = 0; ok && i < nw; i++) {
        char *g = seg_str(&s, i);
        ok = !strcmp(g, want[i]);
        free(g);
    }
    if (!ok) {
        fprintf(stderr, "input: \"%s\" (max %d) gave %d segments (%s):\n", in, max_tokens, s.n, err.msg);
        for (int i = 0; i < s.n; i++) {
            char *g = seg_str(&s, i);
            fprintf(stderr, "  [%s] %d tok brk %d\n", g, s.seg[i].n_tokens, s.seg[i].brk);
            free(g);
        }
    }
    CHECK(ok, "segments of \"%.60s\"", in);
    qtts_segmentation_free(&s);
}

#define EXPECT(tok, in, max, ...) expect(tok, in, max, (const char *const[]){__VA_ARGS__, NULL})

static void test_rules(const qtts_tokenizer *tok) {
    EXPECT(tok, "Mr. Smith met Dr. Jones at 3.14 p.m. on Monday. They talked.", 100,
           "Mr. Smith met Dr. Jones at 3.14 p.m. on Monday.", "They talked.");
    EXPECT(tok, "J. R. R. Tolkien wrote books, e.g. The Hobbit. He died in 1973!", 100,
           "J. R. R. Tolkien wrote books, e.g. The Hobbit.", "He died in 1973!");
    EXPECT(tok, "Apples, pears, etc. are fruit. Bread etc. Then more.", 100, "Apples, pears, etc. are fruit.",
           "Bread etc.", "Then more.");
    EXPECT(tok, "\"Is it?\" she asked. (Yes.) Fine...   really? OK!!", 100, "\"Is it?\" she asked.", "(Yes.)",
           "Fine... really?", "OK!!");
    EXPECT(tok, "他说：“我明天再来。”然后走了。你好！真的？", 100, "他说：“我明天再来。”", "然后走了。", "你好！",
           "真的？");
    EXPECT(tok, "The U.S. Army arrived. Version 2.0 shipped.", 100, "The U.S. Army arrived.", "Version 2.0 shipped.");
    /* clause, word and hard fallbacks */
    EXPECT(tok, "one two three four five, six seven eight nine ten; eleven twelve thirteen fourteen.", 8,
           "one two three four five,", "six seven eight nine ten;", "eleven twelve thirteen fourteen.");
    EXPECT(tok, "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu", 8,
           "alpha beta gamma delta epsilon zeta eta", "theta iota kappa lambda mu");
}

static void test_paragraphs(const qtts_tokenizer *tok) {
    const char *in = "  First one.  Second\tone.\r\n\r\nNew para\nsame para.\n \n\n\nThird.  ";
    qtts_segmentation s;
    qtts_err err = {0};
    qtts_segment_params p = qtts_segment_default_params();
    CHECK(qtts_segment_text(tok, in, strlen(in), &p, &s, &err) == QTTS_OK, "%s", err.msg);
    CHECK(!strcmp(s.text, "First one. Second one.\n\nNew para same para.\n\nThird."), "normalised: [%s]", s.text);
    CHECK(s.n == 4, "n %d", s.n);
    if (s.n == 4) {
        CHECK(s.seg[0].brk == QTTS_SEG_BREAK_SENTENCE && s.seg[0].paragraph == 0, "seg 0");
        CHECK(s.seg[1].brk == QTTS_SEG_BREAK_PARAGRAPH && s.seg[1].paragraph == 0, "seg 1");
        CHECK(s.seg[2].brk == QTTS_SEG_BREAK_PARAGRAPH && s.seg[2].paragraph == 1, "seg 2");
        CHECK(s.seg[3].brk == QTTS_SEG_BREAK_END && s.seg[3].paragraph == 2, "seg 3");
    }
    qtts_segmentation_free(&s);
    CHECK(qtts_segment_text(tok, " \n\t ", 4, &p, &s, &err) == QTTS_OK && s.n == 0 && s.len == 0, "blank text");
    qtts_segmentation_free(&s);
    CHECK(qtts_segment_text(tok, "ok \xe2\x82", 5, &p, &s, &err) == QTTS_ERR_TEXT && strstr(err.msg, "offset 3"),
          "invalid UTF-8: %s", err.msg);
    p.max_tokens = 4;
    CHECK(qtts_segment_text(tok, "x", 1, &p, &s, &err) == QTTS_ERR_INVALID_ARG, "max_tokens < 8");
}

/* ---- property test ---- */

static const char *const WORDS[] = {
    "the", "quick", "brown", "fox", "Mr.", "Mrs.", "Dr.", "e.g.", "i.e.", "etc.", "J.", "R.", "3.14", "1,000",
    "10:30", "U.S.", "vs.", "No.", "approx.", "antidisestablishmentarianism", "naïve", "café", "Straße", "über",
    "人工智能", "正在改变世界", "東京タワー", "안녕하세요", "привет", "мир", "😀", "👨‍👩‍👧‍👦", "e\xcc\x81",
    "\"quoted\"", "(paren)", "«guillemets»", "“curly”", "don't", "it's", "A.", "B.C.", "x", "I"};
static const char *const PUNCT[] = {".", "!", "?", "...", "…", "。", "！", "？", ",", ";", ":", "、", "，", "—",
                                    "?!", ".\"", ".)", "。”", "-", "'"};
static const char *const SPACE[] = {" ", " ", " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", "\n \n", "\u3000",
                                    "\u00a0", ""};

static void gen_text(uint64_t *rng, char *buf, size_t cap, size_t *len) {
    size_t n = 0;
    int words = 1 + (int)(tu_rand_u64(rng) % 400);
    for (int w = 0; w < words; w++) {
        const char *parts[3];
        int np = 0;
        uint64_t r = tu_rand_u64(rng);
        if (r % 50 == 0) { /* long CJK run without punctuation or spaces */
            for (int k = 0; k < 60 && n + 4 < cap; k++) n += (size_t)snprintf(buf + n, cap - n, "%s", "中文字");
        } else if (r % 97 == 0) { /* long word without spaces */
            for (int k = 0; k < 80 && n + 4 < cap; k++) n += (size_t)snprintf(buf + n, cap - n, "%s", "abc");
        }
        parts[np++] = WORDS[tu_rand_u64(rng) % (sizeof WORDS / sizeof *WORDS)];
        if (tu_rand_u64(rng) % 4 == 0) parts[np++] = PUNCT[tu_rand_u64(rng) % (sizeof PUNCT / sizeof *PUNCT)];
        parts[np++] = SPACE[tu_rand_u64(rng) % (sizeof SPACE / sizeof *SPACE)];
        for (int k = 0; k < np; k++) {
            size_t l = strlen(parts[k]);
            if (n + l + 1 >= cap) break;
            memcpy(buf + n, parts[k], l);
            n += l;
        }
    }
    buf[n] = 0;
    *len = n;
}

static void test_property(const qtts_tokenizer *tok) {
    static char buf[1 << 16];
    uint64_t rng = 12345;
    static const int limits[] = {8, 12, 30, 150};
    int bad = 0, total_segs = 0, texts = 0;
    size_t total_bytes = 0;
    for (int iter = 0; iter < 300; iter++) {
        size_t len;
        gen_text(&rng, buf, sizeof buf, &len);
        qtts_segment_params p = {limits[iter % 4]};
        qtts_segmentation s;
        qtts_err err = {0};
        char *norm;
        size_t nl;
        if (qtts_segment_text(tok, buf, len, &p, &s, &err) != QTTS_OK ||
            qtts_segment_normalize(buf, len, &norm, &nl, &err) != QTTS_OK) {
            if (bad++ < 5) fprintf(stderr, "iter %d: %s\n", iter, err.msg);
            continue;
        }
        texts++;
        total_bytes += len;
        total_segs += s.n;
        bool ok = nl == s.len && !memcmp(norm, s.text, nl);
        /* normalised form: no whitespace at the ends, no runs, newlines only as "\n\n" */
        for (size_t i = 0; ok && i < s.len; i++) {
            char c = s.text[i];
            if (c == '\t' || c == '\r') ok = false;
            if (c == ' ' && (i == 0 || i + 1 == s.len || s.text[i + 1] == ' ' || s.text[i + 1] == '\n')) ok = false;
            if (c == '\n' && !((i + 1 < s.len && s.text[i + 1] == '\n') || (i > 0 && s.text[i - 1] == '\n'))) ok = false;
        }
        if (!ok && bad++ < 5) fprintf(stderr, "iter %d: normalised text malformed\n", iter);
        /* tiling: segment, gap of whitespace, segment ... covers every byte exactly once */
        size_t pos = 0;
        char *joined = malloc(s.len + 1);
        size_t jn = 0;
        for (int i = 0; ok && i < s.n; i++) {
            const qtts_segment *g = &s.seg[i];
            for (size_t k = pos; k < g->start; k++)
                if (s.text[k] != ' ' && s.text[k] != '\n') ok = false; /* gap holds only whitespace */
            if (g->start < pos || g->end <= g->start || g->end > s.len) ok = false;
            if (!ok) break;
            memcpy(joined + jn, s.text + pos, g->end - pos);
            jn += g->end - pos;
            pos = g->end;
            int n = -1;
            qtts_tokenizer_count(tok, s.text + g->start, g->end - g->start, &n, &err);
            if (n != g->n_tokens || n > p.max_tokens || n < 1) {
                ok = false;
                if (bad < 5) fprintf(stderr, "iter %d seg %d: %d tokens (stored %d, max %d)\n", iter, i, n, g->n_tokens, p.max_tokens);
            }
            char c0 = s.text[g->start], c1 = s.text[g->end - 1];
            if (c0 == ' ' || c0 == '\n' || c1 == ' ' || c1 == '\n') ok = false;
            if (i + 1 < s.n && s.seg[i + 1].paragraph != g->paragraph && g->brk != QTTS_SEG_BREAK_PARAGRAPH) ok = false;
        }
        if (ok) {
            for (size_t k = pos; k < s.len; k++)
                if (s.text[k] != ' ' && s.text[k] != '\n') ok = false;
            ok = ok && jn == pos && !memcmp(joined, s.text, jn) && (s.n == 0 ? s.len == 0 : pos == s.len);
            ok = ok && (s.n == 0 || s.seg[s.n - 1].brk == QTTS_SEG_BREAK_END);
        }
        free(joined);
        if (!ok && bad++ < 5) fprintf(stderr, "iter %d (max %d): segments do not tile the text\n", iter, p.max_tokens);
        free(norm);
        qtts_segmentation_free(&s);
    }
    CHECK(bad == 0, "%d of 300 random texts broke a property", bad);
    printf("property: %d texts, %zu bytes, %d segments\n", texts, total_bytes, total_segs);
}

int main(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data/qwen2-tokenizer", tu_shared_dir());
    if (!qtts_file_exists(dir)) return tu_skip("no shared/data/qwen2-tokenizer");
    qtts_tokenizer *tok;
    qtts_err err = {0};
    if (qtts_tokenizer_load(&tok, dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_rules(tok);
    test_paragraphs(tok);
    test_property(tok);
    qtts_tokenizer_free(tok);
    return tu_finish("segment");
}
