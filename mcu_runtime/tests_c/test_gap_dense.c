/* Unit test: msf_gap_* and msf_dense_* (hand values, both requantisation modes). */
#include "msf_test.h"

int main(void)
{
    /* GAP over 2x2x2: channel 0 {1,2,3,4}, channel 1 {-4,-5,-6,-7} */
    int8_t x[8] = {1, -4, 2, -5, 3, -6, 4, -7}, y[2];
    float xf[8] = {1, -4, 2, -5, 3, -6, 4, -7}, yf[3];
    msf_view vi = mkview(x, 2, 2, 2), vo = mkview(y, 1, 1, 2);
    msf_view vif = mkview(xf, 2, 2, 2), vof = mkview(yf, 1, 1, 2);
    msf_gap_s8_params g;
    float fm[3] = {0.25f, 1.0f, 0.5f};
    int32_t qm[3] = {1 << 30, 1 << 30, 1 << 30}, qs[3] = {1, 0, 1};
    msf_act_f32_params a;

    memset(&g, 0, sizeof g);
    g.act_min = -128;
    g.act_max = 127;
    g.rq.mode = MSF_RQ_FLOAT;
    g.rq.fmul = fm; /* x_scale / (y_scale * 4) with x_scale == y_scale */
    msf_gap_s8(&g, &vi, &vo);
    CHECK_EQ_INT(y[0], 2);   /* 10 / 4 = 2.5 -> 2 */
    CHECK_EQ_INT(y[1], -6);  /* -22 / 4 = -5.5 -> -6 */
    g.in_zp = 1;
    g.out_zp = 1;
    msf_gap_s8(&g, &vi, &vo);
    CHECK_EQ_INT(y[0], 3);   /* (10-4)/4 = 1.5 -> 2, +1 */
    g.rq.mode = MSF_RQ_FIXED; /* TFLM MEAN: multiplier 1.0 */
    g.rq.qmul = qm;
    g.rq.qshift = qs;
    msf_gap_s8(&g, &vi, &vo);
    CHECK_EQ_INT(y[0], 3);   /* 6 -> round(6/4 = 1.5) = 2 (away), +1 */
    CHECK_EQ_INT(y[1], -6);  /* -26 -> -6.5 -> -7, +1 */
    memset(&a, 0, sizeof a);
    a.act_min = -1e30f;
    a.act_max = 1e30f;
    msf_gap_f32(&a, &vif, &vof);
    CHECK(yf[0] == 2.5f && yf[1] == -5.5f);

    /* dense: input 1x2x2 (K = 4) -> 3 outputs */
    {
        int8_t dx[4] = {1, 2, 3, 4}, wt[12] = {1, 1, 1, 1, 1, -1, 1, -1, 0, 0, 0, 2}, dy[3];
        int32_t bias[3] = {0, 1, -1};
        float dxf[4] = {1, 2, 3, 4}, wf[12] = {1, 1, 1, 1, 1, -1, 1, -1, 0, 0, 0, 2};
        msf_dense_s8_params d;
        msf_dense_f32_params df;
        msf_view a1 = mkview(dx, 1, 2, 2), b1 = mkview(dy, 1, 1, 3);
        msf_view a2 = mkview(dxf, 1, 2, 2), b2 = mkview(yf, 1, 1, 3);
        memset(&d, 0, sizeof d);
        d.act_min = -128;
        d.act_max = 127;
        d.weights = wt;
        d.bias = bias;
        d.rq.mode = MSF_RQ_FLOAT;
        d.rq.per_channel = 1;
        d.rq.fmul = fm;
        msf_dense_s8(&d, &a1, &b1);
        CHECK_EQ_INT(dy[0], 2);   /* 10 * .25 = 2.5 -> 2 */
        CHECK_EQ_INT(dy[1], -1);  /* (-2 + 1) * 1 */
        CHECK_EQ_INT(dy[2], 4);   /* (8 - 1) * .5 = 3.5 -> 4 */
        d.in_zp = 1;              /* x - 1 = {0,1,2,3} */
        msf_dense_s8(&d, &a1, &b1);
        CHECK_EQ_INT(dy[0], 2);   /* 6 * .25 = 1.5 -> 2 */
        memset(&df, 0, sizeof df);
        df.act_min = 0.0f;
        df.act_max = 6.0f;
        df.weights = wf;
        msf_dense_f32(&df, &a2, &b2);
        CHECK(yf[0] == 6.0f && yf[1] == 0.0f && yf[2] == 6.0f);
    }
    TEST_DONE();
}
