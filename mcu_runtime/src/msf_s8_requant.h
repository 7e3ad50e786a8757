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
 *    take the reference), + zero point; on cores with the DSP extension and an FPU one VCVTR
 *    (saturating, round half to even) + QADD of the zero point instead (MSF_RQ_VCVTR, below:
 *    no range test).
 *    On cores without a single-precision FPU (MSF_INT_FLOATRQ, below), where each of those
 *    float operations is a libgcc soft-float call, the same expression is emulated exactly in
 *    integers (msf_rqc_float_int): fmul = m * 2^(e - 150) with a 24-bit mantissa m is split
 *    once per channel; per value fl32(acc) is exact for |acc| <= 2^24 (larger accumulators
 *    take the reference), |acc| is normalised to [2^31, 2^32) (its bit length: CLZ, or a
 *    257-byte table where the core has none), one 32 x 32 -> 64 multiply by
 *    m * 2^7 gives the product's top word (the low word only as a sticky bit), rounding that to
 *    24 significant bits half to even is the float multiply's rounding, and rounding the
 *    result to an integer half to even is the magic-number step's; the sign is applied last
 *    (both roundings are symmetric).  Products too large or too small for the float range
 *    still give the reference's integer: beyond 2^22 the result saturates either way, below
 *    2^-126 (a subnormal float) it is 0 either way.  fmul zero, subnormal, infinite or NaN
 *    takes the reference.
 *  The int8 saturation and the activation clamp are merged into one clamp when
 *    -128 <= act_min <= act_max <= 127; other clamps take the reference.
 *
 * The per-channel values are read once per channel (msf_rqc_load) and applied to every
 * accumulator of that channel (msf_rqc_apply). */
#ifndef MSF_S8_REQUANT_H
#define MSF_S8_REQUANT_H

#include "msf_internal.h"

/* MSF_INT_FLOATRQ: 1 when MSF_RQ_FLOAT is emulated in integers (the core has no single-
 * precision FPU: ARM without __ARM_FP bit 2 (Cortex-M0/M0+/M3, soft-float M4 builds), RISC-V
 * without __riscv_flen (RV32IMC/IMAC), Xtensa with __XTENSA_SOFT_FLOAT__ (lx106)); 0 keeps the
 * float operations.  MSF_FORCE_INT_FLOATRQ / MSF_FORCE_FPU_FLOATRQ override it (the host test
 * of the emulation, tests_c/test_rq_int.c). */
#if defined(MSF_FORCE_INT_FLOATRQ)
#define MSF_INT_FLOATRQ 1
#elif defined(MSF_FORCE_FPU_FLOATRQ)
#define MSF_INT_FLOATRQ 0
#elif defined(__ARM_FP)
#define MSF_INT_FLOATRQ (((__ARM_FP) & 4) == 0)
#elif defined(__arm__) || defined(__thumb__)
#define MSF_INT_FLOATRQ 1
#elif defined(__riscv)
#if defined(__riscv_flen)
#define MSF_INT_FLOATRQ 0
#else
#define MSF_INT_FLOATRQ 1
#endif
#elif defined(__XTENSA__) && defined(__XTENSA_SOFT_FLOAT__)
#define MSF_INT_FLOATRQ 1
#else
#define MSF_INT_FLOATRQ 0
#endif

/* MSF_RQ_VCVTR: 1 on cores with the DSP extension and a single-precision FPU (Cortex-M4F, M7,
 * M33 with FPU; MSF_INT_FLOATRQ 0): MSF_RQ_FLOAT rounds the float product to an integer with one
 * VCVTR.S32.F32 (conversion in the FPSCR rounding mode: round to nearest, ties to even, the mode
 * the magic-number step assumes too), which saturates to int32 for |v| >= 2^31 and +-inf, and
 * adds the zero point with QADD (saturating), so neither needs the range test and reference call
 * of the magic-number form: for v = fl32(acc) * fmul (finite fmul) and R = rne(v),
 * sat32(sat32(R) + zp) clamped to [lo, hi] (-128 <= lo <= hi <= 127) equals the reference's
 * clamp(rne(clamp(v, -128 - zp, 127 - zp)) + zp, lo, hi): rounding is monotonic and fixes
 * integers, so rne(clamp(v, a, b)) = clamp(R, a, b) for integer a, b; for R inside int32 both
 * sides are clamp(R + zp, lo, hi); for R beyond +-2^31 both are hi (lo) when |zp| <= 2^24
 * (checked by msf_rqc_load).  A NaN product needs a NaN or infinite fmul: msf_rqc_load sends
 * such a channel (and |zp| > 2^24) to the reference.  Elsewhere 0 (the code is unchanged). */
