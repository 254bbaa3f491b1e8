/* One row's draw by one block (sample.cu's header says what it computes and
 * how it matches the CPU): k_sample runs it per row, the persistent code
 * predictor (predictor.cu) in its sampling phases. Works for any blockDim.x
 * that is a multiple of 32 up to 1024; the row lives in shared memory as
 * (value, id) pairs padded to a power of two n >= V with -inf. */
#ifndef QTTS_SAMPLE_CUH
#define QTTS_SAMPLE_CUH

#include "common.cuh"

static __device__ uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* the same bits as qtts_rng_uniform */
static __device__ double rng_uniform(uint64_t seed, uint64_t counter) {
    uint64_t z = mix64(mix64(seed) ^ (counter * 0xd1b54a32d192ed03ull));
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* a goes before b: larger value, then smaller id */
static __device__ __forceinline__ bool before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

/* Candidates the top-k preselection sorts at most (more ties at the k-th
 * value: the full sort). */
#define SAMPLE_CAND 128
/* top_k up to this takes the preselection */
#define SAMPLE_FAST_K 64

/* The shared scalars of a draw, and the preselection's histogram and candidates. */
struct sample_smem {
    float wv[32];
    int wi[32];
    int best, live, bin, want, cnt;
    int hist[256];
    float cv[SAMPLE_CAND];
    int ci[SAMPLE_CAND];
};

/* An order-preserving key of a float: larger value, larger key. */
static __device__ __forceinline__ unsigned fkey(float v) {
    unsigned u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

/* Bitonic sort of N (a power of two) pairs into candidate order, by the block. */
static __device__ void block_bitonic(float *val, int *idx, int N) {
    for (int k = 2; k <= N; k <<= 1)
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < N; i += blockDim.x) {
                int p = i ^ j;
                if (p > i) {
                    bool asc = (i & k) == 0; /* this run ends up in candidate order */
                    bool swap = asc ? before(val[p], idx[p], val[i], idx[i]) : before(val[i], idx[i], val[p], idx[p]);
                    if (swap) {
                        float tv = val[i];
                        val[i] = val[p];
                        val[p] = tv;
                        int ti = idx[i];
                        idx[i] = idx[p];
                        idx[p] = ti;
                    }
                }
            }
            __syncthreads();
        }
}

/* Top-k preselection: with 0 < k < live, the key of the k-th largest live
 * value (radix select, 8 bits a round), then every live entry at or above
 * it (the top k and its ties, as the CPU keeps them) into ss->cv / ci,
 * sorted; returns their count, or 0 when they are more than SAMPLE_CAND. */
static __device__ int topk_candidates(const float *val, int V, int k, sample_smem *ss) {
    unsigned prefix = 0, mask = 0;
    if (threadIdx.x == 0) ss->want = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) ss->hist[b] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if (val[i] > -INFINITY) {
                unsigned u = fkey(val[i]);
                if ((u & mask) == prefix) atomicAdd(&ss->hist[(u >> shift) & 255], 1);
            }
        __syncthreads();
        if (threadIdx.x == 0) { /* the bin holding the want-th largest, from the top */
            int acc = 0, b = 255;
            for (; b > 0; b--) {
                if (acc + ss->hist[b] >= ss->want) break;
                acc += ss->hist[b];
            }
            ss->bin = b;
            ss->want -= acc;
        }
        __syncthreads();
        prefix |= (unsigned)ss->bin << shift;
        mask |= 255u << shift;
    }
    if (threadIdx.x == 0) ss->cnt = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (val[i] > -INFINITY && fkey(val[i]) >= prefix) {
            int at = atomicAdd(&ss->cnt, 1);
            if (at < SAMPLE_CAND) {
                ss->cv[at] = val[i];
                ss->ci[at] = i;
            }
        }
    __syncthreads();
    int c = ss->cnt;
    if (c > SAMPLE_CAND) return 0;
    int n2 = 2;
    while (n2 < c) n2 *= 2;
    for (int i = c + threadIdx.x; i < n2; i += blockDim.x) { /* padding sorts last */
        ss->cv[i] = -INFINITY;
        ss->ci[i] = 0x7fffffff;
    }
    __syncthreads();
    block_bitonic(ss->cv, ss->ci, n2);
    return c;
}

/* Pairs a row of V logits takes in shared memory: the power of two >= V (>= 32). */
static __device__ __host__ __forceinline__ int sample_pairs(int V) {
    int n = 32;
    while (n < V) n *= 2;
    return n;
}

