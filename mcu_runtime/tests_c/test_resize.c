/* Unit test: msf_resize_f32 / msf_resize_s8 (hand-computed cases, regions, ring output views,
 * MAC counts).  The differential tests against onnxruntime / tflite-micro are in
 * tests/test_resize_convt.py. */
#include "msf_test.h"

/* full view with its capacity set (the bounds-checked build checks every access) */
static msf_view mkv(void *data, int H, int W, int C)
{
    msf_view v = mkview(data, H, W, C);
    v.cap = H * W * C;
    return v;
}

static msf_resize_params onnx_params(int mode, int coord, int nearest, float sh, float sw)
{
    msf_resize_params p;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    p.framework = MSF_RESIZE_ONNX;
    p.coord = coord;
    p.nearest = nearest;
    p.scale_h = sh;
    p.scale_w = sw;
    return p;
}

/* whole output vs 1-column ring output views, one column at a time, random row bands */
static void check_ring_out_s8(const msf_resize_params *p, const int8_t *x, int H, int W, int C,
                              int Ho, int Wo)
{
    static int8_t ref[4096], ring[4096];
    msf_view in = mkv((void *)x, H, W, C), out = mkv(ref, Ho, Wo, C);
    int oy, ox, y, c;
    in.cap = H * W * C;
    out.cap = Ho * Wo * C;
    msf_resize_s8(p, &in, &out, 0, Ho, 0, Wo);
    for (oy = 0; oy < Ho;) {
        int oy1 = oy + rnd(1, 3);
        if (oy1 > Ho) oy1 = Ho;
        for (ox = 0; ox < Wo; ox++) {
            msf_view r = mkv(ring, Ho, Wo, C);
            r.y0 = oy;
            r.xcap = 1;
            r.cap = (oy1 - oy) * C;
            memset(ring, 0x5a, sizeof ring);
            msf_resize_s8(p, &in, &r, oy, oy1, ox, ox + 1);
            for (y = oy; y < oy1; y++)
                for (c = 0; c < C; c++)
                    CHECK_EQ_INT(ring[(y - oy) * C + c], ref[(y * Wo + ox) * C + c]);
        }
        oy = oy1;
    }
}

