/* msf_kernels_s8.c - int8 kernels working through msf_view. */
#include "msf_internal.h"

void msf_conv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                   int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t groups = p->groups > 0 ? p->groups : 1;
    const int32_t cig = in->C / groups;      /* input channels per group */
    const int32_t cog = out->C / groups;     /* output channels per group */
    const int32_t wstride = w->kh * w->kw * cig;
    const int32_t in_off = -p->in_zp;
    const int32_t w_off = -p->w_zp;
    int32_t oy, ox, g, oc, ky, kx, ci;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * out->C * wstride);
    for (oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * w->sh - w->pad_top;
        int32_t ky_lo, ky_hi;
        msf_tap_range(iy0, w->kh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
            for (g = 0; g < groups; g++) {
                for (oc = g * cog; oc < (g + 1) * cog; oc++) {
                    const int8_t *wk = p->weights + (int32_t)oc * wstride;
                    int32_t acc = p->bias ? p->bias[oc] : 0;
                    int32_t r;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            const int8_t *xp = x + msf_vofs(in, iy0 + ky, ix0 + kx) + g * cig;
                            const int8_t *wp = wk + (ky * w->kw + kx) * cig;
                            for (ci = 0; ci < cig; ci++) {
                                acc += ((int32_t)xp[ci] + in_off) * ((int32_t)wp[ci] + w_off);
                            }
                        }
                    }
                    r = msf_requant_s8(&p->rq, acc, oc, p->out_zp);
                    yp[oc] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
                }
            }
        }
    }
}

void msf_dwconv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    const int32_t ksz = w->kh * w->kw;
    const int32_t in_off = -p->in_zp;
    const int32_t w_off = -p->w_zp;
    int32_t oy, ox, c, ky, kx;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * ksz);
    for (oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * w->sh - w->pad_top;
        int32_t ky_lo, ky_hi;
        msf_tap_range(iy0, w->kh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
            for (c = 0; c < C; c++) {
                int32_t acc = p->bias ? p->bias[c] : 0;
                int32_t r;
                const int8_t *wk = p->weights + c * ksz;
                for (ky = ky_lo; ky < ky_hi; ky++) {
                    for (kx = kx_lo; kx < kx_hi; kx++) {
                        const int8_t *xp = x + msf_vofs(in, iy0 + ky, ix0 + kx);
                        acc += ((int32_t)xp[c] + in_off) * ((int32_t)wk[ky * w->kw + kx] + w_off);
                    }
                }
                r = msf_requant_s8(&p->rq, acc, c, p->out_zp);
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}

void msf_maxpool_s8(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c, ky, kx;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * w->kh * w->kw);
    for (oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * w->sh - w->pad_top;
        int32_t ky_lo, ky_hi;
        msf_tap_range(iy0, w->kh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
            for (c = 0; c < C; c++) {
                int32_t m = -128;
                for (ky = ky_lo; ky < ky_hi; ky++) {
                    for (kx = kx_lo; kx < kx_hi; kx++) {
                        int32_t v = x[msf_vofs(in, iy0 + ky, ix0 + kx) + c];
                        m = v > m ? v : m;
                    }
                }
                yp[c] = (int8_t)msf_clamp_i32(m, p->act_min, p->act_max);
            }
        }
    }
}

/* One channel of a global average pool from its int32 sum of raw values (every mode). */
static int8_t gap_finish_one_s8(int32_t acc, int32_t HW, int32_t in_zp, int32_t out_zp,
                                int32_t act_min, int32_t act_max, const msf_requant *rq,
                                float fallback_mul)
{
    int32_t r;
    if (rq == NULL) {
        /* ORT: sum - zp * N, requantised with x_scale / (y_scale * N) */
        float v = (float)(acc - in_zp * HW) * fallback_mul;
        v = msf_clamp_f32(v, (float)(-128 - out_zp), (float)(127 - out_zp));
        r = msf_round_half_even(v) + out_zp;
    } else if (rq->mode == MSF_RQ_FIXED) {
        /* TFLM MEAN: sum(x - zp), MBQM, rounding division by N (half away from zero) */
        acc -= in_zp * HW;
        acc = msf_mbqm(acc, rq->qmul[0], rq->qshift[0]);
        acc = acc > 0 ? (acc + HW / 2) / HW : (acc - HW / 2) / HW;
        r = msf_clamp_i32(acc + out_zp, -128, 127);
    } else if (rq->mode == MSF_RQ_MEAN) {
        /* TFLM MEAN (reference_ops::QuantizedMeanOrSum): 1/N folded into qmul/qshift */
        acc -= in_zp * HW;
        r = msf_clamp_i32(msf_mbqm(acc, rq->qmul[0], rq->qshift[0]) + out_zp, -128, 127);
    } else {
        r = msf_requant_s8(rq, acc - in_zp * HW, 0, out_zp);
    }
    return (int8_t)msf_clamp_i32(r, act_min, act_max);
}

/* Global average of a whole H x W x C full view, shared by gap and the avgpool fallback. */
static void gap_core_s8(const int8_t *x, int32_t HW, int32_t C, int8_t *yp, int32_t in_zp,
                        int32_t out_zp, int32_t act_min, int32_t act_max, const msf_requant *rq,
                        float fallback_mul)
{
    int32_t c, i;
    for (c = 0; c < C; c++) {
        int32_t acc = 0;
        for (i = 0; i < HW; i++) {
            acc += x[i * C + c];
        }
        yp[c] = gap_finish_one_s8(acc, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
    }
}

void msf_gap_s8_accumulate(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                           int32_t ox1, int32_t *sums)
{
    const int8_t *x = (const int8_t *)in->data;
    const int32_t C = in->C;
    int32_t oy, ox, c;
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C);
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *xp = x + msf_vofs(in, oy, ox);
            for (c = 0; c < C; c++) {
                sums[c] += xp[c];
            }
        }
    }
}

void msf_gap_s8_finish(const msf_gap_s8_params *p, const int32_t *sums, int32_t hw,
                       msf_view *out)
{
    int8_t *y = (int8_t *)out->data;
    int32_t c;
    for (c = 0; c < out->C; c++) {
        y[c] = gap_finish_one_s8(sums[c], hw, p->in_zp, p->out_zp, p->act_min, p->act_max,
                                 &p->rq, 0.0f);
    }
}

void msf_avgpool_s8(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c, ky, kx;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * w->kh * w->kw);
    if (p->mode == MSF_RQ_FLOAT && w->kh == in->H && w->kw == in->W && w->pad_top == 0 &&
        w->pad_left == 0 && w->pad_bottom == 0 && w->pad_right == 0 && in->y0 == 0 &&
        in->xcap == in->W) {
        /* ORT's QLinearAveragePool falls back to the global average pool here */
        float mul = p->in_scale / (p->out_scale * (float)(in->H * in->W));
        gap_core_s8(x, in->H * in->W, C, y + msf_vofs(out, oy0, ox0), p->in_zp, p->out_zp,
                    p->act_min, p->act_max, NULL, mul);
        return;
    }
    for (oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * w->sh - w->pad_top;
        int32_t ky_lo, ky_hi;
        msf_tap_range(iy0, w->kh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi, nvalid, count;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
            nvalid = (ky_hi - ky_lo) * (kx_hi - kx_lo);
            count = p->count_include_pad ? w->kh * w->kw : nvalid;
            for (c = 0; c < C; c++) {
                int32_t r;
                if (p->mode == MSF_RQ_FIXED) {
                    int32_t acc = 0;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            acc += x[msf_vofs(in, iy0 + ky, ix0 + kx) + c];
                        }
                    }
                    acc += (count - nvalid) * p->in_zp; /* padding taps hold the zero point */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    r = msf_clamp_i32(acc, -128, 127);
                } else {
                    float s = 0.0f;
                    float t;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            int32_t q = x[msf_vofs(in, iy0 + ky, ix0 + kx) + c];
                            float d = p->in_scale * (float)(q - p->in_zp);
                            s = s + d;
                        }
                    }
                    s = s / (float)count;
                    if (p->mode == MSF_RQ_FLOAT_QDQ) {
                        /* ONNX QuantizeLinear: rne(s / y_scale) + y_zp, saturated; |t| > 512
                         * saturates whatever the zero point, so clamping first is exact */
                        t = s / p->out_scale;
                        if (t != t) {
                            r = -128;
                        } else {
                            r = msf_round_half_even(msf_clamp_f32(t, -512.0f, 512.0f)) + p->out_zp;
                            r = msf_clamp_i32(r, -128, 127);
                        }
                    } else {
                        /* ORT's QLinearAveragePool: rne(s / y_scale + y_zp) */
                        t = s / p->out_scale + (float)p->out_zp;
                        if (!(t < 2147483648.0f && t >= -2147483648.0f)) {
                            r = -128; /* float->int32 overflow / NaN yields INT32_MIN on x86 */
                        } else {
                            r = msf_round_half_even(msf_clamp_f32(t, -128.0f, 127.0f));
                        }
                    }
                }
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}

void msf_gap_s8(const msf_gap_s8_params *p, const msf_view *in, msf_view *out)
{
    MSF_ADD_MACS((int64_t)in->H * in->W * in->C);
    gap_core_s8((const int8_t *)in->data, in->H * in->W, in->C, (int8_t *)out->data, p->in_zp,
                p->out_zp, p->act_min, p->act_max, &p->rq, 0.0f);
}

void msf_dense_s8(const msf_dense_s8_params *p, const msf_view *in, msf_view *out)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t K = in->H * in->W * in->C;
    const int32_t N = out->C;
    const int32_t in_off = -p->in_zp;
    const int32_t w_off = -p->w_zp;
    int32_t n, k;

    MSF_ADD_MACS((int64_t)K * N);
    for (n = 0; n < N; n++) {
        const int8_t *wp = p->weights + (int32_t)n * K;
        int32_t acc = p->bias ? p->bias[n] : 0;
        int32_t r;
        for (k = 0; k < K; k++) {
            acc += ((int32_t)x[k] + in_off) * ((int32_t)wp[k] + w_off);
        }
        r = msf_requant_s8(&p->rq, acc, n, p->out_zp);
        y[n] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
    }
}

static int32_t add_one_s8(const msf_add_s8_params *p, int32_t a, int32_t b)
{
    if (p->mode == MSF_RQ_FIXED) {
        /* TFLM reference_integer_ops::AddFunc */
        int32_t a1 = (int32_t)((uint32_t)(a - p->in1_zp) << p->left_shift);
        int32_t b1 = (int32_t)((uint32_t)(b - p->in2_zp) << p->left_shift);
        int32_t sa = msf_rdbpot(msf_srdhm(a1, p->in1_mul), -p->in1_shift);
        int32_t sb = msf_rdbpot(msf_srdhm(b1, p->in2_mul), -p->in2_shift);
        int32_t r = msf_rdbpot(msf_srdhm(sa + sb, p->out_mul), -p->out_shift) + p->out_zp;
        return msf_clamp_i32(r, -128, 127);
    } else {
        /* ORT AVX2 QLinearAdd: fma(a, mul1, fma(b, mul2, fbias)), cvtps2dq, saturating packs */
        float v = msf_fmaf((float)a, p->mul1, msf_fmaf((float)b, p->mul2, p->fbias));
        if (!(v < 2147483648.0f && v >= -2147483648.0f)) {
            return -128;
        }
        return msf_round_half_even(msf_clamp_f32(v, -128.0f, 127.0f));
    }
}

