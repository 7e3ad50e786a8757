/* Unit test: rounding, software FMA, gemmlowp / TFLite fixed-point primitives, requantisation. */
#include "msf_test.h"

static float f_from_bits(unsigned int u)
{
    union { float f; unsigned int u; } p;
    p.u = u;
    return p.f;
}

int main(void)
{
    msf_requant rq;
    float fm[2] = {0.5f, 0.25f};
    int32_t qm[1], qs[1];

    /* round half to even */
    CHECK_EQ_INT(msf_round_half_even(0.5f), 0);
    CHECK_EQ_INT(msf_round_half_even(1.5f), 2);
    CHECK_EQ_INT(msf_round_half_even(2.5f), 2);
    CHECK_EQ_INT(msf_round_half_even(-0.5f), 0);
    CHECK_EQ_INT(msf_round_half_even(-1.5f), -2);
    CHECK_EQ_INT(msf_round_half_even(-2.5f), -2);
    CHECK_EQ_INT(msf_round_half_even(2.4999998f), 2);
    CHECK_EQ_INT(msf_round_half_even(-127.50001f), -128);
    CHECK_EQ_INT(msf_round_half_even(8388607.5f), 8388608);
    CHECK_EQ_INT(msf_round_half_even(1e9f), 1000000000);

    /* fused vs unfused: (1+2^-12)^2 - 1 = 2^-11 + 2^-24 exactly */
    {
        float a = 1.0f + f_from_bits(0x39800000u); /* 2^-12 */
        CHECK(msf_fmaf(a, a, -1.0f) == f_from_bits(0x3A000000u) + f_from_bits(0x33800000u));
        /* product on a float32 midpoint + tiny addend: double rounding must not happen */
        CHECK(msf_fmaf(a, a, f_from_bits(0x21800000u)) /* +2^-60 */ ==
              1.0f + f_from_bits(0x3A000000u) + f_from_bits(0x34000000u)); /* 1+2^-11+2^-23 */
        CHECK(msf_fmaf(a, a, -f_from_bits(0x21800000u)) == 1.0f + f_from_bits(0x3A000000u));
        CHECK(msf_fmaf(-a, a, -f_from_bits(0x21800000u)) ==
              -(1.0f + f_from_bits(0x3A000000u) + f_from_bits(0x34000000u)));
        CHECK(msf_fmaf(3.0f, 0.5f, 0.25f) == 1.75f);
    }

    /* gemmlowp primitives */
    CHECK_EQ_INT(msf_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    CHECK_EQ_INT(msf_srdhm(1 << 30, 1 << 30), 1 << 29);
    CHECK_EQ_INT(msf_srdhm(0, 12345), 0);
    CHECK_EQ_INT(msf_rdbpot(5, 1), 3);
    CHECK_EQ_INT(msf_rdbpot(-5, 1), -3);
    CHECK_EQ_INT(msf_rdbpot(6, 2), 2);
    CHECK_EQ_INT(msf_rdbpot(-6, 2), -2);
    CHECK_EQ_INT(msf_rdbpot(-5, 2), -1);
    CHECK_EQ_INT(msf_rdbpot(7, 0), 7);
    CHECK_EQ_INT(msf_mbqm(100, 1 << 30, 0), 50);
    CHECK_EQ_INT(msf_mbqm(100, 1 << 30, 1), 100);
    CHECK_EQ_INT(msf_mbqm(1000, 1 << 30, -3), 63);  /* 62.5 rounds away from zero */
    CHECK_EQ_INT(msf_mbqm(-1000, 1 << 30, -3), -63);
    /* QuantizeMultiplier(0.003) = (1649267442, -8):  0.003 = 0.768 * 2^-8 */
    CHECK_EQ_INT(msf_mbqm(100000, 1649267442, -8), 300);

    /* requantisation, FLOAT mode: per channel, ties to even, clamps with zero point */
    rq.mode = MSF_RQ_FLOAT;
    rq.per_channel = 1;
    rq.fmul = fm;
    rq.qmul = NULL;
    rq.qshift = NULL;
    CHECK_EQ_INT(msf_requant_s8(&rq, 5, 0, 0), 2);     /* 2.5 -> 2 */
    CHECK_EQ_INT(msf_requant_s8(&rq, 7, 0, 0), 4);     /* 3.5 -> 4 */
    CHECK_EQ_INT(msf_requant_s8(&rq, -5, 0, 10), 8);   /* -2.5 -> -2, +10 */
    CHECK_EQ_INT(msf_requant_s8(&rq, 6, 1, 0), 2);     /* 1.5 -> 2 */
    CHECK_EQ_INT(msf_requant_s8(&rq, 1000, 0, 0), 127);
    CHECK_EQ_INT(msf_requant_s8(&rq, 1000, 0, -100), 127);
    CHECK_EQ_INT(msf_requant_s8(&rq, -1000, 0, 100), -128);
    rq.per_channel = 0;
    CHECK_EQ_INT(msf_requant_s8(&rq, 6, 1, 0), 3);     /* uses entry 0 */

    /* FIXED mode */
    qm[0] = 1 << 30;
    qs[0] = -1; /* x 0.25 */
    rq.mode = MSF_RQ_FIXED;
    rq.qmul = qm;
    rq.qshift = qs;
    CHECK_EQ_INT(msf_requant_s8(&rq, 10, 0, 0), 3);    /* 2.5 -> 3 (away from zero) */
    CHECK_EQ_INT(msf_requant_s8(&rq, -10, 0, 1), -2);  /* -2.5 -> -3, +1 */
    CHECK_EQ_INT(msf_requant_s8(&rq, 4000, 0, 0), 127);

    /* add parameters */
    {
        float m1, m2, fb;
        msf_add_s8_float_params(0.5f, 3, 0.25f, -4, 1.0f, 7, &m1, &m2, &fb);
        CHECK(m1 == 0.5f && m2 == 0.25f && fb == 7.0f - (1.5f - 1.0f));
    }

    /* canaries */
    {
        uint8_t buf[64];
        msf_canary_fill(buf, sizeof buf, 7u);
        CHECK_EQ_INT(msf_canary_check(buf, sizeof buf, 7u), -1);
        buf[17] ^= 1u;
        CHECK_EQ_INT(msf_canary_check(buf, sizeof buf, 7u), 17);
    }
    TEST_DONE();
}
