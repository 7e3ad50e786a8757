/* fast_diff2.c - differential test of the fast int8 convolution's single-pixel runs (the fused
 * modes' 1 x 1 column calls: msf_conv1x1_s8_run with n == 1, output channels four at a time,
 * msf_s8_convfast.c conv_px1) against the reference loop msf_conv2d_s8_ref, and of the
 * depthwise short calls (fd2_dw_case, below) against msf_dwconv2d_s8_ref.
 *
 * Every fd2_case is a pointwise conv over one output pixel (or a few pixels called one at a time,
 * as run_fused does) with random C_in 1..72 (word loads plus 0..3 tail bytes), C_out 1..40 (the
 * quad loop plus 0..3 tail channels), input / output ring views, zero points, bias or none,
 * the generator's folded bias_zp or not, per-channel fixed / float requantisation with the
 * corners (qmul INT32_MIN, shifts -31..+8) and activation clamps.  The output buffer is
 * compared whole (the bytes around the pixel must stay untouched).
 *
 * Freestanding (no stdio, static buffers): included by test_fast_px1.c (host, ASan + UBSan) and
 * fast_diff2_mcu.c (QEMU targets).  fd2_run(seed, cases) returns the number of differing cases. */
#include "msf_s8_fast.h"

#define FD2_CIN 72
#if FD2_CIN * 40 < 256 * 11 || 3 * 5 * FD2_CIN < 2 * 256 || 3 * 5 * FD2_CIN < 32 * 32
#error "fd2_wide_case / fd2_col_case need 256 x 11 weights, a 1 x 2 x 256 and a 32 x 1 x 32 input"
#endif
#define FD2_COUT 40
#define FD2_W 5                                   /* columns of the views */
#define FD2_IN (3 * FD2_W * FD2_CIN)
#define FD2_OUT (3 * FD2_W * FD2_COUT)

static uint32_t fd2_state = 1u;
static int8_t fd2_in[FD2_IN], fd2_w[FD2_CIN * FD2_COUT], fd2_ref[FD2_OUT], fd2_got[FD2_OUT];
#define FD2_DWC 60                                /* depthwise cases: channels */
#define FD2_CH (FD2_DWC > FD2_COUT ? FD2_DWC : FD2_COUT)
static int32_t fd2_bias[FD2_CH], fd2_bzp[FD2_CH], fd2_qmul[FD2_CH], fd2_qshift[FD2_CH];
static float fd2_fmul[FD2_CH];

static int32_t fd2_rnd(int32_t lo, int32_t hi) /* inclusive */
{
    fd2_state ^= fd2_state << 13;
    fd2_state ^= fd2_state >> 17;
    fd2_state ^= fd2_state << 5;
    return (int32_t)((uint32_t)lo + fd2_state % ((uint32_t)hi - (uint32_t)lo + 1u));
}

/* One case; 1 if the fast path differs from the reference anywhere in the output buffer. */
/* n_w random weights (-128 now and then) and n_ch channels of bias (large now and then),
 * fixed-point multipliers (INT32_MIN now and then), shifts and float multipliers: the draws
 * every case makes in this order */
static void fd2_rand_weights(int32_t n_w, int32_t n_ch)
{
    int32_t i;
    for (i = 0; i < n_w; i++) {
        fd2_w[i] = (int8_t)fd2_rnd(fd2_rnd(0, 9) == 0 ? -128 : -127, 127);
    }
    for (i = 0; i < n_ch; i++) {
        int32_t k = fd2_rnd(0, 15);
        fd2_bias[i] = fd2_rnd(0, 9) == 0 ? fd2_rnd(-2000000, 2000000) : fd2_rnd(-3000, 3000);
        fd2_qmul[i] = k == 0 ? INT32_MIN
                             : (int32_t)(0x40000000u + (uint32_t)fd2_rnd(0, 0x3FFFFFFF));
        fd2_qshift[i] = fd2_rnd(0, 7) == 0 ? fd2_rnd(-31, 8) : fd2_rnd(-12, 1);
        fd2_fmul[i] = (float)fd2_rnd(1, 4000) * (fd2_rnd(0, 1) ? 1e-4f : 2.5e-3f);
    }
}

