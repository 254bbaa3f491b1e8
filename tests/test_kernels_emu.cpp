/* The CUDA kernels of kernels/ (every .cu file) run on the CPU
 * (tests/emu/cuda_emu.h: a block's threads are fibers, __syncthreads and
 * the warp shuffles fiber barriers) against their CPU twins, the CPU
 * backend's ops, on seeded random inputs at several shapes (vector and
 * scalar GEMV paths, odd head sizes, split attention with its combine,
 * padding rows). This checks the kernels' index arithmetic, bounds and
 * barriers in CI, where there is no GPU; it does not replace the GPU run
 * (tests/test_cuda_ops.c, scripts/gpu_check.sh), which checks the same
 * kernels on the device. Tolerances: 1e-5 relative L2 (fp32 summation
 * order), 1e-6 for data movement, 5e-3 for values rounded to bf16. */

#include "cuda_emu.h" /* emu_launches */
#include "qtts_kernels.h"

extern "C" {
#include "backend.h"
#include "testutil.h"
}

#include <string>

static qtts_backend cpu;
static const qtts_k_stream S0 = {nullptr, 0}; /* the default stream, without PDL */
static uint64_t rng = 0xe3u;

static std::vector<float> rnd(size_t n, float scale) {
    std::vector<float> x(n);
    for (auto &v : x) v = (float)tu_rand_uniform(&rng) * scale;
    return x;
}
static void to_bf16_values(std::vector<float> &x) {
    for (auto &v : x) v = qtts_bf16_to_f32(qtts_f32_to_bf16(v));
}
static std::vector<uint16_t> bf16_of(const std::vector<float> &x) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); i++) b[i] = qtts_f32_to_bf16(x[i]);
    return b;
}

/* A CPU-backend weight from host values (released by the destructor). */
struct cpu_weight {
    qtts_tensor t;
    cpu_weight(const std::vector<float> &h, int ndim, int64_t s0, int64_t s1, int64_t s2 = 1) {
        qtts_st_tensor st = tu_f32_tensor("w", h.data(), ndim, s0, s1, s2);
        qtts_err err = {};
        CHECK(cpu.ops->upload(&cpu, &st, &t, &err) == QTTS_OK, "upload: %s", err.msg);
    }
    ~cpu_weight() { cpu.ops->release(&cpu, &t); }
};

static void expect_close(const std::string &name, const std::vector<float> &got, const std::vector<float> &ref, double tol) {
    CHECK(got.size() == ref.size() && tu_close(name.c_str(), got.data(), ref.data(), ref.size(), tol), "%s", name.c_str());
}

