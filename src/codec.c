/* Speech-tokenizer decoder: load (one checked lookup per tensor, codebooks
 * normalised and SnakeBeta parameters exponentiated once) and the batched
 * forward pass written against the op table. Layouts: token-major [B*T, C]
 * around the transformer, channel-major [B, C, L] in the conv stages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"

#define MAX_LAYERS 32
#define MAX_Q 32
#define MAX_UP 8
#define MAX_BLOCKS 8
#define N_RES 3

typedef struct codec_layer {
    qtts_tensor in_norm;    /* f32 [hidden] RMSNorm */
    qtts_tensor wq;         /* f32 [heads*hd][hidden] */
    qtts_tensor wk, wv;     /* f32 [kv_heads*hd][hidden] */
    qtts_tensor wo;         /* f32 [hidden][heads*hd] */
    qtts_tensor attn_scale; /* f32 [hidden] layer scale */
    qtts_tensor post_norm;  /* f32 [hidden] RMSNorm */
    qtts_tensor gate_up;    /* f32 [2*inter][hidden]: gate_proj rows then up_proj rows, fused at load */
    qtts_tensor down;       /* f32 [hidden][inter] */
    qtts_tensor mlp_scale;  /* f32 [hidden] layer scale */
} codec_layer;

typedef struct codec_upsample {
    int rate;
    qtts_tensor up_w, up_b;     /* f32 [latent][latent][rate], [latent]: transposed conv, kernel = stride */
    qtts_tensor dw_w, dw_b;     /* f32 [latent][1][7], [latent]: causal depthwise conv */
    qtts_tensor norm_w, norm_b; /* f32 [latent] LayerNorm eps 1e-6 */
    qtts_tensor pw1_w, pw1_b;   /* f32 [4*latent][latent], [4*latent] */
    qtts_tensor pw2_w, pw2_b;   /* f32 [latent][4*latent], [latent] */
    qtts_tensor gamma;          /* f32 [latent] */
} codec_upsample;

typedef struct codec_resunit {
    int dilation;
    qtts_tensor a1, b1;     /* f32 [C] exp(alpha), exp(beta) */
    qtts_tensor c1_w, c1_b; /* f32 [C][C][7], [C] */
    qtts_tensor a2, b2;     /* f32 [C] */
    qtts_tensor c2_w, c2_b; /* f32 [C][C][1], [C] */
} codec_resunit;

typedef struct codec_block {
    int cin, cout, rate;
    qtts_tensor a, b;       /* f32 [cin] exp(alpha), exp(beta) */
    qtts_tensor up_w, up_b; /* f32 [cin][cout][2*rate], [cout] */
    codec_resunit res[N_RES];
} codec_block;

struct qtts_codec {
    qtts_backend *be;
    qtts_codec_config cfg;
    int nq;                     /* num_quantizers (16) */
    int cb_dim;                 /* codebook_dim / 2 (256): RVQ inner dimension */
    int spf;                    /* samples per frame (1920) */
    int out_dim;                /* decoder_dim >> n_blocks (96) */
    qtts_tensor codebook[MAX_Q];  /* f32 [codebook_size][cb_dim] = embedding_sum / max(cluster_usage, 1e-5) */
    qtts_tensor proj_first;       /* f32 [codebook_dim][cb_dim][1] rvq_first.output_proj, no bias */
    qtts_tensor proj_rest;        /* f32 [codebook_dim][cb_dim][1] rvq_rest.output_proj, no bias */
    qtts_tensor pre_w, pre_b;     /* f32 [latent][codebook_dim][3], [latent] */
    qtts_tensor in_w, in_b;       /* f32 [hidden][latent], [hidden] */
    codec_layer layers[MAX_LAYERS];
    qtts_tensor norm;             /* f32 [hidden] */
    qtts_tensor out_w, out_b;     /* f32 [latent][hidden], [latent] */
    codec_upsample up[MAX_UP];
    qtts_tensor dec0_w, dec0_b;   /* f32 [decoder_dim][latent][7], [decoder_dim] */
    codec_block blocks[MAX_BLOCKS];
    qtts_tensor fa, fb;           /* f32 [out_dim] final SnakeBeta, exponentiated */
    qtts_tensor fin_w, fin_b;     /* f32 [1][out_dim][7], [1] */
};

/* Activation memory of one forward call, planned from (B, T) and reused
 * across chunks. */
typedef struct codec_scratch {
    int B, T;
    int32_t *ids;             /* backend int32 [nq][B*T] */
    int32_t *slot, *pos;      /* backend int32 [B*T] */
    int32_t *h_slot, *h_pos;  /* host int32 [B*T] */
    float *buf[3];            /* backend f32, `big` floats each: rotating activation buffers */
    size_t big;
    qtts_kv_cache kv;         /* [layers][B][T][kv_heads][hd] */
} codec_scratch;

/* -------------------------------------------------------------------- load */

static qtts_status load_w(qtts_codec *c, const qtts_safetensors *st, qtts_tensor *dst, int ndim, const int64_t *shape,
                          qtts_err *err, const char *fmt, ...) QTTS_PRINTF(7, 8);
static qtts_status load_w(qtts_codec *c, const qtts_safetensors *st, qtts_tensor *dst, int ndim, const int64_t *shape,
                          qtts_err *err, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return qtts_tensor_load(c->be, st, name, ndim, shape, dst, err);
}

