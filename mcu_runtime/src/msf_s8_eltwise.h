/* msf_s8_eltwise.h - see the section comment below (included by msf_runtime.h). */
#ifndef MSF_S8_ELTWISE_H
#define MSF_S8_ELTWISE_H

/* Broadcast of a binary elementwise op's second input (msf_mul_s8, msf_binary_f32): same shape,
 * one value per channel (a 1 x 1 x C view: squeeze-excite gates, a per-image channel mean),
 * one value (a 1 x 1 x 1 view), or one value per pixel (an H x W x 1 view, read at (y, x, 0)). */
enum { MSF_BCAST_NONE = 0, MSF_BCAST_CHANNEL = 1, MSF_BCAST_SCALAR = 2, MSF_BCAST_PIXEL = 3 };

/* msf_mul_s8_params.mode of a broadcasting int8 ADD / SUB: the params are an
 * msf_binary_s8_params (below) whose first member is the msf_mul_s8_params. */
enum { MSF_ELT_BINARY_ADD = 16 };

/* ===========================================================================================
 * int8 elementwise ops: unary lookup tables, PReLU, Mul.
 *
 * All kernels compute the output region [oy0, oy1) x [ox0, ox1), all channels, through views;
 * out may alias in / in1 (same geometry: every element is read before it is written).  They
 * count no MACs (msfopt.ir.Layer.macs_per_output() is 0 for these ops).  The parameters are
 * computed in Python by msfopt.mcu_runtime.eltwise_params (the code generator emits them).
 *
 * -------------------------------------------------------------------------------------------
 * Unary ops (msf_lut_s8).  Once its parameters are fixed, every int8 unary op is a function of
 * the int8 input value alone, so it runs as a 256-entry table:  out = table[x + 128].
 * The tables are exact transcriptions of the frameworks' arithmetic:
 *   eltwise_params.tflm_table(op, in_scale, in_zp, out_scale, out_zp, **attrs): TFLite Micro
 *     reference kernels, int8: HARD_SWISH (HardSwishPrepare + reference_ops::HardSwish, int16
 *     fixed point), LOGISTIC / TANH (frexp input multiplier, CalculateInputRadius, gemmlowp
 *     logistic / tanh on Q4.27, RoundingDivideByPOT by 23 / 24; LOGISTIC needs out_zp = -128,
 *     both ignore the output scale), LEAKY_RELU (alpha; two QuantizeMultiplier multipliers from
 *     float32 in_scale * alpha / out_scale and in_scale / out_scale), QUANTIZE int8 -> int8
 *     (reference_ops::Requantize), RELU (requantise, clamp at out_zp), RELU6 (TFLM clamps the
 *     raw input to [in_zp, round(6 / in_scale) + in_zp] without requantising).
 *   eltwise_params.ort_table(op, x_scale, x_zp, y_scale, y_zp, path, **attrs): onnxruntime
 *     1.32, x86-64 with FMA3: y = QuantizeLinear(f(DequantizeLinear(x))) in float32 with
 *     DQ = x_scale * (float)(x - x_zp), Q = rne(clamp(v / y_scale, -128 - y_zp, 127 - y_zp)) +
 *     y_zp, f = MLAS's FMA3 logistic / tanh rational approximations (FMAs emulated exactly),
 *     LeakyRelu, HardSigmoid (alpha * x + beta, two roundings), HardSwish (x * HardSigmoid(x;
 *     1/6, 1/2)), Clip, Relu or identity.  QLinearSigmoid / QLinearLeakyRelu build their table
 *     the same way (QlinearBuildLookupTable); DQ -> Sigmoid / LeakyRelu -> Q is fused into them.
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    const int8_t *table; /* 256 entries: out = table[x + 128] */
} msf_lut_s8_params;

void msf_lut_s8(const msf_lut_s8_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                int32_t oy1, int32_t ox0, int32_t ox1);

