/* msf_s8_dwfast.c - int8 depthwise convolution (msf_dwconv2d_s8) without per-tap view
 * arithmetic.
 *
 * The output region is cut into rectangles of pixels that share one clipped window shape (the
 * same valid tap rows [a, b) and columns [c, d): the interior, each border row class, each
 * border column class) and whose windows and outputs do not cross a ring-buffer wrap; a column
 * whose windows wrap around an input ring is a rectangle of its own (one column down the rows,
 * every window wrapping at the same place).  Each rectangle is one "run": its tap offsets are
 * computed once, relative to the first valid tap (from ring slots).  Up to MSF_DW_RUNS runs are collected and processed together with
 * channels outermost: the weights, the accumulator starts and the requantisation parameters are
 * set up once per channel (group) for all of them -- a fused block's column call (one column:
 * top border, interior and bottom border runs) or a recompute patch pays the setup once, not
 * once per run -- and the pixels inside a run walk with pointer increments.
 *
 * Accumulator start: bias - in_zp * sum(w) over the valid taps; for full windows the code
 * generator's precomputed msf_conv_s8_params.bias_zp.  With the DSP extension four channels
 * are processed per word load (SXTB16 into halfword lanes, SMLABB / SMLATT against weights
 * repacked on the stack); the full 3x3 window is unrolled.  Integer sums are exact whatever the
 * order and requantisation is msf_s8_requant.h's exact inline copy, so the result equals
 * msf_dwconv2d_s8_ref byte for byte.  A non-zero weight zero point, a kernel wider than
 * MSF_DW_MAX_KW or of more than MSF_DW_MAX_TAPS taps goes to the reference loop; kernels of more
 * than 9 taps take the one-channel loop.
 *
 * Stack (the targets' stacks are small, 2 KiB on the QEMU boards): MSF_DW_RUNS run descriptors
 * of 60 B, a shared tap table of MSF_DW_POOL entries (135 B), 72 B of repacked weights on DSP
 * cores, four requantisation parameter sets. */
#include "msf_s8_requant.h"
#include "msf_s8_fast.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MSF_USE_DSP 1
#else
#define MSF_USE_DSP 0
#endif

#define MSF_DW_MAX_TAPS 25
#define MSF_DW_MAX_KW 8
#define MSF_DW_RUNS 3
#define MSF_DW_POOL 27 /* tap table entries shared by the collected runs: three 3x3 windows */

/* One run: pixel (r, i), r < nrows, i < n, has its first valid tap at x + r * xrs + i * xstep
 * and its outputs at y + r * yrs + i * ystep (a one-column run is one "row" of nrows pixels
 * down the column, so that the inner loop is the long one); valid taps: rows [a, b), columns [c, d); tap t
 * (row-major) at tofs[t] from the first (window rows R apart, columns kx * S apart or wrapping
 * around an input ring), weight widx[t] of the channel's kh * kw; nt taps. */
typedef struct {
    const int8_t *x;
    int8_t *y;
    int32_t xstep, ystep, xrs, yrs, n, nrows;
    int32_t a, b, c, d, R, nt;
    const int32_t *tofs;
    const uint8_t *widx;
} dw_run_t;

/* Geometry shared by the runs of one call. */
typedef struct {
    int32_t C, kh, kw, ksz;
} dw_geo_t;

static MSF_ALWAYS_INLINE int32_t dw_full(const dw_geo_t *g, const dw_run_t *u)
{
    return u->a == 0 && u->b == g->kh && u->c == 0 && u->d == g->kw;
}

/* Accumulator start of channel ch for run u: bias + (-in_zp) * sum of the valid taps'
 * weights (wrapping int32), the precomputed bias_zp for a full window. */
static MSF_ALWAYS_INLINE int32_t dw_start(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const dw_run_t *u, int32_t ch, int32_t full)
{
    const int8_t *wk = p->weights + ch * g->ksz;
    int32_t sum = 0, t;
    if (full && p->bias_zp) {
        return p->bias_zp[ch];
    }
    for (t = 0; t < u->nt; t++) {
        sum += wk[u->widx[t]];
    }
    return (int32_t)((uint32_t)(p->bias ? p->bias[ch] : 0) + (uint32_t)(-p->in_zp) *
                                                                  (uint32_t)sum);
}

/* Channels [c0, c1), one at a time (portable path, and the channels left over by the DSP
 * groups of four), over the runs u[0 .. nr). */
