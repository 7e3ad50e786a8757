/* ops_diff.c - differential test of the fast int8 pool / add / dense / GAP paths against the
 * reference loops kept in the runtime (msf_maxpool_s8 vs msf_maxpool_s8_ref, msf_avgpool_s8,
 * msf_add_s8, msf_dense_s8, msf_gap_core_s8, msf_gap_s8_accumulate vs their _ref).
 *
 * Freestanding (no stdio, small static buffers): included by test_ops_fast.c (host, ASan +
 * UBSan) and by ops_diff_mcu.c (cortex-m4 with the DSP / hardware-FMA paths, cortex-m0 /
 * rv32imac portable; run under QEMU by tests/test_c_kernels.py).  od_run(seed, cases) returns
 * the number of cases whose outputs differ anywhere in the output buffers (the region written
 * and the bytes around it, which must stay untouched).  Random shapes, strides, pads, zero
 * points, requantisation modes / corners, activation clamps, output regions and ring views. */
#include "msf_s8_fast.h"
#include "msf_s8_opsfast.h"

#define OD_MAX 2400
#define OD_CH 48

static uint32_t od_state = 1u;
static int8_t od_x[OD_MAX], od_x2[OD_MAX], od_in[OD_MAX], od_in2[OD_MAX], od_w[OD_MAX];
static int8_t od_ref[OD_MAX], od_got[OD_MAX];
static int32_t od_bias[OD_CH], od_qmul[OD_CH], od_qshift[OD_CH], od_s1[OD_CH], od_s2[OD_CH];
static float od_fmul[OD_CH];

static int32_t od_rnd(int32_t lo, int32_t hi) /* inclusive */
{
    od_state ^= od_state << 13;
    od_state ^= od_state >> 17;
    od_state ^= od_state << 5;
    return (int32_t)((uint32_t)lo + od_state % ((uint32_t)hi - (uint32_t)lo + 1u));
}

static void od_fill(int8_t *p, int32_t n)
{
    int32_t i, lo = od_rnd(-128, 0), hi = od_rnd(0, 127); /* random value ranges */
    for (i = 0; i < n; i++) {
        p[i] = (int8_t)od_rnd(lo, hi);
    }
}

/* an activation clamp: mostly inside int8, sometimes reaching past it (reference path) */
static void od_act(int32_t *lo, int32_t *hi)
{
    int32_t k = od_rnd(0, 9);
    *lo = k < 5 ? -128 : (k < 9 ? od_rnd(-128, 0) : od_rnd(-300, -129));
    *hi = k < 5 ? 127 : (k < 9 ? od_rnd(0, 127) : od_rnd(128, 300));
}

static int32_t od_q31(void)
{
    int32_t k = od_rnd(0, 19);
    if (k == 0) {
        return INT32_MIN;
    }
    return k == 1 ? od_rnd(0, 1000) : (int32_t)(0x40000000u + (uint32_t)od_rnd(0, 0x3FFFFFFF));
}

/* Random requantisation for C channels: fixed / float, per channel or not, corners. */
static void od_requant(msf_requant *rq, int32_t C)
{
    int32_t i;
    rq->mode = od_rnd(0, 1) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    rq->per_channel = od_rnd(0, 3) != 0;
    for (i = 0; i < C; i++) {
        int32_t k = od_rnd(0, 2);
        od_qmul[i] = od_q31();
        od_qshift[i] = od_rnd(0, 7) == 0 ? od_rnd(-31, 8) : od_rnd(-12, 1);
        od_fmul[i] = (float)od_rnd(1, 4000) * (k == 0 ? 1e-4f : (k == 1 ? 3e-3f : 2.5e-4f));
    }
    rq->qmul = od_qmul;
    rq->qshift = od_qshift;
    rq->fmul = od_fmul;
}

/* Rows [ry0, ry1) x columns [rx0, rx1) of the full H x W x C tensor src into a ring view
 * (y0 = ry0, xcap slots, column x at slot x % xcap); the other slots hold junk. */
