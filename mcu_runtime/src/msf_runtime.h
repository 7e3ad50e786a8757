/*
 * msf_runtime.h - portable int8 / float32 CNN kernels and the fused-block executor of msfopt.
 *
 * C99, freestanding: only <stdint.h> and <stddef.h> (not even <string.h>: the bare-metal
 * cross toolchains msfopt installs ship no libc).  No malloc, no VLAs, no recursion,
 * no stdio, no <math.h>.  Compile with -std=c99 (GCC's ISO mode already implies
 * -ffp-contract=off; pass it explicitly anyway): float expressions must NOT be contracted into
 * FMAs, except where this library emulates an FMA on purpose (msf_fmaf, QLinearAdd).
 *
 * ===========================================================================================
 * Layout.  Tensors are H x W x C (NHWC without batch).  Conv / depthwise weights are OHWI
 * (C_out, kh, kw, C_in/groups); dense weights are (C_out, C_in) over the HWC-flattened input.
 * Pads are (top, left, bottom, right).  Activations (none / relu / relu6) are clamp bounds.
 *
 * ===========================================================================================
 * Requantisation, mode MSF_RQ_FLOAT: bit-exact with onnxruntime 1.32 (x86-64, CPU EP).
 * All scales below are float32 values (np.float32); every numpy operation is on np.float32
 * scalars/arrays so that each step rounds to float32, exactly as ORT's C++ does.
 *
 *  conv / dw / dense (QLinearConv, QGemm with alpha = 1):
 *      fmul[c] = (np.float32(x_scale) * np.float32(w_scale[c])) / np.float32(y_scale)
 *      (per-tensor weights: one entry and per_channel = 0).  The kernel does
 *      acc  = int32 sum (x - x_zp) * (w - w_zp) + bias[c]         (exact integer, wraps like ORT)
 *      v    = (float)acc * fmul[c]                                  (float32 multiply)
 *      q    = clamp(round_half_even(v) + y_zp, -128, 127), then clamp(q, act_min, act_max).
 *  QLinearGlobalAveragePool (also used by ORT for a QLinearAveragePool whose kernel covers the
 *  whole input with zero pads -- the C avgpool kernel detects that case itself):
 *      fmul[0] = np.float32(x_scale) / (np.float32(y_scale) * np.float32(H * W))
 *      acc = sum(x) - x_zp * H * W ; q = clamp(rne((float)acc * fmul[0]) + y_zp).
 *  QLinearAveragePool (general windows): no precomputed multiplier; the params carry
 *      in_scale = np.float32(x_scale), out_scale = np.float32(y_scale) and the kernel does
 *      s = 0.f; for ky, for kx (valid taps only, row-major): s += in_scale * (float)(x - x_zp)
 *      s = s / (float)count     (count = kh*kw if count_include_pad else #valid taps)
 *      q = clamp(rne(s / out_scale + (float)y_zp), -128, 127).
 *  DequantizeLinear -> AveragePool -> QuantizeLinear (ONNX spec path, pool mode
 *  MSF_RQ_FLOAT_QDQ): the same float32 average s, then QuantizeLinear's rounding
 *      q = clamp(rne(s / out_scale) + y_zp, -128, 127)   (no whole-input fallback).
 *  QLinearAdd (ORT's AVX2 kernel, uses FMAs; this library emulates them exactly in software
 *  unless MSF_HW_FMA is defined, see msf_fmaf):
 *      mul1 = np.float32(a_scale) / np.float32(c_scale)
 *      mul2 = np.float32(b_scale) / np.float32(c_scale)
 *      fbias = np.float32(c_zp) - fmaf(mul1, np.float32(a_zp), mul2 * np.float32(b_zp))
 *              (fmaf = single-rounding fused multiply-add; msfopt.mcu_runtime.requant.fma_f32
 *               implements it exactly in Python, msf_add_s8_float_params() in C)
 *      v = fmaf((float)a, mul1, fmaf((float)b, mul2, fbias)) ; q = sat8(rne(v))
 *      (|v| >= 2^31 or NaN gives -128, like cvtps2dq + packs).
 *  int8 MaxPool: max over valid taps (padding never wins), no requantisation.
 *  ReLU / ReLU6 in the int8 domain (ORT: Clip on the int8 tensor): act_min / act_max are the
 *  IR layer's own ints (msfopt.ir.Layer.act_min/act_max), computed once at import the way the
 *  source framework does; the kernels only clamp.  Shape of the clamp:
 *      relu : act_min = max(-128, y_zp),                  act_max = 127
 *      relu6: act_min = max(-128, y_zp), act_max = min(127, y_zp + round(6 / y_scale)), where
 *             ONNX rounds 6.0f / y_scale half to even (QuantizeLinear) and TFLM half away
 *             from zero (CalculateActivationRangeQuantized): they differ at .5 ties
 *      none : act_min = -128, act_max = 127.
 *
 * Requantisation, mode MSF_RQ_FIXED: TFLite Micro reference kernels (integer only).
 *      QuantizeMultiplier(m) (double m):  q, shift = math.frexp(m);
 *          q_fixed = round_half_away_from_zero(q * 2**31); if q_fixed == 2**31: q_fixed //= 2; shift += 1
 *          if shift < -31: shift, q_fixed = 0, 0            (msfopt.mcu_runtime.requant.quantize_multiplier)
 *      conv / dw / dense: qmul[c], qshift[c] = QuantizeMultiplier(float64(x_scale) * float64(w_scale[c])
 *                                                                  / float64(y_scale))
 *          out = clamp(MultiplyByQuantizedMultiplier(acc, qmul[c], qshift[c]) + y_zp, act)
 *          MultiplyByQuantizedMultiplier = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
 *              x << max(shift, 0), qmul), max(-shift, 0))   (gemmlowp double rounding, TFLM default)
 *      add: left_shift = 20; twice = 2 * float64(max(s1, s2));
 *          (in1_mul, in1_shift) = QuantizeMultiplier(float64(s1) / twice)
 *          (in2_mul, in2_shift) = QuantizeMultiplier(float64(s2) / twice)
 *          (out_mul, out_shift) = QuantizeMultiplier(twice / (2**20 * float64(s_out)))
 *      gap (TFLM MEAN over H, W): qmul[0], qshift[0] = QuantizeMultiplier(float64(x_scale) / float64(y_scale))
 *          acc = sum(x - x_zp); acc = MBQM(acc); acc = round_half_away(acc / (H*W)); + y_zp; clamp
 *          (the older TFLM reference_integer_ops::Mean).
 *      gap, rq.mode MSF_RQ_MEAN (TFLite MEAN over H, W as TFLM runs it today, with or without
 *          keep_dims: reference_ops::QuantizedMeanOrSum): m, e = QuantizeMultiplier(float64(x_scale)
 *          / float64(y_scale)); s = min(floor(log2(N)), 32, 31 + e) with N = H*W;
 *          qmul[0] = (m << s) // N (int64, truncating), qshift[0] = e - s;
 *          out = clamp(MBQM(sum(x) - x_zp * N, qmul[0], qshift[0]) + y_zp, -128, 127)
 *          (msfopt.mcu_runtime.requant.mean_fixed_multiplier).
 *      TFLM AVERAGE_POOL_2D over the whole input is emitted as an avgpool (below), not a gap.
 *      avgpool: TFLM reference (input and output quantisation must be identical): integer sum of
 *          the raw values over the counted taps (padding taps count as x_zp when
 *          count_include_pad), round-half-away-from-zero division by the count, clamp.
 *      maxpool: as in FLOAT mode.
 *      softmax (TFLM reference_ops::Softmax, int8 -> int8, output scale 1/256, zero point -128;
 *          msf_softmax_s8, run on the model output by the generated code when the TFLite model
 *          ends in SOFTMAX): PreprocessSoftmaxScaling with 5 integer bits:
 *          (input_multiplier, input_left_shift) = QuantizeMultiplier(min(float64(beta) *
 *              float64(x_scale) * 2**26, 2**31 - 1.0));
 *          diff_min = -floor(31 * 2**26 / 2**input_left_shift)   (CalculateInputRadius)
 *          then gemmlowp fixed point exactly as TFLM: per row, d = x - max(row); for d >= diff_min,
 *          e = exp_on_negative_values(Q5.26 SRDHM(d << input_left_shift, input_multiplier));
 *          sum = sum of RoundingDivideByPOT(e, 12) (Q12.19); recip, nbits = GetReciprocal(sum, 12);
 *          out = clamp(RoundingDivideByPOT(SRDHM(recip, e), nbits + 23) - 128, -128, 127);
 *          d < diff_min gives -128.  msfopt.mcu_runtime.requant.softmax_params (the parameters),
 *          tests/kernel_refs.py softmax_s8_ref (a Python transcription, for the tests).
 *
 * ===========================================================================================
 * MAC instrumentation: compile with -DMSF_COUNT_MACS; every kernel call adds
 *     (#output elements it computed) * (nominal MACs per output element)
 * to a global counter, with the nominal MACs of msfopt.ir.Layer.macs_per_output():
 * conv kh*kw*C_in/groups, dw/maxpool/avgpool kh*kw (padding taps included), gap H*W,
 * dense H*W*C_in, add 0.
 */