/* The token row l (V logits, read only) draws under r, with the seen row
 * sr (NULL: no penalty); -1 when every logit is banned or NaN. val / idx:
 * sample_pairs(V) entries of shared memory each. Every thread of the block
 * calls it and gets the token. (l has no __restrict__: gemv.cuh, dot_row.) */
static __device__ int sample_row(const float *l, int V, const qtts_k_sample_row &r, const uint8_t *__restrict__ sr,
                                 float *val, int *idx, sample_smem *ss) {
    int N = sample_pairs(V);
    for (int i = threadIdx.x; i < N; i += blockDim.x) {
        float v = -INFINITY;
        if (i < V) {
            v = l[i];
            if (sr && r.penalty != 1.0f && sr[i]) v = v < 0 ? v * r.penalty : v / r.penalty;
            if ((i >= r.ban_from && i != r.keep_id) || i == r.ban_id || isnan(v)) v = -INFINITY;
        }
        val[i] = v;
        idx[i] = i;
    }
    __syncthreads();
    if (r.greedy) {
        /* block argmax, first maximum: thread-local scan then a shared reduction */
        float bv = -INFINITY;
        int bi = -1;
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if (val[i] > -INFINITY && (bi < 0 || val[i] > bv)) {
                bv = val[i];
                bi = i;
            }
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_down_sync(0xffffffffu, bv, off);
            int oi = __shfl_down_sync(0xffffffffu, bi, off);
            if (oi >= 0 && (bi < 0 || before(ov, oi, bv, bi))) {
                bv = ov;
                bi = oi;
            }
        }
        if ((threadIdx.x & 31) == 0) {
            ss->wv[threadIdx.x >> 5] = bv;
            ss->wi[threadIdx.x >> 5] = bi;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            bv = -INFINITY;
            bi = -1;
            for (int w = 0; w < (int)(blockDim.x >> 5); w++)
                if (ss->wi[w] >= 0 && (bi < 0 || before(ss->wv[w], ss->wi[w], bv, bi))) {
                    bv = ss->wv[w];
                    bi = ss->wi[w];
                }
            ss->best = bi;
        }
    } else {
        float t = r.temperature > 0 ? r.temperature : 1.0f;
        /* scale and count the live (finite) candidates in parallel: they are
         * the sorted prefix the sequential loops below walk */
        if (threadIdx.x == 0) ss->live = 0;
        __syncthreads();
        int live = 0;
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if (val[i] > -INFINITY) {
                val[i] /= t;
                live++;
            }
        for (int off = 16; off > 0; off >>= 1) live += __shfl_down_sync(0xffffffffu, live, off);
        if ((threadIdx.x & 31) == 0 && live) atomicAdd(&ss->live, live);
        __syncthreads();
        /* the candidates in the CPU's order: the top k (and ties) alone
         * when k is small, else every pair sorted */
        int m0 = ss->live, c = 0;
        if (r.top_k > 0 && r.top_k < m0 && r.top_k <= SAMPLE_FAST_K) c = topk_candidates(val, V, r.top_k, ss);
        float *cv = c ? ss->cv : val;
        int *ci = c ? ss->ci : idx;
        if (!c) block_bitonic(val, idx, N);
        if (threadIdx.x == 0) {
            int m = c ? c : m0;
            if (m == 0) {
                ss->best = -1;
            } else {
                if (r.top_k > 0 && r.top_k < m) {
                    float kth = cv[r.top_k - 1];
                    int keep = r.top_k;
                    while (keep < m && cv[keep] >= kth) keep++;
                    m = keep;
                }
                float mx = cv[0];
                double sum = 0;
                for (int j = 0; j < m; j++) {
                    cv[j] = expf(cv[j] - mx);
                    sum += cv[j];
                }
                if (r.top_p < 1.0f) {
                    double cum = 0, thr = 1.0 - r.top_p;
                    int first_kept = m - 1;
                    for (int j = m - 1; j >= 0; j--) {
                        cum += cv[j] / sum;
                        if (cum > thr) {
                            first_kept = j;
                            break;
                        }
                    }
                    m = first_kept + 1;
                    sum = 0;
                    for (int j = 0; j < m; j++) sum += cv[j];
                }
                double target = rng_uniform(r.seed, r.counter) * sum, acc = 0;
                int pick = m - 1;
                for (int j = 0; j < m; j++) {
                    acc += cv[j];
                    if (target < acc) {
                        pick = j;
                        break;
                    }
                }
                ss->best = ci[pick];
            }
        }
    }
    __syncthreads();
    int best = ss->best;
    __syncthreads(); /* ss may be reused by the next call */
    return best;
}

#endif