/* The code generator's DSP requantisation records (msf_conv_s8_params.rqd, read on cores with
 * the DSP extension, ignored elsewhere): for half the fixed-point cases with the clamp inside
 * int8, every channel moved into the records' range (normalised multiplier, shift -1..-20;
 * the reference reads the same values) and its (mul, -shift, 2^(-shift-1)) per output
 * channel (entry 0's for every channel when per tensor), computed here as codegen.rqd_records
 * does. */
static int32_t fd2_rqd[3 * FD2_CH];
static void fd2_records(msf_conv_s8_params *p, int32_t C)
{
    int32_t i;
    if (p->rq.mode != MSF_RQ_FIXED || p->act_min < -128 || p->act_max > 127 ||
        p->act_min > p->act_max || fd2_rnd(0, 1)) {
        return;
    }
    for (i = 0; i < C; i++) {
        if (fd2_qmul[i] < 0x40000000) {
            fd2_qmul[i] = (int32_t)(0x40000000u + (uint32_t)fd2_rnd(0, 0x3FFFFFFF));
        }
        if (fd2_qshift[i] > -1 || fd2_qshift[i] < -20) {
            fd2_qshift[i] = -fd2_rnd(1, 20);
        }
    }
    for (i = 0; i < C; i++) {
        const int32_t j = p->rq.per_channel ? i : 0, e = -fd2_qshift[j];
        fd2_rqd[3 * i] = fd2_qmul[j];
        fd2_rqd[3 * i + 1] = e;
        fd2_rqd[3 * i + 2] = (int32_t)(1u << (e - 1));
    }
    p->rqd = fd2_rqd;
}

/* random input bytes, and the same random bytes in both output buffers (a kernel that skips
 * an output leaves them equal only where the other skips it too) */
static void fd2_rand_buffers(void)
{
    int32_t i;
    for (i = 0; i < FD2_IN; i++) {
        fd2_in[i] = (int8_t)fd2_rnd(-128, 127);
    }
    for (i = 0; i < FD2_OUT; i++) {
        fd2_ref[i] = fd2_got[i] = (int8_t)fd2_rnd(-128, 127);
    }
}

/* 1 if the fast kernel's output buffer differs from the reference's anywhere */
static int fd2_differs(void)
{
    int32_t i;
    for (i = 0; i < FD2_OUT; i++) {
        if (fd2_ref[i] != fd2_got[i]) {
            return 1;
        }
    }
    return 0;
}