#ifndef MSF_RUNTIME_H
#define MSF_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSF_RUNTIME_VERSION 1

/* Build configuration: generated models ship an msf_config.h that sets MSF_MAX_BLOCK_LAYERS to
 * their longest fused block, so the executor's stack use fits the plan. */
#include "msf_config.h"

/* Element types the build's model uses (generated models' msf_config.h sets them; a runtime
 * built on its own has both): the executor references only these types' kernels. */
#ifndef MSF_HAS_S8
#define MSF_HAS_S8 1
#endif
#ifndef MSF_HAS_F32
#define MSF_HAS_F32 1
#endif
#if !MSF_HAS_S8 && !MSF_HAS_F32
#error "msf_config.h: MSF_HAS_S8 and MSF_HAS_F32 are both 0"
#endif

/* Longest fused block the executor accepts.  The executor keeps up to 4 * (MSF_MAX_BLOCK_LAYERS
 * + 1) int32 on the stack (about 1 KiB at 64) plus two msf_view locals. */
#ifndef MSF_MAX_BLOCK_LAYERS
#define MSF_MAX_BLOCK_LAYERS 64
#endif

/* ---------------------------------------------------------------------------------------- */
/* Memory views                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* A window on a logical H x W x C tensor.  Element (y, x, c) lives at
 *     ((y - y0) * xcap + (x % xcap)) * C + c
 * A full tensor is y0 = 0, xcap = W; a ring buffer of k columns over rows [lo, hi) is
 * y0 = lo, xcap = k.  Reads outside [0,H) x [0,W) are padding and never touch memory.
 * cap is the number of elements the buffer holds from data on: a build with -DMSF_CHECK_BOUNDS
 * checks every element access against it (and against [y0, H) x [0, W)); other builds ignore
 * it. */
