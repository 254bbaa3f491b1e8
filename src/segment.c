/* Segmentation (see segment.h). Paragraphs → sentences (rule-based, no model) → if a
 * sentence is over max_tokens, greedy packing of the longest prefix that fits, with cut
 * points at clause punctuation, then spaces, then grapheme boundaries, then code points:
 * each level only splits the pieces the previous level could not make fit. */
#include "segment.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

static int u8_decode(const uint8_t *s, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) return *cp = c, 1;
    if (c < 0xE0) return *cp = (uint32_t)(c & 0x1F) << 6 | (s[1] & 0x3F), 2;
    if (c < 0xF0) return *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F), 3;
    *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

/* Start of the code point that ends just before byte i (i > 0). */
static size_t u8_prev(const char *s, size_t i) {
    do i--;
    while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80);
    return i;
}

/* Newlines a whitespace character stands for, or -1 if it is not whitespace. */
static int ws_newlines(uint32_t cp) {
    if (cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x85 || cp == 0x2028) return 1;
    if (cp == 0x2029) return 2;
    if (cp == ' ' || cp == '\t') return 0;
    if (cp < 0x80) return -1;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ZS ? 0 : -1;
}

qtts_status qtts_segment_normalize(const char *text, size_t len, char **out, size_t *out_len, qtts_err *err) {
    *out = NULL;
    *out_len = 0;
    if (!text && len) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "segment: NULL text");
    size_t bad = qtts_utf8_find_invalid(text, len);
    if (bad != len)
        return qtts_fail(err, QTTS_ERR_TEXT, "text is not valid UTF-8: byte 0x%02x at offset %zu",
                         (unsigned)(uint8_t)text[bad], bad);
    char *o = qtts_malloc(len + 1, err, "normalised text");
    if (!o) return QTTS_ERR_OOM;
    const uint8_t *s = (const uint8_t *)text;
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        int k = u8_decode(s + i, &cp);
        int nl = ws_newlines(cp);
        if (nl < 0) {
            memcpy(o + n, s + i, (size_t)k);
            n += (size_t)k;
            i += (size_t)k;
            continue;
        }
        int lines = 0;
        while (i < len) { /* the whole whitespace run */
            k = u8_decode(s + i, &cp);
            nl = ws_newlines(cp);
            if (nl < 0) break;
            if (cp == '\r' && i + 1 < len && s[i + 1] == '\n') nl = 0; /* CRLF is one break */
            lines += nl;
            i += (size_t)k;
        }
        if (n == 0 || i == len) continue; /* no whitespace at the ends */
        if (lines >= 2) {
            o[n++] = '\n';
            o[n++] = '\n';
        } else {
            o[n++] = ' ';
        }
    }
    o[n] = 0;
    *out = o;
    *out_len = n;
    return QTTS_OK;
}

/* ---- sentence rules ---- */

static bool is_terminator(uint32_t c) {
    return c == '.' || c == '!' || c == '?' || c == 0x2026 /* … */ || c == 0x3002 /* 。 */ || c == 0xFF01 ||
           c == 0xFF1F || c == 0xFF0E || c == 0x203C || c == 0x2047 || c == 0x2048 || c == 0x2049 || c == 0xFF61;
}
/* Terminators that end a sentence with no space after them (CJK typography). */
static bool is_cjk_terminator(uint32_t c) { return c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0xFF61; }

