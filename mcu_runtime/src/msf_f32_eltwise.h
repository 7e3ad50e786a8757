/* msf_f32_eltwise.h - see the section comment below (included by msf_runtime.h). */
#ifndef MSF_F32_ELTWISE_H
#define MSF_F32_ELTWISE_H

#include "msf_runtime.h"    /* msf_view (no-op when included from msf_runtime.h itself) */
#include "msf_s8_eltwise.h" /* MSF_BCAST_* */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* float32 elementwise ops (msf_f32_eltwise.c)                                               */
/* ---------------------------------------------------------------------------------------- */
/*
 * All of them compute the output region [oy0, oy1) x [ox0, ox1), all channels, reading the
 * input(s) at the same (y, x) through their views (full tensors or ring buffers alike).  The
 * output may alias the first input when both views have the same geometry (every element is
 * read before the element at the same place is written).  They count no MACs (0 per output,
 * like msf_add_*).  Every float operation below is one IEEE single-precision operation
 * rounded to nearest-even, in the order written (no FMA contraction: -ffp-contract=off).
 * NaN inputs give NaN outputs (the final clamp compares with < and > and lets NaN through).
 *
 * float msf_expf(float x): e^x with no libm.  Error <= 0.90 ulp for normal results (max 0.8903
 * at x = 4.5063262f) and <= 0.75 of the subnormal spacing 2^-149 for subnormal ones: an
 * exhaustive check of all 2^32 inputs against glibc's double exp, done offline;
 * tests/test_f32_eltwise.py checks these bounds on ~7.8 million inputs against numpy's float64
 * exp.  Arithmetic:
 *     x is NaN -> x;   x > 89 (incl. +inf) -> +inf;   x < -104 (incl. -inf) -> +0;
 *     otherwise k = (int)(x * log2(e) + copysign(0.5, x))  (nearest integer, |k| <= 151),
 *     rh = x - k * LN2_HI, rl = -(k * LN2_LO)   (Cody-Waite: LN2_HI = 0x3f317200 has 15
 *                                            significant bits, so k * LN2_HI and rh are exact),
 *     r = rh + rl, rc = rl - (r - rh)       (Fast2Sum: rc is r's rounding error),
 *     e^r = 1 + (r + (rc + r*r * P(r)))     (P: degree-4 minimax polynomial of
 *                                            (e^r - 1 - r) / r^2 on |r| <= 0.354, fitted for
 *                                            this library, Horner's scheme),
 *     result = e^r * 2^k, applied as one or two exact power-of-two multiplies so that only
 *     the last one rounds (gradual underflow to subnormals, overflow to +inf for x > ln(FLT_MAX)).
 * Sigmoid / tanh are built on it so that no intermediate overflows for any |x|:
 *     sigmoid(x) = 1 / (1 + msf_expf(-x))            for x >= 0,
 *                = e / (1 + e), e = msf_expf(x)      for x < 0
 *                (<= 2.41 ulp over all inputs, subnormal results included);
 *     tanh(x)    = x + (x * x^2) * Q(x^2)            for |x| < 0.8 (Q: degree-5 minimax
 *                                                     polynomial of (tanh(x) - x) / x^3, Horner),
 *                = sign(x) * (1 - 2 / (msf_expf(2 * min(|x|, 20)) + 1))   otherwise
 *                (<= 1.05 ulp over all inputs, down to subnormal x where tanh(x) = x);
 * onnxruntime 1.32 evaluates Sigmoid / Tanh with MLAS approximations of its own (measured against
 * float64: Sigmoid <= 1.7e-7 absolute error, but up to 10% relative for outputs near 1e-6 and
 * worse below; Tanh <= 2.7e-7 relative), so the two agree to ~3e-7 absolute, not bit for bit.
 */