/* The fused GEMV in each mode against the CPU's fused ops (their unfused sequences). */
static void test_gemv(void) {
    int shapes[][4] = {{1, 64, 40, 24}, {2, 83, 33, 17}, {2, 128, 64, 32}, {1, 1000, 24, 8}}; /* n, in, out of q (and inter), of k and v */
    for (auto &sh : shapes) {
        int n = sh[0], in = sh[1], outs[3] = {sh[2], sh[3], sh[3]};
        std::string tag = "n=" + std::to_string(n) + " in=" + std::to_string(in) + (in % 8 ? " (scalar)" : " (vector)");
        auto x = rnd((size_t)n * in, 3.0f), g = rnd((size_t)in, 1.0f);
        cpu_weight gn(g, 1, in, 0);
        std::vector<std::vector<float>> W(3);
        std::vector<std::vector<uint16_t>> Wb(3);
        std::vector<std::unique_ptr<cpu_weight>> wc;
        const qtts_tensor *wt[3];
        for (int k = 0; k < 3; k++) {
            W[k] = rnd((size_t)outs[k] * in, 1.0f / std::sqrt((float)in));
            to_bf16_values(W[k]);
            Wb[k] = bf16_of(W[k]);
            wc.emplace_back(new cpu_weight(W[k], 2, outs[k], in));
            wt[k] = &wc.back()->t;
        }
        for (int nw = 1; nw <= 3; nw += 2) {
            std::vector<std::vector<float>> ref(3), got(3);
            float *rp[3], *gp[3];
            qtts_k_gemv_job j = {};
            j.x = x.data();
            j.norm = g.data();
            j.eps = 1e-6f;
            j.nw = nw;
            j.mode = QTTS_GEMV_SET;
            for (int k = 0; k < 3; k++) {
                ref[k].assign((size_t)n * outs[k], 0.0f);
                got[k].assign((size_t)n * outs[k], -1.0f);
                rp[k] = ref[k].data();
                gp[k] = got[k].data();
                j.w[k] = Wb[k].data();
                j.y[k] = gp[k];
                j.out[k] = outs[k];
            }
            cpu.ops->norm_matmul(&cpu, x.data(), &gn.t, 1e-6f, nw, wt, rp, n);
            CHECK(qtts_k_gemv_fused(&j, n, in, S0) == cudaSuccess, "gemv launch");
            for (int k = 0; k < nw; k++) expect_close("norm_matmul " + tag + " weight " + std::to_string(k) + " of " + std::to_string(nw), got[k], ref[k], 1e-5);
        }
        /* SwiGLU over [gate | up] rows: I = outs[0] */
        {
            int I = outs[0];
            auto Wgu = rnd((size_t)2 * I * in, 1.0f / std::sqrt((float)in));
            to_bf16_values(Wgu);
            auto Wgub = bf16_of(Wgu);
            cpu_weight wgu(Wgu, 2, 2 * I, in);
            std::vector<float> ref((size_t)n * I), got((size_t)n * I, -1.0f);
            cpu.ops->norm_swiglu(&cpu, x.data(), &gn.t, 1e-6f, &wgu.t, ref.data(), n);
            qtts_k_gemv_job j = {};
            j.x = x.data();
            j.norm = g.data();
            j.eps = 1e-6f;
            j.nw = 1;
            j.mode = QTTS_GEMV_SWIGLU;
            j.w[0] = Wgub.data();
            j.y[0] = got.data();
            j.out[0] = I;
            CHECK(qtts_k_gemv_fused(&j, n, in, S0) == cudaSuccess, "gemv swiglu launch");
            expect_close("norm_swiglu " + tag, got, ref, 1e-5);
        }
        /* residual add: y += x W^T with W [outs[0]][in] */
        {
            auto y0 = rnd((size_t)n * outs[0], 1.0f);
            std::vector<float> ref = y0, got = y0;
            cpu.ops->matmul_add(&cpu, x.data(), wt[0], ref.data(), n);
            qtts_k_gemv_job j = {};
            j.x = x.data();
            j.nw = 1;
            j.mode = QTTS_GEMV_ADD;
            j.w[0] = Wb[0].data();
            j.y[0] = got.data();
            j.out[0] = outs[0];
            CHECK(qtts_k_gemv_fused(&j, n, in, S0) == cudaSuccess, "gemv add launch");
            expect_close("matmul_add " + tag, got, ref, 1e-5);
        }
        /* the plain GEMV with a bias */
        {
            auto b = rnd((size_t)outs[1], 1.0f);
            cpu_weight wb(b, 1, outs[1], 0);
            std::vector<float> ref((size_t)n * outs[1]), got((size_t)n * outs[1], -1.0f);
            cpu.ops->matmul(&cpu, x.data(), wt[1], &wb.t, ref.data(), n);
            CHECK(qtts_k_gemv(x.data(), Wb[1].data(), b.data(), got.data(), n, outs[1], in, S0) == cudaSuccess, "gemv bias launch");
            expect_close("matmul+bias " + tag, got, ref, 1e-5);
        }
        /* misuse is refused, not run */
        qtts_k_gemv_job bad = {};
        bad.x = x.data();
        bad.nw = 2;
        bad.mode = QTTS_GEMV_SWIGLU;
        CHECK(qtts_k_gemv_fused(&bad, n, in, S0) == cudaErrorInvalidValue, "SwiGLU with two weights refused");
        CHECK(qtts_k_gemv_fused(&bad, QTTS_GEMV_MAX_N + 1, in, S0) == cudaErrorInvalidValue, "too many tokens refused");
    }
}

