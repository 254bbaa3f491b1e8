/* Backend "cpu-replay": the CPU backend with the op-replay semantics of the
 * CUDA backend's graphs (backend.h: graph_begin / graph_end), so that CPU
 * tests check what model code does inside a recorded op sequence.
 *
 * As on the GPU, a key runs plainly the first time it is seen, is recorded
 * the second time (the ops are stored, not run; graph_end then runs the
 * recording) and is replayed from then on. A recording keeps what a CUDA
 * graph keeps: every pointer and scalar argument as it was at recording
 * time, weights and KV cache descriptors by value, and a batch's host
 * mirrors (h_slot, h_pos) as they were then. Only memory that the ops read
 * through pointers is live at replay. So model code that changes a host
 * argument between replays of a key, or relies on host mirrors in a
 * recording, computes stale results here exactly as it would on the GPU, and
 * the CPU goldens catch it.
 *
 * Misuse that the GPU reports (or silently gets wrong) is recorded, first
 * one wins, and reported by qtts_backend_check:
 *   - a transfer, wait, allocation or free inside a recording (a stream
 *     capture cannot contain them);
 *   - a batch in a recording without ctx_bound (the GPU sizes attention by
 *     it there, not by the host mirrors);
 *   - any batch, recorded or not, with a position at or past its ctx_bound.
 * Results are the CPU backend's, bit for bit, wherever the model code keeps
 * the contract. */
#include "backend_replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    R_COPY, R_EMBED, R_MATMUL, R_RMSNORM, R_ADD, R_SWIGLU, R_SILU, R_QK_NORM_ROPE, R_KV_STORE, R_ATTENTION, R_SAMPLE,
    R_GATHER, R_SCATTER, R_SCALE_ROWS, R_CONV1D, R_CONV_T, R_SNAKE, R_TRANSPOSE, R_LAYERNORM, R_GELU, R_CLAMP,
    R_EMBED_SUM, R_NORM_MATMUL, R_NORM_SWIGLU, R_MATMUL_ADD, R_QK_NORM_ROPE_STORE, R_QK_NORM_ROPE_ATTEND,
};

/* One recorded op: its arguments by value. */
typedef struct {
    int op;
    void *p[4];           /* activation / index pointers, in the op's argument order */
    qtts_tensor t[4];     /* weight arguments by value */
    bool has_t[4];        /* false: the argument was NULL */
    const qtts_tensor *tabs[QTTS_EMBED_SUM_MAX]; /* embed_sum's table list (the tensors are the model's) */
    qtts_kv_cache kv;
    qtts_batch b;         /* h_slot / h_pos point at hs / hp */
    int32_t *hs, *hp;     /* host mirrors as they were when recorded */
    int64_t i[7];
    float f[3];
} r_entry;
/* norm_matmul keeps its norm and weights in t[0..3], x and its outputs in p[0..3] */
_Static_assert(QTTS_NORM_MATMUL_MAX == 3, "r_entry holds norm_matmul's arguments for three weights");

typedef struct {
    uint64_t key;
    bool recorded;        /* false: seen once, record next time */
    r_entry *e;
    int n, cap;
} r_tape;

typedef struct {
    qtts_backend inner;
    r_tape *tapes;
    int n_tapes, cap_tapes;
    r_tape *recording;    /* the tape being recorded, or NULL */
    qtts_replay_stats stats;
    bool failed;
    char what[512];
} replay_impl;

static replay_impl *R(qtts_backend *be) { return (replay_impl *)be->impl; }
static qtts_backend *in(qtts_backend *be) { return &R(be)->inner; }

__attribute__((format(printf, 2, 3))) static void misuse(replay_impl *r, const char *fmt, ...) {
    if (r->failed) return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof r->what, fmt, ap);
    va_end(ap);
}

/* Ops a stream capture cannot contain. */
static bool forbidden(qtts_backend *be, const char *op) {
    replay_impl *r = R(be);
    if (!r->recording) return false;
    misuse(r, "%s inside a recorded op sequence (key %llu): recordings cannot transfer, wait, allocate or free", op,
           (unsigned long long)r->recording->key);
    return true;
}

