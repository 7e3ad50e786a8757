"""Differential tests of the C kernels (mcu_runtime/src) against onnxruntime.

int8 kernels (MSF_RQ_FLOAT mode) must be byte-exact with onnxruntime's QOperator kernels
(QLinearConv, QLinearAveragePool, QLinearGlobalAveragePool, QGemm, QLinearAdd, int8 MaxPool,
int8 Clip for relu/relu6); float kernels agree to 1e-5.  The MSF_RQ_FIXED (TFLite Micro) mode
is checked against a Python transcription of the TFLM reference kernels.  The C unit tests of
mcu_runtime/tests_c are compiled with ASan/UBSan and run here too.
"""
from __future__ import annotations

import ctypes as C
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import require_tools
from onnx import helper, numpy_helper

from msfopt.ir import quantize_linear_clamp  # the int8 Clip bounds put in BOTH the ORT graph
from msfopt.mcu_runtime import hostlib      # the C runtime, built for the host
from msfopt.mcu_runtime import runtime_files
from msfopt.mcu_runtime import requant      # and the C params (a parameter, not an oracle)
from kernel_refs import mbqm, rdbpot, srdhm  # Python transcriptions of the TFLM primitives

ROOT = Path(__file__).resolve().parent.parent
TESTS_C = ROOT / "mcu_runtime" / "tests_c"
N_CASES = 60  # random cases per kernel family


