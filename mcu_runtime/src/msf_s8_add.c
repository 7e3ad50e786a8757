/* msf_s8_add.c - int8 elementwise add (residual connections) and subtract (p->sub: TFLite's
 * SUB of two activations, in1 - in2) working through msf_view.  Modes: MSF_RQ_FIXED (TFLM),
 * MSF_RQ_FLOAT (onnxruntime's QLinearAdd), MSF_RQ_FLOAT_QDQ (an ONNX QDQ Add: DequantizeLinear
 * -> float32 Add -> QuantizeLinear, the reference loop only). */
#include "msf_internal.h"
#include "msf_s8_fast.h"
#include "msf_s8_opsfast.h"
#include "msf_s8_requant.h"

static int32_t add_one_s8(const msf_add_s8_params *p, int32_t a, int32_t b)
{
    if (p->mode == MSF_RQ_FIXED) {
        /* TFLM reference_integer_ops::AddFunc; sub: TFLM's SUB, the same scaled inputs (its
         * Prepare computes ADD's multipliers) and raw = scaled1 - scaled2.  With TFLM's
         * parameters (left shift 20, Q31 multipliers, shifts <= 0) each scaled input is below
         * 2^28 in magnitude and neither the sum nor the difference overflows; any other
         * parameters wrap (unsigned arithmetic), never undefined behaviour. */
        int32_t a1 = (int32_t)((uint32_t)(a - p->in1_zp) << p->left_shift);
        int32_t b1 = (int32_t)((uint32_t)(b - p->in2_zp) << p->left_shift);
        int32_t sa = msf_rdbpot(msf_srdhm(a1, p->in1_mul), -p->in1_shift);
        int32_t sb = msf_rdbpot(msf_srdhm(b1, p->in2_mul), -p->in2_shift);
        int32_t raw = p->sub ? (int32_t)((uint32_t)sa - (uint32_t)sb)
                             : (int32_t)((uint32_t)sa + (uint32_t)sb);
        int32_t r = msf_rdbpot(msf_srdhm(raw, p->out_mul), -p->out_shift) + p->out_zp;
        return msf_clamp_i32(r, -128, 127);
    } else if (p->mode == MSF_RQ_FLOAT_QDQ) {
        /* DequantizeLinear -> Add -> QuantizeLinear in float32 (what onnxruntime runs for the
         * Add of a QDQ model): mul1 / mul2 are the input scales, fbias the output scale;
         * each product and the sum rounded separately (the build has -ffp-contract=off), then
         * QuantizeLinear: v / scale, clamped, rounded half to even, + zero point */
        const float fa = p->mul1 * (float)(a - p->in1_zp);
        const float fb = p->mul2 * (float)(b - p->in2_zp);
        const float s = p->sub ? fa - fb : fa + fb;
        float q = s / p->fbias;
        q = msf_clamp_f32(q, (float)(-128 - p->out_zp), (float)(127 - p->out_zp));
        return msf_round_half_even(q) + p->out_zp;
    } else {
        /* ORT AVX2 QLinearAdd: fma(a, mul1, fma(b, mul2, fbias)), cvtps2dq, saturating packs
         * (sub: mul2 negated); MSF_RQ_FLOAT_REV: ORT's first input is b (msf_runtime.h) */
        const float m2 = p->sub ? -p->mul2 : p->mul2;
        const float v = p->mode == MSF_RQ_FLOAT_REV ?
            msf_fmaf((float)b, m2, msf_fmaf((float)a, p->mul1, p->fbias)) :
            msf_fmaf((float)a, p->mul1, msf_fmaf((float)b, m2, p->fbias));
        if (!(v < 2147483648.0f && v >= -2147483648.0f)) {
            return -128;
        }
        return msf_round_half_even(msf_clamp_f32(v, -128.0f, 127.0f));
    }
}

int32_t msf_add_one_s8(const msf_add_s8_params *p, int32_t a, int32_t b)
{
    return msf_clamp_i32(add_one_s8(p, a, b), -128, 127);
}

void msf_add_s8_ref(const msf_add_s8_params *p, const msf_view *in1, const msf_view *in2,
                    msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *a = (const int8_t *)in1->data;
    const int8_t *b = (const int8_t *)in2->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *ap = a + msf_vofs(in1, oy, ox);
            const int8_t *bp = b + msf_vofs(in2, oy, ox);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                int32_t r = add_one_s8(p, ap[c], bp[c]);
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Fast path: runs of pixels contiguous in all three views (split where a ring wraps) are one
 * flat loop over run x C elements with plain pointers; the fixed-point steps are inlined.
 *  SRDHM(a, b) = floor((a * b + 2^30) / 2^31) except for a == b == INT32_MIN (see
 *  msf_s8_requant.h); the shifted inputs (x - zp) << left_shift are below 2^29 in magnitude, the
 *  sum of two scaled inputs then stays in int32, and multipliers == INT32_MIN or exponents
 *  outside [0, 31] take the reference.  On cores with a hardware single-precision FMA the
 *  float mode's two fused multiply-adds are that instruction (correctly rounded, like the
 *  emulation msf_fmaf); elsewhere it stays msf_fmaf. */
