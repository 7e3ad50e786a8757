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
 * generator's precomputed msf_conv_s8_params.bias_zp; short clipped runs on DSP cores subtract
 * the zero point per tap instead (SSUB16).  With the DSP extension four channels are processed
 * per word load (SXTB16 into halfword lanes, SMLABB / SMLATT against weights repacked on the
 * stack: two words per tap up to 25 taps, the raw four bytes per tap beyond); the full 3x3
 * window is unrolled, 5- and 7-column rows are specialised.  Integer sums are exact whatever
 * the order and requantisation is msf_s8_requant.h's exact inline copy, so the result equals
 * msf_dwconv2d_s8_ref byte for byte.  A non-zero weight zero point, a kernel wider than
 * MSF_DW_MAX_KW or of more than MSF_DW_MAX_TAPS (49, 7x7) taps goes to the reference loop.
 *
 * Short calls (at most MSF_DW_LEAN_PIX = 4 pixels in all: a fused block's one-pixel call or
 * short column call, where the per-group set-up above would be paid for a pixel or two) take
 * dw_short_runs instead: pixels outermost, the ring wrap resolved once per run (tap offsets,
 * a tap list for a clipped window), channels innermost in chunks of MSF_DW_CHUNK (the
 * accumulators of a chunk first, then their requantisation: two loops that fit the registers);
 * MSF_RQ_FIXED with the clamp inside int8 requantises through msf_rqf_apply from the channel's
 * multiplier and shift (no msf_rqc set-up), as do the channel groups of dw_run4_m (MSF_RQ_LEAN).
 *
 * DSP cores, further: a channel count with 2 or 3 channels past the last group of four takes
 * one more group, channels C - 4 .. C - 1, overlapping the one before (those outputs are
 * written twice with the same bytes; the output is never the input) instead of dw_run1_m's
 * channel loop.  3x3 kernels under MSF_RQ_VF (below) or the lean fixed form run their full
 * windows and their border windows of 2 or 3 valid rows x 2 or 3 valid columns through
 * out-of-line row loops (dw33_call: dw33/32/23/22_vf/_lean), whose taps are asm blocks with
 * fixed registers (GCC's own allocation of the unrolled window inside dw_run4_m spilled the row
 * pointers: 154 instructions per full-window pixel, 137 now); a border window's accumulator
 * start is bias - in_zp * (its valid taps' weight sums), summed from the repacked weights two
 * channels per SADD16.  On cores with an FPU as well (MSF_RQ_VCVTR, msf_s8_requant.h) a group
 * of four MSF_RQ_FLOAT channels requantises with VCVTR + QADD + SSAT and stores one word
 * (dw_out4v: the activation clamp on the packed bytes, SSUB8 + SEL).
 *
 * Stack (the targets' stacks are small, 2 KiB on the QEMU boards; cortex-m4 -O2 frames):
 * msf_dwconv2d_s8 344 B (MSF_DW_RUNS run descriptors of 28 B), dw_flush 40 B, one of the
 * specialised loops at a time (dw_run4_* 792 B: 200 B of repacked weights, four
 * requantisation sets, the dw33_t of a row call, plus at most 112 B for the dw33 row loop it
 * calls; dw_run1_* 224 B; dw_short_runs with its tap list and one of dw_px33_* / dw_pxt_*
 * (128 B of chunk accumulators) less than dw_run4_*).  dw_short_runs is out of line so that its
 * frame is not added to dw_flush's under dw_run4_*.
 */
#include "msf_s8_requant.h"
#include "msf_s8_fast.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MSF_USE_DSP 1
#else
#define MSF_USE_DSP 0
#endif

#if defined(__GNUC__)
#define MSF_DW_NOINLINE __attribute__((noinline))
#else
#define MSF_DW_NOINLINE
#endif

#define MSF_DW_MAX_TAPS 49 /* up to 7x7 (any kh x kw <= 49 with kw <= 8) */
#define MSF_DW_MAX_KW 8
#define MSF_DW_RUNS 5
/* repacked weights of one channel group on DSP cores, in words: two per tap up to 25 taps
 * (5x5), one per tap (the raw bytes) past that */
#define MSF_DW_WP 50
/* clipped runs of at most this many pixels subtract the input zero point per tap (DSP path) */
#define MSF_DW_ZSUB_PIX 4

/* One run: pixel (r, i), r < nrows, i < n, has its first valid tap at x + r * xrs + i * xstep
 * and its outputs at y + r * yrs + i * ystep (a one-column run is one "row" of nrows pixels
 * down the column, so that the inner loop is the long one); valid taps: rows [a, b), columns
 * [c, d), tap rows R apart; the first valid tap column sits at input ring slot s0 (the column
 * offsets follow from it, dw_cofs); nt taps. */
typedef struct {
    const int8_t *x;
    int8_t *y;
    int32_t n, nrows, s0;
    int8_t a, b, c, d; /* (at most MSF_DW_MAX_TAPS taps: small) */
    int8_t col;        /* 1: a one-column run (steps xrs / yrs in its inner loop) */
} dw_run_t;

/* Geometry shared by the runs of one call: dl column dilation, xcap input ring width; the next
 * pixel of a row xstep / ystep on, the next row xrs / yrs (a column run: its inner loop steps
 * xrs / yrs), window rows R apart. */
typedef struct {
    int32_t C, kh, kw, ksz, dl, xcap;
    int32_t xstep, ystep, xrs, yrs, R;
} dw_geo_t;

/* Element offsets of the valid tap columns c .. d-1 of run u from its first valid tap: kx * dl
 * columns apart, wrapping around the input ring (slot xcap is slot 0). */
static MSF_ALWAYS_INLINE void dw_cofs(const dw_geo_t *g, int32_t s0, int32_t ncol,
                                      int32_t *cofs)
{
    int32_t j, slot = s0;
    for (j = 0; j < ncol; j++) {
        cofs[j] = (slot - s0) * g->C;
        slot += g->dl;
        slot = slot >= g->xcap ? slot % g->xcap : slot;
    }
}

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
    int32_t sum = 0, ky, kx;
    if (full && p->bias_zp) {
        return p->bias_zp[ch];
    }
    for (ky = u->a; ky < u->b; ky++) {
        for (kx = u->c; kx < u->d; kx++) {
            sum += wk[ky * g->kw + kx];
        }
    }
    return (int32_t)((uint32_t)(p->bias ? p->bias[ch] : 0) + (uint32_t)(-p->in_zp) *
                                                                  (uint32_t)sum);
}

/* One channel's accumulator over a window of nky rows (R apart) x ncol columns (cofs), weights
 * wr (rows kw apart); ncol a compile-time constant in the specialised calls. */
static MSF_ALWAYS_INLINE int32_t dw_win1(const int8_t *xp, const int8_t *wr, int32_t acc,
                                         int32_t nky, int32_t R, int32_t kw, int32_t ncol,
                                         const int32_t *cofs)
{
    int32_t ky, j;
    for (ky = 0; ky < nky; ky++) {
        for (j = 0; j < ncol; j++) {
            acc += xp[cofs[j]] * wr[j];
        }
        xp += R;
        wr += kw;
    }
    return acc;
}

/* Channels [c0, c1), one at a time (portable path, and the channels left over by the DSP
 * groups of four), over the runs u[0 .. nr). */
static MSF_ALWAYS_INLINE void dw_run1_m(const msf_conv_s8_params *p, const dw_geo_t *g,
                                        const dw_run_t *runs, int32_t nr, int32_t c0,
                                        int32_t c1, int32_t mode)
{
    const int32_t kw = g->kw;
    int32_t c, i, r, k;
    int32_t cofs[MSF_DW_MAX_KW];
    msf_rqc rc;
    for (c = c0; c < c1; c++) {
        const int8_t *wk = p->weights + c * g->ksz;
        msf_rqc_load(&p->rq, c, p->out_zp, p->act_min, p->act_max, &rc);
        for (k = 0; k < nr; k++) {
            const dw_run_t *u = &runs[k];
            const int32_t full = dw_full(g, u);
            const int32_t b0 = dw_start(p, g, u, c, full);
            const int32_t nky = u->b - u->a, ncol = u->d - u->c, R = g->R;
            const int32_t xstep = u->col ? g->xrs : g->xstep, ystep = u->col ? g->yrs : g->ystep;
            const int8_t *wr = wk + u->a * kw + u->c;
            dw_cofs(g, u->s0, ncol, cofs);
            for (r = 0; r < u->nrows; r++) {
                const int8_t *xp = u->x + r * g->xrs + c;
                int8_t *yp = u->y + r * g->yrs + c;
                if (full && g->kh == 3 && kw == 3) {
                    const int32_t S = cofs[1], S2 = cofs[2];
                    const int32_t w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3], w4 = wk[4];
                    const int32_t w5 = wk[5], w6 = wk[6], w7 = wk[7], w8 = wk[8];
                    for (i = 0; i < u->n; i++) {
                        const int8_t *r0 = xp, *r1 = xp + R, *r2 = xp + 2 * R;
                        int32_t acc = b0 + r0[0] * w0 + r0[S] * w1 + r0[S2] * w2;
                        acc += r1[0] * w3 + r1[S] * w4 + r1[S2] * w5;
                        acc += r2[0] * w6 + r2[S] * w7 + r2[S2] * w8;
                        *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                        xp += xstep;
                        yp += ystep;
                    }
                } else if (ncol == 5) {
                    for (i = 0; i < u->n; i++) {
                        const int32_t acc = dw_win1(xp, wr, b0, nky, R, kw, 5, cofs);
                        *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                        xp += xstep;
                        yp += ystep;
                    }
                } else if (ncol == 7) {
                    for (i = 0; i < u->n; i++) {
                        const int32_t acc = dw_win1(xp, wr, b0, nky, R, kw, 7, cofs);
                        *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                        xp += xstep;
                        yp += ystep;
                    }
                } else {
                    for (i = 0; i < u->n; i++) {
                        const int32_t acc = dw_win1(xp, wr, b0, nky, R, kw, ncol, cofs);
                        *yp = (int8_t)msf_rqc_apply_m(&rc, acc, mode);
                        xp += xstep;
                        yp += ystep;
                    }
                }
            }
        }
    }
}