@pytest.fixture(scope="module")
def lib():
    return hostlib.load(hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all"]))


# -- ONNX helpers ----------------------------------------------------------------------------------

def _run(nodes, inputs: dict, out_name: str, inits: list, opt=True):
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    out_dtype = helper.np_dtype_to_tensor_dtype(next(iter(inputs.values())).dtype)
    vout = [helper.make_tensor_value_info(out_name, out_dtype, None)]
    g = helper.make_graph(nodes, "g", vin, vout, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not opt:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, inputs)[0]


def _t(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _nchw(x_hwc):
    return np.ascontiguousarray(x_hwc.transpose(2, 0, 1)[None])


def _hwc(y_nchw):
    return np.ascontiguousarray(y_nchw[0].transpose(1, 2, 0))


def _clip_node(src, dst, lo, hi, dtype, inits):
    inits += [_t(dst + "_lo", np.array(lo, dtype=dtype)), _t(dst + "_hi", np.array(hi, dtype=dtype))]
    return helper.make_node("Clip", [src, dst + "_lo", dst + "_hi"], [dst])


# -- random geometry ---------------------------------------------------------------------------------

def rand_window(rng, kmax=5, smax=3, hmax=10):
    kh, kw = (int(v) for v in rng.integers(1, kmax + 1, 2))
    sh, sw = (int(v) for v in rng.integers(1, smax + 1, 2))
    pad = (int(rng.integers(0, kh)), int(rng.integers(0, kw)), int(rng.integers(0, kh)),
           int(rng.integers(0, kw)))
    h = int(rng.integers(max(1, kh - pad[0] - pad[2]), hmax + 1))
    w = int(rng.integers(max(1, kw - pad[1] - pad[3]), hmax + 1))
    ho = (h + pad[0] + pad[2] - kh) // sh + 1
    wo = (w + pad[1] + pad[3] - kw) // sw + 1
    return (kh, kw), (sh, sw), pad, h, w, ho, wo


def rand_scales(rng, k_terms, tie: bool):
    """(x_scale, w_scale, y_scale); tie=True gives power-of-two multipliers: many .5 ties."""
    if tie:
        xs = 2.0 ** -int(rng.integers(2, 6))
        ws = 2.0 ** -int(rng.integers(2, 6))
        ys = xs * ws * 2.0 ** int(rng.integers(1, 4))
        return np.float32(xs), np.float32(ws), np.float32(ys)
    xs = np.float32(rng.uniform(0.005, 0.1))
    ws = np.float32(rng.uniform(0.002, 0.05))
    # spread: sometimes small y_scale -> heavy saturation
    ys = np.float32(xs * ws * np.sqrt(k_terms) * 40 * rng.choice([0.05, 0.5, 1.0, 2.0]))
    return xs, ws, ys


ACTS = ("none", "relu", "relu6")


# -- conv / depthwise -----------------------------------------------------------------------------------

def conv_case(seed, dw=False):
    rng = np.random.default_rng(seed)
    (kh, kw), (sh, sw), pad, h, w, ho, wo = rand_window(rng)
    if dw:
        cin = int(rng.integers(1, 9))
        groups, cout = cin, cin
    else:
        groups = int(rng.choice([1, 1, 2, 3]))
        cin = groups * int(rng.integers(1, 4))
        cout = groups * int(rng.integers(1, 4))
    tie = seed % 3 == 0
    per_channel = bool(rng.integers(0, 2))
    xs, ws, ys = rand_scales(rng, kh * kw * cin // groups, tie)
    w_scale = (ws * rng.uniform(0.5, 1.5, cout).astype(np.float32)).astype(np.float32) \
        if per_channel and not tie else np.full(cout, ws, np.float32)
    x_zp = int(rng.integers(-128, 128))
    y_zp = int(rng.integers(-128, 128))
    w_zp = 0 if (per_channel or seed % 4) else int(rng.integers(-20, 21))
    x = rng.integers(-128, 128, (h, w, cin)).astype(np.int8)
    wt = rng.integers(-127, 128, (cout, kh, kw, cin // groups)).astype(np.int8)  # OHWI
    bias = rng.integers(-3000, 3000, cout).astype(np.int32)
    if tie:  # small accumulators: power-of-two multipliers then hit exact .5 ties in range
        x = np.clip(x_zp + rng.integers(-4, 5, x.shape), -128, 127).astype(np.int8)
        wt = rng.integers(-4, 5, wt.shape).astype(np.int8)
        bias = rng.integers(-20, 21, cout).astype(np.int32)
    act = ACTS[seed % 3 if not tie else (seed // 3) % 3]
    return dict(kernel=(kh, kw), stride=(sh, sw), pad=pad, groups=groups, x=x, wt=wt, bias=bias,
                xs=xs, w_scale=w_scale, ys=ys, x_zp=x_zp, y_zp=y_zp, w_zp=w_zp, act=act,
                per_channel=per_channel, out_shape=(ho, wo, cout))


def ort_qconv(cs, opt=True):
    inits = [_t("xs", np.float32(cs["xs"])), _t("xz", np.int8(cs["x_zp"])),
             _t("w", np.ascontiguousarray(cs["wt"].transpose(0, 3, 1, 2))),
             _t("ws", cs["w_scale"] if cs["per_channel"] else np.float32(cs["w_scale"][0])),
             _t("wz", np.full(len(cs["w_scale"]), cs["w_zp"], np.int8) if cs["per_channel"]
                else np.int8(cs["w_zp"])),
             _t("ys", np.float32(cs["ys"])), _t("yz", np.int8(cs["y_zp"])), _t("b", cs["bias"])]
    pt, pl, pb, pr = cs["pad"]
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                              ["y0"], kernel_shape=list(cs["kernel"]), strides=list(cs["stride"]),
                              pads=[pt, pl, pb, pr], group=cs["groups"])]
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    nodes.append(_clip_node("y0", "y", lo, hi, np.int8, inits))
    return _hwc(_run(nodes, {"x": _nchw(cs["x"])}, "y", inits, opt))


def c_qconv(lib, cs, mode=hostlib.MSF_RQ_FLOAT, dw=False):
    keep = []
    if mode == hostlib.MSF_RQ_FLOAT:
        fm = requant.conv_float_multipliers(cs["xs"], cs["w_scale"], cs["ys"])
        rq = hostlib.Requant(mode, 1, hostlib.ptr(fm, C.c_float), None, None)
        keep.append(fm)
    else:
        qm, qs = requant.conv_fixed_multipliers(cs["xs"], cs["w_scale"], cs["ys"])
        rq = hostlib.Requant(mode, 1, None, hostlib.ptr(qm, C.c_int32), hostlib.ptr(qs, C.c_int32))
        keep += [qm, qs]
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    wt = np.ascontiguousarray(cs["wt"])
    p = hostlib.ConvS8(hostlib.window(cs["kernel"], cs["stride"], cs["pad"]), cs["groups"],
                       cs["x_zp"], cs["w_zp"], cs["y_zp"], lo, hi, hostlib.ptr(wt, C.c_int8),
                       hostlib.ptr(cs["bias"], C.c_int32), rq)
    y = np.zeros(cs["out_shape"], np.int8)
    ho, wo, _ = cs["out_shape"]
    fn = lib.msf_dwconv2d_s8 if dw else lib.msf_conv2d_s8
    fn(C.byref(p), C.byref(hostlib.full_view(cs["x"])), C.byref(hostlib.full_view(y)), 0, ho, 0, wo)
    return y


@pytest.mark.parametrize("seed", range(N_CASES))
def test_qlinearconv_bit_exact(lib, seed):
    cs = conv_case(seed)
    ref = ort_qconv(cs)
    got = c_qconv(lib, cs)
    np.testing.assert_array_equal(got, ref)
    if seed % 10 == 0:  # the unoptimised graph gives the same bytes
        np.testing.assert_array_equal(ort_qconv(cs, opt=False), ref)


@pytest.mark.parametrize("seed", range(N_CASES))
def test_qlinearconv_depthwise_bit_exact(lib, seed):
    cs = conv_case(1000 + seed, dw=True)
    ref = ort_qconv(cs)
    np.testing.assert_array_equal(c_qconv(lib, cs, dw=True), ref)
    np.testing.assert_array_equal(c_qconv(lib, cs, dw=False), ref)  # generic conv, groups == C


def test_qlinearconv_ties_and_saturation_are_exercised(lib):
    """The case generator really produces .5 ties and saturated outputs."""
    ties = sat = 0
    for seed in range(N_CASES):
        cs = conv_case(seed)
        ref = ort_qconv(cs)
        # recompute the pre-rounding value in float32 exactly like the kernel
        fm = requant.conv_float_multipliers(cs["xs"], cs["w_scale"], cs["ys"])
        acc = _conv_acc_ref(cs)
        v = acc.astype(np.float32) * fm[None, None, :]
        lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
        inside = (v + cs["y_zp"] > lo) & (v + cs["y_zp"] < hi)
        ties += int(np.sum((np.abs(v - np.floor(v)) == 0.5) & inside))
        sat += int(np.sum((ref == 127) | (ref == -128)))
    assert ties > 200 and sat > 50, (ties, sat)


def _conv_acc_ref(cs):
    """int32 accumulators of a grouped conv (numpy reference)."""
    x = cs["x"].astype(np.int64) - cs["x_zp"]
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = cs["kernel"], cs["stride"], cs["pad"]
    xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)))
    wt = cs["wt"].astype(np.int64) - cs["w_zp"]
    ho, wo, cout = cs["out_shape"]
    g = cs["groups"]
    cig, cog = x.shape[2] // g, cout // g
    acc = np.zeros((ho, wo, cout), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            patch = xp[oy * sh:oy * sh + kh, ox * sw:ox * sw + kw, :]
            for oc in range(cout):
                gi = oc // cog
                acc[oy, ox, oc] = np.sum(patch[:, :, gi * cig:(gi + 1) * cig] * wt[oc])
    return (acc + cs["bias"][None, None, :]).astype(np.int64)


@pytest.mark.parametrize("seed", range(0, N_CASES, 2))
def test_conv_fixed_point_matches_tflm_reference(lib, seed):
    cs = conv_case(seed)
    acc = _conv_acc_ref(cs)
    qm, qs = requant.conv_fixed_multipliers(cs["xs"], cs["w_scale"], cs["ys"])
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    ref = np.empty(acc.shape, np.int8)
    for idx in np.ndindex(acc.shape):
        oc = idx[2]
        r = mbqm(int(acc[idx]), int(qm[oc]), int(qs[oc])) + cs["y_zp"]
        ref[idx] = min(max(r, -128, lo), 127, hi)
    np.testing.assert_array_equal(c_qconv(lib, cs, mode=hostlib.MSF_RQ_FIXED), ref)


# -- pools -------------------------------------------------------------------------------------------

def pool_case(seed):
    rng = np.random.default_rng(seed)
    (kh, kw), (sh, sw), pad, h, w, ho, wo = rand_window(rng, kmax=4)
    if seed % 7 == 0:  # whole-input window without pads: ORT's global-average fallback
        kh, kw, pad, sh, sw, ho, wo = h, w, (0, 0, 0, 0), 1, 1, 1, 1
    c = int(rng.integers(1, 9))
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    tie = seed % 3 == 0
    xs = np.float32(2.0 ** -int(rng.integers(2, 6)) if tie else rng.uniform(0.01, 0.1))
    ys = np.float32(xs * (2.0 ** int(rng.integers(-2, 3)) if tie else rng.uniform(0.3, 3.0)))
    return dict(kernel=(kh, kw), stride=(sh, sw), pad=pad, x=x, xs=xs, ys=ys,
                x_zp=int(rng.integers(-128, 128)), y_zp=int(rng.integers(-128, 128)),
                cip=int(rng.integers(0, 2)), act=ACTS[seed % 3], out_shape=(ho, wo, c))


def c_pool_s8(lib, cs, kind, mode=hostlib.MSF_RQ_FLOAT):
    ys, yz = (cs["xs"], cs["x_zp"]) if kind == "max" else (cs["ys"], cs["y_zp"])
    lo, hi = quantize_linear_clamp(cs["act"], ys, yz)
    p = hostlib.PoolS8(hostlib.window(cs["kernel"], cs["stride"], cs["pad"]), cs["cip"], mode,
                       cs["xs"], cs["ys"], cs["x_zp"], cs["y_zp"], lo, hi)
    y = np.zeros(cs["out_shape"], np.int8)
    ho, wo, _ = cs["out_shape"]
    fn = lib.msf_maxpool_s8 if kind == "max" else lib.msf_avgpool_s8
    fn(C.byref(p), C.byref(hostlib.full_view(cs["x"])), C.byref(hostlib.full_view(y)), 0, ho, 0, wo)
    return y


@pytest.mark.parametrize("seed", range(N_CASES))
def test_int8_maxpool_bit_exact(lib, seed):
    cs = pool_case(2000 + seed)
    pt, pl, pb, pr = cs["pad"]
    inits = []
    nodes = [helper.make_node("MaxPool", ["x"], ["y0"], kernel_shape=list(cs["kernel"]),
                              strides=list(cs["stride"]), pads=[pt, pl, pb, pr])]
    lo, hi = quantize_linear_clamp(cs["act"], cs["xs"], cs["x_zp"])
    nodes.append(_clip_node("y0", "y", lo, hi, np.int8, inits))
    ref = _hwc(_run(nodes, {"x": _nchw(cs["x"])}, "y", inits))
    np.testing.assert_array_equal(c_pool_s8(lib, cs, "max"), ref)


@pytest.mark.parametrize("seed", range(N_CASES))
def test_qlinear_avgpool_bit_exact(lib, seed):
    cs = pool_case(3000 + seed)
    pt, pl, pb, pr = cs["pad"]
    inits = [_t("xs", cs["xs"]), _t("xz", np.int8(cs["x_zp"])), _t("ys", cs["ys"]),
             _t("yz", np.int8(cs["y_zp"]))]
    nodes = [helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y0"],
                              domain="com.microsoft", kernel_shape=list(cs["kernel"]),
                              strides=list(cs["stride"]), pads=[pt, pl, pb, pr],
                              count_include_pad=cs["cip"])]
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    nodes.append(_clip_node("y0", "y", lo, hi, np.int8, inits))
    ref = _hwc(_run(nodes, {"x": _nchw(cs["x"])}, "y", inits))
    np.testing.assert_array_equal(c_pool_s8(lib, cs, "avg"), ref)


@pytest.mark.parametrize("seed", range(0, N_CASES, 2))
def test_avgpool_fixed_matches_tflm_reference(lib, seed):
    cs = pool_case(3000 + seed)
    cs["ys"], cs["y_zp"] = cs["xs"], cs["x_zp"]  # TFLM: same quantisation in and out
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = cs["kernel"], cs["stride"], cs["pad"]
    x = cs["x"].astype(np.int64)
    h, w, c = x.shape
    ho, wo, _ = cs["out_shape"]
    lo, hi = quantize_linear_clamp(cs["act"], cs["xs"], cs["x_zp"])
    ref = np.empty((ho, wo, c), np.int8)
    for oy in range(ho):
        for ox in range(wo):
            y0, x0 = oy * sh - pt, ox * sw - pl
            ys_, xs_ = slice(max(0, y0), min(h, y0 + kh)), slice(max(0, x0), min(w, x0 + kw))
            nvalid = (ys_.stop - ys_.start) * (xs_.stop - xs_.start)
            cnt = kh * kw if cs["cip"] else nvalid
            for ch in range(c):
                acc = int(x[ys_, xs_, ch].sum()) + (cnt - nvalid) * cs["x_zp"]
                q = (acc + cnt // 2) // cnt if acc > 0 else -((-acc + cnt // 2) // cnt)
                ref[oy, ox, ch] = min(max(q, -128, lo), 127, hi)
    np.testing.assert_array_equal(c_pool_s8(lib, cs, "avg", mode=hostlib.MSF_RQ_FIXED), ref)


# -- global average pool ---------------------------------------------------------------------------------

def gap_case(seed):
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 17))
    tie = seed % 3 == 0
    xs = np.float32(2.0 ** -int(rng.integers(2, 6)) if tie else rng.uniform(0.01, 0.1))
    ys = np.float32(xs * (2.0 ** int(rng.integers(-3, 2)) if tie else rng.uniform(0.1, 3.0)))
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    return dict(x=x, xs=xs, ys=ys, x_zp=int(rng.integers(-128, 128)),
                y_zp=int(rng.integers(-128, 128)), act=ACTS[seed % 3])


def c_gap_s8(lib, cs, mode=hostlib.MSF_RQ_FLOAT):
    h, w, c = cs["x"].shape
    fm = np.array([requant.gap_float_multiplier(cs["xs"], cs["ys"], h * w)], np.float32)
    qm, qs = requant.gap_fixed_multiplier(cs["xs"], cs["ys"])
    qm, qs = np.array([qm], np.int32), np.array([qs], np.int32)
    rq = hostlib.Requant(mode, 0, hostlib.ptr(fm, C.c_float), hostlib.ptr(qm, C.c_int32),
                         hostlib.ptr(qs, C.c_int32))
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    p = hostlib.GapS8(cs["x_zp"], cs["y_zp"], lo, hi, rq)
    y = np.zeros((1, 1, c), np.int8)
    lib.msf_gap_s8(C.byref(p), C.byref(hostlib.full_view(cs["x"])), C.byref(hostlib.full_view(y)))
    return y


@pytest.mark.parametrize("seed", range(N_CASES))
def test_qlinear_global_avgpool_bit_exact(lib, seed):
    cs = gap_case(4000 + seed)
    inits = [_t("xs", cs["xs"]), _t("xz", np.int8(cs["x_zp"])), _t("ys", cs["ys"]),
             _t("yz", np.int8(cs["y_zp"]))]
    nodes = [helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y0"],
                              domain="com.microsoft")]
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    nodes.append(_clip_node("y0", "y", lo, hi, np.int8, inits))
    ref = _hwc(_run(nodes, {"x": _nchw(cs["x"])}, "y", inits))
    np.testing.assert_array_equal(c_gap_s8(lib, cs), ref)