static bool is_closer(uint32_t c) {
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}' || c == 0x201D || c == 0x2019 || c == 0x00BB ||
           c == 0x300D || c == 0x300F || c == 0x3011 || c == 0x300B || c == 0x3009 || c == 0xFF09 || c == 0x203A;
}
static bool is_opener(uint32_t c) {
    return c == '"' || c == '\'' || c == '(' || c == '[' || c == '{' || c == 0x201C || c == 0x2018 || c == 0x00AB ||
           c == 0x300C || c == 0x300E || c == 0x3010 || c == 0x300A || c == 0x3008 || c == 0xFF08 || c == 0x2039;
}
static bool is_clause(uint32_t c) {
    return c == ',' || c == ';' || c == ':' || c == 0x3001 /* 、 */ || c == 0xFF0C || c == 0xFF1B || c == 0xFF1A ||
           c == 0x2014 /* — */ || c == 0x2013 /* – */;
}
static bool is_letter(uint32_t c) {
    if (c < 0x80) return isalpha((int)c);
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
static bool is_lower(uint32_t c) {
    return c < 0x80 ? islower((int)c) : utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_LL;
}
static bool is_upper(uint32_t c) {
    return c < 0x80 ? isupper((int)c)
                    : (utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_LU ||
                       utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_LT);
}

/* Never a sentence end before a following word. */
static const char *const abbrev_hard[] = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "e.g", "i.e", "cf", "no", "nos", "vol", "fig",
    "figs", "pp", "approx", "ca", "gen", "col", "lt", "sgt", "capt", "rev", "hon", "messrs", "mme", "mlle", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "dept", "univ", "ed", "eds",
    "ph.d", "m.d", "a.m", "p.m", "op", "viz", "resp", "sen", "rep", "gov", "pres", "supt", "det", "insp"};
/* A sentence end only when a capitalised word follows ("etc. The next…"). */
static const char *const abbrev_soft[] = {"etc", "al", "inc", "ltd", "co", "corp", "bros", "jr"};

static bool in_list(const char *const *list, size_t n, const char *w, size_t wl) {
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == wl && !strncasecmp(list[i], w, wl)) return true;
    return false;
}

/* Does a sentence end after the terminator run [t, j) (closers included) in text[ps, pe)?
 * j < pe. */
static bool sentence_ends(const char *txt, size_t ps, size_t t, size_t j, size_t pe) {
    bool cjk = false, only_dot = true;
    int n_term = 0;
    for (size_t i = t; i < j;) {
        uint32_t c;
        i += (size_t)u8_decode((const uint8_t *)txt + i, &c);
        if (!is_terminator(c)) continue;
        n_term++;
        cjk |= is_cjk_terminator(c);
        only_dot &= c == '.';
    }
    if (cjk) return true;
    if (txt[j] != ' ' && txt[j] != '\n') return false; /* 3.14, e.g.x, Yahoo!Inc */
    /* next word, past the space and any opening quotes */
    size_t nx = j + 1;
    uint32_t nc = 0;
    while (nx < pe) {
        nx += (size_t)u8_decode((const uint8_t *)txt + nx, &nc);
        if (!is_opener(nc)) break;
    }
    if (is_lower(nc)) return false; /* "approx. five", "wait... what" */
    if (!only_dot || n_term != 1) return true;
    /* a single '.': look at the word before it (letters and inner dots) */
    size_t w = t;
    while (w > ps) {
        size_t p = u8_prev(txt, w);
        uint32_t c;
        u8_decode((const uint8_t *)txt + p, &c);
        if (!is_letter(c) && c != '.') break;
        w = p;
    }
    size_t wl = t - w;
    if (wl == 0) return true;
    uint32_t c0;
    int k0 = u8_decode((const uint8_t *)txt + w, &c0);
    if ((size_t)k0 == wl && is_upper(c0)) return false; /* initial: "J. R. R. Tolkien" */
    if (in_list(abbrev_hard, sizeof abbrev_hard / sizeof *abbrev_hard, txt + w, wl)) return false;
    if (in_list(abbrev_soft, sizeof abbrev_soft / sizeof *abbrev_soft, txt + w, wl)) return is_upper(nc);
    /* Dotted acronyms ("U.S. Army" vs "in the U.S. The") are ambiguous; joining two
     * sentences costs less prosody than cutting one, so they never end one. */
    if (memchr(txt + w, '.', wl)) return false;
    return true;
}

/* ---- packing under the token limit ---- */

typedef struct seg_ctx {
    const qtts_tokenizer *tok;
    const char *txt;
    int max_tokens, paragraph;
    qtts_segment *seg;
    int n, cap;
    qtts_err *err;
} seg_ctx;

enum { LV_CLAUSE = 0, LV_WORD, LV_GRAPHEME, LV_CODEPOINT };

static void trim(const char *t, size_t *s, size_t *e) {
    while (*s < *e && (t[*s] == ' ' || t[*s] == '\n')) (*s)++;
    while (*e > *s && (t[*e - 1] == ' ' || t[*e - 1] == '\n')) (*e)--;
}

