/* rq_diff.c - differential test of the inlined float requantisation (msf_s8_requant.h,
 * msf_rqc_apply_m in MSF_RQ_FLOAT mode; on cores without an FPU the integer emulation
 * msf_rqc_float_int) against two oracles it does not share code with:
 *   - the float expression ORT computes, written out here: v = fl32(fl32(acc) * fmul), clamp
 *     to [lo - zp, hi - zp], round half to even by truncation and a remainder comparison (not
 *     the kernels' 1.5 * 2^23 addition), + zp;
 *   - the reference msf_requant_s8 (msf_quant.c) followed by the activation clamp.
 * Cases: random (acc, fmul) pairs over every float exponent the quantisers produce
 * (1e-9 .. 1e3) with accumulators drawn to land in the int8 range and anywhere, and targeted
 * corners: exact ties of the integer rounding (x = k + 0.5 for even and odd k), exact ties of
 * the float multiply's rounding (acc * m exactly half a 24-bit ulp off), products that the
 * float rounding moves onto a tie (the double-rounding cases: the float result is k + 0.5 but
 * the exact product is not; and, exactly half a float ulp off k + 0.5, both ties in one
 * product), |acc| around 2^24 and the int32 ends, every exponent 97..137 with
 * the extreme mantissas, negative multipliers, zero points -128 and 127, activation clamps,
 * and multipliers the emulation hands to the reference (0, subnormal, infinite; not NaN,
 * where the reference itself is undefined).
 * rqd_count[] records how many cases of each corner class ran (checked by the host test, so a
 * generator that stopped producing them fails).
 *
 * Freestanding (no stdio, static state): included by test_rq_int*.c (host, ASan + UBSan, with
 * the emulation forced on) and rq_diff_mcu.c (QEMU targets, the emulation the core selects).
 * rqd_run(seed, n) returns the number of differing cases. */
#include "msf_s8_requant.h"

enum {
    RQD_INT_TIE,
    RQD_FLOAT_TIE,
    RQD_DOUBLE_TIE,
    RQD_DOUBLE_ROUND,
    RQD_BIG_ACC,
    RQD_NONZERO,
    RQD_NCLASS
};

static uint32_t rqd_state = 1u;
static uint32_t rqd_count[RQD_NCLASS];

static uint32_t rqd_u32(void)
{
    rqd_state ^= rqd_state << 13;
    rqd_state ^= rqd_state >> 17;
    rqd_state ^= rqd_state << 5;
    return rqd_state;
}

static int32_t rqd_rnd(int32_t lo, int32_t hi) /* inclusive */
{
    return (int32_t)((uint32_t)lo + rqd_u32() % ((uint32_t)hi - (uint32_t)lo + 1u));
}

static float rqd_f(uint32_t bits)
{
    union {
        uint32_t u;
        float f;
    } b;
    b.u = bits;
    return b.f;
}

/* fmul = sign * (2^23 + frac) * 2^(e - 150) */
static float rqd_fmul(uint32_t e, uint32_t frac, int neg)
{
    return rqd_f((neg ? 0x80000000u : 0u) | (e << 23) | (frac & 0x7FFFFFu));
}

/* The float oracle (finite fmul). */
static int32_t rqd_oracle(float fmul, int32_t acc, int32_t zp, int32_t lo, int32_t hi)
{
    float v = (float)acc * fmul, d;
    const float flo = (float)(lo - zp), fhi = (float)(hi - zp);
    int32_t t;
    v = v < flo ? flo : (v > fhi ? fhi : v);
    t = (int32_t)v;       /* toward zero; |v| <= 255 */
    d = v - (float)t;     /* exact */
    if (d > 0.5f || (d == 0.5f && (t & 1))) {
        t++;
    } else if (d < -0.5f || (d == -0.5f && (t & 1))) {
        t--;
    }
    return t + zp;
}

static uint32_t rqd_fail;

/* One (acc, fmul, zp, clamp): the inline path against the reference and, for finite fmul,
 * against the float oracle. */