/* A position at or past ctx_bound would be cut off where the GPU sizes the
 * attention by the bound; in a recording, the bound is required. */
static void check_batch(qtts_backend *be, const qtts_batch *b, const char *op) {
    replay_impl *r = R(be);
    if (r->recording && b->ctx_bound <= 0) {
        misuse(r, "%s: a batch inside a recorded op sequence (key %llu) needs ctx_bound", op, (unsigned long long)r->recording->key);
        return;
    }
    for (int i = 0; b->ctx_bound > 0 && i < b->n; i++)
        if (b->pos[i] >= b->ctx_bound) {
            misuse(r, "%s: token %d at position %d is outside the batch's ctx_bound %d", op, i, b->pos[i], b->ctx_bound);
            return;
        }
}

/* The entry to fill when recording (the op is then not run), else NULL. */
static r_entry *record(qtts_backend *be, int op) {
    replay_impl *r = R(be);
    r_tape *t = r->recording;
    if (!t) return NULL;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        r_entry *ne = realloc(t->e, (size_t)cap * sizeof *ne);
        if (!ne) {
            misuse(r, "recording an op sequence (key %llu): out of memory", (unsigned long long)t->key);
            return NULL;
        }
        t->e = ne;
        t->cap = cap;
    }
    r_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    e->op = op;
    return e;
}

static void keep_tensor(r_entry *e, int k, const qtts_tensor *t) {
    e->has_t[k] = t != NULL;
    if (t) e->t[k] = *t;
}
static const qtts_tensor *T_(r_entry *e, int k) { return e->has_t[k] ? &e->t[k] : NULL; }

static bool keep_batch(qtts_backend *be, r_entry *e, const qtts_batch *b) {
    e->b = *b;
    size_t bytes = (size_t)(b->n > 0 ? b->n : 1) * sizeof(int32_t);
    e->hs = b->h_slot ? malloc(bytes) : NULL;
    e->hp = b->h_pos ? malloc(bytes) : NULL;
    if ((b->h_slot && !e->hs) || (b->h_pos && !e->hp)) {
        misuse(R(be), "recording a batch (key %llu): out of memory", (unsigned long long)R(be)->recording->key);
        return false;
    }
    if (e->hs) memcpy(e->hs, b->h_slot, (size_t)b->n * sizeof(int32_t));
    if (e->hp) memcpy(e->hp, b->h_pos, (size_t)b->n * sizeof(int32_t));
    e->b.h_slot = e->hs;
    e->b.h_pos = e->hp;
    return true;
}

/* ---------------- memory: passed through, never recorded ---------------- */

static void *r_alloc(qtts_backend *be, size_t bytes) {
    if (forbidden(be, "alloc")) return NULL;
    return in(be)->ops->alloc(in(be), bytes);
}
static void r_free(qtts_backend *be, void *p) {
    if (!forbidden(be, "free")) in(be)->ops->free(in(be), p);
}
static void r_to_device(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    if (!forbidden(be, "to_device")) in(be)->ops->to_device(in(be), dst, src, bytes);
}
static void r_to_host(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    if (!forbidden(be, "to_host")) in(be)->ops->to_host(in(be), dst, src, bytes);
}
static void r_sync(qtts_backend *be) {
    if (!forbidden(be, "sync")) in(be)->ops->sync(in(be));
}
static qtts_status r_upload(qtts_backend *be, const qtts_st_tensor *src, qtts_tensor *dst, qtts_err *err) {
    if (forbidden(be, "upload")) return qtts_fail(err, QTTS_ERR_INTERNAL, "upload inside a recorded op sequence");
    return in(be)->ops->upload(in(be), src, dst, err);
}
static size_t r_storage_bytes(qtts_backend *be, const qtts_st_tensor *src) { return in(be)->ops->storage_bytes(in(be), src); }
static qtts_status r_upload_at(qtts_backend *be, const qtts_st_tensor *src, void *mem, qtts_tensor *dst, qtts_err *err) {
    if (forbidden(be, "upload")) return qtts_fail(err, QTTS_ERR_INTERNAL, "upload inside a recorded op sequence");
    return in(be)->ops->upload_at(in(be), src, mem, dst, err);
}
static void r_release(qtts_backend *be, qtts_tensor *t) {
    if (!forbidden(be, "release")) in(be)->ops->release(in(be), t);
}