#if !MSF_INT_FLOATRQ && defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && \
    defined(__ARM_FP) && ((__ARM_FP) & 4)
#include <arm_acle.h>
#define MSF_RQ_VCVTR 1
/* rne(v) saturated to int32 (VCVTR.S32.F32 in the default rounding mode) */
static inline int32_t msf_vcvtr_s32(float v)
{
    float t;
    int32_t r;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(t) : "t"(v));
    __asm__("vmov %0, %1" : "=r"(r) : "t"(t));
    return r;
}
/* 1 when float multiplier f is finite (not inf / NaN: the exponent field is not all ones) */
static inline int32_t msf_fmul_finite(float f)
{
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    return ((b.u >> 23) & 0xFFu) != 0xFFu;
}
#else
#define MSF_RQ_VCVTR 0
#endif

/* Bit length of a <= 2^24 (1 for a == 0) without CLZ or a table: 16-, 8- and 4-bit steps, then
 * the bit length of the last nibble from a 2-bit-per-entry constant (floor(log2 x) for
 * x = 0..15, with 0 for x = 0).  Always defined: the host test checks it against every value. */
static inline int32_t msf_bitlen24_tree(uint32_t a)
{
    int32_t n = 1;
    if (a >= 0x10000u) {
        a >>= 16;
        n += 16;
    }
    if (a >= 0x100u) {
        a >>= 8;
        n += 8;
    }
    if (a >= 0x10u) {
        a >>= 4;
        n += 4;
    }
    return n + (int32_t)((0xFFFFAA50u >> (2u * a)) & 3u);
}

/* Bit length of a <= 2^24 (1 for a == 0) from a 257-byte table of the bit lengths of 0..256
 * (1 for 0): the top non-zero byte group (a >> 16 <= 256, a >> 8 or a) looked up, two
 * branches.  A copy per translation unit that uses it (in flash: .rodata stays in flash on
 * the ARM and RISC-V targets).  Always defined: the host test checks it against every value. */
static inline int32_t msf_bitlen24_tab(uint32_t a)
{
    static const uint8_t t[257] = {
        1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5,
        5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
        6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
        8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
        8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
        8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
        8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
        8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 9};
    const uint32_t h = a >> 16, m = a >> 8;
    return h ? 16 + (int32_t)t[h] : (m ? 8 + (int32_t)t[m] : (int32_t)t[a]);
}

/* Bit length of a <= 2^24 (1 for a == 0): one CLZ where the core has it (Cortex-M3 and up,
 * RISC-V Zbb, the host); elsewhere (Cortex-M0: no CLZ; RV32IMAC: no Zbb; GCC's __builtin_clz
 * would be a libgcc call there) the table, or the tree on Xtensa, whose .rodata is copied to
 * its data RAM (rv32imac: 49 instructions per output with the table, 57 with the tree).
 * MSF_FORCE_BITLEN_TABLE / MSF_FORCE_BITLEN_TREE select one on any core (the host tests). */
static inline int32_t msf_bitlen24(uint32_t a)
{
#if defined(MSF_FORCE_BITLEN_TABLE)
    return msf_bitlen24_tab(a);
#elif defined(MSF_FORCE_BITLEN_TREE) || defined(__XTENSA__)
    return msf_bitlen24_tree(a);
#elif defined(__GNUC__) && (defined(__ARM_FEATURE_CLZ) || defined(__riscv_zbb) ||                 \
                            defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
    return 32 - __builtin_clz(a | 1u);
#else
    return msf_bitlen24_tab(a);
#endif
}

