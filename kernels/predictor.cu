/* The code predictor of one frame as one persistent kernel: for nb <= 4 rows
 * (single-stream and small-batch decode), 15 passes x 5 layers of
 * projections, attention, head and sampling without a kernel boundary.
 *
 * Why: a frame's predictor is 16 dependent passes over ~157 MB of layers
 * (1.7B). As separate kernels (even replayed from a CUDA graph) that is
 * ~500 launches of ~1-6 us each whose weight traffic is ~0.7 us, so the
 * predictor ran at 6x its bandwidth floor (bench/README.md). Here the grid
 * stays resident (a cooperative launch: one block per SM, all co-resident)
 * and the phases of the sequence are separated by grid-wide barriers, which
 * cost about as much as a kernel boundary's drain but no launch, no
 * scheduling and no tail of idle SMs.
 *
 * The sequence (model.c: qtts_predict_frame, the twin; every phase reads
 * only what a barrier published):
 *   gather: pe[j] = past_hidden[act[j]], pe[nb + j] = E0[tok[0][j]]
 *   for codebook k = 1 .. G-1 (pass k; pass 1 has 2nb tokens at positions
 *   0 and 1, later passes nb tokens at position k):
 *     [mtp] px = pe Wmtp^T + b                       (1.7B; else pe is px)
 *     per layer: qkv  q,k,v = rmsnorm(px) Wq,k,v^T   (one GEMV job, 3 weights)
 *                att  q/k norm, RoPE, KV append, attention (block per (row, kv head))
 *                o    px += att Wo^T
 *                mlp  mlp = swiglu(rmsnorm(px) Wgu^T)
 *                down px += mlp Wdown^T
 *     head   logits_k = rmsnorm(px of each row's last token) Wh_k^T
 *     sample tok[k][j] = draw(logits_k[j]); pe[j] = E_k[tok[k][j]] (block per row)
 * GEMV phases spread the output rows over every warp of the grid (gemv.cuh:
 * one warp per row, all tokens at once); the attention and sampling phases
 * are the blocks of attend.cuh and sample.cuh. Activations stay fp32 (the
 * op sequence rounds them to bf16 where it goes through cuBLAS: its first
 * pass at nb >= 2); weights are read once per pass. Before each barrier a
 * block asks L2 for the next GEMV phase's weights (grid_prefetch), so that
 * weight streaming goes on through the barrier waits and the attention and
 * sampling phases, which read none.
 *
 * The grid barrier: thread 0 of each block adds to one counter, block 0 adds
 * 2^31 - (blocks - 1) and the others 1, so the top bit flips exactly when
 * every block has arrived, and each thread 0 waits for the flip it saw
 * coming; fences before and after publish the phase's writes. The counter
 * needs no reset. A cooperative launch guarantees the co-residency the
 * spinning needs (it fails rather than deadlock). It is never launched with
 * PDL: an overlap with the kernel before it would hold SMs that the
 * co-residency count assumed free. */
#include "attend.cuh"
#include "gemv.cuh"
#include "sample.cuh"

#define PRED_THREADS 512
#define PRED_SMALL 704 /* floats of shared memory before the phase area: red[32], rstd[8], then sample_smem from float 64 */

static_assert(QTTS_K_PRED_MAX_NB * 2 <= 8, "rstd holds 8 tokens");
static_assert(sizeof(sample_smem) <= (PRED_SMALL - 64) * sizeof(float), "sample_smem fits its slot");

/* A barrier wait past this means a fault, not a slow phase (a phase takes
 * microseconds, milliseconds under compute-sanitizer): the kernel traps, so
 * the error reaches the host at its next sync instead of the process
 * hanging until something kills it. */
#define PRED_BARRIER_TIMEOUT_NS 10000000000ull

static __device__ __forceinline__ unsigned long long timer_ns() {
#ifdef __CUDA_ARCH__
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
#else
    return 0; /* the emulator: no timeout (ctest's catches a hang) */
#endif
}

static __device__ __noinline__ void barrier_timeout() {
#ifdef __CUDA_ARCH__
    printf("qtts: persistent code predictor: block %u of %u waited over %llu s at a grid barrier; rerun with "
           "--cuda-persistent off and report this\n",
           blockIdx.x, gridDim.x, PRED_BARRIER_TIMEOUT_NS / 1000000000ull);
    __trap();
#endif
}