/* ---------------- compute ops: recorded, or run ---------------- */

static void r_copy(qtts_backend *be, void *dst, const void *src, size_t bytes) {
    r_entry *e = record(be, R_COPY);
    if (!e) {
        in(be)->ops->copy(in(be), dst, src, bytes);
        return;
    }
    e->p[0] = dst, e->p[1] = (void *)src, e->i[0] = (int64_t)bytes;
}

static void r_embed(qtts_backend *be, const qtts_tensor *table, const int32_t *ids, int n, float *out) {
    r_entry *e = record(be, R_EMBED);
    if (!e) {
        in(be)->ops->embed(in(be), table, ids, n, out);
        return;
    }
    keep_tensor(e, 0, table);
    e->p[0] = (void *)ids, e->p[1] = out, e->i[0] = n;
}

static void r_embed_sum(qtts_backend *be, const qtts_tensor *const *tables, int n_tables, const int32_t *ids, int stride, int n,
                        float *out) {
    r_entry *e = record(be, R_EMBED_SUM);
    if (!e) {
        in(be)->ops->embed_sum(in(be), tables, n_tables, ids, stride, n, out);
        return;
    }
    for (int t = 0; t < n_tables && t < QTTS_EMBED_SUM_MAX; t++) e->tabs[t] = tables[t];
    e->p[0] = (void *)ids, e->p[1] = out, e->i[0] = n_tables, e->i[1] = stride, e->i[2] = n;
}

static void r_norm_matmul(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, int nw, const qtts_tensor *const *w,
                          float *const *y, int n) {
    r_entry *e = record(be, R_NORM_MATMUL);
    if (!e) {
        in(be)->ops->norm_matmul(in(be), x, norm, eps, nw, w, y, n);
        return;
    }
    keep_tensor(e, 0, norm);
    for (int j = 0; j < nw && j < QTTS_NORM_MATMUL_MAX; j++) {
        keep_tensor(e, 1 + j, w[j]);
        e->p[1 + j] = y[j];
    }
    e->p[0] = (void *)x, e->f[0] = eps, e->i[0] = nw, e->i[1] = n;
}

static void r_norm_swiglu(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, const qtts_tensor *w, float *y, int n) {
    r_entry *e = record(be, R_NORM_SWIGLU);
    if (!e) {
        in(be)->ops->norm_swiglu(in(be), x, norm, eps, w, y, n);
        return;
    }
    keep_tensor(e, 0, norm);
    keep_tensor(e, 1, w);
    e->p[0] = (void *)x, e->p[1] = y, e->f[0] = eps, e->i[0] = n;
}

static void r_matmul_add(qtts_backend *be, const float *x, const qtts_tensor *w, float *y, int n) {
    r_entry *e = record(be, R_MATMUL_ADD);
    if (!e) {
        in(be)->ops->matmul_add(in(be), x, w, y, n);
        return;
    }
    keep_tensor(e, 0, w);
    e->p[0] = (void *)x, e->p[1] = y, e->i[0] = n;
}

static void r_qk_norm_rope_store(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                 float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *c, int layer) {
    check_batch(be, b, "qk_norm_rope_store");
    r_entry *e = record(be, R_QK_NORM_ROPE_STORE);
    if (!e) {
        in(be)->ops->qk_norm_rope_store(in(be), q, k, v, qn, kn, eps, b, n_heads, n_kv, hd, theta, c, layer);
        return;
    }
    keep_tensor(e, 0, qn);
    keep_tensor(e, 1, kn);
    keep_batch(be, e, b);
    e->kv = *c;
    e->p[0] = q, e->p[1] = k, e->p[2] = (void *)v, e->f[0] = eps, e->f[1] = theta;
    e->i[0] = n_heads, e->i[1] = n_kv, e->i[2] = hd, e->i[3] = layer;
}

/* The contract of one_per_slot: tokens that share a slot share a position
 * (identical padding rows), so none attends to what another writes. */