/* Channels per pass of the short-call loops: the accumulators of a pixel's channels are
 * computed into a stack array first (only the window's pointers live), then requantised in a
 * second loop (only the requantisation values live): two loops without register spills
 * instead of one that spills (128 B of stack). */
#define MSF_DW_CHUNK 32

/* Requantised outputs y[c] of the accumulators acc[c - c0], channels [c0, c0 + nc): MSF_RQ_FIXED
 * through msf_rqf_apply from the channel's multiplier and shift (a channel the lean form does
 * not cover through msf_requant_s8), MSF_RQ_FLOAT through msf_rqc.  pc: per-channel
 * parameters.  The caller checked the clamp (msf_rq_clamp_ok). */
static MSF_ALWAYS_INLINE void dw_rq_store(const msf_conv_s8_params *p, const int32_t *acc,
                                          int32_t c0, int32_t nc, int8_t *y, int32_t mode,
                                          int32_t pc)
{
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const msf_requant *const rq = &p->rq;
    int32_t j;
#if MSF_RQF_DSP
    if (mode == MSF_RQ_FIXED && p->rqd) { /* the generator's records: every channel lean */
        const int32_t *r = p->rqd + 3 * c0;
        if (lo == -128 && hi == 127) { /* the whole int8 range: one SSAT */
            for (j = 0; j < nc; j++) {
                y[j] = (int8_t)msf_rqf_apply_dsp8(acc[j], r[0], r[1], r[2], zp);
                r += 3;
            }
            return;
        }
        for (j = 0; j < nc; j++) {
            y[j] = (int8_t)msf_rqf_apply_dsp(acc[j], r[0], r[1], r[2], zp, lo, hi);
            r += 3;
        }
        return;
    }
#endif
    if (mode == MSF_RQ_FIXED) {
        const int32_t *qm = rq->qmul + (pc ? c0 : 0), *qs = rq->qshift + (pc ? c0 : 0);
        for (j = 0; j < nc; j++) {
            const int32_t mul = *qm, sh = *qs;
            if (msf_rqf_ok(mul, sh)) {
                y[j] = (int8_t)msf_rqf_apply_s(acc[j], mul, sh, zp, lo, hi);
            } else {
                y[j] = (int8_t)msf_clamp_i32(msf_requant_s8(rq, acc[j], c0 + j, zp), lo, hi);
            }
            qm += pc;
            qs += pc;
        }
    } else {
        msf_rqc rc;
        for (j = 0; j < nc; j++) {
            msf_rqc_load(rq, c0 + j, zp, lo, hi, &rc);
            y[j] = (int8_t)msf_rqc_apply_m(&rc, acc[j], mode);
        }
    }
}

/* One output pixel of a full 3x3 window, every channel (the short calls: a fused block's
 * one-pixel or short-column call, where dw_run4_m's per-group weight repacking and
 * requantisation set-up would be paid for one or a few pixels): per chunk of MSF_DW_CHUNK
 * channels the accumulators with pointer increments -- the window's taps at x (row 0,
 * column 0 of channel 0), x + S, x + S2 along a row (ring slots resolved once per run by the
 * caller) and g->R between rows, weights read from flash -- then dw_rq_store. */
