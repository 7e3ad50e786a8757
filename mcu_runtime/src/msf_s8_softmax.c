/* msf_s8_softmax.c - int8 softmax over the last axis (a TFLite model's tail SOFTMAX). */
#include "msf_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* int8 softmax: TFLM reference_ops::Softmax<int8_t, int8_t> with gemmlowp's fixed-point exp and  */
/* reciprocal (see the top of msf_runtime.h).  Sums are done in uint32 where gemmlowp adds raw    */
/* int32 values, to keep wrap-around defined (the values never overflow in practice).             */
/* ---------------------------------------------------------------------------------------------- */

static int32_t wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t wrap_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for 0 < e < 31: saturating left shift */
static int32_t sat_shl(int32_t x, int32_t e)
{
    const int32_t thr = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > thr) {
        return INT32_MAX;
    }
    if (x < -thr) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out */
static int32_t exp_quarter_q0(int32_t a)
{
    const int32_t constant_term = 1895147668;  /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = wrap_add(a, (int32_t)1 << 28);
    const int32_t x2 = msf_srdhm(x, x);
    const int32_t x3 = msf_srdhm(x2, x);
    const int32_t x4 = msf_srdhm(x2, x2);
    const int32_t x4_over_4 = msf_rdbpot(x4, 2);
    const int32_t poly = msf_rdbpot(wrap_add(msf_srdhm(wrap_add(x4_over_4, x3), one_third), x2), 1);
    return wrap_add(constant_term, msf_srdhm(constant_term, wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values: a <= 0 in Q5.26, result Q0.31 */
static int32_t exp_neg_q5_26(int32_t a)
{
    static const int32_t mul[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535,
                                   720401, 242};
    const int32_t quarter = (int32_t)1 << 24;
    const int32_t amq = wrap_sub(a & (quarter - 1), quarter);
    int32_t result = exp_quarter_q0(sat_shl(amq, 5));
    const int32_t rem = wrap_sub(amq, a);
    int32_t k;
    for (k = 0; k < 7; k++) {
        /* exponent k - 2: bit 26 + k - 2 of the remainder selects exp(-2^(k-2)) */
        if (rem & ((int32_t)1 << (24 + k))) {
            result = msf_srdhm(result, mul[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 in and out */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810;    /* 48/17 in Q2.29 */
    const int32_t cm32_17 = -1010580540;  /* -32/17 in Q2.29 */
    int32_t x = wrap_add(c48_17, msf_srdhm(half_den, cm32_17));
    int32_t i;
    for (i = 0; i < 3; i++) {
        const int32_t hdx = msf_srdhm(half_den, x);
        const int32_t one_minus = wrap_sub((int32_t)1 << 29, hdx);
        x = wrap_add(x, sat_shl(msf_srdhm(x, one_minus), 2));
    }
    return sat_shl(x, 1);
}

static int32_t clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

void msf_softmax_s8(const msf_softmax_s8_params *p, const int8_t *in, int8_t *out, int32_t rows,
                    int32_t depth)
{
    int32_t i, c;
    for (i = 0; i < rows; i++) {
        const int8_t *x = in + (int32_t)i * depth;
        int8_t *y = out + (int32_t)i * depth;
        int32_t mx = -128;
        int32_t sum = 0; /* Q12.19 */
        int32_t headroom, nbits, recip, exponent;
        uint32_t us;
        for (c = 0; c < depth; c++) {
            mx = x[c] > mx ? x[c] : mx;
        }
        for (c = 0; c < depth; c++) {
            const int32_t d = (int32_t)x[c] - mx;
            if (d >= p->diff_min) {
                const int32_t r = msf_srdhm((int32_t)((uint32_t)d << p->input_left_shift),
                                            p->input_multiplier);
                sum = wrap_add(sum, msf_rdbpot(exp_neg_q5_26(r), 12));
            }
        }
        /* GetReciprocal(sum, 12) */
        us = (uint32_t)sum;
        headroom = clz32(us);
        nbits = 12 - headroom;
        recip = one_over_one_plus_x((int32_t)((us << headroom) - 0x80000000u));
        exponent = nbits + 31 - 8;
        /* TFLM checks 0 <= exponent <= 31 (and aborts otherwise: a sum of exponentials of
         * 256 or more, e.g. > 256 equal logits); clamp instead, every output is then -128 */
        exponent = msf_clamp_i32(exponent, 0, 31);
        for (c = 0; c < depth; c++) {
            const int32_t d = (int32_t)x[c] - mx;
            int32_t v = -128;
            if (d >= p->diff_min) {
                const int32_t r = msf_srdhm((int32_t)((uint32_t)d << p->input_left_shift),
                                            p->input_multiplier);
                const int32_t e = exp_neg_q5_26(r);
                v = msf_clamp_i32(msf_rdbpot(msf_srdhm(recip, e), exponent) - 128, -128, 127);
            }
            y[c] = (int8_t)v;
        }
    }
}