static int fd2_case(void)
{
    msf_conv_s8_params p;
    msf_view vin, vref, vgot;
    const int32_t cin = fd2_rnd(0, 3) == 0 ? fd2_rnd(1, 7) : fd2_rnd(1, FD2_CIN);
    const int32_t cout = fd2_rnd(0, 3) == 0 ? fd2_rnd(1, 7) : fd2_rnd(1, FD2_COUT);
    const int32_t H = 3, W = FD2_W;
    /* input / output: full views or rings of xcap column slots holding rows [y0, y0 + 3) */
    const int32_t ixcap = fd2_rnd(0, 1) ? W : fd2_rnd(1, W);
    const int32_t oxcap = fd2_rnd(0, 1) ? W : fd2_rnd(1, W);
    const int32_t oy = fd2_rnd(0, H - 1);
    int32_t i, ox, ox0, ox1;
    for (i = 0; i < (int32_t)sizeof p; i++) {
        ((uint8_t *)&p)[i] = 0;
    }
    p.win.kh = p.win.kw = p.win.sh = p.win.sw = 1;
    p.groups = 1;
    p.in_zp = fd2_rnd(0, 3) == 0 ? 0 : fd2_rnd(-128, 127);
    p.out_zp = fd2_rnd(-128, 127);
    p.act_min = fd2_rnd(0, 1) ? -128 : fd2_rnd(-128, 0);
    p.act_max = fd2_rnd(0, 1) ? 127 : fd2_rnd(p.act_min, 127);
    if (fd2_rnd(0, 9) == 0) { /* clamps outside int8: the inlined requantisation's slow path */
        p.act_min = fd2_rnd(-300, 0);
        p.act_max = fd2_rnd(0, 300);
    }
    fd2_rand_weights(cin * cout, cout);
    p.weights = fd2_w;
    p.bias = fd2_rnd(0, 5) ? fd2_bias : (const int32_t *)0;
    if (fd2_rnd(0, 1)) {
        /* the code generator's folded start bias - in_zp * sum(w), in int64 here */
        int32_t oc;
        for (oc = 0; oc < cout; oc++) {
            int64_t sw = 0;
            for (i = 0; i < cin; i++) {
                sw += fd2_w[oc * cin + i];
            }
            fd2_bzp[oc] = (int32_t)(uint32_t)(uint64_t)((int64_t)(p.bias ? p.bias[oc] : 0) -
                                                         (int64_t)p.in_zp * sw);
        }
        p.bias_zp = fd2_bzp;
    }
    p.rq.mode = fd2_rnd(0, 1) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    p.rq.per_channel = fd2_rnd(0, 3) != 0;
    p.rq.qmul = fd2_qmul;
    p.rq.qshift = fd2_qshift;
    p.rq.fmul = fd2_fmul;
    fd2_records(&p, cout);
    fd2_rand_buffers();
    vin.data = fd2_in;
    vin.H = H;
    vin.W = W;
    vin.C = cin;
    vin.y0 = 0;
    vin.xcap = ixcap;
    vin.cap = H * ixcap * cin;
    vref.H = H;
    vref.W = W;
    vref.C = cout;
    vref.y0 = 0;
    vref.xcap = oxcap;
    vref.cap = H * oxcap * cout;
    vgot = vref;
    vref.data = fd2_ref;
    vgot.data = fd2_got;
    /* the columns a ring holds: an input and output ring of xcap slots hold any xcap
     * consecutive columns; take the pixels one call each, left to right, like run_fused */
    ox0 = fd2_rnd(0, W - MSF_MIN(ixcap, oxcap));
    ox1 = ox0 + fd2_rnd(1, MSF_MIN(ixcap, oxcap));
    for (ox = ox0; ox < ox1; ox++) {
        msf_conv2d_s8_ref(&p, &vin, &vref, oy, oy + 1, ox, ox + 1);
        msf_conv2d_s8(&p, &vin, &vgot, oy, oy + 1, ox, ox + 1);
    }
    return fd2_differs();
}

/* One wide single-pixel 1 x 1 case (the generated layers' widths that msf_conv1x1_s8_run's
 * DSP record path takes with constant-width dot loops, dot14k_64 / _128 / _256, and the
 * other multiples of 4): C_in 64, 128, 256 or 4..72 in steps of 4, C_out 1..11, one pixel of
 * a 1 x 2 view, the generator's folded bias and requantisation records in half the fixed-point
 * cases (fd2_records), else as fd2_case; 1 if the fast kernel differs from the reference. */
/* A 1x1 conv of cin -> cout channels with random zero points, clamp, weights, folded start
 * bias, requantisation (mode, per-channel, records) and buffers: the set-up of the wide-pixel
 * and column cases, drawn in this order */
static void fd2_pw_setup(msf_conv_s8_params *p, int32_t cin, int32_t cout)
{
    int32_t i, oc;
    for (i = 0; i < (int32_t)sizeof *p; i++) {
        ((uint8_t *)p)[i] = 0;
    }
    p->win.kh = p->win.kw = p->win.sh = p->win.sw = 1;
    p->groups = 1;
    p->in_zp = fd2_rnd(-128, 127);
    p->out_zp = fd2_rnd(-128, 127);
    p->act_min = fd2_rnd(0, 1) ? -128 : fd2_rnd(-128, 0);
    p->act_max = fd2_rnd(0, 1) ? 127 : fd2_rnd(p->act_min, 127);
    fd2_rand_weights(cin * cout, cout);
    p->weights = fd2_w;
    p->bias = fd2_bias;
    for (oc = 0; oc < cout; oc++) {
        int64_t sw = 0;
        for (i = 0; i < cin; i++) {
            sw += fd2_w[oc * cin + i];
        }
        fd2_bzp[oc] = (int32_t)(uint32_t)(uint64_t)((int64_t)p->bias[oc] - (int64_t)p->in_zp * sw);
    }
    p->bias_zp = fd2_bzp;
    p->rq.mode = fd2_rnd(0, 3) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    p->rq.per_channel = fd2_rnd(0, 3) != 0;
    p->rq.qmul = fd2_qmul;
    p->rq.qshift = fd2_qshift;
    p->rq.fmul = fd2_fmul;
    fd2_records(p, cout);
    fd2_rand_buffers();
}