@pytest.mark.parametrize("seed", range(0, N_CASES, 2))
def test_gap_fixed_matches_tflm_mean(lib, seed):
    cs = gap_case(4000 + seed)
    x = cs["x"].astype(np.int64)
    h, w, c = x.shape
    n = h * w
    qm, qs = requant.gap_fixed_multiplier(cs["xs"], cs["ys"])
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    ref = np.empty((1, 1, c), np.int8)
    for ch in range(c):
        acc = mbqm(int((x[:, :, ch] - cs["x_zp"]).sum()), qm, qs)
        acc = (acc + n // 2) // n if acc > 0 else -((-acc + n // 2) // n)
        ref[0, 0, ch] = min(max(acc + cs["y_zp"], -128, lo), 127, hi)
    np.testing.assert_array_equal(c_gap_s8(lib, cs, mode=hostlib.MSF_RQ_FIXED), ref)


# -- dense (QGemm) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(N_CASES))
def test_qgemm_dense_bit_exact(lib, seed):
    rng = np.random.default_rng(5000 + seed)
    h, w, c = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 9))
    k, n = h * w * c, int(rng.integers(1, 20))
    tie = seed % 3 == 0
    per_channel = bool(rng.integers(0, 2)) and not tie
    xs, ws, ys = rand_scales(rng, k, tie)
    w_scale = (ws * rng.uniform(0.5, 1.5, n)).astype(np.float32) if per_channel \
        else np.full(n, ws, np.float32)
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    wt = rng.integers(-127, 128, (n, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, n).astype(np.int32)
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    act = ACTS[seed % 3]
    inits = [_t("as", xs), _t("az", np.int8(x_zp)), _t("B", wt),
             _t("bs", w_scale if per_channel else np.float32(ws)),
             _t("bz", np.zeros(n, np.int8) if per_channel else np.int8(0)), _t("C", bias),
             _t("ys", ys), _t("yz", np.int8(y_zp))]
    nodes = [helper.make_node("QGemm", ["A", "as", "az", "B", "bs", "bz", "C", "ys", "yz"],
                              ["y0"], domain="com.microsoft", transB=1)]
    lo, hi = quantize_linear_clamp(act, ys, y_zp)
    nodes.append(_clip_node("y0", "y", lo, hi, np.int8, inits))
    ref = _run(nodes, {"A": x.reshape(1, k)}, "y", inits).reshape(1, 1, n)
    fm = requant.conv_float_multipliers(xs, w_scale, ys)
    p = hostlib.DenseS8(x_zp, 0, y_zp, lo, hi, hostlib.ptr(wt, C.c_int8),
                        hostlib.ptr(bias, C.c_int32),
                        hostlib.Requant(hostlib.MSF_RQ_FLOAT, 1, hostlib.ptr(fm, C.c_float), None,
                                        None))
    y = np.zeros((1, 1, n), np.int8)
    lib.msf_dense_s8(C.byref(p), C.byref(hostlib.full_view(x)), C.byref(hostlib.full_view(y)))
    np.testing.assert_array_equal(y, ref)


# -- add (QLinearAdd) ----------------------------------------------------------------------------------------

def add_case(seed):
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    sa, sb, sc = (np.float32(v) for v in rng.uniform(0.002, 0.3, 3))
    if seed % 4 == 0:
        sa, sb, sc = np.float32(0.5), np.float32(0.25), np.float32(2.0 ** -int(rng.integers(0, 3)))
    return dict(a=rng.integers(-128, 128, (h, w, c)).astype(np.int8),
                b=rng.integers(-128, 128, (h, w, c)).astype(np.int8), sa=sa, sb=sb, sc=sc,
                za=int(rng.integers(-128, 128)), zb=int(rng.integers(-128, 128)),
                zc=int(rng.integers(-128, 128)), act=ACTS[seed % 3])


def c_add_s8(lib, cs, mode=hostlib.MSF_RQ_FLOAT, inplace=False):
    lo, hi = quantize_linear_clamp(cs["act"], cs["sc"], cs["zc"])
    m1, m2, fb = requant.add_float_params(cs["sa"], cs["za"], cs["sb"], cs["zb"], cs["sc"], cs["zc"])
    fx = requant.add_fixed_params(cs["sa"], cs["sb"], cs["sc"])
    p = hostlib.AddS8(mode, cs["za"], cs["zb"], cs["zc"], lo, hi, m1, m2, fb, fx["left_shift"],
                      fx["in1_mul"], fx["in1_shift"], fx["in2_mul"], fx["in2_shift"],
                      fx["out_mul"], fx["out_shift"])
    a = cs["a"].copy()
    y = a if inplace else np.zeros_like(a)
    h, w, _ = a.shape
    lib.msf_add_s8(C.byref(p), C.byref(hostlib.full_view(a)), C.byref(hostlib.full_view(cs["b"])),
                   C.byref(hostlib.full_view(y)), 0, h, 0, w)
    return y


@pytest.mark.parametrize("seed", range(N_CASES))
def test_qlinearadd_bit_exact(lib, seed):
    cs = add_case(6000 + seed)
    inits = [_t("sa", cs["sa"]), _t("za", np.int8(cs["za"])), _t("sb", cs["sb"]),
             _t("zb", np.int8(cs["zb"])), _t("sc", cs["sc"]), _t("zc", np.int8(cs["zc"]))]
    nodes = [helper.make_node("QLinearAdd", ["A", "sa", "za", "B", "sb", "zb", "sc", "zc"],
                              ["y0"], domain="com.microsoft")]
    lo, hi = quantize_linear_clamp(cs["act"], cs["sc"], cs["zc"])
    nodes.append(_clip_node("y0", "y", lo, hi, np.int8, inits))
    ref = _run(nodes, {"A": cs["a"][None], "B": cs["b"][None]}, "y", inits)[0]
    np.testing.assert_array_equal(c_add_s8(lib, cs), ref)
    np.testing.assert_array_equal(c_add_s8(lib, cs, inplace=True), ref)


def test_qlinearadd_all_input_pairs(lib):
    """All 65536 (a, b) pairs for a few scale sets, including ones where the FMA matters."""
    A = np.repeat(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256, 1)
    B = np.tile(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256, 1)
    rng = np.random.default_rng(77)
    for _ in range(6):
        cs = dict(a=A, b=B, act="none", za=int(rng.integers(-128, 128)),
                  zb=int(rng.integers(-128, 128)), zc=int(rng.integers(-128, 128)),
                  **{k: np.float32(rng.uniform(0.002, 0.3)) for k in ("sa", "sb", "sc")})
        inits = [_t("sa", cs["sa"]), _t("za", np.int8(cs["za"])), _t("sb", cs["sb"]),
                 _t("zb", np.int8(cs["zb"])), _t("sc", cs["sc"]), _t("zc", np.int8(cs["zc"]))]
        nodes = [helper.make_node("QLinearAdd", ["A", "sa", "za", "B", "sb", "zb", "sc", "zc"],
                                  ["y"], domain="com.microsoft")]
        ref = _run(nodes, {"A": A.reshape(1, -1), "B": B.reshape(1, -1)}, "y", inits)
        np.testing.assert_array_equal(c_add_s8(lib, cs).reshape(1, -1), ref)


def test_qlinearadd_reversed_operands_all_pairs(lib):
    """MSF_RQ_FLOAT_REV (ORT's first input A is the kernel's in2), fast path and reference loop,
    all 65536 pairs == onnxruntime's QLinearAdd(A, B), for scale sets where swapping A and B
    changes results (the plain mode with B taken as the first input differs)."""
    P = C.POINTER
    lib.msf_add_s8_ref.argtypes = [P(hostlib.AddS8), P(hostlib.View), P(hostlib.View),
                                   P(hostlib.View), C.c_int32, C.c_int32, C.c_int32, C.c_int32]
    A = np.repeat(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256, 1)
    B = np.tile(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256, 1)
    for (sa, za), (sb, zb), (sc, zc) in [((0.07540002465248108, -18), (0.13990002870559692, 3),
                                          (0.07, 3)),
                                         ((0.19309747219085693, 15), (0.10162035375833511, -14),
                                          (0.07, 3))]:
        inits = [_t("sa", np.float32(sa)), _t("za", np.int8(za)), _t("sb", np.float32(sb)),
                 _t("zb", np.int8(zb)), _t("sc", np.float32(sc)), _t("zc", np.int8(zc))]
        nodes = [helper.make_node("QLinearAdd", ["A", "sa", "za", "B", "sb", "zb", "sc", "zc"],
                                  ["y"], domain="com.microsoft")]
        ref = _run(nodes, {"A": A.reshape(1, -1), "B": B.reshape(1, -1)}, "y", inits)
        m1, m2, fb = requant.add_float_params(sa, za, sb, zb, sc, zc)   # ORT's (A, B) order
        n1, n2, fb2 = requant.add_float_params(sb, zb, sa, za, sc, zc)  # B taken as first
        outs = {}
        for mode, (k1, k2, f) in ((hostlib.MSF_RQ_FLOAT_REV, (m2, m1, fb)),
                                  (hostlib.MSF_RQ_FLOAT, (n1, n2, fb2))):
            u, w = B, A   # the kernel's in1 is B, in2 is A
            p = hostlib.AddS8(mode, 0, 0, zc, -128, 127, k1, k2, f, 0, 0, 0, 0, 0, 0, 0)
            for fn in (lib.msf_add_s8, lib.msf_add_s8_ref):
                y = np.zeros_like(A)
                fn(C.byref(p), C.byref(hostlib.full_view(u)), C.byref(hostlib.full_view(w)),
                   C.byref(hostlib.full_view(y)), 0, 256, 0, 256)
                outs[mode, fn.__name__] = y.reshape(1, -1)
        for fn in ("msf_add_s8", "msf_add_s8_ref"):
            np.testing.assert_array_equal(outs[hostlib.MSF_RQ_FLOAT_REV, fn], ref)
            assert (outs[hostlib.MSF_RQ_FLOAT, fn] != ref).any()


@pytest.mark.parametrize("seed", range(0, N_CASES, 2))
def test_add_fixed_matches_tflm_reference(lib, seed):
    cs = add_case(6000 + seed)
    fx = requant.add_fixed_params(cs["sa"], cs["sb"], cs["sc"])
    lo, hi = quantize_linear_clamp(cs["act"], cs["sc"], cs["zc"])
    ref = np.empty_like(cs["a"])
    for idx in np.ndindex(ref.shape):
        a1 = (int(cs["a"][idx]) - cs["za"]) << fx["left_shift"]
        b1 = (int(cs["b"][idx]) - cs["zb"]) << fx["left_shift"]
        s1 = rdbpot(srdhm(a1, fx["in1_mul"]), -fx["in1_shift"])
        s2 = rdbpot(srdhm(b1, fx["in2_mul"]), -fx["in2_shift"])
        r = rdbpot(srdhm(s1 + s2, fx["out_mul"]), -fx["out_shift"]) + cs["zc"]
        ref[idx] = min(max(r, -128, lo), 127, hi)
    np.testing.assert_array_equal(c_add_s8(lib, cs, mode=hostlib.MSF_RQ_FIXED), ref)


def test_add_float_params_python_equals_c(lib):
    rng = np.random.default_rng(3)
    for _ in range(300):
        sa, sb, sc = (float(np.float32(v)) for v in rng.uniform(1e-4, 1.0, 3))
        za, zb, zc = (int(v) for v in rng.integers(-128, 128, 3))
        m1, m2, fb = C.c_float(), C.c_float(), C.c_float()
        lib.msf_add_s8_float_params(sa, za, sb, zb, sc, zc, C.byref(m1), C.byref(m2), C.byref(fb))
        py = requant.add_float_params(sa, za, sb, zb, sc, zc)
        assert (np.float32(m1.value), np.float32(m2.value), np.float32(fb.value)) == py


# -- quantisation primitives -------------------------------------------------------------------------------

def test_round_half_even_and_fma(lib):
    rng = np.random.default_rng(11)
    vals = np.concatenate([np.arange(-300, 300) / 2.0, rng.uniform(-1e6, 1e6, 2000),
                           [8388607.5, -8388607.5, 8388608.0, 1e9, -1e9]]).astype(np.float32)
    for v in vals:
        assert lib.msf_round_half_even(float(v)) == int(np.rint(v)), v
    a = rng.uniform(-200, 200, 3000).astype(np.float32)
    b = (rng.uniform(-1, 1, 3000) * 2.0 ** rng.integers(-40, 5, 3000)).astype(np.float32)
    c = (rng.uniform(-300, 300, 3000) * 2.0 ** rng.integers(-30, 3, 3000)).astype(np.float32)
    # hard cases: products that land exactly on float32 midpoints plus tiny addends
    a[:500] = np.float32(1.0) + np.float32(2.0 ** -23)
    b[:500] = np.float32(1.0) + np.float32(2.0 ** -23) * rng.integers(1, 4, 500)
    c[:500] = (rng.choice([-1, 1], 500) * 2.0 ** rng.integers(-60, -40, 500)).astype(np.float32)
    for x, y, z in zip(a, b, c):
        assert np.float32(lib.msf_fmaf(float(x), float(y), float(z))) == requant.fma_f32(x, y, z)


def test_fixed_point_primitives_match_python(lib):
    rng = np.random.default_rng(12)
    i32 = lambda n: [int(v) for v in rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64)]
    specials = [-(1 << 31), (1 << 31) - 1, 0, 1, -1, 1 << 30, -(1 << 30)]
    for a, b in zip(i32(2000) + specials, i32(2000) + specials[::-1]):
        assert lib.msf_srdhm(a, b) == srdhm(a, b)
    for x, e in zip(i32(2000), rng.integers(0, 32, 2000)):
        assert lib.msf_rdbpot(x, int(e)) == rdbpot(x, int(e))
    for _ in range(2000):
        m = float(np.float32(rng.uniform(1e-5, 4.0)))
        qm, sh = requant.quantize_multiplier(m)
        x = int(rng.integers(-(1 << 20), 1 << 20))
        assert lib.msf_mbqm(x, qm, sh) == mbqm(x, qm, sh)
        assert abs(mbqm(x, qm, sh) - x * m) <= 1.0 + abs(x * m) * 1e-6
    # known values
    assert requant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert requant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert requant.quantize_multiplier(0.25) == (1 << 30, -1)
    assert requant.quantize_multiplier(1e-12) == (0, 0)