/* Top word of the 64-bit product x * y, its bit 0 ORed with (low word != 0), from four 16 x 16
 * multiplies (for ARMv6-M, whose MULS keeps only the low 32 bits: a 64-bit product would be an
 * __aeabi_lmul call).  Always defined: the host test checks it against the 64-bit product. */
static inline uint32_t msf_umulhi_sticky16(uint32_t x, uint32_t y)
{
    const uint32_t x0 = x & 0xFFFFu, x1 = x >> 16, y0 = y & 0xFFFFu, y1 = y >> 16;
    const uint32_t p00 = x0 * y0, p01 = x0 * y1, p10 = x1 * y0, p11 = x1 * y1;
    const uint32_t mid = p01 + (p00 >> 16);           /* < 2^32: p01 <= (2^16 - 1)^2 */
    const uint32_t mid2 = (mid & 0xFFFFu) + p10;      /* < 2^32 likewise */
    const uint32_t hi = p11 + (mid >> 16) + (mid2 >> 16);
    return hi | (((mid2 | p00) & 0xFFFFu) != 0u ? 1u : 0u);
}

/* Top word of x * y with the sticky bit of the low word (as msf_umulhi_sticky16). */
static inline uint32_t msf_umulhi_sticky(uint32_t x, uint32_t y)
{
#if defined(__ARM_ARCH_6M__) || defined(MSF_FORCE_MUL16)
    return msf_umulhi_sticky16(x, y);
#else
    const uint64_t q = (uint64_t)x * (uint64_t)y;
    return (uint32_t)(q >> 32) | ((uint32_t)q != 0u ? 1u : 0u);
#endif
}

typedef struct {
    int32_t mode;    /* MSF_RQ_FIXED or MSF_RQ_FLOAT */
    int32_t mul;     /* fixed: Q31 multiplier */
    int32_t lsh;     /* fixed: left shift max(shift, 0) */
    int32_t rsh;     /* fixed: right shift max(-shift, 0) */
    float fmul;      /* float: multiplier */
#if MSF_INT_FLOATRQ
    uint32_t fm;     /* float, emulated: fmul's 24-bit mantissa * 2^7 */
    int32_t fk;      /* float, emulated: 150 - fmul's biased exponent */
    int32_t fsg;     /* float, emulated: -1 when fmul < 0, else 0 */
#endif
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
#if MSF_INT_FLOATRQ
        c->fm = 0u;
        c->fk = 0;
        c->fsg = 0;
#endif
        if (c->mul == INT32_MIN || s > 31 || s < -31) {
            c->slow = 1; /* SRDHM's saturating corner / shifts outside the reference's range */
        }
    } else {
        c->fmul = rq->fmul[idx];
        c->mul = 0;
        c->lsh = 0;
        c->rsh = 0;
#if MSF_RQ_VCVTR
        if (!msf_fmul_finite(c->fmul) || out_zp > (1 << 24) || out_zp < -(1 << 24)) {
            c->slow = 1; /* a NaN product possible / the saturating zero-point add's range */
        }
#endif
#if MSF_INT_FLOATRQ
        {
            /* fmul's fields (a union: the bits without a float operation) */
            union {
                float f;
                uint32_t u;
            } b;
            uint32_t e;
            b.f = c->fmul;
            e = (b.u >> 23) & 0xFFu;
            c->fm = ((b.u & 0x7FFFFFu) | 0x800000u) << 7;
            c->fk = 150 - (int32_t)e;
            c->fsg = -(int32_t)(b.u >> 31);
            if (e == 0u || e == 0xFFu) {
                c->slow = 1; /* zero, subnormal, infinite or NaN multiplier */
            }
        }
#endif
    }
}

/* The reference: msf_requant_s8 then the activation clamp (rare corners only). */
static inline int32_t msf_rqc_ref(const msf_rqc *c, int32_t acc)
{
    return msf_clamp_i32(msf_requant_s8(c->rq, acc, c->ch, c->zp), c->lo, c->hi);
}

