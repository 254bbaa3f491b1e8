/* The op table: the few operations the forward passes (talker, code predictor,
 * codec decoder) call. Model code is written once against it; the CPU backend
 * implements each op as plain fp32 loops (+ OpenBLAS GEMM) and is the
 * reference, the CUDA backend implements the same table with cuBLAS and fused
 * kernels. All activation pointers are backend memory holding fp32; weights
 * are qtts_tensor in the backend's storage dtype (CPU: F32; CUDA: BF16 for
 * matrices). Every op is batch-first: LM ops take a ragged batch of tokens
 * from many sequences, each token with its own KV slot and position. */
#ifndef QTTS_BACKEND_H
#define QTTS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "safetensors.h"
#include "util.h"

typedef struct qtts_backend qtts_backend;

#define QTTS_EMBED_SUM_MAX 32 /* tables one embed_sum adds (a frame's codebooks: 16; configs allow 32) */
#define QTTS_NORM_MATMUL_MAX 3 /* weights one norm_matmul applies (q, k, v) */

/* A weight in backend memory. */
typedef struct qtts_tensor {
    void *data;
    qtts_dtype dtype;
    int ndim;
    int64_t shape[4];
    int64_t numel;
    bool view; /* data lies in a block owned elsewhere (e.g. a layer's weight block) */
} qtts_tensor;

/* KV cache of one decoder stack: [layer][slot][pos][kv_head][head_dim], fp32. */
typedef struct qtts_kv_cache {
    float *k, *v;
    int n_layers, n_slots, max_len, n_kv_heads, head_dim;
} qtts_kv_cache;

/* A ragged batch of n tokens: token i belongs to KV slot slot[i] at position
 * pos[i]. Device copies are what ops read; host copies are for scheduling. */
typedef struct qtts_batch {
    int n;
    int32_t *slot, *pos;           /* backend memory, [n] */
    const int32_t *h_slot, *h_pos; /* host mirrors, [n] */
    /* 0, or a bound: pos[i] < ctx_bound for every token. Ops that size
     * their work by the longest context (CUDA attention's splits) use it
     * instead of reading h_pos. Required in a recorded op sequence
     * (graph_begin), where host data is read once, when it is recorded. */
    int ctx_bound;
    /* The tokens are one per slot, or tokens sharing a slot are identical
     * rows at one position (a decode step with its padding rows): no token
     * attends to a position that another, different token of the batch
     * writes. Lets the model use qk_norm_rope_attend. */
    bool one_per_slot;
} qtts_batch;

/* One draw of the sample op, as src/sample.c: repetition penalty from a
 * seen mask, banned ids, then argmax, or temperature / top-k / top-p and a
 * draw with the counter-based uniform qtts_rng_uniform(seed, counter). */
typedef struct qtts_sample_row {
    uint64_t seed, counter;
    float temperature, top_p, penalty;
    int top_k, greedy;
    int seen_row; /* row of the seen mask for the penalty and its update; -1: neither */
    int ban_from; /* ids >= ban_from are banned except keep_id (V: none) */
    int keep_id;  /* -1: none */
    int ban_id;   /* one more banned id (EOS during min_new_tokens); -1: none */
} qtts_sample_row;

/* One Qwen3 decoder layer (talker and code predictor share the shape). */
typedef struct qtts_lm_layer {
    void *block;           /* every weight below, one backend allocation (offload moves layers whole) */
    size_t block_bytes;
    qtts_tensor in_norm;   /* [H] */
    qtts_tensor wq;        /* [nh*hd, H] */
    qtts_tensor wk, wv;    /* [nkv*hd, H] */
    qtts_tensor q_norm;    /* [hd] */
    qtts_tensor k_norm;    /* [hd] */
    qtts_tensor wo;        /* [H, nh*hd] */
    qtts_tensor post_norm; /* [H] */
    qtts_tensor w_gate_up; /* [2I, H]: gate rows then up rows */
    qtts_tensor w_down;    /* [H, I] */
} qtts_lm_layer;

