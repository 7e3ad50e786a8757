/* msf_quant.c - rounding, FMA emulation, TFLite fixed-point helpers, requantisation. */
#include "msf_internal.h"

#ifdef MSF_COUNT_MACS
uint64_t msf_mac_counter = 0;
#endif

void msf_macs_reset(void)
{
#ifdef MSF_COUNT_MACS
    msf_mac_counter = 0;
#endif
}

uint64_t msf_macs_get(void)
{
#ifdef MSF_COUNT_MACS
    return msf_mac_counter;
#else
    return 0;
#endif
}

/* Round half to even without <math.h> and independently of the FPU rounding mode.
 * Exact for |v| < 2^31 (floats >= 2^23 are integers already). */
int32_t msf_round_half_even(float v)
{
    int32_t i;
    float frac;
    if (v >= 8388608.0f || v <= -8388608.0f) {
        return (int32_t)v; /* already an integer */
    }
    i = (int32_t)v;           /* truncation toward zero */
    frac = v - (float)i;      /* exact: |v| < 2^23 */
    if (frac > 0.5f || (frac == 0.5f && (i & 1))) {
        i += 1;
    } else if (frac < -0.5f || (frac == -0.5f && (i & 1))) {
        i -= 1;
    }
    return i;
}

/* Single-rounding fused multiply-add a*b + c in float32.
 * The product of two floats is exact in double; the double sum s = p + c may be inexact, and
 * rounding it again to float could then differ from a single rounding ("double rounding") only
 * when s lies exactly on a float32 rounding midpoint.  TwoSum gives the exact error of s; when
 * s is such a midpoint and the error is non-zero, s is nudged one double ulp towards the exact
 * value, which makes the final conversion correctly rounded.  (Overflow, NaN and float
 * subnormal results are not handled specially: not reachable from the kernels.) */
float msf_fmaf(float a, float b, float c)
{
#if defined(MSF_HW_FMA)
    return __builtin_fmaf(a, b, c);
#else
    double p = (double)a * (double)b;
    double cd = (double)c;
    double s = p + cd;
    double bb = s - p;
    double err = (p - (s - bb)) + (cd - bb);
    union {
        double d;
        uint64_t u;
    } pun; /* type punning through a union: well defined since C99 TC3 */
    uint64_t bits;
    pun.d = s;
    bits = pun.u;
    /* float32 keeps 24 of the 53 significand bits; the 29 dropped bits are exactly 100..0 */
    if ((bits & 0x1FFFFFFFu) == 0x10000000u && err != 0.0) {
        int s_neg = s < 0.0;
        int e_neg = err < 0.0;
        if (s_neg == e_neg) {
            bits += 1u; /* move away from zero, towards the exact value */
        } else {
            bits -= 1u;
        }
        pun.u = bits;
        s = pun.d;
    }
    return (float)s;
#endif
}

int32_t msf_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C99 integer division truncates toward zero, as gemmlowp requires */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

int32_t msf_rdbpot(int32_t x, int32_t exponent)
{
    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* arithmetic right shift of negatives: implementation-defined in C99, arithmetic on every
     * supported compiler (gcc/clang, all targets) */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t msf_mbqm(int32_t x, int32_t qmul, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    /* x * 2^left with int32 wrap-around like the TFLite reference (no UB) */
    int32_t xs = (int32_t)((uint32_t)x << left);
    return msf_rdbpot(msf_srdhm(xs, qmul), right);
}

int32_t msf_requant_s8(const msf_requant *rq, int32_t acc, int32_t ch, int32_t out_zp)
{
    int32_t idx = rq->per_channel ? ch : 0;
    if (rq->mode == MSF_RQ_FIXED) {
        /* + zero point in wrapping int32 (what the compiled TFLM reference does; no UB) */
        int32_t r = (int32_t)((uint32_t)msf_mbqm(acc, rq->qmul[idx], rq->qshift[idx]) +
                              (uint32_t)out_zp);
        return msf_clamp_i32(r, -128, 127);
    } else {
        /* ORT MlasRequantizeOutput: float(acc) * scale, clamp to [-128-zp, 127-zp], RNE, +zp */
        float v = (float)acc * rq->fmul[idx];
        float lo = (float)(-128 - out_zp);
        float hi = (float)(127 - out_zp);
        v = msf_clamp_f32(v, lo, hi);
        return msf_round_half_even(v) + out_zp;
    }
}

void msf_add_s8_float_params(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                             float c_scale, int32_t c_zp, float *mul1, float *mul2,
                             float *fbias)
{
    float r1 = a_scale / c_scale;
    float r2 = b_scale / c_scale;
    float t = r2 * (float)b_zp;
    *mul1 = r1;
    *mul2 = r2;
    *fbias = (float)c_zp - msf_fmaf(r1, (float)a_zp, t);
}

void msf_canary_fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 0x9E3779B9u;
    size_t i;
    for (i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        p[i] = (uint8_t)(s >> 24);
    }
}

long msf_canary_check(const uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 0x9E3779B9u;
    size_t i;
    for (i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        if (p[i] != (uint8_t)(s >> 24)) {
            return (long)i;
        }
    }
    return -1;
}