static void test_norms(void) {
    int shapes[][2] = {{1, 64}, {3, 83}, {2, 1031}};
    for (auto &sh : shapes) {
        int n = sh[0], dim = sh[1];
        std::string tag = "n=" + std::to_string(n) + " dim=" + std::to_string(dim);
        auto x = rnd((size_t)n * dim, 3.0f), g = rnd((size_t)dim, 1.0f), b = rnd((size_t)dim, 1.0f);
        cpu_weight gn(g, 1, dim, 0), bn(b, 1, dim, 0);
        std::vector<float> ref((size_t)n * dim), got((size_t)n * dim, -1.0f);
        cpu.ops->rmsnorm(&cpu, x.data(), &gn.t, 1e-6f, ref.data(), n, dim);
        CHECK(qtts_k_rmsnorm(x.data(), g.data(), 1e-6f, got.data(), n, dim, S0) == cudaSuccess, "rmsnorm launch");
        expect_close("rmsnorm " + tag, got, ref, 1e-5);
        std::vector<uint16_t> gb((size_t)n * dim);
        CHECK(qtts_k_rmsnorm_bf16(x.data(), g.data(), 1e-6f, gb.data(), n, dim, S0) == cudaSuccess, "rmsnorm_bf16 launch");
        for (size_t i = 0; i < gb.size(); i++) got[i] = qtts_bf16_to_f32(gb[i]);
        expect_close("rmsnorm_bf16 " + tag, got, ref, 5e-3);
        cpu.ops->layernorm(&cpu, x.data(), &gn.t, &bn.t, 1e-5f, ref.data(), n, dim);
        CHECK(qtts_k_layernorm(x.data(), g.data(), b.data(), 1e-5f, got.data(), n, dim, S0) == cudaSuccess, "layernorm launch");
        expect_close("layernorm " + tag, got, ref, 1e-5);
    }
}

/* The cache and batch of one attention case, on both sides (host memory). */
struct attn_case {
    int n, nh, nkv, hd, slots, L, layers = 2;
    std::vector<float> K, V;
    std::vector<int32_t> slot, pos;
    qtts_kv_cache cache() { return qtts_kv_cache{K.data(), V.data(), layers, slots, L, nkv, hd}; }
    qtts_k_kv kcache(std::vector<float> &k2, std::vector<float> &v2) { return qtts_k_kv{k2.data(), v2.data(), layers, slots, L, nkv, hd}; }
};

/* Fused q/k norm + RoPE + KV append + attention of decode steps, one launch,
 * against the CPU's qk_norm_rope_store + attention; and the split attention
 * (several chunks and the combine) against the CPU's attention. */