/* The code predictor's weights and shapes, for predict_frame. */
typedef struct qtts_predictor_weights {
    int n_layers, hidden, n_heads, n_kv, head_dim, inter;
    float eps, theta;
    int in_hidden;                    /* the talker's width: its hidden states and the codec embeddings */
    int vocab, n_groups;              /* codes per codebook, codebooks per frame (G) */
    const qtts_lm_layer *layers;      /* [n_layers] */
    const qtts_tensor *norm;          /* [hidden] final RMSNorm */
    const qtts_tensor *mtp_w, *mtp_b; /* [hidden, in_hidden], [hidden]; NULL when in_hidden == hidden (no projection) */
    const qtts_tensor *c0_embed;      /* [V0, in_hidden]: the talker's codec embedding (codebook 0) */
    const qtts_tensor *embed;         /* [G-1] x [vocab, in_hidden]: codebooks 1..G-1 */
    const qtts_tensor *head;          /* [G-1] x [vocab, hidden] */
} qtts_predictor_weights;

/* One frame of the code predictor for nb rows (model.c: qtts_predict_frame
 * is the op sequence it equals). Row j runs in predictor KV slot j. */
typedef struct qtts_predictor_frame {
    int nb;
    const float *past_hidden;  /* [slots][in_hidden]: each slot's last talker hidden state */
    const int32_t *act;        /* [nb]: row j's slot */
    int32_t *tok;              /* codebook k of row j at tok[k * tok_stride + j]: k = 0 given, 1..G-1 written */
    int tok_stride;
    const qtts_sample_row *rows; /* [(G-1) * nb] draws, codebook-major (backend memory) */
    float *logits;             /* [nb][vocab] working logits */
    float *rec_logits;         /* NULL, or [G-1][nb][vocab]: every codebook's raw logits, kept */
    qtts_kv_cache *kv;         /* the predictor's cache: nb slots x G positions at least */
    /* scratch for 2nb tokens: pe [in_hidden], px, pout [hidden], q [nh*hd], k, v [nkv*hd], att [nh*hd], mlp [inter] per token */
    float *pe, *px, *pout, *q, *k, *v, *att, *mlp;
    /* the op sequence's batches (backend memory, then host mirrors): the
     * first pass's 2nb tokens (row j at position 0 and row nb + j at
     * position 1 of slot j); later passes' slots 0..nb-1 (iota), and pass
     * k's positions at kpos + k * kpos_stride (all k) */
    int32_t *slot1, *pos1, *iota, *kpos;
    const int32_t *h_slot1, *h_pos1, *h_iota, *h_kpos;
    size_t kpos_stride;
} qtts_predictor_frame;

