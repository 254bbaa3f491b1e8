/* Model loading and the Qwen3 decoder stack shared by talker and code
 * predictor: pre-norm layers, x += Wo·attn(rope(norm_h(Wq y)), rope(norm_h(Wk y)), Wv y)
 * then x += Wdown·(silu(Wgate y) ⊙ Wup y), y = rmsnorm(x); final RMSNorm.
 * Weight names and shapes are checked once here; the forward pass never
 * looks anything up by name. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Upload `name` with the given shape; the message names the tensor. */
static qtts_status load(qtts_model *m, const char *name, int ndim, int64_t d0, int64_t d1, qtts_tensor *dst, qtts_err *err) {
    int64_t shape[2] = {d0, d1};
    return qtts_tensor_load(m->be, &m->st, name, ndim, shape, dst, err);
}

#define BLOCK_ALIGN 256 /* bytes: keeps every tensor in a block aligned for vector loads */

/* One layer's weights in one backend block: each tensor is checked by name,
 * dtype and shape, then converted into its aligned place in the block. Gate
 * and up projections are stacked into one [2I, H] weight, so the MLP needs
 * one GEMM; both halves must share a dtype (they do in every checkpoint). */
static qtts_status load_layer(qtts_model *m, const char *p, const qtts_lm_config *c, qtts_lm_layer *L, qtts_err *err) {
    qtts_status st = QTTS_OK;
    const qtts_ops *o = m->be->ops;
    int64_t H = c->hidden_size, I = c->intermediate_size, hd = c->head_dim;
    struct {
        const char *suffix;
        int ndim;
        int64_t d0, d1;
        qtts_tensor *dst;
    } w[] = {
        {"input_layernorm.weight", 1, H, 0, &L->in_norm},
        {"self_attn.q_proj.weight", 2, c->num_heads * hd, H, &L->wq},
        {"self_attn.k_proj.weight", 2, c->num_kv_heads * hd, H, &L->wk},
        {"self_attn.v_proj.weight", 2, c->num_kv_heads * hd, H, &L->wv},
        {"self_attn.q_norm.weight", 1, hd, 0, &L->q_norm},
        {"self_attn.k_norm.weight", 1, hd, 0, &L->k_norm},
        {"self_attn.o_proj.weight", 2, H, c->num_heads * hd, &L->wo},
        {"post_attention_layernorm.weight", 1, H, 0, &L->post_norm},
        {"mlp.down_proj.weight", 2, H, I, &L->w_down},
        {"mlp.gate_proj.weight", 2, I, H, &L->w_gate_up}, /* + up_proj, stacked below */
    };
    enum { NW = sizeof w / sizeof w[0] };
    const qtts_st_tensor *src[NW], *up = NULL;
    char name[320];
    char *cat = NULL;
    qtts_st_tensor gate_up;
    for (int i = 0; i < NW; i++) {
        int64_t shape[2] = {w[i].d0, w[i].d1};
        snprintf(name, sizeof name, "%s.%s", p, w[i].suffix);
        QTTS_TRY(qtts_st_get(&m->st, name, QTTS_DTM_FLOAT, w[i].ndim, shape, &src[i], err));
    }
    int64_t ushape[2] = {I, H};
    snprintf(name, sizeof name, "%s.mlp.up_proj.weight", p);
    QTTS_TRY(qtts_st_get(&m->st, name, QTTS_DTM_FLOAT, 2, ushape, &up, err));
    const qtts_st_tensor *g = src[NW - 1];
    QTTS_CHECK(g->dtype == up->dtype, err, QTTS_ERR_DTYPE, "%s: dtype %s differs from %s's %s", name, qtts_dtype_name(up->dtype), g->name,
               qtts_dtype_name(g->dtype));
    cat = qtts_malloc(g->nbytes * 2, err, g->name);
    if (!cat) return QTTS_ERR_OOM;
    memcpy(cat, g->data, g->nbytes);
    memcpy(cat + g->nbytes, up->data, up->nbytes);
    gate_up = *g;
    gate_up.shape[0] = 2 * I;
    gate_up.numel = 2 * g->numel;
    gate_up.data = cat;
    gate_up.nbytes = 2 * g->nbytes;
    src[NW - 1] = &gate_up;

    size_t off[NW], total = 0;
    for (int i = 0; i < NW; i++) {
        off[i] = total;
        total += (o->storage_bytes(m->be, src[i]) + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    }
    L->block = o->alloc(m->be, total);
    QTTS_CHECK(L->block, err, QTTS_ERR_OOM, "%s: weight block of %zu bytes: out of memory", p, total);
    L->block_bytes = total;
    for (int i = 0; i < NW; i++) QTTS_TRY(o->upload_at(m->be, src[i], (char *)L->block + off[i], w[i].dst, err));
cleanup:
    free(cat);
    return st;
}

static qtts_status load_lm(qtts_model *m, const char *prefix, const qtts_lm_config *c, qtts_lm *lm, qtts_err *err) {
    qtts_status st = QTTS_OK;
    char p[256], n[320];
    lm->cfg = *c;
    lm->layers = qtts_calloc((size_t)c->num_layers, sizeof *lm->layers, err, prefix);
    if (!lm->layers) return QTTS_ERR_OOM;
    for (int i = 0; i < c->num_layers; i++) {
        snprintf(p, sizeof p, "%s.layers.%d", prefix, i);
        QTTS_TRY(load_layer(m, p, c, &lm->layers[i], err));
    }
    snprintf(n, sizeof n, "%s.norm.weight", prefix);
    QTTS_TRY(load(m, n, 1, c->hidden_size, 0, &lm->norm, err));
cleanup:
    return st;
}

static void free_lm(qtts_backend *be, qtts_lm *lm) {
    if (!lm->layers) return;
    for (int i = 0; i < lm->cfg.num_layers; i++) {
        qtts_lm_layer *L = &lm->layers[i];
        qtts_tensor *t[] = {&L->in_norm, &L->wq, &L->wk, &L->wv, &L->q_norm, &L->k_norm, &L->wo, &L->post_norm, &L->w_gate_up, &L->w_down};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
            if (t[k]->data) be->ops->release(be, t[k]);
        if (L->block) be->ops->free(be, L->block);
    }
    free(lm->layers);
    if (lm->norm.data) be->ops->release(be, &lm->norm);
    lm->layers = NULL;
}

qtts_status qtts_model_load(qtts_model **out, qtts_backend *be, const char *dir, qtts_err *err) {
    qtts_status st = QTTS_OK;
    *out = NULL;
    qtts_model *m = qtts_calloc(1, sizeof *m, err, "model");
    if (!m) return QTTS_ERR_OOM;
    m->be = be;
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    QTTS_TRY(qtts_model_config_load(dir, &m->cfg, err));
    QTTS_TRY(qtts_gen_config_load(dir, &m->gen, err));
    QTTS_TRY(qtts_st_open(&m->st, dir, err));
    const qtts_model_config *c = &m->cfg;
    int64_t H = c->talker.hidden_size, Th = c->text_hidden_size, Hp = c->predictor.hidden_size;
    int64_t shape[2] = {c->text_vocab_size, Th};
    QTTS_TRY(qtts_st_get(&m->st, "talker.model.text_embedding.weight", QTTS_DTM_FLOAT, 2, shape, &m->text_embed, err));
    QTTS_TRY(load(m, "talker.text_projection.linear_fc1.weight", 2, Th, Th, &m->text_fc1_w, err));
    QTTS_TRY(load(m, "talker.text_projection.linear_fc1.bias", 1, Th, 0, &m->text_fc1_b, err));
    QTTS_TRY(load(m, "talker.text_projection.linear_fc2.weight", 2, H, Th, &m->text_fc2_w, err));
    QTTS_TRY(load(m, "talker.text_projection.linear_fc2.bias", 1, H, 0, &m->text_fc2_b, err));
    QTTS_TRY(load(m, "talker.model.codec_embedding.weight", 2, c->talker.vocab_size, H, &m->codec_embed, err));
    QTTS_TRY(load_lm(m, "talker.model", &c->talker, &m->talker, err));
    QTTS_TRY(load(m, "talker.codec_head.weight", 2, c->talker.vocab_size, H, &m->codec_head, err));
    QTTS_TRY(load_lm(m, "talker.code_predictor.model", &c->predictor, &m->predictor, err));
    m->n_groups = c->num_code_groups;
    QTTS_CHECK(m->n_groups >= 2 && m->n_groups <= QTTS_EMBED_SUM_MAX, err, QTTS_ERR_CONFIG, "config.json: talker_config.num_code_groups: %d is out of range",
               m->n_groups);
    m->cp_embed = qtts_calloc((size_t)m->n_groups - 1, sizeof *m->cp_embed, err, "predictor embeddings");
    m->cp_head = qtts_calloc((size_t)m->n_groups - 1, sizeof *m->cp_head, err, "predictor heads");
    QTTS_CHECK(m->cp_embed && m->cp_head, err, QTTS_ERR_OOM, "out of memory");
    for (int k = 0; k < m->n_groups - 1; k++) {
        char n[256];
        snprintf(n, sizeof n, "talker.code_predictor.model.codec_embedding.%d.weight", k);
        QTTS_TRY(load(m, n, 2, c->predictor.vocab_size, H, &m->cp_embed[k], err));
        snprintf(n, sizeof n, "talker.code_predictor.lm_head.%d.weight", k);
        QTTS_TRY(load(m, n, 2, c->predictor.vocab_size, Hp, &m->cp_head[k], err));
    }
    /* the official module is Linear(H, Hp) when the widths differ, else Identity */
    m->has_mtp_proj = Hp != H;
    if (m->has_mtp_proj) {
        QTTS_TRY(load(m, "talker.code_predictor.small_to_mtp_projection.weight", 2, Hp, H, &m->mtp_w, err));
        QTTS_TRY(load(m, "talker.code_predictor.small_to_mtp_projection.bias", 1, Hp, 0, &m->mtp_b, err));
    }
    *out = m;
    return QTTS_OK;
cleanup:
    qtts_model_free(m);
    return st;
}

void qtts_model_free(qtts_model *m) {
    if (!m) return;
    qtts_backend *be = m->be;
    qtts_tensor *single[] = {&m->text_fc1_w, &m->text_fc1_b, &m->text_fc2_w, &m->text_fc2_b, &m->codec_embed,
                             &m->codec_head, &m->mtp_w, &m->mtp_b};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
        if (single[i]->data) be->ops->release(be, single[i]);
    for (int k = 0; k < m->n_groups - 1; k++) {
        if (m->cp_embed && m->cp_embed[k].data) be->ops->release(be, &m->cp_embed[k]);
        if (m->cp_head && m->cp_head[k].data) be->ops->release(be, &m->cp_head[k]);
    }
    free(m->cp_embed);
    free(m->cp_head);
    free_lm(be, &m->talker);
    free_lm(be, &m->predictor);
    qtts_st_close(&m->st);
    free(m);
}

qtts_status qtts_lm_scratch_init(qtts_lm_scratch *s, qtts_backend *be, const qtts_lm_config *c, int max_tokens, qtts_err *err) {
    memset(s, 0, sizeof *s);
    size_t n = (size_t)max_tokens, I = (size_t)c->intermediate_size;
    size_t qd = (size_t)c->num_heads * c->head_dim, kd = (size_t)c->num_kv_heads * c->head_dim;
    s->max_tokens = max_tokens;
    s->q = be->ops->alloc(be, n * qd * sizeof(float));
    s->k = be->ops->alloc(be, n * kd * sizeof(float));
    s->v = be->ops->alloc(be, n * kd * sizeof(float));
    s->att = be->ops->alloc(be, n * qd * sizeof(float));
    s->mlp = be->ops->alloc(be, n * I * sizeof(float));
    if (!s->q || !s->k || !s->v || !s->att || !s->mlp) {
        qtts_lm_scratch_free(s, be);
        return qtts_fail(err, QTTS_ERR_OOM, "decoder scratch for %d tokens: out of memory", max_tokens);
    }
    return QTTS_OK;
}

void qtts_lm_scratch_free(qtts_lm_scratch *s, qtts_backend *be) {
    float *p[] = {s->q, s->k, s->v, s->att, s->mlp};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i]) be->ops->free(be, p[i]);
    memset(s, 0, sizeof *s);
}

