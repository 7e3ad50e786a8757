/* msf_internal.h - helpers shared by the msf runtime sources (not part of the public API). */
#ifndef MSF_INTERNAL_H
#define MSF_INTERNAL_H

#include "msf_runtime.h"

#ifdef MSF_COUNT_MACS
extern uint64_t msf_mac_counter;
#define MSF_ADD_MACS(n) (msf_mac_counter += (uint64_t)(n))
#else
#define MSF_ADD_MACS(n) ((void)0)
#endif

#define MSF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MSF_MAX(a, b) ((a) > (b) ? (a) : (b))

/* MSF_CHECK_BOUNDS: MSF_CHECK(cond, what) reports a failed check (msf_bounds_fail) and
 * evaluates to 1 when cond is false; other builds compile it away (0). */
#ifdef MSF_CHECK_BOUNDS
#define MSF_CHECK(cond, what) ((cond) ? 0 : (msf_bounds_fail(what), 1))
#else
#define MSF_CHECK(cond, what) (0 && (cond))
#endif

/* Offset (in elements) of (y, x, 0) in a view.  y must lie in the rows held, 0 <= x < W.
 * MSF_CHECK_BOUNDS: the C elements from there on must lie inside the view's buffer (else the
 * failure is reported and offset 0 returned). */
static inline int32_t msf_vofs(const msf_view *v, int32_t y, int32_t x)
{
    int32_t slot = (v->xcap == v->W) ? x : (x % v->xcap);
    int32_t o = ((y - v->y0) * v->xcap + slot) * v->C;
    if (MSF_CHECK(y >= v->y0 && y < v->H && x >= 0 && x < v->W && o >= 0 &&
                      v->cap - o >= v->C,
                  "view access outside its buffer")) {
        return 0;
    }
    return o;
}

static inline int32_t msf_clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline float msf_clamp_f32(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Valid tap range [k_lo, k_hi) of a window starting at input coordinate `base` over an
 * extent of `size` with kernel `k`. */
static inline void msf_tap_range(int32_t base, int32_t k, int32_t size, int32_t *k_lo,
                                 int32_t *k_hi)
{
    *k_lo = base < 0 ? -base : 0;
    *k_hi = (size - base) < k ? (size - base) : k;
}

/* Valid taps [k_lo, k_hi) of a window with kernel `k` and dilation `d` starting at input
 * coordinate `base` over an extent of `size`: tap t reads coordinate base + t * d. */
static inline void msf_tap_range_d(int32_t base, int32_t k, int32_t d, int32_t size,
                                   int32_t *k_lo, int32_t *k_hi)
{
    int32_t hi = (size - base + d - 1) / d;
    *k_lo = base < 0 ? (-base + d - 1) / d : 0;
    *k_hi = size - base <= 0 ? 0 : (hi < k ? hi : k);
}

/* Global average of a whole H x W x C full view (msf_s8_gap_dense.c), shared by the int8 gap
 * kernel and the int8 avgpool kernel's whole-input fallback (msf_s8_pool.c); rq == NULL selects
 * ORT's float path with multiplier fallback_mul. */
void msf_gap_core_s8(const int8_t *x, int32_t HW, int32_t C, int8_t *yp, int32_t in_zp,
                     int32_t out_zp, int32_t act_min, int32_t act_max, const msf_requant *rq,
                     float fallback_mul);

#endif /* MSF_INTERNAL_H */
