/* msf_s8_convfast.c - fast int8 convolution inner kernels (groups 1, no dilation) over a run of
 * output pixels whose windows are fully inside the input.
 *
 * A run is n output pixels at a constant stride: a stretch of one output row, a stretch of one
 * output column (the column calls of the fused modes), or, for a 1x1 stride-1 layer over full
 * views, several whole rows.  Pixel i reads window row ky at x + i * xstep + ky * xrow, a
 * contiguous run of L = kw * C_in bytes (OHWI weights are contiguous the same way) -- or, when
 * the window wraps around an input ring, two contiguous pieces (the slots up to the ring's end,
 * then the ring's first slots) -- and writes its C_out outputs at y + i * ystep.  The caller
 * (msf_conv2d_s8) splits the output region so that the outputs of a run do not cross a ring
 * wrap and every window of a run wraps at the same place, and sends the border pixels (clipped
 * windows) to the reference loop.
 *
 * Blocking: output channels in pairs outermost (accumulator starts and requantisation
 * parameters once per channel and run), then two output pixels x two output channels per inner
 * loop (each loaded operand feeds two accumulators), odd pixel / channel tails one by one.  The
 * input zero point is folded into the accumulator start, bias - in_zp * sum(w) (precomputed by
 * the code generator: msf_conv_s8_params.bias_zp), so the loops multiply raw int8 values.  With
 * the ARMv7E-M / ARMv8-M DSP extension, four bytes per step through SXTB16 (two sign-extended
 * halfword lanes, the odd bytes with the ROR #8 form) + SMLAD (two MACs); without it, a byte
 * loop with pointer increments.  Accumulation order differs from the reference but int32
 * addition is exact (wrap-around is associative), so the result is bit-identical;
 * requantisation is msf_s8_requant.h's inlined copy: MSF_RQ_FIXED with the clamp inside int8
 * (MSF_RQ_LEAN, checked once per call) from each channel's multiplier and shift in locals
 * (msf_rqf: no msf_rqc set-up per channel and call, which the fused modes' short calls pay
 * per pixel), channels the lean form does not cover through msf_rqc.  Two shapes get copies
 * with constant window-row lengths (the dot loops unrolled): a 3x3 conv over 3 input channels
 * (the RGB stem) and pointwise layers of 8 or 16 input channels.  On cores with the DSP
 * extension and an FPU (MSF_RQ_VCVTR, msf_s8_requant.h) MSF_RQ_FLOAT channel pairs with finite
 * multipliers under a clamp inside int8 requantise from the pair's multipliers in locals
 * (MSF_RQ_VF / MSF_RQ_VF8: VCVTR + QADD, one SSAT for the whole-int8 clamp), and pointwise
 * layers of 5, 8 or 11 input channels (the zoo's narrow layers) get constant-length copies. */
#include "msf_s8_requant.h"
#include "msf_s8_fast.h"

#if MSF_FAST_KERNELS

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MSF_USE_DSP 1
#else
#define MSF_USE_DSP 0
#endif

/* MSF_PX1_QUAD: single-pixel runs take output channels four at a time (dot14) -- on cores with
 * the registers for four accumulators, the pointers and the input (DSP Cortex-M, RISC-V, the
 * 64-bit hosts the unit tests run on); elsewhere (Cortex-M0's eight low registers) they stay
 * on the channel-pair loop. */
#if MSF_USE_DSP || defined(__riscv) || defined(__x86_64__) || defined(__aarch64__)
#define MSF_PX1_QUAD 1
#else
#define MSF_PX1_QUAD 0
#endif