static MSF_ALWAYS_INLINE void dw_run1_m(const msf_conv_s8_params *p, const dw_geo_t *g,
                                        const dw_run_t *runs, int32_t nr, int32_t c0,
                                        int32_t c1, int32_t mode)
{
    const int32_t kw = g->kw;
    int32_t c, i, r, k, t;
    msf_rqc rc;
    for (c = c0; c < c1; c++) {
        const int8_t *wk = p->weights + c * g->ksz;
        msf_rqc_load(&p->rq, c, p->out_zp, p->act_min, p->act_max, &rc);
        for (k = 0; k < nr; k++) {
            const dw_run_t *u = &runs[k];
            const int32_t full = dw_full(g, u);
            const int32_t b0 = dw_start(p, g, u, c, full);
            for (r = 0; r < u->nrows; r++) {
                const int8_t *xp = u->x + r * u->xrs + c;
                int8_t *yp = u->y + r * u->yrs + c;
                if (full && g->kh == 3 && kw == 3) {
                    const int32_t R = u->R, S = u->tofs[1], S2 = u->tofs[2];
                    const int32_t w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3], w4 = wk[4];
                    const int32_t w5 = wk[5], w6 = wk[6], w7 = wk[7], w8 = wk[8];
                    for (i = 0; i < u->n; i++) {
                        const int8_t *r0 = xp, *r1 = xp + R, *r2 = xp + 2 * R;
                        int32_t acc = b0 + r0[0] * w0 + r0[S] * w1 + r0[S2] * w2;
                        acc += r1[0] * w3 + r1[S] * w4 + r1[S2] * w5;
                        acc += r2[0] * w6 + r2[S] * w7 + r2[S2] * w8;
                        *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                        xp += u->xstep;
                        yp += u->ystep;
                    }
                } else {
                    for (i = 0; i < u->n; i++) {
                        int32_t acc = b0;
                        for (t = 0; t < u->nt; t++) {
                            acc += xp[u->tofs[t]] * wk[u->widx[t]];
                        }
                        *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                        xp += u->xstep;
                        yp += u->ystep;
                    }
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

/* Channels [0, 4 * groups) four at a time: per group every tap's weights are repacked once as
 * sign-extended halfword pairs (channels 0 / 2 in we, 1 / 3 in wo) for all the runs; per pixel
 * and tap one word load of the four inputs, two SXTB16 and four 16x16 multiply-adds. */
static MSF_ALWAYS_INLINE void dw_run4_m(const msf_conv_s8_params *p, const dw_geo_t *g,
                                        const dw_run_t *runs, int32_t nr, int32_t groups,
                                        int32_t mode)
{
    const int32_t kw = g->kw, ksz = g->ksz;
    int32_t gi, i, r, t, j, k;
    int32_t we[9], wo[9];
    msf_rqc rc[4];
    for (gi = 0; gi < groups; gi++) {
        const int32_t c = 4 * gi;
        const int8_t *wk = p->weights + c * ksz;
        for (j = 0; j < 4; j++) {
            msf_rqc_load(&p->rq, c + j, p->out_zp, p->act_min, p->act_max, &rc[j]);
        }
        for (t = 0; t < ksz; t++) {
            we[t] = (int32_t)(((uint32_t)(int32_t)wk[t] & 0xFFFFu) |
                              ((uint32_t)(int32_t)wk[2 * ksz + t] << 16));
            wo[t] = (int32_t)(((uint32_t)(int32_t)wk[ksz + t] & 0xFFFFu) |
                              ((uint32_t)(int32_t)wk[3 * ksz + t] << 16));
        }
        for (k = 0; k < nr; k++) {
            const dw_run_t *u = &runs[k];
            const int32_t full = dw_full(g, u);
            int32_t b[4];
            for (j = 0; j < 4; j++) {
                b[j] = dw_start(p, g, u, c + j, full);
            }
#define MSF_DW_TAP(ptr, t)                                                                \
    do {                                                                                  \
        const uint32_t v_ = msf_ld32(ptr);                                                \
        const int32_t ve_ = __sxtb16((int32_t)v_), vo_ = dw_sxtb16_ror8(v_);              \
        a0 = __smlabb(ve_, we[t], a0);                                                    \
        a2 = __smlatt(ve_, we[t], a2);                                                    \
        a1 = __smlabb(vo_, wo[t], a1);                                                    \
        a3 = __smlatt(vo_, wo[t], a3);                                                    \
    } while (0)
#define MSF_DW_OUT4()                                                                     \
    do {                                                                                  \
        yp[0] = (int8_t)msf_rqc_apply_m(&rc[0], a0, mode);                                \
        yp[1] = (int8_t)msf_rqc_apply_m(&rc[1], a1, mode);                                \
        yp[2] = (int8_t)msf_rqc_apply_m(&rc[2], a2, mode);                                \
        yp[3] = (int8_t)msf_rqc_apply_m(&rc[3], a3, mode);                                \
    } while (0)
            if (full && g->kh == 3 && kw == 3) {
                /* the full 3x3 window, unrolled (the run's geometry in locals) */
                const int32_t R = u->R, S = u->tofs[1], S2 = u->tofs[2];
                const int32_t xstep = u->xstep, ystep = u->ystep, n = u->n;
                for (r = 0; r < u->nrows; r++) {
                    const int8_t *xp = u->x + r * u->xrs + c;
                    int8_t *yp = u->y + r * u->yrs + c;
                    for (i = 0; i < n; i++) {
                        const int8_t *r0 = xp, *r1 = xp + R, *r2 = xp + 2 * R;
                        int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
                        MSF_DW_TAP(r0, 0);
                        MSF_DW_TAP(r0 + S, 1);
                        MSF_DW_TAP(r0 + S2, 2);
                        MSF_DW_TAP(r1, 3);
                        MSF_DW_TAP(r1 + S, 4);
                        MSF_DW_TAP(r1 + S2, 5);
                        MSF_DW_TAP(r2, 6);
                        MSF_DW_TAP(r2 + S, 7);
                        MSF_DW_TAP(r2 + S2, 8);
                        MSF_DW_OUT4();
                        xp += xstep;
                        yp += ystep;
                    }
                }
            } else {
                for (r = 0; r < u->nrows; r++) {
                    const int8_t *xp = u->x + r * u->xrs + c;
                    int8_t *yp = u->y + r * u->yrs + c;
                    for (i = 0; i < u->n; i++) {
                        int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
                        for (t = 0; t < u->nt; t++) {
                            MSF_DW_TAP(xp + u->tofs[t], u->widx[t]);
                        }
                        MSF_DW_OUT4();
                        xp += u->xstep;
                        yp += u->ystep;
                    }
                }
            }
#undef MSF_DW_TAP
#undef MSF_DW_OUT4
        }
    }
}
#endif

/* The collected runs, channels outermost. */
static void dw_flush(const msf_conv_s8_params *p, const dw_geo_t *g, const dw_run_t *runs,
                     int32_t nr)
{
    int32_t c4 = 0;
    if (nr == 0) {
        return;
    }
#if MSF_USE_DSP
    c4 = g->ksz <= 9 ? g->C / 4 : 0; /* (repacked weights for up to 3x3 on the stack) */
    if (c4 > 0) {
        if (p->rq.mode == MSF_RQ_FIXED) {
            dw_run4_m(p, g, runs, nr, c4, MSF_RQ_FIXED);
        } else {
            dw_run4_m(p, g, runs, nr, c4, MSF_RQ_FLOAT);
        }
    }
#endif
    if (4 * c4 < g->C) {
        if (p->rq.mode == MSF_RQ_FIXED) {
            dw_run1_m(p, g, runs, nr, 4 * c4, g->C, MSF_RQ_FIXED);
        } else {
            dw_run1_m(p, g, runs, nr, 4 * c4, g->C, MSF_RQ_FLOAT);
        }
    }
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
    dw_run_t runs[MSF_DW_RUNS];
    int32_t tofs[MSF_DW_POOL];
    uint8_t widx[MSF_DW_POOL];
    dw_geo_t g;
    int32_t nr = 0, used = 0, oy, oy_end, fy0, fy1;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * ksz);
    if (!MSF_FAST_KERNELS || ksz > MSF_DW_MAX_TAPS || w->kw > MSF_DW_MAX_KW || in->C != C ||
        p->w_zp != 0) {
        msf_dwconv2d_s8_ref(p, in, out, oy0, oy1, ox0, ox1);
        return;
    }
    g.C = C;
    g.kh = w->kh;
    g.kw = w->kw;
    g.ksz = ksz;
    /* output rows [fy0, fy1) have every tap row inside the input (no per-row search there) */
    fy0 = (w->pad_top + w->sh - 1) / w->sh;
    fy1 = in->H - ((w->kh - 1) * dh + 1) + w->pad_top;
    fy1 = fy1 >= 0 ? fy1 / w->sh + 1 : 0;
    for (oy = oy0; oy < oy1; oy = oy_end) {
        /* rows [oy, oy_end) share the valid tap rows [a, b) */
        int32_t a, b, a2, b2, ox, ox_end;
        if (oy >= fy0 && oy < fy1) {
            a = 0;
            b = w->kh;
            oy_end = MSF_MIN(oy1, fy1);
        } else {
            msf_tap_range_d(oy * w->sh - w->pad_top, w->kh, dh, in->H, &a, &b);
            for (oy_end = oy + 1; oy_end < oy1; oy_end++) {
                msf_tap_range_d(oy_end * w->sh - w->pad_top, w->kh, dh, in->H, &a2, &b2);
                if (a2 != a || b2 != b) {
                    break;
                }
            }
        }
        for (ox = ox0; ox < ox1; ox = ox_end) {
            const int32_t ix0 = ox * w->sw - w->pad_left;
            const int32_t so = out->xcap == out->W ? ox : ox % out->xcap;
            int32_t c, d, c2, d2, s0 = 0, span, kx, ky, wraps, nt;
            dw_run_t *u;
            msf_tap_range_d(ix0, w->kw, dl, in->W, &c, &d);
            span = d > c ? (d - 1 - c) * dl : 0;   /* slots spanned after the first valid tap */
            if (d > c) {
                s0 = ix0 + c * dl;
                s0 = in->xcap == in->W ? s0 : s0 % in->xcap;
            }
            /* columns [ox, ox_end): same valid tap columns, windows and outputs contiguous.
             * A window that wraps around the input ring is a run of its own: this column down
             * the rows [oy, oy_end), whose windows all wrap at the same place. */
            wraps = a < b && d > c && s0 + span >= in->xcap;
            for (ox_end = ox + 1; ox_end < ox1 && !wraps; ox_end++) {
                const int32_t ix = ox_end * w->sw - w->pad_left;
                msf_tap_range_d(ix, w->kw, dl, in->W, &c2, &d2);
                if (c2 != c || d2 != d || so + (ox_end - ox) >= out->xcap) {
                    break;
                }
                if (d > c && s0 + (ox_end - ox) * w->sw + span >= in->xcap) {
                    break;
                }
            }
            nt = (a < b && d > c) ? (b - a) * (d - c) : 0;
            if (nr == MSF_DW_RUNS || used + nt > MSF_DW_POOL) {
                dw_flush(p, &g, runs, nr);
                nr = 0;
                used = 0;
            }
            u = &runs[nr++];
            u->a = a;
            u->b = b;
            u->c = c;
            u->d = d;
            u->R = dh * rowstep;
            u->nt = 0;
            u->tofs = tofs + used;
            u->widx = widx + used;
            if (nt > 0) {
                int32_t cofs[MSF_DW_MAX_KW];
                int32_t slot = s0; /* input ring slot of tap column kx */
                for (kx = c; kx < d; kx++) {
                    cofs[kx - c] = (slot - s0) * C;
#ifdef MSF_CHECK_BOUNDS
                    {
                        const int32_t iy = oy * w->sh - w->pad_top + a * dh;
                        if (MSF_CHECK(cofs[kx - c] + msf_vofs(in, iy, ix0 + c * dl) ==
                                          msf_vofs(in, iy, ix0 + kx * dl),
                                      "dw fast tap offset")) {
                            cofs[kx - c] = 0;
                        }
                    }
#endif
                    slot += dl;
                    slot = slot >= in->xcap ? slot % in->xcap : slot;
                }
                for (ky = a; ky < b; ky++) {
                    for (kx = c; kx < d; kx++) {
                        tofs[used] = (ky - a) * u->R + cofs[kx - c];
                        widx[used++] = (uint8_t)(ky * w->kw + kx);
                    }
                }
                u->nt = nt;
#ifdef MSF_CHECK_BOUNDS
                (void)msf_vofs(in, (oy_end - 1) * w->sh - w->pad_top + (b - 1) * dh,
                               (ox_end - 1) * w->sw - w->pad_left + (d - 1) * dl);
                (void)msf_vofs(in, (oy_end - 1) * w->sh - w->pad_top + (b - 1) * dh,
                               (ox_end - 1) * w->sw - w->pad_left + c * dl);
#endif
                u->x = (const int8_t *)in->data +
                       msf_vofs(in, oy * w->sh - w->pad_top + a * dh, ix0 + c * dl);
            } else {
                u->x = (const int8_t *)in->data; /* no valid tap: never read */
                u->b = u->a;                     /* (an empty tap range) */
                u->d = u->c;
            }
#ifdef MSF_CHECK_BOUNDS
            (void)msf_vofs(out, oy_end - 1, ox_end - 1);
#endif
            u->y = (int8_t *)out->data + msf_vofs(out, oy, ox);
            u->xstep = w->sw * C;
            u->ystep = C;
            u->xrs = w->sh * rowstep;
            u->yrs = out->xcap * C;
            u->n = ox_end - ox;
            u->nrows = oy_end - oy;
            if (u->n == 1) { /* a column: its pixels down the rows are the inner loop */
                u->n = u->nrows;
                u->xstep = u->xrs;
                u->ystep = u->yrs;
                u->nrows = 1;
            }
        }
    }
    dw_flush(p, &g, runs, nr);
}