typedef struct qtts_ops {
    const char *name;
    /* An accelerator whose work runs beside the host: opening an engine
     * warms it up (engine.c), and render decodes on a thread of its own by
     * default (the CPU's cores are busy generating). */
    bool device;
    /* memory */
    void *(*alloc)(qtts_backend *be, size_t bytes);   /* zero-filled; NULL on failure */
    void (*free)(qtts_backend *be, void *p);
    void (*to_device)(qtts_backend *be, void *dst, const void *src, size_t bytes);
    void (*to_host)(qtts_backend *be, void *dst, const void *src, size_t bytes);
    void (*copy)(qtts_backend *be, void *dst, const void *src, size_t bytes); /* device to device */
    void (*sync)(qtts_backend *be);
    /* Upload a checkpoint tensor (F32/F16/BF16) into backend storage. */
    qtts_status (*upload)(qtts_backend *be, const qtts_st_tensor *src, qtts_tensor *dst, qtts_err *err);
    /* Bytes src takes in backend storage, and the upload into memory the
     * caller owns (at least that many bytes; dst becomes a view): lets a
     * layer's weights live in one block that offload can move as a whole. */
    size_t (*storage_bytes)(qtts_backend *be, const qtts_st_tensor *src);
    qtts_status (*upload_at)(qtts_backend *be, const qtts_st_tensor *src, void *mem, qtts_tensor *dst, qtts_err *err);
    void (*release)(qtts_backend *be, qtts_tensor *t);

    /* ---- LM ops; x is [n, dim] row-major ---- */
    /* out[i,:] = table[ids[i],:]; ids in backend memory; an id outside
     * [0, rows) gives a zero row (sampling writes -1 when every logit was
     * banned or NaN: no out-of-bounds read follows from it). */
    void (*embed)(qtts_backend *be, const qtts_tensor *table, const int32_t *ids, int n, float *out);
    /* out[i,:] = sum over t of tables[t][ids[t*stride + i],:], added in the
     * order t = 0, 1, ... (as embed, then add per table); n_tables <=
     * QTTS_EMBED_SUM_MAX, all tables of one width; ids as embed. */
    void (*embed_sum)(qtts_backend *be, const qtts_tensor *const *tables, int n_tables, const int32_t *ids, int stride, int n, float *out);
    /* y[n,out] = x[n,in] W[out,in]^T (+ bias[out]); y must not alias x. */
    void (*matmul)(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int n);
    /* y = x / sqrt(mean(x^2) + eps) * w over rows of width dim; y may alias x. */
    void (*rmsnorm)(qtts_backend *be, const float *x, const qtts_tensor *w, float eps, float *y, int n, int dim);
    /* Projections with the norm before them or the residual add after them
     * fused in (each as the unfused ops it replaces; outputs alias no input):
     * norm_matmul: y[j] = (rmsnorm(x) * norm) W[j]^T for j < nw, 1 <= nw <=
     *   QTTS_NORM_MATMUL_MAX weights [out_j, in] of one input width, no bias
     *   (a layer's q, k and v projections read one normalised x); */
    void (*norm_matmul)(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, int nw, const qtts_tensor *const *w,
                        float *const *y, int n);
    /* norm_swiglu: y[n, I] = silu(g) * u for [g | u] = (rmsnorm(x) * norm) W^T,
     *   W [2I, in] (gate rows, then up rows): a layer's whole MLP input side; */
    void (*norm_swiglu)(qtts_backend *be, const float *x, const qtts_tensor *norm, float eps, const qtts_tensor *w, float *y, int n);
    /* matmul_add: y[n, out] += x W^T (a projection and the residual add after it). */
    void (*matmul_add)(qtts_backend *be, const float *x, const qtts_tensor *w, float *y, int n);
    /* y = a + b elementwise (len values); y may alias a or b. */
    void (*add)(qtts_backend *be, const float *a, const float *b, float *y, int64_t len);
    /* y[i,j] = silu(gu[i,j]) * gu[i, I + j] for gu [n, 2I] (gate | up); y [n, I]. */
    void (*swiglu)(qtts_backend *be, const float *gu, float *y, int n, int inter);
    /* in place: x = silu(x) */
    void (*silu)(qtts_backend *be, float *x, int64_t len);
    /* In place on q [n, n_heads*hd] and k [n, n_kv*hd]: optional per-head
     * RMSNorm (qn/kn may be NULL) then NeoX rotate-half RoPE at pos[i]. */
    void (*qk_norm_rope)(qtts_backend *be, float *q, float *k, const qtts_tensor *qn, const qtts_tensor *kn, float eps,
                         const qtts_batch *b, int n_heads, int n_kv, int hd, float theta);
    /* Fused: qk_norm_rope, then kv_store of the rotated k and of v. */
    void (*qk_norm_rope_store)(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                               float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *c, int layer);
    /* Fused: qk_norm_rope_store, then attention without a window, for a
     * batch with one_per_slot set (decode steps). */
    void (*qk_norm_rope_attend)(qtts_backend *be, float *q, float *k, const float *v, const qtts_tensor *qn, const qtts_tensor *kn,
                                float eps, const qtts_batch *b, int n_heads, int n_kv, int hd, float theta, qtts_kv_cache *c, int layer,
                                float scale, float *out);
    /* Store k, v rows [n, n_kv*hd] into layer `layer` of the cache at (slot, pos). */
    void (*kv_store)(qtts_backend *be, qtts_kv_cache *c, int layer, const float *k, const float *v, const qtts_batch *b);
    /* out[i] = softmax(q[i] K^T * scale) V over cache positions
     * max(0, pos[i]-window+1) .. pos[i] of slot[i] (window 0 = unlimited);
     * grouped-query: query head h reads kv head h / (n_heads / n_kv). */
    void (*attention)(qtts_backend *be, const float *q, const qtts_kv_cache *c, int layer, const qtts_batch *b,
                      int n_heads, float scale, int window, float *out);
    /* One token per row of logits [n, V] (backend memory; modified) into
     * tokens [n] (backend int32; -1 when every logit is banned); rows[] is
     * backend memory (to_device a host array: the struct is the same bytes on
     * both sides); seen is backend uint8 [slots][V], updated with each token. */
    void (*sample)(qtts_backend *be, float *logits, int n, int V, const qtts_sample_row *rows, uint8_t *seen, int32_t *tokens);
    /* A whole frame of the code predictor in one op, where the backend has
     * a fused path for these shapes and row count (CUDA: a persistent
     * kernel, with qtts_backend_params.cuda_persistent): returns true when
     * it issued it, false (nothing issued) when the caller must run the op
     * sequence. NULL: never. The generator calls it outside its recorded
     * sequences (a cooperative launch is not captured). */
    bool (*predict_frame)(qtts_backend *be, const qtts_predictor_weights *w, const qtts_predictor_frame *f);
    /* dst[i,:] = src[idx[i],:] (gather) and dst[idx[i],:] = src[i,:] (scatter)
     * over rows of dim floats; idx is backend int32 [n]; no aliasing. */
    void (*gather_rows)(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst);
    void (*scatter_rows)(qtts_backend *be, const float *src, const int32_t *idx, int n, int dim, float *dst);
    /* y[i,:] = x[i,:] * s[:] (layer scale); y may alias x. */
    void (*scale_rows)(qtts_backend *be, const float *x, const qtts_tensor *s, float *y, int n, int dim);

    /* ---- codec decoder ops; x is [B, C, T] channel-major per item ---- */
    /* Causal conv1d, stride 1: left pad (K-1)*dilation zeros; W [Cout, Cin/groups, K]. */
    void (*conv1d)(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B, int cin,
                   int cout, int T, int dilation, int groups);
    /* Transposed conv1d, W [Cin, Cout, K], stride s, trimmed right by K - s: y [B, Cout, T*s]. */
    void (*conv_transpose1d)(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *bias, float *y, int B,
                             int cin, int cout, int T, int stride);
    /* SnakeBeta with alpha/beta already exponentiated: y = x + sin(alpha x)^2 / (beta + 1e-9). */
    void (*snake)(qtts_backend *be, const float *x, const qtts_tensor *alpha, const qtts_tensor *beta, float *y, int B, int C, int T);
    /* [B, R, S] -> [B, S, R] */
    void (*transpose)(qtts_backend *be, const float *x, float *y, int B, int R, int S);
    /* LayerNorm over rows of width dim with weight and bias. */
    void (*layernorm)(qtts_backend *be, const float *x, const qtts_tensor *w, const qtts_tensor *b, float eps, float *y, int n, int dim);
    /* in place exact (erf) GELU */
    void (*gelu)(qtts_backend *be, float *x, int64_t len);
    /* in place clamp to [lo, hi] */
    void (*clamp)(qtts_backend *be, float *x, int64_t len, float lo, float hi);

    /* Release the backend's private state (streams, handles); NULL when it
     * has none. Called by qtts_backend_free. */
    void (*destroy)(qtts_backend *be);
    /* Profiler ranges around stages (NVTX on CUDA; NULL = none). Model code
     * marks: "prefill", "talker step", "code predictor", "sampling",
     * "decoder", "host transfer". */
    void (*range_push)(qtts_backend *be, const char *name);
    void (*range_pop)(qtts_backend *be);
    /* Most device memory in use so far (bytes; the CUDA backend samples
     * total - free after each allocation), or NULL where the process's
     * resident set is the measure (CPU). */
    size_t (*peak_bytes)(qtts_backend *be);
    /* Op-sequence replay (CUDA graphs; NULL where a backend has none, or has
     * them turned off: qtts_backend_params.cuda_graphs). The ops between graph_begin(key)
     * and graph_end(key) must be the same calls
     * with the same arguments every time the key is used, and must not
     * synchronise (no to_host, no sync, no alloc or free). graph_begin returns
     * true when it has launched the recorded sequence: the caller then skips
     * the ops and does not call graph_end. Otherwise the caller issues the ops
     * (they run, and may be recorded) and then calls graph_end. Graphs are
     * dropped when the backend's scratch memory moves. */
    bool (*graph_begin)(qtts_backend *be, uint64_t key);
    void (*graph_end)(qtts_backend *be, uint64_t key);
    /* Forget every recorded sequence: call before freeing memory one of them
     * uses (a recorded sequence keeps the addresses it was recorded with). */
    void (*graph_reset)(qtts_backend *be);
    /* Report a failure recorded by an op (ops return nothing): QTTS_OK or
     * an error naming the op; NULL where ops cannot fail that way (CPU). */
    qtts_status (*check)(qtts_backend *be, qtts_err *err);
    /* Make the calling thread able to issue this backend's ops (CUDA: its
     * device current); NULL where any thread can. A backend is used by one
     * thread at a time: a second thread gets a backend of its own. */
    void (*bind_thread)(qtts_backend *be);
} qtts_ops;

