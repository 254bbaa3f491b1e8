/* Elementwise and data-movement ops: fp32->bf16 conversion (matmul inputs
 * for cuBLAS), embedding gather from a bf16 table, add, bias add, SwiGLU,
 * SiLU, exact GELU, clamp, per-column scale (layer scale), SnakeBeta and the
 * [B,R,S] -> [B,S,R] transpose, and row gather/scatter by an index list.
 *
 * Geometry: the pointwise ops are grid-stride loops, 256 threads per block,
 * at most 4096 blocks, one fp32 per thread per iteration (coalesced; no
 * vector loads yet: these ops are a small share of a decode step and stay
 * simple until an H100 profile says otherwise). embed: one block per token,
 * 256 threads striding the row. transpose: 32x32 tiles through shared memory
 * (one padding column against bank conflicts), block 32x8, grid
 * (ceil(S/32), ceil(R/32), B), so both the read and the write are coalesced.
 *
 * Each formula is written exactly as its CPU twin in src/backend_cpu.c
 * (same fp32 expression), so differences come only from the device's libm
 * (expf/sinf/erff within 2 ulp). Tested on an H100 (tests/test_cuda_ops.c). */
#include "common.cuh"

#define EW_THREADS 256

#define GRID_STRIDE(i, len) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (len); i += (int64_t)gridDim.x * blockDim.x)

__global__ void k_f32_to_bf16(const float *__restrict__ x, uint16_t *__restrict__ y, int64_t len) {
    pdl_prologue();
    GRID_STRIDE(i, len) y[i] = f2bf16(x[i]);
}

__global__ void k_embed(const uint16_t *__restrict__ table, const int32_t *__restrict__ ids, int64_t rows, int64_t d,
                        float *__restrict__ out) {
    pdl_prologue();
    int64_t id = ids[blockIdx.x];
    float *o = out + (int64_t)blockIdx.x * d;
    if (id < 0 || id >= rows) { /* out of range: a zero row (block-uniform) */
        for (int64_t j = threadIdx.x; j < d; j += blockDim.x) o[j] = 0.0f;
        return;
    }
    const uint16_t *row = table + id * d;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) o[j] = bf16f(row[j]);
}

/* One block per output row: the table ids in shared memory, then each thread
 * sums its columns over the tables in table order (as the CPU twin: first
 * table's row, then += each next one; out-of-range ids add nothing). */
__global__ void k_embed_sum(qtts_k_tables t, const int32_t *__restrict__ ids, int stride, int64_t d, float *__restrict__ out) {
    pdl_prologue();
    __shared__ int64_t sid[QTTS_K_EMBED_SUM_MAX];
    int i = blockIdx.x;
    if (threadIdx.x < t.n) {
        int64_t id = ids[(int64_t)threadIdx.x * stride + i];
        sid[threadIdx.x] = id >= 0 && id < t.rows[threadIdx.x] ? id : -1;
    }
    __syncthreads();
    float *o = out + (int64_t)i * d;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        float acc = sid[0] >= 0 ? bf16f(t.tab[0][sid[0] * d + j]) : 0.0f;
        for (int k = 1; k < t.n; k++)
            if (sid[k] >= 0) acc = acc + bf16f(t.tab[k][sid[k] * d + j]);
        o[j] = acc;
    }
}

/* dst[i] = src[idx[i]] (gather) or dst[idx[i]] = src[i] (scatter), rows of dim floats */
__global__ void k_move_rows(const float *__restrict__ src, const int32_t *__restrict__ idx, int64_t len, int dim, int scatter,
                            float *__restrict__ dst) {
    pdl_prologue();
    GRID_STRIDE(i, len) {
        int64_t r = i / dim, j = i % dim, m = idx[r];
        if (scatter) dst[m * dim + j] = src[i];
        else dst[i] = src[m * dim + j];
    }
}

/* y may alias a or b: each element is read then written by one thread. */
__global__ void k_add(const float *a, const float *b, float *y, int64_t len) {
    pdl_prologue();
    GRID_STRIDE(i, len) y[i] = a[i] + b[i];
}

__global__ void k_add_bias(float *y, const float *__restrict__ bias, int64_t len, int dim) {
    pdl_prologue();
    GRID_STRIDE(i, len) y[i] += bias[i % dim];
}

__global__ void k_swiglu(const float *__restrict__ gu, float *__restrict__ y, int64_t len, int inter) {
    pdl_prologue();
    GRID_STRIDE(i, len) {
        int64_t r = i / inter, j = i % inter;
        const float *g = gu + r * 2 * inter;
        y[i] = silu_f(g[j]) * g[inter + j];
    }
}

__global__ void k_silu(float *x, int64_t len) {
    pdl_prologue();
    GRID_STRIDE(i, len) x[i] = silu_f(x[i]);
}

__global__ void k_gelu(float *x, int64_t len) {
    pdl_prologue();
    GRID_STRIDE(i, len) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}

__global__ void k_clamp(float *x, int64_t len, float lo, float hi) {
    pdl_prologue();
    GRID_STRIDE(i, len) {
        float v = x[i];
        x[i] = v < lo ? lo : v > hi ? hi : v; /* NaN passes through, as on the CPU */
    }
}