typedef struct {
    void *data;      /* int8_t * or float * */
    int32_t H, W, C; /* full logical tensor extent */
    int32_t y0;      /* first tensor row held in data */
    int32_t xcap;    /* number of columns held; column x lives at slot (x % xcap) */
    int32_t cap;     /* elements held from data on (checked with MSF_CHECK_BOUNDS) */
} msf_view;

/* Bounds checking (-DMSF_CHECK_BOUNDS, used by the test builds): every view access, every
 * full-tensor kernel call and every copy of the executor is checked against the capacity of its
 * buffer.  A failed check calls the hook installed with msf_set_bounds_hook() (the host test
 * driver prints the message and exits with a non-zero status) or, without a hook, traps
 * (__builtin_trap).  If the hook returns, the access is redirected to the buffer's first
 * element (never outside the buffer) and msf_bounds_failures() counts it.  Without
 * MSF_CHECK_BOUNDS these functions exist but nothing calls the hook. */
typedef void (*msf_bounds_hook_fn)(const char *what);
void msf_set_bounds_hook(msf_bounds_hook_fn hook);
uint32_t msf_bounds_failures(void);
void msf_bounds_fail(const char *what);

/* ---------------------------------------------------------------------------------------- */
/* Parameters                                                                                */
/* ---------------------------------------------------------------------------------------- */

enum { MSF_RQ_FLOAT = 0, MSF_RQ_FIXED = 1 };
/* msf_gap_s8_params.rq.mode only: TFLM's MEAN with 1/N folded into the multiplier */
enum { MSF_RQ_MEAN = 2 };
/* msf_pool_s8_params.mode only: avgpool of a QDQ island, ONNX QuantizeLinear rounding */
enum { MSF_RQ_FLOAT_QDQ = 3 };
/* msf_add_s8_params.mode only: QLinearAdd of two same-shaped maps whose first input A (ORT's
 * operand order) is in2 (the skip tensor, src2).  mul1 / mul2 belong to in1 / in2, fbias is
 * computed in ORT's (A, B) order, and v = fmaf((float)b, mul2, fmaf((float)a, mul1, fbias))
 * (ORT's kernel on (A, B) = (in2, in1)). */