# -- float kernels ---------------------------------------------------------------------------------------------

def _act_f32(act):
    return {"none": (-hostlib.F32_MAX, hostlib.F32_MAX), "relu": (0.0, hostlib.F32_MAX),
            "relu6": (0.0, 6.0)}[act]


def _float_act_nodes(act, src, dst, inits):
    lo, hi = _act_f32(act)
    if act == "none":
        return [helper.make_node("Identity", [src], [dst])]
    return [_clip_node(src, dst, lo, hi, np.float32, inits)]


@pytest.mark.parametrize("seed", range(N_CASES))
def test_float_conv_and_dw(lib, seed):
    cs = conv_case(7000 + seed, dw=seed % 3 == 0)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, cs["x"].shape).astype(np.float32)
    wt = rng.uniform(-1, 1, cs["wt"].shape).astype(np.float32)
    bias = rng.uniform(-1, 1, len(cs["bias"])).astype(np.float32)
    pt, pl, pb, pr = cs["pad"]
    inits = [_t("w", np.ascontiguousarray(wt.transpose(0, 3, 1, 2))), _t("b", bias)]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y0"], kernel_shape=list(cs["kernel"]),
                              strides=list(cs["stride"]), pads=[pt, pl, pb, pr],
                              group=cs["groups"])]
    nodes += _float_act_nodes(cs["act"], "y0", "y", inits)
    ref = _hwc(_run(nodes, {"x": _nchw(x)}, "y", inits))
    lo, hi = _act_f32(cs["act"])
    p = hostlib.ConvF32(hostlib.window(cs["kernel"], cs["stride"], cs["pad"]), cs["groups"], lo, hi,
                        hostlib.ptr(wt, C.c_float), hostlib.ptr(bias, C.c_float))
    ho, wo, _ = cs["out_shape"]
    for fn in ([lib.msf_conv2d_f32, lib.msf_dwconv2d_f32] if seed % 3 == 0 else [lib.msf_conv2d_f32]):
        y = np.zeros(cs["out_shape"], np.float32)
        fn(C.byref(p), C.byref(hostlib.full_view(x)), C.byref(hostlib.full_view(y)), 0, ho, 0, wo)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(N_CASES))