static inline int32_t add_mbqm(int32_t x, int32_t mul, int32_t e)
{
    int32_t q = (int32_t)(((int64_t)x * (int64_t)mul + ((int64_t)1 << 30)) >> 31);
    int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    int32_t thr = (mask >> 1) - (q >> 31);
    return (q >> e) + ((q & mask) > thr ? 1 : 0);
}

#if defined(__ARM_FEATURE_FMA) && defined(__ARM_FP) && (__ARM_FP & 4)
#define MSF_ADD_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define MSF_ADD_FMAF(a, b, c) msf_fmaf((a), (b), (c))
#endif

static void add_run_fixed(const msf_add_s8_params *p, const int8_t *a, const int8_t *b, int8_t *y,
                          int32_t n)
{
    const int32_t z1 = p->in1_zp, z2 = p->in2_zp, ls = p->left_shift;
    const int32_t m1 = p->in1_mul, m2 = p->in2_mul, mo = p->out_mul;
    const int32_t e1 = -p->in1_shift, e2 = -p->in2_shift, eo = -p->out_shift, zo = p->out_zp;
    const int32_t lo = MSF_MAX(p->act_min, -128), hi = MSF_MIN(p->act_max, 127);
    /* sub: the second scaled input negated without a branch, (s ^ neg) - neg (exact: a scaled
     * input is never INT32_MIN) */
    const int32_t neg = p->sub ? -1 : 0;
    int32_t i;
    for (i = 0; i < n; i++) {
        int32_t a1 = (int32_t)((uint32_t)((int32_t)a[i] - z1) << ls);
        int32_t b1 = (int32_t)((uint32_t)((int32_t)b[i] - z2) << ls);
        int32_t sb = add_mbqm(b1, m2, e2);
        int32_t r = add_mbqm(add_mbqm(a1, m1, e1) + ((sb ^ neg) - neg), mo, eo) + zo;
        y[i] = (int8_t)(r < lo ? lo : (r > hi ? hi : r));
    }
}

static void add_run_float(const msf_add_s8_params *p, const int8_t *a, const int8_t *b, int8_t *y,
                          int32_t n)
{
    const float m1 = p->mul1, m2 = p->sub ? -p->mul2 : p->mul2, fb = p->fbias;
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    const int32_t lo = p->act_min, hi = p->act_max;
    /* MSF_RQ_FLOAT_REV: ORT's first input is b (the operands' roles swap, the multipliers stay
     * with their inputs) */
    const int rev = p->mode == MSF_RQ_FLOAT_REV;
    const int8_t *x1 = rev ? b : a, *x2 = rev ? a : b;
    const float k1 = rev ? m2 : m1, k2 = rev ? m1 : m2;
    int32_t i;
    for (i = 0; i < n; i++) {
        float v = MSF_ADD_FMAF((float)x1[i], k1, MSF_ADD_FMAF((float)x2[i], k2, fb));
        int32_t r;
        /* reference: NaN / out of int32 -> -128, else rne(clamp(v, -128, 127)); the clamp
         * first makes the 1.5 * 2^23 rounding exact (round-to-nearest-even mode) */
        if (!(v > -128.0f)) {
            r = -128;              /* below the range, or NaN */
        } else if (v >= 127.0f) {
            r = v < 2147483648.0f ? 127 : -128; /* the reference's int32 overflow case */
        } else {
            r = (int32_t)((v + magic) - magic);
        }
        y[i] = (int8_t)msf_clamp_i32(r, lo, hi);
    }
}

