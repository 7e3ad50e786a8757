/* Unit test: msf_conv2d_s8 / msf_conv2d_f32 (hand values, padding, groups, views). */
#include "msf_test.h"

static void conv_fn(const void *p, const msf_view *in, msf_view *out, int32_t a, int32_t b,
                    int32_t c, int32_t d)
{
    msf_conv2d_s8((const msf_conv_s8_params *)p, in, out, a, b, c, d);
}

static msf_conv_s8_params mkconv(msf_window w, int groups, int in_zp, int out_zp,
                                 const int8_t *wt, const int32_t *bias, const float *fmul)
{
    msf_conv_s8_params p;
    memset(&p, 0, sizeof p);
    p.win = w;
    p.groups = groups;
    p.in_zp = in_zp;
    p.out_zp = out_zp;
    p.act_min = -128;
    p.act_max = 127;
    p.weights = wt;
    p.bias = bias;
    p.rq.mode = MSF_RQ_FLOAT;
    p.rq.per_channel = 1;
    p.rq.fmul = fmul;
    return p;
}

int main(void)
{
    /* hand example: 3x3x1 input, 2x2 kernel of ones, stride 1, no pad, multiplier 1 */
    {
        int8_t x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wt[4] = {1, 1, 1, 1}, y[4];
        float fm[1] = {1.0f};
        int32_t bias[1] = {10};
        msf_conv_s8_params p = mkconv(mkwin(2, 2, 1, 1, 0, 0, 0, 0), 1, 0, 0, wt, bias, fm);
        msf_view vi = mkview(x, 3, 3, 1), vo = mkview(y, 2, 2, 1);
        msf_conv2d_s8(&p, &vi, &vo, 0, 2, 0, 2);
        CHECK_EQ_INT(y[0], 22);
        CHECK_EQ_INT(y[1], 26);
        CHECK_EQ_INT(y[2], 34);
        CHECK_EQ_INT(y[3], 38);
        /* relu6-like clamp and zero points: in_zp 1 subtracts 4 per full window */
        p.in_zp = 1;
        p.out_zp = -5;
        p.act_min = -5;
        p.act_max = 25;
        msf_conv2d_s8(&p, &vi, &vo, 0, 2, 0, 2);
        CHECK_EQ_INT(y[0], 13);  /* 10 + 12 - 4 - 5 */
        CHECK_EQ_INT(y[3], 25);  /* 10 + 28 - 4 - 5 = 29 -> clamp 25 */
    }
    /* padding taps equal the input zero point: same as convolving an explicitly padded input */
    {
        int8_t x[4 * 5 * 3], xp[7 * 7 * 3], wt[2 * 3 * 2 * 3], y1[64 * 2], y2[64 * 2];
        int32_t bias[2] = {-7, 300};
        float fm[2] = {0.0123f, 0.0071f};
        int i, yy, xx, c;
        msf_conv_s8_params p1, p2;
        msf_view v1, v2, o1, o2;
        for (i = 0; i < (int)sizeof x; i++) x[i] = (int8_t)rnd(-128, 127);
        for (i = 0; i < (int)sizeof wt; i++) wt[i] = (int8_t)rnd(-127, 127);
        /* pads top 2, left 1, bottom 1, right 1 -> padded 7 x 7 */
        for (i = 0; i < (int)sizeof xp; i++) xp[i] = 9; /* in_zp */
        for (yy = 0; yy < 4; yy++)
            for (xx = 0; xx < 5; xx++)
                for (c = 0; c < 3; c++) xp[((yy + 2) * 7 + xx + 1) * 3 + c] = x[(yy * 5 + xx) * 3 + c];
        p1 = mkconv(mkwin(3, 2, 2, 1, 2, 1, 1, 1), 1, 9, 3, wt, bias, fm);
        p2 = mkconv(mkwin(3, 2, 2, 1, 0, 0, 0, 0), 1, 9, 3, wt, bias, fm);
        v1 = mkview(x, 4, 5, 3);
        v2 = mkview(xp, 7, 7, 3);
        o1 = mkview(y1, 3, 6, 2);
        o2 = mkview(y2, 3, 6, 2);
        msf_conv2d_s8(&p1, &v1, &o1, 0, 3, 0, 6);
        msf_conv2d_s8(&p2, &v2, &o2, 0, 3, 0, 6);
        CHECK(memcmp(y1, y2, 3 * 6 * 2) == 0);
    }
    /* random geometries (incl. groups) through sub-regions and ring views */
    {
        static int8_t x[MSF_T_MAX], wt[MSF_T_MAX];
        static int32_t bias[64];
        static float fm[64];
        int t, i;
        for (t = 0; t < 60; t++) {
            int kh = rnd(1, 4), kw = rnd(1, 4), sh = rnd(1, 3), sw = rnd(1, 3);
            int pt = rnd(0, kh - 1), pl = rnd(0, kw - 1), pb = rnd(0, kh - 1), pr = rnd(0, kw - 1);
            int H = rnd(kh > pt + pb ? kh - pt - pb : 1, 9), W = rnd(kw > pl + pr ? kw - pl - pr : 1, 9);
            int g = rnd(1, 3), cin = g * rnd(1, 3), cout = g * rnd(1, 3);
            msf_window w = mkwin(kh, kw, sh, sw, pt, pl, pb, pr);
            msf_conv_s8_params p;
            for (i = 0; i < H * W * cin; i++) x[i] = (int8_t)rnd(-128, 127);
            for (i = 0; i < cout * kh * kw * (cin / g); i++) wt[i] = (int8_t)rnd(-127, 127);
            for (i = 0; i < cout; i++) {
                bias[i] = rnd(-2000, 2000);
                fm[i] = 0.001f * (float)rnd(1, 30);
            }
            p = mkconv(w, g, rnd(-128, 127), rnd(-128, 127), wt, bias, fm);
            p.w_zp = (t % 4 == 0) ? rnd(-5, 5) : 0;
            if (t % 2) {
                static int32_t qm[64], qs[64];
                for (i = 0; i < cout; i++) {
                    qm[i] = (1 << 30) + rnd(0, 1 << 20);
                    qs[i] = -rnd(3, 9);
                }
                p.rq.mode = MSF_RQ_FIXED;
                p.rq.qmul = qm;
                p.rq.qshift = qs;
            }
            check_views_s8(conv_fn, &p, &w, x, H, W, cin, cout);
        }
    }
    /* float conv: hand example with bias and relu6 clamp */
    {
        float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wt[4] = {0.5f, 0.5f, 0.5f, 0.5f}, y[4];
        float bias[1] = {-10.0f};
        msf_conv_f32_params p;
        msf_view vi = mkview(x, 3, 3, 1), vo = mkview(y, 2, 2, 1);
        memset(&p, 0, sizeof p);
        p.win = mkwin(2, 2, 1, 1, 0, 0, 0, 0);
        p.groups = 1;
        p.act_min = 0.0f;
        p.act_max = 6.0f;
        p.weights = wt;
        p.bias = bias;
        msf_conv2d_f32(&p, &vi, &vo, 0, 2, 0, 2);
        CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 2.0f && y[3] == 4.0f);
    }
    TEST_DONE();
}