enum { MSF_RQ_FLOAT_REV = 4 };

typedef struct {
    int32_t mode;          /* MSF_RQ_FLOAT or MSF_RQ_FIXED */
    int32_t per_channel;   /* 1: one entry per output channel; 0: entry 0 for every channel */
    const float *fmul;     /* MSF_RQ_FLOAT multipliers (see top of file) */
    const int32_t *qmul;   /* MSF_RQ_FIXED multipliers (Q31) */
    const int32_t *qshift; /* MSF_RQ_FIXED shifts (TFLite convention: > 0 is a left shift) */
} msf_requant;

/* Sliding-window geometry.  MUST be the first member of every window-op params struct: the
 * executor reads it through a (const msf_window *) cast of the params pointer. */
typedef struct {
    int32_t kh, kw;
    int32_t sh, sw;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t dil_h, dil_w;  /* conv / depthwise dilation: tap (ky, kx) reads input row
                              oy * sh - pad_top + ky * dil_h (0 is read as 1); the window spans
                              (kh - 1) * dil_h + 1 rows.  Pools: 1 */
} msf_window;

/* conv2d (any groups) and depthwise (groups == C, multiplier 1), int8 */
typedef struct {
    msf_window win;
    int32_t groups;           /* conv2d: C_in and C_out divisible by it; ignored by depthwise */
    int32_t in_zp, w_zp, out_zp;
    int32_t act_min, act_max; /* int8 clamp applied after requantisation */
    const int8_t *weights;    /* OHWI: (C_out, kh, kw, C_in/groups); depthwise (C, kh, kw, 1) */
    const int32_t *bias;      /* C_out entries or NULL */
    msf_requant rq;
    /* Optional (NULL: the kernels derive it at run time): C_out entries
     * bias_zp[c] = bias[c] - in_zp * (sum of output channel c's weights over all taps), in
     * wrapping int32 arithmetic, precomputed by the code generator when w_zp == 0.  The fast
     * kernels start full-window accumulators there and multiply raw int8 values; it never
     * changes a result (sum (x - zp) w == sum x w - zp sum w modulo 2^32). */
    const int32_t *bias_zp;
    /* Optional (NULL: the kernels derive it per call), read only on cores with the DSP
     * extension (MSF_RQD_ON): 3 C_out entries, output channel c's lean fixed-point
     * requantisation (msf_s8_requant.h's msf_rqf: Q31 multiplier, right shift e = -shift,
     * 2^(e-1)), set by the code generator only when every channel and the clamp are inside
     * that form's range (MSF_RQ_FIXED, 2^30 <= multiplier, 1 <= e <= MSF_RQF_MAX_E,
     * -128 <= act_min <= act_max <= 127).  It never changes a result. */
    const int32_t *rqd;
} msf_conv_s8_params;

/* MSF_RQD_ON: the generated model carries msf_conv_s8_params.rqd (the DSP cores' lean
 * requantisation records; MSF_RQD(array) is the field's value, 0 where they are off) */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MSF_FORCE_RQF_PORTABLE)
#define MSF_RQD_ON 1
#define MSF_RQD(a) (a)
#else
#define MSF_RQD_ON 0
#define MSF_RQD(a) 0
#endif

typedef struct {
    msf_window win;
    int32_t groups;
    float act_min, act_max;   /* none: -/+3.4028234663852886e38f (FLT_MAX); relu: 0, FLT_MAX; relu6: 0, 6 */
    const float *weights;
    const float *bias;        /* or NULL */
} msf_conv_f32_params;

/* maxpool / avgpool, int8 */
typedef struct {
    msf_window win;
    int32_t count_include_pad; /* avgpool: divide by kh*kw (1) or by the valid taps (0) */
    int32_t mode;              /* avgpool: MSF_RQ_FLOAT (ORT) or MSF_RQ_FIXED (TFLM); maxpool ignores */
    float in_scale, out_scale; /* avgpool MSF_RQ_FLOAT: np.float32(x_scale), np.float32(y_scale) */
    int32_t in_zp, out_zp;     /* avgpool; maxpool ignores them (output quant == input quant) */
    int32_t act_min, act_max;
} msf_pool_s8_params;