static MSF_ALWAYS_INLINE void dw_px33_m(const msf_conv_s8_params *p, const dw_geo_t *g,
                                        const int8_t *x, int8_t *y, int32_t S, int32_t S2,
                                        int32_t mode, int32_t pc)
{
    const int32_t C = g->C, R = g->R;
    const int32_t nzp = -p->in_zp;
    const int32_t *const bz = p->bias_zp, *const bias = p->bias;
    int32_t acc[MSF_DW_CHUNK];
    int32_t c0, j;
    for (c0 = 0; c0 < C; c0 += MSF_DW_CHUNK) {
        const int32_t nc = MSF_MIN(MSF_DW_CHUNK, C - c0);
        const int8_t *wk = p->weights + c0 * 9;
        const int8_t *r0 = x + c0, *r1 = r0 + R, *r2 = r1 + R;
        if (bz) {
            for (j = 0; j < nc; j++) {
                acc[j] = bz[c0 + j];
            }
        } else {
            for (j = 0; j < nc; j++) {
                const int8_t *w = wk + 9 * j;
                const int32_t sw = w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7] + w[8];
                acc[j] = (int32_t)((uint32_t)(bias ? bias[c0 + j] : 0) +
                                   (uint32_t)nzp * (uint32_t)sw);
            }
        }
        for (j = 0; j < nc; j++) {
            int32_t a = acc[j];
            a += r0[0] * wk[0];
            a += r0[S] * wk[1];
            a += r0[S2] * wk[2];
            a += r1[0] * wk[3];
            a += r1[S] * wk[4];
            a += r1[S2] * wk[5];
            a += r2[0] * wk[6];
            a += r2[S] * wk[7];
            a += r2[S2] * wk[8];
            acc[j] = a;
            r0++;
            r1++;
            r2++;
            wk += 9;
        }
        dw_rq_store(p, acc, c0, nc, y + c0, mode, pc);
    }
}

/* One output pixel of any window given as a tap list (a clipped border window, or a kernel
 * other than 3x3): nt taps at x + off[t] (channel 0), weight wi[t] of each channel's kh * kw;
 * chunks of channels as dw_px33_m.  The accumulator is bias + sum (x - in_zp) * w over the
 * valid taps (the reference's sum; the precomputed bias_zp only for a full window, raw
 * products then). */