/* Upload a host f32 array as a weight (used for tensors transformed at load). */
static qtts_status upload_f32(qtts_codec *c, const char *name, float *data, int ndim, const int64_t *shape, qtts_tensor *dst,
                              qtts_err *err) {
    qtts_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = QTTS_DT_F32;
    t.ndim = ndim;
    t.numel = 1;
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        t.numel *= shape[i];
    }
    t.data = data;
    t.nbytes = (size_t)t.numel * sizeof(float);
    return c->be->ops->upload(c->be, &t, dst, err);
}

/* SnakeBeta stores log-scale alpha/beta; the forward uses exp() of both. */
static qtts_status load_snake(qtts_codec *c, const qtts_safetensors *st, const char *prefix, int C, qtts_tensor *a, qtts_tensor *b,
                              qtts_err *err) {
    int64_t shape[1] = {C};
    qtts_status s = QTTS_OK;
    float *tmp = qtts_malloc((size_t)C * sizeof(float), err, prefix);
    if (!tmp) return QTTS_ERR_OOM;
    for (int which = 0; which < 2 && s == QTTS_OK; which++) {
        char name[256];
        const qtts_st_tensor *t;
        snprintf(name, sizeof name, "%s.%s", prefix, which ? "beta" : "alpha");
        s = qtts_st_get(st, name, QTTS_DTM_FLOAT, 1, shape, &t, err);
        if (s) break;
        qtts_st_to_f32(t, tmp);
        for (int i = 0; i < C; i++) tmp[i] = expf(tmp[i]);
        s = upload_f32(c, name, tmp, 1, shape, which ? b : a, err);
    }
    free(tmp);
    return s;
}

static qtts_status load_codebook(qtts_codec *c, const qtts_safetensors *st, const char *prefix, qtts_tensor *dst, qtts_err *err) {
    int K = c->cfg.codebook_size, D = c->cb_dim;
    int64_t shape[2] = {K, D}, ushape[1] = {K};
    char name[256], uname[256];
    const qtts_st_tensor *es, *cu;
    qtts_status s;
    snprintf(name, sizeof name, "%s._codebook.embedding_sum", prefix);
    snprintf(uname, sizeof uname, "%s._codebook.cluster_usage", prefix);
    if ((s = qtts_st_get(st, name, QTTS_DTM_FLOAT, 2, shape, &es, err))) return s;
    if ((s = qtts_st_get(st, uname, QTTS_DTM_FLOAT, 1, ushape, &cu, err))) return s;
    float *e = qtts_malloc((size_t)K * D * sizeof(float), err, name);
    float *u = qtts_malloc((size_t)K * sizeof(float), err, uname);
    if (!e || !u) {
        free(e);
        free(u);
        return QTTS_ERR_OOM;
    }
    qtts_st_to_f32(es, e);
    qtts_st_to_f32(cu, u);
    for (int k = 0; k < K; k++) {
        float d = u[k] < 1e-5f ? 1e-5f : u[k]; /* EuclideanCodebook epsilon */
        for (int j = 0; j < D; j++) e[(int64_t)k * D + j] /= d;
    }
    s = upload_f32(c, name, e, 2, shape, dst, err);
    free(e);
    free(u);
    return s;
}

/* gate_proj and up_proj fused into one [2*inter][hidden] matrix for swiglu. */
static qtts_status load_gate_up(qtts_codec *c, const qtts_safetensors *st, int l, qtts_tensor *dst, qtts_err *err) {
    int I = c->cfg.intermediate_size, H = c->cfg.hidden_size;
    int64_t shape[2] = {I, H}, fshape[2] = {2 * I, H};
    char name[256];
    qtts_status s = QTTS_OK;
    float *f = qtts_malloc((size_t)2 * I * H * sizeof(float), err, "codec gate_up");
    if (!f) return QTTS_ERR_OOM;
    for (int which = 0; which < 2 && s == QTTS_OK; which++) {
        const qtts_st_tensor *t;
        snprintf(name, sizeof name, "decoder.pre_transformer.layers.%d.mlp.%s_proj.weight", l, which ? "up" : "gate");
        s = qtts_st_get(st, name, QTTS_DTM_FLOAT, 2, shape, &t, err);
        if (s == QTTS_OK) qtts_st_to_f32(t, f + (size_t)which * I * H);
    }
    if (s == QTTS_OK) s = upload_f32(c, name, f, 2, fshape, dst, err);
    free(f);
    return s;
}

