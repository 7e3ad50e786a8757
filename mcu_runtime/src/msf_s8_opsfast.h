/* msf_s8_opsfast.h - internal interface of the pool / add / dense / GAP fast paths (not part of
 * the public API).  The public kernels (msf_maxpool_s8, msf_avgpool_s8, msf_add_s8,
 * msf_dense_s8, msf_gap_s8*) take the fast loops when MSF_FAST_KERNELS is on; the _ref kernels
 * below are the original loops (every element through msf_vofs, out-of-line requantisation),
 * kept as the oracle of the differential tests (tests_c/ops_diff.c). */
#ifndef MSF_S8_OPSFAST_H
#define MSF_S8_OPSFAST_H

#include "msf_internal.h"

/* Pools whose window has more taps than this take the reference loop (the fast loop keeps one
 * pointer per tap on the stack: 4 * 64 bytes). */
#define MSF_POOL_MAX_TAPS 64

void msf_maxpool_s8_ref(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                        int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_avgpool_s8_ref(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                        int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_add_s8_ref(const msf_add_s8_params *p, const msf_view *in1, const msf_view *in2,
                    msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_dense_s8_ref(const msf_dense_s8_params *p, const msf_view *in, msf_view *out);
void msf_gap_core_s8_ref(const int8_t *x, int32_t HW, int32_t C, int8_t *yp, int32_t in_zp,
                         int32_t out_zp, int32_t act_min, int32_t act_max,
                         const msf_requant *rq, float fallback_mul);
void msf_gap_s8_accumulate_ref(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                               int32_t ox1, int32_t *sums);

/* Pixels of row y of view v stored contiguously from pixel x on (up to the ring's wrap). */
static inline int32_t msf_vspan(const msf_view *v, int32_t x)
{
    return v->xcap == v->W ? v->W - x : v->xcap - x % v->xcap;
}

#endif /* MSF_S8_OPSFAST_H */
