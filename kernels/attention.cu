/* KV-cache store and decode attention over a ragged batch.
 *
 * Cache layout (fp32): [layer][slot][pos][kv_head][head_dim]; token i of the
 * batch belongs to slot[i] at position pos[i] and attends to its own slot's
 * positions p0..pos[i], p0 = max(0, pos[i] - window + 1) (window 0 = all),
 * grouped-query: query head h reads kv head h / (n_heads / n_kv).
 *   out[i,h] = sum_p softmax_p(scale * q[i,h] . K[p]) V[p]
 *
 * kv_store: one block per token, 128 threads copying the k and v rows.
 *
 * attention: grid (n tokens, n_heads, n_splits), 256 threads (8 warps).
 * Split z covers the `chunk` positions starting at p0 + z*chunk (the
 * backend picks chunk: short splits when the batch is small, so that a
 * single decode token's context still spreads over ~100 blocks; longer ones
 * when tokens x heads already fill the GPU). Inside a block: q goes to
 * shared memory; the warps take SPAN_ROWS positions at a time, lanes
 * striding head_dim (reads of a K row coalesce; attend.cuh: span_scores),
 * scores land in shared memory; a block max and sum give the softmax; then
 * threads own output dims d, the positions split between the block's
 * halves (hd 128), and sum p(p)*V[p][d] four positions at a time
 * (span_values). With one split the block normalises and writes out
 * directly. With several, it writes its unnormalised partial output and
 * (max, sum) to the workspace and a combine kernel (grid (n, n_heads), 128
 * threads over d) rescales: out = sum_z e^(m_z - M) o_z / sum_z e^(m_z - M) l_z.
 * Splits past a token's own context (shorter tokens in a mixed batch) record
 * an empty partial (m = -inf, l = 0).
 *
 * Numerics: fp32 throughout; the CPU twin sums exp() in double, the device in
 * fp32 (~1e-6 relative). No tensor cores, and K/V are read once per query
 * head (a GQA group re-reads its kv head, mostly from L2). Tested on an H100
 * (tests/test_cuda_ops.c). */
#include "attend.cuh"

#define ATT_THREADS 256

__global__ void k_kv_store(qtts_k_kv c, int layer, const float *__restrict__ k, const float *__restrict__ v,
                           const int32_t *__restrict__ slot, const int32_t *__restrict__ pos) {
    pdl_prologue();
    int i = blockIdx.x;
    int row = c.n_kv_heads * c.head_dim;
    int64_t o = kv_row(c, layer, slot[i], pos[i]);
    for (int j = threadIdx.x; j < row; j += blockDim.x) {
        c.k[o + j] = k[(int64_t)i * row + j];
        c.v[o + j] = v[(int64_t)i * row + j];
    }
}

__global__ void k_attention(const float *__restrict__ q, qtts_k_kv c, int layer, const int32_t *__restrict__ slot,
                            const int32_t *__restrict__ pos, int n_heads, float scale, int window, int chunk, float *__restrict__ ws,
                            float *__restrict__ out) {
    pdl_prologue();
    DYN_SHARED(float, sm); /* [hd] query, [chunk] scores, [blockDim] span_values's partial sums */
    __shared__ float red[32];
    int i = blockIdx.x, h = blockIdx.y, z = blockIdx.z, ns = gridDim.z;
    int hd = c.head_dim, group = n_heads / c.n_kv_heads, kh = h / group;
    int pi = pos[i], si = slot[i];
    int p0 = window > 0 && pi - window + 1 > 0 ? pi - window + 1 : 0;
    int start = p0 + z * chunk;
    int64_t qh = (int64_t)i * n_heads + h;
    float *qs = sm, *sc = sm + hd, *part = sm + hd + chunk;
    /* partials, only with several splits (ws is NULL otherwise): [n][n_heads][ns][hd], then [n][n_heads][ns][2] */
    float *o_part = ns > 1 ? ws + (qh * ns + z) * hd : nullptr;
    float *ml = ns > 1 ? ws + (int64_t)gridDim.x * n_heads * ns * hd + (qh * ns + z) * 2 : nullptr;

    if (start > pi) { /* nothing of this token's context falls in this split (block-uniform; only when ns > 1) */
        for (int d = threadIdx.x; d < hd; d += blockDim.x) o_part[d] = 0.0f;
        if (threadIdx.x == 0) {
            ml[0] = -INFINITY;
            ml[1] = 0.0f;
        }
        return;
    }
    int len = min(pi - start + 1, chunk);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = q[qh * hd + d];
    __syncthreads();

    const float *kbase = c.k + kv_row(c, layer, si, start) + (int64_t)kh * hd;
    const float *vbase = c.v + kv_row(c, layer, si, start) + (int64_t)kh * hd;
    int64_t pstride = (int64_t)c.n_kv_heads * hd;
    span_scores(qs, kbase, pstride, hd, len, scale, sc);
    __syncthreads();
    float mx, sum = block_softmax(sc, len, red, &mx);
    span_values(sc, vbase, pstride, hd, len, ns == 1 ? 1.0f / sum : 1.0f, part, ns == 1 ? out + qh * hd : o_part);
    if (ns > 1 && threadIdx.x == 0) {
        ml[0] = mx;
        ml[1] = sum;
    }
}