def test_float_pools(lib, seed):
    cs = pool_case(8000 + seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, cs["x"].shape).astype(np.float32)
    pt, pl, pb, pr = cs["pad"]
    ho, wo, _ = cs["out_shape"]
    lo, hi = _act_f32(cs["act"])
    p = hostlib.PoolF32(hostlib.window(cs["kernel"], cs["stride"], cs["pad"]), cs["cip"], lo, hi)
    for op, fn in (("MaxPool", lib.msf_maxpool_f32), ("AveragePool", lib.msf_avgpool_f32)):
        inits = []
        attrs = dict(kernel_shape=list(cs["kernel"]), strides=list(cs["stride"]),
                     pads=[pt, pl, pb, pr])
        if op == "AveragePool":
            attrs["count_include_pad"] = cs["cip"]
        nodes = [helper.make_node(op, ["x"], ["y0"], **attrs)]
        nodes += _float_act_nodes(cs["act"], "y0", "y", inits)
        ref = _hwc(_run(nodes, {"x": _nchw(x)}, "y", inits))
        y = np.zeros(cs["out_shape"], np.float32)
        fn(C.byref(p), C.byref(hostlib.full_view(x)), C.byref(hostlib.full_view(y)), 0, ho, 0, wo)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(20))
def test_float_gap_dense_add(lib, seed):
    rng = np.random.default_rng(9000 + seed)
    h, w, c = (int(v) for v in rng.integers(1, 8, 3))
    act = ACTS[seed % 3]
    lo, hi = _act_f32(act)
    x = rng.uniform(-3, 3, (h, w, c)).astype(np.float32)
    pa = hostlib.ActF32(lo, hi)
    # GAP
    inits = []
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y0"])]
    nodes += _float_act_nodes(act, "y0", "y", inits)
    ref = _hwc(_run(nodes, {"x": _nchw(x)}, "y", inits))
    y = np.zeros((1, 1, c), np.float32)
    lib.msf_gap_f32(C.byref(pa), C.byref(hostlib.full_view(x)), C.byref(hostlib.full_view(y)))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    # dense (Gemm, transB over the HWC flattening)
    n, k = int(rng.integers(1, 12)), h * w * c
    wt = rng.uniform(-1, 1, (n, k)).astype(np.float32)
    bias = rng.uniform(-1, 1, n).astype(np.float32)
    inits = [_t("B", wt), _t("C", bias)]
    nodes = [helper.make_node("Gemm", ["A", "B", "C"], ["y0"], transB=1)]
    nodes += _float_act_nodes(act, "y0", "y", inits)
    ref = _run(nodes, {"A": x.reshape(1, k)}, "y", inits).reshape(1, 1, n)
    y = np.zeros((1, 1, n), np.float32)
    pd = hostlib.DenseF32(lo, hi, hostlib.ptr(wt, C.c_float), hostlib.ptr(bias, C.c_float))
    lib.msf_dense_f32(C.byref(pd), C.byref(hostlib.full_view(x)), C.byref(hostlib.full_view(y)))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    # add
    b = rng.uniform(-3, 3, (h, w, c)).astype(np.float32)
    inits = []
    nodes = [helper.make_node("Add", ["a", "b"], ["y0"])] + _float_act_nodes(act, "y0", "y", inits)
    ref = _hwc(_run(nodes, {"a": _nchw(x), "b": _nchw(b)}, "y", inits))
    y = np.zeros_like(x)
    lib.msf_add_f32(C.byref(pa), C.byref(hostlib.full_view(x)), C.byref(hostlib.full_view(b)),
                    C.byref(hostlib.full_view(y)), 0, h, 0, w)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=0)