static void check_one_per_slot(qtts_backend *be, const qtts_batch *b, const char *op) {
    if (!b->one_per_slot) {
        misuse(R(be), "%s: the batch is not marked one_per_slot", op);
        return;
    }
    for (int i = 0; i < b->n; i++)
        for (int j = 0; j < i; j++)
            if (b->slot[i] == b->slot[j] && b->pos[i] != b->pos[j]) {
                misuse(R(be), "%s: one_per_slot batch has slot %d at positions %d and %d", op, b->slot[i], b->pos[j], b->pos[i]);
                return;
            }
}

static void r_qk_norm_rope_attend(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                  float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *c, int layer,
                                  float scale, float *out) {
    check_batch(be, b, "qk_norm_rope_attend");
    check_one_per_slot(be, b, "qk_norm_rope_attend");
    r_entry *e = record(be, R_QK_NORM_ROPE_ATTEND);
    if (!e) {
        in(be)->ops->qk_norm_rope_attend(in(be), q, k, v, qn, kn, eps, b, n_heads, n_kv, hd, theta, c, layer, scale, out);
        return;
    }
    keep_tensor(e, 0, qn);
    keep_tensor(e, 1, kn);
    keep_batch(be, e, b);
    e->kv = *c;
    e->p[0] = q, e->p[1] = k, e->p[2] = (void *)v, e->p[3] = out, e->f[0] = eps, e->f[1] = theta, e->f[2] = scale;
    e->i[0] = n_heads, e->i[1] = n_kv, e->i[2] = hd, e->i[3] = layer;
}

static void r_matmul(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int n) {
    r_entry *e = record(be, R_MATMUL);
    if (!e) {
        in(be)->ops->matmul(in(be), x, w, bias, y, n);
        return;
    }
    keep_tensor(e, 0, w);
    keep_tensor(e, 1, bias);
    e->p[0] = (void *)x, e->p[1] = y, e->i[0] = n;
}

static void r_rmsnorm(qtts_backend *be, const float *x, const qtts_tensor *w, float eps, float *y, int n, int dim) {
    r_entry *e = record(be, R_RMSNORM);
    if (!e) {
        in(be)->ops->rmsnorm(in(be), x, w, eps, y, n, dim);
        return;
    }
    keep_tensor(e, 0, w);
    e->p[0] = (void *)x, e->p[1] = y, e->f[0] = eps, e->i[0] = n, e->i[1] = dim;
}

static void r_add(qtts_backend *be, const float *a, const float *b, float *y, int64_t len) {
    r_entry *e = record(be, R_ADD);
    if (!e) {
        in(be)->ops->add(in(be), a, b, y, len);
        return;
    }
    e->p[0] = (void *)a, e->p[1] = (void *)b, e->p[2] = y, e->i[0] = len;
}

static void r_swiglu(qtts_backend *be, const float *gu, float *y, int n, int inter) {
    r_entry *e = record(be, R_SWIGLU);
    if (!e) {
        in(be)->ops->swiglu(in(be), gu, y, n, inter);
        return;
    }
    e->p[0] = (void *)gu, e->p[1] = y, e->i[0] = n, e->i[1] = inter;
}

static void r_silu(qtts_backend *be, float *x, int64_t len) {
    r_entry *e = record(be, R_SILU);
    if (!e) {
        in(be)->ops->silu(in(be), x, len);
        return;
    }
    e->p[0] = x, e->i[0] = len;
}

static void r_qk_norm_rope(qtts_backend *be, float *q, float *k, const qtts_tensor *qn, const qtts_tensor *kn, float eps,
                           const qtts_batch *b, int n_heads, int n_kv, int hd, float theta) {
    check_batch(be, b, "qk_norm_rope");
    r_entry *e = record(be, R_QK_NORM_ROPE);
    if (!e) {
        in(be)->ops->qk_norm_rope(in(be), q, k, qn, kn, eps, b, n_heads, n_kv, hd, theta);
        return;
    }
    keep_tensor(e, 0, qn);
    keep_tensor(e, 1, kn);
    keep_batch(be, e, b);
    e->p[0] = q, e->p[1] = k, e->f[0] = eps, e->f[1] = theta, e->i[0] = n_heads, e->i[1] = n_kv, e->i[2] = hd;
}

