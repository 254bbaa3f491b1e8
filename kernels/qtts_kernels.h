/* The extern "C" launchers of the kernels/ .cu files, callable from C (src/backend_cuda.c).
 * Every launcher enqueues on its qtts_k_stream, checks the launch with
 * cudaGetLastError and returns its cudaError_t (cudaSuccess = 0); nothing
 * here synchronises. Activations are fp32; matrices are bf16 stored as
 * uint16_t (the top half of an fp32); vectors (norm weights, biases, snake
 * alpha/beta, layer scales) are fp32. Shapes and aliasing rules are the op
 * table's (src/backend.h) unless a comment says otherwise. */
#ifndef QTTS_KERNELS_H
#define QTTS_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where a launcher enqueues, and how: with pdl set, each kernel is launched
 * with programmatic dependent launch (Hopper; common.cuh: pdl_prologue), so
 * it may be scheduled while the kernel before it on the stream still runs.
 * The backend owns one per stream (its options choose pdl). */
typedef struct qtts_k_stream {
    cudaStream_t stream;
    int pdl;
} qtts_k_stream;

/* ---- elementwise.cu ---- */
cudaError_t qtts_k_f32_to_bf16(const float *x, uint16_t *y, int64_t len, qtts_k_stream s);
/* Tables of one width for qtts_k_embed_sum: bf16 [rows[t]][d]. */
#define QTTS_K_EMBED_SUM_MAX 32
typedef struct qtts_k_tables {
    const uint16_t *tab[QTTS_K_EMBED_SUM_MAX];
    int64_t rows[QTTS_K_EMBED_SUM_MAX];
    int n;
} qtts_k_tables;
/* out[i] = sum over t of tab[t][ids[t*stride + i]], added in table order */
cudaError_t qtts_k_embed_sum(qtts_k_tables t, const int32_t *ids, int stride, int n, int64_t d, float *out, qtts_k_stream s);
/* ids outside [0, rows) give zero rows */
cudaError_t qtts_k_embed(const uint16_t *table /* bf16 [rows][d] */, const int32_t *ids, int n, int64_t rows, int64_t d, float *out,
                         qtts_k_stream s);
cudaError_t qtts_k_add(const float *a, const float *b, float *y, int64_t len, qtts_k_stream s);
/* rows of dim floats: dst[i] = src[idx[i]] (scatter 0) or dst[idx[i]] = src[i] (scatter 1), i < n */
cudaError_t qtts_k_move_rows(const float *src, const int32_t *idx, int n, int dim, int scatter, float *dst, qtts_k_stream s);
/* y[i,j] += bias[j] for y [n, dim] */
cudaError_t qtts_k_add_bias(float *y, const float *bias, int n, int dim, qtts_k_stream s);
cudaError_t qtts_k_swiglu(const float *gu, float *y, int n, int inter, qtts_k_stream s);
cudaError_t qtts_k_silu(float *x, int64_t len, qtts_k_stream s);
cudaError_t qtts_k_gelu(float *x, int64_t len, qtts_k_stream s);
cudaError_t qtts_k_clamp(float *x, int64_t len, float lo, float hi, qtts_k_stream s);
cudaError_t qtts_k_scale_rows(const float *x, const float *sc, float *y, int n, int dim, qtts_k_stream s);
cudaError_t qtts_k_snake(const float *x, const float *alpha, const float *beta, float *y, int B, int C, int T, qtts_k_stream s);
/* [B, R, S] -> [B, S, R]; y must not alias x. */
cudaError_t qtts_k_transpose(const float *x, float *y, int B, int R, int S, qtts_k_stream s);

