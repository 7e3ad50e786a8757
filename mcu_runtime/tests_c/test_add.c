/* Unit test: msf_add_s8 / msf_add_f32 (all modes, in place, views) and msf_add_s8's subtract
 * mode (p.sub: TFLite's SUB, scaled1 - scaled2), fast path against the reference loop; the
 * broadcasting ADD / SUB (msf_mul_s8 with msf_binary_s8_params) against msf_add_s8 on the
 * materialised operand. */
#include "msf_test.h"
#include "msf_s8_opsfast.h"

int main(void)
{
    int8_t a[6] = {10, 20, -30, 100, 127, -128}, b[6] = {1, 2, 3, 4, 5, 6}, y[6], a2[6];
    float af[6] = {1, 2, 3, 4, 5, 6}, bf[6] = {-1, 1, -1, 1, -1, 10}, yf[6];
    msf_view va = mkview(a, 1, 3, 2), vb = mkview(b, 1, 3, 2), vy = mkview(y, 1, 3, 2);
    msf_add_s8_params p;
    msf_act_f32_params q;
    int i;

    memset(&p, 0, sizeof p);
    p.mode = MSF_RQ_FLOAT;
    p.act_min = -128;
    p.act_max = 127;
    /* scales a 0.5, b 0.25, out 1, zero points 0: y = rne(a/2 + b/4) */
    msf_add_s8_float_params(0.5f, 0, 0.25f, 0, 1.0f, 0, &p.mul1, &p.mul2, &p.fbias);
    msf_add_s8(&p, &va, &vb, &vy, 0, 1, 0, 3);
    CHECK_EQ_INT(y[0], 5);    /* 5.25 */
    CHECK_EQ_INT(y[1], 10);   /* 10.5 -> 10 */
    CHECK_EQ_INT(y[2], -14);  /* -14.25 */
    CHECK_EQ_INT(y[3], 51);   /* 51 */
    CHECK_EQ_INT(y[4], 65);   /* 63.5 + 1.25 = 64.75 */
    /* in place (out aliases in1) gives the same bytes */
    memcpy(a2, a, sizeof a);
    {
        msf_view v2 = mkview(a2, 1, 3, 2);
        msf_add_s8(&p, &v2, &vb, &v2, 0, 1, 0, 3);
        CHECK(memcmp(a2, y, sizeof y) == 0);
    }
    /* zero points and saturation */
    msf_add_s8_float_params(1.0f, 10, 1.0f, -5, 0.5f, 3, &p.mul1, &p.mul2, &p.fbias);
    p.in1_zp = 10;
    p.in2_zp = -5;
    p.out_zp = 3;
    msf_add_s8(&p, &va, &vb, &vy, 0, 1, 0, 3);
    CHECK_EQ_INT(y[0], 2 * (0 + 6) + 3);
    CHECK_EQ_INT(y[4], 127);
    CHECK_EQ_INT(y[5], -128);
    /* FIXED mode: scales 0.5 / 0.25 / out 1 -> twice = 1.0; m1 = .5, m2 = .25, mo = 2^-20 */
    p.mode = MSF_RQ_FIXED;
    p.in1_zp = p.in2_zp = p.out_zp = 0;
    p.left_shift = 20;
    p.in1_mul = 1 << 30;
    p.in1_shift = 0;
    p.in2_mul = 1 << 30;
    p.in2_shift = -1;
    p.out_mul = 1 << 30;
    p.out_shift = -19;
    msf_add_s8(&p, &va, &vb, &vy, 0, 1, 0, 3);
    CHECK_EQ_INT(y[0], 5);
    CHECK_EQ_INT(y[1], 11);   /* 10.5 rounds away from zero */
    CHECK_EQ_INT(y[2], -14);
    for (i = 0; i < 6; i++) CHECK(y[i] >= -128 && y[i] <= 127);
    /* SUB, the same parameters: y = RDBPOT(SRDHM(a 2^19 - b 2^18, 2^30), 19) = a/2 - b/4 rounded
     * half away from zero (SRDHM by 2^30 halves exactly here) */
    p.sub = 1;
    msf_add_s8(&p, &va, &vb, &vy, 0, 1, 0, 3);
    CHECK_EQ_INT(y[0], 5);    /* 4.75 */
    CHECK_EQ_INT(y[1], 10);   /* 9.5 -> 10 */
    CHECK_EQ_INT(y[2], -16);  /* -15.75 */
    CHECK_EQ_INT(y[3], 49);
    CHECK_EQ_INT(y[4], 62);   /* 62.25 */
    CHECK_EQ_INT(y[5], -66);  /* -65.5 -> -66 */
    /* in place over either input */
    memcpy(a2, a, sizeof a);
    {
        int8_t b2[6];
        msf_view v2 = mkview(a2, 1, 3, 2), w2;
        msf_add_s8(&p, &v2, &vb, &v2, 0, 1, 0, 3);
        CHECK(memcmp(a2, y, sizeof y) == 0);
        memcpy(b2, b, sizeof b);
        w2 = mkview(b2, 1, 3, 2);
        msf_add_s8(&p, &va, &w2, &w2, 0, 1, 0, 3);
        CHECK(memcmp(b2, y, sizeof y) == 0);
    }
    /* SRDHM ties: no left shift, input multipliers 2^30 (SRDHM(v, 2^30) = floor((v + 1) / 2),
     * ties upwards), output multiplier 2^31 - 1 (the identity on small values).  a = 4, b = 1:
     * 2 - 1 = 1, while adding the negated b would give 2 + SRDHM(-1) = 2 + 0 = 2. */
    {
        int8_t sa_[4] = {4, -3, 5, -128}, sb_[4] = {1, -1, -3, 127}, sy[4], sr[4];
        msf_view x1 = mkview(sa_, 1, 4, 1), x2 = mkview(sb_, 1, 4, 1), o = mkview(sy, 1, 4, 1);
        msf_add_s8_params t;
        memset(&t, 0, sizeof t);
        t.mode = MSF_RQ_FIXED;
        t.sub = 1;
        t.act_min = -128;
        t.act_max = 127;
        t.in1_mul = t.in2_mul = 1 << 30;
        t.out_mul = 0x7FFFFFFF;
        msf_add_s8(&t, &x1, &x2, &o, 0, 1, 0, 4);
        CHECK_EQ_INT(sy[0], 1);     /* 2 - 1 */
        CHECK_EQ_INT(sy[1], -1);    /* SRDHM(-3) = -1, SRDHM(-1) = 0 */
        CHECK_EQ_INT(sy[2], 4);     /* 3 - (-1) */
        CHECK_EQ_INT(sy[3], -128);  /* -64 - 64 */
        o.data = sr;
        msf_add_s8_ref(&t, &x1, &x2, &o, 0, 1, 0, 4);
        CHECK(memcmp(sy, sr, sizeof sy) == 0);
        /* a fused clamp and an output zero point, both saturation ends */
        t.out_zp = 100;
        t.act_min = -20;
        t.act_max = 102;
        o.data = sy;
        msf_add_s8(&t, &x1, &x2, &o, 0, 1, 0, 4);
        CHECK_EQ_INT(sy[0], 101);
        CHECK_EQ_INT(sy[1], 99);
        CHECK_EQ_INT(sy[2], 102);   /* 104 clamped */
        CHECK_EQ_INT(sy[3], -20);   /* -28 clamped */
    }
    /* fast path == reference loop in subtract mode, random parameters (both requantisations) */
    {
        int8_t ra[64], rb[64], yf[64], yr[64];
        msf_view x1 = mkview(ra, 4, 4, 4), x2 = mkview(rb, 4, 4, 4), o = mkview(yf, 4, 4, 4);
        int k, n;
        for (k = 0; k < 200; k++) {
            msf_add_s8_params t;
            memset(&t, 0, sizeof t);
            t.mode = (k & 1) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
            t.sub = 1;
            t.in1_zp = rnd(-128, 127);
            t.in2_zp = rnd(-128, 127);
            t.out_zp = rnd(-128, 127);
            t.act_min = rnd(-128, 0);
            t.act_max = rnd(t.act_min, 127);
            t.left_shift = 20;
            t.in1_mul = 0x40000000 + rnd(0, 0x3FFFFFFF);
            t.in2_mul = 0x40000000 + rnd(0, 0x3FFFFFFF);
            t.out_mul = 0x40000000 + rnd(0, 0x3FFFFFFF);
            t.in1_shift = rnd(-3, 0);
            t.in2_shift = rnd(-3, 0);
            t.out_shift = rnd(-24, -15);
            t.mul1 = (float)rnd(1, 3000) * 1e-3f;
            t.mul2 = (float)rnd(1, 3000) * 1e-3f;
            t.fbias = (float)rnd(-200000, 200000) * 1e-3f;
            for (n = 0; n < 64; n++) {
                ra[n] = (int8_t)rnd(-128, 127);
                rb[n] = (int8_t)rnd(-128, 127);
            }
            o.data = yf;
            msf_add_s8(&t, &x1, &x2, &o, 0, 4, 0, 4);
            o.data = yr;
            msf_add_s8_ref(&t, &x1, &x2, &o, 0, 4, 0, 4);
            CHECK(memcmp(yf, yr, sizeof yf) == 0);
        }
    }
    /* broadcasting ADD / SUB (msf_mul_s8 with an msf_binary_s8_params): a 1 x 1 x C and an
     * H x W x 1 second operand give the bytes of msf_add_s8 on the operand materialised to the
     * full shape (every mode, add and subtract, both operand orders) */
    {
        int8_t m[24], ch[4], px[6], full[24], yb[24], yr[24];
        msf_view vm = mkview(m, 2, 3, 4), vch = mkview(ch, 1, 1, 4), vpx = mkview(px, 2, 3, 1);
        msf_view vf = mkview(full, 2, 3, 4), vyb = mkview(yb, 2, 3, 4), vyr = mkview(yr, 2, 3, 4);
        msf_binary_s8_params bp;
        int k, n, bc;
        for (k = 0; k < 96; k++) {
            memset(&bp, 0, sizeof bp);
            bp.base.mode = MSF_ELT_BINARY_ADD;
            bp.add.mode = (k % 3 == 0) ? MSF_RQ_FIXED : (k % 3 == 1) ? MSF_RQ_FLOAT
                                                                      : MSF_RQ_FLOAT_QDQ;
            bp.add.sub = (k >> 2) & 1;
            bp.reverse = (k >> 3) & 1;
            bc = (k >> 4) & 1;
            bp.base.bcast = bc ? MSF_BCAST_PIXEL : MSF_BCAST_CHANNEL;
            bp.base.act_min = bp.add.act_min = rnd(-128, 0);
            bp.base.act_max = bp.add.act_max = rnd(bp.base.act_min, 127);
            bp.add.in1_zp = rnd(-128, 127);
            bp.add.in2_zp = rnd(-128, 127);
            bp.add.out_zp = rnd(-128, 127);
            bp.add.left_shift = 20;
            bp.add.in1_mul = 0x40000000 + rnd(0, 0x3FFFFFFF);
            bp.add.in2_mul = 0x40000000 + rnd(0, 0x3FFFFFFF);
            bp.add.out_mul = 0x40000000 + rnd(0, 0x3FFFFFFF);
            bp.add.in1_shift = rnd(-3, 0);
            bp.add.in2_shift = rnd(-3, 0);
            bp.add.out_shift = rnd(-24, -15);
            bp.add.mul1 = (float)rnd(1, 3000) * 1e-3f;
            bp.add.mul2 = (float)rnd(1, 3000) * 1e-3f;
            bp.add.fbias = bp.add.mode == MSF_RQ_FLOAT_QDQ ? (float)rnd(1, 3000) * 1e-3f
                                                           : (float)rnd(-200000, 200000) * 1e-3f;
            for (n = 0; n < 24; n++) m[n] = (int8_t)rnd(-128, 127);
            for (n = 0; n < 4; n++) ch[n] = (int8_t)rnd(-128, 127);
            for (n = 0; n < 6; n++) px[n] = (int8_t)rnd(-128, 127);
            for (n = 0; n < 24; n++) full[n] = bc ? px[n / 4] : ch[n % 4];
            msf_mul_s8(&bp.base, &vm, bc ? &vpx : &vch, &vyb, 0, 2, 0, 3);
            if (bp.reverse) {
                msf_add_s8_ref(&bp.add, &vf, &vm, &vyr, 0, 2, 0, 3);
            } else {
                msf_add_s8_ref(&bp.add, &vm, &vf, &vyr, 0, 2, 0, 3);
            }
            CHECK(memcmp(yb, yr, sizeof yb) == 0);
        }
    }
    /* the QDQ mode by hand: scales 0.5 / 0.25 / out 0.5, zero points 0: y = rne((a/2 + b/4) * 2) */
    {
        int8_t qa[3] = {3, -5, 100}, qb[3] = {1, 2, 127}, qy[3];
        msf_view x1 = mkview(qa, 1, 3, 1), x2 = mkview(qb, 1, 3, 1), o = mkview(qy, 1, 3, 1);
        msf_add_s8_params t;
        memset(&t, 0, sizeof t);
        t.mode = MSF_RQ_FLOAT_QDQ;
        t.act_min = -128;
        t.act_max = 127;
        t.mul1 = 0.5f;
        t.mul2 = 0.25f;
        t.fbias = 0.5f;
        msf_add_s8(&t, &x1, &x2, &o, 0, 1, 0, 3);
        CHECK_EQ_INT(qy[0], 4);     /* 3.5 -> 4 (half to even) */
        CHECK_EQ_INT(qy[1], -4);    /* -4 */
        CHECK_EQ_INT(qy[2], 127);   /* 163.5 saturates */
        t.sub = 1;
        msf_add_s8(&t, &x1, &x2, &o, 0, 1, 0, 3);
        CHECK_EQ_INT(qy[0], 2);     /* 2.5 -> 2 */
        CHECK_EQ_INT(qy[1], -6);    /* -6 */
        CHECK_EQ_INT(qy[2], 36);    /* 36.5 -> 36 */
    }
    p.sub = 0;
    /* float */
    q.act_min = 0.0f;
    q.act_max = 6.0f;
    {
        msf_view x1 = mkview(af, 1, 3, 2), x2 = mkview(bf, 1, 3, 2), o = mkview(yf, 1, 3, 2);
        msf_add_f32(&q, &x1, &x2, &o, 0, 1, 0, 3);
        CHECK(yf[0] == 0.0f && yf[1] == 3.0f && yf[2] == 2.0f && yf[5] == 6.0f);
    }
    TEST_DONE();
}
