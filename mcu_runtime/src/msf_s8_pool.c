/* msf_s8_pool.c - int8 max and average pooling kernels working through msf_view. */
#include "msf_internal.h"

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