/* MSF_RQ_FLOAT in integers, equal to the float path for every acc (see the top of this file):
 * the requantised, saturated and activation-clamped value.  With a = |acc| = A * 2^(la - 32),
 * A = a << (32 - la) in [2^31, 2^32) and fm = m * 2^7 in [2^30, 2^31), the exact product
 * a * fmul is h * 2^(la - 157 + e) with h = the top word of A * fm in [2^29, 2^31) (the low
 * word is below every rounding point here: it only makes the sticky bit 0 of h).  h is
 * shifted to [2^30, 2^31) (b = 1 when it was below), so its bits 30..7 are the float
 * product's 24-bit mantissa: r = h rounded at bit 7 half to even, and the float product is
 * r * 2^-n with n = fk - la + b.  n is clamped to [1, 31]: n < 1 means a product >= 2^23
 * (r >> 1 >= 2^22 saturates as well), n > 31 a product < 2^-7 (0 as well).  Rounding r * 2^-n
 * to an integer half to even: q = r >> n plus one when the dropped bits t = r << (32 - n)
 * exceed one half, or equal it with q odd. */
#if MSF_INT_FLOATRQ
static inline int32_t msf_rqc_float_int(const msf_rqc *c, int32_t acc)
{
    const uint32_t s = (uint32_t)(acc >> 31);
    const uint32_t a = ((uint32_t)acc ^ s) - s;
    uint32_t h, r, q, b, sg;
    int32_t la, n, v;
    if (a > 0x1000000u) {
        return msf_rqc_ref(c, acc); /* fl32(acc) inexact */
    }
    la = msf_bitlen24(a);
    h = msf_umulhi_sticky(a << (32 - la), c->fm);
    b = (h >> 30) ^ 1u;
    h <<= b;
    r = (h + 63u + ((h >> 7) & 1u)) >> 7;
    n = c->fk - la + (int32_t)b;
    n = n < 1 ? 1 : (n > 31 ? 31 : n);
    q = r >> n;
    q += ((r << (32 - n)) | (q & 1u)) > 0x80000000u ? 1u : 0u;
    sg = s ^ (uint32_t)c->fsg;
    v = (int32_t)((q ^ sg) - sg) + c->zp; /* |q| <= 2^23: no overflow */
    return v < c->lo ? c->lo : (v > c->hi ? c->hi : v);
}
#endif

/* Requantised, saturated and activation-clamped int8 value of accumulator acc; `mode` is
 * c->mode (a compile-time constant in the loops specialised per mode by the kernels).
 *  fixed: MultiplyByQuantizedMultiplier (see the top of this file) + zero point (wrapping
 *         int32 like the reference), one clamp;
 *  float: v = (float)acc * fmul exactly as the reference computes it; for |v| < 2^22, round
 *         half to even by the 1.5 * 2^23 addition (exact in the default round-to-nearest-even
 *         mode, the mode the float multiply itself runs in), then one integer clamp:
 *         clamp(rne(v), lo - zp, hi - zp) == rne(clamp(v, lo - zp, hi - zp)) for integer
 *         bounds (rounding is monotonic and fixes integers); larger values and NaN take the
 *         reference.  Where MSF_INT_FLOATRQ, msf_rqc_float_int instead (the same integers). */
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
#if MSF_INT_FLOATRQ
        return msf_rqc_float_int(c, acc);
#elif MSF_RQ_VCVTR
        r = __qadd(msf_vcvtr_s32((float)acc * c->fmul), c->zp);
#else
        const float magic = 12582912.0f;             /* 1.5 * 2^23 */
        const float v = (float)acc * c->fmul;
        float t;
        if (!(v < 4194304.0f && v > -4194304.0f)) {  /* |v| >= 2^22 or NaN */
            return msf_rqc_ref(c, acc);
        }
        t = (v + magic) - magic;
        r = (int32_t)t + c->zp;
#endif
    }
    return r < c->lo ? c->lo : (r > c->hi ? c->hi : r);
}

static inline int32_t msf_rqc_apply(const msf_rqc *c, int32_t acc)
{
    return msf_rqc_apply_m(c, acc, c->mode);
}

