/* msf_resize.h - see the section comment below (included by msf_runtime.h). */
#ifndef MSF_RESIZE_H
#define MSF_RESIZE_H

/* ---------------------------------------------------------------------------------------- */
/* Resize (nearest / bilinear) over H and W, layout H x W x C                                */
/* ---------------------------------------------------------------------------------------- */
/*
 * msf_resize_f32 / msf_resize_s8 compute the output region [oy0, oy1) x [ox0, ox1) (all
 * channels) of a resize of the input `in` (a FULL view: y0 = 0, xcap = W, the kernel reads any
 * input row) to the extent of `out` (out->H x out->W, out->C == in->C).  The source
 * coordinate of every output row / column is recomputed from the params (no tables), so any
 * region can be computed independently.  MACs (MSF_COUNT_MACS): nearest 0, bilinear 4 per
 * output element (the nominal msfopt figure: 4 taps).
 *
 * framework = MSF_RESIZE_ONNX: onnxruntime 1.32 CPU EP (upsamplebase.h / upsample.cc), all
 * coordinate arithmetic in float32 exactly as ORT does it (ORT's lambdas are float32; no
 * double anywhere on this path).  Per axis (length_original = Lo = in extent, length_resized
 * = Lr = out extent, s = scale_h / scale_w, x = (float)output index):
 *     if out->H == in->H and out->W == in->W: a copy (ORT copies the input whatever the scales)
 *     if s == 1.0f: the source coordinate is x itself (ORT skips the transform)
 *     MSF_COORD_HALF_PIXEL          o = (x + 0.5f) / s - 0.5f
 *     MSF_COORD_ASYMMETRIC          o = x / s
 *     MSF_COORD_PYTORCH_HALF_PIXEL  o = Lr > 1 ? (x + 0.5f) / s - 0.5f : 0.0f
 *     MSF_COORD_TF_HALF_PIXEL_FOR_NN o = (x + 0.5f) / s
 *     MSF_COORD_ALIGN_CORNERS       o = Lr == 1 ? 0 : (x * (float)(Lo - 1)) / (float)(Lr - 1)
 *   (s is a float32 the caller computed as ORT does: the `scales` input as given, or
 *   (float)out / (float)in when the model gives `sizes`; msfopt.mcu_runtime.resize_params.)
 *   nearest: i = rounding of o by `nearest`, then clamped to [0, Lo - 1]:
 *     MSF_NEAREST_ROUND_PREFER_FLOOR  |(o - floor(o)) - 0.5f| <= 1e-6f ? floor(o) : round(o)
 *     MSF_NEAREST_ROUND_PREFER_CEIL   |(o - floor(o)) - 0.5f| <= 1e-6f ? ceil(o)  : round(o)
 *        (round = half away from zero, std::round; all in float32.  The 1e-6 tie tolerance is
 *        onnxruntime 1.32's behaviour, measured: coordinates one float ulp off .5 below 16 are
 *        treated as ties, 1.9e-6 off is not -- ORT's fix of issue #28291, the tolerance the
 *        WebGPU EP documents in PR #28757.  Older ORT compared o == trunc(o) + 0.5f exactly.)
 *     MSF_NEAREST_FLOOR               floor(o)
 *     MSF_NEAREST_CEIL                ceil(o)
 *   bilinear (float only): o clamped to [0, Lo - 1]; i1 = (int)o, i2 = min(i1 + 1, Lo - 1);
 *     d1 = |o - i1|, d2 = |o - i2| (float32), both 0.5f when i1 == i2; per element
 *     y = d2x * d2y * X[i1y,i1x] + d1x * d2y * X[i1y,i2x] + d2x * d1y * X[i2y,i1x]
 *         + d1x * d1y * X[i2y,i2x]      (float32, left to right: ORT's UpsampleBilinear order)
 *   extrapolation / tf_crop_and_resize / antialias / exclude_outside / cubic: not supported.
 *   int8 (msf_resize_s8) nearest: a pure copy (ORT's Resize on int8 maps indices the same way).
 *   int8 bilinear: the float32 bilinear above on the int8 values, as ORT computes it (measured
 *   bit-exact on onnxruntime 1.32 for every coordinate mode), by `onnx_s8`:
 *     MSF_RESIZE_S8_QDQ    DequantizeLinear -> Resize -> QuantizeLinear, which ORT keeps in
 *                          float32 (its QDQ selectors leave a linear Resize alone):
 *                          X = (float)(q - in_zp) * in_scale; y = the bilinear sum;
 *                          out = rne(clamp(y / out_scale, -128 - out_zp, 127 - out_zp)) + out_zp
 *     MSF_RESIZE_S8_TRUNC  ORT's Resize on an int8 tensor (UpsampleBilinear<int8_t>):
 *                          X = (float)q, out = static_cast<int8_t>(y): truncated toward zero
 *                          (y lies in the inputs' range: a convex combination)
 *
 * framework = MSF_RESIZE_TFLM: TFLite Micro reference kernels (`align_corners`,
 * `half_pixel_centers` are the op's options; coord / nearest are ignored).  int8 requires
 * equal input and output quantisation (TFLite's converter guarantees it; the parameter code
 * asserts it): values are copied / interpolated as raw int8.
 *   RESIZE_NEAREST_NEIGHBOR (reference_ops::GetNearestNeighbor, float32 arithmetic):
 *     scale = (align_corners && Lr > 1) ? (float)(Lo - 1) / (float)(Lr - 1)
 *                                         : (float)Lo / (float)Lr        (= scale_h / scale_w)
 *     v = ((float)x + (half_pixel_centers ? 0.5f : 0.0f)) * scale
 *     i = min(align_corners ? round_half_away(v) : floor(v), Lo - 1);
 *     if half_pixel_centers: i = max(i, 0).
 *   RESIZE_BILINEAR int8 (reference_ops::ResizeBilinearInteger, integer only; s10 =
 *   scale10_h / scale10_w):
 *     s10 = (1024 * Lo + Lr / 2) / Lr, or if align_corners && Lr > 1:
 *           (1024 * (Lo - 1) + (Lr - 1) / 2) / (Lr - 1)            (C integer division)
 *     v  = half_pixel_centers ? x * s10 + s10 / 2 - 512 : x * s10
 *     i0 = max(v / 1024, 0)  (C division: truncation toward zero),
 *     i1 = min((v + 1023) / 1024, Lo - 1);  d = v - 1024 * i0  (may be negative when v < 0)
 *     acc = X[y0,x0] (1024-dy)(1024-dx) + X[y1,x0] dy (1024-dx) + X[y0,x1] (1024-dy) dx
 *           + X[y1,x1] dy dx                         (|acc| < 2^29: exact in int32)
 *     out = (acc + (acc > 0 ? 2^19 : -2^19)) / 2^20   (truncating division; TFLM's default
 *                                                      double-rounding build)
 *     (TFLM does not clamp i0 <= Lo - 1; it can only exceed it with align_corners and
 *     Lr > 2049, where TFLM reads out of bounds; this kernel clamps it for memory safety.)
 *   RESIZE_BILINEAR float (reference_ops::ResizeBilinear, float32): scale as for nearest;
 *     v = half_pixel_centers ? ((float)x + 0.5f) * scale - 0.5f : (float)x * scale;
 *     i0 = max((int)floor(v), 0), i1 = min((int)ceil(v), Lo - 1);
 *     y = X[y0,x0] * (1 - (vy - y0)) * (1 - (vx - x0)) + X[y1,x0] * (vy - y0) * (1 - (vx - x0))
 *       + X[y0,x1] * (1 - (vy - y0)) * (vx - x0) + X[y1,x1] * (vy - y0) * (vx - x0).
 */
