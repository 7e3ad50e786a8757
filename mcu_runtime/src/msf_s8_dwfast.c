/* msf_s8_dwfast.c - int8 depthwise convolution (msf_dwconv2d_s8) without per-tap view
 * arithmetic.
 *
 * The output region is cut into rectangles of pixels that share one clipped window shape (the
 * same valid tap rows [ky_lo, ky_hi) and columns [kx_lo, kx_hi): the interior, each border row
 * class, each border column class) and whose windows and outputs do not cross a ring-buffer wrap.
 * A rectangle is one "run": its tap offsets are computed once (relative to the first valid tap),
 * then channels go outermost -- weights, the folded zero-point term bias - in_zp * sum(valid w)
 * and the requantisation parameters once per channel (group) and run -- and the pixels inside
 * walk with pointer increments.  With the DSP extension four channels are processed per word
 * load (SXTB16 into halfword lanes, SMLABB / SMLATT against weights repacked on the stack);
 * the full 3x3 window is unrolled.  Pixels whose window wraps around a ring take a per-pixel tap
 * list.  Integer sums are exact whatever the order and requantisation is msf_s8_requant.h's
 * exact inline copy, so the result equals msf_dwconv2d_s8_ref byte for byte.  A non-zero weight
 * zero point or a kernel of more than MSF_DW_MAX_TAPS taps goes to the reference loop.
 *
 * Stack: tap offsets (4 B) + weight indices (1 B) + int8 weights (1 B) per tap, at most
 * MSF_DW_MAX_TAPS = 25 (5x5): 150 B, plus 72 B of repacked weights on DSP cores. */
#include "msf_s8_requant.h"
#include "msf_s8_fast.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MSF_USE_DSP 1
#else
#define MSF_USE_DSP 0
#endif

#define MSF_DW_MAX_TAPS 25

/* One run: pixel (r, i), r < nrows, i < n, has its first valid tap at x + r * xrs + i * xstep
 * and its outputs at y + r * yrs + i * C; tap t is tofs[t] further, weight widx[t] of the
 * channel's kh * kw.  full3 != 0: the nine taps of a full 3x3 window at ky * R + kx * S. */
typedef struct {
    const int8_t *x;
    int8_t *y;
    int32_t C, ksz;
    int32_t xstep, xrs, yrs, n, nrows;
    const int32_t *tofs;
    const uint8_t *widx;
    int32_t nt;
    int32_t full3, R, S;
} dw_run_t;

/* Channels [c0, c1), one at a time (portable path, and the channels left over by the DSP
 * groups of four). */
static MSF_ALWAYS_INLINE void dw_run1_m(const msf_conv_s8_params *p, const dw_run_t *u,
                                        int32_t c0, int32_t c1, int32_t mode)
{
    const int32_t off = -p->in_zp;
    int8_t wv[MSF_DW_MAX_TAPS];
    int32_t c, i, r, t;
    msf_rqc rc;
    for (c = c0; c < c1; c++) {
        const int8_t *wk = p->weights + c * u->ksz;
        int32_t sum = 0, b;
        for (t = 0; t < u->nt; t++) {
            wv[t] = wk[u->widx[t]];
            sum += wv[t];
        }
        b = (int32_t)((uint32_t)(p->bias ? p->bias[c] : 0) + (uint32_t)off * (uint32_t)sum);
        msf_rqc_load(&p->rq, c, p->out_zp, p->act_min, p->act_max, &rc);
        for (r = 0; r < u->nrows; r++) {
            const int8_t *xp = u->x + r * u->xrs + c;
            int8_t *yp = u->y + r * u->yrs + c;
            if (u->full3) {
                const int32_t R = u->R, S = u->S, S2 = 2 * u->S;
                const int32_t w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3], w4 = wv[4];
                const int32_t w5 = wv[5], w6 = wv[6], w7 = wv[7], w8 = wv[8];
                for (i = 0; i < u->n; i++) {
                    const int8_t *r0 = xp, *r1 = xp + R, *r2 = xp + 2 * R;
                    int32_t acc = b + r0[0] * w0 + r0[S] * w1 + r0[S2] * w2;
                    acc += r1[0] * w3 + r1[S] * w4 + r1[S2] * w5;
                    acc += r2[0] * w6 + r2[S] * w7 + r2[S2] * w8;
                    *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                    xp += u->xstep;
                    yp += u->C;
                }
            } else {
                for (i = 0; i < u->n; i++) {
                    int32_t acc = b;
                    for (t = 0; t < u->nt; t++) {
                        acc += xp[u->tofs[t]] * wv[t];
                    }
                    *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                    xp += u->xstep;
                    yp += u->C;
                }
            }
        }
    }
}