/* Lean MSF_RQ_FIXED requantisation for the short-call loops (one pixel or a short column per
 * call, where msf_rqc_load's struct would cost as much as the arithmetic): the channel's
 * values in locals.  msf_rqf_ok(mul, shift) says whether channel (mul, shift) may use it (else
 * msf_rqc_load + msf_rqc_ref); msf_rqf_apply is msf_rqc_apply_m's MSF_RQ_FIXED branch with the
 * rounding mask precomputed (mask = 2^rsh - 1), the same integers.  lo / hi: the merged clamp
 * (-128 <= lo <= hi <= 127, checked by the caller: msf_rq_clamp_ok). */
static inline int32_t msf_rq_clamp_ok(int32_t act_min, int32_t act_max)
{
    return act_min >= -128 && act_min <= act_max && act_max <= 127;
}

static inline int32_t msf_rqf_apply(int32_t acc, int32_t mul, int32_t lsh, int32_t rsh,
                                    int32_t mask, int32_t zp, int32_t lo, int32_t hi)
{
    const int32_t xs = (int32_t)((uint32_t)acc << lsh);
    int32_t q = (int32_t)(((int64_t)xs * (int64_t)mul + ((int64_t)1 << 30)) >> 31);
    const int32_t thr = (mask >> 1) - (q >> 31); /* + 1 for a negative q */
    int32_t r;
    q = (q >> rsh) + ((q & mask) > thr ? 1 : 0);
    r = (int32_t)((uint32_t)q + (uint32_t)zp); /* wraps like the reference */
    return r < lo ? lo : (r > hi ? hi : r);
}

/* MSF_RQ_LEAN: an internal mode value of the fast kernels' loops, MSF_RQ_FIXED with the clamp
 * inside int8 (msf_rq_clamp_ok, checked once per call): channels whose multiplier and shift
 * the lean form covers (msf_rqf_load) take msf_rqf_apply, the others msf_rqc. */
#define MSF_RQ_LEAN 100

/* MSF_RQF_DSP: the lean form's DSP variant (cores with the ARMv7E-M / ARMv8-M DSP extension,
 * __ARM_FEATURE_DSP: Cortex-M4/M7/M33; MSF_FORCE_RQF_PORTABLE keeps the portable one there).
 * It covers channels with 2^30 <= mul < 2^31 (QuantizeMultiplier's normalised multipliers) and
 * a right shift e = -shift in 1..MSF_RQF_MAX_E, and per value is
 *     q = SMMULR(QADD(acc, acc), mul)        (SRDHM(acc, mul): see msf_rqf_model)
 *     r = ((q + (q >> 31) + 2^(e-1)) >> e) + zp, then the clamp
 * (QADD, SMMULR, two adds, a shift, an add: no 64-bit add, no mask / threshold), where the
 * portable form pays the left shift, a 64-bit multiply-add, the word split and the rounding
 * comparison.  Other channels take msf_rqc (the callers' fallback, as for a channel the portable
 * lean form does not cover). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MSF_FORCE_RQF_PORTABLE)
#define MSF_RQF_DSP 1
#include <arm_acle.h>
#else
#define MSF_RQF_DSP 0
#endif
#define MSF_RQF_MAX_E 20

/* The DSP variant in portable C (always defined: the host test and rqf_diff.c check it against
 * the reference over every corner; on DSP cores rqf_diff.c also checks the intrinsic form
 * against it), for a nudge n:
 *     r = ((SMMULR(QADD(acc, acc), mul) + (q >> 31) + n) >> e) + zp, clamped.
 * With n = 2^(e-1) it is MultiplyByQuantizedMultiplier(acc, mul, -e) + zp, clamped, for
 * 0 <= mul < 2^31 and 1 <= e <= 31 and every |acc| <= 2^29, and for every acc when
 * 2^30 <= mul and e <= MSF_RQF_MAX_E:
 *  - -2^30 <= acc < 2^30: QADD(acc, acc) = 2 acc exactly and
 *    SMMULR(2 acc, mul) = floor((2 acc mul + 2^31) / 2^32) = floor((acc mul + 2^30) / 2^31),
 *    which is SRDHM (no saturating corner: mul != INT32_MIN); |q| <= |acc| + 1, so for
 *    |acc| <= 2^29 (or e <= 20) the sums below do not overflow.  With q = a 2^e + b
 *    (0 <= b < 2^e), floor((q + 2^(e-1) - [q < 0]) / 2^e) = a + [b >= 2^(e-1) + [q < 0]] is
 *    RoundingDivideByPOT ((q >> e) + ((q & mask) > (mask >> 1) + [q < 0])).
 *  - acc >= 2^30: QADD saturates to 2^31 - 1; both the reference's q and this q are
 *    >= 2^29 - 1, so both results are >= floor((2^29 - 1 + 2^(e-1)) / 2^e) - 128 >= 384 for
 *    e <= 20: both clamp to hi (<= 127).  acc < -2^30: both q <= -2^29 and both results are
 *    <= -385: both clamp to lo (>= -128).
 * With mul = 0, e = 1 and n = 2k it is the constant k + zp, clamped (the code generator's
 * record of a channel whose output is one value over its whole accumulator range). */