static void test_attention(void) {
    /* n, heads, kv heads, hd, max_len, padding rows */
    int shapes[][6] = {{3, 4, 2, 16, 20, 0}, {2, 8, 8, 10, 12, 2}, {1, 16, 8, 128, 17, 0}, {2, 4, 1, 33, QTTS_ROPE_ATTEND_CTX, 1}};
    for (auto &sh : shapes) {
        attn_case c;
        c.n = sh[0], c.nh = sh[1], c.nkv = sh[2], c.hd = sh[3], c.L = sh[4];
        int pad = sh[5], rows = c.n + pad, hd = c.hd;
        c.slots = c.n + 1;
        size_t cl = (size_t)c.layers * c.slots * c.L * c.nkv * hd;
        c.K = rnd(cl, 1.0f);
        c.V = rnd(cl, 1.0f);
        for (int i = 0; i < c.n; i++) {
            c.slot.push_back(c.n - 1 - i);
            c.pos.push_back(i == 0 ? c.L - 1 : (int)(tu_rand_u64(&rng) % (uint64_t)c.L));
        }
        auto q = rnd((size_t)rows * c.nh * hd, 2.0f), k = rnd((size_t)rows * c.nkv * hd, 2.0f), v = rnd((size_t)rows * c.nkv * hd, 1.0f);
        for (int i = c.n; i < rows; i++) { /* padding: identical rows at the spare slot's position 0 */
            c.slot.push_back(c.n);
            c.pos.push_back(0);
            if (i == c.n) continue;
            std::copy_n(q.begin() + (size_t)c.n * c.nh * hd, (size_t)c.nh * hd, q.begin() + (size_t)i * c.nh * hd);
            std::copy_n(k.begin() + (size_t)c.n * c.nkv * hd, (size_t)c.nkv * hd, k.begin() + (size_t)i * c.nkv * hd);
            std::copy_n(v.begin() + (size_t)c.n * c.nkv * hd, (size_t)c.nkv * hd, v.begin() + (size_t)i * c.nkv * hd);
        }
        auto qn = rnd((size_t)hd, 1.0f), kn = rnd((size_t)hd, 1.0f);
        cpu_weight wq(qn, 1, hd, 0), wk(kn, 1, hd, 0);
        std::string tag = "n=" + std::to_string(c.n) + "+" + std::to_string(pad) + " heads=" + std::to_string(c.nh) + "/" +
                          std::to_string(c.nkv) + " hd=" + std::to_string(hd) + " len=" + std::to_string(c.L);
        float scale = 1.0f / std::sqrt((float)hd);
        int layer = 1;
        /* the GPU side works on copies: cache, q, k */
        std::vector<float> K2 = c.K, V2 = c.V, q2 = q, k2 = k;
        std::vector<float> ref((size_t)rows * c.nh * hd), got(ref.size(), -1.0f);
        qtts_kv_cache cc = c.cache();
        qtts_batch b = {};
        b.n = rows;
        b.slot = c.slot.data();
        b.pos = c.pos.data();
        b.h_slot = c.slot.data();
        b.h_pos = c.pos.data();
        b.ctx_bound = c.L;
        b.one_per_slot = true;
        cpu.ops->qk_norm_rope_attend(&cpu, q.data(), k.data(), v.data(), &wq.t, &wk.t, 1e-6f, &b, c.nh, c.nkv, hd, 1e6f, &cc, layer, scale,
                                     ref.data());
        long before = emu_launches;
        CHECK(qtts_k_rope_attend(q2.data(), k2.data(), v.data(), qn.data(), kn.data(), 1e-6f, c.slot.data(), c.pos.data(), rows, c.nh, 1e6f,
                                 c.kcache(K2, V2), layer, scale, got.data(), S0) == cudaSuccess,
              "rope_attend launch %s", tag.c_str());
        CHECK(emu_launches == before + 1, "rope_attend is one launch");
        expect_close("rope_attend out " + tag, got, ref, 1e-5);
        expect_close("rope_attend q " + tag, q2, q, 1e-5);
        expect_close("rope_attend k " + tag, k2, k, 1e-5);
        expect_close("rope_attend cache K " + tag, K2, c.K, 1e-5);
        expect_close("rope_attend cache V " + tag, V2, c.V, 1e-6);

        /* the split attention on the updated cache: chunks of a few positions
         * (many splits) and of the smallest size the backend picks; a window or none */
        for (int window : {0, 7})
            for (int chunk : {5, QTTS_ATTN_SPLIT_MIN}) {
                int longest = c.L, ns = (longest + chunk - 1) / chunk;
                for (int splits : {ns, ns + 2}) { /* more splits than needed: empty partials */
                    std::vector<float> ws((size_t)std::max<int64_t>(1, qtts_k_attention_ws(rows, c.nh, hd, splits)));
                    cpu.ops->attention(&cpu, q.data(), &cc, layer, &b, c.nh, scale, window, ref.data());
                    std::fill(got.begin(), got.end(), -1.0f);
                    CHECK(qtts_k_attention(q.data(), c.kcache(c.K, c.V), layer, c.slot.data(), c.pos.data(), rows, c.nh, scale, window,
                                           chunk, splits, splits > 1 ? ws.data() : nullptr, got.data(), S0) == cudaSuccess,
                          "attention launch");
                    expect_close("attention " + tag + " window=" + std::to_string(window) + " chunk=" + std::to_string(chunk) +
                                     " splits=" + std::to_string(splits),
                                 got, ref, 1e-5);
                }
            }
    }
}