static qtts_status count(seg_ctx *x, size_t s, size_t e, int *n) {
    return qtts_tokenizer_count(x->tok, x->txt + s, e - s, n, x->err);
}

static qtts_status emit(seg_ctx *x, size_t s, size_t e, int n_tok, qtts_seg_break brk) {
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 64;
        qtts_segment *v = realloc(x->seg, (size_t)cap * sizeof *v);
        if (!v) return qtts_fail(x->err, QTTS_ERR_OOM, "segments");
        x->seg = v;
        x->cap = cap;
    }
    x->seg[x->n++] = (qtts_segment){s, e, n_tok, x->paragraph, brk};
    return QTTS_OK;
}

/* Cut points of a level inside (s, e): positions where the left piece may end. */
static qtts_status collect_cuts(seg_ctx *x, size_t s, size_t e, int level, size_t **cuts, size_t *n_cuts) {
    const uint8_t *t = (const uint8_t *)x->txt;
    size_t cap = 64, n = 0;
    size_t *c = malloc(cap * sizeof *c);
    if (!c) return qtts_fail(x->err, QTTS_ERR_OOM, "segment cut points");
    utf8proc_int32_t gstate = 0;
    uint32_t prev = 0;
    for (size_t i = s; i < e;) {
        uint32_t cp;
        size_t k = (size_t)u8_decode(t + i, &cp);
        size_t at = 0; /* candidate cut position, 0 = none */
        if (level == LV_CLAUSE && is_clause(cp)) {
            size_t j = i + k;
            while (j < e) { /* closers stay with the clause */
                uint32_t c2;
                size_t k2 = (size_t)u8_decode(t + j, &c2);
                if (!is_closer(c2)) break;
                j += k2;
            }
            /* ASCII clause marks only before a space (1,000 and 10:30 are not clauses) */
            if (j < e && (cp >= 0x80 || t[j] == ' ')) at = j;
        } else if (level == LV_WORD && cp == ' ' && i > s) {
            at = i;
        } else if (level == LV_GRAPHEME && i > s) {
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)cp, &gstate)) at = i;
        } else if (level == LV_CODEPOINT && i > s) {
            at = i;
        }
        if (level == LV_GRAPHEME && i == s) utf8proc_grapheme_break_stateful(0, (utf8proc_int32_t)cp, &gstate);
        prev = cp;
        if (at > s && at < e && (n == 0 || c[n - 1] != at)) {
            if (n == cap) {
                size_t *d = realloc(c, (cap *= 2) * sizeof *c);
                if (!d) {
                    free(c);
                    return qtts_fail(x->err, QTTS_ERR_OOM, "segment cut points");
                }
                c = d;
            }
            c[n++] = at;
        }
        i += k;
    }
    *cuts = c;
    *n_cuts = n;
    return QTTS_OK;
}

static const qtts_seg_break level_break[] = {QTTS_SEG_BREAK_CLAUSE, QTTS_SEG_BREAK_WORD, QTTS_SEG_BREAK_HARD,
                                             QTTS_SEG_BREAK_HARD};

/* Emit [s, e) (trimmed, non-empty) as one or more segments within max_tokens; the last one
 * gets brk. */