__global__ void k_scale_rows(const float *x, const float *__restrict__ sc, float *y, int64_t len, int dim) {
    pdl_prologue();
    GRID_STRIDE(i, len) y[i] = x[i] * sc[i % dim];
}

__global__ void k_snake(const float *x, const float *__restrict__ alpha, const float *__restrict__ beta, float *y, int64_t len, int C,
                        int T) {
    pdl_prologue();
    GRID_STRIDE(i, len) {
        int c = (int)((i / T) % C);
        float inv = 1.0f / (beta[c] + 1e-9f), xv = x[i];
        float sn = sinf(alpha[c] * xv);
        y[i] = xv + inv * sn * sn;
    }
}

__global__ void k_transpose(const float *__restrict__ x, float *__restrict__ y, int R, int S) {
    pdl_prologue();
    __shared__ float tile[32][33];
    const float *xb = x + (int64_t)blockIdx.z * R * S;
    float *yb = y + (int64_t)blockIdx.z * R * S;
    int s0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
        int r = r0 + i, c = s0 + threadIdx.x;
        if (r < R && c < S) tile[i][threadIdx.x] = xb[(int64_t)r * S + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
        int c = s0 + i, r = r0 + threadIdx.x;
        if (c < S && r < R) yb[(int64_t)c * R + r] = tile[threadIdx.x][i];
    }
}

extern "C" {

#define LAUNCH_EW(kernel, len, ...)                                                \
    do {                                                                           \
        if ((len) <= 0) return cudaSuccess;                                        \
        return launch(kernel, grid_for((len), EW_THREADS), EW_THREADS, 0, s, __VA_ARGS__); \
    } while (0)


cudaError_t qtts_k_f32_to_bf16(const float *x, uint16_t *y, int64_t len, qtts_k_stream s) { LAUNCH_EW(k_f32_to_bf16, len, x, y, len); }

cudaError_t qtts_k_embed(const uint16_t *table, const int32_t *ids, int n, int64_t rows, int64_t d, float *out, qtts_k_stream s) {
    if (n <= 0) return cudaSuccess;
    return launch(k_embed, n, EW_THREADS, 0, s, table, ids, rows, d, out);
}

cudaError_t qtts_k_embed_sum(qtts_k_tables t, const int32_t *ids, int stride, int n, int64_t d, float *out, qtts_k_stream s) {
    if (n <= 0) return cudaSuccess;
    static_assert(EW_THREADS >= QTTS_K_EMBED_SUM_MAX, "one thread loads each table's id");
    if (t.n < 1 || t.n > QTTS_K_EMBED_SUM_MAX) return cudaErrorInvalidValue;
    return launch(k_embed_sum, n, EW_THREADS, 0, s, t, ids, stride, d, out);
}

cudaError_t qtts_k_add(const float *a, const float *b, float *y, int64_t len, qtts_k_stream s) { LAUNCH_EW(k_add, len, a, b, y, len); }

cudaError_t qtts_k_move_rows(const float *src, const int32_t *idx, int n, int dim, int scatter, float *dst, qtts_k_stream s) {
    int64_t len = (int64_t)n * dim;
    LAUNCH_EW(k_move_rows, len, src, idx, len, dim, scatter, dst);
}

cudaError_t qtts_k_add_bias(float *y, const float *bias, int n, int dim, qtts_k_stream s) {
    int64_t len = (int64_t)n * dim;
    LAUNCH_EW(k_add_bias, len, y, bias, len, dim);
}

cudaError_t qtts_k_swiglu(const float *gu, float *y, int n, int inter, qtts_k_stream s) {
    int64_t len = (int64_t)n * inter;
    LAUNCH_EW(k_swiglu, len, gu, y, len, inter);
}

cudaError_t qtts_k_silu(float *x, int64_t len, qtts_k_stream s) { LAUNCH_EW(k_silu, len, x, len); }
cudaError_t qtts_k_gelu(float *x, int64_t len, qtts_k_stream s) { LAUNCH_EW(k_gelu, len, x, len); }
cudaError_t qtts_k_clamp(float *x, int64_t len, float lo, float hi, qtts_k_stream s) { LAUNCH_EW(k_clamp, len, x, len, lo, hi); }

cudaError_t qtts_k_scale_rows(const float *x, const float *sc, float *y, int n, int dim, qtts_k_stream s) {
    int64_t len = (int64_t)n * dim;
    LAUNCH_EW(k_scale_rows, len, x, sc, y, len, dim);
}

cudaError_t qtts_k_snake(const float *x, const float *alpha, const float *beta, float *y, int B, int C, int T, qtts_k_stream s) {
    int64_t len = (int64_t)B * C * T;
    LAUNCH_EW(k_snake, len, x, alpha, beta, y, len, C, T);
}

cudaError_t qtts_k_transpose(const float *x, float *y, int B, int R, int S, qtts_k_stream s) {
    if (B <= 0 || R <= 0 || S <= 0) return cudaSuccess;
    dim3 grid((unsigned)((S + 31) / 32), (unsigned)((R + 31) / 32), (unsigned)B);
    return launch(k_transpose, grid, dim3(32, 8), 0, s, x, y, R, S);
}

} /* extern "C" */