/* Embedding gathers and sums (out-of-range ids give zero rows / add nothing),
 * SwiGLU, row gather/scatter, the bf16 rounding of GEMM inputs; and the q/k
 * norm + RoPE + KV append of prefills (several tokens of a slot). */
static void test_elementwise(void) {
    int n = 5, d = 83, nt = 16, V = 37, stride = n + 2;
    std::vector<std::vector<float>> tabs;
    std::vector<std::vector<uint16_t>> tabs_b;
    std::vector<std::unique_ptr<cpu_weight>> tw;
    const qtts_tensor *tc[16];
    qtts_k_tables kt = {};
    for (int t = 0; t < nt; t++) {
        tabs.push_back(rnd((size_t)(V + t) * d, 1.0f));
        to_bf16_values(tabs.back());
        tabs_b.push_back(bf16_of(tabs.back()));
        tw.emplace_back(new cpu_weight(tabs.back(), 2, V + t, d));
        tc[t] = &tw.back()->t;
        kt.tab[t] = tabs_b.back().data();
        kt.rows[t] = V + t;
    }
    kt.n = nt;
    std::vector<int32_t> ids((size_t)nt * stride);
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < stride; i++) ids[(size_t)t * stride + i] = (int32_t)(tu_rand_u64(&rng) % (uint64_t)(V + t));
    ids[1] = -1;                  /* table 0, token 1 */
    ids[(size_t)3 * stride + 2] = V + 3; /* table 3, token 2: one past its end */
    std::vector<float> ref((size_t)n * d), got((size_t)n * d, -1.0f);
    cpu.ops->embed_sum(&cpu, tc, nt, ids.data(), stride, n, ref.data());
    CHECK(qtts_k_embed_sum(kt, ids.data(), stride, n, d, got.data(), S0) == cudaSuccess, "embed_sum launch");
    expect_close("embed_sum", got, ref, 1e-6);
    cpu.ops->embed(&cpu, tc[0], ids.data(), n, ref.data());
    CHECK(qtts_k_embed(kt.tab[0], ids.data(), n, kt.rows[0], d, got.data(), S0) == cudaSuccess, "embed launch");
    expect_close("embed", got, ref, 1e-6);

    int inter = 1031;
    auto gu = rnd((size_t)n * 2 * inter, 4.0f);
    std::vector<float> sref((size_t)n * inter), sgot((size_t)n * inter, -1.0f);
    cpu.ops->swiglu(&cpu, gu.data(), sref.data(), n, inter);
    CHECK(qtts_k_swiglu(gu.data(), sgot.data(), n, inter, S0) == cudaSuccess, "swiglu launch");
    expect_close("swiglu", sgot, sref, 1e-5);
    /* the stream's PDL choice reaches the launch, and only when set */
    long pdl0 = emu_pdl_launches;
    CHECK(qtts_k_swiglu(gu.data(), sgot.data(), n, inter, qtts_k_stream{nullptr, 1}) == cudaSuccess, "swiglu launch with PDL");
    expect_close("swiglu with PDL", sgot, sref, 1e-5);
    CHECK(emu_pdl_launches == pdl0 + 1, "a pdl stream launches with programmatic stream serialization");
    CHECK(qtts_k_swiglu(gu.data(), sgot.data(), n, inter, S0) == cudaSuccess, "swiglu launch");
    CHECK(emu_pdl_launches == pdl0 + 1, "a plain stream launches without it");

    std::vector<int32_t> perm = {3, 0, 4, 1, 2};
    auto src = rnd((size_t)n * d, 1.0f);
    std::vector<float> gref((size_t)n * d), ggot((size_t)n * d, -1.0f);
    cpu.ops->gather_rows(&cpu, src.data(), perm.data(), n, d, gref.data());
    CHECK(qtts_k_move_rows(src.data(), perm.data(), n, d, 0, ggot.data(), S0) == cudaSuccess, "gather launch");
    expect_close("gather_rows", ggot, gref, 1e-6);
    cpu.ops->scatter_rows(&cpu, src.data(), perm.data(), n, d, gref.data());
    CHECK(qtts_k_move_rows(src.data(), perm.data(), n, d, 1, ggot.data(), S0) == cudaSuccess, "scatter launch");
    expect_close("scatter_rows", ggot, gref, 1e-6);

    std::vector<uint16_t> b16(src.size());
    CHECK(qtts_k_f32_to_bf16(src.data(), b16.data(), (int64_t)src.size(), S0) == cudaSuccess, "f32_to_bf16 launch");
    bool same = true;
    for (size_t i = 0; i < src.size(); i++) same &= b16[i] == qtts_f32_to_bf16(src[i]);
    CHECK(same, "f32_to_bf16 rounds as qtts_f32_to_bf16");

    /* prefill: tokens 0..4 of one slot at positions 3..7, then attention over them */
    int nh = 4, nkv = 2, hd = 18, L = 12, layers = 1, slots = 2;
    size_t cl = (size_t)layers * slots * L * nkv * hd;
    auto K = rnd(cl, 1.0f), Vc = rnd(cl, 1.0f), q = rnd((size_t)n * nh * hd, 2.0f), k = rnd((size_t)n * nkv * hd, 2.0f);
    auto v = rnd((size_t)n * nkv * hd, 1.0f), qn = rnd((size_t)hd, 1.0f), kn = rnd((size_t)hd, 1.0f);
    cpu_weight wq(qn, 1, hd, 0), wk(kn, 1, hd, 0);
    std::vector<int32_t> slot(n, 1), pos = {3, 4, 5, 6, 7};
    std::vector<float> K2 = K, V2 = Vc, q2 = q, k2 = k;
    qtts_kv_cache cc = {K.data(), Vc.data(), layers, slots, L, nkv, hd};
    qtts_batch b = {};
    b.n = n;
    b.slot = slot.data();
    b.h_slot = slot.data();
    b.pos = pos.data();
    b.h_pos = pos.data();
    cpu.ops->qk_norm_rope_store(&cpu, q.data(), k.data(), v.data(), &wq.t, &wk.t, 1e-6f, &b, nh, nkv, hd, 1e6f, &cc, 0);
    CHECK(qtts_k_qk_norm_rope_store(q2.data(), k2.data(), v.data(), qn.data(), kn.data(), 1e-6f, slot.data(), pos.data(), n, nh, nkv, hd,
                                    1e6f, qtts_k_kv{K2.data(), V2.data(), layers, slots, L, nkv, hd}, 0, S0) == cudaSuccess,
          "qk_norm_rope_store launch");
    expect_close("qk_norm_rope_store q", q2, q, 1e-5);
    expect_close("qk_norm_rope_store k", k2, k, 1e-5);
    expect_close("qk_norm_rope_store cache K", K2, K, 1e-5);
    expect_close("qk_norm_rope_store cache V", V2, Vc, 1e-6);
}