static int fd2_wide_case(void)
{
    static const int32_t widths[3] = {64, 128, 256};
    msf_conv_s8_params p;
    msf_view vin, vref, vgot;
    const int32_t cin = fd2_rnd(0, 1) ? widths[fd2_rnd(0, 2)] : 4 * fd2_rnd(1, FD2_CIN / 4);
    const int32_t cout = fd2_rnd(1, 11);
    const int32_t ox = fd2_rnd(0, 1);
    fd2_pw_setup(&p, cin, cout);
    vin.data = fd2_in;
    vin.H = 1;
    vin.W = 2;
    vin.C = cin;
    vin.y0 = 0;
    vin.xcap = 2;
    vin.cap = 2 * cin;
    vref.H = 1;
    vref.W = 2;
    vref.C = cout;
    vref.y0 = 0;
    vref.xcap = 2;
    vref.cap = 2 * cout;
    vgot = vref;
    vref.data = fd2_ref;
    vgot.data = fd2_got;
    msf_conv2d_s8_ref(&p, &vin, &vref, 0, 1, ox, ox + 1);
    msf_conv2d_s8(&p, &vin, &vgot, 0, 1, ox, ox + 1);
    return fd2_differs();
}

/* One 1 x 1 column case (a fused block's column call: msf_conv1x1_s8_run over n pixels of
 * one column, the DSP record path col_rqd and its constant-width copies C_in 8 / 16 / 32):
 * C_in 8, 16, 32 or 1..24, a column of 2..32 rows (one call) of a 1-column view, C_out 1..40
 * (at most FD2_OUT bytes out), the generator's folded bias always, records in half the
 * fixed-point cases; 1 if the fast kernel differs from the reference. */
static int fd2_col_case(void)
{
    static const int32_t widths[3] = {8, 16, 32};
    msf_conv_s8_params p;
    msf_view vin, vref, vgot;
    const int32_t cin = fd2_rnd(0, 2) ? widths[fd2_rnd(0, 2)] : fd2_rnd(1, 24);
    const int32_t n = fd2_rnd(2, 32);
    const int32_t cout = fd2_rnd(1, MSF_MIN(FD2_COUT, FD2_OUT / n));
    fd2_pw_setup(&p, cin, cout);
    vin.data = fd2_in;
    vin.H = n;
    vin.W = 2;
    vin.C = cin;
    vin.y0 = 0;
    vin.xcap = 1;
    vin.cap = n * cin;
    vref.H = n;
    vref.W = 2;
    vref.C = cout;
    vref.y0 = 0;
    vref.xcap = 1;
    vref.cap = n * cout;
    vgot = vref;
    vref.data = fd2_ref;
    vgot.data = fd2_got;
    msf_conv2d_s8_ref(&p, &vin, &vref, 0, n, 1, 2);
    msf_conv2d_s8(&p, &vin, &vgot, 0, n, 1, 2);
    return fd2_differs();
}

/* One RGB-stem case (a 3 x 3 conv over 3 input channels: msf_convk_s8_run's DSP record path
 * stem_rqd and the constant-length conv_run copy): a 3..8 x 3..8 input, stride 1 or 2, random
 * pads, C_out 1..12, a random output region (columns narrower than tall run down the column,
 * the others along rows; clipped windows through the reference), the generator's folded bias
 * always, records in half the fixed-point cases; 1 if the fast kernel differs. */