static inline int32_t msf_rqf_model(int32_t acc, int32_t mul, int32_t e, int32_t n, int32_t zp,
                                    int32_t lo, int32_t hi)
{
    const int64_t a2 = acc >= 0x40000000 ? (int64_t)INT32_MAX
                       : (acc < -0x40000000 ? (int64_t)INT32_MIN : 2 * (int64_t)acc);
    const int32_t q = (int32_t)((a2 * (int64_t)mul + ((int64_t)1 << 31)) >> 32);
    const int32_t r = ((q + (q >> 31) + n) >> e) + zp;
    return r < lo ? lo : (r > hi ? hi : r);
}

static inline int32_t msf_rqf_dsp_ok(int32_t mul, int32_t shift)
{
    return mul >= 0x40000000 && shift <= -1 && shift >= -MSF_RQF_MAX_E;
}

#if MSF_RQF_DSP
/* msf_rqf_model through QADD and SMMULR; n = 2^(e-1) */
static inline int32_t msf_rqf_apply_dsp(int32_t acc, int32_t mul, int32_t e, int32_t n,
                                        int32_t zp, int32_t lo, int32_t hi)
{
    const int32_t a2 = __qadd(acc, acc);
    int32_t q, r;
    __asm__("smmulr %0, %1, %2" : "=r"(q) : "r"(a2), "r"(mul));
    r = ((q + (q >> 31) + n) >> e) + zp;
    return r < lo ? lo : (r > hi ? hi : r);
}
/* msf_rqf_apply_dsp for the whole-int8 clamp (act_min -128, act_max 127: TFLite's int8 ReLU6
 * or no activation), one SSAT instead of the clamp's two comparisons */
static inline int32_t msf_rqf_apply_dsp8(int32_t acc, int32_t mul, int32_t e, int32_t n,
                                         int32_t zp)
{
    const int32_t a2 = __qadd(acc, acc);
    int32_t q;
    __asm__("smmulr %0, %1, %2" : "=r"(q) : "r"(a2), "r"(mul));
    return __ssat(((q + (q >> 31) + n) >> e) + zp, 8);
}
#endif

/* MSF_RQ_FIXED channel values for the lean form (msf_rqf_apply, or msf_rqf_apply_dsp), read
 * once per channel and run by the conv loops (msf_s8_convfast.c); msf_rqf_load returns 0 when
 * the channel needs the reference (msf_rqf_ok). */
#if MSF_RQF_DSP
typedef struct {
    int32_t mul, e, n; /* Q31 multiplier, right shift, 2^(e-1) */
} msf_rqf;

static inline int32_t msf_rqf_ok(int32_t mul, int32_t shift)
{
    return msf_rqf_dsp_ok(mul, shift);
}

static inline int32_t msf_rqf_load(const msf_requant *rq, int32_t ch, msf_rqf *f)
{
    const int32_t idx = rq->per_channel ? ch : 0;
    const int32_t mul = rq->qmul[idx], sh = rq->qshift[idx];
    f->mul = mul;
    f->e = (int32_t)((uint32_t)-sh & 31u);
    f->n = (int32_t)(1u << (((uint32_t)f->e - 1u) & 31u));
    return msf_rqf_ok(mul, sh);
}