qtts_status qtts_kv_init(qtts_kv_cache *c, qtts_backend *be, const qtts_lm_config *cfg, int n_slots, int max_len, qtts_err *err) {
    memset(c, 0, sizeof *c);
    c->n_layers = cfg->num_layers;
    c->n_slots = n_slots;
    c->max_len = max_len;
    c->n_kv_heads = cfg->num_kv_heads;
    c->head_dim = cfg->head_dim;
    size_t n = (size_t)c->n_layers * n_slots * max_len * c->n_kv_heads * c->head_dim;
    c->k = be->ops->alloc(be, n * sizeof(float));
    c->v = be->ops->alloc(be, n * sizeof(float));
    if (!c->k || !c->v) {
        qtts_kv_free(c, be);
        return qtts_fail(err, QTTS_ERR_OOM, "KV cache (%d slots x %d positions, %.1f MB): out of memory", n_slots, max_len,
                         2.0 * n * sizeof(float) / 1e6);
    }
    return QTTS_OK;
}

void qtts_kv_free(qtts_kv_cache *c, qtts_backend *be) {
    if (c->k) be->ops->free(be, c->k);
    if (c->v) be->ops->free(be, c->v);
    memset(c, 0, sizeof *c);
}

void qtts_lm_forward(qtts_backend *be, const qtts_lm *lm, qtts_kv_cache *kv, const qtts_batch *b, float *x, float *out,
                     qtts_lm_scratch *s, float *capture) {
    const qtts_ops *o = be->ops;
    const qtts_lm_config *c = &lm->cfg;
    int n = b->n, H = c->hidden_size, hd = c->head_dim, nh = c->num_heads, nkv = c->num_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t row = (size_t)n * H * sizeof(float);
    /* the RMSNorms are fused into the projections after them, the residual
     * adds into the projections before them: x is the residual stream */
    for (int l = 0; l < c->num_layers; l++) {
        const qtts_lm_layer *L = &lm->layers[l];
        if (capture) o->copy(be, capture + (size_t)l * n * H, x, row);
        const qtts_tensor *qkv_w[] = {&L->wq, &L->wk, &L->wv};
        float *qkv[] = {s->q, s->k, s->v};
        o->norm_matmul(be, x, &L->in_norm, c->rms_norm_eps, 3, qkv_w, qkv, n);
        if (b->one_per_slot) {
            o->qk_norm_rope_attend(be, s->q, s->k, s->v, &L->q_norm, &L->k_norm, c->rms_norm_eps, b, nh, nkv, hd, c->rope_theta, kv, l,
                                   scale, s->att);
        } else {
            o->qk_norm_rope_store(be, s->q, s->k, s->v, &L->q_norm, &L->k_norm, c->rms_norm_eps, b, nh, nkv, hd, c->rope_theta, kv, l);
            o->attention(be, s->q, kv, l, b, nh, scale, 0, s->att);
        }
        o->matmul_add(be, s->att, &L->wo, x, n);
        o->norm_swiglu(be, x, &L->post_norm, c->rms_norm_eps, &L->w_gate_up, s->mlp, n);
        o->matmul_add(be, s->mlp, &L->w_down, x, n);
    }
    o->rmsnorm(be, x, &lm->norm, c->rms_norm_eps, out, n, H);
    if (capture) o->copy(be, capture + (size_t)c->num_layers * n * H, out, row);
}