/* -------------------------------------------------------------------------------------------
 * PReLU with one slope per channel (alpha tensor [1, 1, C] / [C]) or one slope for all.
 *   mode MSF_RQ_FIXED: TFLM reference PRELU (reference_ops::BroadcastPrelu4DSlow, int8):
 *       v = x - in_zp
 *       v >= 0: r = MultiplyByQuantizedMultiplier(v, mul1, shift1)
 *       v <  0: r = MultiplyByQuantizedMultiplier(v * (alpha_q[c] - alpha_zp), mul2, shift2)
 *       out = clamp(r + out_zp, -128, 127)
 *     (mul1, shift1) = QuantizeMultiplier(float64(in_scale) / float64(out_scale)),
 *     (mul2, shift2) = QuantizeMultiplier(float64(in_scale) * float64(alpha_scale) /
 *     float64(out_scale))  (eltwise_params.prelu_params_tflm).
 *   mode MSF_RQ_FLOAT: onnxruntime DQ -> PRelu -> Q (ORT does not fuse it; float32):
 *       v = in_scale * (float)(x - in_zp);  v = v > 0 ? v : v * alpha_f[c]
 *       out = rne(clamp(v / out_scale, -128 - out_zp, 127 - out_zp)) + out_zp
 *     (eltwise_params.prelu_params_ort).
 *   mode MSF_ELT_ADD_CONST: TFLite ADD(x, k) of an int8 constant k with one value per channel
 *       (a [C] constant, per-tensor quantised or per channel: TFLM's ADD reads the tensor's
 *       params, i.e. its first scale / zero point), reference_integer_ops::AddFunc with the
 *       constant side precomputed per channel (eltwise_params.add_const_params_tflm):
 *       a = RoundingDivideByPOT(SRDHM((x - in_zp) << left_shift, mul1), -shift1)
 *       out = clamp(RoundingDivideByPOT(SRDHM(a + addend[c], mul2), -shift2) + out_zp,
 *                   act_min, act_max)
 *       addend[c] = RoundingDivideByPOT(SRDHM((k[c] - k_zp) << left_shift, in2 mul), -in2 shift)
 *     (only the fields from `addend` on and in_zp, out_zp, mul1/2, shift1/2 are read).
 * ------------------------------------------------------------------------------------------- */
#define MSF_ELT_ADD_CONST 16 /* msf_prelu_s8_params.mode: TFLM ADD of a per-channel constant */

typedef struct {
    int32_t mode;            /* MSF_RQ_FIXED (TFLM), MSF_RQ_FLOAT (ORT) or MSF_ELT_ADD_CONST */
    int32_t per_channel;     /* 1: alpha has C entries (by channel); 0: entry 0 for all */
    int32_t in_zp, alpha_zp, out_zp; /* alpha_zp: MSF_RQ_FIXED only */
    const int8_t *alpha_q;   /* MSF_RQ_FIXED: int8 slopes (their own scale / zero point) */
    int32_t mul1, shift1;    /* MSF_RQ_FIXED: v >= 0 multiplier (Q31, TFLite shift sign) */
    int32_t mul2, shift2;    /* MSF_RQ_FIXED: v < 0 multiplier */
    const float *alpha_f;    /* MSF_RQ_FLOAT: float32 slopes */
    float in_scale, out_scale; /* MSF_RQ_FLOAT: np.float32 scales */
    /* MSF_ELT_ADD_CONST only (mul1 / shift1: the input's, mul2 / shift2: the output's) */
    const int32_t *addend;   /* C entries: the constant's scaled summand per channel */
    int32_t left_shift, act_min, act_max;
} msf_prelu_s8_params;

void msf_prelu_s8(const msf_prelu_s8_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                  int32_t oy1, int32_t ox0, int32_t ox1);