static inline int32_t msf_rqf_apply_c(const msf_rqf *f, int32_t acc, int32_t zp, int32_t lo,
                                      int32_t hi)
{
    return msf_rqf_apply_dsp(acc, f->mul, f->e, f->n, zp, lo, hi);
}

static inline int32_t msf_rqf_apply_s(int32_t acc, int32_t mul, int32_t shift, int32_t zp,
                                      int32_t lo, int32_t hi)
{
    const int32_t e = -shift;
    return msf_rqf_apply_dsp(acc, mul, e, (int32_t)(1u << (e - 1)), zp, lo, hi);
}

/* Channel ch's lean values from the code generator's records (msf_conv_s8_params.rqd, when
 * non-NULL: every channel of the layer is inside the form's range and the clamp inside int8),
 * three loads and nothing derived. */
static inline void msf_rqf_rec(const int32_t *rqd, int32_t ch, msf_rqf *f)
{
    const int32_t *r = rqd + 3 * ch;
    f->mul = r[0];
    f->e = r[1];
    f->n = r[2];
}
#else
static inline int32_t msf_rqf_ok(int32_t mul, int32_t shift)
{
    return mul != INT32_MIN && shift <= 31 && shift >= -31;
}

typedef struct {
    int32_t mul, lsh, rsh, mask;
} msf_rqf;

static inline int32_t msf_rqf_load(const msf_requant *rq, int32_t ch, msf_rqf *f)
{
    const int32_t idx = rq->per_channel ? ch : 0;
    const int32_t mul = rq->qmul[idx], sh = rq->qshift[idx];
    f->mul = mul;
    f->lsh = sh & ~(sh >> 31);
    f->rsh = (f->lsh - sh) & 31; /* (& 31: a shift the lean form does not take, < -31) */
    f->mask = (int32_t)(((uint32_t)1 << f->rsh) - 1u);
    return msf_rqf_ok(mul, sh);
}

static inline int32_t msf_rqf_apply_c(const msf_rqf *f, int32_t acc, int32_t zp, int32_t lo,
                                      int32_t hi)
{
    return msf_rqf_apply(acc, f->mul, f->lsh, f->rsh, f->mask, zp, lo, hi);
}

static inline int32_t msf_rqf_apply_s(int32_t acc, int32_t mul, int32_t shift, int32_t zp,
                                      int32_t lo, int32_t hi)
{
    const int32_t lsh = shift & ~(shift >> 31);
    const int32_t rsh = lsh - shift;
    return msf_rqf_apply(acc, mul, lsh, rsh, (int32_t)(((uint32_t)1 << rsh) - 1u), zp, lo, hi);
}
#endif

#if MSF_RQ_VCVTR
/* MSF_RQ_VF / MSF_RQ_VF8: internal mode values of the fast kernels' loops, MSF_RQ_FLOAT in
 * MSF_RQ_VCVTR's form from the channel's multiplier in a local (msf_rqv_apply: no msf_rqc, no
 * per-value slow test) for calls whose clamp lies inside int8 and whose |zp| <= 2^24
 * (msf_rqv_call_ok) and channels with a finite multiplier (msf_fmul_finite), the others through
 * msf_rqc; MSF_RQ_VF8: the clamp is the whole int8 range (one SSAT). */
#define MSF_RQ_VF 101
#define MSF_RQ_VF8 102

static inline int32_t msf_rqv_call_ok(int32_t zp, int32_t lo, int32_t hi)
{
    return msf_rq_clamp_ok(lo, hi) && zp <= (1 << 24) && zp >= -(1 << 24);
}

/* msf_rqc_apply_m's MSF_RQ_VCVTR value for multiplier fm: clamp(sat32(sat32(rne(fl32(acc) *
 * fm)) + zp), lo, hi); full8 (a compile-time constant): lo == -128, hi == 127 */
static inline int32_t msf_rqv_apply(int32_t acc, float fm, int32_t zp, int32_t lo, int32_t hi,
                                    int32_t full8)
{
    const int32_t r = __qadd(msf_vcvtr_s32((float)acc * fm), zp);
    if (full8) {
        return __ssat(r, 8);
    }
    return r < lo ? lo : (r > hi ? hi : r);
}
#endif

#endif /* MSF_S8_REQUANT_H */
