/* Unit test: msf_convt_f32 / msf_convt_s8 (hand-computed cases, pads, regions, ring output
 * views, MAC counts).  The differential tests against onnxruntime / tflite-micro are in
 * tests/test_resize_convt.py. */
#include "msf_test.h"

/* full view with its capacity set (the bounds-checked build checks every access) */
static msf_view mkv(void *data, int H, int W, int C)
{
    msf_view v = mkview(data, H, W, C);
    v.cap = H * W * C;
    return v;
}

#define FMAX 3.4028234663852886e38f

int main(void)
{
    /* 1 x 2 input [1, 2], kernel 1 x 3 [1, 10, 100], stride 2: out width 5 =
     * [1, 10, 100 + 2, 20, 200]; with pad_left 1 and width 3: [10, 102, 20] */
    {
        float x[2] = {1, 2}, w[3] = {1, 10, 100}, y[5];
        msf_convt_f32_params p;
        msf_view in = mkv(x, 1, 2, 1), out = mkv(y, 1, 5, 1);
        memset(&p, 0, sizeof p);
        p.kh = 1;
        p.kw = 3;
        p.sh = 1;
        p.sw = 2;
        p.dh = p.dw = 1;
        p.act_min = -FMAX;
        p.act_max = FMAX;
        p.weights = w;
        msf_macs_reset();
        msf_convt_f32(&p, &in, &out, 0, 1, 0, 5);
        CHECK(y[0] == 1 && y[1] == 10 && y[2] == 102 && y[3] == 20 && y[4] == 200);
        CHECK_EQ_INT(msf_macs_get(), 5 * 3); /* nominal kh * kw * C_in per output element */
        p.pad_left = 1;
        out = mkv(y, 1, 3, 1);
        msf_convt_f32(&p, &in, &out, 0, 1, 0, 3);
        CHECK(y[0] == 10 && y[1] == 102 && y[2] == 20);
        /* dilation 2, stride 1: taps at ox = ix + 2 kx: width (2 - 1) + 2 * 2 + 1 = 6:
         * [1, 2, 10, 20, 100, 200] */
        p.pad_left = 0;
        p.sw = 1;
        p.dw = 2;
        {
            float y6[6];
            out = mkv(y6, 1, 6, 1);
            msf_convt_f32(&p, &in, &out, 0, 1, 0, 6);
            CHECK(y6[0] == 1 && y6[1] == 2 && y6[2] == 10 && y6[3] == 20 && y6[4] == 100 &&
                  y6[5] == 200);
        }
    }
    /* int8: x = [3, 5], in_zp 1 -> [2, 4]; w = [1, 2, 3], stride 2 -> [2, 4, 10, 8, 12];
     * bias 5, multiplier 1.0 (2^30, shift 1), out_zp -3 -> [4, 6, 12, 10, 14]; act_max 11 */
    {
        int8_t x[2] = {3, 5}, w[3] = {1, 2, 3}, y[5];
        int32_t bias[1] = {5}, qm[1] = {1 << 30}, qs[1] = {1};
        msf_convt_s8_params p;
        msf_view in = mkv(x, 1, 2, 1), out = mkv(y, 1, 5, 1);
        memset(&p, 0, sizeof p);
        p.kh = 1;
        p.kw = 3;
        p.sh = 1;
        p.sw = 2;
        p.dh = p.dw = 1;
        p.in_zp = 1;
        p.out_zp = -3;
        p.act_min = -128;
        p.act_max = 11;
        p.weights = w;
        p.bias = bias;
        p.rq.mode = MSF_RQ_FIXED;
        p.rq.per_channel = 1;
        p.rq.qmul = qm;
        p.rq.qshift = qs;
        msf_convt_s8(&p, &in, &out, 0, 1, 0, 5);
        CHECK_EQ_INT(y[0], 4);
        CHECK_EQ_INT(y[1], 6);
        CHECK_EQ_INT(y[2], 11);
        CHECK_EQ_INT(y[3], 10);
        CHECK_EQ_INT(y[4], 11);
    }
    /* random geometries: the whole output vs 1-column ring output views over row bands */
    {
        static int8_t x[600], w[1200], ref[4096], ring[4096];
        static int32_t qm[8], qs[8], bias[8];
        int t, i;
        for (t = 0; t < 40; t++) {
            int H = rnd(1, 5), W = rnd(1, 5), Ci = rnd(1, 4), Co = rnd(1, 4);
            int kh = rnd(1, 4), kw = rnd(1, 4), sh = rnd(1, 3), sw = rnd(1, 3);
            int pt = rnd(0, kh - 1), pl = rnd(0, kw - 1);
            int Ho = sh * (H - 1) + kh - pt - rnd(0, 1) + rnd(0, sh - 1);
            int Wo = sw * (W - 1) + kw - pl - rnd(0, 1) + rnd(0, sw - 1);
            int oy, ox, y, c;
            msf_convt_s8_params p;
            msf_view in, out;
            if (Ho < 1) Ho = 1;
            if (Wo < 1) Wo = 1;
            memset(&p, 0, sizeof p);
            for (i = 0; i < H * W * Ci; i++) x[i] = (int8_t)rnd(-128, 127);
            for (i = 0; i < Co * kh * kw * Ci; i++) w[i] = (int8_t)rnd(-127, 127);
            for (i = 0; i < Co; i++) {
                qm[i] = rnd(1 << 29, (1 << 30) + (1 << 29));
                qs[i] = -rnd(6, 10);
                bias[i] = rnd(-500, 500);
            }
            p.kh = kh;
            p.kw = kw;
            p.sh = sh;
            p.sw = sw;
            p.dh = p.dw = 1;
            p.pad_top = pt;
            p.pad_left = pl;
            p.in_zp = rnd(-10, 10);
            p.out_zp = rnd(-10, 10);
            p.act_min = -128;
            p.act_max = 127;
            p.weights = w;
            p.bias = (t % 3) ? bias : NULL;
            p.rq.mode = MSF_RQ_FIXED;
            p.rq.per_channel = 1;
            p.rq.qmul = qm;
            p.rq.qshift = qs;
            in = mkv(x, H, W, Ci);
            in.cap = H * W * Ci;
            out = mkv(ref, Ho, Wo, Co);
            out.cap = Ho * Wo * Co;
            msf_macs_reset();
            msf_convt_s8(&p, &in, &out, 0, Ho, 0, Wo);
            CHECK_EQ_INT(msf_macs_get(), (long long)Ho * Wo * Co * kh * kw * Ci);
            for (oy = 0; oy < Ho;) {
                int oy1 = oy + rnd(1, 3);
                if (oy1 > Ho) oy1 = Ho;
                for (ox = 0; ox < Wo; ox++) {
                    msf_view r = mkv(ring, Ho, Wo, Co);
                    r.y0 = oy;
                    r.xcap = 1;
                    r.cap = (oy1 - oy) * Co;
                    memset(ring, 0x5a, sizeof ring);
                    msf_convt_s8(&p, &in, &r, oy, oy1, ox, ox + 1);
                    for (y = oy; y < oy1; y++)
                        for (c = 0; c < Co; c++)
                            CHECK_EQ_INT(ring[(y - oy) * Co + c], ref[(y * Wo + ox) * Co + c]);
                }
                oy = oy1;
            }
        }
    }
    TEST_DONE();
}