static void r_kv_store(qtts_backend *be, qtts_kv_cache *c, int layer, const float *k, const float *v, const qtts_batch *b) {
    check_batch(be, b, "kv_store");
    r_entry *e = record(be, R_KV_STORE);
    if (!e) {
        in(be)->ops->kv_store(in(be), c, layer, k, v, b);
        return;
    }
    e->kv = *c;
    keep_batch(be, e, b);
    e->p[0] = (void *)k, e->p[1] = (void *)v, e->i[0] = layer;
}

static void r_attention(qtts_backend *be, const float *q, const qtts_kv_cache *c, int layer, const qtts_batch *b, int n_heads,
                        float scale, int window, float *out) {
    check_batch(be, b, "attention");
    r_entry *e = record(be, R_ATTENTION);
    if (!e) {
        in(be)->ops->attention(in(be), q, c, layer, b, n_heads, scale, window, out);
        return;
    }
    e->kv = *c;
    keep_batch(be, e, b);
    e->p[0] = (void *)q, e->p[1] = out, e->i[0] = layer, e->i[1] = n_heads, e->i[2] = window, e->f[0] = scale;
}

static void r_sample(qtts_backend *be, float *logits, int n, int V, const qtts_sample_row *rows, uint8_t *seen, int32_t *tokens) {
    r_entry *e = record(be, R_SAMPLE);
    if (!e) {
        in(be)->ops->sample(in(be), logits, n, V, rows, seen, tokens);
        return;
    }
    e->p[0] = logits, e->p[1] = (void *)rows, e->p[2] = seen, e->p[3] = tokens, e->i[0] = n, e->i[1] = V;
}

static void r_gather_rows(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst) {
    r_entry *e = record(be, R_GATHER);
    if (!e) {
        in(be)->ops->gather_rows(in(be), src, idx, n, dim, dst);
        return;
    }
    e->p[0] = (void *)src, e->p[1] = (void *)idx, e->p[2] = dst, e->i[0] = n, e->i[1] = dim;
}

static void r_scatter_rows(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst) {
    r_entry *e = record(be, R_SCATTER);
    if (!e) {
        in(be)->ops->scatter_rows(in(be), src, idx, n, dim, dst);
        return;
    }
    e->p[0] = (void *)src, e->p[1] = (void *)idx, e->p[2] = dst, e->i[0] = n, e->i[1] = dim;
}

static void r_scale_rows(qtts_backend *be, const float *x, const qtts_tensor *s, float *y, int n, int dim) {
    r_entry *e = record(be, R_SCALE_ROWS);
    if (!e) {
        in(be)->ops->scale_rows(in(be), x, s, y, n, dim);
        return;
    }
    keep_tensor(e, 0, s);
    e->p[0] = (void *)x, e->p[1] = y, e->i[0] = n, e->i[1] = dim;
}

static void r_conv1d(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B, int cin, int cout,
                     int T, int dilation, int groups) {
    r_entry *e = record(be, R_CONV1D);
    if (!e) {
        in(be)->ops->conv1d(in(be), x, w, bias, y, B, cin, cout, T, dilation, groups);
        return;
    }
    keep_tensor(e, 0, w);
    keep_tensor(e, 1, bias);
    e->p[0] = (void *)x, e->p[1] = y;
    e->i[0] = B, e->i[1] = cin, e->i[2] = cout, e->i[3] = T, e->i[4] = dilation, e->i[5] = groups;
}

static void r_conv_transpose1d(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B, int cin,
                               int cout, int T, int stride) {
    r_entry *e = record(be, R_CONV_T);
    if (!e) {
        in(be)->ops->conv_transpose1d(in(be), x, w, bias, y, B, cin, cout, T, stride);
        return;
    }
    keep_tensor(e, 0, w);
    keep_tensor(e, 1, bias);
    e->p[0] = (void *)x, e->p[1] = y;
    e->i[0] = B, e->i[1] = cin, e->i[2] = cout, e->i[3] = T, e->i[4] = stride;
}