#if MSF_INT_FLOATRQ
/* ---------------------------------------------------------------------------------------- */
/* The float mode without a single-precision FPU (MSF_INT_FLOATRQ, msf_s8_requant.h), where
 * msf_fmaf is double-precision soft-float (about 1,400 instructions per element on RV32IMAC):
 * the same two fused multiply-adds emulated exactly in integers.
 *  Every float here is s * m * 2^e with an integer m < 2^24.  An input x (|x| <= 128) times a
 *  multiplier is the exact integer x * m (< 2^31) times 2^e.  The exact sum of two such terms
 *  is formed in 64 bits: the term with the larger exponent times 2^30, the other aligned to it
 *  (times 2^(30 - d) for an exponent gap d <= 30; for d > 30 shifted right by d - 30, the bits
 *  shifted out kept as a sticky bit).  Every non-zero significand here has 24 bits (the first
 *  result is normalised), so the larger term is at least 2^53 while the shifted one is below
 *  2^30: the sum's rounding point is far above the sticky bit, which then only decides on which
 *  side of a rounding boundary the sum lies.  The
 *  sum doubled, with the sticky bit as its lowest bit, is rounded to 24 significant bits half
 *  to even: fmaf's single rounding.  The second fma takes the first one's result as its
 *  addend; the result is rounded to an integer half to even and saturated as the reference
 *  does (>= 2^31: -128; else clamped to [-128, 127]), which is what the 1.5 * 2^23 step does
 *  after its clamp.
 *  Range: each multiplier and the bias is 0 or of magnitude in [2^-100, 2^101), so no
 *  intermediate overflows float32 or falls below its normal range (every term is a multiple of
 *  2^-123); other parameters take the soft-float loop.  Tested against the reference on every
 *  (a, b) pair (tests_c/test_add_int.c) and under QEMU (ops_diff.c). */
typedef struct {
    int32_t m;   /* signed significand, |m| < 2^24 (0: the value 0) */
    int32_t e;   /* exponent: the value is m * 2^e */
} add_fx;

/* f as m * 2^e; 0 when f is not 0 and not within [2^-100, 2^101) in magnitude (subnormal,
 * infinite, NaN or far out of the scales' range) */
static int add_split(float f, add_fx *r)
{
    union {
        float f;
        uint32_t u;
    } pun; /* type punning through a union: well defined since C99 TC3 */
    uint32_t be;
    pun.f = f;
    be = (pun.u >> 23) & 0xFFu;
    r->m = 0;
    r->e = 0;
    if ((pun.u & 0x7FFFFFFFu) == 0u) {
        return 1;
    }
    if (be < 27u || be > 227u) {
        return 0;
    }
    r->m = (int32_t)((pun.u & 0x7FFFFFu) | 0x800000u);
    if (pun.u >> 31) {
        r->m = -r->m;
    }
    r->e = (int32_t)be - 150;
    return 1;
}

/* bit length of u > 0, u < 2^63 */
static MSF_ALWAYS_INLINE int32_t add_bitlen64(uint64_t u)
{
    const uint32_t hi = (uint32_t)(u >> 32), lo = (uint32_t)u;
    const uint32_t w = hi ? hi : lo;
    const int32_t n = w >= 0x1000000u ? 8 + msf_bitlen24(w >> 8) : msf_bitlen24(w);
    return hi ? 32 + n : n;
}

/* fl32(a * 2^ea + b * 2^eb) for |a|, |b| < 2^31, rounded half to even, as m * 2^e */
static MSF_ALWAYS_INLINE add_fx add_fma_round(int32_t a, int32_t ea, int32_t b, int32_t eb)
{
    add_fx r;
    int64_t h, l, t;
    int32_t base, d, st = 0, n, sh;
    uint64_t u;
    if (a == 0 || (b != 0 && ea < eb)) {   /* a: the term with the larger exponent, or alone */
        const int32_t ta = a, te = ea;
        a = b;
        ea = eb;
        b = ta;
        eb = te;
    }
    if (a == 0) {       /* both 0 (b is 0 only if a is) */
        r.m = 0;
        r.e = 0;
        return r;
    }
    d = ea - eb;
    h = (int64_t)a * ((int64_t)1 << 30);
    base = ea - 30;
    if (b == 0) {
        l = 0;
    } else if (d <= 30) {
        l = (int64_t)b * ((int64_t)1 << (30 - d));
    } else if (d - 30 < 31) {
        const int32_t k = d - 30;
        l = (int64_t)(b >> k);   /* floor (arithmetic shift, as the library assumes) */
        st = (b & (int32_t)(((uint32_t)1 << k) - 1u)) != 0;
    } else {
        l = b < 0 ? -1 : 0;
        st = 1;
    }
    t = 2 * (h + l) + st;       /* |h + l| < 2^62 */
    u = t < 0 ? (uint64_t)(-t) : (uint64_t)t;
    if (u == 0u) {
        r.m = 0;
        r.e = 0;
        return r;
    }
    n = add_bitlen64(u);
    sh = n - 24;
    if (sh < 0) {                /* exact: normalised to 24 bits */
        u <<= -sh;
    } else if (sh > 0) {
        const uint64_t rem = u & ((((uint64_t)1) << sh) - 1u), half = ((uint64_t)1) << (sh - 1);
        u >>= sh;
        if (rem > half || (rem == half && (u & 1u))) {
            u++;
            if (u == ((uint64_t)1 << 24)) {
                u >>= 1;
                sh++;
            }
        }
    }
    r.m = t < 0 ? -(int32_t)u : (int32_t)u;
    r.e = base - 1 + sh;
    return r;
}