static void rqd_check(float fmul, int32_t acc, int32_t zp, int32_t lo, int32_t hi, int finite)
{
    msf_requant rq;
    msf_rqc c;
    int32_t got, ref;
    rq.mode = MSF_RQ_FLOAT;
    rq.per_channel = 0;
    rq.fmul = &fmul;
    rq.qmul = 0;
    rq.qshift = 0;
    msf_rqc_load(&rq, 0, zp, lo, hi, &c);
    got = msf_rqc_apply_m(&c, acc, MSF_RQ_FLOAT);
    ref = msf_rqc_ref(&c, acc);
    if (got != ref || (finite && got != rqd_oracle(fmul, acc, zp, lo, hi))) {
        rqd_fail++;
    }
    if (got != zp) {
        rqd_count[RQD_NONZERO]++;
    }
}

/* Random zero point and activation clamp: no clamp, ReLU, ReLU6-like, narrow; zp at the
 * ends a quarter of the time. */
static void rqd_zp_clamp(int32_t *zp, int32_t *lo, int32_t *hi)
{
    const int32_t k = rqd_rnd(0, 7);
    *zp = k == 0 ? -128 : (k == 1 ? 127 : rqd_rnd(-128, 127));
    switch (rqd_rnd(0, 3)) {
    case 0:
        *lo = -128;
        *hi = 127;
        break;
    case 1:
        *lo = *zp;
        *hi = 127;
        break;
    case 2:
        *lo = *zp;
        *hi = *zp + 6 > 127 ? 127 : *zp + 6;
        break;
    default:
        *lo = rqd_rnd(-128, 127);
        *hi = rqd_rnd(*lo, 127);
        break;
    }
}

/* rqd_check of acc or -acc (a random sign) with a random zero point and clamp (finite fmul). */
static void rqd_check_any_sign(float fmul, int32_t acc)
{
    int32_t zp, lo, hi;
    if (rqd_u32() & 1u) {
        acc = -acc;
    }
    rqd_zp_clamp(&zp, &lo, &hi);
    rqd_check(fmul, acc, zp, lo, hi, 1);
}

/* An exponent the quantisers produce: 2^-30 < fmul < 2^10 (1e-9 .. 1e3). */
static uint32_t rqd_exp(void)
{
    return (uint32_t)rqd_rnd(97, 137);
}

/* Random pairs: half with acc drawn so that acc * fmul lands in [-300, 300] (the results that
 * are neither 0 nor saturated), half with |acc| of a random bit length 0..25. */
static void rqd_random(int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const uint32_t e = rqd_exp();
        const float fmul = rqd_fmul(e, rqd_u32(), rqd_rnd(0, 63) == 0);
        int32_t acc;
        if (i & 1) {
            /* |acc| ~ t / fmul for t in [0, 600], fmul ~ 2^(e - 127) */
            const int32_t sh = 127 - (int32_t)e;
            const uint64_t t = (uint64_t)rqd_rnd(0, 600);
            const uint64_t a = sh >= 0 ? t << sh : t >> -sh;
            acc = a > 0x1000000u ? (int32_t)(rqd_u32() & 0xFFFFFFu)
                                 : (int32_t)a + rqd_rnd(-3, 3);
        } else {
            const int32_t bits = rqd_rnd(0, 25);
            acc = bits == 0 ? 0 : (int32_t)(rqd_u32() >> (32 - bits));
        }
        rqd_check_any_sign(fmul, acc);
    }
}

/* Exact ties of the integer rounding: fmul = d * 2^-j (d odd), acc = t * 2^(j - 1) (t odd),
 * x = d * t / 2 = k + 0.5 with k = (d * t - 1) / 2 even or odd. */
static void rqd_int_ties(int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const uint32_t d = (uint32_t)(2 * rqd_rnd(0, 15) + 1);
        const uint32_t t = (uint32_t)(2 * rqd_rnd(0, (int32_t)(300 / d - 1) / 2) + 1);
        /* d * 2^-j with d < 2^5: biased exponent of fmul is 127 - j + floor(log2 d) */
        const int32_t j = rqd_rnd(1, 25 - msf_bitlen24(t));
        const int32_t lg = msf_bitlen24(d) - 1;
        const uint32_t m = (d << (23 - lg)) & 0x7FFFFFu;
        const float fmul = rqd_fmul((uint32_t)(127 - j + lg), m, 0);
        int32_t acc = (int32_t)(t << (j - 1));
        rqd_check_any_sign(fmul, acc);
        rqd_count[RQD_INT_TIE]++;
    }
}