static __device__ void grid_sync(unsigned *bar) {
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
        __threadfence();
        unsigned old = atomicAdd(bar, add);
        unsigned long long t0 = timer_ns();
        while (((old ^ *(volatile unsigned *)bar) & 0x80000000u) == 0) {
            __nanosleep(32);
            if (timer_ns() - t0 > PRED_BARRIER_TIMEOUT_NS) barrier_timeout();
        }
        __threadfence();
    }
    __syncthreads();
}

/* Ask L2 for a weight matrix of `bytes` ahead of the phase that reads it,
 * one 128-byte line per thread of the grid in turn. Weights do not depend on
 * the activations, so a block that has finished its share of a phase asks
 * for the next phase's weights before it waits at the barrier: HBM streams
 * them while the grid drains, instead of idling through every barrier. A
 * hint: results do not change (the emulator skips it). */
static __device__ __forceinline__ void grid_prefetch(const void *w, int64_t bytes) {
    l2_prefetch(w, bytes, blockIdx.x * (int64_t)blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x);
}

/* Layer l's q, k and v projections. */
static __device__ void prefetch_qkv(const qtts_k_predictor &p, int l) {
    int64_t row = (int64_t)p.hidden * 2, q = (int64_t)p.n_heads * p.head_dim, kv = (int64_t)p.n_kv * p.head_dim;
    grid_prefetch(p.layer[l].wq, q * row);
    grid_prefetch(p.layer[l].wk, kv * row);
    grid_prefetch(p.layer[l].wv, kv * row);
}

/* The first weights of a pass: its mtp projection, else layer 0's q/k/v. */
static __device__ void prefetch_pass(const qtts_k_predictor &p) {
    if (p.mtp_w) grid_prefetch(p.mtp_w, (int64_t)p.hidden * p.in_hidden * 2);
    else prefetch_qkv(p, 0);
}

static __device__ qtts_k_gemv_job job(const float *x, const float *norm, float eps, int mode, const uint16_t *w, float *y, int out) {
    qtts_k_gemv_job j = {};
    j.x = x;
    j.norm = norm;
    j.eps = eps;
    j.mode = mode;
    j.nw = 1;
    j.w[0] = w;
    j.y[0] = y;
    j.out[0] = out;
    return j;
}

/* The rows of job j over every warp of the grid, for NT tokens. */
template <int NT>
static __device__ void grid_gemv(const qtts_k_gemv_job &j, int in, float *red, float *rstd) {
    int vec = gemv_vec(j, in), rows = gemv_rows(j), lane = threadIdx.x & 31, nwb = blockDim.x >> 5;
    int nw = gridDim.x * nwb, r0 = blockIdx.x * nwb + (threadIdx.x >> 5);
    if (j.norm) {
        gemv_rstd<NT>(j, in, red, rstd);
        for (int r = r0; r < rows; r += nw) gemv_row<NT, true>(j, in, vec, r, rstd, lane);
    } else {
        for (int r = r0; r < rows; r += nw) gemv_row<NT, false>(j, in, vec, r, rstd, lane);
    }
}

/* nt tokens: 2NB in the first pass, NB after it */
template <int NB>
static __device__ void gemv_phase(const qtts_k_gemv_job &j, int nt, int in, float *red, float *rstd) {
    if (nt == 2 * NB) grid_gemv<2 * NB>(j, in, red, rstd);
    else grid_gemv<NB>(j, in, red, rstd);
}

/* dst [2nb][in_hidden]: rows j the slots' last hidden states, rows nb + j
 * the codebook-0 embeddings of their c0 (a zero row for an id out of range). */
static __device__ void gather_inputs(const qtts_k_predictor &p, int nb, float *dst) {
    int64_t Hin = p.in_hidden, len = 2 * nb * Hin;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < len; e += (int64_t)gridDim.x * blockDim.x) {
        int row = (int)(e / Hin);
        int64_t d = e % Hin;
        float v = 0.0f;
        if (row < nb) {
            v = p.past_hidden[(int64_t)p.act[row] * Hin + d];
        } else {
            int64_t id = p.tok[row - nb];
            if (id >= 0 && id < p.c0_rows) v = bf16f(p.c0_embed[id * Hin + d]);
        }
        dst[e] = v;
    }
}

/* Layer l's attention of pass k: block per (row j, kv head); in the first
 * pass the block does row j's position 0, then its position 1 (which
 * attends to the 0 it just stored). */