static qtts_status codec_check_config(const qtts_codec_config *g, qtts_err *err) {
    if (g->num_quantizers < 2 || g->num_quantizers > MAX_Q)
        return qtts_fail(err, QTTS_ERR_UNSUPPORTED, "codec config: num_quantizers %d (2..%d supported)", g->num_quantizers, MAX_Q);
    if (g->num_layers < 1 || g->num_layers > MAX_LAYERS)
        return qtts_fail(err, QTTS_ERR_UNSUPPORTED, "codec config: num_hidden_layers %d (1..%d supported)", g->num_layers, MAX_LAYERS);
    if (g->n_upsampling_ratios > MAX_UP || g->n_upsample_rates > MAX_BLOCKS || g->n_upsample_rates < 1)
        return qtts_fail(err, QTTS_ERR_UNSUPPORTED, "codec config: too many upsampling stages");
    if (g->codebook_size < 1 || g->codebook_dim < 2 || g->codebook_dim % 2 || g->latent_dim < 1 || g->hidden_size < 1 ||
        g->intermediate_size < 1 || g->num_heads < 1 || g->num_kv_heads < 1 || g->num_heads % g->num_kv_heads ||
        g->head_dim < 2 || g->head_dim % 2 || g->sliding_window < 0 || g->decoder_dim < 1)
        return qtts_fail(err, QTTS_ERR_CONFIG, "codec config: inconsistent dimensions");
    if (g->decoder_dim >> g->n_upsample_rates < 1 || (g->decoder_dim >> g->n_upsample_rates) << g->n_upsample_rates != g->decoder_dim)
        return qtts_fail(err, QTTS_ERR_CONFIG, "codec config: decoder_dim %d not divisible by 2^%d", g->decoder_dim, g->n_upsample_rates);
    int64_t total = 1;
    for (int i = 0; i < g->n_upsampling_ratios; i++) total *= g->upsampling_ratios[i];
    for (int i = 0; i < g->n_upsample_rates; i++) total *= g->upsample_rates[i];
    if (total != g->decode_upsample_rate)
        return qtts_fail(err, QTTS_ERR_CONFIG, "codec config: decode_upsample_rate %d != product of upsampling factors %lld",
                         g->decode_upsample_rate, (long long)total);
    return QTTS_OK;
}

