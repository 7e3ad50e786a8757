/* rqf_diff.c - differential test of the lean fixed-point requantisation's DSP variant
 * (msf_s8_requant.h: msf_rqf_model in portable C, and on cores with the DSP extension
 * msf_rqf_apply_dsp through QADD / SMMULR as the kernels reach it, msf_rqf_load +
 * msf_rqf_apply_c and msf_rqf_apply_s) against the reference msf_requant_s8 (msf_quant.c:
 * TFLite's MultiplyByQuantizedMultiplier) followed by the activation clamp.
 * Cases, for channels msf_rqf_dsp_ok accepts (2^30 <= mul < 2^31, shift -1 .. -MSF_RQF_MAX_E):
 * random accumulators in the int8 output range and anywhere, exact ties of the rounding
 * division (q = a 2^e +- 2^(e-1), both signs), SRDHM's own ties (acc mul = k 2^31 +- 2^30),
 * |acc| around 2^30 (where QADD saturates) and the int32 ends, the extreme multipliers and
 * shifts, zero points -128 / 127 and narrowed clamps; and the code generator's records'
 * regimes (msf_conv_s8_params.rqd): any multiplier with shifts down to -31 for |acc| <= 2^29,
 * and the constant records (0, 1, 2k).  Also: msf_rqf_dsp_ok rejects the
 * channels outside that range (shift 0, > 0, < -MSF_RQF_MAX_E, mul < 2^30).
 * rqfd_count[] records how many cases of each corner class ran.
 *
 * Freestanding (no stdio, static state): included by test_rqf.c (host, ASan + UBSan) and
 * rqf_diff_mcu.c (QEMU targets).  rqfd_run(seed, n) returns the number of differing cases. */
#include "msf_s8_requant.h"

enum { RQFD_DIV_TIE, RQFD_SRDHM_TIE, RQFD_SAT, RQFD_ENDS, RQFD_BOUNDED, RQFD_NCLASS };

static uint32_t rqfd_state = 1u;
static uint32_t rqfd_count[RQFD_NCLASS];

static uint32_t rqfd_u32(void)
{
    rqfd_state ^= rqfd_state << 13;
    rqfd_state ^= rqfd_state >> 17;
    rqfd_state ^= rqfd_state << 5;
    return rqfd_state;
}

static int32_t rqfd_rnd(int32_t lo, int32_t hi) /* inclusive */
{
    return (int32_t)((uint32_t)lo + rqfd_u32() % ((uint32_t)hi - (uint32_t)lo + 1u));
}

/* one case: 0 when every form equals the reference (msf_rqf_load / msf_rqf_apply_s only for
 * the channels msf_rqf_dsp_ok accepts at run time; the others are the records' bounded
 * regime, reached through msf_rqf_apply_dsp as the kernels reach a record) */
static uint32_t rqfd_case(int32_t acc, int32_t mul, int32_t shift, int32_t zp, int32_t lo,
                          int32_t hi)
{
    msf_requant rq;
    int32_t ref, e = -shift;
    uint32_t bad = 0;
    rq.mode = MSF_RQ_FIXED;
    rq.per_channel = 0;
    rq.fmul = 0;
    rq.qmul = &mul;
    rq.qshift = &shift;
    ref = msf_clamp_i32(msf_requant_s8(&rq, acc, 0, zp), lo, hi);
    bad += msf_rqf_model(acc, mul, e, (int32_t)(1u << (e - 1)), zp, lo, hi) != ref;
#if MSF_RQF_DSP
    bad += msf_rqf_apply_dsp(acc, mul, e, (int32_t)(1u << (e - 1)), zp, lo, hi) != ref;
    if (msf_rqf_dsp_ok(mul, shift)) {
        msf_rqf f;
        bad += !msf_rqf_load(&rq, 0, &f);
        bad += msf_rqf_apply_c(&f, acc, zp, lo, hi) != ref;
        bad += msf_rqf_apply_s(acc, mul, shift, zp, lo, hi) != ref;
    }
#endif
    return bad ? 1u : 0u;
}

/* a constant record (0, 1, 2k): k + zp, clamped, for any accumulator */
static uint32_t rqfd_const(int32_t acc, int32_t k, int32_t zp, int32_t lo, int32_t hi)
{
    const int32_t v = k + zp, want = v < lo ? lo : (v > hi ? hi : v);
    uint32_t bad = msf_rqf_model(acc, 0, 1, 2 * k, zp, lo, hi) != want;
#if MSF_RQF_DSP
    bad += msf_rqf_apply_dsp(acc, 0, 1, 2 * k, zp, lo, hi) != want;
#endif
    return bad ? 1u : 0u;
}