static void r_snake(qtts_backend *be, const float *x, const qtts_tensor *alpha, const qtts_tensor *beta, float *y, int B, int C, int T) {
    r_entry *e = record(be, R_SNAKE);
    if (!e) {
        in(be)->ops->snake(in(be), x, alpha, beta, y, B, C, T);
        return;
    }
    keep_tensor(e, 0, alpha);
    keep_tensor(e, 1, beta);
    e->p[0] = (void *)x, e->p[1] = y, e->i[0] = B, e->i[1] = C, e->i[2] = T;
}

static void r_transpose(qtts_backend *be, const float *x, float *y, int B, int Rr, int S) {
    r_entry *e = record(be, R_TRANSPOSE);
    if (!e) {
        in(be)->ops->transpose(in(be), x, y, B, Rr, S);
        return;
    }
    e->p[0] = (void *)x, e->p[1] = y, e->i[0] = B, e->i[1] = Rr, e->i[2] = S;
}

static void r_layernorm(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *b, float eps, float *y, int n, int dim) {
    r_entry *e = record(be, R_LAYERNORM);
    if (!e) {
        in(be)->ops->layernorm(in(be), x, w, b, eps, y, n, dim);
        return;
    }
    keep_tensor(e, 0, w);
    keep_tensor(e, 1, b);
    e->p[0] = (void *)x, e->p[1] = y, e->f[0] = eps, e->i[0] = n, e->i[1] = dim;
}

static void r_gelu(qtts_backend *be, float *x, int64_t len) {
    r_entry *e = record(be, R_GELU);
    if (!e) {
        in(be)->ops->gelu(in(be), x, len);
        return;
    }
    e->p[0] = x, e->i[0] = len;
}

static void r_clamp(qtts_backend *be, float *x, int64_t len, float lo, float hi) {
    r_entry *e = record(be, R_CLAMP);
    if (!e) {
        in(be)->ops->clamp(in(be), x, len, lo, hi);
        return;
    }
    e->p[0] = x, e->i[0] = len, e->f[0] = lo, e->f[1] = hi;
}

