/* msf_s8_requant.h - inlined int8 requantisation for the fast kernels (not part of the public
 * API).  Bit-exact with msf_requant_s8 (msf_quant.c) followed by the activation clamp:
 *
 *  MSF_RQ_FIXED: TFLite's MultiplyByQuantizedMultiplier.  Without the saturating corner
 *    (a == b == INT32_MIN), gemmlowp's SaturatingRoundingDoublingHighMul equals
 *    floor((a * b + 2^30) / 2^31) for either sign of a * b (the negative nudge 1 - 2^30 followed
 *    by a truncating division gives the same floor), so it is one 32x32->64 multiply-add and a
 *    shift.  RoundingDivideByPOT(x, e) = (x >> e) + ((x & mask) > (mask >> 1) + (x < 0)),
 *    branch-free.  qmul == INT32_MIN (never produced by QuantizeMultiplier, but representable)
 *    takes the reference.
 *  MSF_RQ_FLOAT: ORT's float32 multiply, then round half to even by adding and subtracting
 *    1.5 * 2^23 (exact for |v| < 2^22: the product itself is tested; larger products and NaN
 *    take the reference), + zero point.
 *  The int8 saturation and the activation clamp are merged into one clamp when
 *    -128 <= act_min <= act_max <= 127; other clamps take the reference.
 *
 * The per-channel values are read once per channel (msf_rqc_load) and applied to every
 * accumulator of that channel (msf_rqc_apply). */
#ifndef MSF_S8_REQUANT_H
#define MSF_S8_REQUANT_H

#include "msf_internal.h"

typedef struct {
    int32_t mode;    /* MSF_RQ_FIXED or MSF_RQ_FLOAT */
    int32_t mul;     /* fixed: Q31 multiplier */
    int32_t lsh;     /* fixed: left shift max(shift, 0) */
    int32_t rsh;     /* fixed: right shift max(-shift, 0) */
    float fmul;      /* float: multiplier */
    int32_t zp;      /* output zero point */
    int32_t lo, hi;  /* the activation clamp (the int8 saturation merged into it) */
    int32_t slow;    /* 1: every value through the reference (msf_requant_s8 + clamp) */
    const msf_requant *rq;
    int32_t ch;
} msf_rqc;

/* Parameters of output channel ch (entry 0 when the requantisation is per tensor).  Cheap on
 * purpose (a few loads and stores): the fast kernels call it once per channel and run, and the
 * runs of the fused modes' column calls are short. */
static inline void msf_rqc_load(const msf_requant *rq, int32_t ch, int32_t out_zp,
                                int32_t act_min, int32_t act_max, msf_rqc *c)
{
    const int32_t idx = rq->per_channel ? ch : 0;
    c->mode = rq->mode;
    c->zp = out_zp;
    c->rq = rq;
    c->ch = ch;
    c->lo = act_min;
    c->hi = act_max;
    /* clamp(clamp(r, -128, 127), act_min, act_max) == clamp(r, act_min, act_max) when
     * -128 <= act_min <= act_max <= 127 (always, for the generator's clamps) */
    c->slow = !(act_min >= -128 && act_min <= act_max && act_max <= 127);
    if (rq->mode == MSF_RQ_FIXED) {
        const int32_t s = rq->qshift[idx];
        c->mul = rq->qmul[idx];
        c->lsh = s > 0 ? s : 0;
        c->rsh = s > 0 ? 0 : -s;
        c->fmul = 0.0f;
        if (c->mul == INT32_MIN || s > 31 || s < -31) {
            c->slow = 1; /* SRDHM's saturating corner / shifts outside the reference's range */
        }
    } else {
        c->fmul = rq->fmul[idx];
        c->mul = 0;
        c->lsh = 0;
        c->rsh = 0;
    }
}

/* The reference: msf_requant_s8 then the activation clamp (rare corners only). */
static inline int32_t msf_rqc_ref(const msf_rqc *c, int32_t acc)
{
    return msf_clamp_i32(msf_requant_s8(c->rq, acc, c->ch, c->zp), c->lo, c->hi);
}

/* Requantised, saturated and activation-clamped int8 value of accumulator acc; `mode` is
 * c->mode (a compile-time constant in the loops specialised per mode by the kernels).
 *  fixed: MultiplyByQuantizedMultiplier (see the top of this file) + zero point (wrapping
 *         int32 like the reference), one clamp;
 *  float: v = (float)acc * fmul exactly as the reference computes it; for |v| < 2^22, round
 *         half to even by the 1.5 * 2^23 addition (exact in the default round-to-nearest-even
 *         mode, the mode the float multiply itself runs in), then one integer clamp:
 *         clamp(rne(v), lo - zp, hi - zp) == rne(clamp(v, lo - zp, hi - zp)) for integer
 *         bounds (rounding is monotonic and fixes integers); larger values and NaN take the
 *         reference. */
static inline int32_t msf_rqc_apply_m(const msf_rqc *c, int32_t acc, int32_t mode)
{
    int32_t r;
    if (c->slow) {
        return msf_rqc_ref(c, acc);
    }
    if (mode == MSF_RQ_FIXED) {
        int32_t xs = (int32_t)((uint32_t)acc << c->lsh), q, e = c->rsh, mask, thr;
        /* arithmetic right shift of a negative int64: arithmetic on every supported compiler */
        q = (int32_t)(((int64_t)xs * (int64_t)c->mul + ((int64_t)1 << 30)) >> 31);
        mask = (int32_t)(((uint32_t)1 << e) - 1u);
        thr = (mask >> 1) - (q >> 31);              /* + 1 for a negative q */
        q = (q >> e) + ((q & mask) > thr ? 1 : 0);
        r = (int32_t)((uint32_t)q + (uint32_t)c->zp); /* wraps like the reference */
    } else {
        const float magic = 12582912.0f;             /* 1.5 * 2^23 */
        const float v = (float)acc * c->fmul;
        float t;
        if (!(v < 4194304.0f && v > -4194304.0f)) {  /* |v| >= 2^22 or NaN */
            return msf_rqc_ref(c, acc);
        }
        t = (v + magic) - magic;
        r = (int32_t)t + c->zp;
    }
    return r < c->lo ? c->lo : (r > c->hi ? c->hi : r);
}

static inline int32_t msf_rqc_apply(const msf_rqc *c, int32_t acc)
{
    return msf_rqc_apply_m(c, acc, c->mode);
}

#endif /* MSF_S8_REQUANT_H */