typedef struct {
    msf_window win;
    int32_t count_include_pad;
    float act_min, act_max;
} msf_pool_f32_params;

/* global average pool, int8: full input tensor -> 1 x 1 x C */
typedef struct {
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;
    msf_requant rq;            /* one entry (per_channel = 0), see top of file */
} msf_gap_s8_params;

/* dense over the HWC-flattened full input -> 1 x 1 x C_out, int8 */
typedef struct {
    int32_t in_zp, w_zp, out_zp;
    int32_t act_min, act_max;
    const int8_t *weights;     /* (C_out, H*W*C_in) */
    const int32_t *bias;       /* C_out or NULL */
    msf_requant rq;
} msf_dense_s8_params;

typedef struct {
    float act_min, act_max;
    const float *weights;
    const float *bias;
} msf_dense_f32_params;

/* residual add, int8: out = in1 + in2 (each with its own quantisation); sub != 0: out = in1 -
 * in2 (MSF_RQ_FIXED: TFLite's SUB, the scaled second input subtracted; MSF_RQ_FLOAT: mul2
 * negated) */
typedef struct {
    int32_t mode;              /* MSF_RQ_FLOAT or MSF_RQ_FIXED */
    int32_t in1_zp, in2_zp, out_zp;
    int32_t act_min, act_max;
    float mul1, mul2, fbias;   /* MSF_RQ_FLOAT, see top of file */
    int32_t left_shift;        /* MSF_RQ_FIXED (20 for int8) */
    int32_t in1_mul, in1_shift, in2_mul, in2_shift, out_mul, out_shift;
    int32_t sub;               /* 0: in1 + in2, 1: in1 - in2 */
} msf_add_s8_params;

/* float gap / add only clamp */
typedef struct {
    float act_min, act_max;
} msf_act_f32_params;

/* ---------------------------------------------------------------------------------------- */
/* Kernels.  Window kernels compute the output region [oy0, oy1) x [ox0, ox1), all channels. */
/* ---------------------------------------------------------------------------------------- */