#if MSF_USE_DSP
/* SXTB16 of the word rotated right by 8 (bytes 1 and 3), one instruction */
static MSF_ALWAYS_INLINE int32_t sxtb16_ror8(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* Two pixels (x0, x1) x two channels (w0, w1), L bytes each, raw products (the input zero
 * point is folded into the accumulators' start values). */
static MSF_ALWAYS_INLINE void dot22(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                    const int8_t *w1, int32_t L, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t k = 0;
    for (; k + 4 <= L; k += 4) {
        uint32_t xa = msf_ld32(x0 + k), xb = msf_ld32(x1 + k);
        uint32_t wa = msf_ld32(w0 + k), wb = msf_ld32(w1 + k);
        int32_t xae = __sxtb16((int32_t)xa), xao = sxtb16_ror8(xa);
        int32_t xbe = __sxtb16((int32_t)xb), xbo = sxtb16_ror8(xb);
        int32_t wae = __sxtb16((int32_t)wa), wao = sxtb16_ror8(wa);
        int32_t wbe = __sxtb16((int32_t)wb), wbo = sxtb16_ror8(wb);
        a00 = __smlad(xae, wae, a00);
        a00 = __smlad(xao, wao, a00);
        a01 = __smlad(xae, wbe, a01);
        a01 = __smlad(xao, wbo, a01);
        a10 = __smlad(xbe, wae, a10);
        a10 = __smlad(xbo, wao, a10);
        a11 = __smlad(xbe, wbe, a11);
        a11 = __smlad(xbo, wbo, a11);
    }
    for (; k < L; k++) {
        int32_t va = x0[k], vb = x1[k];
        a00 += va * w0[k];
        a01 += va * w1[k];
        a10 += vb * w0[k];
        a11 += vb * w1[k];
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* One pixel x two channels. */
static MSF_ALWAYS_INLINE void dot12(const int8_t *x0, const int8_t *w0, const int8_t *w1,
                                    int32_t L, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    int32_t k = 0;
    for (; k + 4 <= L; k += 4) {
        uint32_t xa = msf_ld32(x0 + k);
        uint32_t wa = msf_ld32(w0 + k), wb = msf_ld32(w1 + k);
        int32_t xae = __sxtb16((int32_t)xa), xao = sxtb16_ror8(xa);
        a0 = __smlad(xae, __sxtb16((int32_t)wa), a0);
        a0 = __smlad(xao, sxtb16_ror8(wa), a0);
        a1 = __smlad(xae, __sxtb16((int32_t)wb), a1);
        a1 = __smlad(xao, sxtb16_ror8(wb), a1);
    }
    for (; k < L; k++) {
        int32_t va = x0[k];
        a0 += va * w0[k];
        a1 += va * w1[k];
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* One pixel x four channels (weights ws bytes apart): the single-pixel calls of the fused
 * modes (an H-cache block's 1 x 1 column calls), each loaded input word feeding four
 * accumulators instead of dot12's two. */
static MSF_ALWAYS_INLINE void dot14(const int8_t *x0, const int8_t *w0, int32_t ws, int32_t L,
                                    int32_t *acc)
{
    /* one moving input pointer and one moving weight pointer, the other three channels'
     * weights at constant offsets from it (register-offset loads): fits the registers */
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int32_t ws2 = 2 * ws, ws3 = 3 * ws;
    const int8_t *const xend = x0 + (L & ~3), *const end = x0 + L;
    while (x0 != xend) {
        uint32_t xa = msf_ld32(x0), wa = msf_ld32(w0), wb = msf_ld32(w0 + ws);
        int32_t xe = __sxtb16((int32_t)xa), xo = sxtb16_ror8(xa);
        a0 = __smlad(xe, __sxtb16((int32_t)wa), a0);
        a0 = __smlad(xo, sxtb16_ror8(wa), a0);
        a1 = __smlad(xe, __sxtb16((int32_t)wb), a1);
        a1 = __smlad(xo, sxtb16_ror8(wb), a1);
        wa = msf_ld32(w0 + ws2);
        wb = msf_ld32(w0 + ws3);
        a2 = __smlad(xe, __sxtb16((int32_t)wa), a2);
        a2 = __smlad(xo, sxtb16_ror8(wa), a2);
        a3 = __smlad(xe, __sxtb16((int32_t)wb), a3);
        a3 = __smlad(xo, sxtb16_ror8(wb), a3);
        x0 += 4;
        w0 += 4;
    }
    while (x0 != end) {
        int32_t va = *x0++;
        a0 += va * w0[0];
        a1 += va * w0[ws];
        a2 += va * w0[ws2];
        a3 += va * w0[ws3];
        w0++;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Sum of L weights. */
static MSF_ALWAYS_INLINE int32_t wsum(const int8_t *w0, int32_t L)
{
    int32_t s = 0, k = 0;
    for (; k + 4 <= L; k += 4) {
        uint32_t wa = msf_ld32(w0 + k);
        s = __smlad(__sxtb16((int32_t)wa), 0x00010001, s);
        s = __smlad(sxtb16_ror8(wa), 0x00010001, s);
    }
    for (; k < L; k++) {
        s += w0[k];
    }
    return s;
}
#else
static MSF_ALWAYS_INLINE void dot22(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                    const int8_t *w1, int32_t L, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *end = x0 + L;
    while (x0 != end) {
        int32_t va = *x0++, vb = *x1++;
        int32_t wa = *w0++, wb = *w1++;
        a00 += va * wa;
        a01 += va * wb;
        a10 += vb * wa;
        a11 += vb * wb;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

static MSF_ALWAYS_INLINE void dot12(const int8_t *x0, const int8_t *w0, const int8_t *w1,
                                    int32_t L, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    const int8_t *end = x0 + L;
    while (x0 != end) {
        int32_t va = *x0++;
        a0 += va * *w0++;
        a1 += va * *w1++;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* One pixel x four channels, pointer increments (used where the registers hold it: RISC-V;
 * Cortex-M0's eight low registers would spill, it keeps dot12 there). */
static MSF_ALWAYS_INLINE void dot14(const int8_t *x0, const int8_t *w0, int32_t ws, int32_t L,
                                    int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
    const int8_t *end = x0 + L;
    while (x0 != end) {
        int32_t va = *x0++;
        a0 += va * *w0++;
        a1 += va * *w1++;
        a2 += va * *w2++;
        a3 += va * *w3++;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static MSF_ALWAYS_INLINE int32_t wsum(const int8_t *w0, int32_t L)
{
    int32_t s = 0, k;
    for (k = 0; k < L; k++) {
        s += w0[k];
    }
    return s;
}
#endif

/* One pixel x one channel. */
static MSF_ALWAYS_INLINE int32_t dot11(const int8_t *x0, const int8_t *w0, int32_t L,
                                       int32_t a)
{
    int32_t k;
    for (k = 0; k < L; k++) {
        a += (int32_t)x0[k] * w0[k];
    }
    return a;
}

/* Start value of output channel oc's accumulator: bias - in_zp * sum of its weights, so that
 * the loops multiply raw int8 values: sum (x - zp) w = sum x w - zp sum w (exact in wrapping
 * int32 arithmetic, the same value as the reference's sum).  Generated models carry it
 * precomputed (p->bias_zp); hand-built params get it from the weights here. */
static MSF_ALWAYS_INLINE int32_t acc_init(const msf_conv_s8_params *p, int32_t oc, int32_t KL)
{
    int32_t a;
    if (p->bias_zp) {
        return p->bias_zp[oc];
    }
    a = p->bias ? p->bias[oc] : 0;
    if (p->in_zp != 0) {
        a = (int32_t)((uint32_t)a + (uint32_t)(-p->in_zp) *
                                        (uint32_t)wsum(p->weights + oc * KL, KL));
    }
    return a;
}

/* Channel oc's output of accumulator acc, the channel's values read here (one output per
 * channel and call: the single-pixel runs). */
static MSF_ALWAYS_INLINE int32_t px1_out(const msf_conv_s8_params *p, int32_t oc, int32_t acc,
                                         int32_t mode)
{
    msf_rqc rc;
    if (mode == MSF_RQ_LEAN) {
        msf_rqf f;
#if MSF_RQF_DSP
        if (p->rqd) { /* the generator's records: every channel lean */
            msf_rqf_rec(p->rqd, oc, &f);
            return msf_rqf_apply_c(&f, acc, p->out_zp, p->act_min, p->act_max);
        }
#endif
        if (msf_rqf_load(&p->rq, oc, &f)) {
            return msf_rqf_apply_c(&f, acc, p->out_zp, p->act_min, p->act_max);
        }
        mode = MSF_RQ_FIXED;
    }
    msf_rqc_load(&p->rq, oc, p->out_zp, p->act_min, p->act_max, &rc);
    return msf_rqc_apply_m(&rc, acc, mode);
}

#if MSF_PX1_QUAD
/* A run of one output pixel (the fused modes' 1 x 1 column calls: an H-cache block one tile
 * row high calls its 1x1 layers once per output pixel; msf_conv1x1_s8_run sends them here): output channels four at a time, the
 * four accumulators finished before their requantisation parameters are read (fewer live
 * registers in the dot loop); the last one to three channels as conv_run does them. */
static MSF_ALWAYS_INLINE void conv_px1(const msf_conv_s8_params *p, int32_t cout,
                                       const int8_t *x, int32_t xrow, int32_t kh, int32_t L,
                                       int32_t la, int32_t xb, int8_t *y, int32_t mode)
{
    const int32_t KL = kh * L;
    const int32_t lb = L - la;
    int32_t oc, ky, j;
    for (oc = 0; oc + 4 <= cout; oc += 4) {
        const int8_t *w0 = p->weights + oc * KL;
        int32_t acc[4];
        for (j = 0; j < 4; j++) {
            acc[j] = acc_init(p, oc + j, KL);
        }
        for (ky = 0; ky < kh; ky++) {
            const int8_t *xr = x + ky * xrow;
            dot14(xr, w0 + ky * L, KL, la, acc);
            if (lb) {
                dot14(xr + xb, w0 + ky * L + la, KL, lb, acc);
            }
        }
        for (j = 0; j < 4; j++) {
            y[oc + j] = (int8_t)px1_out(p, oc + j, acc[j], mode);
        }
    }
    for (; oc < cout; oc++) {
        const int8_t *w0 = p->weights + oc * KL;
        int32_t a = acc_init(p, oc, KL);
        for (ky = 0; ky < kh; ky++) {
            const int8_t *xr = x + ky * xrow;
            a = dot11(xr, w0 + ky * L, la, a);
            if (lb) {
                a = dot11(xr + xb, w0 + ky * L + la, lb, a);
            }
        }
        y[oc] = (int8_t)px1_out(p, oc, a, mode);
    }
}
#endif

/* One channel pair's outputs (oc, oc + 1) over the run's pixels, two at a time (each loaded
 * operand feeds two accumulators), an odd last pixel alone.  rk: MSF_RQ_LEAN (f0 / f1, the
 * clamp in zp / lo / hi) or the msf_rqc mode (r0 / r1). */
#if MSF_RQ_VCVTR
#define CONV_OUT(j, acc)                                                                      \
    (rk == MSF_RQ_LEAN  ? msf_rqf_apply_c(&f[j], (acc), zp, lo, hi)                           \
     : rk == MSF_RQ_VF8 ? msf_rqv_apply((acc), fm[j], zp, lo, hi, 1)                          \
     : rk == MSF_RQ_VF  ? msf_rqv_apply((acc), fm[j], zp, lo, hi, 0)                          \
                        : msf_rqc_apply_m(&r[j], (acc), rk))
#else
#define CONV_OUT(j, acc)                                                                      \
    (rk == MSF_RQ_LEAN ? msf_rqf_apply_c(&f[j], (acc), zp, lo, hi)                            \
                       : msf_rqc_apply_m(&r[j], (acc), rk))
#endif
static MSF_ALWAYS_INLINE void conv_pair(const int8_t *w0, int32_t b0, int32_t b1,
                                        const int8_t *x, int32_t xstep, int32_t xrow,
                                        int32_t kh, int32_t L, int32_t la, int32_t xb,
                                        int8_t *ya, int32_t ystep, int32_t n, int32_t KL,
                                        int32_t rk, const msf_rqc *r, const msf_rqf *f,
                                        const float *fm, int32_t zp, int32_t lo, int32_t hi)
{
    const int8_t *w1 = w0 + KL;
    const int32_t lb = L - la;
    const int8_t *xa = x;
    int32_t i, ky;
    (void)fm; /* (MSF_RQ_VF* only) */
    for (i = 0; i + 2 <= n; i += 2) {
        int32_t acc[4];
        acc[0] = acc[2] = b0;
        acc[1] = acc[3] = b1;
        for (ky = 0; ky < kh; ky++) {
            const int8_t *xr = xa + ky * xrow;
            dot22(xr, xr + xstep, w0 + ky * L, w1 + ky * L, la, acc);
            if (lb) {
                dot22(xr + xb, xr + xstep + xb, w0 + ky * L + la, w1 + ky * L + la, lb, acc);
            }
        }
        ya[0] = (int8_t)CONV_OUT(0, acc[0]);
        ya[1] = (int8_t)CONV_OUT(1, acc[1]);
        ya[ystep] = (int8_t)CONV_OUT(0, acc[2]);
        ya[ystep + 1] = (int8_t)CONV_OUT(1, acc[3]);
        xa += 2 * xstep;
        ya += 2 * ystep;
    }
    if (i < n) {
        int32_t acc[2];
        acc[0] = b0;
        acc[1] = b1;
        for (ky = 0; ky < kh; ky++) {
            const int8_t *xr = xa + ky * xrow;
            dot12(xr, w0 + ky * L, w1 + ky * L, la, acc);
            if (lb) {
                dot12(xr + xb, w0 + ky * L + la, w1 + ky * L + la, lb, acc);
            }
        }
        ya[0] = (int8_t)CONV_OUT(0, acc[0]);
        ya[1] = (int8_t)CONV_OUT(1, acc[1]);
    }
}

/* The run, for kh window rows of L bytes; each window row is la contiguous bytes at the row
 * start and, when the window wraps around an input ring (la < L), L - la more at offset xb
 * from it (the ring's first slot).  Output channels in pairs outermost (accumulator starts
 * and requantisation parameters once per channel and run), pixels in pairs inside
 * (conv_pair).  mode MSF_RQ_LEAN: every channel takes the lean form (run_mode). */
static MSF_ALWAYS_INLINE void conv_run(const msf_conv_s8_params *p, int32_t cout,
                                       const int8_t *x, int32_t xstep, int32_t xrow,
                                       int32_t kh, int32_t L, int32_t la, int32_t xb,
                                       int8_t *y, int32_t ystep, int32_t n, int32_t mode)
{
    const int32_t KL = kh * L;
    const int32_t lb = L - la;
    const int8_t *wt = p->weights;
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int32_t gmode = mode == MSF_RQ_LEAN ? MSF_RQ_FIXED : mode;
    int32_t i, oc, ky;
    msf_rqc r[2];
    msf_rqf f[2];
    float fm[2] = {0.0f, 0.0f};
#if MSF_RQ_VCVTR
    const int32_t vcall = mode == MSF_RQ_FLOAT && msf_rqv_call_ok(zp, lo, hi);
#endif
    for (oc = 0; oc + 2 <= cout; oc += 2) {
        const int8_t *w0 = wt + oc * KL;
        const int32_t b0 = acc_init(p, oc, KL), b1 = acc_init(p, oc + 1, KL);
        if (mode == MSF_RQ_LEAN) {
#if MSF_RQF_DSP
            if (p->rqd) {
                msf_rqf_rec(p->rqd, oc, &f[0]);
                msf_rqf_rec(p->rqd, oc + 1, &f[1]);
            } else
#endif
            {
                (void)msf_rqf_load(&p->rq, oc, &f[0]); /* (every channel lean: run_mode) */
                (void)msf_rqf_load(&p->rq, oc + 1, &f[1]);
            }
            conv_pair(w0, b0, b1, x, xstep, xrow, kh, L, la, xb, y + oc, ystep, n, KL,
                      MSF_RQ_LEAN, r, f, fm, zp, lo, hi);
            continue;
        }
#if MSF_RQ_VCVTR
        if (vcall) {
            /* MSF_RQ_FLOAT, the clamp inside int8: the pair's multipliers in locals */
            const int32_t pc = p->rq.per_channel;
            fm[0] = p->rq.fmul[pc ? oc : 0];
            fm[1] = p->rq.fmul[pc ? oc + 1 : 0];
            if (msf_fmul_finite(fm[0]) && msf_fmul_finite(fm[1])) {
                if (lo == -128 && hi == 127) {
                    conv_pair(w0, b0, b1, x, xstep, xrow, kh, L, la, xb, y + oc, ystep, n, KL,
                              MSF_RQ_VF8, r, f, fm, zp, lo, hi);
                } else {
                    conv_pair(w0, b0, b1, x, xstep, xrow, kh, L, la, xb, y + oc, ystep, n, KL,
                              MSF_RQ_VF, r, f, fm, zp, lo, hi);
                }
                continue;
            }
        }
#endif
        msf_rqc_load(&p->rq, oc, zp, lo, hi, &r[0]);
        msf_rqc_load(&p->rq, oc + 1, zp, lo, hi, &r[1]);
        conv_pair(w0, b0, b1, x, xstep, xrow, kh, L, la, xb, y + oc, ystep, n, KL, gmode, r,
                  f, fm, zp, lo, hi);
    }
    if (oc < cout) {
        const int8_t *w0 = wt + oc * KL;
        const int32_t b0 = acc_init(p, oc, KL);
        msf_rqc_load(&p->rq, oc, zp, lo, hi, &r[0]);
        for (i = 0; i < n; i++) {
            int32_t a = b0;
            for (ky = 0; ky < kh; ky++) {
                const int8_t *xr = x + i * xstep + ky * xrow;
                a = dot11(xr, w0 + ky * L, la, a);
                if (lb) {
                    a = dot11(xr + xb, w0 + ky * L + la, lb, a);
                }
            }
            y[i * ystep + oc] = (int8_t)msf_rqc_apply_m(&r[0], a, gmode);
        }
    }
}
#undef CONV_OUT

/* The requantisation mode of a call's loops over cout channels: MSF_RQ_LEAN when the clamp
 * lies inside int8 and every channel takes the lean form (one check per channel and call:
 * the lean loops then have no per-channel fallback, which would be a second copy of the
 * loops in each of them), else the mode's msf_rqc loops. */
static int32_t run_mode(const msf_conv_s8_params *p, int32_t cout)
{
    int32_t oc, ok = 1;
#if MSF_RQF_DSP
    if (p->rqd) { /* the generator checked every channel and the clamp */
        return MSF_RQ_LEAN;
    }
#endif
    /* (cout 0: the clamp only -- for callers that check each channel themselves) */
    if (p->rq.mode != MSF_RQ_FIXED) {
        return MSF_RQ_FLOAT;
    }
    if (!msf_rq_clamp_ok(p->act_min, p->act_max)) {
        return MSF_RQ_FIXED;
    }
    for (oc = 0; oc < (p->rq.per_channel ? cout : MSF_MIN(cout, 1)); oc++) {
        ok &= msf_rqf_ok(p->rq.qmul[oc], p->rq.qshift[oc]);
    }
    return ok ? MSF_RQ_LEAN : MSF_RQ_FIXED;
}

#if MSF_USE_DSP && MSF_RQF_DSP
/* One pixel x four channels over L input bytes (L a multiple of 4; a constant in the
 * specialised copies, so the other three channels' weights are immediate offsets from one
 * pointer), each input word sign-extended once for the four channels. */
/* four bytes of the input (xa) x four channels' words at w, w + L, w + 2L, w + 3L */
#define DOT14K_STEP(xa, w, L)                                                                 \
    do {                                                                                      \
        const int32_t xe_ = __sxtb16((int32_t)(xa)), xo_ = sxtb16_ror8(xa);                   \
        uint32_t wv_ = msf_ld32(w);                                                           \
        a0 = __smlad(xe_, __sxtb16((int32_t)wv_), a0);                                        \
        a0 = __smlad(xo_, sxtb16_ror8(wv_), a0);                                              \
        wv_ = msf_ld32((w) + (L));                                                            \
        a1 = __smlad(xe_, __sxtb16((int32_t)wv_), a1);                                        \
        a1 = __smlad(xo_, sxtb16_ror8(wv_), a1);                                              \
        wv_ = msf_ld32((w) + 2 * (L));                                                        \
        a2 = __smlad(xe_, __sxtb16((int32_t)wv_), a2);                                        \
        a2 = __smlad(xo_, sxtb16_ror8(wv_), a2);                                              \
        wv_ = msf_ld32((w) + 3 * (L));                                                        \
        a3 = __smlad(xe_, __sxtb16((int32_t)wv_), a3);                                        \
        a3 = __smlad(xo_, sxtb16_ror8(wv_), a3);                                              \
    } while (0)

static MSF_ALWAYS_INLINE void dot14k(const int8_t *x, const int8_t *w, int32_t L, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *const xend = x + L;
    do {
        const uint32_t xa = msf_ld32(x);
        DOT14K_STEP(xa, w, L);
        x += 4;
        w += 4;
    } while (x != xend);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef DOT14K_STEP

/* Out of line (a call per four channels): inside px1_rqd's loop the channel loop's state
 * would take the registers the accumulators need (GCC then spills two of them in the dot
 * loop); the widths of the common layers as constants. */
#if defined(__GNUC__)
#define MSF_CONV_NOINLINE __attribute__((noinline))
#else
#define MSF_CONV_NOINLINE
#endif
static MSF_CONV_NOINLINE void dot14k_64(const int8_t *x, const int8_t *w, int32_t *acc)
{
    dot14k(x, w, 64, acc);
}
static MSF_CONV_NOINLINE void dot14k_128(const int8_t *x, const int8_t *w, int32_t *acc)
{
    dot14k(x, w, 128, acc);
}
static MSF_CONV_NOINLINE void dot14k_256(const int8_t *x, const int8_t *w, int32_t *acc)
{
    dot14k(x, w, 256, acc);
}
static MSF_CONV_NOINLINE void dot14k_any(const int8_t *x, const int8_t *w, int32_t L,
                                         int32_t *acc)
{
    dot14k(x, w, L, acc);
}

/* A one-pixel 1 x 1 call (the fused modes' single-pixel column calls) of a generated layer
 * with the code generator's requantisation records and folded biases (p->rqd, p->bias_zp):
 * four channels per dot14k pass, then their records; a last one to three channels one by
 * one.  cin: a multiple of 4. */
static MSF_ALWAYS_INLINE void px1_rqd(const msf_conv_s8_params *p, int32_t cout,
                                      const int8_t *x, int32_t cin, int8_t *y)
{
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int32_t *bz = p->bias_zp, *r = p->rqd;
    const int8_t *w = p->weights;
    int32_t oc, j;
    for (oc = 0; oc + 4 <= cout; oc += 4) {
        int32_t acc[4];
        acc[0] = bz[0];
        acc[1] = bz[1];
        acc[2] = bz[2];
        acc[3] = bz[3];
        if (cin == 128) {
            dot14k_128(x, w, acc);
        } else if (cin == 64) {
            dot14k_64(x, w, acc);
        } else if (cin == 256) {
            dot14k_256(x, w, acc);
        } else {
            dot14k_any(x, w, cin, acc);
        }
        for (j = 0; j < 4; j++) {
            y[j] = (int8_t)msf_rqf_apply_dsp(acc[j], r[0], r[1], r[2], zp, lo, hi);
            r += 3;
        }
        bz += 4;
        w += 4 * cin;
        y += 4;
    }
    for (; oc < cout; oc++) {
        const int32_t a = dot11(x, w, cin, *bz++);
        *y++ = (int8_t)msf_rqf_apply_dsp(a, r[0], r[1], r[2], zp, lo, hi);
        r += 3;
        w += cin;
    }
}

/* The records' requantisation of one output; full: the clamp is the whole int8 range
 * (act_min -128, act_max 127: TFLite's int8 ReLU6 / no activation), one SSAT instead of the
 * two comparisons (a compile-time constant in the callers' copies). */
static MSF_ALWAYS_INLINE int32_t rqd_out(int32_t acc, const int32_t *r, int32_t zp,
                                         int32_t lo, int32_t hi, int32_t full)
{
    if (full) {
        return msf_rqf_apply_dsp8(acc, r[0], r[1], r[2], zp);
    }
    return msf_rqf_apply_dsp(acc, r[0], r[1], r[2], zp, lo, hi);
}

/* dot22 with its word loop unrolled (up to 4 words: the short calls' constant window lengths
 * 8, 16, 32) */
static MSF_ALWAYS_INLINE void dot22u(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                     const int8_t *w1, int32_t L, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t k = 0;
#pragma GCC unroll 4
    for (k = 0; k + 4 <= L; k += 4) {
        uint32_t xa = msf_ld32(x0 + k), xb = msf_ld32(x1 + k);
        uint32_t wa = msf_ld32(w0 + k), wb = msf_ld32(w1 + k);
        int32_t xae = __sxtb16((int32_t)xa), xao = sxtb16_ror8(xa);
        int32_t xbe = __sxtb16((int32_t)xb), xbo = sxtb16_ror8(xb);
        int32_t wae = __sxtb16((int32_t)wa), wao = sxtb16_ror8(wa);
        int32_t wbe = __sxtb16((int32_t)wb), wbo = sxtb16_ror8(wb);
        a00 = __smlad(xae, wae, a00);
        a00 = __smlad(xao, wao, a00);
        a01 = __smlad(xae, wbe, a01);
        a01 = __smlad(xao, wbo, a01);
        a10 = __smlad(xbe, wae, a10);
        a10 = __smlad(xbo, wao, a10);
        a11 = __smlad(xbe, wbe, a11);
        a11 = __smlad(xbo, wbo, a11);
    }
    for (; k < L; k++) {
        int32_t va = x0[k], vb = x1[k];
        a00 += va * w0[k];
        a01 += va * w1[k];
        a10 += vb * w0[k];
        a11 += vb * w1[k];
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* A short column call (a fused block's 1 x 1 column: n <= MSF_COL_RQD_MAX pixels at xstep)
 * of a generated layer with requantisation records and folded biases: channel pairs
 * outermost, two pixels x two channels per dot22 as conv_pair, each output's record and
 * start value read where it is used -- conv_run's per-pair set-up (the acc_init and record
 * branches, the values parked on the stack around the pixel loop) would be paid for a
 * handful of pixels. */
#define MSF_COL_RQD_MAX 32
static MSF_ALWAYS_INLINE void col_rqd(const msf_conv_s8_params *p, int32_t cout,
                                      const int8_t *x, int32_t xstep, int8_t *y,
                                      int32_t ystep, int32_t n, int32_t L, int32_t full,
                                      int32_t unroll)
{
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int8_t *w0 = p->weights;
    const int32_t *bz = p->bias_zp, *r = p->rqd;
    int32_t oc, i;
    for (oc = 0; oc + 2 <= cout; oc += 2) {
        const int8_t *xa = x;
        int8_t *ya = y + oc;
        for (i = 0; i + 2 <= n; i += 2) {
            int32_t acc[4];
            acc[0] = acc[2] = bz[0];
            acc[1] = acc[3] = bz[1];
            if (unroll) {
                dot22u(xa, xa + xstep, w0, w0 + L, L, acc);
            } else {
                dot22(xa, xa + xstep, w0, w0 + L, L, acc);
            }
            ya[0] = (int8_t)rqd_out(acc[0], r, zp, lo, hi, full);
            ya[1] = (int8_t)rqd_out(acc[1], r + 3, zp, lo, hi, full);
            ya[ystep] = (int8_t)rqd_out(acc[2], r, zp, lo, hi, full);
            ya[ystep + 1] = (int8_t)rqd_out(acc[3], r + 3, zp, lo, hi, full);
            xa += 2 * xstep;
            ya += 2 * ystep;
        }
        if (i < n) {
            int32_t acc[2];
            acc[0] = bz[0];
            acc[1] = bz[1];
            dot12(xa, w0, w0 + L, L, acc);
            ya[0] = (int8_t)rqd_out(acc[0], r, zp, lo, hi, full);
            ya[1] = (int8_t)rqd_out(acc[1], r + 3, zp, lo, hi, full);
        }
        w0 += 2 * L;
        bz += 2;
        r += 6;
    }
    if (oc < cout) {
        for (i = 0; i < n; i++) {
            const int32_t a = dot11(x + i * xstep, w0, L, bz[0]);
            y[i * ystep + oc] = (int8_t)rqd_out(a, r, zp, lo, hi, full);
        }
    }
}

/* out of line, at the common narrow widths as constants (the dot loops unrolled): inlined,
 * they would change GCC's register allocation of msf_conv1x1_s8_run's other paths */
static MSF_CONV_NOINLINE void col_rqd_8(const msf_conv_s8_params *p, int32_t cout,
                                        const int8_t *x, int32_t xstep, int8_t *y,
                                        int32_t ystep, int32_t n)
{
    if (p->act_min == -128 && p->act_max == 127) {
        col_rqd(p, cout, x, xstep, y, ystep, n, 8, 1, 1);
    } else {
        col_rqd(p, cout, x, xstep, y, ystep, n, 8, 0, 1);
    }
}
static MSF_CONV_NOINLINE void col_rqd_16(const msf_conv_s8_params *p, int32_t cout,
                                         const int8_t *x, int32_t xstep, int8_t *y,
                                         int32_t ystep, int32_t n)
{
    if (p->act_min == -128 && p->act_max == 127) {
        col_rqd(p, cout, x, xstep, y, ystep, n, 16, 1, 1);
    } else {
        col_rqd(p, cout, x, xstep, y, ystep, n, 16, 0, 1);
    }
}
static MSF_CONV_NOINLINE void col_rqd_32(const msf_conv_s8_params *p, int32_t cout,
                                         const int8_t *x, int32_t xstep, int8_t *y,
                                         int32_t ystep, int32_t n)
{
    if (p->act_min == -128 && p->act_max == 127) {
        col_rqd(p, cout, x, xstep, y, ystep, n, 32, 1, 1);
    } else {
        col_rqd(p, cout, x, xstep, y, ystep, n, 32, 0, 1);
    }
}
static MSF_CONV_NOINLINE void col_rqd_any(const msf_conv_s8_params *p, int32_t cin,
                                          int32_t cout, const int8_t *x, int32_t xstep,
                                          int8_t *y, int32_t ystep, int32_t n)
{
    col_rqd(p, cout, x, xstep, y, ystep, n, cin, 0, 0);
}
#endif

void msf_conv1x1_s8_run(const msf_conv_s8_params *p, int32_t cin, int32_t cout,
                        const int8_t *x, int32_t xstep, int8_t *y, int32_t ystep, int32_t n)
{
#if MSF_USE_DSP && MSF_RQF_DSP
    if (n == 1 && p->rqd && p->bias_zp && (cin & 3) == 0 && cin > 0) {
        px1_rqd(p, cout, x, cin, y);
        return;
    }
    if (n <= MSF_COL_RQD_MAX && p->rqd && p->bias_zp) {
        if (cin == 8) {
            col_rqd_8(p, cout, x, xstep, y, ystep, n);
        } else if (cin == 16) {
            col_rqd_16(p, cout, x, xstep, y, ystep, n);
        } else if (cin == 32) {
            col_rqd_32(p, cout, x, xstep, y, ystep, n);
        } else {
            col_rqd_any(p, cin, cout, x, xstep, y, ystep, n);
        }
        return;
    }
#endif
#if MSF_PX1_QUAD
    /* single pixels: px1_out checks each channel itself (no per-call pass over the channels) */
    const int32_t m = run_mode(p, n == 1 ? 0 : cout);
    if (n == 1) {
        if (m == MSF_RQ_LEAN) {
            conv_px1(p, cout, x, 0, 1, cin, cin, 0, y, MSF_RQ_LEAN);
        } else if (m == MSF_RQ_FIXED) {
            conv_px1(p, cout, x, 0, 1, cin, cin, 0, y, MSF_RQ_FIXED);
        } else {
            conv_px1(p, cout, x, 0, 1, cin, cin, 0, y, MSF_RQ_FLOAT);
        }
        return;
    }
#else
    const int32_t m = run_mode(p, cout);
#endif
    if (m == MSF_RQ_LEAN && cin == 8) {
        /* narrow inputs (the first pointwise layers): the dot loops unrolled at constant
         * lengths, where the per-pixel loop overhead is as large as the multiplies */
        conv_run(p, cout, x, xstep, 0, 1, 8, 8, 0, y, ystep, n, MSF_RQ_LEAN);
    } else if (m == MSF_RQ_LEAN && cin == 16) {
        conv_run(p, cout, x, xstep, 0, 1, 16, 16, 0, y, ystep, n, MSF_RQ_LEAN);
    } else if (m == MSF_RQ_LEAN) {
        conv_run(p, cout, x, xstep, 0, 1, cin, cin, 0, y, ystep, n, MSF_RQ_LEAN);
    } else if (m == MSF_RQ_FIXED) {
        conv_run(p, cout, x, xstep, 0, 1, cin, cin, 0, y, ystep, n, MSF_RQ_FIXED);
#if MSF_RQ_VCVTR
    } else if (cin == 5 || cin == 8 || cin == 11) {
        /* MSF_RQ_FLOAT, narrow inputs (the zoo's first pointwise layers): constant lengths as
         * for MSF_RQ_LEAN above, the lengths with a byte tail included */
        if (cin == 5) {
            conv_run(p, cout, x, xstep, 0, 1, 5, 5, 0, y, ystep, n, MSF_RQ_FLOAT);
        } else if (cin == 8) {
            conv_run(p, cout, x, xstep, 0, 1, 8, 8, 0, y, ystep, n, MSF_RQ_FLOAT);
        } else {
            conv_run(p, cout, x, xstep, 0, 1, 11, 11, 0, y, ystep, n, MSF_RQ_FLOAT);
        }
#endif
    } else {
        conv_run(p, cout, x, xstep, 0, 1, cin, cin, 0, y, ystep, n, MSF_RQ_FLOAT);
    }
}

#if MSF_USE_DSP && MSF_RQF_DSP
/* Unaligned 32-bit store (one STR on the DSP cores, which all have unaligned access). */
typedef uint32_t msf_u32_una_st __attribute__((aligned(1), may_alias));
static MSF_ALWAYS_INLINE void stem_st32(int8_t *p, uint32_t v)
{
    *(msf_u32_una_st *)(void *)p = v;
}

/* The 3 x 3 conv over 3 input channels (the RGB stem: 9-byte window rows, windows not
 * wrapping) of a generated layer with records and folded biases: each pair of pixels'
 * windows copied into 27 contiguous bytes each (a 56-byte stack buffer: three rows of two
 * words and a byte), so that dot22 runs 6 words and 3 tail bytes per pixel pair and channel
 * pair instead of three 9-byte rows (each a 1-byte tail); channel pairs inside, each output's
 * record read where used. */
static MSF_ALWAYS_INLINE void stem_rqd_m(const msf_conv_s8_params *p, int32_t cout,
                                         const int8_t *x, int32_t xstep, int32_t xrow,
                                         int8_t *y, int32_t ystep, int32_t n, int32_t full)
{
    int8_t col[2][28];
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    int32_t i, j, ky, oc;
    for (i = 0; i < n; i += 2) {
        const int32_t np = MSF_MIN(2, n - i);
        const int8_t *w0 = p->weights;
        const int32_t *bz = p->bias_zp, *r = p->rqd;
        int8_t *ya = y + i * ystep;
        for (j = 0; j < np; j++) {
            const int8_t *xp = x + (i + j) * xstep;
            for (ky = 0; ky < 3; ky++) {
                stem_st32(&col[j][9 * ky], msf_ld32(xp + ky * xrow));
                stem_st32(&col[j][9 * ky + 4], msf_ld32(xp + ky * xrow + 4));
                col[j][9 * ky + 8] = xp[ky * xrow + 8];
            }
        }
        for (oc = 0; oc + 2 <= cout; oc += 2) {
            if (np == 2) {
                int32_t acc[4];
                acc[0] = acc[2] = bz[0];
                acc[1] = acc[3] = bz[1];
                dot22(col[0], col[1], w0, w0 + 27, 27, acc);
                ya[oc] = (int8_t)rqd_out(acc[0], r, zp, lo, hi, full);
                ya[oc + 1] = (int8_t)rqd_out(acc[1], r + 3, zp, lo, hi, full);
                ya[ystep + oc] = (int8_t)rqd_out(acc[2], r, zp, lo, hi, full);
                ya[ystep + oc + 1] =
                    (int8_t)rqd_out(acc[3], r + 3, zp, lo, hi, full);
            } else {
                int32_t acc[2];
                acc[0] = bz[0];
                acc[1] = bz[1];
                dot12(col[0], w0, w0 + 27, 27, acc);
                ya[oc] = (int8_t)rqd_out(acc[0], r, zp, lo, hi, full);
                ya[oc + 1] = (int8_t)rqd_out(acc[1], r + 3, zp, lo, hi, full);
            }
            w0 += 54;
            bz += 2;
            r += 6;
        }
        if (oc < cout) {
            for (j = 0; j < np; j++) {
                const int32_t a = dot11(col[j], w0, 27, bz[0]);
                ya[j * ystep + oc] = (int8_t)rqd_out(a, r, zp, lo, hi, full);
            }
        }
    }
}

static MSF_CONV_NOINLINE void stem_rqd(const msf_conv_s8_params *p, int32_t cout,
                                       const int8_t *x, int32_t xstep, int32_t xrow,
                                       int8_t *y, int32_t ystep, int32_t n)
{
    if (p->act_min == -128 && p->act_max == 127) {
        stem_rqd_m(p, cout, x, xstep, xrow, y, ystep, n, 1);
    } else {
        stem_rqd_m(p, cout, x, xstep, xrow, y, ystep, n, 0);
    }
}
#endif

void msf_convk_s8_run(const msf_conv_s8_params *p, int32_t cout, const int8_t *x,
                      int32_t xstep, int32_t xrow, int32_t kh, int32_t L, int32_t la,
                      int32_t xb, int8_t *y, int32_t ystep, int32_t n)
{
    int32_t m;
#if MSF_USE_DSP && MSF_RQF_DSP
    if (kh == 3 && L == 9 && la == 9 && p->rqd && p->bias_zp) {
        stem_rqd(p, cout, x, xstep, xrow, y, ystep, n);
        return;
    }
#endif
    m = run_mode(p, cout);
    if (m == MSF_RQ_LEAN && kh == 3 && L == 9 && la == 9) {
        /* a 3x3 conv over 3 input channels (the RGB stem), windows not wrapping: the window
         * rows' lengths as constants, so that the dot loops unroll */
        conv_run(p, cout, x, xstep, xrow, 3, 9, 9, 0, y, ystep, n, MSF_RQ_LEAN);
    } else if (m == MSF_RQ_LEAN) {
        conv_run(p, cout, x, xstep, xrow, kh, L, la, xb, y, ystep, n, MSF_RQ_LEAN);
    } else if (m == MSF_RQ_FIXED) {
        conv_run(p, cout, x, xstep, xrow, kh, L, la, xb, y, ystep, n, MSF_RQ_FIXED);
    } else {
        conv_run(p, cout, x, xstep, xrow, kh, L, la, xb, y, ystep, n, MSF_RQ_FLOAT);
    }
}
#else
/* MSF_FAST_KERNELS == 0: nothing here (ISO C forbids an empty translation unit) */
typedef int msf_s8_convfast_unused;
#endif /* MSF_FAST_KERNELS */
