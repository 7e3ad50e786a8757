/* msf_s8_conv.c - int8 convolution kernels (standard / grouped and depthwise) working
 * through msf_view. */
#include "msf_internal.h"

void msf_conv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                   int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int32_t dh = w->dil_h > 1 ? w->dil_h : 1; /* dilation */
    const int32_t dl = w->dil_w > 1 ? w->dil_w : 1;
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
        msf_tap_range_d(iy0, w->kh, dh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range_d(ix0, w->kw, dl, in->W, &kx_lo, &kx_hi);
            for (g = 0; g < groups; g++) {
                for (oc = g * cog; oc < (g + 1) * cog; oc++) {
                    const int8_t *wk = p->weights + (int32_t)oc * wstride;
                    int32_t acc = p->bias ? p->bias[oc] : 0;
                    int32_t r;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            const int8_t *xp = x + msf_vofs(in, iy0 + ky * dh, ix0 + kx * dl) + g * cig;
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
    const int32_t dh = w->dil_h > 1 ? w->dil_h : 1; /* dilation */
    const int32_t dl = w->dil_w > 1 ? w->dil_w : 1;
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
        msf_tap_range_d(iy0, w->kh, dh, in->H, &ky_lo, &ky_hi);
        for (ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            int32_t kx_lo, kx_hi;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            msf_tap_range_d(ix0, w->kw, dl, in->W, &kx_lo, &kx_hi);
            for (c = 0; c < C; c++) {
                int32_t acc = p->bias ? p->bias[c] : 0;
                int32_t r;
                const int8_t *wk = p->weights + c * ksz;
                for (ky = ky_lo; ky < ky_hi; ky++) {
                    for (kx = kx_lo; kx < kx_hi; kx++) {
                        const int8_t *xp = x + msf_vofs(in, iy0 + ky * dh, ix0 + kx * dl);
                        acc += ((int32_t)xp[c] + in_off) * ((int32_t)wk[ky * w->kw + kx] + w_off);
                    }
                }
                r = msf_requant_s8(&p->rq, acc, c, p->out_zp);
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}