/* -------------------------------------------------------------------------------------------
 * Mul, int8: out = in1 * in2 (each with its own quantisation); in2 broadcast per bcast:
 * MSF_BCAST_NONE (same shape as out), MSF_BCAST_CHANNEL (in2 is a 1 x 1 x C view, read at
 * (0, 0, c)), MSF_BCAST_SCALAR (in2 is a 1 x 1 x 1 view).  A constant operand is a view on a
 * const array.  With d = (in1 - in1_zp) * (in2 - in2_zp) (exact int32):
 *   mode MSF_RQ_FIXED: TFLM reference MUL (reference_integer_ops::MulElementwise; the broadcast
 *       kernel BroadcastMul6DSlow does the same per element):
 *       out = clamp(MultiplyByQuantizedMultiplier(d, out_mul, out_shift) + out_zp,
 *                   act_min, act_max)
 *       (out_mul, out_shift) = QuantizeMultiplier(float64(s1) * float64(s2) / float64(s_out)),
 *       act_min / act_max = CalculateActivationRangeQuantized of the fused activation
 *       (eltwise_params.mul_params_tflm).
 *   mode MSF_RQ_FLOAT: onnxruntime QLinearMul (MLAS SSE2 kernel on x86-64; also what ORT runs
 *       for DQ -> Mul -> Q, which it fuses into QLinearMul), float32:
 *       ratio = np.float32(np.float32(s1 * s2) / s_out)
 *       v = (float)d * ratio + (float)out_zp          (multiply, then add: two roundings)
 *       q = rne(v) saturated to int8 (|v| >= 2^31 gives -128, like cvtps2dq + packs)
 *       out = clamp(q, act_min, act_max)              (act: -128 / 127 for plain QLinearMul)
 *   mode MSF_RQ_FLOAT_QDQ: the unfused float chain (ORT_DISABLE_ALL):
 *       v = (in1_scale * (float)(a - in1_zp)) * (in2_scale * (float)(b - in2_zp))
 *       out = clamp(rne(clamp(v / out_scale, -128 - out_zp, 127 - out_zp)) + out_zp,
 *                   act_min, act_max)
 *   (eltwise_params.mul_params_ort(..., path="qlinear" / "unfused")).
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    int32_t mode;              /* MSF_RQ_FIXED, MSF_RQ_FLOAT or MSF_RQ_FLOAT_QDQ */
    int32_t bcast;             /* MSF_BCAST_* for in2 */
    int32_t in1_zp, in2_zp, out_zp;
    int32_t act_min, act_max;  /* int8 clamp applied last */
    int32_t out_mul, out_shift; /* MSF_RQ_FIXED (Q31 multiplier, TFLite shift sign) */
    float ratio;               /* MSF_RQ_FLOAT */
    float in1_scale, in2_scale, out_scale; /* MSF_RQ_FLOAT_QDQ */
} msf_mul_s8_params;

void msf_mul_s8(const msf_mul_s8_params *p, const msf_view *in1, const msf_view *in2,
                msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* -------------------------------------------------------------------------------------------
 * Broadcasting int8 ADD / SUB of two activations (TFLite ADD / SUB with broadcast, ONNX Add /
 * Sub with numpy broadcasting): msf_mul_s8 with base.mode == MSF_ELT_BINARY_ADD runs, per
 * output element, msf_add_s8's arithmetic (msf_add_one_s8: add.mode MSF_RQ_FIXED = TFLM's
 * AddFunc / SubFunc, which its broadcast kernels BroadcastAdd6DSlow / BroadcastSubRecursively
 * apply per element with the same parameters; MSF_RQ_FLOAT = QLinearAdd; MSF_RQ_FLOAT_QDQ =
 * DequantizeLinear -> float32 Add / Sub -> QuantizeLinear; add.sub subtracts) on
 * (in1[y, x, c], in2 broadcast per base.bcast), then clamps to base.act_min / act_max.  reverse:
 * the arithmetic's first operand is in2 (the broadcast one: SUB(broadcast, map)); the add's
 * in1_* parameters belong to the arithmetic's first operand.  Only base.mode, bcast, act_min
 * and act_max of base are read.
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    msf_mul_s8_params base;    /* mode MSF_ELT_BINARY_ADD, bcast, act_min, act_max */
    msf_add_s8_params add;     /* the per-element add / subtract */
    int32_t reverse;           /* 1: add(in2, in1) (in2 is the first operand) */
} msf_binary_s8_params;

/* One element of msf_add_s8 (unclamped by act_min / act_max, saturated to int8). */
int32_t msf_add_one_s8(const msf_add_s8_params *p, int32_t a, int32_t b);

#endif /* MSF_S8_ELTWISE_H */