static qtts_status pack(seg_ctx *x, size_t s, size_t e, int level, qtts_seg_break brk) {
    qtts_status st = QTTS_OK;
    size_t *cuts = NULL, n_cuts = 0;
    int n;
    QTTS_TRY(count(x, s, e, &n));
    if (n <= x->max_tokens) return emit(x, s, e, n, brk);
    QTTS_CHECK(level <= LV_CODEPOINT, x->err, QTTS_ERR_INTERNAL,
               "segment: one code point at %zu gives %d tokens > max %d", s, n, x->max_tokens);
    QTTS_TRY(collect_cuts(x, s, e, level, &cuts, &n_cuts));
    size_t start = s, ci = 0;
    while (start < e) {
        size_t a = start, b = e;
        trim(x->txt, &a, &b);
        if (a >= b) break;
        start = a;
        QTTS_TRY(count(x, start, e, &n));
        if (n <= x->max_tokens) {
            QTTS_TRY(emit(x, start, e, n, brk));
            break;
        }
        while (ci < n_cuts && cuts[ci] <= start) ci++;
        /* largest cut whose left piece fits: binary search on the (near-monotone) count */
        size_t lo = ci, hi = n_cuts, best = SIZE_MAX;
        int best_n = 0;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2, pa = start, pb = cuts[mid];
            trim(x->txt, &pa, &pb);
            int m = 0;
            if (pa < pb) QTTS_TRY(count(x, pa, pb, &m));
            if (pa < pb && m <= x->max_tokens) {
                best = mid;
                best_n = m;
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (best != SIZE_MAX) {
            size_t pa = start, pb = cuts[best];
            trim(x->txt, &pa, &pb);
            QTTS_TRY(emit(x, pa, pb, best_n, level_break[level]));
            start = cuts[best];
        } else { /* the first piece alone is too long: the next level splits it */
            size_t end = ci < n_cuts ? cuts[ci] : e, pa = start, pb = end;
            trim(x->txt, &pa, &pb);
            if (pa < pb) QTTS_TRY(pack(x, pa, pb, level + 1, end == e ? brk : level_break[level]));
            start = end;
        }
    }
cleanup:
    free(cuts);
    return st;
}

qtts_segment_params qtts_segment_default_params(void) { return (qtts_segment_params){.max_tokens = 150}; }

qtts_status qtts_segment_text(const qtts_tokenizer *tok, const char *text, size_t len, const qtts_segment_params *p,
                              qtts_segmentation *out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    seg_ctx x = {.tok = tok, .err = err};
    memset(out, 0, sizeof *out);
    QTTS_CHECK(tok && p, err, QTTS_ERR_INVALID_ARG, "segment: NULL argument");
    QTTS_CHECK(p->max_tokens >= 8, err, QTTS_ERR_INVALID_ARG, "segment: max_tokens %d < 8", p->max_tokens);
    x.max_tokens = p->max_tokens;
    QTTS_TRY(qtts_segment_normalize(text, len, &out->text, &out->len, err));
    x.txt = out->text;
    const char *t = out->text;
    size_t L = out->len;
    for (size_t ps = 0; ps < L;) {
        const char *brk = strstr(t + ps, "\n\n");
        size_t pe = brk ? (size_t)(brk - t) : L;
        qtts_seg_break par_brk = pe == L ? QTTS_SEG_BREAK_END : QTTS_SEG_BREAK_PARAGRAPH;
        size_t ss = ps; /* current sentence start */
        for (size_t i = ps; i < pe;) {
            uint32_t c;
            size_t k = (size_t)u8_decode((const uint8_t *)t + i, &c);
            if (!is_terminator(c)) {
                i += k;
                continue;
            }
            size_t j = i + k;
            while (j < pe) { /* the rest of the terminator run, then closers */
                uint32_t c2;
                size_t k2 = (size_t)u8_decode((const uint8_t *)t + j, &c2);
                if (!is_terminator(c2) && !is_closer(c2)) break;
                j += k2;
            }
            if (j < pe && sentence_ends(t, ps, i, j, pe)) {
                size_t a = ss, b = j;
                trim(t, &a, &b);
                if (a < b) QTTS_TRY(pack(&x, a, b, LV_CLAUSE, QTTS_SEG_BREAK_SENTENCE));
                ss = j;
            }
            i = j;
        }
        size_t a = ss, b = pe;
        trim(t, &a, &b);
        if (a < b) QTTS_TRY(pack(&x, a, b, LV_CLAUSE, par_brk));
        else if (x.n && x.seg[x.n - 1].paragraph == x.paragraph) x.seg[x.n - 1].brk = par_brk;
        x.paragraph++;
        ps = brk ? pe + 2 : L;
    }
    out->seg = x.seg;
    out->n = x.n;
    x.seg = NULL;
cleanup:
    free(x.seg);
    if (st) qtts_segmentation_free(out);
    return st;
}

void qtts_segmentation_free(qtts_segmentation *s) {
    if (!s) return;
    free(s->text);
    free(s->seg);
    memset(s, 0, sizeof *s);
}