/* Run a recording with its recorded arguments. */
static void replay(qtts_backend *be, r_tape *t) {
    qtts_backend *ib = in(be);
    const qtts_ops *o = ib->ops;
    for (int k = 0; k < t->n; k++) {
        r_entry *e = &t->e[k];
        void **p = e->p;
        int64_t *i = e->i;
        switch (e->op) {
        case R_COPY: o->copy(ib, p[0], p[1], (size_t)i[0]); break;
        case R_EMBED: o->embed(ib, T_(e, 0), p[0], (int)i[0], p[1]); break;
        case R_MATMUL: o->matmul(ib, p[0], T_(e, 0), T_(e, 1), p[1], (int)i[0]); break;
        case R_RMSNORM: o->rmsnorm(ib, p[0], T_(e, 0), e->f[0], p[1], (int)i[0], (int)i[1]); break;
        case R_ADD: o->add(ib, p[0], p[1], p[2], i[0]); break;
        case R_SWIGLU: o->swiglu(ib, p[0], p[1], (int)i[0], (int)i[1]); break;
        case R_SILU: o->silu(ib, p[0], i[0]); break;
        case R_QK_NORM_ROPE:
            check_batch(be, &e->b, "qk_norm_rope (replayed)");
            o->qk_norm_rope(ib, p[0], p[1], T_(e, 0), T_(e, 1), e->f[0], &e->b, (int)i[0], (int)i[1], (int)i[2], e->f[1]);
            break;
        case R_KV_STORE:
            check_batch(be, &e->b, "kv_store (replayed)");
            o->kv_store(ib, &e->kv, (int)i[0], p[0], p[1], &e->b);
            break;
        case R_ATTENTION:
            check_batch(be, &e->b, "attention (replayed)");
            o->attention(ib, p[0], &e->kv, (int)i[0], &e->b, (int)i[1], e->f[0], (int)i[2], p[1]);
            break;
        case R_SAMPLE: o->sample(ib, p[0], (int)i[0], (int)i[1], p[1], p[2], p[3]); break;
        case R_GATHER: o->gather_rows(ib, p[0], p[1], (int)i[0], (int)i[1], p[2]); break;
        case R_SCATTER: o->scatter_rows(ib, p[0], p[1], (int)i[0], (int)i[1], p[2]); break;
        case R_SCALE_ROWS: o->scale_rows(ib, p[0], T_(e, 0), p[1], (int)i[0], (int)i[1]); break;
        case R_CONV1D:
            o->conv1d(ib, p[0], T_(e, 0), T_(e, 1), p[1], (int)i[0], (int)i[1], (int)i[2], (int)i[3], (int)i[4], (int)i[5]);
            break;
        case R_CONV_T: o->conv_transpose1d(ib, p[0], T_(e, 0), T_(e, 1), p[1], (int)i[0], (int)i[1], (int)i[2], (int)i[3], (int)i[4]); break;
        case R_SNAKE: o->snake(ib, p[0], T_(e, 0), T_(e, 1), p[1], (int)i[0], (int)i[1], (int)i[2]); break;
        case R_TRANSPOSE: o->transpose(ib, p[0], p[1], (int)i[0], (int)i[1], (int)i[2]); break;
        case R_LAYERNORM: o->layernorm(ib, p[0], T_(e, 0), T_(e, 1), e->f[0], p[1], (int)i[0], (int)i[1]); break;
        case R_GELU: o->gelu(ib, p[0], i[0]); break;
        case R_CLAMP: o->clamp(ib, p[0], i[0], e->f[0], e->f[1]); break;
        case R_EMBED_SUM: o->embed_sum(ib, e->tabs, (int)i[0], p[0], (int)i[1], (int)i[2], p[1]); break;
        case R_NORM_MATMUL: {
            const qtts_tensor *w[QTTS_NORM_MATMUL_MAX] = {T_(e, 1), T_(e, 2), T_(e, 3)};
            float *y[QTTS_NORM_MATMUL_MAX] = {p[1], p[2], p[3]};
            o->norm_matmul(ib, p[0], T_(e, 0), e->f[0], (int)i[0], w, y, (int)i[1]);
            break;
        }
        case R_QK_NORM_ROPE_ATTEND:
            check_batch(be, &e->b, "qk_norm_rope_attend (replayed)");
            check_one_per_slot(be, &e->b, "qk_norm_rope_attend (replayed)");
            o->qk_norm_rope_attend(ib, p[0], p[1], p[2], T_(e, 0), T_(e, 1), e->f[0], &e->b, (int)i[0], (int)i[1], (int)i[2], e->f[1],
                                   &e->kv, (int)i[3], e->f[2], p[3]);
            break;
        case R_NORM_SWIGLU: o->norm_swiglu(ib, p[0], T_(e, 0), e->f[0], T_(e, 1), p[1], (int)i[0]); break;
        case R_MATMUL_ADD: o->matmul_add(ib, p[0], T_(e, 0), p[1], (int)i[0]); break;
        case R_QK_NORM_ROPE_STORE:
            check_batch(be, &e->b, "qk_norm_rope_store (replayed)");
            o->qk_norm_rope_store(ib, p[0], p[1], p[2], T_(e, 0), T_(e, 1), e->f[0], &e->b, (int)i[0], (int)i[1], (int)i[2], e->f[1],
                                  &e->kv, (int)i[3]);
            break;
        }
    }
    R(be)->stats.ops_replayed += t->n;
}

/* ---------------- the graph ops ---------------- */

static r_tape *find(replay_impl *r, uint64_t key) {
    for (int k = 0; k < r->n_tapes; k++)
        if (r->tapes[k].key == key) return &r->tapes[k];
    return NULL;
}

static bool r_graph_begin(qtts_backend *be, uint64_t key) {
    replay_impl *r = R(be);
    if (r->recording) {
        misuse(r, "graph_begin inside the recording of key %llu", (unsigned long long)r->recording->key);
        return false;
    }
    r_tape *t = find(r, key);
    if (t && t->recorded) {
        r->stats.replayed++;
        replay(be, t);
        return true;
    }
    if (!t) { /* first sight: run plainly */
        if (r->n_tapes == r->cap_tapes) {
            int cap = r->cap_tapes ? 2 * r->cap_tapes : 16;
            r_tape *nt = realloc(r->tapes, (size_t)cap * sizeof *nt);
            if (!nt) return false;
            r->tapes = nt;
            r->cap_tapes = cap;
        }
        r->tapes[r->n_tapes++] = (r_tape){.key = key};
        r->stats.plain++;
        return false;
    }
    r->recording = t;
    return false;
}

