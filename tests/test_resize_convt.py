"""Differential tests of the C resize and transposed-convolution kernels (msf_resize.c,
msf_convt.c) against their frameworks:

* ONNX Resize (nearest / linear; every coordinate_transformation_mode and nearest_mode the
  kernels support; ``scales`` and ``sizes`` forms; opsets 11 / 13 / 17 / 19; up- and
  down-sampling, non-integer factors) and float32 ConvTranspose against onnxruntime (CPU EP,
  default graph optimisations and ORT_DISABLE_ALL),
* TFLite RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR (int8 and float32; align_corners /
  half_pixel_centers) and int8 TRANSPOSE_CONV (per-channel, with and without bias, fused
  activations) against tflite-micro on one-op .tflite files,

plus region independence (an output computed in random sub-regions equals the whole) and the
C unit tests (tests_c/test_resize.c, test_convt.c) under ASan/UBSan.  Parameters come from
msfopt.mcu_runtime.resize_params / requant (parameters, not oracles); expected values come only
from the frameworks.
"""
from __future__ import annotations

import ctypes as C
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tflite
from onnx import TensorProto, helper, numpy_helper
from tflite_builder import ModelWriter  # the shared one-op .tflite writer (tests/)
from tflite_micro.python.tflite_micro import runtime as tflm_runtime

from msfopt.mcu_runtime import hostlib, requant
from msfopt.mcu_runtime import resize_params as rp

ROOT = Path(__file__).resolve().parent.parent
TESTS_C = ROOT / "mcu_runtime" / "tests_c"
F32_MAX = float(np.finfo(np.float32).max)

# ------------------------------------------------------------------------------------------------
# ctypes mirrors of msf_resize.h / msf_convt.h
# ------------------------------------------------------------------------------------------------


class ResizeP(C.Structure):
    _fields_ = [("mode", C.c_int32), ("framework", C.c_int32), ("coord", C.c_int32),
                ("nearest", C.c_int32), ("align_corners", C.c_int32),
                ("half_pixel_centers", C.c_int32), ("scale_h", C.c_float), ("scale_w", C.c_float),
                ("scale10_h", C.c_int32), ("scale10_w", C.c_int32)]


class ConvtS8(C.Structure):
    _fields_ = [("kh", C.c_int32), ("kw", C.c_int32), ("sh", C.c_int32), ("sw", C.c_int32),
                ("dh", C.c_int32), ("dw", C.c_int32), ("pad_top", C.c_int32),
                ("pad_left", C.c_int32), ("in_zp", C.c_int32), ("out_zp", C.c_int32),
                ("act_min", C.c_int32), ("act_max", C.c_int32),
                ("weights", C.POINTER(C.c_int8)), ("bias", C.POINTER(C.c_int32)),
                ("rq", hostlib.Requant)]


class ConvtF32(C.Structure):
    _fields_ = [("kh", C.c_int32), ("kw", C.c_int32), ("sh", C.c_int32), ("sw", C.c_int32),
                ("dh", C.c_int32), ("dw", C.c_int32), ("pad_top", C.c_int32),
                ("pad_left", C.c_int32), ("act_min", C.c_float), ("act_max", C.c_float),
                ("weights", C.POINTER(C.c_float)), ("bias", C.POINTER(C.c_float))]


_REGION = [C.c_int32] * 4