static int fd2_stem_case(void)
{
    msf_conv_s8_params p;
    msf_view vin, vref, vgot;
    const int32_t H = fd2_rnd(3, 8), W = fd2_rnd(3, 8), s = fd2_rnd(1, 2);
    int32_t i, oc, Ho, Wo, cout, oy0, oy1, ox0, ox1;
    for (i = 0; i < (int32_t)sizeof p; i++) {
        ((uint8_t *)&p)[i] = 0;
    }
    p.win.kh = p.win.kw = 3;
    p.win.sh = p.win.sw = s;
    p.win.pad_top = fd2_rnd(0, 1);
    p.win.pad_left = fd2_rnd(0, 1);
    p.win.pad_bottom = fd2_rnd(0, 1);
    p.win.pad_right = fd2_rnd(0, 1);
    Ho = (H + p.win.pad_top + p.win.pad_bottom - 3) / s + 1;
    Wo = (W + p.win.pad_left + p.win.pad_right - 3) / s + 1;
    cout = fd2_rnd(1, MSF_MIN(12, FD2_OUT / (Ho * Wo)));
    p.groups = 1;
    p.in_zp = fd2_rnd(-128, 127);
    p.out_zp = fd2_rnd(-128, 127);
    p.act_min = fd2_rnd(0, 1) ? -128 : fd2_rnd(-128, 0);
    p.act_max = fd2_rnd(0, 1) ? 127 : fd2_rnd(p.act_min, 127);
    fd2_rand_weights(27 * cout, cout);
    p.weights = fd2_w;
    p.bias = fd2_bias;
    for (oc = 0; oc < cout; oc++) {
        int64_t sw = 0;
        for (i = 0; i < 27; i++) {
            sw += fd2_w[oc * 27 + i];
        }
        fd2_bzp[oc] = (int32_t)(uint32_t)(uint64_t)((int64_t)p.bias[oc] - (int64_t)p.in_zp * sw);
    }
    p.bias_zp = fd2_bzp;
    p.rq.mode = fd2_rnd(0, 3) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    p.rq.per_channel = fd2_rnd(0, 3) != 0;
    p.rq.qmul = fd2_qmul;
    p.rq.qshift = fd2_qshift;
    p.rq.fmul = fd2_fmul;
    fd2_records(&p, cout);
    fd2_rand_buffers();
    vin.data = fd2_in;
    vin.H = H;
    vin.W = W;
    vin.C = 3;
    vin.y0 = 0;
    vin.xcap = W;
    vin.cap = H * W * 3;
    vref.H = Ho;
    vref.W = Wo;
    vref.C = cout;
    vref.y0 = 0;
    vref.xcap = Wo;
    vref.cap = Ho * Wo * cout;
    vgot = vref;
    vref.data = fd2_ref;
    vgot.data = fd2_got;
    oy0 = fd2_rnd(0, Ho - 1);
    oy1 = fd2_rnd(oy0 + 1, Ho);
    ox0 = fd2_rnd(0, Wo - 1);
    ox1 = fd2_rnd(0, 1) ? ox0 + 1 : fd2_rnd(ox0 + 1, Wo);
    msf_conv2d_s8_ref(&p, &vin, &vref, oy0, oy1, ox0, ox1);
    msf_conv2d_s8(&p, &vin, &vgot, oy0, oy1, ox0, ox1);
    return fd2_differs();
}

/* One depthwise short-call case (msf_s8_dwfast.c dw_short_runs: dw_px33_m / dw_pxt_m, chunks
 * of MSF_DW_CHUNK = 32 channels): C 1..60, a 3x3 (or 1..5 x 1..5) window, stride 1 or 2, random
 * pads, the input in a ring of kw column slots (windows wrapping around it) or a full view,
 * one output pixel or a column of 1..4 rows at a random column (border or interior) into a
 * one-column output ring, per-channel or per-tensor fixed / float requantisation with
 * the corners, clamps inside and outside int8; 1 if the fast kernel differs from
 * msf_dwconv2d_s8_ref anywhere in the output buffer. */