__global__ void k_attention_combine(const float *__restrict__ ws, int n, int n_heads, int hd, int ns, float *__restrict__ out) {
    pdl_prologue();
    int64_t qh = (int64_t)blockIdx.x * n_heads + blockIdx.y;
    const float *o_part = ws + qh * ns * hd;
    const float *ml = ws + (int64_t)n * n_heads * ns * hd + qh * ns * 2;
    float M = -INFINITY;
    for (int z = 0; z < ns; z++) M = fmaxf(M, ml[2 * z]);
    float L = 0.0f;
    for (int z = 0; z < ns; z++)
        if (ml[2 * z] > -INFINITY) L += expf(ml[2 * z] - M) * ml[2 * z + 1];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int z = 0; z < ns; z++)
            if (ml[2 * z] > -INFINITY) acc += expf(ml[2 * z] - M) * o_part[(int64_t)z * hd + d];
        out[qh * hd + d] = acc / L;
    }
}

/* qk_norm_rope_store and attention in one launch, for a batch whose tokens
 * are one per slot (tokens sharing a slot are identical rows at one
 * position: the generator's padding), every position < QTTS_ROPE_ATTEND_CTX
 * and no window: block (token i, kv head kh) runs rope_attend_head (attend.cuh).
 * Nothing a block reads is written by another block: earlier positions come
 * from earlier launches, position pos from the block itself. One launch
 * instead of two, and the q heads of a GQA group share the block's reads of
 * their kv head. */
__global__ void k_rope_attend(float *q, float *k, const float *__restrict__ v, const float *__restrict__ qn, const float *__restrict__ kn,
                              float eps, const int32_t *__restrict__ slot, const int32_t *__restrict__ pos, int n_heads, float theta,
                              qtts_k_kv c, int layer, float scale, float *__restrict__ out) {
    pdl_prologue();
    DYN_SHARED(float, sm); /* rope_attend_smem floats for QTTS_ROPE_ATTEND_CTX */
    __shared__ float red[32];
    int i = blockIdx.x;
    rope_attend_head(q, k, v, qn, kn, eps, i, slot[i], pos[i], n_heads, theta, c, layer, scale, out, blockIdx.y, sm, QTTS_ROPE_ATTEND_CTX,
                     red);
}

extern "C" {

cudaError_t qtts_k_kv_store(qtts_k_kv c, int layer, const float *k, const float *v, const int32_t *slot, const int32_t *pos, int n,
                            qtts_k_stream s) {
    if (n <= 0) return cudaSuccess;
    return launch(k_kv_store, n, 128, 0, s, c, layer, k, v, slot, pos);
}

size_t qtts_k_rope_attend_smem(int n_heads, int n_kv, int hd) {
    return rope_attend_smem(n_heads / n_kv, hd, QTTS_ROPE_ATTEND_CTX, ATT_THREADS) * sizeof(float);
}

cudaError_t qtts_k_rope_attend(float *q, float *k, const float *v, const float *qn, const float *kn, float eps, const int32_t *slot,
                               const int32_t *pos, int n, int n_heads, float theta, qtts_k_kv c, int layer, float scale, float *out,
                               qtts_k_stream s) {
    if (n <= 0 || n_heads <= 0) return cudaSuccess;
    size_t smem = qtts_k_rope_attend_smem(n_heads, c.n_kv_heads, c.head_dim);
    if (n_heads % c.n_kv_heads || smem > QTTS_ROPE_ATTEND_SMEM_MAX || c.n_kv_heads > 65535) return cudaErrorInvalidValue;
    return launch(k_rope_attend, dim3((unsigned)n, (unsigned)c.n_kv_heads), ATT_THREADS, smem, s, q, k, v, qn, kn, eps, slot, pos, n_heads,
                  theta, c, layer, scale, out);
}

int64_t qtts_k_attention_ws(int n, int n_heads, int hd, int n_splits) {
    return n_splits > 1 ? (int64_t)n * n_heads * n_splits * (hd + 2) : 0;
}

size_t qtts_k_attention_smem(int hd, int chunk) { return ((size_t)hd + (size_t)chunk + ATT_THREADS) * sizeof(float); }

cudaError_t qtts_k_attention(const float *q, qtts_k_kv c, int layer, const int32_t *slot, const int32_t *pos, int n, int n_heads,
                             float scale, int window, int chunk, int n_splits, float *ws, float *out, qtts_k_stream s) {
    if (n <= 0 || n_heads <= 0) return cudaSuccess;
    if (chunk < 1 || n_splits < 1 || n_splits > 65535 || n_heads > 65535 || (n_splits > 1 && !ws)) return cudaErrorInvalidValue;
    size_t smem = qtts_k_attention_smem(c.head_dim, chunk);
    if (smem > QTTS_ATTN_SMEM_MAX) return cudaErrorInvalidValue;
    dim3 grid((unsigned)n, (unsigned)n_heads, (unsigned)n_splits);
    cudaError_t e = launch(k_attention, grid, ATT_THREADS, smem, s, q, c, layer, slot, pos, n_heads, scale, window, chunk, ws, out);
    if (e != cudaSuccess || n_splits == 1) return e;
    return launch(k_attention_combine, dim3((unsigned)n, (unsigned)n_heads), 128, 0, s, ws, n, n_heads, c.head_dim, n_splits, out);
}

} /* extern "C" */
