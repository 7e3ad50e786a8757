/* Unit test: msf_maxpool_* / msf_avgpool_* (hand values, count_include_pad, modes, views). */
#include "msf_test.h"

static void max_fn(const void *p, const msf_view *in, msf_view *out, int32_t a, int32_t b,
                   int32_t c, int32_t d)
{
    msf_maxpool_s8((const msf_pool_s8_params *)p, in, out, a, b, c, d);
}

static void avg_fn(const void *p, const msf_view *in, msf_view *out, int32_t a, int32_t b,
                   int32_t c, int32_t d)
{
    msf_avgpool_s8((const msf_pool_s8_params *)p, in, out, a, b, c, d);
}

static msf_pool_s8_params mkpool(msf_window w, int cip, int mode)
{
    msf_pool_s8_params p;
    memset(&p, 0, sizeof p);
    p.win = w;
    p.count_include_pad = cip;
    p.mode = mode;
    p.in_scale = 1.0f;
    p.out_scale = 1.0f;
    p.act_min = -128;
    p.act_max = 127;
    return p;
}

int main(void)
{
    /* 2x2 input [[1,2],[3,4]], 2x2 window, pads 1 on all sides, stride 2 -> 2x2 output */
    int8_t x[4] = {1, 2, 3, 4}, y[4];
    float xf[4] = {1, 2, 3, 4}, yf[4];
    msf_view vi = mkview(x, 2, 2, 1), vo = mkview(y, 2, 2, 1);
    msf_view vif = mkview(xf, 2, 2, 1), vof = mkview(yf, 2, 2, 1);
    msf_window w = mkwin(2, 2, 2, 2, 1, 1, 1, 1);
    msf_pool_s8_params p = mkpool(w, 0, MSF_RQ_FLOAT);
    msf_pool_f32_params pf;
    int t, i;

    /* max: every window holds exactly one valid tap */
    msf_maxpool_s8(&p, &vi, &vo, 0, 2, 0, 2);
    CHECK(y[0] == 1 && y[1] == 2 && y[2] == 3 && y[3] == 4);
    p.act_min = 2;
    p.act_max = 3;
    msf_maxpool_s8(&p, &vi, &vo, 0, 2, 0, 2);
    CHECK(y[0] == 2 && y[1] == 2 && y[2] == 3 && y[3] == 3);
    /* max with all-negative inputs: padding must never win */
    {
        int8_t xn[4] = {-100, -90, -80, -128}, yn[1];
        msf_view a = mkview(xn, 2, 2, 1), b = mkview(yn, 1, 1, 1);
        msf_pool_s8_params q = mkpool(mkwin(3, 3, 1, 1, 1, 1, 1, 1), 0, MSF_RQ_FLOAT);
        b.W = 1;
        msf_maxpool_s8(&q, &a, &b, 0, 1, 0, 1);
        CHECK_EQ_INT(yn[0], -80);
    }
    /* avg, 2x2 window stride 1, no pads, on [[1,2],[3,4]] with scale 1: 2.5 -> 2 (even) */
    {
        int8_t y1[1];
        msf_view b = mkview(y1, 1, 1, 1);
        msf_pool_s8_params q = mkpool(mkwin(2, 2, 1, 1, 0, 0, 0, 0), 0, MSF_RQ_FLOAT);
        msf_avgpool_s8(&q, &vi, &b, 0, 1, 0, 1);  /* global fallback path */
        CHECK_EQ_INT(y1[0], 2);
        q.mode = MSF_RQ_FIXED;                     /* TFLM: (10 + 2) / 4 = 3 */
        msf_avgpool_s8(&q, &vi, &b, 0, 1, 0, 1);
        CHECK_EQ_INT(y1[0], 3);
    }
    /* avg with pads: corner windows hold one valid tap; count_include_pad divides by 4 */
    p = mkpool(w, 1, MSF_RQ_FLOAT);
    msf_avgpool_s8(&p, &vi, &vo, 0, 2, 0, 2);
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 1);   /* .25 .5 .75 1 */
    p.count_include_pad = 0;
    msf_avgpool_s8(&p, &vi, &vo, 0, 2, 0, 2);
    CHECK(y[0] == 1 && y[1] == 2 && y[2] == 3 && y[3] == 4);
    /* FLOAT-mode scales and zero points: q = rne(s/out_scale + zp) with s = in_scale*(x-zp) */
    p = mkpool(mkwin(1, 2, 1, 2, 0, 0, 0, 0), 0, MSF_RQ_FLOAT);
    p.in_scale = 0.5f;
    p.out_scale = 0.25f;
    p.in_zp = 1;
    p.out_zp = -3;
    {
        msf_view b = mkview(y, 2, 1, 1);
        msf_avgpool_s8(&p, &vi, &b, 0, 2, 0, 1);
        CHECK_EQ_INT(y[0], -2);  /* x-zp {0,1} -> .25 -> /.25 = 1 -> -2 */
        CHECK_EQ_INT(y[1], 2);   /* {2,3} -> 1.25 -> 5 -> 2 */
    }
    /* float pools */
    memset(&pf, 0, sizeof pf);
    pf.win = w;
    pf.count_include_pad = 1;
    pf.act_min = -1e30f;
    pf.act_max = 1e30f;
    msf_avgpool_f32(&pf, &vif, &vof, 0, 2, 0, 2);
    CHECK(yf[0] == 0.25f && yf[1] == 0.5f && yf[2] == 0.75f && yf[3] == 1.0f);
    msf_maxpool_f32(&pf, &vif, &vof, 0, 2, 0, 2);
    CHECK(yf[0] == 1.0f && yf[3] == 4.0f);
    /* random geometries through sub-regions and ring views, both pools, both modes */
    for (t = 0; t < 80; t++) {
        static int8_t xr[MSF_T_MAX];
        int kh = rnd(1, 4), kw = rnd(1, 4), sh = rnd(1, 3), sw = rnd(1, 3);
        int pt = rnd(0, kh - 1), pl = rnd(0, kw - 1), pb = rnd(0, kh - 1), pr = rnd(0, kw - 1);
        int H = rnd(kh > pt + pb ? kh - pt - pb : 1, 9), W = rnd(kw > pl + pr ? kw - pl - pr : 1, 9);
        int C = rnd(1, 6);
        msf_window wr = mkwin(kh, kw, sh, sw, pt, pl, pb, pr);
        msf_pool_s8_params q = mkpool(wr, t % 2, (t / 2) % 2 ? MSF_RQ_FIXED : MSF_RQ_FLOAT);
        for (i = 0; i < H * W * C; i++) xr[i] = (int8_t)rnd(-128, 127);
        q.in_scale = 0.01f * (float)rnd(1, 10);
        q.out_scale = 0.01f * (float)rnd(1, 10);
        q.in_zp = rnd(-128, 127);
        q.out_zp = q.mode == MSF_RQ_FIXED ? q.in_zp : rnd(-128, 127);
        check_views_s8(max_fn, &q, &wr, xr, H, W, C, C);
        check_views_s8(avg_fn, &q, &wr, xr, H, W, C, C);
    }
    TEST_DONE();
}