enum { MSF_RESIZE_NEAREST = 0, MSF_RESIZE_BILINEAR = 1 };
enum { MSF_RESIZE_ONNX = 0, MSF_RESIZE_TFLM = 1 };
enum {
    MSF_COORD_HALF_PIXEL = 0,
    MSF_COORD_ASYMMETRIC = 1,
    MSF_COORD_ALIGN_CORNERS = 2,
    MSF_COORD_PYTORCH_HALF_PIXEL = 3,
    MSF_COORD_TF_HALF_PIXEL_FOR_NN = 4
};
enum {
    MSF_NEAREST_ROUND_PREFER_FLOOR = 0,
    MSF_NEAREST_ROUND_PREFER_CEIL = 1,
    MSF_NEAREST_FLOOR = 2,
    MSF_NEAREST_CEIL = 3
};

#define MSF_RESIZE_S8_QDQ 1   /* onnx_s8: ORT's DQ -> float Resize -> Q */
#define MSF_RESIZE_S8_TRUNC 2 /* onnx_s8: ORT's int8 Resize (float sum truncated) */

typedef struct {
    int32_t mode;               /* MSF_RESIZE_NEAREST / MSF_RESIZE_BILINEAR */
    int32_t framework;          /* MSF_RESIZE_ONNX (onnxruntime) / MSF_RESIZE_TFLM (TFLite Micro) */
    int32_t coord;              /* ONNX: MSF_COORD_* (coordinate_transformation_mode) */
    int32_t nearest;            /* ONNX nearest: MSF_NEAREST_* (nearest_mode) */
    int32_t align_corners;      /* TFLM: the op's align_corners option (0 / 1) */
    int32_t half_pixel_centers; /* TFLM: the op's half_pixel_centers option (0 / 1) */
    float scale_h, scale_w;     /* ONNX: ORT's float32 scale (out / in) per axis;
                                   TFLM nearest / float bilinear: the reference kernel's float
                                   scale (in / out, or (in - 1) / (out - 1) with align_corners) */
    int32_t scale10_h, scale10_w; /* TFLM int8 bilinear: height_scale_10 / width_scale_10 */
    /* ONNX int8 bilinear only (read by msf_resize_s8 for framework ONNX, mode BILINEAR):
     * MSF_RESIZE_S8_QDQ / MSF_RESIZE_S8_TRUNC, the input / output grids (QDQ) */
    int32_t onnx_s8;
    float in_scale, out_scale;
    int32_t in_zp, out_zp;
} msf_resize_params;

void msf_resize_f32(const msf_resize_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                    int32_t oy1, int32_t ox0, int32_t ox1);
void msf_resize_s8(const msf_resize_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                   int32_t oy1, int32_t ox0, int32_t ox1);

#endif /* MSF_RESIZE_H */
