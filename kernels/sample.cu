/* Sampling on the GPU, the twin of src/sample.c + cpu_sample (backend_cpu.c):
 * per row, repetition penalty from the seen mask, banned ids, then argmax
 * (greedy) or temperature, top-k with ties kept, softmax, top-p and a draw
 * with the counter-based uniform u = qtts_rng_uniform(seed, counter).
 *
 * Geometry: one block of 1024 threads per row; the row (V <= 4096 entries:
 * 3072 for codebook 0, 2048 for the predictor) lives in shared memory as
 * (value, id) pairs, padded with -inf to the next power of two (the sort's
 * length: 4096 for codebook 0, 2048 for the predictor; sample.cuh). Greedy is a block argmax
 * (lowest id on ties, as the CPU's first-maximum scan). Otherwise a bitonic
 * sort orders candidates by descending value, ascending id (the CPU's
 * candidate order), and one thread then runs the CPU's sequential loops —
 * top-k cut, expf, double sum, top-p cut, inverse-CDF walk — so that the same
 * uniform picks the same token; the loops cover at most the survivors
 * (top_k, typically 50). Device expf may differ from glibc's by an ulp, which
 * can move a draw that lands within ~1e-7 of a boundary. The live count is
 * a parallel reduction: a sequential scan of 3072 shared entries cost ~50 us
 * per call on an H100 (bench/results, first GPU run). */
#include "sample.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_N 4096 /* the longest row */

__global__ void __launch_bounds__(SAMPLE_THREADS) k_sample(float *__restrict__ logits, int V, const qtts_k_sample_row *__restrict__ rows,
                                                             uint8_t *__restrict__ seen, int32_t *__restrict__ tokens) {
    pdl_prologue();
    __shared__ float val[SAMPLE_N];
    __shared__ int idx[SAMPLE_N];
    __shared__ sample_smem ss;
    const qtts_k_sample_row r = rows[blockIdx.x];
    uint8_t *sr = r.seen_row >= 0 && seen ? seen + (int64_t)r.seen_row * V : nullptr;
    int best = sample_row(logits + (int64_t)blockIdx.x * V, V, r, sr, val, idx, &ss);
    if (threadIdx.x == 0) {
        tokens[blockIdx.x] = best;
        if (sr && best >= 0) sr[best] = 1;
    }
}

extern "C" cudaError_t qtts_k_sample(float *logits, int n, int V, const qtts_k_sample_row *rows, uint8_t *seen, int32_t *tokens,
                                     qtts_k_stream s) {
    if (n <= 0) return cudaSuccess;
    if (V > SAMPLE_N) return cudaErrorInvalidValue;
    return launch(k_sample, n, SAMPLE_THREADS, 0, s, logits, V, rows, seen, tokens);
}
