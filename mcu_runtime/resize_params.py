"""Parameters of the C resize and transposed-convolution kernels (``msf_resize.h``,
``msf_convt.h``) from the source framework's attributes.

Every function returns plain Python values (a dict whose keys are the C struct's field names,
plus a few derived facts such as the output extent).  The arithmetic the C kernels then apply
is documented in the headers; here only what is computed once at code generation:

* ONNX Resize (onnxruntime 1.32 CPU EP): the per-axis float32 scale ORT uses -- the ``scales``
  input as given, or ``np.float32(out) / np.float32(in)`` when the model gives ``sizes``
  (``UpsampleBase::ParseScalesDataAndAdjustOutputSize``); with ``scales`` the output extent is
  ``int(np.float32(scale) * np.float32(in))`` (``ComputeOutputShape``, truncation).
* TFLite RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR (TFLite Micro reference kernels): the float
  scale of ``GetNearestNeighbor`` / ``ResizeBilinear`` and the integer ``height_scale_10`` /
  ``width_scale_10`` of ``ResizeBilinearInteger``.
* ConvTranspose / TRANSPOSE_CONV: the begin pads and output extent, and the weight layout
  conversion to OHWI = (C_out, kh, kw, C_in).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# enums of msf_resize.h
MSF_RESIZE_NEAREST, MSF_RESIZE_BILINEAR = 0, 1
MSF_RESIZE_ONNX, MSF_RESIZE_TFLM = 0, 1
COORD = {"half_pixel": 0, "asymmetric": 1, "align_corners": 2, "pytorch_half_pixel": 3,
         "tf_half_pixel_for_nn": 4}
NEAREST = {"round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3}
MODES = {"nearest": MSF_RESIZE_NEAREST, "linear": MSF_RESIZE_BILINEAR,
         "bilinear": MSF_RESIZE_BILINEAR}

RESIZE_FIELDS = ("mode", "framework", "coord", "nearest", "align_corners", "half_pixel_centers",
                 "scale_h", "scale_w", "scale10_h", "scale10_w")
#: the trailing msf_resize_params fields read only by an ONNX int8 bilinear resize
ONNX_S8_FIELDS = ("onnx_s8", "in_scale", "out_scale", "in_zp", "out_zp")
MSF_RESIZE_S8_QDQ, MSF_RESIZE_S8_TRUNC = 1, 2


def _mode(mode) -> int:
    if isinstance(mode, str):
        if mode not in MODES:
            raise ValueError(f"unsupported resize mode {mode!r} (nearest / linear)")
        return MODES[mode]
    if int(mode) not in (MSF_RESIZE_NEAREST, MSF_RESIZE_BILINEAR):
        raise ValueError(f"unsupported resize mode {mode!r}")
    return int(mode)


def onnx_resize_params(mode, in_hw: Sequence[int], *, coord: str = "half_pixel",
                       nearest_mode: str = "round_prefer_floor",
                       scales: Sequence[float] | None = None,
                       sizes: Sequence[int] | None = None) -> dict:
    """ONNX Resize (opset 11+) over H and W as onnxruntime computes it.

    ``scales`` / ``sizes`` are the (H, W) entries of the op's ``scales`` / ``sizes`` input
    (exactly one of them; the N and C entries must be 1 / unchanged, which the importer checks).
    Returns the ``msf_resize_params`` fields and ``out_hw``."""
    m = _mode(mode)
    if coord not in COORD:
        raise ValueError(f"unsupported coordinate_transformation_mode {coord!r}")
    if m == MSF_RESIZE_NEAREST and nearest_mode not in NEAREST:
        raise ValueError(f"unsupported nearest_mode {nearest_mode!r}")
    if (scales is None) == (sizes is None):
        raise ValueError("give exactly one of scales / sizes")
    h, w = (int(v) for v in in_hw)
    if scales is not None:
        s = [np.float32(v) for v in scales]
        if min(s) <= 0:
            raise ValueError("Resize scales must be > 0")
        # ComputeOutputShape: static_cast<int64_t>(scales[i] * input_dims[i]) in float32
        out = [int(np.float32(s[0] * np.float32(h))), int(np.float32(s[1] * np.float32(w)))]
    else:
        out = [int(v) for v in sizes]
        s = [np.float32(np.float32(out[0]) / np.float32(h)),
             np.float32(np.float32(out[1]) / np.float32(w))]
    if min(out) < 1:
        raise ValueError(f"Resize output extent {out} is empty")
    return dict(mode=m, framework=MSF_RESIZE_ONNX, coord=COORD[coord],
                nearest=NEAREST.get(nearest_mode, 0) if m == MSF_RESIZE_NEAREST else 0,
                align_corners=0, half_pixel_centers=0, scale_h=float(s[0]), scale_w=float(s[1]),
                scale10_h=0, scale10_w=0, out_hw=(out[0], out[1]))


def onnx_s8_bilinear_fields(qdq: bool, in_quant, out_quant) -> dict:
    """:data:`ONNX_S8_FIELDS` of an int8 bilinear ONNX Resize as onnxruntime 1.32 runs it
    (measured bit-exact, every coordinate mode): ``qdq`` (DequantizeLinear -> Resize ->
    QuantizeLinear, kept in float32 by ORT) dequantises with ``in_quant``, interpolates in
    float32 and quantises with ``out_quant`` (round half to even); otherwise (ORT's Resize on an
    int8 tensor) the float32 sum of the raw values is truncated toward zero and the grids are
    not used.  ``in_quant`` / ``out_quant``: (scale, zero point)."""
    (si, zi), (so, zo) = in_quant, out_quant
    if qdq and (not np.float32(si) > 0 or not np.float32(so) > 0):
        raise ValueError("int8 bilinear Resize needs positive scales")
    return dict(onnx_s8=MSF_RESIZE_S8_QDQ if qdq else MSF_RESIZE_S8_TRUNC,
                in_scale=float(np.float32(si)), out_scale=float(np.float32(so)),
                in_zp=int(zi), out_zp=int(zo))


def _tflite_float_scale(n_in: int, n_out: int, align_corners: bool) -> float:
    # (input_size - 1) / static_cast<float>(output_size - 1) or input_size / float(output_size)
    if align_corners and n_out > 1:
        return float(np.float32(n_in - 1) / np.float32(n_out - 1))
    return float(np.float32(n_in) / np.float32(n_out))


def _tflite_scale10(n_in: int, n_out: int, align_corners: bool) -> int:
    # ResizeBilinearInteger: integer division of non-negative values (C == Python //)
    if align_corners and n_out > 1:
        return ((1 << 10) * (n_in - 1) + (n_out - 1) // 2) // (n_out - 1)
    return ((1 << 10) * n_in + n_out // 2) // n_out


def tflite_resize_params(mode, in_hw: Sequence[int], out_hw: Sequence[int], *,
                         align_corners: bool = False, half_pixel_centers: bool = False,
                         in_quant: tuple | None = None, out_quant: tuple | None = None) -> dict:
    """TFLite RESIZE_NEAREST_NEIGHBOR (``mode='nearest'``) / RESIZE_BILINEAR (``'bilinear'``) as
    TFLite Micro's reference kernels compute them.  ``out_hw`` is the constant size tensor.
    For int8 pass ``in_quant`` / ``out_quant`` = (scale, zero_point): they must be equal (the
    kernels copy / interpolate raw int8 values, as TFLM does)."""
    m = _mode(mode)
    h, w = (int(v) for v in in_hw)
    oh, ow = (int(v) for v in out_hw)
    if min(h, w, oh, ow) < 1:
        raise ValueError("empty resize")
    if m == MSF_RESIZE_BILINEAR and align_corners and half_pixel_centers:
        raise ValueError("RESIZE_BILINEAR: half_pixel_centers requires align_corners = False "
                         "(TFLM rejects the model)")
    if (in_quant is None) != (out_quant is None):
        raise ValueError("give both in_quant and out_quant (int8) or neither (float)")
    if in_quant is not None:
        si, zi = np.float32(in_quant[0]), int(in_quant[1])
        so, zo = np.float32(out_quant[0]), int(out_quant[1])
        assert si == so and zi == zo, (
            f"TFLite resize with different input/output quantisation ({si}, {zi}) -> ({so}, {zo})")
    return dict(mode=m, framework=MSF_RESIZE_TFLM, coord=0, nearest=0,
                align_corners=int(bool(align_corners)),
                half_pixel_centers=int(bool(half_pixel_centers)),
                scale_h=_tflite_float_scale(h, oh, align_corners),
                scale_w=_tflite_float_scale(w, ow, align_corners),
                scale10_h=_tflite_scale10(h, oh, align_corners),
                scale10_w=_tflite_scale10(w, ow, align_corners), out_hw=(oh, ow))


def resize_params(framework: str, mode, in_hw, out_hw=None, **kw) -> dict:
    """Dispatch: ``framework`` 'onnx' (kw: coord, nearest_mode, scales | sizes; ``out_hw`` is
    accepted as ``sizes``) or 'tflite' (kw: align_corners, half_pixel_centers, in_quant,
    out_quant)."""
    if framework == "onnx":
        if out_hw is not None:
            kw.setdefault("sizes", out_hw)
        return onnx_resize_params(mode, in_hw, **kw)
    if framework == "tflite":
        return tflite_resize_params(mode, in_hw, out_hw, **kw)
    raise ValueError(f"unknown framework {framework!r}")


# -- transposed convolution ---------------------------------------------------------------------

def convt_onnx_geometry(in_hw: Sequence[int], kernel: Sequence[int], strides=(1, 1),
                        pads=(0, 0, 0, 0), output_padding=(0, 0), dilations=(1, 1),
                        output_shape: Sequence[int] | None = None,
                        auto_pad: str = "NOTSET") -> dict:
    """ONNX ConvTranspose (2-D, group 1) geometry: ``pads`` = (top, left, bottom, right) as in
    the ONNX attribute [x1_begin, x2_begin, x1_end, x2_end].  With ``output_shape`` (H, W) the
    pads follow the ONNX spec: total = s * (in - 1) + output_padding + (k - 1) * d + 1 - out;
    SAME_UPPER puts total // 2 at the begin, otherwise total - total // 2.
    Returns the C fields kh, kw, sh, sw, dh, dw, pad_top, pad_left and ``out_hw``."""
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ValueError(f"unsupported auto_pad {auto_pad!r}")
    n_in = [int(v) for v in in_hw]
    k = [int(v) for v in kernel]
    s = [int(v) for v in strides]
    d = [int(v) for v in dilations]
    op = [int(v) for v in output_padding]
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [n_in[i] * s[i] for i in range(2)]
    if auto_pad == "VALID" and output_shape is None:
        pads = (0, 0, 0, 0)
    begin, out = [0, 0], [0, 0]
    for i in range(2):
        full = s[i] * (n_in[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1
        if output_shape is not None:
            total = full - int(output_shape[i])
            b = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            begin[i], out[i] = b, int(output_shape[i])
        else:
            begin[i] = int(pads[i])
            out[i] = full - int(pads[i]) - int(pads[i + 2])
    if min(out) < 1:
        raise ValueError(f"ConvTranspose output extent {out} is empty")
    return dict(kh=k[0], kw=k[1], sh=s[0], sw=s[1], dh=d[0], dw=d[1], pad_top=begin[0],
                pad_left=begin[1], out_hw=(out[0], out[1]))


def convt_tflite_geometry(out_hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                          padding: str) -> dict:
    """TFLite TRANSPOSE_CONV geometry as TFLM computes it: ``ComputePaddingHeightWidth`` with the
    OUTPUT extent (the op's output_shape tensor) as the image size, dilation 1; only the begin
    pad (padding_values.height / .width, the floor half of the total) is used."""
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"unsupported padding {padding!r}")
    pads = []
    for n_out, k, s in zip(out_hw, kernel, strides):
        n_out, k, s = int(n_out), int(k), int(s)
        n = (n_out + s - 1) // s if padding == "SAME" else (n_out - k + s) // s
        pads.append(max((n - 1) * s + k - n_out, 0) // 2)
    return dict(kh=int(kernel[0]), kw=int(kernel[1]), sh=int(strides[0]), sw=int(strides[1]),
                dh=1, dw=1, pad_top=pads[0], pad_left=pads[1],
                out_hw=(int(out_hw[0]), int(out_hw[1])))


def convt_weights_from_onnx(w: np.ndarray) -> np.ndarray:
    """ONNX ConvTranspose weights (C_in, C_out, kh, kw), group 1 -> OHWI (C_out, kh, kw, C_in)."""
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError("ConvTranspose weights must be 4-D")
    return np.ascontiguousarray(w.transpose(1, 2, 3, 0))


def convt_weights_from_tflite(w: np.ndarray) -> np.ndarray:
    """TFLite TRANSPOSE_CONV weights are already (C_out, kh, kw, C_in)."""
    return np.ascontiguousarray(np.asarray(w))