/* The sampler (one 1024-thread block per row: penalty, bans, greedy argmax
 * or temperature / top-k / top-p and the counter-based draw) must pick the
 * CPU's token; and the direct convolution kernels (small shapes; the GPU
 * lowers large ones to cuBLAS GEMMs). */
static void test_sample_conv(void) {
    for (int V : {2048, 37}) {
        int n = 6;
        auto l = rnd((size_t)n * V, 4.0f);
        std::vector<uint8_t> seen((size_t)n * V, 0);
        for (size_t i = 0; i < seen.size(); i += 7) seen[i] = 1;
        std::vector<qtts_sample_row> rows(n);
        for (int i = 0; i < n; i++) {
            qtts_sample_row r = {};
            r.seed = 1000u + (uint64_t)i;
            r.counter = (uint64_t)i * 16;
            r.temperature = 0.6f + 0.1f * (float)i;
            r.top_p = i % 3 == 2 ? 0.8f : 1.0f;
            r.penalty = i % 2 ? 1.05f : 1.0f;
            r.top_k = i % 3 == 0 ? 0 : 50;
            r.greedy = i == 5;
            r.seen_row = i == 4 ? -1 : i;
            r.ban_from = i % 2 ? V - V / 3 : V;
            r.keep_id = i % 2 ? V - 2 : -1;
            r.ban_id = i == 1 ? 3 : -1;
            rows[i] = r;
        }
        auto lc = l;
        auto sc = seen;
        std::vector<int32_t> tc(n), tg(n, -2);
        cpu.ops->sample(&cpu, lc.data(), n, V, rows.data(), sc.data(), tc.data());
        CHECK(qtts_k_sample(l.data(), n, V, (const qtts_k_sample_row *)rows.data(), seen.data(), tg.data(), S0) == cudaSuccess,
              "sample launch");
        for (int i = 0; i < n; i++) CHECK(tg[i] == tc[i], "sample V=%d row %d: kernel %d, CPU %d", V, i, tg[i], tc[i]);
        CHECK(seen == sc, "sample V=%d: seen masks differ", V);
    }
    int cshapes[][7] = {{1, 16, 16, 37, 7, 1, 1}, {2, 24, 24, 20, 7, 3, 24}, {1, 32, 12, 9, 4, 2, 4}}; /* B, cin, cout, T, K, dil, groups */
    for (auto &sh : cshapes) {
        int B = sh[0], ci = sh[1], co = sh[2], T = sh[3], K = sh[4], dil = sh[5], g = sh[6];
        auto x = rnd((size_t)B * ci * T, 1.0f), W = rnd((size_t)co * (ci / g) * K, 0.3f), b = rnd((size_t)co, 0.5f);
        to_bf16_values(W);
        auto Wb = bf16_of(W);
        cpu_weight wt(W, 3, co, ci / g, K), wb(b, 1, co, 0);
        std::vector<float> ref((size_t)B * co * T), got(ref.size(), -1.0f);
        cpu.ops->conv1d(&cpu, x.data(), &wt.t, &wb.t, ref.data(), B, ci, co, T, dil, g);
        CHECK(qtts_k_conv1d(x.data(), Wb.data(), b.data(), got.data(), B, ci, co, T, K, dil, g, S0) == cudaSuccess, "conv1d launch");
        expect_close("conv1d B=" + std::to_string(B) + " groups=" + std::to_string(g), got, ref, 1e-5);
    }
    { /* transposed: W [cin][cout][K], stride s, output T*s */
        int B = 2, ci = 12, co = 8, T = 7, K = 6, stride = 3;
        auto x = rnd((size_t)B * ci * T, 1.0f), W = rnd((size_t)ci * co * K, 0.3f), b = rnd((size_t)co, 0.5f);
        to_bf16_values(W);
        auto Wb = bf16_of(W);
        cpu_weight wt(W, 3, ci, co, K), wb(b, 1, co, 0);
        std::vector<float> ref((size_t)B * co * T * stride), got(ref.size(), -1.0f);
        cpu.ops->conv_transpose1d(&cpu, x.data(), &wt.t, &wb.t, ref.data(), B, ci, co, T, stride);
        CHECK(qtts_k_conv_transpose1d(x.data(), Wb.data(), b.data(), got.data(), B, ci, co, T, K, stride, S0) == cudaSuccess,
              "conv_transpose1d launch");
        expect_close("conv_transpose1d", got, ref, 1e-5);
    }
}

int main(void) {
    qtts_err err = {};
    if (qtts_backend_cpu_init(&cpu, &err) != QTTS_OK) return tu_skip(err.msg);
    test_gemv();
    test_norms();
    test_attention();
    test_elementwise();
    test_sample_conv();
    qtts_backend_free(&cpu);
    printf("%ld kernel launches emulated\n", emu_launches);
    return tu_finish("kernels_emu");
}
