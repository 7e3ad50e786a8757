/* Unit test: msf_dwconv2d_s8 / _f32 equal the grouped conv with groups == C; views. */
#include "msf_test.h"

static void dw_fn(const void *p, const msf_view *in, msf_view *out, int32_t a, int32_t b,
                  int32_t c, int32_t d)
{
    msf_dwconv2d_s8((const msf_conv_s8_params *)p, in, out, a, b, c, d);
}

int main(void)
{
    static int8_t x[MSF_T_MAX], wt[MSF_T_MAX], y1[MSF_T_MAX], y2[MSF_T_MAX];
    static float xf[MSF_T_MAX], wf[MSF_T_MAX], yf1[MSF_T_MAX], yf2[MSF_T_MAX];
    static int32_t bias[64];
    static float fm[64], bf[64];
    int t, i;
    /* hand example: 2 channels, 1x2 kernel */
    {
        int8_t hx[6] = {1, 10, 2, 20, 3, 30}, hw[4] = {1, 2, -1, 1}, hy[4];
        float m[2] = {1.0f, 1.0f};
        msf_conv_s8_params p;
        msf_view vi = mkview(hx, 1, 3, 2), vo = mkview(hy, 1, 2, 2);
        memset(&p, 0, sizeof p);
        p.win = mkwin(1, 2, 1, 1, 0, 0, 0, 0);
        p.act_min = -128;
        p.act_max = 127;
        p.weights = hw;
        p.rq.fmul = m;
        p.rq.per_channel = 1;
        msf_dwconv2d_s8(&p, &vi, &vo, 0, 1, 0, 2);
        CHECK_EQ_INT(hy[0], 1 + 4);    /* c0: 1*1 + 2*2 */
        CHECK_EQ_INT(hy[1], -10 + 20); /* c1: -1*10 + 1*20 */
        CHECK_EQ_INT(hy[2], 2 + 6);
        CHECK_EQ_INT(hy[3], -20 + 30);
    }
    for (t = 0; t < 60; t++) {
        int kh = rnd(1, 5), kw = rnd(1, 5), sh = rnd(1, 3), sw = rnd(1, 3);
        int pt = rnd(0, kh - 1), pl = rnd(0, kw - 1), pb = rnd(0, kh - 1), pr = rnd(0, kw - 1);
        int H = rnd(kh > pt + pb ? kh - pt - pb : 1, 9), W = rnd(kw > pl + pr ? kw - pl - pr : 1, 9);
        int C = rnd(1, 8);
        int Ho = out_extent(H, kh, sh, pt, pb), Wo = out_extent(W, kw, sw, pl, pr);
        msf_window w = mkwin(kh, kw, sh, sw, pt, pl, pb, pr);
        msf_conv_s8_params p;
        msf_conv_f32_params pf;
        msf_view vi, vo;
        for (i = 0; i < H * W * C; i++) {
            x[i] = (int8_t)rnd(-128, 127);
            xf[i] = (float)rnd(-100, 100) / 16.0f;
        }
        for (i = 0; i < C * kh * kw; i++) {
            wt[i] = (int8_t)rnd(-127, 127);
            wf[i] = (float)rnd(-100, 100) / 32.0f;
        }
        for (i = 0; i < C; i++) {
            bias[i] = rnd(-500, 500);
            bf[i] = (float)rnd(-10, 10);
            fm[i] = 0.002f * (float)rnd(1, 20);
        }
        memset(&p, 0, sizeof p);
        p.win = w;
        p.groups = C;
        p.in_zp = rnd(-128, 127);
        p.out_zp = rnd(-128, 127);
        p.act_min = rnd(-128, 0);
        p.act_max = rnd(0, 127);
        p.weights = wt;
        p.bias = (t % 5) ? bias : NULL;
        p.rq.mode = MSF_RQ_FLOAT;
        p.rq.per_channel = 1;
        p.rq.fmul = fm;
        vi = mkview(x, H, W, C);
        vo = mkview(y1, Ho, Wo, C);
        msf_dwconv2d_s8(&p, &vi, &vo, 0, Ho, 0, Wo);
        vo.data = y2;
        msf_conv2d_s8(&p, &vi, &vo, 0, Ho, 0, Wo);
        CHECK(memcmp(y1, y2, (size_t)(Ho * Wo * C)) == 0);
        check_views_s8(dw_fn, &p, &w, x, H, W, C, C);
        /* float: dw == grouped conv exactly (same summation order) */
        memset(&pf, 0, sizeof pf);
        pf.win = w;
        pf.groups = C;
        pf.act_min = -1e30f;
        pf.act_max = 1e30f;
        pf.weights = wf;
        pf.bias = bf;
        vi = mkview(xf, H, W, C);
        vo = mkview(yf1, Ho, Wo, C);
        msf_dwconv2d_f32(&pf, &vi, &vo, 0, Ho, 0, Wo);
        vo.data = yf2;
        msf_conv2d_f32(&pf, &vi, &vo, 0, Ho, 0, Wo);
        CHECK(memcmp(yf1, yf2, sizeof(float) * (size_t)(Ho * Wo * C)) == 0);
    }
    TEST_DONE();
}