qtts_status qtts_codec_load(qtts_codec **out, qtts_backend *be, const char *codec_dir, qtts_err *err) {
    qtts_status st = QTTS_OK;
    qtts_safetensors sf;
    bool sf_open = false;
    char path[4096];
    *out = NULL;
    qtts_codec *c = qtts_calloc(1, sizeof *c, err, "codec");
    if (!c) return QTTS_ERR_OOM;
    c->be = be;
    QTTS_TRY(qtts_codec_config_load(codec_dir, &c->cfg, err));
    const qtts_codec_config *g = &c->cfg;
    QTTS_TRY(codec_check_config(g, err));
    c->nq = g->num_quantizers;
    c->cb_dim = g->codebook_dim / 2; /* Decoder passes dimension=codebook_dim // 2 to the quantizer */
    c->spf = g->decode_upsample_rate;
    c->out_dim = g->decoder_dim >> g->n_upsample_rates;

    QTTS_TRY(qtts_path_join(path, sizeof path, codec_dir, "model.safetensors", err));
    QTTS_TRY(qtts_st_open(&sf, path, err));
    sf_open = true;

    int64_t L = g->latent_dim, Hd = g->hidden_size, I = g->intermediate_size, CD = g->codebook_dim, D = c->cb_dim;
    int64_t qd = (int64_t)g->num_heads * g->head_dim, kvd = (int64_t)g->num_kv_heads * g->head_dim;
    /* RVQ: codebook 0 is rvq_first (n_q_semantic is hard-coded to 1 by the decoder), 1.. are rvq_rest */
    for (int k = 0; k < c->nq; k++) {
        char prefix[128];
        if (k == 0) snprintf(prefix, sizeof prefix, "decoder.quantizer.rvq_first.vq.layers.0");
        else snprintf(prefix, sizeof prefix, "decoder.quantizer.rvq_rest.vq.layers.%d", k - 1);
        QTTS_TRY(load_codebook(c, &sf, prefix, &c->codebook[k], err));
    }
    QTTS_TRY(load_w(c, &sf, &c->proj_first, 3, (int64_t[]){CD, D, 1}, err, "decoder.quantizer.rvq_first.output_proj.weight"));
    QTTS_TRY(load_w(c, &sf, &c->proj_rest, 3, (int64_t[]){CD, D, 1}, err, "decoder.quantizer.rvq_rest.output_proj.weight"));
    QTTS_TRY(load_w(c, &sf, &c->pre_w, 3, (int64_t[]){L, CD, 3}, err, "decoder.pre_conv.conv.weight"));
    QTTS_TRY(load_w(c, &sf, &c->pre_b, 1, (int64_t[]){L}, err, "decoder.pre_conv.conv.bias"));
    QTTS_TRY(load_w(c, &sf, &c->in_w, 2, (int64_t[]){Hd, L}, err, "decoder.pre_transformer.input_proj.weight"));
    QTTS_TRY(load_w(c, &sf, &c->in_b, 1, (int64_t[]){Hd}, err, "decoder.pre_transformer.input_proj.bias"));
    for (int l = 0; l < g->num_layers; l++) {
        codec_layer *ly = &c->layers[l];
        const char *p = "decoder.pre_transformer.layers";
        QTTS_TRY(load_w(c, &sf, &ly->in_norm, 1, (int64_t[]){Hd}, err, "%s.%d.input_layernorm.weight", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->wq, 2, (int64_t[]){qd, Hd}, err, "%s.%d.self_attn.q_proj.weight", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->wk, 2, (int64_t[]){kvd, Hd}, err, "%s.%d.self_attn.k_proj.weight", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->wv, 2, (int64_t[]){kvd, Hd}, err, "%s.%d.self_attn.v_proj.weight", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->wo, 2, (int64_t[]){Hd, qd}, err, "%s.%d.self_attn.o_proj.weight", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->attn_scale, 1, (int64_t[]){Hd}, err, "%s.%d.self_attn_layer_scale.scale", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->post_norm, 1, (int64_t[]){Hd}, err, "%s.%d.post_attention_layernorm.weight", p, l));
        QTTS_TRY(load_gate_up(c, &sf, l, &ly->gate_up, err));
        QTTS_TRY(load_w(c, &sf, &ly->down, 2, (int64_t[]){Hd, I}, err, "%s.%d.mlp.down_proj.weight", p, l));
        QTTS_TRY(load_w(c, &sf, &ly->mlp_scale, 1, (int64_t[]){Hd}, err, "%s.%d.mlp_layer_scale.scale", p, l));
    }
    QTTS_TRY(load_w(c, &sf, &c->norm, 1, (int64_t[]){Hd}, err, "decoder.pre_transformer.norm.weight"));
    QTTS_TRY(load_w(c, &sf, &c->out_w, 2, (int64_t[]){L, Hd}, err, "decoder.pre_transformer.output_proj.weight"));
    QTTS_TRY(load_w(c, &sf, &c->out_b, 1, (int64_t[]){L}, err, "decoder.pre_transformer.output_proj.bias"));
    for (int i = 0; i < g->n_upsampling_ratios; i++) {
        codec_upsample *u = &c->up[i];
        int64_t r = g->upsampling_ratios[i];
        u->rate = (int)r;
        QTTS_TRY(load_w(c, &sf, &u->up_w, 3, (int64_t[]){L, L, r}, err, "decoder.upsample.%d.0.conv.weight", i));
        QTTS_TRY(load_w(c, &sf, &u->up_b, 1, (int64_t[]){L}, err, "decoder.upsample.%d.0.conv.bias", i));
        QTTS_TRY(load_w(c, &sf, &u->dw_w, 3, (int64_t[]){L, 1, 7}, err, "decoder.upsample.%d.1.dwconv.conv.weight", i));
        QTTS_TRY(load_w(c, &sf, &u->dw_b, 1, (int64_t[]){L}, err, "decoder.upsample.%d.1.dwconv.conv.bias", i));
        QTTS_TRY(load_w(c, &sf, &u->norm_w, 1, (int64_t[]){L}, err, "decoder.upsample.%d.1.norm.weight", i));
        QTTS_TRY(load_w(c, &sf, &u->norm_b, 1, (int64_t[]){L}, err, "decoder.upsample.%d.1.norm.bias", i));
        QTTS_TRY(load_w(c, &sf, &u->pw1_w, 2, (int64_t[]){4 * L, L}, err, "decoder.upsample.%d.1.pwconv1.weight", i));
        QTTS_TRY(load_w(c, &sf, &u->pw1_b, 1, (int64_t[]){4 * L}, err, "decoder.upsample.%d.1.pwconv1.bias", i));
        QTTS_TRY(load_w(c, &sf, &u->pw2_w, 2, (int64_t[]){L, 4 * L}, err, "decoder.upsample.%d.1.pwconv2.weight", i));
        QTTS_TRY(load_w(c, &sf, &u->pw2_b, 1, (int64_t[]){L}, err, "decoder.upsample.%d.1.pwconv2.bias", i));
        QTTS_TRY(load_w(c, &sf, &u->gamma, 1, (int64_t[]){L}, err, "decoder.upsample.%d.1.gamma", i));
    }
    int64_t DD = g->decoder_dim;
    QTTS_TRY(load_w(c, &sf, &c->dec0_w, 3, (int64_t[]){DD, L, 7}, err, "decoder.decoder.0.conv.weight"));
    QTTS_TRY(load_w(c, &sf, &c->dec0_b, 1, (int64_t[]){DD}, err, "decoder.decoder.0.conv.bias"));
    static const int dil[N_RES] = {1, 3, 9};
    for (int bi = 0; bi < g->n_upsample_rates; bi++) {
        codec_block *b = &c->blocks[bi];
        int n = bi + 1; /* decoder.decoder.{1..n} */
        b->cin = g->decoder_dim >> bi;
        b->cout = g->decoder_dim >> (bi + 1);
        b->rate = g->upsample_rates[bi];
        int64_t ci = b->cin, co = b->cout, k2 = 2 * (int64_t)b->rate;
        char pfx[128];
        snprintf(pfx, sizeof pfx, "decoder.decoder.%d.block.0", n);
        QTTS_TRY(load_snake(c, &sf, pfx, b->cin, &b->a, &b->b, err));
        QTTS_TRY(load_w(c, &sf, &b->up_w, 3, (int64_t[]){ci, co, k2}, err, "decoder.decoder.%d.block.1.conv.weight", n));
        QTTS_TRY(load_w(c, &sf, &b->up_b, 1, (int64_t[]){co}, err, "decoder.decoder.%d.block.1.conv.bias", n));
        for (int r = 0; r < N_RES; r++) {
            codec_resunit *ru = &b->res[r];
            int m = r + 2;
            ru->dilation = dil[r];
            snprintf(pfx, sizeof pfx, "decoder.decoder.%d.block.%d.act1", n, m);
            QTTS_TRY(load_snake(c, &sf, pfx, b->cout, &ru->a1, &ru->b1, err));
            snprintf(pfx, sizeof pfx, "decoder.decoder.%d.block.%d.act2", n, m);
            QTTS_TRY(load_snake(c, &sf, pfx, b->cout, &ru->a2, &ru->b2, err));
            QTTS_TRY(load_w(c, &sf, &ru->c1_w, 3, (int64_t[]){co, co, 7}, err, "decoder.decoder.%d.block.%d.conv1.conv.weight", n, m));
            QTTS_TRY(load_w(c, &sf, &ru->c1_b, 1, (int64_t[]){co}, err, "decoder.decoder.%d.block.%d.conv1.conv.bias", n, m));
            QTTS_TRY(load_w(c, &sf, &ru->c2_w, 3, (int64_t[]){co, co, 1}, err, "decoder.decoder.%d.block.%d.conv2.conv.weight", n, m));
            QTTS_TRY(load_w(c, &sf, &ru->c2_b, 1, (int64_t[]){co}, err, "decoder.decoder.%d.block.%d.conv2.conv.bias", n, m));
        }
    }
    int fs = g->n_upsample_rates + 1; /* final SnakeBeta, then the output conv */
    char pfx[64];
    snprintf(pfx, sizeof pfx, "decoder.decoder.%d", fs);
    QTTS_TRY(load_snake(c, &sf, pfx, c->out_dim, &c->fa, &c->fb, err));
    QTTS_TRY(load_w(c, &sf, &c->fin_w, 3, (int64_t[]){1, c->out_dim, 7}, err, "decoder.decoder.%d.conv.weight", fs + 1));
    QTTS_TRY(load_w(c, &sf, &c->fin_b, 1, (int64_t[]){1}, err, "decoder.decoder.%d.conv.bias", fs + 1));
    *out = c;
    c = NULL;
cleanup:
    if (sf_open) qtts_st_close(&sf);
    if (c) qtts_codec_free(c);
    return st;
}