static __device__ void attend_phase(const qtts_k_predictor &p, int l, int k, int nb, float *sm, float *red) {
    const qtts_k_pred_layer &L = p.layer[l];
    for (int item = blockIdx.x; item < nb * p.n_kv; item += gridDim.x) {
        int j = item / p.n_kv, kh = item % p.n_kv;
        __syncthreads(); /* sm of the previous item */
        if (k == 1) {
            rope_attend_head(p.q, p.k, p.v, L.q_norm, L.k_norm, p.eps, j, j, 0, p.n_heads, p.theta, p.kv, l, p.scale, p.att, kh, sm,
                             p.n_groups, red);
            __syncthreads(); /* position 0 in the cache */
            rope_attend_head(p.q, p.k, p.v, L.q_norm, L.k_norm, p.eps, nb + j, j, 1, p.n_heads, p.theta, p.kv, l, p.scale, p.att, kh, sm,
                             p.n_groups, red);
        } else {
            rope_attend_head(p.q, p.k, p.v, L.q_norm, L.k_norm, p.eps, j, j, k, p.n_heads, p.theta, p.kv, l, p.scale, p.att, kh, sm,
                             p.n_groups, red);
        }
    }
}

/* Block per row: draw codebook k, then (k < G-1) the row's next input, the
 * embedding of the drawn code (a zero row for -1: every logit banned). */
static __device__ void sample_phase(const qtts_k_predictor &p, int k, int nb, const float *lk, float *next, float *sm, sample_smem *ss) {
    float *val = sm;
    int *idx = (int *)(sm + sample_pairs(p.vocab));
    int64_t Hin = p.in_hidden;
    for (int j = blockIdx.x; j < nb; j += gridDim.x) {
        const qtts_k_sample_row r = p.rows[(int64_t)(k - 1) * nb + j];
        int t = sample_row(lk + (int64_t)j * p.vocab, p.vocab, r, nullptr, val, idx, ss);
        if (threadIdx.x == 0) p.tok[(int64_t)k * p.tok_stride + j] = t;
        if (k + 1 < p.n_groups) {
            const uint16_t *e = t >= 0 && t < p.embed_rows ? p.embed[k - 1] + (int64_t)t * Hin : nullptr;
            for (int64_t d = threadIdx.x; d < Hin; d += blockDim.x) next[(int64_t)j * Hin + d] = e ? bf16f(e[d]) : 0.0f;
        }
    }
}

template <int NB>
__global__ void __launch_bounds__(PRED_THREADS, 1) k_predict_frame(qtts_k_predictor p) {
    DYN_SHARED(float, sm);
    float *red = sm, *rstd = sm + 32, *area = sm + PRED_SMALL;
    sample_smem *ss = (sample_smem *)(sm + 64);
    int H = p.hidden, Hin = p.in_hidden, nh = p.n_heads, nkv = p.n_kv, hd = p.head_dim;
    float *in_rows = p.mtp_w ? p.pe : p.px; /* where gather and sample put a pass's inputs */
    int64_t wo_bytes = (int64_t)nh * hd * H * 2;
    gather_inputs(p, NB, in_rows);
    prefetch_pass(p);
    grid_sync(p.barrier);
    for (int k = 1; k < p.n_groups; k++) {
        int nt = k == 1 ? 2 * NB : NB;
        if (p.mtp_w) {
            qtts_k_gemv_job j = job(p.pe, nullptr, 0.0f, QTTS_GEMV_SET, p.mtp_w, p.px, H);
            j.bias = p.mtp_b;
            gemv_phase<NB>(j, nt, Hin, red, rstd);
            prefetch_qkv(p, 0);
            grid_sync(p.barrier);
        }
        for (int l = 0; l < p.n_layers; l++) {
            const qtts_k_pred_layer &L = p.layer[l];
            qtts_k_gemv_job qkv = job(p.px, L.in_norm, p.eps, QTTS_GEMV_SET, L.wq, p.q, nh * hd);
            qkv.nw = 3;
            qkv.w[1] = L.wk, qkv.y[1] = p.k, qkv.out[1] = nkv * hd;
            qkv.w[2] = L.wv, qkv.y[2] = p.v, qkv.out[2] = nkv * hd;
            gemv_phase<NB>(qkv, nt, H, red, rstd);
            grid_prefetch(L.wo, wo_bytes); /* over the attention phase, which reads no weights */
            grid_sync(p.barrier);
            attend_phase(p, l, k, NB, area, red);
            grid_sync(p.barrier);
            gemv_phase<NB>(job(p.att, nullptr, 0.0f, QTTS_GEMV_ADD, L.wo, p.px, H), nt, nh * hd, red, rstd);
            grid_prefetch(L.w_gate_up, 2 * (int64_t)p.inter * H * 2);
            grid_sync(p.barrier);
            gemv_phase<NB>(job(p.px, L.post_norm, p.eps, QTTS_GEMV_SWIGLU, L.w_gate_up, p.mlp, p.inter), nt, H, red, rstd);
            grid_prefetch(L.w_down, (int64_t)H * p.inter * 2);
            grid_sync(p.barrier);
            gemv_phase<NB>(job(p.mlp, nullptr, 0.0f, QTTS_GEMV_ADD, L.w_down, p.px, H), nt, p.inter, red, rstd);
            if (l + 1 < p.n_layers) prefetch_qkv(p, l + 1);
            else grid_prefetch(p.head[k - 1], (int64_t)p.vocab * H * 2);
            grid_sync(p.barrier);
        }
        /* the head reads each row's last token: rows nb.. in the first pass */
        float *lk = p.logits + (int64_t)(k - 1) * p.logits_stride;
        grid_gemv<NB>(job(p.px + (k == 1 ? (int64_t)NB * H : 0), p.norm, p.eps, QTTS_GEMV_SET, p.head[k - 1], lk, p.vocab), H, red, rstd);
        if (k + 1 < p.n_groups) prefetch_pass(p); /* over the sampling phase */
        grid_sync(p.barrier);
        sample_phase(p, k, NB, lk, in_rows, area, ss);
        if (k + 1 < p.n_groups) grid_sync(p.barrier);
    }
}

