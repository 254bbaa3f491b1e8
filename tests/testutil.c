/* Test harness implementation (see testutil.h). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int tu_passed, tu_failed;

int tu_finish(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}

int tu_skip(const char *why) {
    printf("SKIP: %s\n", why);
    return TEST_SKIP;
}

double tu_rel_l2(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(ref[i])) return INFINITY;
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

bool tu_close(const char *name, const float *got, const float *ref, size_t n, double tol) {
    double e = tu_rel_l2(got, ref, n);
    bool ok = e <= tol;
    if (!ok) {
        fprintf(stderr, "  %s: relative L2 %.3e > tol %.1e (n=%zu); first mismatches:\n", name, e, tol, n);
        int shown = 0;
        double scale = 0;
        for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
        for (size_t i = 0; i < n && shown < 8; i++) {
            if (!(fabs((double)got[i] - ref[i]) <= tol * fmax(scale, 1e-30))) {
                fprintf(stderr, "    [%zu] got %.7g want %.7g\n", i, got[i], ref[i]);
                shown++;
            }
        }
    }
    return ok;
}

double tu_snr_db(const float *got, const float *ref, size_t n) {
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return -INFINITY;
        double d = (double)got[i] - ref[i];
        sig += (double)ref[i] * ref[i];
        noise += d * d;
    }
    if (noise == 0) return INFINITY;
    return 10.0 * log10(fmax(sig, 1e-30) / noise);
}

uint64_t tu_rand_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float tu_rand_uniform(uint64_t *s) {
    return (float)((tu_rand_u64(s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

const char *tu_fixture_dir(void) { return QTTS_SOURCE_DIR "/tests/fixtures"; }
const char *tu_shared_dir(void) { return QTTS_SHARED_DIR; }

int tu_run(const char *cmd, char *buf, size_t bufsize) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, bufsize - 1, p);
    buf[n] = 0;
    while (fread(full, 1, sizeof full, p) > 0) {
    }
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

qtts_st_tensor tu_f32_tensor(const char *name, const float *data, int ndim, int64_t s0, int64_t s1, int64_t s2) {
    qtts_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = QTTS_DT_F32;
    t.ndim = ndim;
    t.shape[0] = s0;
    t.shape[1] = s1;
    t.shape[2] = s2;
    t.numel = s0 * (ndim > 1 ? s1 : 1) * (ndim > 2 ? s2 : 1);
    t.data = data;
    t.nbytes = (size_t)t.numel * sizeof(float);
    return t;
}

bool tu_backend_arg(int argc, char **argv, int *i, qtts_backend_params *p) {
    static const char *const names[] = {"--cuda-graphs", "--cuda-pdl", "--cuda-persistent"};
    bool *fields[] = {&p->cuda_graphs, &p->cuda_pdl, &p->cuda_persistent};
    if (*i + 1 >= argc) return false;
    const char *v = argv[*i + 1];
    if (strcmp(v, "on") && strcmp(v, "off")) return false;
    for (int k = 0; k < 3; k++)
        if (!strcmp(argv[*i], names[k])) {
            *fields[k] = !strcmp(v, "on");
            *i += 1;
            return true;
        }
    return false;
}