int main(void)
{
    /* ONNX nearest, asymmetric / floor, 2x up: y = x[oy / 2][ox / 2] */
    {
        float x[6] = {1, 2, 3, 4, 5, 6}, y[24];
        msf_resize_params p = onnx_params(MSF_RESIZE_NEAREST, MSF_COORD_ASYMMETRIC,
                                          MSF_NEAREST_FLOOR, 2.0f, 2.0f);
        msf_view in = mkv(x, 2, 3, 1), out = mkv(y, 4, 6, 1);
        int oy, ox;
        msf_macs_reset();
        msf_resize_f32(&p, &in, &out, 0, 4, 0, 6);
        for (oy = 0; oy < 4; oy++)
            for (ox = 0; ox < 6; ox++) CHECK(y[oy * 6 + ox] == x[(oy / 2) * 3 + ox / 2]);
        CHECK_EQ_INT(msf_macs_get(), 0);
    }
    /* ONNX nearest round_prefer_floor vs _ceil on exact ties: asymmetric, scale 0.5 -> o = 2x */
    {
        float x[4] = {10, 20, 30, 40}, y[2];
        msf_resize_params p = onnx_params(MSF_RESIZE_NEAREST, MSF_COORD_HALF_PIXEL,
                                          MSF_NEAREST_ROUND_PREFER_FLOOR, 1.0f, 0.5f);
        msf_view in = mkv(x, 1, 4, 1), out = mkv(y, 1, 2, 1);
        /* half_pixel, s = 0.5: o = (x + .5) * 2 - .5 = 0.5, 2.5 -> floor: 0, 2 ; ceil: 1, 3 */
        msf_resize_f32(&p, &in, &out, 0, 1, 0, 2);
        CHECK(y[0] == 10 && y[1] == 30);
        p.nearest = MSF_NEAREST_ROUND_PREFER_CEIL;
        msf_resize_f32(&p, &in, &out, 0, 1, 0, 2);
        CHECK(y[0] == 20 && y[1] == 40);
    }
    /* ONNX bilinear half_pixel 1x2 -> 1x4: [0, 4] -> [0, 1, 3, 4]; 4 MACs per element */
    {
        float x[2] = {0, 4}, y[4];
        msf_resize_params p = onnx_params(MSF_RESIZE_BILINEAR, MSF_COORD_HALF_PIXEL, 0, 1.0f,
                                          2.0f);
        msf_view in = mkv(x, 1, 2, 1), out = mkv(y, 1, 4, 1);
        msf_macs_reset();
        msf_resize_f32(&p, &in, &out, 0, 1, 0, 4);
        CHECK(y[0] == 0.0f && y[1] == 1.0f && y[2] == 3.0f && y[3] == 4.0f);
        CHECK_EQ_INT(msf_macs_get(), 16);
        /* align_corners 1x2 -> 1x3: [0, 2, 4] */
        p.coord = MSF_COORD_ALIGN_CORNERS;
        p.scale_w = 1.5f;
        out = mkv(y, 1, 3, 1);
        msf_resize_f32(&p, &in, &out, 0, 1, 0, 3);
        CHECK(y[0] == 0.0f && y[1] == 2.0f && y[2] == 4.0f);
    }
    /* TFLM int8 bilinear 1x2 -> 1x4 (scale10 = 512): [0, 100] -> [0, 50, 100, 100];
     * [-1, 0] -> [-1, -1 (= -0.5 rounded away from zero), 0, 0] */
    {
        int8_t x[2] = {0, 100}, y[4];
        msf_resize_params p;
        msf_view in = mkv(x, 1, 2, 1), out = mkv(y, 1, 4, 1);
        memset(&p, 0, sizeof p);
        p.mode = MSF_RESIZE_BILINEAR;
        p.framework = MSF_RESIZE_TFLM;
        p.scale10_h = 1024;
        p.scale10_w = 512;
        msf_resize_s8(&p, &in, &out, 0, 1, 0, 4);
        CHECK_EQ_INT(y[0], 0);
        CHECK_EQ_INT(y[1], 50);
        CHECK_EQ_INT(y[2], 100);
        CHECK_EQ_INT(y[3], 100);
        x[0] = -1;
        x[1] = 0;
        msf_resize_s8(&p, &in, &out, 0, 1, 0, 4);
        CHECK_EQ_INT(y[0], -1);
        CHECK_EQ_INT(y[1], -1);
        CHECK_EQ_INT(y[2], 0);
        CHECK_EQ_INT(y[3], 0);
    }
    /* TFLM nearest, align_corners (round half away): 3 -> 5, scale 0.5: v = 0, .5, 1, 1.5, 2
     * -> 0, 1, 1, 2, 2 */
    {
        int8_t x[3] = {7, 8, 9}, y[5];
        msf_resize_params p;
        msf_view in = mkv(x, 1, 3, 1), out = mkv(y, 1, 5, 1);
        memset(&p, 0, sizeof p);
        p.mode = MSF_RESIZE_NEAREST;
        p.framework = MSF_RESIZE_TFLM;
        p.align_corners = 1;
        p.scale_h = 1.0f;
        p.scale_w = 0.5f;
        msf_resize_s8(&p, &in, &out, 0, 1, 0, 5);
        CHECK_EQ_INT(y[0], 7);
        CHECK_EQ_INT(y[1], 8);
        CHECK_EQ_INT(y[2], 8);
        CHECK_EQ_INT(y[3], 9);
        CHECK_EQ_INT(y[4], 9);
    }
    /* ring-buffer output views (any output region on its own), int8, random geometries */
    {
        static int8_t x[512];
        int t, i;
        for (t = 0; t < 30; t++) {
            int H = rnd(1, 6), W = rnd(1, 6), C = rnd(1, 3), Ho = rnd(1, 12), Wo = rnd(1, 12);
            msf_resize_params p;
            memset(&p, 0, sizeof p);
            for (i = 0; i < H * W * C; i++) x[i] = (int8_t)rnd(-128, 127);
            p.mode = t % 2;
            p.framework = MSF_RESIZE_TFLM;
            p.half_pixel_centers = (t / 2) % 2;
            p.align_corners = !p.half_pixel_centers && (t % 3 == 0);
            p.scale_h = (float)H / (float)Ho;
            p.scale_w = (float)W / (float)Wo;
            p.scale10_h = (1024 * H + Ho / 2) / Ho;
            p.scale10_w = (1024 * W + Wo / 2) / Wo;
            check_ring_out_s8(&p, x, H, W, C, Ho, Wo);
        }
    }
    TEST_DONE();
}