/* Floats of the phase area: the sampler's pairs or one attention item. */
static size_t pred_area(const qtts_k_predictor *p) {
    size_t s = 2 * (size_t)sample_pairs(p->vocab), a = rope_attend_smem(p->n_heads / p->n_kv, p->head_dim, p->n_groups, PRED_THREADS);
    return s > a ? s : a;
}

static size_t pred_smem(const qtts_k_predictor *p) { return (PRED_SMALL + pred_area(p)) * sizeof(float); }

static void (*pred_kernel(int nb))(qtts_k_predictor) {
    switch (nb) {
    case 1: return k_predict_frame<1>;
    case 2: return k_predict_frame<2>;
    case 3: return k_predict_frame<3>;
    case 4: return k_predict_frame<4>;
    }
    return nullptr;
}
static_assert(QTTS_K_PRED_MAX_NB == 4, "k_predict_frame is instantiated for 1..4 rows");

/* Blocks of a co-resident grid on the current device: one per SM (more
 * would only add barrier arrivals; a block's 16 warps keep enough weight
 * reads in flight); 0 when the device cannot run it. */
static int pred_grid(const qtts_k_predictor *p) {
    int dev = 0, sms = 0, coop = 0, per_sm = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, pred_kernel(p->nb), PRED_THREADS, pred_smem(p)) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return coop && per_sm >= 1 ? sms : 0;
}

/* Shapes the kernel takes (device aside). */
static bool pred_shapes_ok(const qtts_k_predictor *p) {
    if (p->nb < 1 || p->nb > QTTS_K_PRED_MAX_NB || p->n_layers < 1 || p->n_layers > QTTS_K_PRED_MAX_LAYERS) return false;
    if (p->n_groups < 2 || p->n_groups > QTTS_K_EMBED_SUM_MAX || p->vocab < 1 || p->vocab > 4096) return false;
    if (p->n_kv < 1 || p->n_heads % p->n_kv || p->head_dim < 1 || p->hidden < 1 || p->in_hidden < 1 || p->inter < 1) return false;
    if (!p->mtp_w && p->in_hidden != p->hidden) return false;
    if (p->kv.n_slots < p->nb || p->kv.max_len < p->n_groups || p->kv.n_layers < p->n_layers) return false;
    return pred_smem(p) <= (48 << 10);
}

extern "C" int qtts_k_predict_frame_grid(const qtts_k_predictor *p) { return pred_shapes_ok(p) ? pred_grid(p) : 0; }

extern "C" cudaError_t qtts_k_predict_frame(const qtts_k_predictor *p, int grid, qtts_k_stream s) {
    if (!pred_shapes_ok(p) || grid < 1 || !p->barrier) return cudaErrorInvalidValue;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeCooperative;
    at[0].val.cooperative = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)grid);
    cfg.blockDim = dim3(PRED_THREADS);
    cfg.dynamicSmemBytes = pred_smem(p);
    cfg.stream = s.stream; /* s.pdl ignored: see the file's comment */
    cfg.attrs = at;
    cfg.numAttrs = 1;
    cudaError_t e = cudaLaunchKernelEx(&cfg, pred_kernel(p->nb), *p);
    return e != cudaSuccess ? e : cudaGetLastError();
}