void qtts_model_predictor_weights(const qtts_model *m, qtts_predictor_weights *w) {
    const qtts_lm_config *c = &m->predictor.cfg;
    *w = (qtts_predictor_weights){.n_layers = c->num_layers, .hidden = c->hidden_size, .n_heads = c->num_heads, .n_kv = c->num_kv_heads,
                                  .head_dim = c->head_dim, .inter = c->intermediate_size, .eps = c->rms_norm_eps, .theta = c->rope_theta,
                                  .in_hidden = m->cfg.talker.hidden_size, .vocab = c->vocab_size, .n_groups = m->n_groups,
                                  .layers = m->predictor.layers, .norm = &m->predictor.norm,
                                  .mtp_w = m->has_mtp_proj ? &m->mtp_w : NULL, .mtp_b = m->has_mtp_proj ? &m->mtp_b : NULL,
                                  .c0_embed = &m->codec_embed, .embed = m->cp_embed, .head = m->cp_head};
}

void qtts_predict_frame(qtts_backend *be, const qtts_predictor_weights *w, const qtts_predictor_frame *f) {
    const qtts_ops *o = be->ops;
    int nb = f->nb, G = w->n_groups;
    size_t Hin = (size_t)w->in_hidden, Hp = (size_t)w->hidden, V = (size_t)w->vocab;
    qtts_lm lm = {.cfg = {.hidden_size = w->hidden, .intermediate_size = w->inter, .num_layers = w->n_layers, .num_heads = w->n_heads,
                          .num_kv_heads = w->n_kv, .head_dim = w->head_dim, .rms_norm_eps = w->eps, .rope_theta = w->theta,
                          .vocab_size = w->vocab},
                  .layers = (qtts_lm_layer *)w->layers, .norm = *w->norm};
    qtts_lm_scratch s = {.max_tokens = 2 * nb, .q = f->q, .k = f->k, .v = f->v, .att = f->att, .mlp = f->mlp};
    o->gather_rows(be, f->past_hidden, f->act, nb, (int)Hin, f->pe);
    o->embed(be, w->c0_embed, f->tok, nb, f->pe + (size_t)nb * Hin);
    qtts_batch b = {.n = 2 * nb, .slot = f->slot1, .pos = f->pos1, .h_slot = f->h_slot1, .h_pos = f->h_pos1, .ctx_bound = G};
    for (int k = 1; k < G; k++) {
        if (k > 1) /* one token per predictor slot from here on */
            b = (qtts_batch){.n = nb, .slot = f->iota, .pos = f->kpos + (size_t)k * f->kpos_stride, .h_slot = f->h_iota,
                             .h_pos = f->h_kpos + (size_t)k * f->kpos_stride, .ctx_bound = G, .one_per_slot = true};
        if (w->mtp_w) o->matmul(be, f->pe, w->mtp_w, w->mtp_b, f->px, b.n);
        else o->copy(be, f->px, f->pe, (size_t)b.n * Hin * sizeof(float));
        qtts_lm_forward(be, &lm, f->kv, &b, f->px, f->pout, &s, NULL);
        /* the head reads each row's last position */
        o->matmul(be, k == 1 ? f->pout + (size_t)nb * Hp : f->pout, &w->head[k - 1], NULL, f->logits, nb);
        if (f->rec_logits) o->copy(be, f->rec_logits + (size_t)(k - 1) * nb * V, f->logits, (size_t)nb * V * sizeof(float));
        int32_t *tk = f->tok + (size_t)k * f->tok_stride;
        o->sample(be, f->logits, nb, w->vocab, f->rows + (size_t)(k - 1) * nb, NULL, tk);
        if (k + 1 < G) o->embed(be, &w->embed[k - 1], tk, nb, f->pe);
    }
}