static void rel(qtts_codec *c, qtts_tensor *t) {
    if (t->data) c->be->ops->release(c->be, t);
}

void qtts_codec_free(qtts_codec *c) {
    if (!c) return;
    for (int k = 0; k < MAX_Q; k++) rel(c, &c->codebook[k]);
    rel(c, &c->proj_first), rel(c, &c->proj_rest), rel(c, &c->pre_w), rel(c, &c->pre_b), rel(c, &c->in_w), rel(c, &c->in_b);
    for (int l = 0; l < MAX_LAYERS; l++) {
        codec_layer *ly = &c->layers[l];
        rel(c, &ly->in_norm), rel(c, &ly->wq), rel(c, &ly->wk), rel(c, &ly->wv), rel(c, &ly->wo), rel(c, &ly->attn_scale);
        rel(c, &ly->post_norm), rel(c, &ly->gate_up), rel(c, &ly->down), rel(c, &ly->mlp_scale);
    }
    rel(c, &c->norm), rel(c, &c->out_w), rel(c, &c->out_b);
    for (int i = 0; i < MAX_UP; i++) {
        codec_upsample *u = &c->up[i];
        rel(c, &u->up_w), rel(c, &u->up_b), rel(c, &u->dw_w), rel(c, &u->dw_b), rel(c, &u->norm_w), rel(c, &u->norm_b);
        rel(c, &u->pw1_w), rel(c, &u->pw1_b), rel(c, &u->pw2_w), rel(c, &u->pw2_b), rel(c, &u->gamma);
    }
    rel(c, &c->dec0_w), rel(c, &c->dec0_b);
    for (int b = 0; b < MAX_BLOCKS; b++) {
        codec_block *bl = &c->blocks[b];
        rel(c, &bl->a), rel(c, &bl->b), rel(c, &bl->up_w), rel(c, &bl->up_b);
        for (int r = 0; r < N_RES; r++) {
            codec_resunit *ru = &bl->res[r];
            rel(c, &ru->a1), rel(c, &ru->b1), rel(c, &ru->c1_w), rel(c, &ru->c1_b);
            rel(c, &ru->a2), rel(c, &ru->b2), rel(c, &ru->c2_w), rel(c, &ru->c2_b);
        }
    }
    rel(c, &c->fa), rel(c, &c->fb), rel(c, &c->fin_w), rel(c, &c->fin_b);
    free(c);
}

const qtts_codec_config *qtts_codec_get_config(const qtts_codec *c) { return &c->cfg; }
int qtts_codec_samples_per_frame(const qtts_codec *c) { return c->spf; }
int qtts_codec_sample_rate(const qtts_codec *c) { return c->cfg.output_sample_rate; }
qtts_backend *qtts_codec_backend(const qtts_codec *c) { return c->be; }
int qtts_codec_num_quantizers(const qtts_codec *c) { return c->nq; }

/* ----------------------------------------------------------------- scratch */