/* ---- sample.cu ---- */
/* The fields of qtts_sample_row (src/backend.h), in device memory. */
typedef struct qtts_k_sample_row {
    uint64_t seed, counter;
    float temperature, top_p, penalty;
    int top_k, greedy, seen_row, ban_from, keep_id, ban_id;
} qtts_k_sample_row;
/* One token per row of logits [n][V] (modified), V <= 4096; seen [slots][V] may be NULL when no row uses it. */
cudaError_t qtts_k_sample(float *logits, int n, int V, const qtts_k_sample_row *rows, uint8_t *seen, int32_t *tokens, qtts_k_stream s);

/* ---- norm.cu ---- */
cudaError_t qtts_k_rmsnorm(const float *x, const float *w, float eps, float *y, int n, int dim, qtts_k_stream s);
cudaError_t qtts_k_layernorm(const float *x, const float *w, const float *b /* may be NULL */, float eps, float *y, int n, int dim,
                             qtts_k_stream s);
cudaError_t qtts_k_qk_norm_rope(float *q, float *k, const float *qn /* may be NULL */, const float *kn /* may be NULL */, float eps,
                                const int32_t *pos, int n, int n_heads, int n_kv, int hd, float theta, qtts_k_stream s);
/* rmsnorm into bf16 (the input of a cuBLAS bf16 GEMM): y = bf16(x / rms(x) * w) */
cudaError_t qtts_k_rmsnorm_bf16(const float *x, const float *w, float eps, uint16_t *y, int n, int dim, qtts_k_stream s);

/* ---- attention.cu ---- */
typedef struct qtts_k_kv {
    float *k, *v; /* fp32 [layer][slot][pos][kv_head][head_dim] */
    int n_layers, n_slots, max_len, n_kv_heads, head_dim;
} qtts_k_kv;
cudaError_t qtts_k_kv_store(qtts_k_kv c, int layer, const float *k, const float *v, const int32_t *slot, const int32_t *pos, int n,
                            qtts_k_stream s);
/* Positions per split of the context (one block of the split attention
 * covers at most `chunk`): the backend starts at QTTS_ATTN_SPLIT_MIN and
 * doubles it, up to QTTS_ATTN_SPLIT_MAX, while tokens x heads x splits
 * would exceed QTTS_ATTN_MAX_BLOCKS (backend_cuda.c: attn_chunk). */
#define QTTS_ATTN_SPLIT_MIN 64
#define QTTS_ATTN_SPLIT_MAX 1024
#define QTTS_ATTN_MAX_BLOCKS 2048
/* qtts_k_qk_norm_rope, then the rotated k rows and the v rows [n][n_kv*hd]
 * stored into layer `layer` of the cache at (slot[i], pos[i]) (one launch) */
cudaError_t qtts_k_qk_norm_rope_store(float *q, float *k, const float *v, const float *qn, const float *kn, float eps, const int32_t *slot,
                                      const int32_t *pos, int n, int n_heads, int n_kv, int hd, float theta, qtts_k_kv cache, int layer,
                                      qtts_k_stream s);
/* Workspace floats the attention needs for n tokens, n_heads heads and
 * n_splits = ceil(longest context / chunk) splits (0 when n_splits == 1). */
int64_t qtts_k_attention_ws(int n, int n_heads, int hd, int n_splits);
/* qtts_k_qk_norm_rope_store, then qtts_k_attention without a window, in one
 * launch (attention.cu: k_rope_attend), for a batch whose tokens are one per
 * slot (tokens sharing a slot are identical rows at one position) and whose
 * positions are all < QTTS_ROPE_ATTEND_CTX (the code predictor's passes; one
 * block per (token, kv head) walks the whole context, so longer contexts
 * take the split attention); its shared memory (qtts_k_rope_attend_smem)
 * must be at most QTTS_ROPE_ATTEND_SMEM_MAX. */
#define QTTS_ROPE_ATTEND_CTX 64
#define QTTS_ROPE_ATTEND_SMEM_MAX (48 << 10)
size_t qtts_k_rope_attend_smem(int n_heads, int n_kv, int hd);
cudaError_t qtts_k_rope_attend(float *q, float *k, const float *v, const float *qn, const float *kn, float eps, const int32_t *slot,
                               const int32_t *pos, int n, int n_heads, float theta, qtts_k_kv cache, int layer, float scale, float *out,
                               qtts_k_stream s);