/* the reference's integer of v = m * 2^e: >= 2^31 -> -128, else rne(v) clamped to the int8
 * range */
static MSF_ALWAYS_INLINE int32_t add_fx_to_s8(add_fx v)
{
    const uint32_t mag = (uint32_t)(v.m < 0 ? -v.m : v.m);
    uint32_t q;
    if (mag == 0u) {
        return 0;
    }
    if (v.e >= 0) {
        if (msf_bitlen24(mag) + v.e > 31) {
            return -128;              /* |v| >= 2^31: -128 either side */
        }
        q = mag << v.e;
    } else if (v.e < -24) {
        return 0;                     /* |v| < 2^24 * 2^-25 = 1/2 */
    } else {
        const int32_t k = -v.e;
        const uint32_t rem = mag & ((1u << k) - 1u), half = 1u << (k - 1);
        q = mag >> k;
        q += (rem > half || (rem == half && (q & 1u))) ? 1u : 0u;
    }
    if (v.m < 0) {
        return q >= 128u ? -128 : -(int32_t)q;
    }
    return q >= 127u ? 127 : (int32_t)q;
}

/* add_run_float's result for these parameters in integers; 0 (nothing written) when a
 * multiplier or the bias is outside add_split's range */
static int add_run_float_int(const msf_add_s8_params *p, const int8_t *a, const int8_t *b,
                             int8_t *y, int32_t n)
{
    add_fx k1, k2, fb;
    const int rev = p->mode == MSF_RQ_FLOAT_REV;
    const int8_t *x1 = rev ? b : a, *x2 = rev ? a : b;
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    if (!add_split(rev ? (p->sub ? -p->mul2 : p->mul2) : p->mul1, &k1) ||
        !add_split(rev ? p->mul1 : (p->sub ? -p->mul2 : p->mul2), &k2) ||
        !add_split(p->fbias, &fb)) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        const add_fx t = add_fma_round((int32_t)x2[i] * k2.m, k2.e, fb.m, fb.e);
        const add_fx v = add_fma_round((int32_t)x1[i] * k1.m, k1.e, t.m, t.e);
        y[i] = (int8_t)msf_clamp_i32(add_fx_to_s8(v), lo, hi);
    }
    return 1;
}
#endif

/* whether the fixed-point fast loop is exact for these parameters */
static int add_fixed_ok(const msf_add_s8_params *p)
{
    return p->left_shift >= 0 && p->left_shift <= 20 && p->in1_mul != INT32_MIN &&
           p->in2_mul != INT32_MIN && p->out_mul != INT32_MIN && p->in1_shift <= 0 &&
           p->in1_shift >= -31 && p->in2_shift <= 0 && p->in2_shift >= -31 &&
           p->out_shift <= 0 && p->out_shift >= -31 && p->act_min >= -128 &&
           p->act_max <= 127 && p->act_min <= p->act_max;
}

void msf_add_s8(const msf_add_s8_params *p, const msf_view *in1, const msf_view *in2,
                msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *a = (const int8_t *)in1->data;
    const int8_t *b = (const int8_t *)in2->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox;
    if (!MSF_FAST_KERNELS || p->mode == MSF_RQ_FLOAT_QDQ ||
        (p->mode == MSF_RQ_FIXED && !add_fixed_ok(p)) ||
        (p->mode != MSF_RQ_FIXED && !(p->act_min >= -128 && p->act_max <= 127))) {
        msf_add_s8_ref(p, in1, in2, out, oy0, oy1, ox0, ox1);
        return;
    }
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1;) {
            int32_t n = MSF_MIN(ox1 - ox, msf_vspan(in1, ox));
            n = MSF_MIN(n, msf_vspan(in2, ox));
            n = MSF_MIN(n, msf_vspan(out, ox));
            if (p->mode == MSF_RQ_FIXED) {
                add_run_fixed(p, a + msf_vofs(in1, oy, ox), b + msf_vofs(in2, oy, ox),
                              y + msf_vofs(out, oy, ox), n * C);
            } else {
#if MSF_INT_FLOATRQ
                if (!add_run_float_int(p, a + msf_vofs(in1, oy, ox), b + msf_vofs(in2, oy, ox),
                                       y + msf_vofs(out, oy, ox), n * C))
#endif
                add_run_float(p, a + msf_vofs(in1, oy, ox), b + msf_vofs(in2, oy, ox),
                              y + msf_vofs(out, oy, ox), n * C);
            }
            ox += n;
        }
    }
}
