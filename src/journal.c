/* Journal file: a 16-byte header ("QTTSJRNL", u32 version, u32 codebooks) then records, all
 * little-endian:
 *   u32 magic "QJR1" | u32 record length | u64 item hash | u32 segment | u32 frames |
 *   u32 raw bytes (frames*16*2) | u32 payload bytes | zstd(int16 codes [frames][16]) |
 *   u64 FNV-1a 64 over everything before it.
 * Opening scans records from the start and stops at the first that is short, has a wrong magic
 * or length, or fails its checksum: everything from there on is a torn tail from a crash. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define FILE_HDR 16
#define REC_HDR 32
#define REC_TAIL 8
#define MAX_FRAMES (1 << 20)
#define JOURNAL_VERSION 1u

static const unsigned char FILE_MAGIC[8] = {'Q', 'T', 'T', 'S', 'J', 'R', 'N', 'L'};
static const uint32_t REC_MAGIC = 0x31524a51u; /* "QJR1" little-endian */

typedef struct slot {
    uint64_t item_hash;
    uint32_t segment;
    uint32_t used;
    uint64_t off;    /* record start in the file */
    uint32_t frames; /* from the record header: answers qtts_journal_frames without a read */
} slot;

struct qtts_journal {
    int fd;
    char *path;
    char *dir;
    uint64_t valid_end; /* end of the last valid record */
    uint64_t file_size; /* > valid_end while a torn tail is still there */
    slot *tab;          /* open addressing, power-of-two size */
    size_t tab_cap, tab_used;
    qtts_journal_stats stats;
    unsigned char *buf; /* scratch for reading records */
    size_t buf_cap;
};

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t fnv64(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t key_mix(uint64_t h, uint32_t seg) {
    uint64_t x = h ^ ((uint64_t)seg * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static slot *tab_find(const qtts_journal *j, qtts_journal_key k) {
    if (!j->tab_cap) return NULL;
    size_t mask = j->tab_cap - 1;
    for (size_t i = key_mix(k.item_hash, k.segment) & mask;; i = (i + 1) & mask) {
        slot *s = &j->tab[i];
        if (!s->used) return s;
        if (s->item_hash == k.item_hash && s->segment == k.segment) return s;
    }
}

static qtts_status tab_put(qtts_journal *j, qtts_journal_key k, uint64_t off, uint32_t frames, qtts_err *err) {
    if ((j->tab_used + 1) * 2 > j->tab_cap) {
        size_t ncap = j->tab_cap ? j->tab_cap * 2 : 1024;
        slot *old = j->tab;
        size_t ocap = j->tab_cap;
        j->tab = calloc(ncap, sizeof *j->tab);
        if (!j->tab) {
            j->tab = old;
            return qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory for the journal index", j->path);
        }
        j->tab_cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].used) *tab_find(j, (qtts_journal_key){old[i].item_hash, old[i].segment}) = old[i];
        free(old);
    }
    slot *s = tab_find(j, k);
    if (!s->used) j->tab_used++;
    *s = (slot){k.item_hash, k.segment, 1, off, frames};
    return QTTS_OK;
}

static qtts_status read_at(qtts_journal *j, void *dst, size_t n, uint64_t off, qtts_err *err) {
    unsigned char *p = dst;
    while (n) {
        ssize_t r = pread(j->fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return qtts_fail(err, QTTS_ERR_IO, "%s: read failed: %s", j->path, strerror(errno));
        if (r == 0) return qtts_fail(err, QTTS_ERR_FORMAT, "%s: unexpected end of file", j->path);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return QTTS_OK;
}

static qtts_status write_at(qtts_journal *j, const void *src, size_t n, uint64_t off, qtts_err *err) {
    const unsigned char *p = src;
    while (n) {
        ssize_t w = pwrite(j->fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return qtts_fail(err, QTTS_ERR_IO, "%s: write failed: %s", j->path, strerror(w < 0 ? errno : EIO));
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return QTTS_OK;
}

static qtts_status grow_buf(qtts_journal *j, size_t n, qtts_err *err) {
    if (n <= j->buf_cap) return QTTS_OK;
    unsigned char *b = realloc(j->buf, n);
    if (!b) return qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory (%zu bytes)", j->path, n);
    j->buf = b;
    j->buf_cap = n;
    return QTTS_OK;
}

/* Checks one record at off against the file size; fills its key and length. A record that does
 * not verify is reported as invalid (false), not as an error: it is the torn tail. */
static qtts_status check_record(qtts_journal *j, uint64_t off, bool *valid, qtts_journal_key *key, uint64_t *len,
                                uint32_t *n_frames, qtts_err *err) {
    *valid = false;
    if (j->file_size - off < REC_HDR + REC_TAIL) return QTTS_OK;
    unsigned char h[REC_HDR];
    qtts_status st = read_at(j, h, REC_HDR, off, err);
    if (st != QTTS_OK) return st;
    uint32_t magic = get32(h), rec_len = get32(h + 4), frames = get32(h + 20), raw = get32(h + 24), pay = get32(h + 28);
    if (magic != REC_MAGIC || frames > MAX_FRAMES || raw != frames * QTTS_JOURNAL_CODEBOOKS * 2u ||
        pay > ZSTD_compressBound(raw) + 64 || rec_len != (uint64_t)REC_HDR + pay + REC_TAIL ||
        rec_len > j->file_size - off)
        return QTTS_OK;
    st = grow_buf(j, rec_len, err);
    if (st != QTTS_OK) return st;
    st = read_at(j, j->buf, rec_len, off, err);
    if (st != QTTS_OK) return st;
    if (fnv64(j->buf, rec_len - REC_TAIL) != get64(j->buf + rec_len - REC_TAIL)) return QTTS_OK;
    key->item_hash = get64(h + 8);
    key->segment = get32(h + 16);
    *len = rec_len;
    *n_frames = frames;
    *valid = true;
    return QTTS_OK;
}

static qtts_status write_header(qtts_journal *j, qtts_err *err) {
    unsigned char h[FILE_HDR];
    memcpy(h, FILE_MAGIC, 8);
    put32(h + 8, JOURNAL_VERSION);
    put32(h + 12, QTTS_JOURNAL_CODEBOOKS);
    if (ftruncate(j->fd, 0) != 0) return qtts_fail(err, QTTS_ERR_IO, "%s: truncate failed: %s", j->path, strerror(errno));
    qtts_status st = write_at(j, h, FILE_HDR, 0, err);
    if (st != QTTS_OK) return st;
    if (fsync(j->fd) != 0) return qtts_fail(err, QTTS_ERR_IO, "%s: fsync failed: %s", j->path, strerror(errno));
    j->valid_end = j->file_size = FILE_HDR;
    return QTTS_OK;
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

qtts_status qtts_mkdirs(const char *path, bool file, qtts_err *err) {
    size_t n = strlen(path);
    if (n == 0) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "empty folder name");
    char *p = malloc(n + 1);
    if (!p) return qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory", path);
    memcpy(p, path, n + 1);
    if (file) {
        char *slash = strrchr(p, '/');
        if (!slash) {
            free(p);
            return QTTS_OK;
        }
        *slash = 0;
    }
    qtts_status st = QTTS_OK;
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char saved = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                st = qtts_fail(err, QTTS_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
                break;
            }
            *c = saved;
            if (!saved) break;
        }
    }
    if (st == QTTS_OK && *p) {
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) st = qtts_fail(err, QTTS_ERR_IO, "%s: not a folder", p);
    }
    free(p);
    return st;
}

qtts_status qtts_journal_open(const char *dir, qtts_journal **out, qtts_err *err) {
    *out = NULL;
    qtts_status st = QTTS_OK;
    qtts_journal *j = calloc(1, sizeof *j);
    if (!j) return qtts_fail(err, QTTS_ERR_OOM, "journal: out of memory");
    j->fd = -1;
    size_t n = strlen(dir) + sizeof QTTS_JOURNAL_NAME + 2;
    j->path = malloc(n);
    j->dir = strdup(dir);
    QTTS_CHECK(j->path && j->dir, err, QTTS_ERR_OOM, "journal: out of memory");
    snprintf(j->path, n, "%s/%s", dir, QTTS_JOURNAL_NAME);
    QTTS_TRY(qtts_mkdirs(dir, false, err));
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    QTTS_CHECK(j->fd >= 0, err, QTTS_ERR_IO, "%s: cannot open: %s", j->path, strerror(errno));
    QTTS_CHECK(flock(j->fd, LOCK_EX | LOCK_NB) == 0, err, QTTS_ERR_IO,
               "%s: locked by another process (is another render writing to %s?)", j->path, dir);
    struct stat sb;
    QTTS_CHECK(fstat(j->fd, &sb) == 0, err, QTTS_ERR_IO, "%s: stat failed: %s", j->path, strerror(errno));
    j->file_size = (uint64_t)sb.st_size;

    unsigned char h[FILE_HDR] = {0};
    size_t have = j->file_size < FILE_HDR ? (size_t)j->file_size : FILE_HDR;
    if (have) QTTS_TRY(read_at(j, h, have, 0, err));
    unsigned char want[FILE_HDR];
    memcpy(want, FILE_MAGIC, 8);
    put32(want + 8, JOURNAL_VERSION);
    put32(want + 12, QTTS_JOURNAL_CODEBOOKS);
    if (have < FILE_HDR) {
        /* new, or torn while its header was being written: anything else is someone's file */
        QTTS_CHECK(!memcmp(h, want, have), err, QTTS_ERR_FORMAT, "%s: not a qtts journal (refusing to overwrite it)",
                   j->path);
        QTTS_TRY(write_header(j, err));
        sync_dir(dir);
    } else {
        QTTS_CHECK(!memcmp(h, FILE_MAGIC, 8), err, QTTS_ERR_FORMAT, "%s: not a qtts journal (refusing to overwrite it)",
                   j->path);
        QTTS_CHECK(!memcmp(h + 8, want + 8, 8), err, QTTS_ERR_FORMAT,
                   "%s: journal version %u with %u codebooks; this build reads version %u with %u (use --fresh)",
                   j->path, get32(h + 8), get32(h + 12), JOURNAL_VERSION, QTTS_JOURNAL_CODEBOOKS);
        uint64_t off = FILE_HDR;
        for (;;) {
            bool valid;
            qtts_journal_key k;
            uint64_t len;
            uint32_t nf;
            QTTS_TRY(check_record(j, off, &valid, &k, &len, &nf, err));
            if (!valid) break;
            QTTS_TRY(tab_put(j, k, off, nf, err));
            j->stats.records++;
            off += len;
        }
        j->valid_end = off;
        j->stats.recovered = j->stats.records;
        j->stats.dropped_bytes = (int64_t)(j->file_size - off);
    }
    *out = j;
    return QTTS_OK;
cleanup:
    qtts_journal_close(j);
    return st;
}

void qtts_journal_close(qtts_journal *j) {
    if (!j) return;
    if (j->fd >= 0) close(j->fd); /* releases the flock */
    free(j->tab);
    free(j->buf);
    free(j->path);
    free(j->dir);
    free(j);
}

qtts_status qtts_journal_reset(qtts_journal *j, qtts_err *err) {
    qtts_status st = write_header(j, err);
    if (st != QTTS_OK) return st;
    if (j->tab) memset(j->tab, 0, j->tab_cap * sizeof *j->tab);
    j->tab_used = 0;
    j->stats = (qtts_journal_stats){0};
    return QTTS_OK;
}

bool qtts_journal_has(const qtts_journal *j, qtts_journal_key key) {
    const slot *s = tab_find(j, key);
    return s && s->used;
}

int qtts_journal_frames(const qtts_journal *j, qtts_journal_key key) {
    const slot *s = tab_find(j, key);
    return s && s->used ? (int)s->frames : -1;
}

qtts_status qtts_journal_lookup(qtts_journal *j, qtts_journal_key key, int32_t **codes, int *frames, bool *found,
                                qtts_err *err) {
    *codes = NULL;
    *frames = 0;
    *found = false;
    slot *s = tab_find(j, key);
    if (!s || !s->used) return QTTS_OK;
    bool valid;
    qtts_journal_key k;
    uint64_t len;
    uint32_t nf_hdr;
    qtts_status st = check_record(j, s->off, &valid, &k, &len, &nf_hdr, err);
    if (st != QTTS_OK) return st;
    if (!valid || k.item_hash != key.item_hash || k.segment != key.segment)
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: record at offset %llu changed on disk since it was indexed", j->path,
                         (unsigned long long)s->off);
    uint32_t nf = get32(j->buf + 20), raw = get32(j->buf + 24), pay = get32(j->buf + 28);
    if (nf == 0) {
        *found = true;
        return QTTS_OK;
    }
    int16_t *c16 = malloc(raw);
    int32_t *c32 = malloc((size_t)nf * QTTS_JOURNAL_CODEBOOKS * sizeof *c32);
    if (!c16 || !c32) {
        free(c16);
        free(c32);
        return qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory for %u frames", j->path, nf);
    }
    size_t got = ZSTD_decompress(c16, raw, j->buf + REC_HDR, pay);
    if (ZSTD_isError(got) || got != raw) {
        free(c16);
        free(c32);
        return qtts_fail(err, QTTS_ERR_FORMAT, "%s: record at offset %llu: codes do not decompress (%s)", j->path,
                         (unsigned long long)s->off, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
    }
    const unsigned char *b = (const unsigned char *)c16;
    for (size_t i = 0; i < (size_t)nf * QTTS_JOURNAL_CODEBOOKS; i++)
        c32[i] = (int16_t)(uint16_t)(b[2 * i] | (b[2 * i + 1] << 8));
    free(c16);
    *codes = c32;
    *frames = (int)nf;
    *found = true;
    return QTTS_OK;
}

qtts_status qtts_journal_append(qtts_journal *j, qtts_journal_key key, const int32_t *codes, int frames, qtts_err *err) {
    if (frames < 0 || frames > MAX_FRAMES || (frames > 0 && !codes))
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: cannot record %d frames", j->path, frames);
    size_t nv = (size_t)frames * QTTS_JOURNAL_CODEBOOKS, raw = nv * 2;
    unsigned char *le = malloc(raw ? raw : 1);
    size_t bound = ZSTD_compressBound(raw);
    unsigned char *rec = malloc(REC_HDR + bound + REC_TAIL);
    qtts_status st = QTTS_OK;
    QTTS_CHECK(le && rec, err, QTTS_ERR_OOM, "%s: out of memory for %d frames", j->path, frames);
    for (size_t i = 0; i < nv; i++) {
        QTTS_CHECK(codes[i] >= 0 && codes[i] <= 32767, err, QTTS_ERR_INVALID_ARG,
                   "%s: code %d at frame %zu, codebook %zu is out of range", j->path, (int)codes[i],
                   i / QTTS_JOURNAL_CODEBOOKS, i % QTTS_JOURNAL_CODEBOOKS);
        le[2 * i] = (unsigned char)(codes[i] & 0xff);
        le[2 * i + 1] = (unsigned char)(codes[i] >> 8);
    }
    size_t pay = ZSTD_compress(rec + REC_HDR, bound, le, raw, 3);
    QTTS_CHECK(!ZSTD_isError(pay), err, QTTS_ERR_INTERNAL, "%s: zstd: %s", j->path, ZSTD_getErrorName(pay));
    uint32_t len = (uint32_t)(REC_HDR + pay + REC_TAIL);
    put32(rec, REC_MAGIC);
    put32(rec + 4, len);
    put64(rec + 8, key.item_hash);
    put32(rec + 16, key.segment);
    put32(rec + 20, (uint32_t)frames);
    put32(rec + 24, (uint32_t)raw);
    put32(rec + 28, (uint32_t)pay);
    put64(rec + REC_HDR + pay, fnv64(rec, REC_HDR + pay));

    if (j->file_size > j->valid_end) { /* cut the torn tail left by a crash */
        QTTS_CHECK(ftruncate(j->fd, (off_t)j->valid_end) == 0, err, QTTS_ERR_IO, "%s: truncate failed: %s", j->path,
                   strerror(errno));
        j->file_size = j->valid_end;
    }
    st = write_at(j, rec, len, j->valid_end, err);
    if (st == QTTS_OK && fsync(j->fd) != 0)
        st = qtts_fail(err, QTTS_ERR_IO, "%s: fsync failed: %s", j->path, strerror(errno));
    if (st != QTTS_OK) {
        /* leave no partial record behind; if even this fails, the next open drops the tail */
        if (ftruncate(j->fd, (off_t)j->valid_end) != 0) j->file_size = j->valid_end + len;
        goto cleanup;
    }
    QTTS_TRY(tab_put(j, key, j->valid_end, (uint32_t)frames, err));
    j->valid_end += len;
    j->file_size = j->valid_end;
    j->stats.records++;
cleanup:
    free(le);
    free(rec);
    return st;
}

qtts_journal_stats qtts_journal_get_stats(const qtts_journal *j) { return j->stats; }

qtts_status qtts_output_tmp_path(const char *final_path, char *tmp, size_t n, qtts_err *err) {
    int w = snprintf(tmp, n, "%s.tmp.%ld", final_path, (long)getpid());
    if (w < 0 || (size_t)w >= n) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: path too long", final_path);
    return QTTS_OK;
}

qtts_status qtts_output_commit(const char *tmp_path, const char *final_path, qtts_err *err) {
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qtts_fail(err, QTTS_ERR_IO, "%s: cannot open: %s", tmp_path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) return qtts_fail(err, QTTS_ERR_IO, "%s: fsync failed: %s", tmp_path, strerror(e));
    if (rename(tmp_path, final_path) != 0)
        return qtts_fail(err, QTTS_ERR_IO, "%s: rename to %s failed: %s", tmp_path, final_path, strerror(errno));
    const char *slash = strrchr(final_path, '/');
    if (!slash) {
        sync_dir(".");
    } else {
        size_t dn = (size_t)(slash - final_path);
        char *d = malloc(dn + 2);
        if (d) {
            memcpy(d, final_path, dn ? dn : 1);
            d[dn ? dn : 1] = 0;
            sync_dir(d);
            free(d);
        }
    }
    return QTTS_OK;
}