/* Widest activation per code frame over all stages, in floats. */
static size_t codec_width_per_frame(const qtts_codec *c) {
    const qtts_codec_config *g = &c->cfg;
    size_t w = 2 * (size_t)g->codebook_dim + (size_t)g->latent_dim;
    size_t qd = (size_t)g->num_heads * g->head_dim, kvd = (size_t)g->num_kv_heads * g->head_dim;
    size_t attn = qd + 2 * kvd + (qd > (size_t)g->intermediate_size ? qd : (size_t)g->intermediate_size);
    size_t mlp = (size_t)g->hidden_size + 2 * (size_t)g->intermediate_size;
    w = attn > w ? attn : w;
    w = mlp > w ? mlp : w;
    size_t len = 1;
    for (int i = 0; i < g->n_upsampling_ratios; i++) {
        len *= (size_t)g->upsampling_ratios[i];
        size_t v = 4 * (size_t)g->latent_dim * len;
        w = v > w ? v : w;
    }
    size_t v = (size_t)g->decoder_dim * len;
    w = v > w ? v : w;
    for (int b = 0; b < g->n_upsample_rates; b++) {
        len *= (size_t)g->upsample_rates[b];
        v = (size_t)(g->decoder_dim >> (b + 1)) * len;
        w = v > w ? v : w;
    }
    return w;
}

static void scratch_free(qtts_codec *c, codec_scratch *s) {
    const qtts_ops *o = c->be->ops;
    o->free(c->be, s->ids), o->free(c->be, s->slot), o->free(c->be, s->pos);
    for (int i = 0; i < 3; i++) o->free(c->be, s->buf[i]);
    o->free(c->be, s->kv.k), o->free(c->be, s->kv.v);
    free(s->h_slot);
    free(s->h_pos);
    memset(s, 0, sizeof *s);
}

static qtts_status scratch_plan(qtts_codec *c, codec_scratch *s, int B, int T, qtts_err *err) {
    const qtts_ops *o = c->be->ops;
    const qtts_codec_config *g = &c->cfg;
    size_t n = (size_t)B * T, big, kvn;
    memset(s, 0, sizeof *s);
    s->B = B;
    s->T = T;
    if (!qtts_mul_ok(n, codec_width_per_frame(c), &big) || !qtts_mul_ok(big, sizeof(float), &big))
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "codec: batch %d x %d frames is too large", B, T);
    s->big = big / sizeof(float);
    kvn = (size_t)g->num_layers * n * g->num_kv_heads * g->head_dim * sizeof(float);
    s->ids = o->alloc(c->be, (size_t)c->nq * n * sizeof(int32_t));
    s->slot = o->alloc(c->be, n * sizeof(int32_t));
    s->pos = o->alloc(c->be, n * sizeof(int32_t));
    for (int i = 0; i < 3; i++) s->buf[i] = o->alloc(c->be, big);
    s->kv.k = o->alloc(c->be, kvn);
    s->kv.v = o->alloc(c->be, kvn);
    s->h_slot = malloc(n * sizeof(int32_t));
    s->h_pos = malloc(n * sizeof(int32_t));
    if (!s->ids || !s->slot || !s->pos || !s->buf[0] || !s->buf[1] || !s->buf[2] || !s->kv.k || !s->kv.v || !s->h_slot ||
        !s->h_pos) {
        scratch_free(c, s);
        return qtts_fail(err, QTTS_ERR_OOM, "codec: out of memory planning activations for %d x %d frames (%zu MiB)", B, T,
                         (3 * big + 2 * kvn) >> 20);
    }
    return QTTS_OK;
}

/* ----------------------------------------------------------------- forward */

static void swap(float **a, float **b) {
    float *t = *a;
    *a = *b;
    *b = t;
}

/* One residual unit in place on cur [B, C, L]: cur += conv2(snake(conv1(snake(cur)))). */
static void resunit(qtts_codec *c, const codec_resunit *ru, float *cur, float *t1, float *t2, int B, int C, int L) {
    const qtts_ops *o = c->be->ops;
    o->snake(c->be, cur, &ru->a1, &ru->b1, t1, B, C, L);
    o->conv1d(c->be, t1, &ru->c1_w, &ru->c1_b, t2, B, C, C, L, ru->dilation, 1);
    o->snake(c->be, t2, &ru->a2, &ru->b2, t1, B, C, L);
    o->conv1d(c->be, t1, &ru->c2_w, &ru->c2_b, t2, B, C, C, L, 1, 1);
    o->add(c->be, cur, t2, cur, (int64_t)B * C * L);
}

/* Decode B x T frames whose host codes are ids_host [nq][B*T] (already
 * validated, padding zeroed). Returns the device waveform [B][T*spf]. */