@pytest.fixture(scope="module")
def lib():
    lb = hostlib.load(hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all"]))
    P = C.POINTER
    for name, pt in (("msf_resize_f32", ResizeP), ("msf_resize_s8", ResizeP),
                     ("msf_convt_s8", ConvtS8), ("msf_convt_f32", ConvtF32)):
        fn = getattr(lb, name)
        fn.argtypes = [P(pt), P(hostlib.View), P(hostlib.View), *_REGION]
        fn.restype = None
    return lb


def resize_struct(d: dict) -> ResizeP:
    return ResizeP(*[d[f] for f in rp.RESIZE_FIELDS])


def run_regions(fn, params, x: np.ndarray, out_shape, dtype, seed=0) -> np.ndarray:
    """Whole output in one call, then again in random sub-regions: both must agree."""
    x = np.ascontiguousarray(x)
    vin = hostlib.full_view(x)
    y = np.zeros(out_shape, dtype)
    vout = hostlib.full_view(y)
    ho, wo = out_shape[:2]
    fn(C.byref(params), C.byref(vin), C.byref(vout), 0, ho, 0, wo)
    y2 = np.full(out_shape, 77, dtype)
    v2 = hostlib.full_view(y2)
    rng = np.random.default_rng(seed)
    oy = 0
    while oy < ho:
        oy1 = min(ho, oy + int(rng.integers(1, 4)))
        ox = 0
        while ox < wo:
            ox1 = min(wo, ox + int(rng.integers(1, 4)))
            fn(C.byref(params), C.byref(vin), C.byref(v2), oy, oy1, ox, ox1)
            ox = ox1
        oy = oy1
    assert np.array_equal(y, y2), "region-wise result differs from the whole-output call"
    return y


# ------------------------------------------------------------------------------------------------
# onnxruntime oracles
# ------------------------------------------------------------------------------------------------

def _ort_run(model, feeds: dict, opt: bool = True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if not opt:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def _nchw(x_hwc):
    return np.ascontiguousarray(x_hwc.transpose(2, 0, 1)[None])


def _hwc(y_nchw):
    return np.ascontiguousarray(y_nchw[0].transpose(1, 2, 0))


def ort_resize(x_hwc, opset, mode, coord, nearest_mode, scales=None, sizes=None, opt=True):
    h, w, c = x_hwc.shape
    elem = helper.np_dtype_to_tensor_dtype(x_hwc.dtype)
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    if scales is not None:
        inits.append(numpy_helper.from_array(
            np.array([1, 1, scales[0], scales[1]], np.float32), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.zeros(0, np.float32), "scales"))
        inits.append(numpy_helper.from_array(np.array([1, c, sizes[0], sizes[1]], np.int64),
                                             "sizes"))
        ins = ["x", "roi", "scales", "sizes"]
    attrs = dict(mode=mode, coordinate_transformation_mode=coord)
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    node = helper.make_node("Resize", ins, ["y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, [1, c, h, w])],
                          [helper.make_tensor_value_info("y", elem, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9 if opset >= 19 else 8
    return _hwc(_ort_run(m, {"x": _nchw(x_hwc)}, opt))


COORDS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
          "tf_half_pixel_for_nn"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
NICE_SCALES = [0.5, 0.6, 0.75, 1.0, 1.25, 1.3, 1.5, 2.0, 2.5, 3.0, 1 / 3, 0.4, 4.0]


def _resize_case(seed):
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 5))
    use_scales = bool(rng.integers(0, 2))
    if use_scales:
        if rng.integers(0, 3) == 0:
            scales = [float(np.float32(rng.uniform(0.3, 3.6))) for _ in range(2)]
        else:
            scales = [float(rng.choice(NICE_SCALES)) for _ in range(2)]
        # keep the output non-empty
        scales = [max(s, 1.01 / n) for s, n in zip(scales, (h, w))]
        sizes = None
    else:
        scales = None
        sizes = [int(rng.integers(1, 17)), int(rng.integers(1, 17))]
    opset = int(rng.choice([11, 13, 17, 19]))
    return rng, (h, w, c), scales, sizes, opset


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("coord", COORDS)
def test_resize_f32_vs_onnxruntime(lib, mode, coord):
    n_exact = n_total = 0
    for seed in range(24):
        rng, (h, w, c), scales, sizes, opset = _resize_case(seed * 31 + len(coord))
        nm = NEAREST_MODES[seed % 4]
        d = rp.onnx_resize_params(mode, (h, w), coord=coord, nearest_mode=nm, scales=scales,
                                  sizes=sizes)
        x = rng.standard_normal((h, w, c)).astype(np.float32)
        want = ort_resize(x, opset, mode, coord, nm, scales, sizes, opt=bool(seed % 2))
        oh, ow = d["out_hw"]
        assert want.shape == (oh, ow, c), (want.shape, d["out_hw"], scales, sizes)
        got = run_regions(lib.msf_resize_f32, resize_struct(d), x, (oh, ow, c), np.float32, seed)
        ctx = f"seed {seed} {h}x{w}x{c} scales={scales} sizes={sizes} {nm} opset {opset}"
        if mode == "nearest":
            assert np.array_equal(got, want), ctx
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=ctx)
        n_exact += int(np.array_equal(got, want))
        n_total += 1
    assert n_total > 10
    if mode == "linear":
        # same float32 coordinate arithmetic and product order as ORT's UpsampleBilinear
        assert n_exact == n_total


def test_resize_nearest_s8_vs_onnxruntime(lib):
    """int8 ONNX Resize nearest (ORT's int8 kernel maps indices like the float one)."""
    for seed in range(40):
        rng, (h, w, c), scales, sizes, opset = _resize_case(1000 + seed)
        opset = max(opset, 13)
        coord = COORDS[seed % 5]
        nm = NEAREST_MODES[(seed // 5) % 4]
        d = rp.onnx_resize_params("nearest", (h, w), coord=coord, nearest_mode=nm,
                                  scales=scales, sizes=sizes)
        x = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
        want = ort_resize(x, opset, "nearest", coord, nm, scales, sizes)
        oh, ow = d["out_hw"]
        got = run_regions(lib.msf_resize_s8, resize_struct(d), x, (oh, ow, c), np.int8, seed)
        assert np.array_equal(got, want), f"seed {seed} {coord} {nm}"


def test_resize_exact_ties(lib):
    """Exact .5 source coordinates (integer factors): the nearest_mode tie rules and ORT's
    down-sampling handling; every mode / coord / 2x, 4x up and 1/2, 1/4 down."""
    rng = np.random.default_rng(7)
    for coord in COORDS:
        for nm in NEAREST_MODES:
            for scales in ([2.0, 4.0], [0.5, 0.25], [4.0, 0.5], [3.0, 1.5]):
                h, w, c = 8, 8, 2
                x = rng.standard_normal((h, w, c)).astype(np.float32)
                d = rp.onnx_resize_params("nearest", (h, w), coord=coord, nearest_mode=nm,
                                          scales=scales)
                want = ort_resize(x, 17, "nearest", coord, nm, scales=scales)
                got = run_regions(lib.msf_resize_f32, resize_struct(d), x,
                                  d["out_hw"] + (c,), np.float32)
                assert np.array_equal(got, want), (coord, nm, scales)


# (coordinate mode, in, out) with `sizes` whose float32 source coordinates land one ulp off an
# exact .5 (ORT 1.32 treats |frac - .5| <= 1e-6 as a tie) or exactly on one (issue #28291)
NEAR_TIES = [("asymmetric", 21, 12), ("asymmetric", 30, 4), ("asymmetric", 13, 2),
             ("asymmetric", 7, 32), ("half_pixel", 14, 31), ("half_pixel", 20, 6),
             ("pytorch_half_pixel", 20, 26), ("tf_half_pixel_for_nn", 29, 15),
             ("tf_half_pixel_for_nn", 23, 29), ("asymmetric", 17, 17)]


def test_resize_near_ties(lib):
    rng = np.random.default_rng(9)
    for coord, n_in, n_out in NEAR_TIES:
        for nm in NEAREST_MODES:
            for hw_in, hw_out in (((3, n_in), (5, n_out)), ((n_in, 2), (n_out, 2))):
                x = rng.standard_normal(hw_in + (2,)).astype(np.float32)
                d = rp.onnx_resize_params("nearest", hw_in, coord=coord, nearest_mode=nm,
                                          sizes=hw_out)
                want = ort_resize(x, 13, "nearest", coord, nm, sizes=hw_out)
                got = run_regions(lib.msf_resize_f32, resize_struct(d), x, hw_out + (2,),
                                  np.float32)
                assert np.array_equal(got, want), (coord, nm, hw_in, hw_out)


def test_resize_same_shape_is_a_copy(lib):
    """ORT copies the input when the output shape equals the input shape, whatever the scales
    say (here 1.1: int(1.1 * 5) = 5); an axis keeps its transform when only the other changes."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    for mode in ("nearest", "linear"):
        for scales in ((1.1, 1.1), (1.1, 2.0)):
            d = rp.onnx_resize_params(mode, (5, 4), coord="asymmetric", nearest_mode="floor",
                                      scales=scales)
            want = ort_resize(x, 13, mode, "asymmetric", "floor", scales=scales)
            got = run_regions(lib.msf_resize_f32, resize_struct(d), x, d["out_hw"] + (3,),
                              np.float32)
            assert np.array_equal(got, want), (mode, scales)
            if scales == (1.1, 1.1):
                assert np.array_equal(got, x)


def test_resize_torch_unet_modes(lib):
    """The two Resize forms a torch U-Net exports: bilinear align_corners=False (half_pixel,
    opset 17, scales) and nearest (asymmetric / floor), 2x up on 'odd' shapes."""
    rng = np.random.default_rng(3)
    for h, w in ((5, 7), (1, 1), (16, 12)):
        x = rng.standard_normal((h, w, 8)).astype(np.float32)
        for mode, coord, nm in (("linear", "half_pixel", "round_prefer_floor"),
                                ("linear", "pytorch_half_pixel", "round_prefer_floor"),
                                ("nearest", "asymmetric", "floor")):
            d = rp.onnx_resize_params(mode, (h, w), coord=coord, nearest_mode=nm,
                                      scales=(2.0, 2.0))
            want = ort_resize(x, 17, mode, coord, nm, scales=(2.0, 2.0))
            got = run_regions(lib.msf_resize_f32, resize_struct(d), x, (2 * h, 2 * w, 8),
                              np.float32)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# tflite-micro oracles (one-op .tflite files written with tests/tflite_builder.py)
# ------------------------------------------------------------------------------------------------

INT8, INT32, FLOAT32 = ModelWriter.INT8, ModelWriter.INT32, 0  # TFLite TensorType codes


OP_RESIZE_BILINEAR = tflite.BuiltinOperator.RESIZE_BILINEAR
OP_RESIZE_NEAREST = tflite.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR
OP_TRANSPOSE_CONV = tflite.BuiltinOperator.TRANSPOSE_CONV
ACT = {"none": 0, "relu": 1, "relu6": 3}


def _resize_opts(nearest: bool, align: bool, half: bool):
    if nearest:
        def f(b):
            tflite.ResizeNearestNeighborOptionsStart(b)
            tflite.ResizeNearestNeighborOptionsAddAlignCorners(b, align)
            tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters(b, half)
            return tflite.ResizeNearestNeighborOptionsEnd(b)
        return tflite.BuiltinOptions.ResizeNearestNeighborOptions, f

    def g(b):
        tflite.ResizeBilinearOptionsStart(b)
        tflite.ResizeBilinearOptionsAddAlignCorners(b, align)
        tflite.ResizeBilinearOptionsAddHalfPixelCenters(b, half)
        return tflite.ResizeBilinearOptionsEnd(b)
    return tflite.BuiltinOptions.ResizeBilinearOptions, g


def _tconv_opts(padding: str, stride, act: str):
    def f(b):
        tflite.TransposeConvOptionsStart(b)
        tflite.TransposeConvOptionsAddPadding(b, 0 if padding == "SAME" else 1)
        tflite.TransposeConvOptionsAddStrideH(b, stride[0])
        tflite.TransposeConvOptionsAddStrideW(b, stride[1])
        tflite.TransposeConvOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.TransposeConvOptionsEnd(b)
    return tflite.BuiltinOptions.TransposeConvOptions, f


def tflm_run(model: bytes, x: np.ndarray) -> np.ndarray:
    it = tflm_runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    it.set_input(x[None], 0)
    it.invoke()
    return np.array(it.get_output(0))[0]


def tflite_resize_model(nearest, hwc, out_hw, align, half, dtype, scale=0.05, zp=3) -> bytes:
    h, w, c = hwc
    wr = ModelWriter()
    if dtype == np.int8:
        x = wr.tensor([1, h, w, c], INT8, scale, zp)
        y_t = lambda: wr.tensor([1, out_hw[0], out_hw[1], c], INT8, scale, zp)  # noqa: E731
    else:
        x = wr.tensor([1, h, w, c], FLOAT32)
        y_t = lambda: wr.tensor([1, out_hw[0], out_hw[1], c], FLOAT32)  # noqa: E731
    size = wr.tensor([2], INT32, data=np.array(out_hw, np.int32))
    y = y_t()
    wr.op(OP_RESIZE_NEAREST if nearest else OP_RESIZE_BILINEAR, [x, size], [y],
          *_resize_opts(nearest, align, half))
    return wr.build([x], [y])


FLAG_COMBOS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("nearest", [True, False])
@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_resize_vs_tflite_micro(lib, nearest, dtype):
    n = 0
    for seed in range(48):
        rng = np.random.default_rng(seed + (0 if nearest else 500))
        align, half = FLAG_COMBOS[seed % 4]
        if not nearest and align and half:
            continue  # TFLM rejects this combination for RESIZE_BILINEAR
        h, w, c = int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 5))
        if seed % 3 == 0:  # integer factors (the U-Net case)
            f = int(rng.choice([2, 3, 4]))
            oh, ow = h * f, w * f
        else:
            oh, ow = int(rng.integers(1, 19)), int(rng.integers(1, 19))
        model = tflite_resize_model(nearest, (h, w, c), (oh, ow), align, half, dtype)
        if dtype == np.int8:
            x = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
            q = dict(in_quant=(0.05, 3), out_quant=(0.05, 3))
            fn = lib.msf_resize_s8
        else:
            x = rng.standard_normal((h, w, c)).astype(np.float32)
            q = {}
            fn = lib.msf_resize_f32
        d = rp.tflite_resize_params("nearest" if nearest else "bilinear", (h, w), (oh, ow),
                                    align_corners=align, half_pixel_centers=half, **q)
        want = tflm_run(model, x)
        got = run_regions(fn, resize_struct(d), x, (oh, ow, c), dtype, seed)
        ctx = f"seed {seed}: {h}x{w}x{c} -> {oh}x{ow} align={align} half={half}"
        if dtype == np.int8 or nearest:
            assert np.array_equal(got, want), ctx
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=ctx)
        n += 1
    assert n >= 36


def test_tflite_resize_params_rejects():
    with pytest.raises(AssertionError):
        rp.tflite_resize_params("bilinear", (4, 4), (8, 8), in_quant=(0.05, 3),
                                out_quant=(0.05, 4))
    with pytest.raises(ValueError):
        rp.tflite_resize_params("bilinear", (4, 4), (8, 8), align_corners=True,
                                half_pixel_centers=True)
    with pytest.raises(ValueError):
        rp.onnx_resize_params("nearest", (4, 4), coord="tf_crop_and_resize", scales=(2, 2))


# ------------------------------------------------------------------------------------------------
# transposed convolution
# ------------------------------------------------------------------------------------------------

def _convt_f32_struct(g: dict, w_ohwi, bias, act=(-F32_MAX, F32_MAX)):
    return ConvtF32(g["kh"], g["kw"], g["sh"], g["sw"], g["dh"], g["dw"], g["pad_top"],
                    g["pad_left"], act[0], act[1], hostlib.ptr(w_ohwi, C.c_float),
                    hostlib.ptr(bias, C.c_float))


def ort_convt(x_hwc, w_onnx, bias, attrs: dict, relu: bool, opt: bool):
    h, w, c = x_hwc.shape
    inits = [numpy_helper.from_array(w_onnx, "w")]
    ins = ["x", "w"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        ins.append("b")
    nodes = [helper.make_node("ConvTranspose", ins, ["t" if relu else "y"], **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["t"], ["y"]))
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return _hwc(_ort_run(m, {"x": _nchw(x_hwc)}, opt))


def test_convt_f32_vs_onnxruntime(lib):
    n = 0
    for seed in range(70):
        rng = np.random.default_rng(seed)
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        dh, dw = (int(v) for v in rng.choice([1, 1, 2], 2))
        pads = [int(rng.integers(0, (kh - 1) * dh + 1)), int(rng.integers(0, (kw - 1) * dw + 1)),
                int(rng.integers(0, (kh - 1) * dh + 1)), int(rng.integers(0, (kw - 1) * dw + 1))]
        opad = [int(rng.integers(0, sh)), int(rng.integers(0, sw))]  # ORT: < stride
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        cin, cout = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        use_shape = seed % 7 == 3
        if use_shape:
            opad = [0, 0]  # ORT rejects output_padding together with output_shape
        try:
            if use_shape:
                full = [sh * (h - 1) + opad[0] + (kh - 1) * dh + 1,
                        sw * (w - 1) + opad[1] + (kw - 1) * dw + 1]
                oshape = [full[0] - int(rng.integers(0, 3)), full[1] - int(rng.integers(0, 3))]
                g = rp.convt_onnx_geometry((h, w), (kh, kw), (sh, sw), output_padding=opad,
                                           dilations=(dh, dw), output_shape=oshape)
            else:
                g = rp.convt_onnx_geometry((h, w), (kh, kw), (sh, sw), pads, opad, (dh, dw))
        except ValueError:
            continue  # empty output
        attrs = dict(kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
                     output_padding=opad)
        if use_shape:
            attrs["output_shape"] = oshape
        else:
            attrs["pads"] = pads
        x = rng.standard_normal((h, w, cin)).astype(np.float32)
        w_onnx = rng.standard_normal((cin, cout, kh, kw)).astype(np.float32)
        bias = rng.standard_normal(cout).astype(np.float32) if seed % 3 else None
        relu = seed % 4 == 1
        want = ort_convt(x, w_onnx, bias, attrs, relu, opt=bool(seed % 2))
        oh, ow = g["out_hw"]
        assert want.shape == (oh, ow, cout), (want.shape, g, attrs)
        w_ohwi = rp.convt_weights_from_onnx(w_onnx)
        p = _convt_f32_struct(g, w_ohwi, bias, (0.0, F32_MAX) if relu else (-F32_MAX, F32_MAX))
        lib.msf_macs_reset()
        got = run_regions(lib.msf_convt_f32, p, x, (oh, ow, cout), np.float32, seed)
        # nominal MACs: kh*kw*C_in per output element, twice (whole + regions)
        assert lib.msf_macs_get() == 2 * oh * ow * cout * kh * kw * cin
        scale = float(np.abs(want).max()) + 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"seed {seed} {attrs} {h}x{w}x{cin}->{cout}")
        n += 1
    assert n >= 60


def test_convt_f32_unet_2x2_stride2(lib):
    """torch.nn.ConvTranspose2d(k=2, s=2): every output pixel gets exactly one tap."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 5, 16)).astype(np.float32)
    w_onnx = rng.standard_normal((16, 8, 2, 2)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    g = rp.convt_onnx_geometry((6, 5), (2, 2), (2, 2))
    want = ort_convt(x, w_onnx, b, dict(kernel_shape=[2, 2], strides=[2, 2]), False, True)
    w_ohwi = rp.convt_weights_from_onnx(w_onnx)  # kept alive while the struct points at it
    p = _convt_f32_struct(g, w_ohwi, b)
    got = run_regions(lib.msf_convt_f32, p, x, (12, 10, 8), np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _act_range(act: str, so: float, zo: int):
    """TFLM CalculateActivationRangeQuantized: zp + TfLiteRound(f / scale) in float32."""
    def q(f):
        v = float(np.float32(f) / np.float32(so))
        return zo + int(np.sign(v) * np.floor(abs(v) + 0.5))
    if act == "relu":
        return max(-128, q(0.0)), 127
    if act == "relu6":
        return max(-128, q(0.0)), min(127, q(6.0))
    return -128, 127


def tflite_tconv_model(rng, hwc, cout, k, s, out_hw, padding, act, with_bias, per_channel):
    h, w, cin = hwc
    wr = ModelWriter()
    xs, xz = np.float32(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 20))
    ws = (rng.uniform(0.002, 0.02, cout) if per_channel
          else np.full(cout, rng.uniform(0.002, 0.02))).astype(np.float32)
    taps = max(1, (k[0] * k[1] * cin) // (s[0] * s[1]))
    ys = np.float32(xs * float(ws.mean()) * 60 * np.sqrt(taps) * rng.choice([0.3, 1.0, 2.0]))
    yz = int(rng.integers(-20, 20))
    wq = rng.integers(-127, 128, (cout, k[0], k[1], cin), dtype=np.int8)
    oshape = wr.tensor([4], INT32, data=np.array([1, out_hw[0], out_hw[1], cout], np.int32))
    nq = cout if per_channel else 1  # per-tensor weights: ONE scale entry
    wt = wr.tensor([cout, k[0], k[1], cin], INT8, ws[:nq], np.zeros(nq, np.int64), qdim=0,
                   data=wq)
    x = wr.tensor([1, h, w, cin], INT8, xs, xz)
    ins = [oshape, wt, x]
    bias = None
    if with_bias:
        bias = rng.integers(-3000, 3000, cout, dtype=np.int32)
        bt = wr.tensor([cout], INT32, (xs * ws[:nq]).astype(np.float32),
                       np.zeros(nq, np.int64), qdim=0, data=bias)
        ins.append(bt)
    y = wr.tensor([1, out_hw[0], out_hw[1], cout], INT8, ys, yz)
    wr.op(OP_TRANSPOSE_CONV, ins, [y], *_tconv_opts(padding, s, act))
    return wr.build([x], [y]), dict(xs=xs, xz=xz, ws=ws[:nq], ys=ys, yz=yz, wq=wq, bias=bias)


def test_convt_s8_vs_tflite_micro(lib):
    n = 0
    for seed in range(60):
        rng = np.random.default_rng(seed + 7000)
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        cin, cout = int(rng.integers(1, 9)), int(rng.integers(1, 7))
        padding = "SAME" if seed % 2 else "VALID"
        # any output extent TF's shape rule maps back to (h, w)
        if padding == "SAME":
            oh = h * sh - int(rng.integers(0, sh))
            ow = w * sw - int(rng.integers(0, sw))
        else:
            oh = (h - 1) * sh + kh + int(rng.integers(0, sh))
            ow = (w - 1) * sw + kw + int(rng.integers(0, sw))
        act = ["none", "relu", "relu6"][seed % 3]
        with_bias = seed % 4 != 0
        per_channel = seed % 5 != 0
        model, q = tflite_tconv_model(rng, (h, w, cin), cout, (kh, kw), (sh, sw), (oh, ow),
                                      padding, act, with_bias, per_channel)
        x = rng.integers(-128, 128, (h, w, cin), dtype=np.int8)
        want = tflm_run(model, x)
        g = rp.convt_tflite_geometry((oh, ow), (kh, kw), (sh, sw), padding)
        qmul, qshift = requant.conv_fixed_multipliers(q["xs"], q["ws"], q["ys"])
        amin, amax = _act_range(act, q["ys"], q["yz"])
        w_ohwi = rp.convt_weights_from_tflite(q["wq"])
        rq = hostlib.Requant(hostlib.MSF_RQ_FIXED, int(per_channel), hostlib.ptr(None, C.c_float),
                             hostlib.ptr(qmul, C.c_int32), hostlib.ptr(qshift, C.c_int32))
        p = ConvtS8(g["kh"], g["kw"], g["sh"], g["sw"], 1, 1, g["pad_top"], g["pad_left"],
                    q["xz"], q["yz"], amin, amax, hostlib.ptr(w_ohwi, C.c_int8),
                    hostlib.ptr(q["bias"], C.c_int32), rq)
        got = run_regions(lib.msf_convt_s8, p, x, (oh, ow, cout), np.int8, seed)
        assert np.array_equal(got, want), (
            f"seed {seed}: {h}x{w}x{cin} k{kh}x{kw} s{sh}x{sw} -> {oh}x{ow}x{cout} {padding} "
            f"{act} bias={with_bias}: {np.count_nonzero(got != want)} differ")
        assert len(np.unique(want)) > 2 or oh * ow * cout < 8  # not a saturated blank
        n += 1
    assert n == 60


# ------------------------------------------------------------------------------------------------
# C unit tests (ASan / UBSan)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["test_resize", "test_convt"])
def test_c_unit_tests(tmp_path, name):
    exe = hostlib.build_exe(TESTS_C / f"{name}.c", tmp_path / name,
                            ["-I", str(TESTS_C), "-DMSF_CHECK_BOUNDS",
                             "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                             "-fno-omit-frame-pointer"])
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout
