/* msf_s8_pool.c - int8 max and average pooling kernels working through msf_view. */
#include "msf_internal.h"
#include "msf_s8_fast.h"
#include "msf_s8_opsfast.h"

/* Float modes of the average pool: the mean s of the dequantised taps (summed in tap order)
 * to int8, as ONNX QuantizeLinear (QDQ islands) or ORT's QLinearAveragePool round it. */
static int32_t avg_float_finish(const msf_pool_s8_params *p, float s, int32_t count)
{
    float t;
    int32_t r;
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
    return r;
}

void msf_maxpool_s8_ref(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
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

void msf_avgpool_s8_ref(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
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
        msf_gap_core_s8(x, in->H * in->W, C, y + msf_vofs(out, oy0, ox0), p->in_zp,
                        p->out_zp, p->act_min, p->act_max, NULL, mul);
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
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            int32_t q = x[msf_vofs(in, iy0 + ky, ix0 + kx) + c];
                            float d = p->in_scale * (float)(q - p->in_zp);
                            s = s + d;
                        }
                    }
                    r = avg_float_finish(p, s, count);
                }
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Fast paths: the taps of one output pixel are located once (kh * kw msf_vofs calls instead of
 * one per tap and channel), then four channels at a time walk them with plain pointers.  The
 * taps are visited in the reference's (ky, kx) order, so the float sums are the same sums. */

/* Pointers to the valid taps of output pixel (oy, ox); returns their number. */
static int32_t pool_taps(const msf_window *w, const msf_view *in, const int8_t *x, int32_t oy,
                         int32_t ox, const int8_t **tp)
{
    const int32_t iy0 = oy * w->sh - w->pad_top, ix0 = ox * w->sw - w->pad_left;
    int32_t ky_lo, ky_hi, kx_lo, kx_hi, ky, kx, n = 0;
    msf_tap_range(iy0, w->kh, in->H, &ky_lo, &ky_hi);
    msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
    for (ky = ky_lo; ky < ky_hi; ky++) {
        for (kx = kx_lo; kx < kx_hi; kx++) {
            tp[n++] = x + msf_vofs(in, iy0 + ky, ix0 + kx);
        }
    }
    return n;
}

static void maxpool_fast(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *tp[MSF_POOL_MAX_TAPS];
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C, lo = p->act_min, hi = p->act_max;
    int32_t oy, ox, c, t;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t n = pool_taps(&p->win, in, x, oy, ox, tp);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c + 4 <= C; c += 4) {
                int32_t m0 = -128, m1 = -128, m2 = -128, m3 = -128;
                for (t = 0; t < n; t++) {
                    const int8_t *q = tp[t] + c;
                    int32_t v0 = q[0], v1 = q[1], v2 = q[2], v3 = q[3];
                    m0 = v0 > m0 ? v0 : m0;
                    m1 = v1 > m1 ? v1 : m1;
                    m2 = v2 > m2 ? v2 : m2;
                    m3 = v3 > m3 ? v3 : m3;
                }
                yp[c] = (int8_t)msf_clamp_i32(m0, lo, hi);
                yp[c + 1] = (int8_t)msf_clamp_i32(m1, lo, hi);
                yp[c + 2] = (int8_t)msf_clamp_i32(m2, lo, hi);
                yp[c + 3] = (int8_t)msf_clamp_i32(m3, lo, hi);
            }
            for (; c < C; c++) {
                int32_t m = -128;
                for (t = 0; t < n; t++) {
                    int32_t v = tp[t][c];
                    m = v > m ? v : m;
                }
                yp[c] = (int8_t)msf_clamp_i32(m, lo, hi);
            }
        }
    }
}

/* TFLM's rounding division of the tap sum (half away from zero), saturated to int8. */
static int32_t avg_fixed_finish(int32_t acc, int32_t count)
{
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return msf_clamp_i32(acc, -128, 127);
}

static void avgpool_fast(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *tp[MSF_POOL_MAX_TAPS];
    const msf_window *w = &p->win;
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C, lo = p->act_min, hi = p->act_max;
    int32_t oy, ox, c, t;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t n = pool_taps(w, in, x, oy, ox, tp);
            const int32_t count = p->count_include_pad ? w->kh * w->kw : n;
            const int32_t pad_sum = (count - n) * p->in_zp; /* padding taps hold the zero point */
            int8_t *yp = y + msf_vofs(out, oy, ox);
            if (p->mode == MSF_RQ_FIXED) {
                for (c = 0; c + 4 <= C; c += 4) {
                    int32_t a0 = pad_sum, a1 = pad_sum, a2 = pad_sum, a3 = pad_sum;
                    for (t = 0; t < n; t++) {
                        const int8_t *q = tp[t] + c;
                        a0 += q[0];
                        a1 += q[1];
                        a2 += q[2];
                        a3 += q[3];
                    }
                    yp[c] = (int8_t)msf_clamp_i32(avg_fixed_finish(a0, count), lo, hi);
                    yp[c + 1] = (int8_t)msf_clamp_i32(avg_fixed_finish(a1, count), lo, hi);
                    yp[c + 2] = (int8_t)msf_clamp_i32(avg_fixed_finish(a2, count), lo, hi);
                    yp[c + 3] = (int8_t)msf_clamp_i32(avg_fixed_finish(a3, count), lo, hi);
                }
                for (; c < C; c++) {
                    int32_t a = pad_sum;
                    for (t = 0; t < n; t++) {
                        a += tp[t][c];
                    }
                    yp[c] = (int8_t)msf_clamp_i32(avg_fixed_finish(a, count), lo, hi);
                }
            } else {
                const float sc = p->in_scale;
                const int32_t zp = p->in_zp;
                for (c = 0; c < C; c++) {
                    float s = 0.0f;
                    for (t = 0; t < n; t++) {
                        float d = sc * (float)((int32_t)tp[t][c] - zp);
                        s = s + d;
                    }
                    yp[c] = (int8_t)msf_clamp_i32(avg_float_finish(p, s, count), lo, hi);
                }
            }
        }
    }
}

void msf_maxpool_s8(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    if (!MSF_FAST_KERNELS || p->win.kh * p->win.kw > MSF_POOL_MAX_TAPS) {
        msf_maxpool_s8_ref(p, in, out, oy0, oy1, ox0, ox1);
        return;
    }
    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * out->C * p->win.kh * p->win.kw);
    maxpool_fast(p, in, out, oy0, oy1, ox0, ox1);
}

void msf_avgpool_s8(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    if (!MSF_FAST_KERNELS || w->kh * w->kw > MSF_POOL_MAX_TAPS ||
        (p->mode == MSF_RQ_FLOAT && w->kh == in->H && w->kw == in->W && w->pad_top == 0 &&
         w->pad_left == 0 && w->pad_bottom == 0 && w->pad_right == 0 && in->y0 == 0 &&
         in->xcap == in->W)) {
        /* (the global-average fallback of ORT goes through msf_gap_core_s8, fast itself) */
        msf_avgpool_s8_ref(p, in, out, oy0, oy1, ox0, ox1);
        return;
    }
    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * out->C * w->kh * w->kw);
    avgpool_fast(p, in, out, oy0, oy1, ox0, ox1);
}