void msf_add_s8(const msf_add_s8_params *p, const msf_view *in1, const msf_view *in2,
                msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *a = (const int8_t *)in1->data;
    const int8_t *b = (const int8_t *)in2->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *ap = a + msf_vofs(in1, oy, ox);
            const int8_t *bp = b + msf_vofs(in2, oy, ox);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                int32_t r = add_one_s8(p, ap[c], bp[c]);
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* int8 softmax: TFLM reference_ops::Softmax<int8_t, int8_t> with gemmlowp's fixed-point exp and  */
/* reciprocal (see the top of msf_runtime.h).  Sums are done in uint32 where gemmlowp adds raw    */
/* int32 values, to keep wrap-around defined (the values never overflow in practice).             */
/* ---------------------------------------------------------------------------------------------- */

static int32_t wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t wrap_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for 0 < e < 31: saturating left shift */
static int32_t sat_shl(int32_t x, int32_t e)
{
    const int32_t thr = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > thr) {
        return INT32_MAX;
    }
    if (x < -thr) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out */
static int32_t exp_quarter_q0(int32_t a)
{
    const int32_t constant_term = 1895147668;  /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = wrap_add(a, (int32_t)1 << 28);
    const int32_t x2 = msf_srdhm(x, x);
    const int32_t x3 = msf_srdhm(x2, x);
    const int32_t x4 = msf_srdhm(x2, x2);
    const int32_t x4_over_4 = msf_rdbpot(x4, 2);
    const int32_t poly = msf_rdbpot(wrap_add(msf_srdhm(wrap_add(x4_over_4, x3), one_third), x2), 1);
    return wrap_add(constant_term, msf_srdhm(constant_term, wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values: a <= 0 in Q5.26, result Q0.31 */
static int32_t exp_neg_q5_26(int32_t a)
{
    static const int32_t mul[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535,
                                   720401, 242};
    const int32_t quarter = (int32_t)1 << 24;
    const int32_t amq = wrap_sub(a & (quarter - 1), quarter);
    int32_t result = exp_quarter_q0(sat_shl(amq, 5));
    const int32_t rem = wrap_sub(amq, a);
    int32_t k;
    for (k = 0; k < 7; k++) {
        /* exponent k - 2: bit 26 + k - 2 of the remainder selects exp(-2^(k-2)) */
        if (rem & ((int32_t)1 << (24 + k))) {
            result = msf_srdhm(result, mul[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 in and out */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810;    /* 48/17 in Q2.29 */
    const int32_t cm32_17 = -1010580540;  /* -32/17 in Q2.29 */
    int32_t x = wrap_add(c48_17, msf_srdhm(half_den, cm32_17));
    int32_t i;
    for (i = 0; i < 3; i++) {
        const int32_t hdx = msf_srdhm(half_den, x);
        const int32_t one_minus = wrap_sub((int32_t)1 << 29, hdx);
        x = wrap_add(x, sat_shl(msf_srdhm(x, one_minus), 2));
    }
    return sat_shl(x, 1);
}

static int32_t clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

void msf_softmax_s8(const msf_softmax_s8_params *p, const int8_t *in, int8_t *out, int32_t rows,
                    int32_t depth)
{
    int32_t i, c;
    for (i = 0; i < rows; i++) {
        const int8_t *x = in + (int32_t)i * depth;
        int8_t *y = out + (int32_t)i * depth;
        int32_t mx = -128;
        int32_t sum = 0; /* Q12.19 */
        int32_t headroom, nbits, recip, exponent;
        uint32_t us;
        for (c = 0; c < depth; c++) {
            mx = x[c] > mx ? x[c] : mx;
        }
        for (c = 0; c < depth; c++) {
            const int32_t d = (int32_t)x[c] - mx;
            if (d >= p->diff_min) {
                const int32_t r = msf_srdhm((int32_t)((uint32_t)d << p->input_left_shift),
                                            p->input_multiplier);
                sum = wrap_add(sum, msf_rdbpot(exp_neg_q5_26(r), 12));
            }
        }
        /* GetReciprocal(sum, 12) */
        us = (uint32_t)sum;
        headroom = clz32(us);
        nbits = 12 - headroom;
        recip = one_over_one_plus_x((int32_t)((us << headroom) - 0x80000000u));
        exponent = nbits + 31 - 8;
        /* TFLM checks 0 <= exponent <= 31 (and aborts otherwise: a sum of exponentials of
         * 256 or more, e.g. > 256 equal logits); clamp instead, every output is then -128 */
        exponent = msf_clamp_i32(exponent, 0, 31);
        for (c = 0; c < depth; c++) {
            const int32_t d = (int32_t)x[c] - mx;
            int32_t v = -128;
            if (d >= p->diff_min) {
                const int32_t r = msf_srdhm((int32_t)((uint32_t)d << p->input_left_shift),
                                            p->input_multiplier);
                const int32_t e = exp_neg_q5_26(r);
                v = msf_clamp_i32(msf_rdbpot(msf_srdhm(recip, e), exponent) - 128, -128, 127);
            }
            y[c] = (int8_t)v;
        }
    }
}
