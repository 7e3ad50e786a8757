/* msf_s8_conv.c - int8 convolution kernels (standard / grouped and depthwise) working
 * through msf_view: the reference loops (every tap through msf_vofs) and the dispatchers that
 * send interior pixels to the fast inner loops (msf_s8_convfast.c, msf_s8_dwfast.c). */
#include "msf_s8_fast.h"

void msf_conv2d_s8_ref(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
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

void msf_dwconv2d_s8_ref(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
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

/* Output coordinates [*lo, *hi) whose window (kernel k, stride s, leading pad) lies inside an
 * input extent of `size` (no dilation). */
static void interior_range(int32_t size, int32_t k, int32_t s, int32_t pad, int32_t *lo,
                           int32_t *hi)
{
    *lo = (pad + s - 1) / s;
    *hi = size - k + pad >= 0 ? (size - k + pad) / s + 1 : 0;
}

/* Fast run of n output pixels starting at (oy, ox), dy / dx apart (one row stretch or one
 * column stretch, all inside the interior, outputs not crossing a ring wrap): the window's
 * first column sits at input slot si; a window that wraps around the input ring (si + kw >
 * xcap) is read as two contiguous pieces per window row, the same for every pixel of the run
 * (the caller makes runs that way). */
static void conv_run_at(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                        int32_t oy, int32_t ox, int32_t dy, int32_t dx, int32_t n, int32_t si)
{
    const msf_window *w = &p->win;
    const int32_t cin = in->C, cout = out->C;
    const int32_t iy0 = oy * w->sh - w->pad_top, ix = ox * w->sw - w->pad_left;
    const int32_t xstep = (dy * w->sh * in->xcap + dx * w->sw) * cin;
    const int32_t ystep = (dy * out->xcap + dx) * cout;
    const int8_t *x = (const int8_t *)in->data + msf_vofs(in, iy0, ix);
    int8_t *y = (int8_t *)out->data + msf_vofs(out, oy, ox);
    const int32_t la = si + w->kw > in->xcap ? (in->xcap - si) * cin : w->kw * cin;
#ifdef MSF_CHECK_BOUNDS
    {
        const int32_t ly = iy0 + (n - 1) * dy * w->sh, lx = ix + (n - 1) * dx * w->sw;
        (void)msf_vofs(in, ly + w->kh - 1, lx + w->kw - 1);
        (void)msf_vofs(in, ly + w->kh - 1, lx);
        (void)msf_vofs(out, oy + (n - 1) * dy, ox + (n - 1) * dx);
    }
#endif
    if (w->kh == 1 && w->kw == 1) {
        msf_conv1x1_s8_run(p, cin, cout, x, xstep, y, ystep, n);
    } else {
        msf_convk_s8_run(p, cout, x, xstep, in->xcap * cin, w->kh, w->kw * cin, la,
                         -si * cin, y, ystep, n);
    }
}

/* Input ring slot of input column ix. */
static int32_t in_slot(const msf_view *in, int32_t ix)
{
    return in->xcap == in->W ? ix : ix % in->xcap;
}

/* One output row's columns [ox, ox1) (all inside the interior): runs of pixels whose windows
 * do not wrap and whose outputs do not cross a ring wrap; a pixel whose window wraps is a run
 * of its own. */
static void conv_row_fast(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                          int32_t oy, int32_t ox, int32_t ox1)
{
    const msf_window *w = &p->win;
    while (ox < ox1) {
        const int32_t si = in_slot(in, ox * w->sw - w->pad_left);
        const int32_t so = out->xcap == out->W ? ox : ox % out->xcap;
        int32_t n = 1;
        if (si + w->kw <= in->xcap) {
            n = (in->xcap - w->kw - si) / w->sw + 1;
            n = MSF_MIN(n, out->xcap - so);
            n = MSF_MIN(n, ox1 - ox);
        }
        conv_run_at(p, in, out, oy, ox, 0, 1, n, si);
        ox += n;
    }
}

void msf_conv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                   int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int32_t groups = p->groups > 0 ? p->groups : 1;
    int32_t fy0, fy1, fx0, fx1, oy;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * out->C *
                 (w->kh * w->kw * (in->C / groups)));
    if (!MSF_FAST_KERNELS || groups != 1 || w->dil_h > 1 || w->dil_w > 1 || p->w_zp != 0 ||
        in->xcap < w->kw) {
        msf_conv2d_s8_ref(p, in, out, oy0, oy1, ox0, ox1);
        return;
    }
    interior_range(in->H, w->kh, w->sh, w->pad_top, &fy0, &fy1);
    interior_range(in->W, w->kw, w->sw, w->pad_left, &fx0, &fx1);
    fy0 = MSF_MAX(fy0, oy0);
    fy1 = MSF_MIN(fy1, oy1);
    fx0 = MSF_MAX(fx0, ox0);
    fx1 = MSF_MIN(fx1, ox1);
    if (fy0 >= fy1 || fx0 >= fx1) {
        msf_conv2d_s8_ref(p, in, out, oy0, oy1, ox0, ox1);
        return;
    }
    msf_conv2d_s8_ref(p, in, out, oy0, fy0, ox0, ox1);  /* top border rows */
    msf_conv2d_s8_ref(p, in, out, fy1, oy1, ox0, ox1);  /* bottom border rows */
    if (w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && w->pad_left == 0 &&
        fx1 - fx0 == in->xcap && in->xcap == out->xcap) {
        /* 1x1 stride 1 over every column the views hold (whole rows of full views, a
         * recompute patch filling its ring): input pixel k of the held rows feeds output pixel
         * k, so the rows are one contiguous run from ring slot 0 (column x0) on */
        const int32_t cap = in->xcap;
        const int32_t x0 = fx0 + (cap - fx0 % cap) % cap;
        const int32_t n = (fy1 - fy0) * cap;
        const int32_t iy = fy0 - w->pad_top;
#ifdef MSF_CHECK_BOUNDS
        (void)msf_vofs(in, iy + fy1 - fy0 - 1, fx0);
        (void)msf_vofs(in, iy + fy1 - fy0 - 1, fx1 - 1);
        (void)msf_vofs(out, fy1 - 1, fx0);
        (void)msf_vofs(out, fy1 - 1, fx1 - 1);
#endif
        msf_conv1x1_s8_run(p, in->C, out->C, (const int8_t *)in->data + msf_vofs(in, iy, x0),
                           in->C, (int8_t *)out->data + msf_vofs(out, fy0, x0), out->C, n);
    } else if (fx1 - fx0 < fy1 - fy0) {
        /* narrow regions (a fused block's column calls): one run down each column, every
         * window of it wrapping around the input ring at the same place (or none) */
        int32_t ox;
        for (ox = fx0; ox < fx1; ox++) {
            conv_run_at(p, in, out, fy0, ox, 1, 0, fy1 - fy0,
                        in_slot(in, ox * w->sw - w->pad_left));
        }
    } else {
        for (oy = fy0; oy < fy1; oy++) {
            conv_row_fast(p, in, out, oy, fx0, fx1);
        }
    }
    msf_conv2d_s8_ref(p, in, out, fy0, fy1, ox0, fx0);  /* left border columns */
    msf_conv2d_s8_ref(p, in, out, fy0, fy1, fx1, ox1);  /* right border columns */
}