/* unary op: out = clamp(f(in), lo, hi) elementwise */
enum {
    MSF_FN_RELU = 0,        /* f(x) = x < 0 ? 0 : x                        (ONNX Relu)          */
    MSF_FN_CLIP = 1,        /* f(x) = x; only the clamp [lo, hi]          (ONNX Clip, Relu6)    */
    MSF_FN_LEAKY = 2,       /* f(x) = x < 0 ? alpha * x : x               (ONNX LeakyRelu; ORT's
                                                                            default alpha 0.01f) */
    MSF_FN_PRELU = 3,       /* f(x) = x < 0 ? slope[c] * x : x            (ONNX PRelu, slope of
                               shape [C, 1, 1]; a scalar slope is expanded to C entries)        */
    MSF_FN_HARDSIGMOID = 4, /* f(x) = max(0, min(1, alpha * x + beta))    (ONNX HardSigmoid:
                               defaults alpha 0.2f, beta 0.5f; torch.nn.Hardsigmoid exports
                               alpha (float)(1/6), beta 0.5f)                                   */
    MSF_FN_HARDSWISH = 5,   /* f(x) = x * max(0, min(1, x * (float)(1/6) + 0.5f))   (ONNX
                               HardSwish = its function body HardSigmoid(alpha 1/6, beta 0.5)
                               then Mul, as onnxruntime runs it; alpha / beta are ignored)     */
    MSF_FN_SIGMOID = 6,     /* f(x) = 1 / (1 + e^-x)                      (ONNX Sigmoid)        */
    MSF_FN_TANH = 7,        /* f(x) = tanh(x)                             (ONNX Tanh)           */
    MSF_FN_SWISH = 8,       /* f(x) = x * sigmoid(x)                      (Mul(x, Sigmoid(x)),
                               torch SiLU)                                                      */
    MSF_FN_AFFINE = 9       /* f(x) = slope[c] * x + bias[c]  (the multiply rounds, then the add;
                               BatchNormalization not folded into a conv: slope = scale /
                               sqrt(var + eps), bias = B - mean * slope, computed by the caller) */
};

typedef struct {
    int32_t fn;          /* MSF_FN_* */
    float alpha, beta;   /* LEAKY: alpha; HARDSIGMOID: alpha, beta; other fns ignore them */
    float lo, hi;        /* final clamp of every fn; none: lo = -FLT_MAX, hi = FLT_MAX
                            (-/+3.4028234663852886e38f); CLIP: the Clip bounds (min, max);
                            a fused Relu / Relu6 after the op: 0 / 0, 6 */
    const float *slope;  /* PRELU, AFFINE: in->C per-channel entries; others ignore it */
    const float *bias;   /* AFFINE: in->C entries or NULL (no add); others ignore it */
} msf_unary_f32_params;

/* in and out have the same H x W x C (views may differ); out may alias in (same geometry). */
void msf_unary_f32(const msf_unary_f32_params *p, const msf_view *in, msf_view *out,
                   int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* binary op: out = clamp(in1 OP in2, act_min, act_max), one float operation then the clamp.
 * ONNX Add / Sub / Mul / Div with numpy broadcasting of the second operand; bit-exact with
 * onnxruntime (every op is a single IEEE operation there too).  RSUB / RDIV swap the operands
 * (out = in2 - in1, in2 / in1) so that a broadcast or constant FIRST operand of Sub / Div can
 * still be passed as in2.  Division by zero gives +-inf / NaN (IEEE). */
enum {
    MSF_BIN_ADD = 0,  /* in1 + in2 */
    MSF_BIN_SUB = 1,  /* in1 - in2 */
    MSF_BIN_MUL = 2,  /* in1 * in2 */
    MSF_BIN_DIV = 3,  /* in1 / in2 */
    MSF_BIN_RSUB = 4, /* in2 - in1 */
    MSF_BIN_RDIV = 5  /* in2 / in1 */
};

typedef struct {
    int32_t op;               /* MSF_BIN_* */
    int32_t bcast;            /* MSF_BCAST_NONE: in2 has out's H x W x C and is read at (y, x, c);
                                 MSF_BCAST_CHANNEL: in2 is a 1 x 1 x C view, read at (0, 0, c);
                                 MSF_BCAST_SCALAR: in2 is a 1 x 1 x 1 view, read at (0, 0, 0);
                                 MSF_BCAST_PIXEL: in2 is an H x W x 1 view, read at (y, x, 0).
                                 A constant operand is a full view on a const float array. */
    float act_min, act_max;   /* clamp after the op (none: -/+FLT_MAX; relu: 0, FLT_MAX) */
} msf_binary_f32_params;

/* in1 and out have the same H x W x C; out may alias in1 (same geometry) or, with
 * MSF_BCAST_NONE, in2. */
void msf_binary_f32(const msf_binary_f32_params *p, const msf_view *in1, const msf_view *in2,
                    msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* e^x, see above; exported for tests and for code that needs it at run time. */
float msf_expf(float x);
/* the scalar functions the unary kernel applies (exported for tests): */
float msf_sigmoidf(float x);
float msf_tanhf(float x);

#ifdef __cplusplus
}
#endif

#endif /* MSF_F32_ELTWISE_H */
