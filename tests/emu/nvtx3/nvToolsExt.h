/* tests/emu: NVTX ranges do nothing in the emulated build. */
#ifndef QTTS_EMU_NVTX_H
#define QTTS_EMU_NVTX_H

#include <stdint.h>

typedef struct emu_nvtx_domain *nvtxDomainHandle_t;
#define NVTX_VERSION 3
#define NVTX_EVENT_ATTRIB_STRUCT_SIZE ((uint16_t)sizeof(nvtxEventAttributes_t))
#define NVTX_MESSAGE_TYPE_ASCII 1
typedef struct {
    uint16_t version, size;
    int messageType;
    union {
        const char *ascii;
    } message;
} nvtxEventAttributes_t;

static inline nvtxDomainHandle_t nvtxDomainCreateA(const char *name) {
    (void)name;
    return (nvtxDomainHandle_t)1;
}
static inline void nvtxDomainDestroy(nvtxDomainHandle_t d) { (void)d; }
static inline int nvtxDomainRangePushEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) {
    (void)d;
    (void)a;
    return 0;
}
static inline int nvtxDomainRangePop(nvtxDomainHandle_t d) {
    (void)d;
    return 0;
}

#endif