# -- C unit tests (ASan + UBSan) ---------------------------------------------------------------------------

C_TESTS = sorted(p.stem for p in TESTS_C.glob("test_*.c"))


@pytest.mark.parametrize("name", C_TESTS)
def test_c_unit(name, tmp_path):
    exe = hostlib.build_exe(TESTS_C / f"{name}.c", tmp_path / name,
                            ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            "-fno-omit-frame-pointer"])
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout


@pytest.mark.parametrize("cc", ["arm-none-eabi-gcc", "riscv64-unknown-elf-gcc",
                                "xtensa-lx106-elf-gcc"])
def test_freestanding_cross_compile(cc, tmp_path):
    """The library compiles warning-free, freestanding, without any libc header, for the MCUs."""
    import shutil
    require_tools([cc] if shutil.which(cc) is None else [], "cross compiler")
    for src in runtime_files.SOURCES:
        subprocess.run([cc, *hostlib.STRICT_FLAGS, "-O2", "-ffreestanding", "-c",
                        str(runtime_files.SRC_DIR / src), "-o", str(tmp_path / (src + ".o"))],
                        check=True, capture_output=True, text=True)


# -- fast pool / add / dense / GAP paths on the MCU cores ------------------------------------------

@pytest.mark.parametrize("target", ["cortex-m4", "rv32imac", "cortex-m0"])
def test_fast_ops_equal_reference_on_target(target, tmp_path):
    """The fast pool / add / dense / GAP loops (mcu_runtime/tests_c/ops_diff.c: random shapes,
    zero points, requantisation corners, ring views) equal the reference loops byte for byte on
    cortex-m4 (SMLAD dense, hardware-FMA float add), rv32imac and cortex-m0 (portable C; the
    float add emulated in integers: no FPU; its ARMv6-M code on the larger map, the test's
    buffers exceed the micro:bit's 16 KiB) under QEMU."""
    from msfopt.mcu import larger_map
    from msfopt.mcu_runtime.crossbuild import build
    from msfopt.mcu_runtime.qemu import run
    from msfopt.mcu_runtime.toolchain import missing_tools
    require_tools(missing_tools(target), f"toolchain for {target}")
    srcs = [TESTS_C / "ops_diff_mcu.c", *(runtime_files.SRC_DIR / s for s in runtime_files.SOURCES)]
    target = larger_map(target) if target == "cortex-m0" else target
    b = build(target, srcs, [runtime_files.SRC_DIR, TESTS_C], tmp_path / "t",
              defines={"OD_CASES": 300},
              extra_cflags=["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wvla"], name="opsdiff")
    r = run(target, b, timeout_s=240, count_instructions=False)
    assert r.reports.get("cases") == 300, r.stdout
    assert r.reports.get("failures") == 0, r.stdout
    assert r.exit_code == 0, r.stdout
