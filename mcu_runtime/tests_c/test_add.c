/* Unit test: msf_add_s8 / msf_add_f32 (both modes, in place, views). */
#include "msf_test.h"

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
