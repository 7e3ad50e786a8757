/* msf_s8_gap_dense.c - int8 global average pool (whole view, or streamed as per-channel
 * sums) and dense (fully connected) kernels. */
#include "msf_internal.h"
#include "msf_s8_fast.h"
#include "msf_s8_opsfast.h"
#include "msf_s8_requant.h"

#if MSF_FAST_KERNELS && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MSF_DENSE_DSP 1
#else
#define MSF_DENSE_DSP 0
#endif

/* One channel of a global average pool from its int32 sum of raw values (every mode). */
static int8_t gap_finish_one_s8(int32_t acc, int32_t HW, int32_t in_zp, int32_t out_zp,
                                int32_t act_min, int32_t act_max, const msf_requant *rq,
                                float fallback_mul)
{
    int32_t r;
    if (rq == NULL) {
        /* ORT: sum - zp * N, requantised with x_scale / (y_scale * N) */
        float v = (float)(acc - in_zp * HW) * fallback_mul;
        v = msf_clamp_f32(v, (float)(-128 - out_zp), (float)(127 - out_zp));
        r = msf_round_half_even(v) + out_zp;
    } else if (rq->mode == MSF_RQ_FIXED) {
        /* TFLM MEAN: sum(x - zp), MBQM, rounding division by N (half away from zero) */
        acc -= in_zp * HW;
        acc = msf_mbqm(acc, rq->qmul[0], rq->qshift[0]);
        acc = acc > 0 ? (acc + HW / 2) / HW : (acc - HW / 2) / HW;
        r = msf_clamp_i32(acc + out_zp, -128, 127);
    } else if (rq->mode == MSF_RQ_MEAN) {
        /* TFLM MEAN (reference_ops::QuantizedMeanOrSum): 1/N folded into qmul/qshift */
        acc -= in_zp * HW;
        r = msf_clamp_i32(msf_mbqm(acc, rq->qmul[0], rq->qshift[0]) + out_zp, -128, 127);
    } else {
        r = msf_requant_s8(rq, acc - in_zp * HW, 0, out_zp);
    }
    return (int8_t)msf_clamp_i32(r, act_min, act_max);
}

void msf_gap_core_s8_ref(const int8_t *x, int32_t HW, int32_t C, int8_t *yp, int32_t in_zp,
                         int32_t out_zp, int32_t act_min, int32_t act_max,
                         const msf_requant *rq, float fallback_mul)
{
    int32_t c, i;
    for (c = 0; c < C; c++) {
        int32_t acc = 0;
        for (i = 0; i < HW; i++) {
            acc += x[i * C + c];
        }
        yp[c] = gap_finish_one_s8(acc, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
    }
}

void msf_gap_s8_accumulate_ref(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                               int32_t ox1, int32_t *sums)
{
    const int8_t *x = (const int8_t *)in->data;
    const int32_t C = in->C;
    int32_t oy, ox, c;
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C);
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *xp = x + msf_vofs(in, oy, ox);
            for (c = 0; c < C; c++) {
                sums[c] += xp[c];
            }
        }
    }
}

void msf_gap_s8_finish(const msf_gap_s8_params *p, const int32_t *sums, int32_t hw,
                       msf_view *out)
{
    int8_t *y = (int8_t *)out->data;
    int32_t c;
    for (c = 0; c < out->C; c++) {
        y[c] = gap_finish_one_s8(sums[c], hw, p->in_zp, p->out_zp, p->act_min, p->act_max,
                                 &p->rq, 0.0f);
    }
}

void msf_gap_s8(const msf_gap_s8_params *p, const msf_view *in, msf_view *out)
{
    MSF_ADD_MACS((int64_t)in->H * in->W * in->C);
    msf_gap_core_s8((const int8_t *)in->data, in->H * in->W, in->C, (int8_t *)out->data,
                    p->in_zp, p->out_zp, p->act_min, p->act_max, &p->rq, 0.0f);
}