#define MSF_DW_SHORT_TAPS 25 /* the short path's tap lists (5x5) */
static MSF_ALWAYS_INLINE void dw_pxt_m(const msf_conv_s8_params *p, const dw_geo_t *g,
                                       const int8_t *x, int8_t *y, const int32_t *off,
                                       const int8_t *wi, int32_t nt, int32_t full,
                                       int32_t mode, int32_t pc)
{
    const int32_t C = g->C, ksz = g->ksz;
    const int32_t nzp = (full && p->bias_zp) ? 0 : -p->in_zp;
    const int32_t *const bz = full ? p->bias_zp : (const int32_t *)0, *const bias = p->bias;
    int32_t acc[MSF_DW_CHUNK];
    int32_t c0, j, t;
    for (c0 = 0; c0 < C; c0 += MSF_DW_CHUNK) {
        const int32_t nc = MSF_MIN(MSF_DW_CHUNK, C - c0);
        const int8_t *wk = p->weights + c0 * ksz;
        const int8_t *xc = x + c0;
        for (j = 0; j < nc; j++) {
            int32_t a = bz ? bz[c0 + j] : (bias ? bias[c0 + j] : 0);
            for (t = 0; t < nt; t++) {
                a += (xc[off[t]] + nzp) * wk[wi[t]];
            }
            acc[j] = a;
            xc++;
            wk += ksz;
        }
        dw_rq_store(p, acc, c0, nc, y + c0, mode, pc);
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

/* Halfword lanes v minus the zero-point pair zp (zp 0, a compile-time constant in the
 * unclipped loops: no instruction). */
static MSF_ALWAYS_INLINE int32_t dw_zs(int32_t v, int32_t zp)
{
    return zp ? __ssub16(v, zp) : v;
}

/* One tap for four channels: one word load of the four inputs, two SXTB16, four 16x16
 * multiply-adds against the tap's repacked weights wq[0] (channels 0 / 2), wq[1] (1 / 3). */
#define MSF_DW_TAP(ptr, wq, zp)                                                               \
    do {                                                                                  \
        const uint32_t v_ = msf_ld32(ptr);                                                \
        const int32_t ve_ = dw_zs(__sxtb16((int32_t)v_), zp);                         \
        const int32_t vo_ = dw_zs(dw_sxtb16_ror8(v_), zp);                            \
        a0 = __smlabb(ve_, (wq)[0], a0);                                                  \
        a2 = __smlatt(ve_, (wq)[0], a2);                                                  \
        a1 = __smlabb(vo_, (wq)[1], a1);                                                  \
        a3 = __smlatt(vo_, (wq)[1], a3);                                                  \
    } while (0)

/* The same tap against the tap's four weight bytes wv (channels 0 .. 3, not repacked): two
 * more SXTB16 instead of the second weight word (a half-size weight table for big windows). */
#define MSF_DW_TAPB(ptr, wv, zp)                                                              \
    do {                                                                                  \
        const uint32_t v_ = msf_ld32(ptr), w_ = (uint32_t)(wv);                           \
        const int32_t ve_ = dw_zs(__sxtb16((int32_t)v_), zp);                         \
        const int32_t vo_ = dw_zs(dw_sxtb16_ror8(v_), zp);                            \
        const int32_t we_ = __sxtb16((int32_t)w_), wo_ = dw_sxtb16_ror8(w_);              \
        a0 = __smlabb(ve_, we_, a0);                                                      \
        a2 = __smlatt(ve_, we_, a2);                                                      \
        a1 = __smlabb(vo_, wo_, a1);                                                      \
        a3 = __smlatt(vo_, wo_, a3);                                                      \
    } while (0)

/* Four channels' accumulators (acc[0..3] in, out) over a window of nky rows (R apart) x ncol
 * columns (cofs), weights wq: repacked pairs (wsz 2) or raw bytes (wsz 1), rows wsz * kw
 * apart; ncol and wsz compile-time constants in the specialised calls. */
static MSF_ALWAYS_INLINE void dw_win4(const int8_t *xp, const int32_t *wq, int32_t *acc,
                                      int32_t nky, int32_t R, int32_t kw, int32_t ncol,
                                      const int32_t *cofs, int32_t wsz, int32_t zpp)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], ky, j;
    for (ky = 0; ky < nky; ky++) {
        for (j = 0; j < ncol; j++) {
            if (wsz == 2) {
                MSF_DW_TAP(xp + cofs[j], wq + 2 * j, zpp);
            } else {
                MSF_DW_TAPB(xp + cofs[j], wq[j], zpp);
            }
        }
        xp += R;
        wq += wsz * kw;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Four channels' outputs of one pixel.  mode MSF_RQ_LEAN: the group's channels through
 * msf_rqf_apply (f) when lean, else through msf_rqc as MSF_RQ_FIXED (rc). */
static MSF_ALWAYS_INLINE void dw_out4(int8_t *yp, const msf_rqc *rc, const msf_rqf *f,
                                      int32_t lean, const int32_t *acc, int32_t mode,
                                      int32_t zp, int32_t lo, int32_t hi)
{
    if (mode == MSF_RQ_LEAN && lean) {
        yp[0] = (int8_t)msf_rqf_apply_c(&f[0], acc[0], zp, lo, hi);
        yp[1] = (int8_t)msf_rqf_apply_c(&f[1], acc[1], zp, lo, hi);
        yp[2] = (int8_t)msf_rqf_apply_c(&f[2], acc[2], zp, lo, hi);
        yp[3] = (int8_t)msf_rqf_apply_c(&f[3], acc[3], zp, lo, hi);
    } else {
        const int32_t m = mode == MSF_RQ_LEAN ? MSF_RQ_FIXED : mode;
        yp[0] = (int8_t)msf_rqc_apply_m(&rc[0], acc[0], m);
        yp[1] = (int8_t)msf_rqc_apply_m(&rc[1], acc[1], m);
        yp[2] = (int8_t)msf_rqc_apply_m(&rc[2], acc[2], m);
        yp[3] = (int8_t)msf_rqc_apply_m(&rc[3], acc[3], m);
    }
}

#if MSF_RQ_VCVTR
/* Word store (unaligned: the cores with the DSP extension allow it, as msf_ld32's loads) */
static MSF_ALWAYS_INLINE void dw_st32(int8_t *p, uint32_t v)
{
    *(msf_u32_una *)(void *)p = v;
}

/* Byte lanes of w clamped to [lo, hi] (each of lo4 / hi4 the bound in all four bytes): SSUB8
 * sets a lane's GE flag when w >= lo (signed), SEL keeps w there and lo elsewhere; then the same
 * against hi.  One asm block each: the GE flags live between the two instructions only. */
static MSF_ALWAYS_INLINE uint32_t dw_clamp8x4(uint32_t w, uint32_t lo4, uint32_t hi4)
{
    uint32_t t;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(t) : "r"(w), "r"(lo4) : "cc");
    __asm__("ssub8 %0, %2, %1\n\tsel %0, %1, %2" : "=&r"(w) : "r"(t), "r"(hi4) : "cc");
    return w;
}

/* The int8 output of accumulator acc under MSF_RQ_FLOAT (a channel msf_rqc_load would not send
 * to the reference: finite fmul, |zp| <= 2^24): msf_rqc_apply_m's MSF_RQ_VCVTR form saturated
 * to int8 (the clamp to [lo, hi] follows on the packed word) */
static MSF_ALWAYS_INLINE int32_t dw_rqv(int32_t acc, float fm, int32_t zp)
{
    return __ssat(__qadd(msf_vcvtr_s32((float)acc * fm), zp), 8);
}

/* Four channels' outputs of one pixel as one word store (dw_run4_m, MSF_RQ_FLOAT, a group whose
 * channels take the fast form): byte j = clamp(rq(acc[j]), lo, hi); clamp8: the activation
 * clamp is narrower than int8 (else SSAT's saturation is the whole clamp). */
static MSF_ALWAYS_INLINE void dw_out4v(int8_t *yp, const float *fm, const int32_t *acc,
                                       int32_t zp, int32_t clamp8, uint32_t lo4, uint32_t hi4)
{
    uint32_t w = (uint32_t)dw_rqv(acc[0], fm[0], zp);
    const uint32_t b1 = (uint32_t)dw_rqv(acc[1], fm[1], zp);
    const uint32_t b2 = (uint32_t)dw_rqv(acc[2], fm[2], zp);
    const uint32_t b3 = (uint32_t)dw_rqv(acc[3], fm[3], zp);
    __asm__("bfi %0, %1, #8, #8" : "+r"(w) : "r"(b1));
    __asm__("bfi %0, %1, #16, #8" : "+r"(w) : "r"(b2));
    __asm__("bfi %0, %1, #24, #8" : "+r"(w) : "r"(b3));
    if (clamp8) {
        w = dw_clamp8x4(w, lo4, hi4);
    }
    dw_st32(yp, w);
}
#endif

/* Four outputs of one pixel from acc[0..3]: dw_out4v for a MSF_RQ_FLOAT group that takes it */
#if MSF_RQ_VCVTR
#define DW_OUT4(yp, acc)                                                                      \
    do {                                                                                  \
        if (mode == MSF_RQ_FLOAT && lean) {                                               \
            dw_out4v(yp, fm, acc, zp, clamp8, lo4, hi4);                                  \
        } else {                                                                          \
            dw_out4(yp, rc, f, lean, acc, mode, zp, lo, hi);                              \
        }                                                                                 \
    } while (0)
#else
#define DW_OUT4(yp, acc) dw_out4(yp, rc, f, lean, acc, mode, zp, lo, hi)
#endif

/* One run row of full 3x3 windows, four channels, in a function of its own (dw_run4_m's big
 * frame leaves the inlined copy short of registers: 41 stack loads per pixel, 154
 * instructions): n pixels from x (row 0, column 0 of the group's first channel; window columns
 * S and S2 on, rows R apart; the next pixel xstep on) to y (ystep apart); repacked weights wp
 * (2 words per tap), accumulator starts b, requantisation: MSF_RQ_VF (fm, zp, the packed clamp
 * when clamp8: dw_out4v) or MSF_RQ_LEAN (f: msf_rqf_apply_c, the group's four lean). */
typedef struct {
    const int32_t *wp;
    int32_t S, S2, R, xstep, ystep;
    int32_t b[4];
    const float *fm;
    const msf_rqf *f;
    int32_t zp, lo, hi, clamp8;
    uint32_t lo4, hi4;
} dw33_t;

/* One window row (taps at p, p + S, p + S2; repacked weights at wp + WO bytes, two words per
 * tap) into the four accumulators: the register allocation fixed by an asm block (12
 * registers: GCC's own allocation of the unrolled window spilled the row pointers).  The block
 * reads the input and the weights without memory operands: both are written before the
 * out-of-line row loop is called, never inside it (its stores go to the output, which is never
 * the input). */
#define DW33_TAP(P, O, WO)                                                                    \
    "ldr %[v], [%[" P "]" O "]\n\t"                                                       \
    "ldrd %[w0], %[w1], [%[wp], #" WO "]\n\t"                                              \
    "sxtb16 %[e], %[v]\n\t"                                                               \
    "sxtb16 %[v], %[v], ror #8\n\t"                                                       \
    "smlabb %[a0], %[e], %[w0], %[a0]\n\t"                                                \
    "smlatt %[a2], %[e], %[w0], %[a2]\n\t"                                                \
    "smlabb %[a1], %[v], %[w1], %[a1]\n\t"                                                \
    "smlatt %[a3], %[v], %[w1], %[a3]\n\t"
#define DW33_ROW(PTR, W0, W1, W2)                                                               \
    do {                                                                                  \
        uint32_t v_, e_, w0_, w1_;                                                        \
        __asm__(DW33_TAP("xp", "", W0) DW33_TAP("xp", ", %[S]", W1)                       \
                    DW33_TAP("xp", ", %[S2]", W2)                                         \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),             \
                  [v] "=&r"(v_), [e] "=&r"(e_), [w0] "=&r"(w0_), [w1] "=&r"(w1_)          \
                : [xp] "r"(PTR), [S] "r"(S), [S2] "r"(S2), [wp] "r"(wp));                 \
    } while (0)