#if MSF_USE_DSP
/* SXTB16 of the word rotated right by 8 (bytes 1 and 3), one instruction */
static MSF_ALWAYS_INLINE int32_t dw_sxtb16_ror8(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* Channels [0, 4 * groups) four at a time (nt <= 9): per group the taps' weights are repacked
 * as sign-extended halfword pairs (channels 0 / 2 in we, 1 / 3 in wo); per pixel and tap one
 * word load of the four inputs, two SXTB16 and four 16x16 multiply-adds. */
static MSF_ALWAYS_INLINE void dw_run4_m(const msf_conv_s8_params *p, const dw_run_t *u,
                                        int32_t groups, int32_t mode)
{
    int32_t g, i, r, t, j;
    int32_t we[9], wo[9];
    msf_rqc rc[4];
    for (g = 0; g < groups; g++) {
        const int32_t c = 4 * g;
        const int8_t *wk = p->weights + c * u->ksz;
        int32_t b[4];
        for (j = 0; j < 4; j++) {
            int32_t sum = 0;
            for (t = 0; t < u->nt; t++) {
                sum += wk[j * u->ksz + u->widx[t]];
            }
            b[j] = (int32_t)((uint32_t)(p->bias ? p->bias[c + j] : 0) +
                             (uint32_t)(-p->in_zp) * (uint32_t)sum);
            msf_rqc_load(&p->rq, c + j, p->out_zp, p->act_min, p->act_max, &rc[j]);
        }
        for (t = 0; t < u->nt; t++) {
            const int32_t k = u->widx[t];
            we[t] = (int32_t)(((uint32_t)(int32_t)wk[k] & 0xFFFFu) |
                              ((uint32_t)(int32_t)wk[2 * u->ksz + k] << 16));
            wo[t] = (int32_t)(((uint32_t)(int32_t)wk[u->ksz + k] & 0xFFFFu) |
                              ((uint32_t)(int32_t)wk[3 * u->ksz + k] << 16));
        }
        for (r = 0; r < u->nrows; r++) {
            const int8_t *xp = u->x + r * u->xrs + c;
            int8_t *yp = u->y + r * u->yrs + c;
            for (i = 0; i < u->n; i++) {
                int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
#define MSF_DW_TAP(ptr, t)                                                                \
    do {                                                                                  \
        const uint32_t v_ = msf_ld32(ptr);                                                \
        const int32_t ve_ = __sxtb16((int32_t)v_), vo_ = dw_sxtb16_ror8(v_);              \
        a0 = __smlabb(ve_, we[t], a0);                                                    \
        a2 = __smlatt(ve_, we[t], a2);                                                    \
        a1 = __smlabb(vo_, wo[t], a1);                                                    \
        a3 = __smlatt(vo_, wo[t], a3);                                                    \
    } while (0)
                if (u->full3) {
                    const int8_t *r0 = xp, *r1 = xp + u->R, *r2 = xp + 2 * u->R;
                    const int32_t S = u->S;
                    MSF_DW_TAP(r0, 0);
                    MSF_DW_TAP(r0 + S, 1);
                    MSF_DW_TAP(r0 + 2 * S, 2);
                    MSF_DW_TAP(r1, 3);
                    MSF_DW_TAP(r1 + S, 4);
                    MSF_DW_TAP(r1 + 2 * S, 5);
                    MSF_DW_TAP(r2, 6);
                    MSF_DW_TAP(r2 + S, 7);
                    MSF_DW_TAP(r2 + 2 * S, 8);
                } else {
                    for (t = 0; t < u->nt; t++) {
                        MSF_DW_TAP(xp + u->tofs[t], t);
                    }
                }
#undef MSF_DW_TAP
                yp[0] = (int8_t)msf_rqc_apply_m(&rc[0], a0, mode);
                yp[1] = (int8_t)msf_rqc_apply_m(&rc[1], a1, mode);
                yp[2] = (int8_t)msf_rqc_apply_m(&rc[2], a2, mode);
                yp[3] = (int8_t)msf_rqc_apply_m(&rc[3], a3, mode);
                xp += u->xstep;
                yp += u->C;
            }
        }
    }
}
#endif

static void dw_run(const msf_conv_s8_params *p, const dw_run_t *u)
{
    int32_t c4 = 0;
#if MSF_USE_DSP
    if (u->nt <= 9) {
        c4 = u->C / 4;
    }
    if (c4 > 0) {
        if (p->rq.mode == MSF_RQ_FIXED) {
            dw_run4_m(p, u, c4, MSF_RQ_FIXED);
        } else {
            dw_run4_m(p, u, c4, MSF_RQ_FLOAT);
        }
    }
#endif
    if (4 * c4 < u->C) {
        if (p->rq.mode == MSF_RQ_FIXED) {
            dw_run1_m(p, u, 4 * c4, u->C, MSF_RQ_FIXED);
        } else {
            dw_run1_m(p, u, 4 * c4, u->C, MSF_RQ_FLOAT);
        }
    }
}

/* One pixel whose window wraps around the input ring: its own tap list, slot by slot. */
static void dw_wrapped_pixel(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                             int32_t oy, int32_t ox)
{
    const msf_window *w = &p->win;
    const int32_t dh = w->dil_h > 1 ? w->dil_h : 1;
    const int32_t dl = w->dil_w > 1 ? w->dil_w : 1;
    const int32_t C = out->C;
    const int32_t rowstep = in->xcap * C;
    const int32_t iy0 = oy * w->sh - w->pad_top, ix0 = ox * w->sw - w->pad_left;
    int32_t tofs[MSF_DW_MAX_TAPS];
    uint8_t widx[MSF_DW_MAX_TAPS];
    int32_t ky_lo, ky_hi, kx_lo, kx_hi, ky, kx, nt = 0, s0;
    dw_run_t u;
    msf_tap_range_d(iy0, w->kh, dh, in->H, &ky_lo, &ky_hi);
    msf_tap_range_d(ix0, w->kw, dl, in->W, &kx_lo, &kx_hi);
    s0 = (ix0 + kx_lo * dl) % in->xcap;
    for (ky = ky_lo; ky < ky_hi; ky++) {
        int32_t slot = s0;
        for (kx = kx_lo; kx < kx_hi; kx++) {
            tofs[nt] = (ky - ky_lo) * dh * rowstep + (slot - s0) * C;
#ifdef MSF_CHECK_BOUNDS
            if (MSF_CHECK(tofs[nt] + msf_vofs(in, iy0 + ky_lo * dh, ix0 + kx_lo * dl) ==
                              msf_vofs(in, iy0 + ky * dh, ix0 + kx * dl),
                          "dw fast offset")) {
                tofs[nt] = 0;
            }
#endif
            widx[nt++] = (uint8_t)(ky * w->kw + kx);
            slot = (slot + dl) % in->xcap;
        }
    }
    u.x = (const int8_t *)in->data + msf_vofs(in, iy0 + ky_lo * dh, ix0 + kx_lo * dl);
    u.y = (int8_t *)out->data + msf_vofs(out, oy, ox);
    u.C = C;
    u.ksz = w->kh * w->kw;
    u.xstep = 0;
    u.xrs = 0;
    u.yrs = 0;
    u.n = 1;
    u.nrows = 1;
    u.tofs = tofs;
    u.widx = widx;
    u.nt = nt;
    u.full3 = 0;
    u.R = 0;
    u.S = 0;
    dw_run(p, &u);
}

void msf_dwconv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const msf_window *w = &p->win;
    const int32_t dh = w->dil_h > 1 ? w->dil_h : 1;
    const int32_t dl = w->dil_w > 1 ? w->dil_w : 1;
    const int32_t C = out->C;
    const int32_t ksz = w->kh * w->kw;
    const int32_t rowstep = in->xcap * in->C; /* elements between consecutive held rows */
    int32_t tofs[MSF_DW_MAX_TAPS];
    uint8_t widx[MSF_DW_MAX_TAPS];
    int32_t oy, oy_end;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * ksz);
    if (!MSF_FAST_KERNELS || ksz > MSF_DW_MAX_TAPS || in->C != C || p->w_zp != 0) {
        msf_dwconv2d_s8_ref(p, in, out, oy0, oy1, ox0, ox1);
        return;
    }
    for (oy = oy0; oy < oy1; oy = oy_end) {
        /* rows [oy, oy_end) share the valid tap rows [a, b) */
        int32_t a, b, a2, b2, ox, ox_end;
        msf_tap_range_d(oy * w->sh - w->pad_top, w->kh, dh, in->H, &a, &b);
        for (oy_end = oy + 1; oy_end < oy1; oy_end++) {
            msf_tap_range_d(oy_end * w->sh - w->pad_top, w->kh, dh, in->H, &a2, &b2);
            if (a2 != a || b2 != b) {
                break;
            }
        }
        for (ox = ox0; ox < ox1; ox = ox_end) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            const int32_t so = out->xcap == out->W ? ox : ox % out->xcap;
            int32_t c, d, c2, d2, s0 = 0, span, nt = 0, ky, kx, r;
            dw_run_t u;
            msf_tap_range_d(ix0, w->kw, dl, in->W, &c, &d);
            span = d > c ? (d - 1 - c) * dl : 0;   /* slots spanned after the first valid tap */
            if (d > c) {
                s0 = ix0 + c * dl;
                s0 = in->xcap == in->W ? s0 : s0 % in->xcap;
            }
            if (a < b && d > c && s0 + span >= in->xcap) { /* the window wraps: per pixel */
                for (r = oy; r < oy_end; r++) {
                    dw_wrapped_pixel(p, in, out, r, ox);
                }
                ox_end = ox + 1;
                continue;
            }
            /* columns [ox, ox_end): same valid tap columns, windows and outputs contiguous */
            for (ox_end = ox + 1; ox_end < ox1; ox_end++) {
                const int32_t ix = ox_end * w->sw - w->pad_left;
                msf_tap_range_d(ix, w->kw, dl, in->W, &c2, &d2);
                if (c2 != c || d2 != d || so + (ox_end - ox) >= out->xcap) {
                    break;
                }
                if (d > c && s0 + (ox_end - ox) * w->sw + span >= in->xcap) {
                    break;
                }
            }
            if (a < b && d > c) {
                for (ky = a; ky < b; ky++) {
                    for (kx = c; kx < d; kx++) {
                        tofs[nt] = (ky - a) * dh * rowstep + (kx - c) * dl * C;
                        widx[nt++] = (uint8_t)(ky * w->kw + kx);
                    }
                }
#ifdef MSF_CHECK_BOUNDS
                (void)msf_vofs(in, (oy_end - 1) * w->sh - w->pad_top + (b - 1) * dh,
                               (ox_end - 1) * w->sw - w->pad_left + (d - 1) * dl);
#endif
                u.x = (const int8_t *)in->data +
                      msf_vofs(in, oy * w->sh - w->pad_top + a * dh, ix0 + c * dl);
            } else {
                u.x = (const int8_t *)in->data; /* no valid tap: never read */
            }
#ifdef MSF_CHECK_BOUNDS
            (void)msf_vofs(out, oy_end - 1, ox_end - 1);
#endif
            u.y = (int8_t *)out->data + msf_vofs(out, oy, ox);
            u.C = C;
            u.ksz = ksz;
            u.xstep = w->sw * C;
            u.xrs = w->sh * rowstep;
            u.yrs = out->xcap * C;
            u.n = ox_end - ox;
            u.nrows = oy_end - oy;
            u.tofs = tofs;
            u.widx = widx;
            u.nt = nt;
            u.full3 = (nt == 9 && w->kh == 3 && w->kw == 3);
            u.R = dh * rowstep;
            u.S = dl * C;
            dw_run(p, &u);
        }
    }
}