void msf_conv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                   int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_conv2d_f32(const msf_conv_f32_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_dwconv2d_s8(const msf_conv_s8_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_dwconv2d_f32(const msf_conv_f32_params *p, const msf_view *in, msf_view *out,
                      int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_maxpool_s8(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_maxpool_f32(const msf_pool_f32_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_avgpool_s8(const msf_pool_s8_params *p, const msf_view *in, msf_view *out,
                    int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_avgpool_f32(const msf_pool_f32_params *p, const msf_view *in, msf_view *out,
                     int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
/* Elementwise; out may alias in1 or in2 (same geometry). */
void msf_add_s8(const msf_add_s8_params *p, const msf_view *in1, const msf_view *in2,
                msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
void msf_add_f32(const msf_act_f32_params *p, const msf_view *in1, const msf_view *in2,
                 msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);
/* Full-tensor kernels: in must be a full view (y0 = 0, xcap = W); out is 1 x 1 x C. */
void msf_gap_s8(const msf_gap_s8_params *p, const msf_view *in, msf_view *out);
void msf_gap_f32(const msf_act_f32_params *p, const msf_view *in, msf_view *out);
void msf_dense_s8(const msf_dense_s8_params *p, const msf_view *in, msf_view *out);
/* Streaming global average pool (the fused "tail"): add a region of the input to per-channel
 * sums (int32 raw values / float), then produce the 1 x 1 x C output exactly as msf_gap_*
 * would from the same sums. */
void msf_gap_s8_accumulate(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                           int32_t ox1, int32_t *sums);
void msf_gap_s8_finish(const msf_gap_s8_params *p, const int32_t *sums, int32_t hw,
                       msf_view *out);
void msf_gap_f32_accumulate(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                            int32_t ox1, float *sums);
void msf_gap_f32_finish(const msf_act_f32_params *p, const float *sums, int32_t hw,
                        msf_view *out);
void msf_dense_f32(const msf_dense_f32_params *p, const msf_view *in, msf_view *out);

/* ---------------------------------------------------------------------------------------- */
/* int8 softmax over the last axis (TFLite Micro reference arithmetic, integer only)          */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    int32_t input_multiplier;  /* see top of file (PreprocessSoftmaxScaling) */
    int32_t input_left_shift;
    int32_t diff_min;          /* -CalculateInputRadius(5, input_left_shift) */
} msf_softmax_s8_params;

/* rows x depth int8 values, softmax along depth; out may equal in (in-place). */
void msf_softmax_s8(const msf_softmax_s8_params *p, const int8_t *in, int8_t *out, int32_t rows,
                    int32_t depth);

/* ---------------------------------------------------------------------------------------- */
/* Quantisation helpers (also exported for tests and for code that wants them at run time)  */
/* ---------------------------------------------------------------------------------------- */

int32_t msf_round_half_even(float v);               /* |v| < 2^31 */
float msf_fmaf(float a, float b, float c);           /* single-rounding a*b+c (software) */
int32_t msf_srdhm(int32_t a, int32_t b);             /* SaturatingRoundingDoublingHighMul */
int32_t msf_rdbpot(int32_t x, int32_t exponent);     /* RoundingDivideByPOT, 0 <= exponent <= 31 */
int32_t msf_mbqm(int32_t x, int32_t qmul, int32_t shift); /* MultiplyByQuantizedMultiplier */
/* int8 requantisation of one accumulator for output channel ch (without the activation clamp) */
int32_t msf_requant_s8(const msf_requant *rq, int32_t acc, int32_t ch, int32_t out_zp);
/* MSF_RQ_FLOAT parameters of the add, computed exactly like ORT (see top of file). */
void msf_add_s8_float_params(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                             float c_scale, int32_t c_zp, float *mul1, float *mul2,
                             float *fbias);

/* Graph ops (one header per kernel family, each a section of this API) */
#include "msf_s8_eltwise.h"
#include "msf_f32_eltwise.h"
#include "msf_move.h"
#include "msf_resize.h"
#include "msf_convt.h"

/* ---------------------------------------------------------------------------------------- */
/* Fused-block executor                                                                      */
/* ---------------------------------------------------------------------------------------- */

enum {
    MSF_OP_CONV = 0,
    MSF_OP_DW = 1,
    MSF_OP_MAXPOOL = 2,
    MSF_OP_AVGPOOL = 3,
    MSF_OP_GAP = 4,
    MSF_OP_DENSE = 5,
    MSF_OP_ADD = 6,
    /* graph ops: unfused blocks whose inputs are msf_block.operands */
    MSF_OP_CONCAT = 7,  /* params msf_move_params (esize); operand k goes to the channels after
                           operands 0..k-1 */
    MSF_OP_SLICE = 8,   /* msf_move_params (esize, c_off): channels [c_off, c_off + out_c) */
    MSF_OP_SHUFFLE = 9, /* msf_move_params (esize, groups) */
    MSF_OP_ACT = 10,    /* int8 msf_lut_s8_params, float32 msf_unary_f32_params */
    MSF_OP_PRELU = 11,  /* int8 msf_prelu_s8_params, float32 msf_unary_f32_params (MSF_FN_PRELU) */
    MSF_OP_MUL = 12,    /* int8 msf_mul_s8_params, float32 msf_binary_f32_params; operand 1 is
                           the factor (same shape, 1 x 1 x C or 1 x 1 x 1, or a constant) */
    MSF_OP_RESIZE = 13, /* msf_resize_params (msf_resize_s8 / msf_resize_f32) */
    MSF_OP_CONVT = 14,  /* msf_convt_s8_params / msf_convt_f32_params */
    MSF_OP_CONCAT_W = 15, /* msf_move_params (esize): operand k goes to the columns after
                             operands 0..k-1 (same rows and channels) */
    MSF_OP_RESHAPE = 16 /* msf_move_params (esize): the same bytes under another shape (a copy,
                           nothing when the output overwrites the input) */
};
#define MSF_OP_LAST MSF_OP_RESHAPE
enum { MSF_DT_S8 = 0, MSF_DT_F32 = 1 };

/* Rows (or columns) [lo, hi) of one tensor of a fused block for tile index t, as the block
 * schedule computed them (msfopt.geometry.block_geometry; the code generator emits them):
 *     lo(t) = max(0, t * step - lo_sub),    hi(t) = min(hi_max, t * step + hi_add)
 * (evaluated in int32; int16 fields keep the constant descriptors small in flash). */
typedef struct {
    int16_t step, lo_sub, hi_add, hi_max;
} msf_range;

typedef struct {
    int32_t op;            /* MSF_OP_* */
    const void *params;    /* msf_conv_{s8,f32}_params (CONV, DW), msf_pool_{s8,f32}_params
                              (MAXPOOL, AVGPOOL), msf_gap_s8_params / msf_act_f32_params (GAP),
                              msf_dense_{s8,f32}_params (DENSE), msf_add_s8_params /
                              msf_act_f32_params (ADD), chosen by the block's dtype */
    int32_t in_h, in_w, in_c;    /* input tensor T_l */
    int32_t out_h, out_w, out_c; /* output tensor T_{l+1} */
    /* The layer's buffer, as the block schedule sized it (0 when it has none):
     *  MSF_MODE_COLUMNS, layers 1..: the ring of this layer's INPUT, buf_rows rows x buf_cols
     *      columns (slot x % buf_cols) x in_c;
     *  MSF_MODE_COLUMNS, layer 0 of an in-place block (tile_w = D > 0): the ring of D output
     *      tile rows of the LAST layer (buf_rows rows x buf_cols = last out_w columns);
     *  MSF_MODE_COLUMNS, streaming GAP tail (last layer): in_c int32 / float sums, then a
     *      staging column of buf_rows rows x 1 column x in_c;
     *  MSF_MODE_PATCHES, layers 1..: the patch buffer of this layer's input patch;
     *  MSF_MODE_INPLACE: the ring of buf_rows output rows x buf_cols (= out_w) columns. */
    uint32_t buf_off;      /* arena byte offset */
    uint32_t buf_bytes;    /* capacity in bytes */
    int32_t buf_rows, buf_cols;
    /* Fused blocks: rows of this layer's OUTPUT tensor computed in tile row t (out_rows) and
     * columns computed in patch column t (out_cols, MSF_MODE_PATCHES); MSF_MODE_COLUMNS,
     * layers 1..: need_cols.hi(c) = number of input columns (a prefix) needed to produce
     * output column c (lo unused). */
    msf_range out_rows, out_cols, need_cols;
} msf_layer;

/* One input of a graph op: a full tensor in the arena (or the caller's input buffer), or a
 * constant in flash (data != NULL, e.g. a multiply's constant factor). */
typedef struct {
    uint32_t off;          /* arena byte offset, or MSF_OFF_EXT_IN; ignored when data != NULL */
    const void *data;      /* constant operand, or NULL */
    int32_t h, w, c;       /* its extent */
} msf_operand;

/* Concat slices (msfopt.schedule.concat_slices): a block whose output T_{j+1} (out_c channels)
 * is channels [w, w + out_c) of a wider concat output (-h channels, at the block's out_off)
 * ends its operand table (a graph op: after its inputs; any other block: the only row) with a
 * slice row, h = -(the concat output's channels) < 0, w = the first channel, off = the arena
 * offset of the block's staging buffer, c = its capacity in elements.  Every output region
 * (an unfused block's output row, a column of a fused tile row, a patch) is computed into the
 * staging buffer, then copied into the slice (msf_copy_to_channels).  A concat operand with
 * h == MSF_OPERAND_IN_SLICE is an input its producer already wrote into its slice: only its
 * channel count c is read, nothing is copied. */
enum { MSF_OPERAND_IN_SLICE = 0 };

typedef struct {
    int32_t dtype;         /* MSF_DT_S8 / MSF_DT_F32 (element size 1 / 4) */
    int32_t tile_h;        /* fused blocks: tile height p >= 1 (output rows of the last layer
                              per tile row); MSF_MODE_INPLACE: D, the rows of the output ring;
                              ignored by unfused blocks */
    int32_t n_layers;      /* 1 = unfused (any op), >= 2 = fused chain of window ops (a
                              streaming GAP may end a MSF_MODE_COLUMNS chain) */
    const msf_layer *layers;
    uint32_t in_off;       /* arena byte offset of the full input tensor T_i */
    uint32_t in2_off;      /* ADD only: arena byte offset of the second input (skip tensor) */
    uint32_t out_off;      /* arena byte offset of the full output tensor T_{j+1} */
    int32_t mode;          /* fused blocks: MSF_MODE_COLUMNS (H-cache / line buffer: column rings)
                              or MSF_MODE_PATCHES (recompute: tile_h x tile_w output patches,
                              each through all layers from its receptive field, no cache) */
    int32_t tile_w;        /* MSF_MODE_PATCHES: output patch width.  MSF_MODE_COLUMNS: 0, or
                              D > 0 for an in-place block (out_off == in_off): finished output
                              tile rows wait in a ring of D tile rows (layers[0]'s buffer) and
                              are copied over the dying input D - 1 tile rows late */
    int32_t n_tiles;       /* fused / in-place blocks: number of tile rows (output rows for
                              MSF_MODE_INPLACE) */
    int32_t n_tile_cols;   /* MSF_MODE_PATCHES: number of patch columns, else 1 */
    /* graph ops (layers[0].op >= MSF_OP_CONCAT, n_layers == 1): every input in operand order
     * (in_off / in2_off unused); NULL / 0 for the other blocks */
    const msf_operand *operands;
    int32_t n_operands;
} msf_block;

/* Fused-block execution modes (msf_block.mode).  MSF_MODE_PATCHES uses each layer k >= 1's
 * buffer as a patch buffer holding its input patch: rows [ylo, yhi) x columns [xlo, xhi) x in_c
 * (the previous layer's out_rows / out_cols), addressed as a view with y0 = ylo and
 * xcap = xhi - xlo. */
enum { MSF_MODE_COLUMNS = 0, MSF_MODE_PATCHES = 1, MSF_MODE_INPLACE = 2 };
/* MSF_MODE_INPLACE (n_layers == 1, depthwise / max / average pool, out_off == in_off): output rows
 * are computed one by one into a ring of tile_h rows (layers[0]'s buffer); right after row y
 * is computed, row y - tile_h + 1 is copied over the input (rows packed out_w x out_c from the
 * tensor's start).  The block schedule picks tile_h so that no input row a later output row
 * reads is overwritten. */

/* Runs one block.  Unfused: one kernel call over the whole output.  Fused: tile rows of
 * tile_h output rows; per tile row, columns flow demand-driven through per-layer rings. */
void msf_run_block(const msf_block *b, uint8_t *arena);

/* Tensors that live outside the arena (io = external): a block offset equal to MSF_OFF_EXT_IN
 * reads the caller's input buffer, MSF_OFF_EXT_OUT writes the caller's output buffer. */
#define MSF_OFF_EXT_IN 0xFFFFFFFFu
#define MSF_OFF_EXT_OUT 0xFFFFFFFEu
/* A network with several outputs (io = external): output k lives at MSF_OFF_EXT_OUT_K(k), the
 * caller's buffer ext_outs[k] (ext_out is output 0 when ext_outs[0] is NULL). */
#define MSF_MAX_OUTPUTS 8
#define MSF_OFF_EXT_OUT_K(k) (MSF_OFF_EXT_OUT - (uint32_t)(k))
typedef struct {
    uint8_t *arena;
    const uint8_t *ext_in;
    uint8_t *ext_out;
    uint8_t *ext_outs[MSF_MAX_OUTPUTS];
} msf_mem;
void msf_run_block_mem(const msf_block *b, const msf_mem *m);
void msf_model_run_blocks(const msf_block *blocks, int n, uint8_t *arena);
/* called before block k and (k = n) after the last: the mark of per-block instruction counts */
void msf_block_boundary(int32_t k);

/* 0 if the descriptor is well formed, else a negative code (debug/test aid, never called by
 * msf_run_block): shapes chain, windows are consistent, and every tile row's row / column
 * ranges lie inside their tensors and fit the buffers that hold them. */
int32_t msf_block_validate(const msf_block *b);

/* MAC counter (counts only when the library is compiled with -DMSF_COUNT_MACS). */
void msf_macs_reset(void);
uint64_t msf_macs_get(void);

/* Canary helpers for tests: fill n bytes with a seed-derived pattern / return the index of the
 * first byte that differs from it, or -1 if intact. */
void msf_canary_fill(uint8_t *p, size_t n, uint32_t seed);
long msf_canary_check(const uint8_t *p, size_t n, uint32_t seed);

#ifdef __cplusplus
}
#endif

#endif /* MSF_RUNTIME_H */