qtts_status qtts_model_text_embed(const qtts_model *m, const int32_t *ids, int n, float *out, qtts_err *err) {
    qtts_backend *be = m->be;
    int64_t Th = m->cfg.text_hidden_size, V = m->cfg.text_vocab_size;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "text token id %d out of range [0, %lld)", ids[i], (long long)V);
    float *h = qtts_malloc((size_t)n * Th * sizeof(float), err, "text embedding rows");
    if (!h) return QTTS_ERR_OOM;
    float *d0 = be->ops->alloc(be, (size_t)n * Th * sizeof(float));
    float *d1 = be->ops->alloc(be, (size_t)n * Th * sizeof(float));
    if (!d0 || !d1) {
        free(h);
        if (d0) be->ops->free(be, d0);
        if (d1) be->ops->free(be, d1);
        return qtts_fail(err, QTTS_ERR_OOM, "text projection of %d tokens: out of memory", n);
    }
    for (int i = 0; i < n; i++) qtts_st_rows_to_f32(m->text_embed, ids[i], 1, h + (size_t)i * Th);
    be->ops->to_device(be, d0, h, (size_t)n * Th * sizeof(float));
    be->ops->matmul(be, d0, &m->text_fc1_w, &m->text_fc1_b, d1, n);
    be->ops->silu(be, d1, (int64_t)n * Th);
    be->ops->matmul(be, d1, &m->text_fc2_w, &m->text_fc2_b, out, n);
    free(h);
    be->ops->free(be, d0);
    be->ops->free(be, d1);
    return QTTS_OK;
}