struct qtts_backend {
    const qtts_ops *ops;
    void *impl; /* backend private state (cuBLAS handle, streams, ...) */
};

static inline void qtts_range_push(qtts_backend *be, const char *name) {
    if (be->ops->range_push) be->ops->range_push(be, name);
}
static inline void qtts_range_pop(qtts_backend *be) {
    if (be->ops->range_pop) be->ops->range_pop(be);
}

static inline void qtts_backend_bind_thread(qtts_backend *be) {
    if (be->ops->bind_thread) be->ops->bind_thread(be);
}

/* CPU backend: always available. (The CUDA backend: backend_cuda.h.) */
qtts_status qtts_backend_cpu_init(qtts_backend *be, qtts_err *err);
/* Free any backend's private state; safe on a zeroed or freed backend. */
void qtts_backend_free(qtts_backend *be);

/* A backend by name: "cpu", "cuda" (GPU p->device; builds with the CUDA
 * backend only, QTTS_ERR_UNSUPPORTED otherwise, QTTS_ERR_DEVICE without a
 * usable GPU), "cuda:N" (GPU N), "cpu-replay" (the CPU with CUDA-graph
 * semantics, for tests: backend_replay.h), or "auto"/NULL: cuda when this
 * build has it and a GPU is present, else cpu. p (include/qtts/qtts.h) NULL:
 * qtts_backend_default_params(). */
qtts_status qtts_backend_init_named(qtts_backend *be, const char *name, const qtts_backend_params *p, qtts_err *err);
/* Report a failure an op recorded (the check op); QTTS_OK on the CPU. */
qtts_status qtts_backend_check(qtts_backend *be, qtts_err *err);
/* This build has the CUDA backend and the machine a GPU. */
bool qtts_cuda_available(void);

/* Convenience: upload a checkpoint tensor checked by name/dtype/shape. */
qtts_status qtts_tensor_load(qtts_backend *be, const qtts_safetensors *st, const char *name, int ndim, const int64_t *shape,
                             qtts_tensor *dst, qtts_err *err);

#endif
