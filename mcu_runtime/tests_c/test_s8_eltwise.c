/* Unit test: msf_lut_s8, msf_prelu_s8, msf_mul_s8 (hand-computed cases, all modes, broadcast,
 * in place, sub-regions and ring views with xcap < W). */
#include "msf_test.h"

#define H_ 3
#define W_ 5
#define C_ 4
#define N_ (H_ * W_ * C_)

static int8_t table[256];

static int clamp8(int v) { return v < -128 ? -128 : (v > 127 ? 127 : v); }

/* y = the ring-view copy of a full H_ x W_ x C_ tensor: columns x live at slot x % xcap */
static void to_ring(const int8_t *full, int8_t *ring, int xcap, int x)
{
    int y, c;
    for (y = 0; y < H_; y++)
        for (c = 0; c < C_; c++) ring[(y * xcap + x % xcap) * C_ + c] = full[(y * W_ + x) * C_ + c];
}

int main(void)
{
    int8_t x[N_], x2[N_], yref[N_], y[N_], ring_in[H_ * 2 * C_], ring_out[H_ * 2 * C_];
    int8_t gate[C_] = {3, -2, 0, 127}, scal[1] = {-5};
    int i, xx, yy, c;
    msf_lut_s8_params lp;
    msf_prelu_s8_params pp;
    msf_mul_s8_params mp;
    msf_view vx = mkview(x, H_, W_, C_), vy = mkview(y, H_, W_, C_), vr = mkview(yref, H_, W_, C_);
    msf_view vg = mkview(gate, 1, 1, C_), vs = mkview(scal, 1, 1, 1), vx2 = mkview(x2, H_, W_, C_);
    vx.cap = vy.cap = vr.cap = vx2.cap = N_;
    vg.cap = C_;
    vs.cap = 1;

    for (i = 0; i < N_; i++) x[i] = (int8_t)rnd(-128, 127);
    x[0] = -128;
    x[1] = 127;
    x[2] = 0;
    for (i = 0; i < N_; i++) x2[i] = (int8_t)rnd(-128, 127);

    /* ---- LUT: table[v + 128] = -(v) saturated (a toy "op") ---- */
    for (i = 0; i < 256; i++) table[i] = (int8_t)(i == 0 ? 127 : -(i - 128));
    lp.table = table;
    msf_macs_reset();
    msf_lut_s8(&lp, &vx, &vr, 0, H_, 0, W_);
    CHECK_EQ_INT(msf_macs_get(), 0);
    CHECK_EQ_INT(yref[0], 127);
    CHECK_EQ_INT(yref[1], -127);
    CHECK_EQ_INT(yref[2], 0);
    for (i = 3; i < N_; i++) CHECK_EQ_INT(yref[i], x[i] == -128 ? 127 : -x[i]);
    /* sub-regions */
    memset(y, 0x55, sizeof y);
    for (yy = 0; yy < H_; yy++)
        for (xx = 0; xx < W_; xx += 2)
            msf_lut_s8(&lp, &vx, &vy, yy, yy + 1, xx, xx + 2 > W_ ? W_ : xx + 2);
    CHECK(memcmp(y, yref, sizeof y) == 0);
    /* in place */
    memcpy(y, x, sizeof y);
    msf_lut_s8(&lp, &vy, &vy, 0, H_, 0, W_);
    CHECK(memcmp(y, yref, sizeof y) == 0);
    /* ring views (xcap = 2 < W), column by column, in place in the ring */
    for (xx = 0; xx < W_; xx++) {
        msf_view ri = mkview(ring_in, H_, W_, C_);
        ri.xcap = 2;
        ri.cap = H_ * 2 * C_;
        memset(ring_in, 0x77, sizeof ring_in);
        to_ring(x, ring_in, 2, xx);
        msf_lut_s8(&lp, &ri, &ri, 0, H_, xx, xx + 1);
        for (yy = 0; yy < H_; yy++)
            for (c = 0; c < C_; c++)
                CHECK_EQ_INT(ring_in[(yy * 2 + xx % 2) * C_ + c], yref[(yy * W_ + xx) * C_ + c]);
    }

    /* ---- PReLU, TFLM arithmetic: mul1 = 1.0 (2^30, shift 1), mul2 = 0.25 (2^30, shift -1) ---- */
    {
        int8_t a8[C_] = {2, -4, 0, 10};
        float af[C_] = {0.5f, 2.0f, 0.0f, -1.0f};
        int8_t xi[C_] = {-10, -10, -10, -10}, yo[C_], xj[C_] = {-3, 4, -3, -3};
        msf_view vi = mkview(xi, 1, 1, C_), vo = mkview(yo, 1, 1, C_), vj = mkview(xj, 1, 1, C_);
        vi.cap = vo.cap = vj.cap = C_;
        memset(&pp, 0, sizeof pp);
        pp.mode = MSF_RQ_FIXED;
        pp.per_channel = 1;
        pp.alpha_q = a8;
        pp.mul1 = 1 << 30;
        pp.shift1 = 1;
        pp.mul2 = 1 << 30;
        pp.shift2 = -1;
        msf_prelu_s8(&pp, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], -5);  /* -10 * 2 / 4 */
        CHECK_EQ_INT(yo[1], 10);  /* -10 * -4 / 4 */
        CHECK_EQ_INT(yo[2], 0);
        CHECK_EQ_INT(yo[3], -25); /* -100 / 4 */
        /* zero points: x - 5, alpha - 1, out + 3; positive input passes with multiplier 1 */
        pp.in_zp = 5;
        pp.alpha_zp = 1;
        pp.out_zp = 3;
        xi[0] = 20;
        msf_prelu_s8(&pp, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], 15 + 3);
        CHECK_EQ_INT(yo[1], 19 + 3);  /* (-15) * (-5) / 4 = 18.75 */
        CHECK_EQ_INT(yo[2], 4 + 3);   /* (-15) * (-1) / 4 = 3.75 */
        CHECK_EQ_INT(yo[3], -34 + 3); /* (-15) * 9 / 4 = -33.75 */
        /* one slope for all channels */
        pp.per_channel = 0;
        msf_prelu_s8(&pp, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[1], -4 + 3);  /* (-15) * 1 / 4 = -3.75 */
        /* ORT float path: in 0.5, out 0.25 */
        memset(&pp, 0, sizeof pp);
        pp.mode = MSF_RQ_FLOAT;
        pp.per_channel = 1;
        pp.alpha_f = af;
        pp.in_scale = 0.5f;
        pp.out_scale = 0.25f;
        msf_prelu_s8(&pp, &vj, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], -3);  /* -1.5 * 0.5 / 0.25 */
        CHECK_EQ_INT(yo[1], 8);   /* 2 / 0.25 */
        CHECK_EQ_INT(yo[2], 0);
        CHECK_EQ_INT(yo[3], 6);   /* -1.5 * -1 / 0.25 */
        pp.out_scale = 0.01f;      /* saturation */
        pp.out_zp = 10;
        msf_prelu_s8(&pp, &vj, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[1], 127);
        CHECK_EQ_INT(yo[3], 127);
        CHECK_EQ_INT(yo[0], -65);  /* -75 + 10 */
        /* in place over a ring view */
        {
            msf_view r = mkview(xj, 1, 3, C_);
            r.xcap = 1;
            r.cap = C_;
            msf_prelu_s8(&pp, &r, &r, 0, 1, 2, 3);
            CHECK_EQ_INT(xj[1], 127);
            CHECK_EQ_INT(xj[0], -65);
        }
    }

    /* ---- Mul, TFLM arithmetic: multiplier 0.5 (2^30, shift 0) ---- */
    {
        int8_t a1[C_] = {3, 13, -13, 100}, b1[C_] = {5, 1, 1, 100}, yo[C_];
        msf_view va = mkview(a1, 1, 1, C_), vb = mkview(b1, 1, 1, C_), vo = mkview(yo, 1, 1, C_);
        va.cap = vb.cap = vo.cap = C_;
        memset(&mp, 0, sizeof mp);
        mp.mode = MSF_RQ_FIXED;
        mp.act_min = -128;
        mp.act_max = 127;
        mp.out_mul = 1 << 30;
        mp.out_shift = 0;
        msf_mul_s8(&mp, &va, &vb, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], 8);    /* 7.5 away from zero */
        CHECK_EQ_INT(yo[1], 7);    /* 6.5 -> 7 */
        CHECK_EQ_INT(yo[2], -6);   /* -6.5 -> -6: SRDHM rounds negative ties up */
        CHECK_EQ_INT(yo[3], 127);  /* 5000 saturates */
        mp.act_min = 0;            /* fused relu at zp 0 */
        msf_mul_s8(&mp, &va, &vb, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[2], 0);
        /* ORT QLinearMul: ratio 0.5, round half to even */
        mp.mode = MSF_RQ_FLOAT;
        mp.act_min = -128;
        mp.ratio = 0.5f;
        mp.out_zp = 1;
        msf_mul_s8(&mp, &va, &vb, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], 8);    /* 7.5 + 1 = 8.5 -> 8 */
        CHECK_EQ_INT(yo[1], 8);    /* 6.5 + 1 = 7.5 -> 8 */
        CHECK_EQ_INT(yo[2], -6);   /* -6.5 + 1 = -5.5 -> -6 */
        CHECK_EQ_INT(yo[3], 127);
        mp.ratio = 1e30f;          /* overflow of cvtps2dq -> -128 even for positive products */
        msf_mul_s8(&mp, &va, &vb, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], -128);
        /* unfused float chain: scales 0.5 * 0.25 / 0.125 = 1 */
        mp.mode = MSF_RQ_FLOAT_QDQ;
        mp.in1_scale = 0.5f;
        mp.in2_scale = 0.25f;
        mp.out_scale = 0.125f;
        mp.out_zp = -3;
        msf_mul_s8(&mp, &va, &vb, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(yo[0], 15 - 3);
        CHECK_EQ_INT(yo[2], -13 - 3);
        CHECK_EQ_INT(yo[3], 127);
    }
    /* broadcast (channel gate, scalar) on the full tensor, FIXED mode with zero points */
    memset(&mp, 0, sizeof mp);
    mp.mode = MSF_RQ_FIXED;
    mp.act_min = -128;
    mp.act_max = 127;
    mp.out_mul = 1 << 30;
    mp.out_shift = -6;         /* 2^-7 */
    mp.in1_zp = -2;
    mp.in2_zp = 1;
    mp.out_zp = 4;
    mp.bcast = MSF_BCAST_CHANNEL;
    msf_mul_s8(&mp, &vx, &vg, &vr, 0, H_, 0, W_);
    for (i = 0; i < N_; i++) {
        int32_t d = (x[i] + 2) * (gate[i % C_] - 1);
        CHECK_EQ_INT(yref[i], clamp8(msf_mbqm(d, 1 << 30, -6) + 4));
    }
    CHECK_EQ_INT(yref[2], 4); /* x = 0, gate 0: d = 2 * -1, -2 / 128 rounds to 0 */
    /* in place (out aliases in1) over ring views xcap = 2 < W */
    for (xx = 0; xx < W_; xx++) {
        msf_view ri = mkview(ring_in, H_, W_, C_);
        ri.xcap = 2;
        ri.cap = H_ * 2 * C_;
        memset(ring_in, 0x77, sizeof ring_in);
        to_ring(x, ring_in, 2, xx);
        msf_mul_s8(&mp, &ri, &vg, &ri, 0, H_, xx, xx + 1);
        for (yy = 0; yy < H_; yy++)
            for (c = 0; c < C_; c++)
                CHECK_EQ_INT(ring_in[(yy * 2 + xx % 2) * C_ + c], yref[(yy * W_ + xx) * C_ + c]);
    }
    /* scalar operand == a channel gate with all channels equal */
    {
        int8_t g2[C_] = {-5, -5, -5, -5};
        msf_view v2 = mkview(g2, 1, 1, C_);
        v2.cap = C_;
        mp.bcast = MSF_BCAST_CHANNEL;
        msf_mul_s8(&mp, &vx, &v2, &vr, 0, H_, 0, W_);
        mp.bcast = MSF_BCAST_SCALAR;
        msf_mul_s8(&mp, &vx, &vs, &vy, 0, H_, 0, W_);
        CHECK(memcmp(y, yref, sizeof y) == 0);
    }
    /* same shape, ring in2 (xcap 2) and ring out (xcap 1), column by column */
    mp.bcast = MSF_BCAST_NONE;
    msf_mul_s8(&mp, &vx, &vx2, &vr, 0, H_, 0, W_);
    for (xx = 0; xx < W_; xx++) {
        msf_view rb = mkview(ring_in, H_, W_, C_), ro = mkview(ring_out, H_, W_, C_);
        rb.xcap = 2;
        rb.cap = H_ * 2 * C_;
        ro.xcap = 1;
        ro.cap = H_ * C_;
        memset(ring_in, 0x77, sizeof ring_in);
        to_ring(x2, ring_in, 2, xx);
        msf_mul_s8(&mp, &vx, &rb, &ro, 0, H_, xx, xx + 1);
        for (yy = 0; yy < H_; yy++)
            for (c = 0; c < C_; c++)
                CHECK_EQ_INT(ring_out[yy * C_ + c], yref[(yy * W_ + xx) * C_ + c]);
    }
    TEST_DONE();
}
