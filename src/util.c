/* Error recording, checked allocation, file helpers, half-precision conversion. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const status_names[QTTS_STATUS_COUNT] = {
    [QTTS_OK] = "QTTS_OK",
    [QTTS_ERR_INVALID_ARG] = "QTTS_ERR_INVALID_ARG",
    [QTTS_ERR_IO] = "QTTS_ERR_IO",
    [QTTS_ERR_FORMAT] = "QTTS_ERR_FORMAT",
    [QTTS_ERR_MISSING] = "QTTS_ERR_MISSING",
    [QTTS_ERR_DTYPE] = "QTTS_ERR_DTYPE",
    [QTTS_ERR_SHAPE] = "QTTS_ERR_SHAPE",
    [QTTS_ERR_CONFIG] = "QTTS_ERR_CONFIG",
    [QTTS_ERR_TEXT] = "QTTS_ERR_TEXT",
    [QTTS_ERR_UNKNOWN_NAME] = "QTTS_ERR_UNKNOWN_NAME",
    [QTTS_ERR_OOM] = "QTTS_ERR_OOM",
    [QTTS_ERR_UNSUPPORTED] = "QTTS_ERR_UNSUPPORTED",
    [QTTS_ERR_DEVICE] = "QTTS_ERR_DEVICE",
    [QTTS_ERR_JOB] = "QTTS_ERR_JOB",
    [QTTS_ERR_INTERRUPTED] = "QTTS_ERR_INTERRUPTED",
    [QTTS_ERR_INTERNAL] = "QTTS_ERR_INTERNAL",
};

const char *qtts_status_str(qtts_status s) {
    if ((unsigned)s >= QTTS_STATUS_COUNT) return "QTTS_ERR_UNKNOWN_STATUS";
    return status_names[s];
}

qtts_status qtts_fail(qtts_err *err, qtts_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = s;
    }
    return s;
}

qtts_status qtts_fail_prefix(qtts_err *err, const char *fmt, ...) {
    if (!err) return QTTS_ERR_INTERNAL;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strlen(prefix), ol = strlen(old);
    if (pl > sizeof err->msg - 1) pl = sizeof err->msg - 1;
    if (ol > sizeof err->msg - 1 - pl) ol = sizeof err->msg - 1 - pl;
    memcpy(err->msg, prefix, pl);
    memcpy(err->msg + pl, old, ol);
    err->msg[pl + ol] = 0;
    return err->status;
}

void qtts_err_clear(qtts_err *err) {
    if (err) {
        err->status = QTTS_OK;
        err->msg[0] = 0;
    }
}

bool qtts_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

void *qtts_malloc(size_t n, qtts_err *err, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory allocating %zu bytes", what, n);
    return p;
}

void *qtts_calloc(size_t count, size_t size, qtts_err *err, const char *what) {
    size_t n;
    if (!qtts_mul_ok(count, size, &n)) {
        qtts_fail(err, QTTS_ERR_OOM, "%s: size overflow (%zu x %zu)", what, count, size);
        return NULL;
    }
    void *p = calloc(n ? count : 1, n ? size : 1);
    if (!p) qtts_fail(err, QTTS_ERR_OOM, "%s: out of memory allocating %zu bytes", what, n);
    return p;
}

qtts_status qtts_read_file(const char *path, char **data, size_t *size, qtts_err *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return qtts_fail(err, QTTS_ERR_IO, "%s: %s", path, strerror(errno));
    qtts_status st = QTTS_OK;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            QTTS_CHECK(nb, err, QTTS_ERR_OOM, "%s: out of memory reading file", path);
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    QTTS_CHECK(!ferror(f), err, QTTS_ERR_IO, "%s: read error: %s", path, strerror(errno));
    buf[len] = 0;
    *data = buf;
    *size = len;
    buf = NULL;
cleanup:
    free(buf);
    fclose(f);
    return st;
}

qtts_status qtts_write_file_atomic(const char *path, const void *data, size_t size, qtts_err *err) {
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return qtts_fail(err, QTTS_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return qtts_fail(err, QTTS_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return qtts_fail(err, QTTS_ERR_IO, "%s: sync/close failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return qtts_fail(err, QTTS_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    return QTTS_OK;
}

qtts_status qtts_path_join(char *out, size_t n, const char *dir, const char *name, qtts_err *err) {
    int w = (dir && dir[0]) ? snprintf(out, n, "%s/%s", dir, name) : snprintf(out, n, "%s", name);
    if (w < 0 || (size_t)w >= n) return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s/%s: path too long", dir, name);
    return QTTS_OK;
}

bool qtts_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

float qtts_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t qtts_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

double qtts_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
