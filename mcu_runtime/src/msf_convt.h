/* msf_convt.h - see the section comment below (included by msf_runtime.h). */
#ifndef MSF_CONVT_H
#define MSF_CONVT_H

/* ---------------------------------------------------------------------------------------- */
/* Transposed convolution (ONNX ConvTranspose, TFLite TRANSPOSE_CONV), groups 1               */
/* ---------------------------------------------------------------------------------------- */
/*
 * Geometry.  Input H x W x C_in (a FULL view: y0 = 0, xcap = W), output out->H x out->W x
 * C_out (the output extent comes from the view).  Input pixel (iy, ix) reaches output pixel
 *     (oy, ox) = (iy * sh + ky * dh - pad_top, ix * sw + kx * dw - pad_left)
 * through tap (ky, kx).  The kernels compute the GATHER form: each output element of the
 * region [oy0, oy1) x [ox0, ox1) sums, over the taps with
 *     t = oy + pad_top - ky * dh >= 0, t % sh == 0, iy = t / sh < H      (same for x),
 * its input pixels; so any output region can be computed on its own (no scratch buffer, no
 * zero-fill, no read-modify-write of the output).
 *   ONNX: pad_top / pad_left = pads[0] / pads[1] (the begin pads), dh / dw = dilations; the
 *     end pads and output_padding only change the output extent
 *     out = sh * (H - 1) + output_padding + (kh - 1) * dh + 1 - pad_begin - pad_end
 *     (msfopt.mcu_runtime.resize_params.convt_onnx_geometry; it also resolves output_shape /
 *     auto_pad).
 *   TFLite: pad_top / pad_left = TFLM's padding_values.height / .width:
 *     ComputePaddingHeightWidth(stride, dilation 1, in = OUTPUT extent, filter, padding):
 *     n = SAME ? ceil(out / s) : (out - k + s) / s;  pad = max((n - 1) * s + k - out, 0) / 2
 *     (msfopt.mcu_runtime.resize_params.convt_tflite_geometry), dh = dw = 1.
 * Weights: OHWI = (C_out, kh, kw, C_in), converted at codegen: ONNX ConvTranspose weights
 * W[ci][co][ky][kx] (C_in, C_out, kh, kw) -> W.transpose(1, 2, 3, 0); TFLite TRANSPOSE_CONV
 * weights are already (C_out, kh, kw, C_in).  No kernel flip: tap (ky, kx) of the stored
 * weights is the framework's tap (ky, kx) in the scatter formula above.
 *
 * int8 (rq.mode MSF_RQ_FIXED) = TFLM reference_integer_ops::TransposeConv (per-channel):
 *     acc = sum over the reaching taps of (x - in_zp) * w   (int32, wrapping like TFLM's
 *           int32 scratch buffer: TFLM scatters into an int32 scratch tensor, then adds the
 *           bias and requantises; integer addition in any order gives the same int32, so the
 *           gather form is bit-identical)
 *     acc += bias[co] (if bias) ; out = clamp(MBQM(acc, qmul[co], qshift[co]) + out_zp,
 *                                             act_min, act_max)
 *     qmul / qshift = requant.conv_fixed_multipliers(x_scale, w_scale[co], y_scale) (TFLM's
 *     PopulateConvolutionQuantizationParams); weights symmetric (w_zp ignored, as TFLM);
 *     act_min / act_max from the op's fused activation (TFLM CalculateActivationRangeQuantized).
 *   rq.mode MSF_RQ_FLOAT applies msf_requant_s8's float path (QLinearConv's requantisation) to
 *   the same accumulator; onnxruntime 1.32 has NO QLinearConvTranspose (a QDQ ConvTranspose
 *   runs as DequantizeLinear -> float ConvTranspose -> QuantizeLinear), so this mode has no
 *   ORT counterpart and is not verified against one.
 * float: acc = bias[co] (or 0), then for each reaching tap (ky ascending, kx ascending), for
 *   ci ascending: acc += x * w (float32, no FMA); out = clamp(acc, act_min, act_max).  ORT
 *   computes a GEMM + col2im in another order: results agree to rounding (~1e-6 relative).
 * MACs (MSF_COUNT_MACS): NOMINAL, kh * kw * C_in per output element (the figure of a
 *   direct convolution with the same kernel; the taps actually summed are about
 *   kh * kw * C_in / (sh * sw)).
 */
typedef struct {
    int32_t kh, kw;           /* kernel */
    int32_t sh, sw;           /* strides */
    int32_t dh, dw;           /* dilations (TFLite: 1); 0 is read as 1 */
    int32_t pad_top, pad_left; /* begin pads (see above) */
    int32_t in_zp, out_zp;
    int32_t act_min, act_max; /* int8 clamp after requantisation */
    const int8_t *weights;    /* OHWI (C_out, kh, kw, C_in) */
    const int32_t *bias;      /* C_out or NULL */
    msf_requant rq;           /* per_channel 1: one entry per output channel */
} msf_convt_s8_params;

typedef struct {
    int32_t kh, kw;
    int32_t sh, sw;
    int32_t dh, dw;
    int32_t pad_top, pad_left;
    float act_min, act_max;   /* none: -/+FLT_MAX; relu: 0, FLT_MAX; relu6: 0, 6 */
    const float *weights;     /* OHWI (C_out, kh, kw, C_in) */
    const float *bias;        /* C_out or NULL */
} msf_convt_f32_params;

void msf_convt_s8(const msf_convt_s8_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                  int32_t oy1, int32_t ox0, int32_t ox1);
void msf_convt_f32(const msf_convt_f32_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                   int32_t oy1, int32_t ox0, int32_t ox1);

#endif /* MSF_CONVT_H */
