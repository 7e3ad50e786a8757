/* msf_kernels_f32.c - float32 kernels working through msf_view. */
#include "msf_internal.h"

void msf_conv2d_f32(const msf_conv_f32_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int32_t dh = w->dil_h > 1 ? w->dil_h : 1; /* dilation */
    const int32_t dl = w->dil_w > 1 ? w->dil_w : 1;
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
    const int32_t groups = p->groups > 0 ? p->groups : 1;
    const int32_t cig = in->C / groups;
    const int32_t cog = out->C / groups;
    const int32_t wstride = w->kh * w->kw * cig;
    int32_t oy, ox, g, oc, ky, kx, ci;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * out->C * wstride);
    for (oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * w->sh - w->pad_top;
        int32_t ky_lo, ky_hi;
        msf_tap_range_d(iy0, w->kh, dh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            float *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range_d(ix0, w->kw, dl, in->W, &kx_lo, &kx_hi);
            for (g = 0; g < groups; g++) {
                for (oc = g * cog; oc < (g + 1) * cog; oc++) {
                    const float *wk = p->weights + (int32_t)oc * wstride;
                    float acc = p->bias ? p->bias[oc] : 0.0f;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            const float *xp = x + msf_vofs(in, iy0 + ky * dh, ix0 + kx * dl) + g * cig;
                            const float *wp = wk + (ky * w->kw + kx) * cig;
                            for (ci = 0; ci < cig; ci++) {
                                acc += xp[ci] * wp[ci];
                            }
                        }
                    }
                    yp[oc] = msf_clamp_f32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void msf_dwconv2d_f32(const msf_conv_f32_params *p, const msf_view *in, msf_view *out,
                      int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int32_t dh = w->dil_h > 1 ? w->dil_h : 1; /* dilation */
    const int32_t dl = w->dil_w > 1 ? w->dil_w : 1;
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
    const int32_t C = out->C;
    const int32_t ksz = w->kh * w->kw;
    int32_t oy, ox, c, ky, kx;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * ksz);
    for (oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * w->sh - w->pad_top;
        int32_t ky_lo, ky_hi;
        msf_tap_range_d(iy0, w->kh, dh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            float *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range_d(ix0, w->kw, dl, in->W, &kx_lo, &kx_hi);
            for (c = 0; c < C; c++) {
                float acc = p->bias ? p->bias[c] : 0.0f;
                const float *wk = p->weights + c * ksz;
                for (ky = ky_lo; ky < ky_hi; ky++) {
                    for (kx = kx_lo; kx < kx_hi; kx++) {
                        acc += x[msf_vofs(in, iy0 + ky * dh, ix0 + kx * dl) + c] * wk[ky * w->kw + kx];
                    }
                }
                yp[c] = msf_clamp_f32(acc, p->act_min, p->act_max);
            }
        }
    }
}

void msf_maxpool_f32(const msf_pool_f32_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
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
            float *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
            for (c = 0; c < C; c++) {
                /* pads < kernel, so every window holds at least one valid tap */
                float m = x[msf_vofs(in, iy0 + ky_lo, ix0 + kx_lo) + c];
                for (ky = ky_lo; ky < ky_hi; ky++) {
                    for (kx = kx_lo; kx < kx_hi; kx++) {
                        float v = x[msf_vofs(in, iy0 + ky, ix0 + kx) + c];
                        m = v > m ? v : m;
                    }
                }
                yp[c] = msf_clamp_f32(m, p->act_min, p->act_max);
            }
        }
    }
}

void msf_avgpool_f32(const msf_pool_f32_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
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
            int32_t kx_lo, kx_hi, count;
            float *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range(ix0, w->kw, in->W, &kx_lo, &kx_hi);
            count = p->count_include_pad ? w->kh * w->kw : (ky_hi - ky_lo) * (kx_hi - kx_lo);
            for (c = 0; c < C; c++) {
                float s = 0.0f;
                for (ky = ky_lo; ky < ky_hi; ky++) {
                    for (kx = kx_lo; kx < kx_hi; kx++) {
                        s += x[msf_vofs(in, iy0 + ky, ix0 + kx) + c];
                    }
                }
                yp[c] = msf_clamp_f32(s / (float)count, p->act_min, p->act_max);
            }
        }
    }
}

void msf_gap_f32(const msf_act_f32_params *p, const msf_view *in, msf_view *out)
{
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
    const int32_t HW = in->H * in->W;
    const int32_t C = in->C;
    int32_t c, i;
    MSF_ADD_MACS((int64_t)HW * C);
    for (c = 0; c < C; c++) {
        float s = 0.0f;
        for (i = 0; i < HW; i++) {
            s += x[i * C + c];
        }
        y[c] = msf_clamp_f32(s / (float)HW, p->act_min, p->act_max);
    }
}

void msf_gap_f32_accumulate(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                            int32_t ox1, float *sums)
{
    const float *x = (const float *)in->data;
    const int32_t C = in->C;
    int32_t oy, ox, c;
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C);
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const float *xp = x + msf_vofs(in, oy, ox);
            for (c = 0; c < C; c++) {
                sums[c] += xp[c];
            }
        }
    }
}

void msf_gap_f32_finish(const msf_act_f32_params *p, const float *sums, int32_t hw,
                        msf_view *out)
{
    float *y = (float *)out->data;
    int32_t c;
    for (c = 0; c < out->C; c++) {
        y[c] = msf_clamp_f32(sums[c] / (float)hw, p->act_min, p->act_max);
    }
}

void msf_dense_f32(const msf_dense_f32_params *p, const msf_view *in, msf_view *out)
{
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
    const int32_t K = in->H * in->W * in->C;
    const int32_t N = out->C;
    int32_t n, k;
    MSF_ADD_MACS((int64_t)K * N);
    for (n = 0; n < N; n++) {
        const float *wp = p->weights + (int32_t)n * K;
        float acc = p->bias ? p->bias[n] : 0.0f;
        for (k = 0; k < K; k++) {
            acc += x[k] * wp[k];
        }
        y[n] = msf_clamp_f32(acc, p->act_min, p->act_max);
    }
}

void msf_add_f32(const msf_act_f32_params *p, const msf_view *in1, const msf_view *in2,
                 msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const float *a = (const float *)in1->data;
    const float *b = (const float *)in2->data;
    float *y = (float *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const float *ap = a + msf_vofs(in1, oy, ox);
            const float *bp = b + msf_vofs(in2, oy, ox);
            float *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                yp[c] = msf_clamp_f32(ap[c] + bp[c], p->act_min, p->act_max);
            }
        }
    }
}
