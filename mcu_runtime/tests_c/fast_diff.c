/* fast_diff.c - differential test of the fast int8 kernels against the reference loops
 * (msf_conv2d_s8 vs msf_conv2d_s8_ref, msf_dwconv2d_s8 vs msf_dwconv2d_s8_ref) and of the
 * inlined requantisation (msf_rqc_apply) against msf_requant_s8 + the activation clamp.
 *
 * Freestanding (no stdio, small static buffers): included by test_fast_kernels.c (host, ASan +
 * UBSan) and by fast_diff_mcu.c (cortex-m4 with the DSP path, cortex-m0 / rv32imac portable, run
 * under QEMU by tests/test_fast_kernels.py).  fd_run(seed, cases) returns the number of cases
 * whose outputs differ anywhere in the output buffers (the region written and the bytes around it,
 * which must stay untouched). */
#include "msf_s8_fast.h"
#include "msf_s8_requant.h"

#define FD_MAX 2000
#define FD_CH 40

static uint32_t fd_state = 1u;
static int8_t fd_x[FD_MAX], fd_in[FD_MAX], fd_w[FD_MAX], fd_ref[FD_MAX], fd_got[FD_MAX];
static int32_t fd_bias[FD_CH], fd_bzp[FD_CH], fd_qmul[FD_CH], fd_qshift[FD_CH];
static float fd_fmul[FD_CH];

static int32_t fd_rnd(int32_t lo, int32_t hi) /* inclusive */
{
    fd_state ^= fd_state << 13;
    fd_state ^= fd_state >> 17;
    fd_state ^= fd_state << 5;
    return (int32_t)((uint32_t)lo + fd_state % ((uint32_t)hi - (uint32_t)lo + 1u));
}