#define DW33_ROW2(PTR, W0, W1)                                                                \
    do {                                                                                  \
        uint32_t v_, e_, w0_, w1_;                                                        \
        __asm__(DW33_TAP("xp", "", W0) DW33_TAP("xp", ", %[S]", W1)                       \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),             \
                  [v] "=&r"(v_), [e] "=&r"(e_), [w0] "=&r"(w0_), [w1] "=&r"(w1_)          \
                : [xp] "r"(PTR), [S] "r"(S), [wp] "r"(wp));                               \
    } while (0)

static MSF_ALWAYS_INLINE void dw33_loop(const dw33_t *k, const int8_t *x, int8_t *y, int32_t n,
                                        int32_t rk, int32_t nky, int32_t ncol)
{
    const int32_t *const wp = k->wp;
    const int32_t S = k->S, S2 = k->S2, xstep = k->xstep, ystep = k->ystep;
    const int8_t *p0 = x, *p1 = x + k->R, *p2 = nky == 3 ? x + 2 * k->R : x;
    /* the values read per pixel in locals (dw_st32's may_alias store would make GCC re-read
     * them through k every pixel) */
    const int32_t b0 = k->b[0], b1 = k->b[1], b2 = k->b[2], b3 = k->b[3], zp = k->zp;
    float fm[4];
    int32_t i;
    fm[0] = rk == MSF_RQ_VF ? k->fm[0] : 0.0f;
    fm[1] = rk == MSF_RQ_VF ? k->fm[1] : 0.0f;
    fm[2] = rk == MSF_RQ_VF ? k->fm[2] : 0.0f;
    fm[3] = rk == MSF_RQ_VF ? k->fm[3] : 0.0f;
    for (i = 0; i < n; i++) {
        int32_t a0 = b0, a1 = b1, a2 = b2, a3 = b3;
        int32_t acc[4];
        if (ncol == 3) {
            DW33_ROW(p0, "0", "8", "16");
            DW33_ROW(p1, "24", "32", "40");
            if (nky == 3) {
                DW33_ROW(p2, "48", "56", "64");
            }
        } else {
            DW33_ROW2(p0, "0", "8");
            DW33_ROW2(p1, "24", "32");
            if (nky == 3) {
                DW33_ROW2(p2, "48", "56");
            }
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
#if MSF_RQ_VCVTR
        if (rk == MSF_RQ_VF) {
            dw_out4v(y, fm, acc, zp, k->clamp8, k->lo4, k->hi4);
        } else
#endif
        {
            const msf_rqf *const f = k->f;
            y[0] = (int8_t)msf_rqf_apply_c(&f[0], acc[0], zp, k->lo, k->hi);
            y[1] = (int8_t)msf_rqf_apply_c(&f[1], acc[1], zp, k->lo, k->hi);
            y[2] = (int8_t)msf_rqf_apply_c(&f[2], acc[2], zp, k->lo, k->hi);
            y[3] = (int8_t)msf_rqf_apply_c(&f[3], acc[3], zp, k->lo, k->hi);
        }
        p0 += xstep;
        p1 += xstep;
        p2 += xstep;
        y += ystep;
    }
}

/* The specialised copies: window rows x columns 3 x 3 (full), 3 x 2, 2 x 3, 2 x 2 (border
 * runs of a 3x3 kernel, the valid taps only: weights wp from the first valid tap, rows 3 taps
 * apart), per requantisation form. */
#define DW33_FN(NAME, RK, NKY, NCOL)                                                          \
    static MSF_DW_NOINLINE void NAME(const dw33_t *k, const int8_t *x, int8_t *y, int32_t n) \
    {                                                                                     \
        dw33_loop(k, x, y, n, RK, NKY, NCOL);                                             \
    }
#if MSF_RQ_VCVTR
DW33_FN(dw33_vf, MSF_RQ_VF, 3, 3)
DW33_FN(dw32_vf, MSF_RQ_VF, 3, 2)
DW33_FN(dw23_vf, MSF_RQ_VF, 2, 3)
DW33_FN(dw22_vf, MSF_RQ_VF, 2, 2)
#endif
DW33_FN(dw33_lean, MSF_RQ_LEAN, 3, 3)
DW33_FN(dw32_lean, MSF_RQ_LEAN, 3, 2)
DW33_FN(dw23_lean, MSF_RQ_LEAN, 2, 3)
DW33_FN(dw22_lean, MSF_RQ_LEAN, 2, 2)
#undef DW33_FN

/* One row of run pixels through the copy for (nky, ncol) and the group's form */
static MSF_ALWAYS_INLINE void dw33_call(const dw33_t *k, const int8_t *x, int8_t *y, int32_t n,
                                        int32_t vf, int32_t nky, int32_t ncol)
{
    const int32_t sh = 2 * (nky == 3) + (ncol == 3);
#if MSF_RQ_VCVTR
    if (vf) {
        if (sh == 3) {
            dw33_vf(k, x, y, n);
        } else if (sh == 2) {
            dw32_vf(k, x, y, n);
        } else if (sh == 1) {
            dw23_vf(k, x, y, n);
        } else {
            dw22_vf(k, x, y, n);
        }
        return;
    }
#else
    (void)vf;
#endif
    if (sh == 3) {
        dw33_lean(k, x, y, n);
    } else if (sh == 2) {
        dw32_lean(k, x, y, n);
    } else if (sh == 1) {
        dw23_lean(k, x, y, n);
    } else {
        dw22_lean(k, x, y, n);
    }
}

/* Channels [0, 4 * groups) four at a time: per group every tap's weights are repacked once as
 * sign-extended halfword pairs (wp[2t]: channels 0 / 2, wp[2t + 1]: 1 / 3) for all the runs. */
static MSF_ALWAYS_INLINE void dw_run4_m(const msf_conv_s8_params *p, const dw_geo_t *g,
                                        const dw_run_t *runs, int32_t nr, int32_t groups,
                                        int32_t mode, int32_t wsz)
{
    const int32_t kw = g->kw, ksz = g->ksz;
    int32_t gi, i, r, t, j, k;
    int32_t wp[MSF_DW_WP];
    int32_t cofs[MSF_DW_MAX_KW];
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    /* a group uses one of the two (lean: f): one stack slot (the QEMU boards' 2 KiB stacks) */
    union {
        msf_rqc rc[4];
        msf_rqf f[4];
    } q;
    msf_rqc *const rc = q.rc;
    msf_rqf *const f = q.f;
#if MSF_RQ_VCVTR
    /* MSF_RQ_FLOAT: the groups whose four channels msf_rqc_load would not send to the reference
     * (vf) take dw_out4v; the call's clamp and zero point checked here, the multipliers per
     * group */
    float fm[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int32_t vcall = mode == MSF_RQ_FLOAT && msf_rq_clamp_ok(lo, hi) && zp <= (1 << 24) &&
                          zp >= -(1 << 24);
    const int32_t clamp8 = lo != -128 || hi != 127;
    const uint32_t lo4 = ((uint32_t)lo & 0xFFu) * 0x01010101u;
    const uint32_t hi4 = ((uint32_t)hi & 0xFFu) * 0x01010101u;
#endif
    for (gi = 0; gi < groups; gi++) {
        /* (the last group overlaps the one before when C is not a multiple of 4: dw_flush) */
        const int32_t c = MSF_MIN(4 * gi, g->C - 4);
        const int8_t *wk = p->weights + c * ksz;
        int32_t lean = 0;
#if MSF_RQ_VCVTR
        int32_t vf = 0;
        if (vcall) {
            const int32_t pc = p->rq.per_channel;
            fm[0] = p->rq.fmul[pc ? c : 0];
            fm[1] = p->rq.fmul[pc ? c + 1 : 0];
            fm[2] = p->rq.fmul[pc ? c + 2 : 0];
            fm[3] = p->rq.fmul[pc ? c + 3 : 0];
            vf = msf_fmul_finite(fm[0]) & msf_fmul_finite(fm[1]) & msf_fmul_finite(fm[2]) &
                 msf_fmul_finite(fm[3]);
        }
        /* (lean: MSF_RQ_LEAN's flag; for MSF_RQ_FLOAT it says the group takes dw_out4v) */
        lean = vf;
#endif
        if (mode == MSF_RQ_LEAN) {
            lean = msf_rqf_load(&p->rq, c, &f[0]) & msf_rqf_load(&p->rq, c + 1, &f[1]) &
                   msf_rqf_load(&p->rq, c + 2, &f[2]) & msf_rqf_load(&p->rq, c + 3, &f[3]);
        }
        for (j = 0; j < 4 && !lean; j++) {
            msf_rqc_load(&p->rq, c + j, zp, lo, hi, &rc[j]);
        }
        for (t = 0; t < ksz; t++) {
            if (wsz == 2) {
                wp[2 * t] = (int32_t)(((uint32_t)(int32_t)wk[t] & 0xFFFFu) |
                                      ((uint32_t)(int32_t)wk[2 * ksz + t] << 16));
                wp[2 * t + 1] = (int32_t)(((uint32_t)(int32_t)wk[ksz + t] & 0xFFFFu) |
                                          ((uint32_t)(int32_t)wk[3 * ksz + t] << 16));
            } else {
                wp[t] = (int32_t)((uint32_t)(uint8_t)wk[t] |
                                  ((uint32_t)(uint8_t)wk[ksz + t] << 8) |
                                  ((uint32_t)(uint8_t)wk[2 * ksz + t] << 16) |
                                  ((uint32_t)(uint8_t)wk[3 * ksz + t] << 24));
            }
        }
        for (k = 0; k < nr; k++) {
            const dw_run_t *u = &runs[k];
            const int32_t full = dw_full(g, u);
            const int32_t nky = u->b - u->a, ncol = u->d - u->c, R = g->R;
            const int32_t xstep = u->col ? g->xrs : g->xstep, ystep = u->col ? g->yrs : g->ystep;
            const int32_t n = u->n;
            const int32_t *wq = wp + wsz * (u->a * kw + u->c);
            /* a short clipped run (a border pixel or two): the input zero point subtracted per
             * tap (two SSUB16) instead of summing the valid taps' weights per channel */
            /* c33: a 3x3 kernel's window of 2 or 3 valid rows and columns under MSF_RQ_VF or
             * the lean form: dw33_call (the accumulator start from the weight sums) */
            const int32_t c33 = wsz == 2 && g->kh == 3 && kw == 3 && nky >= 2 && ncol >= 2 &&
                                lean && (mode == MSF_RQ_FLOAT || mode == MSF_RQ_LEAN);
            const int32_t zsub = !c33 && !full && u->n * u->nrows <= MSF_DW_ZSUB_PIX;
            const int32_t zpp = zsub ? (int32_t)(((uint32_t)p->in_zp & 0xFFFFu) |
                                                 ((uint32_t)p->in_zp << 16))
                                     : 0;
            int32_t b[4];
            if (wsz == 2 && !zsub && !(full && p->bias_zp)) {
                /* bias - in_zp * (the valid taps' weight sums), the sums from the repacked
                 * halfword pairs two channels per SADD16 (|sum| <= 49 * 128: no lane
                 * overflow); the same wrapping int32 value as dw_start */
                int32_t se = 0, so = 0, ky, kx;
                const uint32_t nz = (uint32_t)(-p->in_zp);
                for (ky = u->a; ky < u->b; ky++) {
                    for (kx = u->c; kx < u->d; kx++) {
                        se = __sadd16(se, wp[2 * (ky * kw + kx)]);
                        so = __sadd16(so, wp[2 * (ky * kw + kx) + 1]);
                    }
                }
                b[0] = (int32_t)((int16_t)se);
                b[2] = se >> 16;
                b[1] = (int32_t)((int16_t)so);
                b[3] = so >> 16;
                for (j = 0; j < 4; j++) {
                    b[j] = (int32_t)((uint32_t)(p->bias ? p->bias[c + j] : 0) +
                                     nz * (uint32_t)b[j]);
                }
            } else {
                for (j = 0; j < 4; j++) {
                    b[j] = zsub ? (p->bias ? p->bias[c + j] : 0)
                                : dw_start(p, g, u, c + j, full);
                }
            }
            dw_cofs(g, u->s0, ncol, cofs);
            if (c33 || (wsz == 2 && full && g->kh == 3 && kw == 3)) {
                /* the full 3x3 window, unrolled (the run's geometry in locals) */
                const int32_t S = cofs[1], S2 = ncol == 3 ? cofs[2] : 0;
                if (c33) {
                    /* MSF_RQ_VF / the lean form: the row loop out of line (dw33_loop) */
                    dw33_t k;
                    k.wp = wq;
                    k.S = S;
                    k.S2 = S2;
                    k.R = R;
                    k.xstep = xstep;
                    k.ystep = ystep;
                    k.b[0] = b[0];
                    k.b[1] = b[1];
                    k.b[2] = b[2];
                    k.b[3] = b[3];
                    k.f = f;
                    k.zp = zp;
                    k.lo = lo;
                    k.hi = hi;
#if MSF_RQ_VCVTR
                    k.fm = fm;
                    k.clamp8 = clamp8;
                    k.lo4 = lo4;
                    k.hi4 = hi4;
#else
                    k.fm = (const float *)0;
                    k.clamp8 = 0;
                    k.lo4 = 0u;
                    k.hi4 = 0u;
#endif
                    for (r = 0; r < u->nrows; r++) {
                        dw33_call(&k, u->x + r * g->xrs + c, u->y + r * g->yrs + c, n,
                                  mode == MSF_RQ_FLOAT, nky, ncol);
                    }
                    continue;
                }
                for (r = 0; r < u->nrows; r++) {
                    const int8_t *xp = u->x + r * g->xrs + c;
                    int8_t *yp = u->y + r * g->yrs + c;
                    for (i = 0; i < n; i++) {
                        const int8_t *r0 = xp, *r1 = xp + R, *r2 = xp + 2 * R;
                        int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
                        int32_t acc[4];
                        MSF_DW_TAP(r0, wp + 0, 0);
                        MSF_DW_TAP(r0 + S, wp + 2, 0);
                        MSF_DW_TAP(r0 + S2, wp + 4, 0);
                        MSF_DW_TAP(r1, wp + 6, 0);
                        MSF_DW_TAP(r1 + S, wp + 8, 0);
                        MSF_DW_TAP(r1 + S2, wp + 10, 0);
                        MSF_DW_TAP(r2, wp + 12, 0);
                        MSF_DW_TAP(r2 + S, wp + 14, 0);
                        MSF_DW_TAP(r2 + S2, wp + 16, 0);
                        acc[0] = a0;
                        acc[1] = a1;
                        acc[2] = a2;
                        acc[3] = a3;
                        DW_OUT4(yp, acc);
                        xp += xstep;
                        yp += ystep;
                    }
                }
            } else {
                for (r = 0; r < u->nrows; r++) {
                    const int8_t *xp = u->x + r * g->xrs + c;
                    int8_t *yp = u->y + r * g->yrs + c;
                    for (i = 0; i < n; i++) {
                        int32_t acc[4];
                        acc[0] = b[0];
                        acc[1] = b[1];
                        acc[2] = b[2];
                        acc[3] = b[3];
                        if (wsz == 2 && ncol == 5 && !zsub) {
                            dw_win4(xp, wq, acc, nky, R, kw, 5, cofs, 2, 0);
                        } else if (wsz == 2 && zsub) {
                            dw_win4(xp, wq, acc, nky, R, kw, ncol, cofs, 2, zpp);
                        } else if (wsz == 2) {
                            dw_win4(xp, wq, acc, nky, R, kw, ncol, cofs, 2, 0);
                        } else if (zsub) {
                            dw_win4(xp, wq, acc, nky, R, kw, ncol, cofs, 1, zpp);
                        } else if (ncol == 7) {
                            dw_win4(xp, wq, acc, nky, R, kw, 7, cofs, 1, 0);
                        } else {
                            dw_win4(xp, wq, acc, nky, R, kw, ncol, cofs, 1, 0);
                        }
                        DW_OUT4(yp, acc);
                        xp += xstep;
                        yp += ystep;
                    }
                }
            }
        }
    }
}
#undef MSF_DW_TAP
#undef MSF_DW_TAPB
#endif


/* The four specialised loops as separate functions: dw_flush calls them one after another, so
 * the stack holds one of their frames at a time (not the sum of the inlined copies). */
#if MSF_USE_DSP
static MSF_DW_NOINLINE void dw_run4_fixed(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const dw_run_t *runs, int32_t nr, int32_t groups)
{
    if (msf_rq_clamp_ok(p->act_min, p->act_max) && g->ksz <= MSF_DW_WP / 2) {
        dw_run4_m(p, g, runs, nr, groups, MSF_RQ_LEAN, 2);
    } else if (g->ksz <= MSF_DW_WP / 2) {
        dw_run4_m(p, g, runs, nr, groups, MSF_RQ_FIXED, 2);
    } else {
        dw_run4_m(p, g, runs, nr, groups, MSF_RQ_FIXED, 1);
    }
}

static MSF_DW_NOINLINE void dw_run4_float(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const dw_run_t *runs, int32_t nr, int32_t groups)
{
    if (g->ksz <= MSF_DW_WP / 2) {
        dw_run4_m(p, g, runs, nr, groups, MSF_RQ_FLOAT, 2);
    } else {
        dw_run4_m(p, g, runs, nr, groups, MSF_RQ_FLOAT, 1);
    }
}
#endif

static MSF_DW_NOINLINE void dw_run1_fixed(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const dw_run_t *runs, int32_t nr, int32_t c0,
                                          int32_t c1)
{
    dw_run1_m(p, g, runs, nr, c0, c1, MSF_RQ_FIXED);
}

static MSF_DW_NOINLINE void dw_run1_float(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const dw_run_t *runs, int32_t nr, int32_t c0,
                                          int32_t c1)
{
    dw_run1_m(p, g, runs, nr, c0, c1, MSF_RQ_FLOAT);
}

/* MSF_DW_LEAN_PIX: calls whose runs hold at most this many pixels in all take dw_short_runs
 * (the fused modes' column and one-pixel calls); longer calls keep the channel-group loops
 * (measured on cortex-m4: 3 pixels 10.2 vs 11.9 instructions per MAC, 5 pixels 11.3 vs 10.6). */
#ifndef MSF_DW_LEAN_PIX
#define MSF_DW_LEAN_PIX 4
#endif

static int32_t dw_short(const dw_geo_t *g, const dw_run_t *runs, int32_t nr)
{
    int32_t k, npix = 0;
    (void)g;
    for (k = 0; k < nr; k++) {
        npix += runs[k].n * runs[k].nrows;
    }
    return npix <= MSF_DW_LEAN_PIX;
}

static MSF_DW_NOINLINE void dw_px33_fixed(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const int8_t *x, int8_t *y, int32_t S, int32_t S2)
{
    if (p->rq.per_channel) {
        dw_px33_m(p, g, x, y, S, S2, MSF_RQ_FIXED, 1);
    } else {
        dw_px33_m(p, g, x, y, S, S2, MSF_RQ_FIXED, 0);
    }
}

static MSF_DW_NOINLINE void dw_pxt_fixed(const msf_conv_s8_params *p, const dw_geo_t *g,
                                         const int8_t *x, int8_t *y, const int32_t *off,
                                         const int8_t *wi, int32_t nt, int32_t full)
{
    if (p->rq.per_channel) {
        dw_pxt_m(p, g, x, y, off, wi, nt, full, MSF_RQ_FIXED, 1);
    } else {
        dw_pxt_m(p, g, x, y, off, wi, nt, full, MSF_RQ_FIXED, 0);
    }
}

static MSF_DW_NOINLINE void dw_pxt_float(const msf_conv_s8_params *p, const dw_geo_t *g,
                                         const int8_t *x, int8_t *y, const int32_t *off,
                                         const int8_t *wi, int32_t nt, int32_t full)
{
    dw_pxt_m(p, g, x, y, off, wi, nt, full, MSF_RQ_FLOAT, 0);
}

static MSF_DW_NOINLINE void dw_px33_float(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const int8_t *x, int8_t *y, int32_t S, int32_t S2)
{
    dw_px33_m(p, g, x, y, S, S2, MSF_RQ_FLOAT, 0);
}

/* A short call (dw_short): every pixel of every run through dw_px33_m (a full 3x3 window) or
 * dw_pxt_m (a tap list built once per run).  Out of line: its tap list is on the stack only
 * while it runs, not under dw_run4_m's frame. */
static MSF_DW_NOINLINE void dw_short_runs(const msf_conv_s8_params *p, const dw_geo_t *g,
                                          const dw_run_t *runs, int32_t nr)
{
    int32_t k, r, i, ky, kx;
    for (k = 0; k < nr; k++) {
        const dw_run_t *u = &runs[k];
        const int32_t full = dw_full(g, u);
        const int32_t xstep = u->col ? g->xrs : g->xstep;
        const int32_t ystep = u->col ? g->yrs : g->ystep;
        const int32_t ncol = u->d - u->c;
        const int32_t fixed = p->rq.mode == MSF_RQ_FIXED;
        int32_t cofs[MSF_DW_MAX_KW];
        int32_t off[MSF_DW_SHORT_TAPS];
        int8_t wi[MSF_DW_SHORT_TAPS];
        int32_t nt = 0;
        dw_cofs(g, u->s0, ncol, cofs);
        for (ky = u->a; ky < u->b; ky++) {
            for (kx = u->c; kx < u->d; kx++) {
                off[nt] = (ky - u->a) * g->R + cofs[kx - u->c];
                wi[nt] = (int8_t)(ky * g->kw + kx);
                nt++;
            }
        }
        for (r = 0; r < u->nrows; r++) {
            const int8_t *xp = u->x + r * g->xrs;
            int8_t *yp = u->y + r * g->yrs;
            for (i = 0; i < u->n; i++) {
                if (full && g->kh == 3 && g->kw == 3) {
                    if (fixed) {
                        dw_px33_fixed(p, g, xp, yp, cofs[1], cofs[2]);
                    } else {
                        dw_px33_float(p, g, xp, yp, cofs[1], cofs[2]);
                    }
                } else if (fixed) {
                    dw_pxt_fixed(p, g, xp, yp, off, wi, nt, full);
                } else {
                    dw_pxt_float(p, g, xp, yp, off, wi, nt, full);
                }
                xp += xstep;
                yp += ystep;
            }
        }
    }
}

/* DSP cores: a remainder of at least this many channels after the groups of four takes an
 * overlapping group of four (dw_flush; measured on mbv2-w0.35, cortex-m4) */
#ifndef MSF_DW_TAIL4
#define MSF_DW_TAIL4 2
#endif

/* The collected runs, channels outermost. */
static void dw_flush(const msf_conv_s8_params *p, const dw_geo_t *g, const dw_run_t *runs,
                     int32_t nr)
{
    int32_t c4 = 0;
    if (nr == 0) {
        return;
    }
    if (g->ksz <= MSF_DW_SHORT_TAPS && dw_short(g, runs, nr) &&
        msf_rq_clamp_ok(p->act_min, p->act_max)) {
        dw_short_runs(p, g, runs, nr);
        return;
    }
#if MSF_USE_DSP
    c4 = g->C / 4;
    if (c4 > 0) {
        /* MSF_DW_TAIL4 or more channels past the last group of four: one more group, channels
         * C - 4 .. C - 1, which overlaps the one before (its outputs written twice, the same
         * bytes: the output is not the input) instead of dw_run1_m's channel loop */
        const int32_t tail = g->C - 4 * c4 >= MSF_DW_TAIL4;
        if (p->rq.mode == MSF_RQ_FIXED) {
            dw_run4_fixed(p, g, runs, nr, c4 + tail);
        } else {
            dw_run4_float(p, g, runs, nr, c4 + tail);
        }
        c4 = tail ? g->C / 4 + 1 : c4;
    }
#endif
    if (4 * c4 < g->C) {
        if (p->rq.mode == MSF_RQ_FIXED) {
            dw_run1_fixed(p, g, runs, nr, 4 * c4, g->C);
        } else {
            dw_run1_float(p, g, runs, nr, 4 * c4, g->C);
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
    dw_geo_t g;
    int32_t nr = 0, oy, oy_end, fy0, fy1;

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
    g.dl = dl;
    g.xcap = in->xcap;
    g.xstep = w->sw * C;
    g.ystep = C;
    g.xrs = w->sh * rowstep;
    g.yrs = out->xcap * C;
    g.R = dh * rowstep;
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
            int32_t c, d, c2, d2, s0 = 0, span, wraps, nt;
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
            if (nr == MSF_DW_RUNS) {
                dw_flush(p, &g, runs, nr);
                nr = 0;
            }
            u = &runs[nr++];
            u->a = (int8_t)a;
            u->b = (int8_t)b;
            u->c = (int8_t)c;
            u->d = (int8_t)d;
            (void)nt;
            u->s0 = s0;
            if (nt > 0) {
#ifdef MSF_CHECK_BOUNDS
                {
                    /* the column offsets the inner loops use (dw_cofs) against msf_vofs */
                    int32_t cofs[MSF_DW_MAX_KW], kx;
                    const int32_t iy = oy * w->sh - w->pad_top + a * dh;
                    dw_cofs(&g, s0, d - c, cofs);
                    for (kx = c; kx < d; kx++) {
                        if (MSF_CHECK(cofs[kx - c] + msf_vofs(in, iy, ix0 + c * dl) ==
                                          msf_vofs(in, iy, ix0 + kx * dl),
                                      "dw fast tap offset")) {
                            u->b = u->a; /* (skip the run rather than read outside) */
                        }
                    }
                }
#endif
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
            u->n = ox_end - ox;
            u->nrows = oy_end - oy;
            u->col = 0;
            if (u->n == 1) { /* a column: its pixels down the rows are the inner loop */
                u->n = u->nrows;
                u->nrows = 1;
                u->col = 1;
            }
        }
    }
    dw_flush(p, &g, runs, nr);
}