static int fd2_dw_case(void)
{
    msf_conv_s8_params p;
    msf_view vin, vref, vgot;
    const int32_t C = fd2_rnd(0, 2) == 0 ? fd2_rnd(1, 8) : fd2_rnd(1, FD2_DWC);
    const int32_t k3 = fd2_rnd(0, 3) != 0;
    const int32_t kh = k3 ? 3 : fd2_rnd(1, 5), kw = k3 ? 3 : fd2_rnd(1, 5);
    const int32_t s = fd2_rnd(1, 2);
    const int32_t H = 6, W = 6;
    int32_t i, Ho, Wo, oy0, oy1, ox, ring;
    for (i = 0; i < (int32_t)sizeof p; i++) {
        ((uint8_t *)&p)[i] = 0;
    }
    p.win.kh = kh;
    p.win.kw = kw;
    p.win.sh = p.win.sw = s;
    p.win.pad_top = fd2_rnd(0, kh - 1);
    p.win.pad_left = fd2_rnd(0, kw - 1);
    p.win.pad_bottom = fd2_rnd(0, kh - 1);
    p.win.pad_right = fd2_rnd(0, kw - 1);
    Ho = (H + p.win.pad_top + p.win.pad_bottom - kh) / s + 1;
    Wo = (W + p.win.pad_left + p.win.pad_right - kw) / s + 1;
    p.groups = C;
    p.in_zp = fd2_rnd(0, 3) == 0 ? 0 : fd2_rnd(-128, 127);
    p.out_zp = fd2_rnd(-128, 127);
    p.act_min = fd2_rnd(0, 1) ? -128 : fd2_rnd(-128, 0);
    p.act_max = fd2_rnd(0, 1) ? 127 : fd2_rnd(p.act_min, 127);
    if (fd2_rnd(0, 9) == 0) {
        p.act_min = fd2_rnd(-300, 0);
        p.act_max = fd2_rnd(0, 300);
    }
    fd2_rand_weights(C * kh * kw, C);
    p.weights = fd2_w;
    p.bias = fd2_rnd(0, 5) ? fd2_bias : (const int32_t *)0;
    if (fd2_rnd(0, 1)) {
        /* the code generator's folded start bias - in_zp * sum(w), in int64 here */
        int32_t c, t;
        for (c = 0; c < C; c++) {
            int64_t sw = 0;
            for (t = 0; t < kh * kw; t++) {
                sw += fd2_w[c * kh * kw + t];
            }
            fd2_bzp[c] = (int32_t)(uint32_t)(uint64_t)((int64_t)(p.bias ? p.bias[c] : 0) -
                                                        (int64_t)p.in_zp * sw);
        }
        p.bias_zp = fd2_bzp;
    }
    p.rq.mode = fd2_rnd(0, 1) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    p.rq.per_channel = fd2_rnd(0, 3) != 0;
    p.rq.qmul = fd2_qmul;
    p.rq.qshift = fd2_qshift;
    p.rq.fmul = fd2_fmul;
    fd2_records(&p, C);
    /* input: rows [0, H) in a ring of kw column slots (ring; always past 30 channels) or the
     * full view; the ring's slots hold whatever columns they hold (both kernels read the
     * same bytes) */
    ring = C > 30 || fd2_rnd(0, 1);
    ox = fd2_rnd(0, Wo - 1);
    oy0 = fd2_rnd(0, Ho - 1);
    oy1 = oy0 + (fd2_rnd(0, 1) ? 1 : fd2_rnd(1, 4)); /* (not inside MSF_MIN) */
    oy1 = MSF_MIN(Ho, oy1);
    if (H * (ring ? kw : W) * C > FD2_IN || C * kh * kw > FD2_CIN * FD2_COUT) {
        return 0; /* too big for the buffers (a wide window over many channels): skip */
    }
    fd2_rand_buffers();
    vin.data = fd2_in;
    vin.H = H;
    vin.W = W;
    vin.C = C;
    vin.y0 = 0;
    vin.xcap = ring ? kw : W;
    vin.cap = H * vin.xcap * C;
    /* output: a one-column ring from row oy0 on (a fused block's next input ring) */
    vref.H = Ho;
    vref.W = Wo;
    vref.C = C;
    vref.y0 = oy0;
    vref.xcap = 1;
    vref.cap = (oy1 - oy0) * C;
    vgot = vref;
    vref.data = fd2_ref;
    vgot.data = fd2_got;
    msf_dwconv2d_s8_ref(&p, &vin, &vref, oy0, oy1, ox, ox + 1);
    msf_dwconv2d_s8(&p, &vin, &vgot, oy0, oy1, ox, ox + 1);
    return fd2_differs();
}

/* `cases` random cases from `seed`; returns how many differ. */
static uint32_t fd2_run(uint32_t seed, int32_t cases)
{
    uint32_t fails = 0;
    int32_t t;
    fd2_state = seed * 2654435761u + 1u;
    for (t = 0; t < cases; t++) {
        fails += (uint32_t)fd2_case();
        fails += (uint32_t)fd2_dw_case();
        fails += (uint32_t)fd2_wide_case();
        fails += (uint32_t)fd2_col_case();
        fails += (uint32_t)fd2_stem_case();
    }
    return fails;
}