/* Exact ties of the float multiply: acc = 3 * 2^i with m odd and 3m in [2^24, 2^25): acc * m
 * has 25 significant bits ending in 1, exactly half a 24-bit ulp from both neighbours. */
static void rqd_float_ties(int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const uint32_t m = (5592406u + (rqd_u32() % (0x1000000u - 5592406u))) | 1u;
        const int32_t ii = rqd_rnd(0, 22);
        const uint32_t e = rqd_exp();
        const float fmul = rqd_fmul(e, m, 0);
        int32_t acc = (int32_t)(3u << ii);
        rqd_check_any_sign(fmul, acc);
        rqd_count[RQD_FLOAT_TIE]++;
    }
}

/* Both ties at once: the exact product x = k + 0.5 +- half a float ulp of k + 0.5, so the
 * float multiply's tie goes to k + 0.5 (its even mantissa) and the integer rounding's tie then
 * to the even of k, k + 1 (rounding either tie the other way gives another integer).  With
 * T = 2k + 1 of bit length bt, x = W * 2^(bt - 26) for the odd 25-bit W = T * 2^(25 - bt) +- 1;
 * W = a0 * mo with a small odd a0 (trial division), acc = a0 * 2^i and fmul = mo * 2^j
 * normalised to a 24-bit mantissa, its exponent making the product x. */
static void rqd_double_ties(int32_t n)
{
    int32_t i, zp, lo, hi;
    for (i = 0; i < n; i++) {
        const uint32_t t = (uint32_t)(2 * rqd_rnd(1, 255) + 1);
        const int32_t bt = msf_bitlen24(t);
        const uint32_t w = (t << (25 - bt)) + ((rqd_u32() & 1u) ? 1u : (uint32_t)-1);
        uint32_t a0, mo, m;
        int32_t sh, j, e;
        int32_t acc;
        for (a0 = 3u; a0 < 64u && w % a0 != 0u; a0 += 2u) {
        }
        if (a0 >= 64u) {
            continue;
        }
        mo = w / a0;
        j = 24 - msf_bitlen24(mo);
        m = mo << j;
        sh = rqd_rnd(0, 24 - msf_bitlen24(a0));
        e = 150 + bt - 26 - sh - j;
        acc = (int32_t)(a0 << sh);
        if (rqd_u32() & 1u) {
            acc = -acc;
        }
        {
            const float fmul = rqd_fmul((uint32_t)e, m, 0);
            const float v = (float)acc * fmul;
            if (v == (float)t * 0.5f || v == (float)t * -0.5f) {
                rqd_count[RQD_DOUBLE_TIE]++; /* the float product is the tie k + 0.5 */
            }
            rqd_zp_clamp(&zp, &lo, &hi);
            if (rqd_u32() & 1u) {
                lo = -128;
                hi = 127;
            }
            rqd_check(fmul, acc, zp, lo, hi, 1);
        }
    }
}

/* Double rounding: |acc| in [2^22, 2^24] within a few units of (k + 0.5) / fmul, where the
 * float product often rounds onto the tie k + 0.5 although the exact product is off it (then the result is the even neighbour, not the nearest).  The
 * cases where that happened are counted with a double-precision product (exact: 24 + 25 bits). */