void qtts_model_frame_embed_dev(const qtts_model *m, const int32_t *ids, int stride, int n, float *out) {
    const qtts_tensor *tables[QTTS_EMBED_SUM_MAX];
    tables[0] = &m->codec_embed;
    for (int g = 1; g < m->n_groups; g++) tables[g] = &m->cp_embed[g - 1];
    m->be->ops->embed_sum(m->be, tables, m->n_groups, ids, stride, n, out);
}

qtts_status qtts_model_frame_embed(const qtts_model *m, const int32_t *codes, int n, float *out, qtts_err *err) {
    qtts_backend *be = m->be;
    int G = m->n_groups;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < G; g++) {
            int c = codes[(size_t)i * G + g], lim = g == 0 ? m->cfg.talker.vocab_size : m->cfg.predictor.vocab_size;
            if (c < 0 || c >= lim) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "frame %d codebook %d: code %d out of range [0, %d)", i, g, c, lim);
        }
    int32_t *ids_h = qtts_malloc((size_t)n * G * sizeof(int32_t), err, "frame codes");
    int32_t *ids_d = be->ops->alloc(be, (size_t)n * G * sizeof(int32_t));
    qtts_status st = QTTS_OK;
    if (!ids_h || !ids_d) {
        st = qtts_fail(err, QTTS_ERR_OOM, "frame embedding of %d frames: out of memory", n);
    } else { /* frame-major host codes to the codebook-major device layout */
        for (int i = 0; i < n; i++)
            for (int g = 0; g < G; g++) ids_h[(size_t)g * n + i] = codes[(size_t)i * G + g];
        be->ops->to_device(be, ids_d, ids_h, (size_t)n * G * sizeof(int32_t));
        qtts_model_frame_embed_dev(m, ids_d, n, n, out);
    }
    free(ids_h);
    if (ids_d) be->ops->free(be, ids_d);
    return st;
}
