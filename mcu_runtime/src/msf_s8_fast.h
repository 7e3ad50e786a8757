/* msf_s8_fast.h - internal interface between the int8 kernels' dispatchers and their fast
 * inner loops (not part of the public API; the unit tests call the _ref kernels to compare). */
#ifndef MSF_S8_FAST_H
#define MSF_S8_FAST_H

#include "msf_internal.h"

/* MSF_FAST_KERNELS (default 1): 0 runs every int8 conv / depthwise call through the reference
 * loops.  Default 0 on Xtensa lx106 (ESP8266): its code runs from a 32 KiB IRAM, where the fast
 * paths' specialised copies (about 26 KiB there) do not fit next to a model. */
#ifndef MSF_FAST_KERNELS
#if defined(__XTENSA__)
#define MSF_FAST_KERNELS 0
#else
#define MSF_FAST_KERNELS 1
#endif
#endif

/* Force inlining of the inner-loop helpers (GCC would otherwise keep large ones out of line and
 * lose the compile-time kernel sizes of the specialised entry points). */
#if defined(__GNUC__)
#define MSF_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MSF_ALWAYS_INLINE inline
#endif

/* Unaligned 32-bit load that stays a single LDR on cores with unaligned access (and byte loads
 * elsewhere) in freestanding builds, where memcpy(&v, p, 4) would become a call. */
#if defined(__GNUC__)
typedef uint32_t msf_u32_una __attribute__((aligned(1), may_alias));
static inline uint32_t msf_ld32(const int8_t *p)
{
    return *(const msf_u32_una *)(const void *)p;
}
#else
static inline uint32_t msf_ld32(const int8_t *p)
{
    const uint8_t *u = (const uint8_t *)p;
    return (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) |
           ((uint32_t)u[3] << 24);
}
#endif

/* The original (reference) loops: every tap through msf_vofs, out-of-line requantisation.
 * msf_conv2d_s8 / msf_dwconv2d_s8 send border pixels here; the tests compare against them. */
void msf_conv2d_s8_ref(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                       int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_dwconv2d_s8_ref(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* msf_s8_convfast.c: n output pixels, see the file comment there (groups 1, weights' zero
 * point 0, no dilation, windows inside the input).  A convk window row is la bytes at its start
 * and L - la more at offset xb (a window wrapping around an input ring; la == L otherwise).
 * The depthwise fast path (msf_s8_dwfast.c) is msf_dwconv2d_s8 itself. */
void msf_conv1x1_s8_run(const msf_conv_s8_params *p, int32_t cin, int32_t cout,
                        const int8_t *x, int32_t xstep, int8_t *y, int32_t ystep, int32_t n);
void msf_convk_s8_run(const msf_conv_s8_params *p, int32_t cout, const int8_t *x,
                      int32_t xstep, int32_t xrow, int32_t kh, int32_t L, int32_t la,
                      int32_t xb, int8_t *y, int32_t ystep, int32_t n);

#endif /* MSF_S8_FAST_H */