static void rqd_double_round(int32_t n)
{
    int32_t i, zp, lo, hi;
    for (i = 0; i < n; i++) {
        const int32_t k = rqd_rnd(-130, 129);
        /* |acc| in [2^22, 2^24): fmul / 2 is then about half a float ulp of k + 0.5 */
        const double ad = 4194304.0 * (1.0 + (double)(rqd_u32() >> 8) / 5592406.0);
        const double kh = k < 0 ? -((double)k + 0.5) : (double)k + 0.5;
        const float fmul = (float)(kh / ad);
        int32_t acc;
        double x;
        acc = (int32_t)(((double)k + 0.5) / (double)fmul) + rqd_rnd(-2, 2);
        if (acc > 0x1000000 || acc < -0x1000000) {
            continue;
        }
        x = (double)acc * (double)fmul;
        if ((double)((float)acc * fmul) == (double)k + 0.5 && x != (double)k + 0.5) {
            rqd_count[RQD_DOUBLE_ROUND]++;
        }
        zp = rqd_rnd(0, 1) ? 0 : rqd_rnd(-128, 127);
        lo = -128;
        hi = 127;
        rqd_check(fmul, acc, zp, lo, hi, 1);
    }
}

/* |acc| at 2^24 and beyond (the reference's branch), the int32 ends, every exponent with the
 * extreme mantissas, special multipliers. */
static void rqd_corners(void)
{
    static const int32_t accs[] = {0, 1, -1, 2, 3, 127, -128, 0xFFFFFF, 0x1000000, 0x1000001,
                                   0x1000002, 0x1FFFFFF, -0xFFFFFF, -0x1000000, -0x1000001,
                                   0x7FFFFFFF, -0x7FFFFFFF, (int32_t)0x80000000u, 65535, 65536,
                                   255, 256, 4095, 4096};
    static const uint32_t fracs[] = {0u, 1u, 0x7FFFFFu, 0x400000u, 0x3FFFFFu, 0x555555u};
    static const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x007FFFFFu,
                                        0x7F800000u, 0xFF800000u, 0x00800000u,
                                        0x7F7FFFFFu, 0x3F800000u, 0xBF800000u};
    const int32_t zps[] = {-128, 127, 0, -1};
    uint32_t e, f, a, z, s;
    for (e = 97; e <= 137; e++) {
        for (f = 0; f < sizeof fracs / sizeof fracs[0]; f++) {
            for (a = 0; a < sizeof accs / sizeof accs[0]; a++) {
                for (z = 0; z < 4; z++) {
                    const float fmul = rqd_fmul(e, fracs[f], (int)(z & 1u));
                    rqd_check(fmul, accs[a], zps[z], -128, 127, 1);
                    rqd_check(fmul, accs[a], zps[z], zps[z], 127, 1);
                    if (accs[a] > 0x1000000 || accs[a] < -0x1000000) {
                        rqd_count[RQD_BIG_ACC]++;
                    }
                }
            }
        }
    }
    for (s = 0; s < sizeof specials / sizeof specials[0]; s++) {
        const float fmul = rqd_f(specials[s]);
        const int finite = (specials[s] & 0x7F800000u) != 0x7F800000u;
        for (a = 0; a < sizeof accs / sizeof accs[0]; a++) {
            if (!finite && accs[a] == 0) {
                continue; /* inf * 0: NaN, which the reference does not define either */
            }
            for (z = 0; z < 4; z++) {
                rqd_check(fmul, accs[a], zps[z], -128, 127, finite);
            }
        }
    }
    /* the accumulators next to 2^24 with random multipliers */
    for (a = 0; a < 2000u; a++) {
        const int32_t acc = 0x1000000 + rqd_rnd(-8, 8);
        const float fmul = rqd_fmul(rqd_exp(), rqd_u32(), 0);
        rqd_check(fmul, (a & 1u) ? -acc : acc, rqd_rnd(-128, 127), -128, 127, 1);
    }
}

/* Every case class with the given seed; n random pairs (a tenth of that per corner class).
 * Returns the number of differing cases. */
static uint32_t rqd_run(uint32_t seed, int32_t n)
{
    uint32_t k;
    rqd_state = seed * 2654435761u + 1u;
    rqd_fail = 0;
    for (k = 0; k < RQD_NCLASS; k++) {
        rqd_count[k] = 0;
    }
    rqd_corners();
    rqd_int_ties(n / 10 + 1);
    rqd_float_ties(n / 10 + 1);
    rqd_double_ties(n / 10 + 1);
    rqd_double_round(n / 10 + 1);
    rqd_random(n);
    return rqd_fail;
}
