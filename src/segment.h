/* Long-text segmentation for book rendering: whitespace normalisation, then utterances at
 * sentence ends (not at abbreviations, decimals or initials), each at most max_tokens
 * Qwen2 tokens, falling back to clause punctuation, then spaces, then grapheme (CJK) cuts.
 * Segments are byte ranges of the normalised text; paragraph breaks are kept as metadata. */
#ifndef QTTS_SEGMENT_H
#define QTTS_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "tokenizer.h"
#include "util.h"

/* What ends a segment: drives the pause the renderer inserts after it. */
typedef enum qtts_seg_break {
    QTTS_SEG_BREAK_END = 0,    /* last segment of the text */
    QTTS_SEG_BREAK_PARAGRAPH,  /* a blank line follows */
    QTTS_SEG_BREAK_SENTENCE,   /* a sentence end */
    QTTS_SEG_BREAK_CLAUSE,     /* split at , ; : — etc. to respect max_tokens */
    QTTS_SEG_BREAK_WORD,       /* split at a space to respect max_tokens */
    QTTS_SEG_BREAK_HARD,       /* split between characters (CJK without punctuation) */
} qtts_seg_break;

typedef struct qtts_segment {
    size_t start, end;        /* [start, end) in the normalised text; never empty, never
                                 starts or ends with whitespace */
    int n_tokens;             /* Qwen2 tokens of exactly that range */
    int paragraph;            /* 0-based paragraph index */
    qtts_seg_break brk;       /* what follows */
} qtts_segment;

typedef struct qtts_segment_params {
    int max_tokens;           /* >= 8 (one code point is at most 4 byte tokens) */
} qtts_segment_params;

typedef struct qtts_segmentation {
    char *text;               /* normalised text, NUL-terminated */
    size_t len;
    int n;
    qtts_segment *seg;        /* [n] in text order; between two segments only a space,
                                 "\n\n" (paragraph) or nothing (hard split) */
} qtts_segmentation;

qtts_segment_params qtts_segment_default_params(void); /* max_tokens 150 */

/* Whitespace normalisation alone: CRLF/CR → LF; a whitespace run holding two or more line
 * breaks → "\n\n" (paragraph), any other run → one space; none at the ends. Input must be
 * valid UTF-8 (QTTS_ERR_TEXT naming the byte offset otherwise). */
qtts_status qtts_segment_normalize(const char *text, size_t len, char **out, size_t *out_len, qtts_err *err);

/* Normalise and segment. Text with no visible characters gives n == 0. */
qtts_status qtts_segment_text(const qtts_tokenizer *tok, const char *text, size_t len, const qtts_segment_params *p,
                              qtts_segmentation *out, qtts_err *err);
void qtts_segmentation_free(qtts_segmentation *s);

#endif