static uint32_t rqfd_run(uint32_t seed, uint32_t n)
{
    static const int32_t ends[] = {INT32_MIN, INT32_MIN + 1, -0x40000001, -0x40000000,
                                   -0x3FFFFFFF, -1, 0, 1, 0x3FFFFFFF, 0x40000000, 0x40000001,
                                   INT32_MAX - 1, INT32_MAX};
    static const int32_t muls[] = {0x40000000, 0x40000001, 0x5A827999, 0x7FFFFFFE, 0x7FFFFFFF};
    uint32_t i, fails = 0;
    int32_t k;
    rqfd_state = seed ? seed : 1u;
    /* the range msf_rqf_dsp_ok accepts, and nothing else */
    fails += !msf_rqf_dsp_ok(0x40000000, -1) + !msf_rqf_dsp_ok(0x7FFFFFFF, -MSF_RQF_MAX_E);
    fails += msf_rqf_dsp_ok(0x40000000, 0) + msf_rqf_dsp_ok(0x40000000, 1);
    fails += msf_rqf_dsp_ok(0x40000000, -MSF_RQF_MAX_E - 1) + msf_rqf_dsp_ok(0x3FFFFFFF, -5);
    fails += msf_rqf_dsp_ok(INT32_MIN, -5) + msf_rqf_dsp_ok(0, -5);
    for (i = 0; i < n; i++) {
        const uint32_t cls = i % 6u;
        const int32_t shift = -rqfd_rnd(1, MSF_RQF_MAX_E), e = -shift;
        const int32_t mul = (i & 7u) == 7u ? muls[rqfd_u32() % 5u] : rqfd_rnd(0x40000000, INT32_MAX);
        const int32_t zp = (i & 15u) == 3u ? -128 : ((i & 15u) == 5u ? 127 : rqfd_rnd(-128, 127));
        int32_t lo = -128, hi = 127, acc;
        if ((i & 3u) == 1u) {
            lo = rqfd_rnd(-128, 127);
            hi = rqfd_rnd(lo, 127);
        }
        if (cls == 0u) {          /* lands in (or near) the int8 range */
            const int64_t t = (int64_t)rqfd_rnd(-400, 400) * ((int64_t)1 << e); /* q ~ t */
            acc = (int32_t)((t * ((int64_t)1 << 31)) / mul + rqfd_rnd(-3, 3));
            if (t > INT32_MAX / 2 || t < INT32_MIN / 2) {
                acc = rqfd_rnd(-1000, 1000);
            }
        } else if (cls == 1u) {   /* anywhere */
            acc = (int32_t)rqfd_u32();
        } else if (cls == 2u) {   /* the rounding division's ties: q = a 2^e + 2^(e-1) (+- 1) */
            const int64_t q = (int64_t)rqfd_rnd(-300, 300) * ((int64_t)1 << e) +
                              ((int64_t)1 << (e - 1)) +
                              rqfd_rnd(-1, 1);
            /* acc with floor((acc mul + 2^30) / 2^31) == q: acc = ceil((q 2^31 - 2^30) / mul) */
            const int64_t num = q * ((int64_t)1 << 31) - ((int64_t)1 << 30);
            int64_t a = num >= 0 ? (num + mul - 1) / mul : -((-num) / mul);
            acc = (int32_t)(a > INT32_MAX ? INT32_MAX : (a < INT32_MIN ? INT32_MIN : a));
            rqfd_count[RQFD_DIV_TIE]++;
        } else if (cls == 3u) {   /* SRDHM's ties: acc mul = k 2^31 + 2^30 exactly, mul = 2^30 */
            const int32_t m = 0x40000000;
            acc = 2 * rqfd_rnd(-0x1FFFFFFF, 0x1FFFFFFF) + 1; /* odd acc: acc 2^30 = k 2^31 + 2^30 */
            fails += rqfd_case(acc, m, shift, zp, lo, hi);
            rqfd_count[RQFD_SRDHM_TIE]++;
        } else if (cls == 4u) {   /* around 2^30, where QADD saturates */
            k = rqfd_rnd(-64, 64);
            acc = (rqfd_u32() & 1u) ? 0x40000000 + k : -0x40000000 + k;
            rqfd_count[RQFD_SAT]++;
        } else {                  /* the int32 ends and the fixed points of each range */
            acc = ends[rqfd_u32() % 13u];
            rqfd_count[RQFD_ENDS]++;
        }
        fails += rqfd_case(acc, mul, shift, zp, lo, hi);
        /* the records' bounded regime: any multiplier, e up to 31, |acc| <= 2^29 (the
         * ends included), and the constant records */
        {
            const int32_t e2 = rqfd_rnd(1, 31), m2 = rqfd_rnd(0, INT32_MAX);
            const int32_t a2 = (i & 7u) == 0u ? ((i & 8u) ? 0x20000000 : -0x20000000)
                                              : rqfd_rnd(-0x20000000, 0x20000000);
            fails += rqfd_case(a2, m2, -e2, zp, lo, hi);
            fails += rqfd_const((int32_t)rqfd_u32(), rqfd_rnd(-300, 300), zp, lo, hi);
            rqfd_count[RQFD_BOUNDED]++;
        }
    }
    return fails;
}
