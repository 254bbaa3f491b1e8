/* Sampling pipeline (see sample.h). The multinomial draw walks candidates in
 * a fixed order (descending logit, ascending id) so that the CPU and GPU
 * backends pick the same token from the same uniform. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>

uint64_t qtts_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double qtts_rng_uniform(uint64_t seed, uint64_t counter) {
    uint64_t z = qtts_mix64(qtts_mix64(seed) ^ (counter * 0xd1b54a32d192ed03ull));
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t qtts_seed_derive(uint64_t job_seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t z = qtts_mix64(job_seed);
    z = qtts_mix64(z ^ (a + 0x632be59bd9b4e019ull));
    z = qtts_mix64(z ^ (b + 0x8cb92ba72f3d8dd7ull));
    return qtts_mix64(z ^ (c + 0x4f1bbcdcbfa53e0bull));
}

void qtts_sample_penalize(float *logits, int n, const uint8_t *seen, float penalty) {
    if (penalty == 1.0f) return;
    for (int i = 0; i < n; i++)
        if (seen[i]) logits[i] = logits[i] < 0 ? logits[i] * penalty : logits[i] / penalty;
}

/* Candidates sorted by descending logit, ties by ascending id. Shell sort:
 * deterministic, in place, and fast enough for a 3072-entry vocabulary.
 */

static void sort_desc(int *idx, int m, const float *l) {

    for (int gap = m / 2; gap > 0; gap /= 2)
        for (int i = gap; i < m; i++) {
            int v = idx[i], j = i;
            while (j >= gap && (l[idx[j - gap]] < l[v] || (l[idx[j - gap]] == l[v] && idx[j - gap] > v))) {
                idx[j] = idx[j - gap];
                j -= gap;
            }
            idx[j] = v;
        }
}

/* The value of rank r (0 = largest) among v[0..n), reordering v (Hoare
 * quickselect with a median-of-three pivot). */
static float select_desc(float *v, int n, int r) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], c = v[hi];
        float piv = (a > b) == (b > c) ? b : ((b > a) == (a > c) ? a : c);
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] > piv) i++;
            while (v[j] < piv) j--;
            if (i <= j) {
                float tmp = v[i];
                v[i++] = v[j];
                v[j--] = tmp;
            }
        }
        if (r <= j) hi = j;
        else if (r >= i) lo = i;
        else return v[r];
    }
    return v[r];
}

int qtts_sample_pick(float *logits, int n, const qtts_sampler *s, double u, float *work_f, int *work_i) {
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (isnan(logits[i])) logits[i] = -INFINITY;
        if (logits[i] > -INFINITY && (best < 0 || logits[i] > logits[best])) best = i;
    }
    if (best < 0 || s->greedy) return best;

    float t = s->temperature > 0 ? s->temperature : 1.0f;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] > -INFINITY) {
            logits[i] /= t;
            work_i[m++] = i;
        }
    /* top-k: keep every logit >= the k-th largest (ties kept, as HF). The
     * k-th value comes from a selection over a copy (O(n)), so only the few
     * survivors are sorted, not the whole vocabulary. */
    if (s->top_k > 0 && s->top_k < m) {
        for (int j = 0; j < m; j++) work_f[j] = logits[work_i[j]];
        float kth = select_desc(work_f, m, s->top_k - 1);
        int keep = 0;
        for (int j = 0; j < m; j++)
            if (logits[work_i[j]] >= kth) work_i[keep++] = work_i[j];
        m = keep;
    }
    sort_desc(work_i, m, logits);
    /* softmax over the candidates in sorted order */
    float mx = logits[work_i[0]];
    double sum = 0;
    for (int j = 0; j < m; j++) {
        work_f[j] = expf(logits[work_i[j]] - mx);
        sum += work_f[j];
    }
    /* top-p as HF: in ascending order, drop tokens whose cumulative
     * probability is <= 1 - top_p; the most likely token always stays */
    if (s->top_p < 1.0f) {
        double cum = 0, thr = 1.0 - s->top_p;
        int first_kept = m - 1;
        for (int j = m - 1; j >= 0; j--) {
            cum += work_f[j] / sum;
            if (cum > thr) {
                first_kept = j;
                break;
            }
        }
        m = first_kept + 1;
        sum = 0;
        for (int j = 0; j < m; j++) sum += work_f[j];
    }
    double target = u * sum, acc = 0;
    for (int j = 0; j < m; j++) {
        acc += work_f[j];
        if (target < acc) return work_i[j];
    }
    return work_i[m - 1];
}
