/* Render journal: an append-only file in the output folder recording each finished utterance's
 * codes before any audio is assembled, so an interrupted render resumes without regenerating.
 * Records are keyed by content (item codes_hash + segment index): a changed item gets new keys
 * and is regenerated, records of unchanged utterances are reused. A crash mid-append leaves a
 * torn tail that the next open detects (length, magic, checksum) and the next append cuts off.
 * Not thread-safe: one owner (the scheduler) appends; an flock keeps a second process out. */
#ifndef QTTS_JOURNAL_H
#define QTTS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define QTTS_JOURNAL_NAME ".qtts-journal"
#define QTTS_JOURNAL_CODEBOOKS 16

typedef struct qtts_journal_key {
    uint64_t item_hash; /* qtts_job_item.codes_hash */
    uint32_t segment;   /* utterance index within the item */
} qtts_journal_key;

typedef struct qtts_journal_stats {
    int64_t records;        /* valid records in the file (appends included) */
    int64_t recovered;      /* valid records found when the file was opened */
    int64_t dropped_bytes;  /* bytes of torn or corrupt tail found at open (cut at the next append) */
} qtts_journal_stats;

typedef struct qtts_journal qtts_journal;

/* Open (creating the folder and the file when missing) dir/.qtts-journal, scan it and index the
 * valid records. A file that is not a journal is QTTS_ERR_FORMAT (never overwritten); a journal
 * held by another process is QTTS_ERR_IO. */
qtts_status qtts_journal_open(const char *dir, qtts_journal **out, qtts_err *err);
void qtts_journal_close(qtts_journal *j);
/* Forget every record (`--fresh`): the file is truncated to its header and synced. */
qtts_status qtts_journal_reset(qtts_journal *j, qtts_err *err);

/* Codes of a recorded utterance, int32 [frames][16] in a new heap buffer (caller frees; NULL when
 * frames is 0); *found false and nothing allocated when absent. A record that no longer verifies
 * on disk is QTTS_ERR_FORMAT. When a key was appended twice the last record wins. */
qtts_status qtts_journal_lookup(qtts_journal *j, qtts_journal_key key, int32_t **codes, int *frames, bool *found,
                                qtts_err *err);
bool qtts_journal_has(const qtts_journal *j, qtts_journal_key key);
/* Frames of a recorded utterance (from the index: no read), -1 when absent. */
int qtts_journal_frames(const qtts_journal *j, qtts_journal_key key);
/* Record codes [frames][16] (each in [0, 32767]); one write() and an fsync before returning. */
qtts_status qtts_journal_append(qtts_journal *j, qtts_journal_key key, const int32_t *codes, int frames, qtts_err *err);
qtts_journal_stats qtts_journal_get_stats(const qtts_journal *j);

/* Atomic audio outputs: write to qtts_output_tmp_path(final), then qtts_output_commit renames it
 * over final after an fsync, and syncs the folder, so a reader sees the old file or the whole
 * new one. The temporary name is "<final>.tmp.<pid>": never a job output name, which always ends
 * in its audio extension. */
qtts_status qtts_output_tmp_path(const char *final_path, char *tmp, size_t n, qtts_err *err);
qtts_status qtts_output_commit(const char *tmp_path, const char *final_path, qtts_err *err);
/* mkdir -p for the folder part of path (the last component is a file name when file is true). */
qtts_status qtts_mkdirs(const char *path, bool file, qtts_err *err);

#endif