/* Decode attention over each token's own slot (window 0: all positions),
 * split along the context in blocks of `chunk` positions; shared memory
 * qtts_k_attention_smem(hd, chunk) must be at most QTTS_ATTN_SMEM_MAX. */
#define QTTS_ATTN_SMEM_MAX (48 << 10)
size_t qtts_k_attention_smem(int hd, int chunk);
cudaError_t qtts_k_attention(const float *q, qtts_k_kv c, int layer, const int32_t *slot, const int32_t *pos, int n, int n_heads,
                             float scale, int window, int chunk, int n_splits, float *ws, float *out, qtts_k_stream s);

/* ---- gemv.cu ---- */
/* Tokens a single GEMV launch handles (the backend uses cuBLAS above this). */
#define QTTS_GEMV_MAX_N 2
/* y[n,out] = x[n,in] W[out,in]^T (+ bias), W bf16, x/y fp32, n <= QTTS_GEMV_MAX_N. */
cudaError_t qtts_k_gemv(const float *x, const uint16_t *w, const float *bias, float *y, int n, int out, int in, qtts_k_stream s);
/* The GEMV with the ops around a projection fused in (gemv.cu's header):
 * x rows optionally RMS-normalised and scaled by norm first; up to
 * QTTS_GEMV_MAX_W weights of one input width sharing x; y set (+ bias, one
 * weight only), added to, or (one weight [2I][in], out[0] = I) the SwiGLU of
 * its gate and up halves. */
#define QTTS_GEMV_MAX_W 3
enum { QTTS_GEMV_SET = 0, QTTS_GEMV_ADD = 1, QTTS_GEMV_SWIGLU = 2 };
typedef struct qtts_k_gemv_job {
    const float *x;    /* [n][in] */
    const float *norm; /* [in], or NULL: x as it is */
    float eps;
    const float *bias; /* [out[0]], or NULL */
    const uint16_t *w[QTTS_GEMV_MAX_W]; /* bf16 [out[k]][in] ([2 out[0]][in] for SWIGLU) */
    float *y[QTTS_GEMV_MAX_W];          /* [n][out[k]]; none aliases x */
    int out[QTTS_GEMV_MAX_W];
    int nw, mode;
} qtts_k_gemv_job;
cudaError_t qtts_k_gemv_fused(const qtts_k_gemv_job *j, int n, int in, qtts_k_stream s);

/* ---- predictor.cu ---- */
/* A whole frame of the code predictor in one cooperative (persistent)
 * launch: predictor.cu's header; generate.c's predictor op sequence is its
 * twin. Weights bf16, vectors fp32, activations fp32, as the ops. */
