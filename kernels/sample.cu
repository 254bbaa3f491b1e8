/* Sampling on the GPU, the twin of src/sample.c + cpu_sample (backend_cpu.c):
 * per row, repetition penalty from the seen mask, banned ids, then argmax
 * (greedy) or temperature, top-k with ties kept, softmax, top-p and a draw
 * with the counter-based uniform u = qtts_rng_uniform(seed, counter).
 *
 * Geometry: one block of 1024 threads per row; the row (V <= 4096 entries:
 * 3072 for codebook 0, 2048 for the predictor) lives in shared memory as
 * (value, id) pairs, padded to 4096 with -inf. Greedy is a block argmax
 * (lowest id on ties, as the CPU's first-maximum scan). Otherwise a bitonic
 * sort orders candidates by descending value, ascending id (the CPU's
 * candidate order), and one thread then runs the CPU's sequential loops —
 * top-k cut, expf, double sum, top-p cut, inverse-CDF walk — so that the same
 * uniform picks the same token; the loops cover at most the survivors
 * (top_k, typically 50). Device expf may differ from glibc's by an ulp, which
 * can move a draw that lands within ~1e-7 of a boundary. The live count is
 * a parallel reduction: a sequential scan of 3072 shared entries cost ~50 us
 * per call on an H100 (bench/results, first GPU run). */
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_N 4096

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

__global__ void __launch_bounds__(SAMPLE_THREADS) k_sample(float *__restrict__ logits, int V, const qtts_k_sample_row *__restrict__ rows,
                                                             uint8_t *__restrict__ seen, int32_t *__restrict__ tokens) {
    pdl_prologue();
    __shared__ float val[SAMPLE_N];
    __shared__ int idx[SAMPLE_N];
    __shared__ int s_best, s_live;
    const qtts_k_sample_row r = rows[blockIdx.x];
    float *l = logits + (int64_t)blockIdx.x * V;
    const uint8_t *sr = r.seen_row >= 0 && seen ? seen + (int64_t)r.seen_row * V : nullptr;
    for (int i = threadIdx.x; i < SAMPLE_N; i += blockDim.x) {
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
        __shared__ float wv[SAMPLE_THREADS / 32];
        __shared__ int wi[SAMPLE_THREADS / 32];
        if ((threadIdx.x & 31) == 0) {
            wv[threadIdx.x >> 5] = bv;
            wi[threadIdx.x >> 5] = bi;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            bv = -INFINITY;
            bi = -1;
            for (int w = 0; w < SAMPLE_THREADS / 32; w++)
                if (wi[w] >= 0 && (bi < 0 || before(wv[w], wi[w], bv, bi))) {
                    bv = wv[w];
                    bi = wi[w];
                }
            s_best = bi;
        }
    } else {
        float t = r.temperature > 0 ? r.temperature : 1.0f;
        /* scale and count the live (finite) candidates in parallel: they are
         * the sorted prefix the sequential loops below walk */
        if (threadIdx.x == 0) s_live = 0;
        __syncthreads();
        int live = 0;
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if (val[i] > -INFINITY) {
                val[i] /= t;
                live++;
            }
        for (int off = 16; off > 0; off >>= 1) live += __shfl_down_sync(0xffffffffu, live, off);
        if ((threadIdx.x & 31) == 0 && live) atomicAdd(&s_live, live);
        __syncthreads();
        /* bitonic sort of SAMPLE_N pairs into the CPU's candidate order */
        for (int k = 2; k <= SAMPLE_N; k <<= 1)
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int i = threadIdx.x; i < SAMPLE_N; i += blockDim.x) {
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
        if (threadIdx.x == 0) {
            int m = s_live;
            if (m == 0) {
                s_best = -1;
            } else {
                if (r.top_k > 0 && r.top_k < m) {
                    float kth = val[r.top_k - 1];
                    int keep = r.top_k;
                    while (keep < m && val[keep] >= kth) keep++;
                    m = keep;
                }
                float mx = val[0];
                double sum = 0;
                for (int j = 0; j < m; j++) {
                    val[j] = expf(val[j] - mx);
                    sum += val[j];
                }
                if (r.top_p < 1.0f) {
                    double cum = 0, thr = 1.0 - r.top_p;
                    int first_kept = m - 1;
                    for (int j = m - 1; j >= 0; j--) {
                        cum += val[j] / sum;
                        if (cum > thr) {
                            first_kept = j;
                            break;
                        }
                    }
                    m = first_kept + 1;
                    sum = 0;
                    for (int j = 0; j < m; j++) sum += val[j];
                }
                double target = rng_uniform(r.seed, r.counter) * sum, acc = 0;
                int pick = m - 1;
                for (int j = 0; j < m; j++) {
                    acc += val[j];
                    if (target < acc) {
                        pick = j;
                        break;
                    }
                }
                s_best = idx[pick];
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        tokens[blockIdx.x] = s_best;
        if (sr && s_best >= 0) seen[(int64_t)r.seen_row * V + s_best] = 1;
    }
}

extern "C" cudaError_t qtts_k_sample(float *logits, int n, int V, const qtts_k_sample_row *rows, uint8_t *seen, int32_t *tokens,
                                     cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (V > SAMPLE_N) return cudaErrorInvalidValue;
    return launch(k_sample, n, SAMPLE_THREADS, 0, s, logits, V, rows, seen, tokens);
}
