/* Sampling pipeline tests: penalties, greedy, top-k ties, top-p, the
 * empirical distribution of draws against softmax (seeded, deterministic),
 * RNG independence of (seed, counter). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "testutil.h"

#define V 64

static void test_penalty(void) {
    float l[4] = {2.0f, -2.0f, 0.5f, 3.0f};
    uint8_t seen[4] = {1, 1, 0, 0};
    qtts_sample_penalize(l, 4, seen, 2.0f);
    CHECK(l[0] == 1.0f && l[1] == -4.0f && l[2] == 0.5f && l[3] == 3.0f, "penalty %g %g %g %g", l[0], l[1], l[2], l[3]);
}

static void test_greedy(void) {
    float l[V], wf[V];
    int wi[V];
    for (int i = 0; i < V; i++) l[i] = (float)(i % 7);
    l[40] = 10;
    l[41] = 10; /* tie: first index wins, as torch.argmax */
    qtts_sampler s = {.greedy = true, .temperature = 1, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    CHECK(qtts_sample_pick(l, V, &s, 0.99, wf, wi) == 40, "greedy tie");
    for (int i = 0; i < V; i++) l[i] = -INFINITY;
    CHECK(qtts_sample_pick(l, V, &s, 0.5, wf, wi) == -1, "all -inf");
    l[3] = NAN;
    l[5] = -1;
    CHECK(qtts_sample_pick(l, V, &s, 0.5, wf, wi) == 5, "NaN never chosen");
}

/* Draw many times and compare frequencies with the expected distribution. */
static void dist_check(const char *name, const float *logits, const qtts_sampler *s, const double *expect) {
    int count[V] = {0};
    float l[V], wf[V];
    int wi[V];
    int N = 200000;
    for (int d = 0; d < N; d++) {
        memcpy(l, logits, sizeof l);
        int t = qtts_sample_pick(l, V, s, qtts_rng_uniform(1234, (uint64_t)d), wf, wi);
        if (t >= 0) count[t]++;
    }
    double maxdev = 0;
    int bad = -1;
    for (int i = 0; i < V; i++) {
        double f = (double)count[i] / N, sd = sqrt(expect[i] * (1 - expect[i]) / N) + 1e-9;
        if (expect[i] == 0 && count[i] != 0) bad = i;
        if (fabs(f - expect[i]) / sd > maxdev) maxdev = fabs(f - expect[i]) / sd;
    }
    CHECK(bad < 0, "%s: token %d drawn but has probability 0", name, bad);
    CHECK(maxdev < 6.0, "%s: frequency off by %.1f standard deviations", name, maxdev);
}

static void test_distributions(void) {
    float logits[V];
    uint64_t st = 7;
    for (int i = 0; i < V; i++) logits[i] = 2.0f * tu_rand_uniform(&st);
    logits[10] = logits[11] = logits[12] = 1.5f; /* a tie around the k-th place */
    double e[V];
    /* plain softmax with temperature 0.7 */
    qtts_sampler s = {.temperature = 0.7f, .top_k = 0, .top_p = 1.0f, .repetition_penalty = 1};
    double sum = 0;
    for (int i = 0; i < V; i++) sum += e[i] = exp(logits[i] / 0.7);
    for (int i = 0; i < V; i++) e[i] /= sum;
    dist_check("softmax T=0.7", logits, &s, e);
    /* top-k 5 with ties kept: everything >= the 5th largest */
    float sorted[V];
    memcpy(sorted, logits, sizeof sorted);
    for (int i = 0; i < V; i++)
        for (int j = i + 1; j < V; j++)
            if (sorted[j] > sorted[i]) {
                float t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    int k = 5;
    float kth = sorted[k - 1];
    sum = 0;
    for (int i = 0; i < V; i++) sum += e[i] = logits[i] >= kth ? exp(logits[i]) : 0;
    for (int i = 0; i < V; i++) e[i] /= sum;
    s = (qtts_sampler){.temperature = 1, .top_k = k, .top_p = 1, .repetition_penalty = 1};
    dist_check("top-k 5", logits, &s, e);
    /* top-p 0.5: smallest descending prefix whose mass exceeds 0.5 */
    double p[V], tot = 0;
    for (int i = 0; i < V; i++) tot += p[i] = exp(logits[i]);
    float cut = 0;
    double acc = 0;
    for (int r = 0; r < V; r++) {
        acc += exp(sorted[r]) / tot;
        cut = sorted[r];
        if (acc >= 0.5) break;
    }
    sum = 0;
    for (int i = 0; i < V; i++) sum += e[i] = logits[i] >= cut ? p[i] : 0;
    for (int i = 0; i < V; i++) e[i] /= sum;
    s = (qtts_sampler){.temperature = 1, .top_k = 0, .top_p = 0.5f, .repetition_penalty = 1};
    dist_check("top-p 0.5", logits, &s, e);
}

static void test_rng(void) {
    double a = qtts_rng_uniform(1, 0), b = qtts_rng_uniform(1, 1), c = qtts_rng_uniform(2, 0);
    CHECK(a != b && a != c && b != c, "distinct streams");
    CHECK(a == qtts_rng_uniform(1, 0), "reproducible");
    double m = 0;
    int out_of_range = 0;
    for (int i = 0; i < 100000; i++) {
        double u = qtts_rng_uniform(99, (uint64_t)i);
        out_of_range += !(u >= 0 && u < 1);
        m += u;
    }
    CHECK(out_of_range == 0, "%d draws outside [0, 1)", out_of_range);
    CHECK(fabs(m / 100000 - 0.5) < 0.005, "mean %g", m / 100000);
    CHECK(qtts_seed_derive(1, 2, 3, 4) != qtts_seed_derive(1, 2, 4, 3), "derive order matters");
    CHECK(qtts_seed_derive(1, 2, 3, 4) == qtts_seed_derive(1, 2, 3, 4), "derive reproducible");
}

int main(void) {
    test_penalty();
    test_greedy();
    test_distributions();
    test_rng();
    return tu_finish("test_sample");
}