static float *codec_forward(qtts_codec *c, codec_scratch *s, const int32_t *ids_host, int B, int T) {
    qtts_backend *be = c->be;
    const qtts_ops *o = be->ops;
    const qtts_codec_config *g = &c->cfg;
    int n = B * T, D = c->cb_dim, CD = g->codebook_dim, Lt = g->latent_dim, Hd = g->hidden_size;
    int H = g->num_heads, KV = g->num_kv_heads, hd = g->head_dim, I = g->intermediate_size;
    float *x = s->buf[0], *y = s->buf[1], *z = s->buf[2];

    o->to_device(be, s->ids, ids_host, (size_t)c->nq * n * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            s->h_slot[b * T + t] = b;
            s->h_pos[b * T + t] = t;
        }
    o->to_device(be, s->slot, s->h_slot, (size_t)n * sizeof(int32_t));
    o->to_device(be, s->pos, s->h_pos, (size_t)n * sizeof(int32_t));
    qtts_batch batch = {.n = n, .slot = s->slot, .pos = s->pos, .h_slot = s->h_slot, .h_pos = s->h_pos};

    /* 1. RVQ: z = P_first cb0[c0] + P_rest sum_k cb_k[c_k], token-major [n, CD] */
    float *acc = y, *e = y + (size_t)n * D, *zq = z, *zr = z + (size_t)n * CD;
    o->embed(be, &c->codebook[0], s->ids, n, acc);
    o->matmul(be, acc, &c->proj_first, NULL, zq, n);
    o->embed(be, &c->codebook[1], s->ids + n, n, acc);
    for (int k = 2; k < c->nq; k++) {
        o->embed(be, &c->codebook[k], s->ids + (size_t)k * n, n, e);
        o->add(be, acc, e, acc, (int64_t)n * D);
    }
    o->matmul(be, acc, &c->proj_rest, NULL, zr, n);
    o->add(be, zq, zr, zq, (int64_t)n * CD);

    /* 2. pre_conv (causal k=3) on [B, CD, T] -> [B, latent, T], back to [n, latent] */
    o->transpose(be, zq, x, B, T, CD);
    o->conv1d(be, x, &c->pre_w, &c->pre_b, y, B, CD, Lt, T, 1, 1);
    o->transpose(be, y, z, B, Lt, T);

    /* 3. pre_transformer on tokens (slot b, position t) */
    float *h = x, *hn = y, *gu = y + (size_t)n * Hd;
    float *q = z, *k = q + (size_t)n * H * hd, *v = k + (size_t)n * KV * hd, *att = v + (size_t)n * KV * hd;
    o->matmul(be, z, &c->in_w, &c->in_b, h, n);
    s->kv.n_layers = g->num_layers;
    s->kv.n_slots = B;
    s->kv.max_len = T;
    s->kv.n_kv_heads = KV;
    s->kv.head_dim = hd;
    for (int l = 0; l < g->num_layers; l++) {
        const codec_layer *ly = &c->layers[l];
        o->rmsnorm(be, h, &ly->in_norm, g->rms_norm_eps, hn, n, Hd);
        o->matmul(be, hn, &ly->wq, NULL, q, n);
        o->matmul(be, hn, &ly->wk, NULL, k, n);
        o->matmul(be, hn, &ly->wv, NULL, v, n);
        o->qk_norm_rope_store(be, q, k, v, NULL, NULL, 0.0f, &batch, H, KV, hd, g->rope_theta, &s->kv, l);
        o->attention(be, q, &s->kv, l, &batch, H, 1.0f / sqrtf((float)hd), g->sliding_window, att);
        o->matmul(be, att, &ly->wo, NULL, hn, n);
        o->scale_rows(be, hn, &ly->attn_scale, hn, n, Hd);
        o->add(be, h, hn, h, (int64_t)n * Hd);
        o->rmsnorm(be, h, &ly->post_norm, g->rms_norm_eps, hn, n, Hd);
        o->matmul(be, hn, &ly->gate_up, NULL, gu, n);
        o->swiglu(be, gu, att, n, I);
        o->matmul(be, att, &ly->down, NULL, hn, n);
        o->scale_rows(be, hn, &ly->mlp_scale, hn, n, Hd);
        o->add(be, h, hn, h, (int64_t)n * Hd);
    }
    o->rmsnorm(be, h, &c->norm, g->rms_norm_eps, hn, n, Hd);
    o->matmul(be, hn, &c->out_w, &c->out_b, z, n);
    o->transpose(be, z, x, B, T, Lt); /* x: [B, latent, T] */

    /* 4. upsampling: transposed conv (kernel = stride) + ConvNeXt block */
    int L = T;
    for (int i = 0; i < g->n_upsampling_ratios; i++) {
        const codec_upsample *u = &c->up[i];
        o->conv_transpose1d(be, x, &u->up_w, &u->up_b, y, B, Lt, Lt, L, u->rate);
        L *= u->rate;
        swap(&x, &y);
        /* ConvNeXt: x += transpose(gamma * pw2(gelu(pw1(LN(transpose(dwconv(x))))))) */
        o->conv1d(be, x, &u->dw_w, &u->dw_b, y, B, Lt, Lt, L, 1, Lt);
        o->transpose(be, y, z, B, Lt, L);
        o->layernorm(be, z, &u->norm_w, &u->norm_b, 1e-6f, y, B * L, Lt);
        o->matmul(be, y, &u->pw1_w, &u->pw1_b, z, B * L);
        o->gelu(be, z, (int64_t)B * L * 4 * Lt);
        o->matmul(be, z, &u->pw2_w, &u->pw2_b, y, B * L);
        o->scale_rows(be, y, &u->gamma, y, B * L, Lt);
        o->transpose(be, y, z, B, L, Lt);
        o->add(be, x, z, x, (int64_t)B * Lt * L);
    }

    /* 5. vocoder */
    o->conv1d(be, x, &c->dec0_w, &c->dec0_b, y, B, Lt, g->decoder_dim, L, 1, 1);
    swap(&x, &y);
    for (int bi = 0; bi < g->n_upsample_rates; bi++) {
        const codec_block *bl = &c->blocks[bi];
        o->snake(be, x, &bl->a, &bl->b, y, B, bl->cin, L);
        o->conv_transpose1d(be, y, &bl->up_w, &bl->up_b, z, B, bl->cin, bl->cout, L, bl->rate);
        L *= bl->rate;
        swap(&x, &z);
        for (int r = 0; r < N_RES; r++) resunit(c, &bl->res[r], x, y, z, B, bl->cout, L);
    }
    o->snake(be, x, &c->fa, &c->fb, y, B, c->out_dim, L);
    o->conv1d(be, y, &c->fin_w, &c->fin_b, z, B, c->out_dim, 1, L, 1, 1);
    o->clamp(be, z, (int64_t)B * L, -1.0f, 1.0f);
    return z;
}