static int32_t fd_out_extent(int32_t size, int32_t k, int32_t s, int32_t d, int32_t p0,
                             int32_t p1)
{
    return (size + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

/* Random requantisation parameters for C channels (both modes, per channel or not, and the
 * corners: qmul INT32_MIN, shifts from -31 to +8). */
static void fd_requant(msf_requant *rq, int32_t C)
{
    int32_t i;
    rq->mode = fd_rnd(0, 1) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    rq->per_channel = fd_rnd(0, 3) != 0;
    for (i = 0; i < C; i++) {
        int32_t k = fd_rnd(0, 15);
        if (k == 0) {
            fd_qmul[i] = INT32_MIN;
        } else if (k == 1) {
            fd_qmul[i] = fd_rnd(0, 1000);
        } else {
            fd_qmul[i] = (int32_t)(0x40000000u + (uint32_t)fd_rnd(0, 0x3FFFFFFF));
        }
        fd_qshift[i] = fd_rnd(0, 7) == 0 ? fd_rnd(-31, 8) : fd_rnd(-12, 1);
        /* k == 2: scales near 1, where one accumulator unit shows; k == 3: scales up to 1.2e5,
         * products past 2^31 (the int32 saturation of MSF_RQ_VCVTR's conversion) */
        k = fd_rnd(0, 3);
        fd_fmul[i] = (float)fd_rnd(1, 4000) *
                     (k == 0 ? 1e-4f : (k == 1 ? 3e-3f : (k == 2 ? 2.5e-4f : 30.0f)));
        if (k == 2 && fd_qshift[i] < -3) {
            fd_qshift[i] = fd_rnd(-3, 0);
        }
    }
    rq->qmul = fd_qmul;
    rq->qshift = fd_qshift;
    rq->fmul = fd_fmul;
}

/* The code generator's DSP requantisation records (msf_conv_s8_params.rqd, read on cores with
 * the DSP extension, ignored elsewhere): for half the fixed-point cases with the clamp inside
 * int8, every channel moved into the records' range (normalised multiplier, shift -1..-20;
 * the reference reads the same values) and its (mul, -shift, 2^(-shift-1)) per output
 * channel (entry 0's for every channel when per tensor), computed here as codegen.rqd_records
 * does. */
static int32_t fd_rqd[3 * FD_CH];
static void fd_records(msf_conv_s8_params *p, int32_t C)
{
    int32_t i;
    if (p->rq.mode != MSF_RQ_FIXED || p->act_min < -128 || p->act_max > 127 ||
        p->act_min > p->act_max || fd_rnd(0, 1)) {
        return;
    }
    for (i = 0; i < C; i++) {
        if (fd_qmul[i] < 0x40000000) {
            fd_qmul[i] = (int32_t)(0x40000000u + (uint32_t)fd_rnd(0, 0x3FFFFFFF));
        }
        if (fd_qshift[i] > -1 || fd_qshift[i] < -20) {
            fd_qshift[i] = -fd_rnd(1, 20);
        }
    }
    for (i = 0; i < C; i++) {
        const int32_t j = p->rq.per_channel ? i : 0, e = -fd_qshift[j];
        fd_rqd[3 * i] = fd_qmul[j];
        fd_rqd[3 * i + 1] = e;
        fd_rqd[3 * i + 2] = (int32_t)(1u << (e - 1));
    }
    p->rqd = fd_rqd;
}

/* Copy rows [ry0, ry1) x columns [rx0, rx1) of the full H x W x C tensor src into a ring view
 * (y0 = ry0, xcap columns, column x at slot x % xcap); the other slots keep junk. */
static void fd_ring(const int8_t *src, int32_t H, int32_t W, int32_t C, int32_t ry0,
                    int32_t ry1, int32_t rx0, int32_t rx1, int32_t xcap, int8_t *dst,
                    msf_view *v)
{
    int32_t y, x, c, n = (ry1 - ry0) * xcap * C;
    for (c = 0; c < n; c++) {
        dst[c] = (int8_t)fd_rnd(-128, 127);
    }
    for (y = ry0; y < ry1; y++) {
        for (x = rx0; x < rx1; x++) {
            for (c = 0; c < C; c++) {
                dst[((y - ry0) * xcap + x % xcap) * C + c] = src[(y * W + x) * C + c];
            }
        }
    }
    v->data = dst;
    v->H = H;
    v->W = W;
    v->C = C;
    v->y0 = ry0;
    v->xcap = xcap;
    v->cap = n > 0 ? n : 1;
}

/* One random conv (dw = 0) or depthwise (dw = 1; dw = 2: 3x3, >= 4 channels) case; 1 if fast
 * != reference. */
/* fd_pw_cin != 0: the conv case is a pointwise (1x1, one group) case of that many input
 * channels (the fast kernels' constant-length copies: 5, 8, 11, 16) */
static int32_t fd_pw_cin = 0;

static int fd_conv_case(int dw)
{
    msf_conv_s8_params p;
    msf_window *w = &p.win;
    int32_t H, W, Cin, Cout, Ho, Wo, G, cig, i, oy0, oy1, ox0, ox1, ry0, ry1, rx0, rx1, xcap;
    /* dw 2: a 3x3 depthwise case of at least four channels (the DSP loops' channel groups over
     * full windows and border windows of 2 or 3 valid rows / columns: dw33_call) */
    int32_t ocap, nout, span_w, span_h, region, shape = dw == 2 ? 1 : (fd_pw_cin ? 0 : fd_rnd(0, dw ? 6 : 3)), big;
    msf_view vin, vref, vgot;
    for (i = 0; i < (int32_t)sizeof p; i++) {
        ((uint8_t *)&p)[i] = 0;
    }
    /* kernel: pointwise / 3x3 most often, any up to 5 otherwise; depthwise also 5x5 / 7x7
     * (the mcunet zoo's) and any up to 7 x 8 (past 49 taps or 8 columns: the reference loop) */
    if (shape == 0) {
        w->kh = w->kw = 1;
    } else if (shape <= 2) {
        w->kh = w->kw = 3;
    } else if (shape == 3) {
        w->kh = fd_rnd(1, 5);
        w->kw = fd_rnd(1, 5);
    } else if (shape <= 5) {
        w->kh = w->kw = fd_rnd(0, 1) ? 5 : 7;
    } else {
        w->kh = fd_rnd(1, 7);
        w->kw = fd_rnd(1, 8);
    }
    big = w->kh > 3 || w->kw > 3;
    w->sh = fd_rnd(1, 3) == 3 ? 2 : 1;
    w->sw = fd_rnd(1, 3) == 3 ? 2 : 1;
    w->dil_h = fd_rnd(0, 5) == 0 ? 2 : 1;
    w->dil_w = fd_rnd(0, 5) == 0 ? 2 : (fd_rnd(0, 1) ? 1 : 0);
    w->pad_top = fd_rnd(0, w->kh - 1);
    w->pad_bottom = fd_rnd(0, w->kh - 1);
    w->pad_left = fd_rnd(0, w->kw - 1);
    w->pad_right = fd_rnd(0, w->kw - 1);
    if (fd_rnd(0, 2) == 0) {
        w->pad_top = w->pad_bottom = w->pad_left = w->pad_right = 0;
    }
    span_h = (w->kh - 1) * (w->dil_h > 1 ? w->dil_h : 1) + 1;
    span_w = (w->kw - 1) * (w->dil_w > 1 ? w->dil_w : 1) + 1;
    G = (!dw && !fd_pw_cin && fd_rnd(0, 5) == 0) ? 2 : 1;
    Cin = dw ? fd_rnd(dw == 2 ? 4 : 1, big ? 13 : 20)
             : (fd_pw_cin ? fd_pw_cin : G * fd_rnd(1, shape == 0 ? 20 : 6));
    Cout = dw ? Cin : G * fd_rnd(1, shape == 0 ? 20 : 8);
    H = fd_rnd(1, big ? 14 : 9);
    W = fd_rnd(1, big ? 14 : 9);
    if (H + w->pad_top + w->pad_bottom < span_h) {
        H = span_h;
    }
    if (W + w->pad_left + w->pad_right < span_w) {
        W = span_w;
    }
    while (H * W * Cin > FD_MAX / 2 && H > span_h) {
        H--;
    }
    while (H * W * Cin > FD_MAX / 2 && W > span_w) {
        W--;
    }
    Ho = fd_out_extent(H, w->kh, w->sh, w->dil_h > 1 ? w->dil_h : 1, w->pad_top, w->pad_bottom);
    Wo = fd_out_extent(W, w->kw, w->sw, w->dil_w > 1 ? w->dil_w : 1, w->pad_left, w->pad_right);
    while (dw && Cin > 1 && (H * W * Cin > FD_MAX / 2 || Ho * Wo * Cin > FD_MAX / 2)) {
        Cin--; /* a large depthwise window: fewer channels rather than a skipped case */
        Cout = Cin;
    }
    cig = Cin / G;
    if (H * W * Cin > FD_MAX / 2 || Ho * Wo * Cout > FD_MAX / 2 ||
        Cout * w->kh * w->kw * (dw ? 1 : cig) > FD_MAX || Cout > FD_CH) {
        return 0; /* too big for the buffers: skip (rare) */
    }
    p.groups = G;
    p.in_zp = fd_rnd(0, 3) == 0 ? 0 : fd_rnd(-128, 127);
    p.w_zp = fd_rnd(0, 5) == 0 ? fd_rnd(-20, 20) : 0;
    p.out_zp = fd_rnd(-128, 127);
    p.act_min = fd_rnd(0, 1) ? -128 : fd_rnd(-128, 0);
    p.act_max = fd_rnd(0, 1) ? 127 : fd_rnd(p.act_min, 127);
    if (fd_rnd(0, 11) == 0) { /* clamps outside int8: the loops' msf_rqc (non-lean) copies */
        p.act_min = fd_rnd(-300, 0);
        p.act_max = fd_rnd(0, 300);
    }
    for (i = 0; i < Cout * w->kh * w->kw * (dw ? 1 : cig); i++) {
        fd_w[i] = (int8_t)fd_rnd(fd_rnd(0, 9) == 0 ? -128 : -127, 127);
    }
    for (i = 0; i < Cout; i++) {
        fd_bias[i] = fd_rnd(0, 9) == 0 ? fd_rnd(-2000000, 2000000) : fd_rnd(-3000, 3000);
    }
    p.weights = fd_w;
    p.bias = fd_rnd(0, 5) ? fd_bias : (const int32_t *)0;
    if (fd_rnd(0, 2) != 0) {
        /* the code generator's folded start bias - in_zp * sum(w) (every tap of the channel),
         * computed here in int64 and wrapped to int32 independently of the kernels */
        const int32_t per = w->kh * w->kw * (dw ? 1 : cig);
        int32_t oc, k;
        for (oc = 0; oc < Cout; oc++) {
            int64_t sw = 0, v;
            for (k = 0; k < per; k++) {
                sw += fd_w[oc * per + k];
            }
            v = (int64_t)(p.bias ? p.bias[oc] : 0) - (int64_t)p.in_zp * sw;
            fd_bzp[oc] = (int32_t)(uint32_t)(uint64_t)v;
        }
        p.bias_zp = fd_bzp;
    }
    fd_requant(&p.rq, Cout);
    fd_records(&p, Cout);
    for (i = 0; i < H * W * Cin; i++) {
        fd_x[i] = (int8_t)fd_rnd(-128, 127);
    }
    /* output region and the input rows / columns it reads */
    oy0 = fd_rnd(0, Ho - 1);
    oy1 = fd_rnd(oy0 + 1, Ho);
    ox0 = fd_rnd(0, Wo - 1);
    ox1 = fd_rnd(ox0 + 1, Wo);
    region = fd_rnd(0, 7);
    if (region == 6) {
        /* a fused block's one-pixel call (an H-cache block one tile row high) */
        ox1 = ox0 + 1;
        oy1 = oy0 + 1;
    } else if (region == 7) {
        /* a short column call (1..4 rows: the depthwise short-call path, dw_short) */
        ox1 = ox0 + 1;
        oy1 = oy0 + fd_rnd(1, 4); /* (not inside MSF_MIN: it evaluates twice) */
        oy1 = MSF_MIN(Ho, oy1);
    } else if (region <= 1) {
        oy0 = 0;
        oy1 = Ho;
        ox0 = 0;
        ox1 = Wo;
    } else if (region == 2) {
        /* a fused block's column call: one or two columns down several rows */
        ox1 = ox0 + fd_rnd(1, 2); /* (not inside MSF_MIN: it evaluates twice) */
        ox1 = MSF_MIN(Wo, ox1);
        oy0 = fd_rnd(0, 1) ? 0 : oy0;
        oy1 = Ho;
    }
    ry0 = MSF_MAX(0, oy0 * w->sh - w->pad_top);
    ry1 = MSF_MIN(H, (oy1 - 1) * w->sh - w->pad_top + span_h);
    rx0 = MSF_MAX(0, ox0 * w->sw - w->pad_left);
    rx1 = MSF_MIN(W, (ox1 - 1) * w->sw - w->pad_left + span_w);
    if (ry1 <= ry0) {
        ry0 = 0;
        ry1 = 1;
    }
    if (rx1 <= rx0) {
        rx0 = 0;
        rx1 = 1;
    }
    if ((region == 2 && fd_rnd(0, 1)) || region == 3 || (region >= 6 && fd_rnd(0, 1))) {
        /* the narrowest ring: most windows wrap around it; region 3: a recompute patch, input
         * and output rings exactly as wide as the patch (the patch need not start at slot 0) */
        xcap = rx1 - rx0;
    } else if (fd_rnd(0, 2) == 0) { /* full input view */
        ry0 = 0;
        ry1 = H;
        rx0 = 0;
        rx1 = W;
        xcap = W;
    } else {
        xcap = fd_rnd(rx1 - rx0, W);
    }
    fd_ring(fd_x, H, W, Cin, ry0, ry1, rx0, rx1, xcap, fd_in, &vin);
    /* output: a full view or a ring holding exactly the region's columns and rows */
    if (region != 3 && fd_rnd(0, 1)) {
        ocap = Wo;
        vref.y0 = 0;
        nout = Ho * Wo * Cout;
    } else {
        ocap = region == 3 ? ox1 - ox0 : fd_rnd(ox1 - ox0, Wo);
        vref.y0 = oy0;
        nout = (oy1 - oy0) * ocap * Cout;
    }
    vref.H = Ho;
    vref.W = Wo;
    vref.C = Cout;
    vref.xcap = ocap;
    vref.cap = nout;
    vgot = vref;
    vref.data = fd_ref;
    vgot.data = fd_got;
    for (i = 0; i < FD_MAX; i++) {
        fd_ref[i] = fd_got[i] = (int8_t)fd_rnd(-128, 127);
    }
    if (dw) {
        msf_dwconv2d_s8_ref(&p, &vin, &vref, oy0, oy1, ox0, ox1);
        msf_dwconv2d_s8(&p, &vin, &vgot, oy0, oy1, ox0, ox1);
    } else {
        msf_conv2d_s8_ref(&p, &vin, &vref, oy0, oy1, ox0, ox1);
        msf_conv2d_s8(&p, &vin, &vgot, oy0, oy1, ox0, ox1);
    }
    for (i = 0; i < FD_MAX; i++) {
        if (fd_ref[i] != fd_got[i]) {
#ifdef FD_DEBUG
            printf("dw%d k%dx%d s%d,%d d%d,%d pad%d,%d,%d,%d H%d W%d C%d reg[%d,%d)x[%d,%d) "
                   "in y0=%d xcap=%d out y0=%d xcap=%d zp%d mode%d i=%d ref%d got%d\n",
                   dw, w->kh, w->kw, w->sh, w->sw, w->dil_h, w->dil_w, w->pad_top, w->pad_left,
                   w->pad_bottom, w->pad_right, H, W, Cin, oy0, oy1, ox0, ox1, vin.y0, vin.xcap,
                   vref.y0, vref.xcap, p.in_zp, p.rq.mode, i, fd_ref[i], fd_got[i]);
#endif
            return 1;
        }
    }
    return 0;
}

/* Inlined requantisation vs the reference, over accumulators across the int32 range. */
static int fd_requant_case(void)
{
    msf_requant rq;
    msf_rqc c;
    int32_t ch, k, zp = fd_rnd(-128, 127), lo = fd_rnd(-128, 0), hi = fd_rnd(lo, 127);
    int bad = 0;
    if (fd_rnd(0, 3) == 0) { /* clamps the merged single clamp does not cover */
        lo = fd_rnd(-300, 200);
        hi = fd_rnd(-200, 300);
    }
    fd_requant(&rq, FD_CH);
    for (ch = 0; ch < FD_CH; ch++) {
        msf_rqc_load(&rq, ch, zp, lo, hi, &c);
        for (k = 0; k < 16; k++) {
            int32_t acc, r;
            switch (k) {
            case 0: acc = INT32_MIN; break;
            case 1: acc = INT32_MAX; break;
            case 2: acc = 0; break;
            case 3: acc = -1; break;
            case 4: /* around the float fast path's limit |acc * fmul| = 2^22 */
            case 5: {
                const float m = rq.fmul[rq.per_channel ? ch : 0];
                const float b = m != 0.0f ? 4194304.0f / (m < 0.0f ? -m : m) : 0.0f;
                acc = b < 2.0e9f ? (int32_t)b + fd_rnd(-2, 2) : fd_rnd(-70000, 70000);
                acc = k == 5 ? -acc : acc;
                break;
            }
            default:
                acc = k < 8 ? fd_rnd(-70000, 70000)
                            : (int32_t)((uint32_t)fd_rnd(0, 0x7FFFFFFF) * 2u +
                                        (uint32_t)fd_rnd(0, 1));
            }
            r = msf_requant_s8(&rq, acc, ch, zp);
            r = msf_clamp_i32(r, lo, hi);
            if (msf_rqc_apply(&c, acc) != r) {
                bad = 1;
            }
        }
    }
    return bad;
}

/* Runs `cases` random cases of each kind from `seed`; returns the number that differ. */
static uint32_t fd_run(uint32_t seed, int32_t cases)
{
    uint32_t fails = 0;
    int32_t t;
    fd_state = seed * 2654435761u + 1u;
    for (t = 0; t < cases; t++) {
        fails += (uint32_t)fd_conv_case(0);
        fails += (uint32_t)fd_conv_case(1);
        fails += (uint32_t)fd_conv_case(2);
        fd_pw_cin = t % 4 == 0 ? 5 : (t % 4 == 1 ? 8 : (t % 4 == 2 ? 11 : 16));
        fails += (uint32_t)fd_conv_case(0);
        fd_pw_cin = 0;
        fails += (uint32_t)fd_requant_case();
    }
    return fails;
}