#define QTTS_K_PRED_MAX_LAYERS 8
#define QTTS_K_PRED_MAX_NB 4 /* rows (active sequences) a launch takes; more go through the op sequence */
typedef struct qtts_k_pred_layer {
    const float *in_norm, *q_norm, *k_norm, *post_norm;     /* [hidden], [head_dim], [head_dim], [hidden] */
    const uint16_t *wq, *wk, *wv, *wo, *w_gate_up, *w_down; /* [nh*hd][hidden], [nkv*hd][hidden] x2, [hidden][nh*hd], [2I][hidden], [hidden][I] */
} qtts_k_pred_layer;
typedef struct qtts_k_predictor {
    int n_layers, hidden, n_heads, n_kv, head_dim, inter;
    int in_hidden;       /* the talker's width: past hidden states and embeddings */
    int vocab, n_groups; /* codes per codebook; codebooks per frame (G) */
    int64_t c0_rows, embed_rows;
    float eps, theta, scale;
    qtts_k_pred_layer layer[QTTS_K_PRED_MAX_LAYERS];
    const float *norm;     /* [hidden] final norm */
    const uint16_t *mtp_w; /* [hidden][in_hidden], or NULL: no projection (in_hidden == hidden) */
    const float *mtp_b;    /* [hidden] */
    const uint16_t *c0_embed;                  /* [c0_rows][in_hidden]: codebook 0 (the talker's codec embedding) */
    const uint16_t *embed[QTTS_K_EMBED_SUM_MAX]; /* [G-1] x [embed_rows][in_hidden]: codebooks 1.. */
    const uint16_t *head[QTTS_K_EMBED_SUM_MAX];  /* [G-1] x [vocab][hidden] */
    /* one frame of nb rows; row j uses predictor KV slot j */
    int nb;
    const float *past_hidden; /* [slots][in_hidden] */
    const int32_t *act;       /* [nb] row j's slot in past_hidden */
    int32_t *tok;             /* codebook k of row j at tok[k * tok_stride + j]; k = 0 given */
    int tok_stride;
    const qtts_k_sample_row *rows; /* [(G-1) * nb], codebook-major */
    float *logits;                 /* codebook k's [nb][vocab] at logits + (k-1) * logits_stride (0: one buffer) */
    int64_t logits_stride;
    qtts_k_kv kv;
    /* scratch for 2nb tokens: [in_hidden], [hidden], [nh*hd], [nkv*hd], [nkv*hd], [nh*hd], [inter] per token */
    float *pe, *px, *q, *k, *v, *att, *mlp;
    unsigned *barrier; /* one word, zeroed once, for one launch at a time (grid barriers leave it as they found it, mod 2^31) */
} qtts_k_predictor;
/* The grid qtts_k_predict_frame runs these shapes with on the current
 * device (one block per SM), or 0 when it does not take them (row count,
 * layers, vocabulary, shared memory, no cooperative launch). Queries the
 * device: call it outside stream captures and keep the answer. */
int qtts_k_predict_frame_grid(const qtts_k_predictor *p);
cudaError_t qtts_k_predict_frame(const qtts_k_predictor *p, int grid, qtts_k_stream s);

/* ---- conv.cu ---- */
cudaError_t qtts_k_conv1d(const float *x, const uint16_t *w /* bf16 [cout][cin/groups][K] */, const float *bias, float *y, int B,
                          int cin, int cout, int T, int K, int dilation, int groups, qtts_k_stream s);
cudaError_t qtts_k_conv_transpose1d(const float *x, const uint16_t *w /* bf16 [cin][cout][K] */, const float *bias, float *y, int B,
                                    int cin, int cout, int T, int K, int stride, qtts_k_stream s);
/* The pieces of the GEMM lowering (backend_cuda.c), one item at a time:
 * col [nt][cin*K] for output times t0..t0+nt of x [cin][T] (causal, dilated); */
cudaError_t qtts_k_im2col(const float *x, float *col, int cin, int T, int K, int dil, int t0, int nt, qtts_k_stream s);
/* y [cout][T*stride] += the col2im gather of z [nt][cout*K] (rows t0..t0+nt-1); */
cudaError_t qtts_k_col2im_t(const float *z, float *y, int cout, int T, int K, int stride, int t0, int nt, qtts_k_stream s);
/* y [B][C][T] = bias[c] (0 when bias is NULL) when set, else y += bias[c]; */
cudaError_t qtts_k_channel_bias(float *y, const float *bias, int B, int C, int64_t T, int set, qtts_k_stream s);
cudaError_t qtts_k_bf16_to_f32(const uint16_t *x, float *y, int64_t len, qtts_k_stream s);
/* conv1d with groups == 1 and cin*K at least this goes through the GEMM lowering. */
#define QTTS_CONV_GEMM_MIN_CK 32

#ifdef __cplusplus
}
#endif

#endif