static void od_ring(const int8_t *src, int32_t H, int32_t W, int32_t C, int32_t ry0, int32_t ry1,
                    int32_t rx0, int32_t rx1, int32_t xcap, int8_t *dst, msf_view *v)
{
    int32_t y, x, c, n = (ry1 - ry0) * xcap * C;
    for (c = 0; c < n; c++) {
        dst[c] = (int8_t)od_rnd(-128, 127);
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

/* output view over [oy0, oy1) x [ox0, ox1): a full tensor or a ring of fewer columns */
static void od_outview(int32_t Ho, int32_t Wo, int32_t C, int32_t oy0, int32_t ox0, int32_t ox1,
                       msf_view *v)
{
    int32_t ring = od_rnd(0, 1);
    v->H = Ho;
    v->W = Wo;
    v->C = C;
    v->y0 = ring ? oy0 : 0;
    v->xcap = ring ? od_rnd(ox1 - ox0, Wo) : Wo;
    v->cap = (Ho - v->y0) * v->xcap * C;
    (void)ox0;
}

static void od_copy(int32_t n) /* od_got = od_ref (no libc: freestanding on the MCUs) */
{
    int32_t i;
    for (i = 0; i < n; i++) {
        od_got[i] = od_ref[i];
    }
}

static int od_same(int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        if (od_ref[i] != od_got[i]) {
            return 0;
        }
    }
    return 1;
}

/* input rows [lo, hi) a window op reads for outputs [o0, o1), clipped to [0, size) */
static void od_in_range(int32_t o0, int32_t o1, int32_t k, int32_t s, int32_t pad, int32_t size,
                        int32_t *lo, int32_t *hi)
{
    *lo = MSF_MAX(o0 * s - pad, 0);
    *hi = MSF_MIN((o1 - 1) * s - pad + k, size);
    if (*hi <= *lo) {
        *lo = 0;
        *hi = 1;
    }
}

static int od_pool_case(int avg)
{
    msf_pool_s8_params p;
    msf_view in, out;
    int32_t H, W, C, kh, kw, Ho, Wo, oy0, oy1, ox0, ox1, ry0, ry1, rx0, rx1, xcap, n;
    p.win.kh = kh = od_rnd(1, od_rnd(0, 9) == 0 ? 9 : 4);
    p.win.kw = kw = od_rnd(1, od_rnd(0, 9) == 0 ? 9 : 4);
    p.win.sh = od_rnd(1, 3);
    p.win.sw = od_rnd(1, 3);
    p.win.pad_top = od_rnd(0, kh - 1);
    p.win.pad_bottom = od_rnd(0, kh - 1);
    p.win.pad_left = od_rnd(0, kw - 1);
    p.win.pad_right = od_rnd(0, kw - 1);
    H = od_rnd(MSF_MAX(1, kh - p.win.pad_top - p.win.pad_bottom), 10);
    W = od_rnd(MSF_MAX(1, kw - p.win.pad_left - p.win.pad_right), 10);
    C = od_rnd(1, 13);
    if (H * W * C > OD_MAX) {
        C = 1;
    }
    Ho = (H + p.win.pad_top + p.win.pad_bottom - kh) / p.win.sh + 1;
    Wo = (W + p.win.pad_left + p.win.pad_right - kw) / p.win.sw + 1;
    oy0 = od_rnd(0, Ho - 1);
    oy1 = od_rnd(oy0 + 1, Ho);
    ox0 = od_rnd(0, Wo - 1);
    ox1 = od_rnd(ox0 + 1, Wo);
    od_in_range(oy0, oy1, kh, p.win.sh, p.win.pad_top, H, &ry0, &ry1);
    od_in_range(ox0, ox1, kw, p.win.sw, p.win.pad_left, W, &rx0, &rx1);
    xcap = od_rnd(0, 1) ? W : od_rnd(rx1 - rx0, W);
    p.mode = od_rnd(0, 2) == 0 ? MSF_RQ_FIXED : (od_rnd(0, 1) ? MSF_RQ_FLOAT : MSF_RQ_FLOAT_QDQ);
    p.in_zp = od_rnd(-128, 127);
    p.out_zp = od_rnd(-128, 127);
    p.in_scale = (float)od_rnd(1, 1000) * 1e-3f;
    p.out_scale = (float)od_rnd(1, 1000) * 1e-3f;
    p.count_include_pad = od_rnd(0, 1);
    od_act(&p.act_min, &p.act_max);
    od_fill(od_x, H * W * C);
    od_ring(od_x, H, W, C, ry0, ry1, rx0, rx1, xcap, od_in, &in);
    od_outview(Ho, Wo, C, oy0, ox0, ox1, &out);
    n = out.cap;
    od_fill(od_ref, n);
    od_copy(n);
    out.data = od_ref;
    if (avg) {
        msf_avgpool_s8_ref(&p, &in, &out, oy0, oy1, ox0, ox1);
        out.data = od_got;
        msf_avgpool_s8(&p, &in, &out, oy0, oy1, ox0, ox1);
    } else {
        msf_maxpool_s8_ref(&p, &in, &out, oy0, oy1, ox0, ox1);
        out.data = od_got;
        msf_maxpool_s8(&p, &in, &out, oy0, oy1, ox0, ox1);
    }
    return !od_same(n);
}

static int od_add_case(void)
{
    msf_add_s8_params p;
    msf_view a, b, out;
    int32_t H = od_rnd(1, 8), W = od_rnd(1, 10), C = od_rnd(1, 20), oy0, oy1, ox0, ox1;
    int32_t ry0, rx0, n, alias = od_rnd(0, 3) == 0;
    if (H * W * C > OD_MAX / 2) {
        C = 1;
    }
    p.mode = od_rnd(0, 1) ? MSF_RQ_FIXED : MSF_RQ_FLOAT;
    p.sub = od_rnd(0, 1);
    p.in1_zp = od_rnd(-128, 127);
    p.in2_zp = od_rnd(-128, 127);
    p.out_zp = od_rnd(-128, 127);
    p.left_shift = od_rnd(0, 15) == 0 ? od_rnd(0, 20) : 20;
    p.in1_mul = od_q31();
    p.in2_mul = od_q31();
    p.out_mul = od_q31();
    p.in1_shift = od_rnd(0, 9) == 0 ? od_rnd(-31, 0) : od_rnd(-3, 0);
    p.in2_shift = od_rnd(0, 9) == 0 ? od_rnd(-31, 0) : od_rnd(-3, 0);
    p.out_shift = od_rnd(0, 9) == 0 ? od_rnd(-31, 0) : od_rnd(-24, -15);
    p.mul1 = (float)od_rnd(1, 3000) * 1e-3f * (od_rnd(0, 9) == 0 ? -1.0f : 1.0f);
    p.mul2 = (float)od_rnd(1, 3000) * 1e-3f;
    p.fbias = (float)od_rnd(-200000, 200000) * 1e-3f;
    if (od_rnd(0, 19) == 0) {
        p.mul1 = 3e9f; /* far outside int32: the reference's overflow case */
    }
    od_act(&p.act_min, &p.act_max);
    oy0 = od_rnd(0, H - 1);
    oy1 = od_rnd(oy0 + 1, H);
    ox0 = od_rnd(0, W - 1);
    ox1 = od_rnd(ox0 + 1, W);
    od_fill(od_x, H * W * C);
    od_fill(od_x2, H * W * C);
    ry0 = od_rnd(0, oy0);
    rx0 = od_rnd(0, ox0);
    od_ring(od_x2, H, W, C, ry0, H, rx0, ox1, od_rnd(0, 1) ? W : od_rnd(ox1 - rx0, W), od_in2, &b);
    if (alias) { /* in place: the output is the first input's view (the executor's in-place add) */
        od_ring(od_x, H, W, C, oy0, H, ox0, ox1, od_rnd(0, 1) ? W : od_rnd(ox1 - ox0, W), od_ref, &a);
        n = a.cap;
        od_copy(n);
        out = a;
        msf_add_s8_ref(&p, &a, &b, &out, oy0, oy1, ox0, ox1);
        a.data = out.data = od_got;
        msf_add_s8(&p, &a, &b, &out, oy0, oy1, ox0, ox1);
        return !od_same(n);
    }
    od_ring(od_x, H, W, C, oy0, H, ox0, ox1, od_rnd(0, 1) ? W : od_rnd(ox1 - ox0, W), od_in, &a);
    od_outview(H, W, C, oy0, ox0, ox1, &out);
    n = out.cap;
    od_fill(od_ref, n);
    od_copy(n);
    out.data = od_ref;
    msf_add_s8_ref(&p, &a, &b, &out, oy0, oy1, ox0, ox1);
    out.data = od_got;
    msf_add_s8(&p, &a, &b, &out, oy0, oy1, ox0, ox1);
    return !od_same(n);
}

static int od_dense_case(void)
{
    msf_dense_s8_params p;
    msf_view in, out;
    int32_t K = od_rnd(1, od_rnd(0, 3) == 0 ? 400 : 40), N = od_rnd(1, OD_CH), i;
    if (K * N > OD_MAX) {
        N = OD_MAX / K;
    }
    p.in_zp = od_rnd(-128, 127);
    p.w_zp = od_rnd(0, 3) == 0 ? od_rnd(-128, 127) : 0;
    p.out_zp = od_rnd(-128, 127);
    od_act(&p.act_min, &p.act_max);
    od_fill(od_w, K * N);
    od_fill(od_x, K);
    for (i = 0; i < N; i++) {
        od_bias[i] = od_rnd(-100000, 100000);
    }
    p.weights = od_w;
    p.bias = od_rnd(0, 4) == 0 ? NULL : od_bias;
    od_requant(&p.rq, N);
    in.data = od_x;
    in.H = 1;
    in.W = 1;
    in.C = K;
    in.y0 = 0;
    in.xcap = 1;
    in.cap = K;
    out = in;
    out.C = N;
    out.cap = N + 8;
    od_fill(od_ref, N + 8);
    od_copy(N + 8);
    out.data = od_ref;
    msf_dense_s8_ref(&p, &in, &out);
    out.data = od_got;
    msf_dense_s8(&p, &in, &out);
    return !od_same(N + 8);
}

static int od_gap_case(void)
{
    msf_requant rq;
    int32_t H = od_rnd(1, 9), W = od_rnd(1, 9), C = od_rnd(1, OD_CH), k = od_rnd(0, 3), i;
    int32_t in_zp = od_rnd(-128, 127), out_zp = od_rnd(-128, 127), lo, hi, bad = 0;
    int32_t oy0, oy1, ox0, ox1;
    float fb = (float)od_rnd(1, 2000) * 1e-4f;
    msf_view in;
    if (H * W * C > OD_MAX) {
        C = OD_MAX / (H * W);
    }
    od_act(&lo, &hi);
    od_requant(&rq, 1);
    rq.per_channel = 0;
    rq.mode = k == 0 ? MSF_RQ_FIXED : (k == 1 ? MSF_RQ_MEAN : MSF_RQ_FLOAT);
    od_fill(od_x, H * W * C);
    od_fill(od_ref, C + 8);
    od_copy(C + 8);
    msf_gap_core_s8_ref(od_x, H * W, C, od_ref, in_zp, out_zp, lo, hi, k == 3 ? NULL : &rq, fb);
    msf_gap_core_s8(od_x, H * W, C, od_got, in_zp, out_zp, lo, hi, k == 3 ? NULL : &rq, fb);
    bad |= !od_same(C + 8);
    /* streamed: a region of a ring view added to running sums */
    oy0 = od_rnd(0, H - 1);
    oy1 = od_rnd(oy0 + 1, H);
    ox0 = od_rnd(0, W - 1);
    ox1 = od_rnd(ox0 + 1, W);
    od_ring(od_x, H, W, C, oy0, H, ox0, ox1, od_rnd(0, 1) ? W : od_rnd(ox1 - ox0, W), od_in, &in);
    for (i = 0; i < C; i++) {
        od_s1[i] = od_s2[i] = od_rnd(-50000, 50000);
    }
    msf_gap_s8_accumulate_ref(&in, oy0, oy1, ox0, ox1, od_s1);
    msf_gap_s8_accumulate(&in, oy0, oy1, ox0, ox1, od_s2);
    for (i = 0; i < C; i++) {
        bad |= od_s1[i] != od_s2[i];
    }
    return bad;
}

static uint32_t od_run(uint32_t seed, int32_t cases)
{
    uint32_t fails = 0;
    int32_t i;
    od_state = seed * 2654435761u + 12345u;
    if (od_state == 0) {
        od_state = 1;
    }
    for (i = 0; i < cases; i++) {
        switch (i % 5) {
        case 0: fails += (uint32_t)od_pool_case(0); break;
        case 1: fails += (uint32_t)od_pool_case(1); break;
        case 2: fails += (uint32_t)od_add_case(); break;
        case 3: fails += (uint32_t)od_dense_case(); break;
        default: fails += (uint32_t)od_gap_case(); break;
        }
    }
    return fails;
}