void msf_dense_s8_ref(const msf_dense_s8_params *p, const msf_view *in, msf_view *out)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t K = in->H * in->W * in->C;
    const int32_t N = out->C;
    const int32_t in_off = -p->in_zp;
    const int32_t w_off = -p->w_zp;
    int32_t n, k;

    MSF_ADD_MACS((int64_t)K * N);
    for (n = 0; n < N; n++) {
        const int8_t *wp = p->weights + (int32_t)n * K;
        int32_t acc = p->bias ? p->bias[n] : 0;
        int32_t r;
        for (k = 0; k < K; k++) {
            acc += ((int32_t)x[k] + in_off) * ((int32_t)wp[k] + w_off);
        }
        r = msf_requant_s8(&p->rq, acc, n, p->out_zp);
        y[n] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Fast paths.  GAP: four channels at a time, a pointer stepping C bytes per pixel (streamed:
 * one pointer per run of pixels contiguous in the ring).  Dense: four inputs per step (on DSP
 * cores one word of inputs and one of weights, zero points added in 16-bit lanes by SXTAB16 -
 * (x - zp) and (w - w_zp) lie in [-255, 255] - and two SMLADs), requantisation inlined. */
void msf_gap_core_s8(const int8_t *x, int32_t HW, int32_t C, int8_t *yp, int32_t in_zp,
                     int32_t out_zp, int32_t act_min, int32_t act_max, const msf_requant *rq,
                     float fallback_mul)
{
    int32_t c, i;
    if (!MSF_FAST_KERNELS) {
        msf_gap_core_s8_ref(x, HW, C, yp, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
        return;
    }
    for (c = 0; c + 4 <= C; c += 4) {
        const int8_t *q = x + c;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (i = 0; i < HW; i++, q += C) {
            a0 += q[0];
            a1 += q[1];
            a2 += q[2];
            a3 += q[3];
        }
        yp[c] = gap_finish_one_s8(a0, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
        yp[c + 1] = gap_finish_one_s8(a1, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
        yp[c + 2] = gap_finish_one_s8(a2, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
        yp[c + 3] = gap_finish_one_s8(a3, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
    }
    for (; c < C; c++) {
        const int8_t *q = x + c;
        int32_t a = 0;
        for (i = 0; i < HW; i++, q += C) {
            a += *q;
        }
        yp[c] = gap_finish_one_s8(a, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
    }
}

void msf_gap_s8_accumulate(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                           int32_t ox1, int32_t *sums)
{
    const int8_t *x = (const int8_t *)in->data;
    const int32_t C = in->C;
    int32_t oy, ox, c, i;
    if (!MSF_FAST_KERNELS) {
        msf_gap_s8_accumulate_ref(in, oy0, oy1, ox0, ox1, sums);
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C);  /* as the reference counts them */
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1;) {
            const int32_t n = MSF_MIN(ox1 - ox, msf_vspan(in, ox));
            const int8_t *xp = x + msf_vofs(in, oy, ox);
            for (c = 0; c + 4 <= C; c += 4) {
                const int8_t *q = xp + c;
                int32_t a0 = sums[c], a1 = sums[c + 1], a2 = sums[c + 2], a3 = sums[c + 3];
                for (i = 0; i < n; i++, q += C) {
                    a0 += q[0];
                    a1 += q[1];
                    a2 += q[2];
                    a3 += q[3];
                }
                sums[c] = a0;
                sums[c + 1] = a1;
                sums[c + 2] = a2;
                sums[c + 3] = a3;
            }
            for (; c < C; c++) {
                const int8_t *q = xp + c;
                int32_t a = sums[c];
                for (i = 0; i < n; i++, q += C) {
                    a += *q;
                }
                sums[c] = a;
            }
            ox += n;
        }
    }
}

#if MSF_DENSE_DSP
/* two 16-bit lanes holding v */
static inline int32_t dense_pair(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16));
}

/* SXTAB16 of bytes 1 and 3 of v (v rotated right by 8), one instruction */
static MSF_ALWAYS_INLINE int32_t sxtab16_ror8(int32_t a, uint32_t v)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}
#endif

/* sum over k < K of (x[k] - x_zp) * (w[k] - w_zp), wrapping int32 like the reference */
static int32_t dense_dot(const int8_t *x, const int8_t *w, int32_t K, int32_t in_off,
                         int32_t w_off, int32_t acc)
{
    int32_t k = 0;
#if MSF_DENSE_DSP
    const int32_t xo = dense_pair(in_off), wo = dense_pair(w_off);
    for (; k + 4 <= K; k += 4) {
        const uint32_t xw = msf_ld32(x + k), ww = msf_ld32(w + k);
        acc = __smlad(__sxtab16(xo, xw), __sxtab16(wo, ww), acc);
        acc = __smlad(sxtab16_ror8(xo, xw), sxtab16_ror8(wo, ww), acc);
    }
#else
    uint32_t u = (uint32_t)acc;
    for (; k + 4 <= K; k += 4) {
        u += (uint32_t)(((int32_t)x[k] + in_off) * ((int32_t)w[k] + w_off));
        u += (uint32_t)(((int32_t)x[k + 1] + in_off) * ((int32_t)w[k + 1] + w_off));
        u += (uint32_t)(((int32_t)x[k + 2] + in_off) * ((int32_t)w[k + 2] + w_off));
        u += (uint32_t)(((int32_t)x[k + 3] + in_off) * ((int32_t)w[k + 3] + w_off));
    }
    acc = (int32_t)u;
#endif
    for (; k < K; k++) {
        acc = (int32_t)((uint32_t)acc +
                        (uint32_t)(((int32_t)x[k] + in_off) * ((int32_t)w[k] + w_off)));
    }
    return acc;
}

void msf_dense_s8(const msf_dense_s8_params *p, const msf_view *in, msf_view *out)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t K = in->H * in->W * in->C;
    const int32_t N = out->C;
    int32_t n;
    msf_rqc rc;
    if (!MSF_FAST_KERNELS || p->in_zp < -255 || p->in_zp > 255 || p->w_zp < -255 ||
        p->w_zp > 255) {
        msf_dense_s8_ref(p, in, out);
        return;
    }
    MSF_ADD_MACS((int64_t)K * N);
    for (n = 0; n < N; n++) {
        int32_t acc = dense_dot(x, p->weights + (int32_t)n * K, K, -p->in_zp, -p->w_zp,
                                p->bias ? p->bias[n] : 0);
        msf_rqc_load(&p->rq, n, p->out_zp, p->act_min, p->act_max, &rc);
        y[n] = (int8_t)msf_rqc_apply(&rc, acc);
    }
}