/* --------------------------------------------------------------------- API */

static qtts_status check_codes(const qtts_codec *c, const int32_t *codes, const int *T, int B, int *Tmax, qtts_err *err) {
    if (B < 1) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "codec decode: batch size %d", B);
    if (!codes || !T) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "codec decode: NULL codes or lengths");
    int tm = 0;
    for (int b = 0; b < B; b++) {
        if (T[b] < 1) return qtts_fail(err, QTTS_ERR_SHAPE, "codec decode: item %d has %d frames (at least 1 needed)", b, T[b]);
        tm = T[b] > tm ? T[b] : tm;
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T[b]; t++)
            for (int k = 0; k < c->nq; k++) {
                int32_t v = codes[((size_t)b * tm + t) * c->nq + k];
                if (v < 0 || v >= c->cfg.codebook_size)
                    return qtts_fail(err, QTTS_ERR_INVALID_ARG, "codec decode: item %d frame %d codebook %d: code %d outside 0..%d", b, t,
                                     k, (int)v, c->cfg.codebook_size - 1);
            }
    *Tmax = tm;
    return QTTS_OK;
}

qtts_status qtts_codec_decode_chunked(qtts_codec *c, const int32_t *codes, const int *T, int B, int chunk, int left_context,
                                      float **wav_out, qtts_err *err) {
    qtts_status st = QTTS_OK;
    codec_scratch s;
    int32_t *ids = NULL;
    int *item = NULL;
    int Tmax = 0;
    bool planned = false;
    const qtts_ops *o = c->be->ops;
    if (!wav_out) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "codec decode: NULL output array");
    for (int b = 0; b < B; b++) wav_out[b] = NULL;
    QTTS_TRY(check_codes(c, codes, T, B, &Tmax, err));
    if (chunk <= 0 || chunk >= Tmax) {
        chunk = Tmax;
        left_context = 0;
    }
    QTTS_CHECK(left_context >= 0, err, QTTS_ERR_INVALID_ARG, "codec decode: negative left context %d", left_context);
    int Tw = chunk + left_context < Tmax ? chunk + left_context : Tmax; /* longest window */
    for (int b = 0; b < B; b++) {
        wav_out[b] = qtts_malloc((size_t)T[b] * c->spf * sizeof(float), err, "codec waveform");
        if (!wav_out[b]) {
            st = QTTS_ERR_OOM;
            goto cleanup;
        }
    }
    QTTS_TRY(scratch_plan(c, &s, B, Tw, err));
    planned = true;
    ids = qtts_malloc((size_t)c->nq * B * Tw * sizeof(int32_t), err, "codec ids");
    item = qtts_malloc((size_t)B * sizeof(int), err, "codec items");
    if (!ids || !item) {
        st = QTTS_ERR_OOM;
        goto cleanup;
    }
    /* Official chunked_decode: windows [start - ctx, end), ctx = left_context
     * if start - left_context > 0 else start; the first ctx frames' audio is
     * dropped. Items already finished leave the batch. */
    for (int start = 0; start < Tmax; start += chunk) {
        int ctx = start - left_context > 0 ? left_context : start;
        int nb = 0, len = 0;
        for (int b = 0; b < B; b++)
            if (T[b] > start) {
                item[nb++] = b;
                int e = start + chunk < T[b] ? start + chunk : T[b];
                len = e - start > len ? e - start : len;
            }
        int W = ctx + len;
        for (int j = 0; j < nb; j++) {
            int b = item[j];
            for (int t = 0; t < W; t++) {
                int f = start - ctx + t; /* source frame; past T[b] is padding */
                for (int k = 0; k < c->nq; k++)
                    ids[((size_t)k * nb + j) * W + t] = f < T[b] ? codes[((size_t)b * Tmax + f) * c->nq + k] : 0;
            }
        }
        qtts_range_push(c->be, "decoder");
        float *wav = codec_forward(c, &s, ids, nb, W);
        qtts_range_push(c->be, "host transfer");
        for (int j = 0; j < nb; j++) {
            int b = item[j];
            int keep = (start + chunk < T[b] ? start + chunk : T[b]) - start;
            o->to_host(c->be, wav_out[b] + (size_t)start * c->spf, wav + ((size_t)j * W + ctx) * c->spf,
                       (size_t)keep * c->spf * sizeof(float));
        }
        qtts_range_pop(c->be);
        qtts_range_pop(c->be);
    }
    o->sync(c->be);
cleanup:
    if (planned) scratch_free(c, &s);
    free(ids);
    free(item);
    if (st != QTTS_OK)
        for (int b = 0; b < B; b++) {
            free(wav_out[b]);
            wav_out[b] = NULL;
        }
    return st;
}

qtts_status qtts_codec_decode(qtts_codec *c, const int32_t *codes, const int *T, int B, float **wav_out, qtts_err *err) {
    return qtts_codec_decode_chunked(c, codes, T, B, 0, 0, wav_out, err);
}