static void r_graph_end(qtts_backend *be, uint64_t key) {
    replay_impl *r = R(be);
    r_tape *t = r->recording;
    if (!t) return; /* a plain run */
    r->recording = NULL;
    if (t->key != key) {
        misuse(r, "graph_end: key %llu ends the recording of key %llu", (unsigned long long)key, (unsigned long long)t->key);
        return;
    }
    t->recorded = true;
    r->stats.recorded++;
    r->stats.replayed++;
    replay(be, t); /* as cudaGraphLaunch after the capture: the recorded ops had not run */
}

static void free_tape(r_tape *t) {
    for (int k = 0; k < t->n; k++) {
        free(t->e[k].hs);
        free(t->e[k].hp);
    }
    free(t->e);
}

static void r_graph_reset(qtts_backend *be) {
    replay_impl *r = R(be);
    if (forbidden(be, "graph_reset")) return;
    for (int k = 0; k < r->n_tapes; k++) free_tape(&r->tapes[k]);
    r->n_tapes = 0;
}

static qtts_status r_check(qtts_backend *be, qtts_err *err) {
    replay_impl *r = R(be);
    if (r->failed) return qtts_fail(err, QTTS_ERR_INTERNAL, "cpu-replay backend: %s", r->what);
    return QTTS_OK;
}

static void r_destroy(qtts_backend *be) {
    replay_impl *r = R(be);
    if (!r) return;
    for (int k = 0; k < r->n_tapes; k++) free_tape(&r->tapes[k]);
    free(r->tapes);
    qtts_backend_free(&r->inner);
    free(r);
    be->impl = NULL;
}

static const qtts_ops replay_ops = {
    .name = "cpu-replay",
    .alloc = r_alloc,
    .free = r_free,
    .to_device = r_to_device,
    .to_host = r_to_host,
    .copy = r_copy,
    .sync = r_sync,
    .upload = r_upload,
    .storage_bytes = r_storage_bytes,
    .upload_at = r_upload_at,
    .release = r_release,
    .embed = r_embed,
    .embed_sum = r_embed_sum,
    .norm_matmul = r_norm_matmul,
    .norm_swiglu = r_norm_swiglu,
    .matmul_add = r_matmul_add,
    .qk_norm_rope_store = r_qk_norm_rope_store,
    .qk_norm_rope_attend = r_qk_norm_rope_attend,
    .matmul = r_matmul,
    .rmsnorm = r_rmsnorm,
    .add = r_add,
    .swiglu = r_swiglu,
    .silu = r_silu,
    .qk_norm_rope = r_qk_norm_rope,
    .kv_store = r_kv_store,
    .attention = r_attention,
    .scale_rows = r_scale_rows,
    .sample = r_sample,
    .gather_rows = r_gather_rows,
    .scatter_rows = r_scatter_rows,
    .conv1d = r_conv1d,
    .conv_transpose1d = r_conv_transpose1d,
    .snake = r_snake,
    .transpose = r_transpose,
    .layernorm = r_layernorm,
    .gelu = r_gelu,
    .clamp = r_clamp,
    .destroy = r_destroy,
    .graph_begin = r_graph_begin,
    .graph_end = r_graph_end,
    .graph_reset = r_graph_reset,
    .check = r_check,
};

qtts_status qtts_backend_replay_init(qtts_backend *be, qtts_err *err) {
    be->ops = NULL;
    be->impl = NULL;
    replay_impl *r = qtts_calloc(1, sizeof *r, err, "cpu-replay backend");
    if (!r) return QTTS_ERR_OOM;
    qtts_status st = qtts_backend_cpu_init(&r->inner, err);
    if (st) {
        free(r);
        return st;
    }
    be->ops = &replay_ops;
    be->impl = r;
    return QTTS_OK;
}

bool qtts_backend_replay_stats(qtts_backend *be, qtts_replay_stats *out) {
    if (!be->ops || be->ops != &replay_ops) return false;
    *out = R(be)->stats;
    return true;
}
