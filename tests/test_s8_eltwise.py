"""int8 elementwise kernels of the C runtime (msf_s8_eltwise.c) vs the frameworks, exhaustively.

* Unary ops run as 256-entry tables (msf_lut_s8) computed by msfopt.mcu_runtime.eltwise_params:
  for every config, all 256 inputs through the C kernel == tflite-micro (one-op .tflite models)
  or onnxruntime (one-op QOperator / QDQ models, default optimisations and ORT_DISABLE_ALL).
* PReLU (msf_prelu_s8): all 256 inputs x every channel's slope.
* Mul (msf_mul_s8): all 65536 (a, b) pairs, same shape, channel broadcast and scalar operands.

The oracles are the frameworks themselves; the C library is built with bounds checking.
"""
from __future__ import annotations

import ctypes as C

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper
from onnx import numpy_helper as nh

from msfopt.mcu_runtime import eltwise_params as ep
from msfopt.mcu_runtime import hostlib

import tflite
from tflite_builder import ACT, BO, ModelWriter

from msfopt.tflm_ref import run_tflm

F32 = np.float32
TOP = {"HARD_SWISH": 117, "LOGISTIC": 14, "TANH": 28, "LEAKY_RELU": 98, "PRELU": 54, "MUL": 18,
       "QUANTIZE": 114, "RELU": 19, "RELU6": 21}
ALL8 = np.arange(-128, 128, dtype=np.int8)
HYP = settings(max_examples=12, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------------------------
# ctypes mirrors of msf_s8_eltwise.h
# ------------------------------------------------------------------------------------------------

class LutS8(C.Structure):
    _fields_ = [("table", C.POINTER(C.c_int8))]


class PreluS8(C.Structure):
    _fields_ = [("mode", C.c_int32), ("per_channel", C.c_int32), ("in_zp", C.c_int32),
                ("alpha_zp", C.c_int32), ("out_zp", C.c_int32),
                ("alpha_q", C.POINTER(C.c_int8)), ("mul1", C.c_int32), ("shift1", C.c_int32),
                ("mul2", C.c_int32), ("shift2", C.c_int32), ("alpha_f", C.POINTER(C.c_float)),
                ("in_scale", C.c_float), ("out_scale", C.c_float)]


class MulS8(C.Structure):
    _fields_ = [("mode", C.c_int32), ("bcast", C.c_int32), ("in1_zp", C.c_int32),
                ("in2_zp", C.c_int32), ("out_zp", C.c_int32), ("act_min", C.c_int32),
                ("act_max", C.c_int32), ("out_mul", C.c_int32), ("out_shift", C.c_int32),
                ("ratio", C.c_float), ("in1_scale", C.c_float), ("in2_scale", C.c_float),
                ("out_scale", C.c_float)]


_BOUNDS_MSGS: list[str] = []


@hostlib.BOUNDS_HOOK
def _bounds_hook(msg):
    _BOUNDS_MSGS.append(msg.decode())


@pytest.fixture(scope="module")
def lib():
    lib = hostlib.load(hostlib.build_shared(["-DMSF_CHECK_BOUNDS"]))
    P, V, R = C.POINTER, C.POINTER(hostlib.View), [C.c_int32] * 4
    lib.msf_lut_s8.argtypes = [P(LutS8), V, V, *R]
    lib.msf_prelu_s8.argtypes = [P(PreluS8), V, V, *R]
    lib.msf_mul_s8.argtypes = [P(MulS8), V, V, V, *R]
    for f in (lib.msf_lut_s8, lib.msf_prelu_s8, lib.msf_mul_s8):
        f.restype = None
    lib.msf_set_bounds_hook(_bounds_hook)
    base = lib.msf_bounds_failures()
    yield lib
    assert not _BOUNDS_MSGS, _BOUNDS_MSGS[:3]
    assert lib.msf_bounds_failures() == base + _INTENDED_FAILURES[0]


_INTENDED_FAILURES = [0]


def test_bounds_checking_is_active(lib):
    """The library under test checks every view access: a view whose buffer is one element too
    short is reported (so the kernels' clean runs below mean something)."""
    x = exhaustive_input().copy()
    y = np.empty_like(x)
    short = hostlib.full_view(x)
    short.cap = x.size - 1
    before = lib.msf_bounds_failures()
    table = np.zeros(256, np.int8)
    p = LutS8(hostlib.ptr(table, C.c_int8))
    lib.msf_lut_s8(p, short, hostlib.full_view(y), 0, 16, 0, 16)
    n = lib.msf_bounds_failures() - before
    assert n >= 1 and len(_BOUNDS_MSGS) == n
    _INTENDED_FAILURES[0] += n
    _BOUNDS_MSGS.clear()


def c_lut(lib, table, x_hwc):
    x = np.ascontiguousarray(x_hwc, np.int8)
    t = np.ascontiguousarray(table, np.int8)
    assert t.shape == (256,)
    y = np.empty_like(x)
    p = LutS8(hostlib.ptr(t, C.c_int8))
    lib.msf_macs_reset()
    lib.msf_lut_s8(p, hostlib.full_view(x), hostlib.full_view(y), 0, x.shape[0], 0, x.shape[1])
    assert lib.msf_macs_get() == 0
    return y


def _struct(cls, d, keep):
    vals = {}
    for name, ctype in cls._fields_:
        v = d[name]
        if isinstance(ctype, type) and issubclass(ctype, C._Pointer):
            if v is None:
                vals[name] = ctype()
            else:
                arr = np.ascontiguousarray(v, np.int8 if ctype._type_ is C.c_int8 else np.float32)
                keep.append(arr)
                vals[name] = arr.ctypes.data_as(ctype)
        else:
            vals[name] = v
    return cls(**vals)


def c_prelu(lib, params, x_hwc):
    keep = []
    p = _struct(PreluS8, params, keep)
    x = np.ascontiguousarray(x_hwc, np.int8)
    y = np.empty_like(x)
    lib.msf_prelu_s8(p, hostlib.full_view(x), hostlib.full_view(y), 0, x.shape[0], 0, x.shape[1])
    return y


def c_mul(lib, params, a_hwc, b_hwc):
    keep = []
    p = _struct(MulS8, params, keep)
    a = np.ascontiguousarray(a_hwc, np.int8)
    b = np.ascontiguousarray(b_hwc, np.int8)
    y = np.empty_like(a)
    lib.msf_mul_s8(p, hostlib.full_view(a), hostlib.full_view(b), hostlib.full_view(y),
                   0, a.shape[0], 0, a.shape[1])
    return y


def exhaustive_input():
    """all 256 int8 values as a 16 x 16 x 1 tensor (x = row-major value order)."""
    return ALL8.reshape(16, 16, 1)


# ------------------------------------------------------------------------------------------------
# tflite-micro oracle
# ------------------------------------------------------------------------------------------------

def _leaky_opts(alpha):
    def f(b):
        tflite.LeakyReluOptionsStart(b)
        tflite.LeakyReluOptionsAddAlpha(b, float(alpha))
        return tflite.LeakyReluOptionsEnd(b)
    return BO.LeakyReluOptions, f


def _mul_opts(act):
    def f(b):
        tflite.MulOptionsStart(b)
        tflite.MulOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.MulOptionsEnd(b)
    return BO.MulOptions, f


def tflm_unary(tmp_path, op, s_in, zp_in, s_out, zp_out, **attrs):
    """Run a one-op TFLite model on all 256 int8 values through tflite-micro."""
    w = ModelWriter()
    x = w.act([1, 16, 16, 1], s_in, zp_in)
    y = w.act([1, 16, 16, 1], s_out, zp_out)
    code = {"hard_swish": "HARD_SWISH", "logistic": "LOGISTIC", "tanh": "TANH",
            "leaky_relu": "LEAKY_RELU", "quantize": "QUANTIZE", "relu": "RELU",
            "relu6": "RELU6"}[op]
    opts = _leaky_opts(attrs["alpha"]) if op == "leaky_relu" else ()
    w.op(TOP[code], [x], [y], *opts)
    path = tmp_path / f"{op}.tflite"
    path.write_bytes(w.build([x], [y]))
    return run_tflm(path, [exhaustive_input()])[0].reshape(16, 16, 1)


scale = st.floats(0.004, 0.25).map(F32)
zp = st.integers(-128, 127)


@pytest.mark.parametrize("op", ["hard_swish", "leaky_relu", "quantize", "relu", "relu6"])
@HYP
@given(s_in=scale, zp_in=zp, s_out=scale, zp_out=zp, alpha=st.floats(-1.5, 1.5))
def test_tflm_unary_tables_exhaustive(lib, tmp_path, op, s_in, zp_in, s_out, zp_out, alpha):
    attrs = {"alpha": F32(alpha)} if op == "leaky_relu" else {}
    if op == "hard_swish":
        s_out = F32(max(float(s_out), float(s_in) / 100))  # TFLM: output multiplier < 1
    want = tflm_unary(tmp_path, op, s_in, zp_in, s_out, zp_out, **attrs)
    table = ep.tflm_table(op, s_in, zp_in, s_out, zp_out, **attrs)
    got = c_lut(lib, table, exhaustive_input())
    assert np.array_equal(got, want), (op, s_in, zp_in, s_out, zp_out, attrs,
                                       np.flatnonzero(got != want)[:8])


@pytest.mark.parametrize("op", ["logistic", "tanh"])
@HYP
@given(s_in=st.floats(0.002, 0.5).map(F32), zp_in=zp)
def test_tflm_logistic_tanh_exhaustive(lib, tmp_path, op, s_in, zp_in):
    out = (F32(1 / 256), -128) if op == "logistic" else (F32(1 / 128), 0)
    want = tflm_unary(tmp_path, op, s_in, zp_in, *out)
    got = c_lut(lib, ep.tflm_table(op, s_in, zp_in, *out), exhaustive_input())
    assert np.array_equal(got, want), (op, s_in, zp_in, np.flatnonzero(got != want)[:8])


def test_tflm_tables_fixed_cases(lib, tmp_path):
    """Hand-picked configs: MobileNetV3-like hard-swish scales, relu with equal / different
    quantisation, a tanh whose output quantisation TFLM ignores, a negative leaky alpha."""
    cases = [("hard_swish", 0.0235, -1, 0.0118, -105, {}),
             ("hard_swish", 0.1, 10, 0.05, -120, {}),
             ("hard_swish", 0.002, 0, 0.2, 5, {}),
             ("relu", 0.05, -3, 0.05, -3, {}),
             ("relu", 0.05, -3, 0.02, -128, {}),
             ("relu6", 0.03, -128, 0.03, -128, {}),
             ("relu6", 0.08, 50, 0.01, 0, {}),
             ("tanh", 0.04, 7, 0.05, 9, {}),
             ("leaky_relu", 0.03, 4, 0.02, -6, {"alpha": -0.7}),
             ("leaky_relu", 0.03, 4, 0.02, -6, {"alpha": 0.0}),
             ("quantize", 0.01, 0, 0.01, 0, {}),
             ("quantize", 0.2, -100, 0.003, 100, {})]
    for op, s_in, z_in, s_out, z_out, attrs in cases:
        want = tflm_unary(tmp_path, op, s_in, z_in, s_out, z_out, **attrs)
        got = c_lut(lib, ep.tflm_table(op, s_in, z_in, s_out, z_out, **attrs),
                    exhaustive_input())
        assert np.array_equal(got, want), (op, s_in, z_in, s_out, z_out, attrs)
    # the table is not trivially constant / identity for these ops
    t = ep.tflm_table("hard_swish", 0.0235, -1, 0.0118, -105)
    assert len(set(t.tolist())) > 50
    with pytest.raises(ValueError):
        ep.tflm_table("logistic", 0.1, 0, 1 / 256, 0)


def _prelu_tflm_model(s_in, zp_in, s_a, zp_a, alpha_q, s_out, zp_out):
    w = ModelWriter()
    c = len(alpha_q)
    x = w.act([1, 256, 1, c], s_in, zp_in)
    a = w.tensor([1, 1, c], w.INT8, s_a, zp_a, data=np.asarray(alpha_q, np.int8))
    y = w.act([1, 256, 1, c], s_out, zp_out)
    w.op(TOP["PRELU"], [x, a], [y])
    return w.build([x], [y])


@HYP
@given(s_in=scale, zp_in=zp, s_a=st.floats(0.002, 0.05).map(F32), zp_a=zp, s_out=scale,
       zp_out=zp, seed=st.integers(0, 2 ** 16))
def test_tflm_prelu_per_channel_exhaustive(lib, tmp_path, s_in, zp_in, s_a, zp_a, s_out, zp_out,
                                           seed):
    rng = np.random.default_rng(seed)
    alpha_q = rng.integers(-128, 128, 6).astype(np.int8)
    alpha_q[0] = zp_a  # slope exactly 0 in one channel
    path = tmp_path / "prelu.tflite"
    path.write_bytes(_prelu_tflm_model(s_in, zp_in, s_a, zp_a, alpha_q, s_out, zp_out))
    x = np.repeat(ALL8[:, None, None], 6, axis=2)  # 256 x 1 x 6: every value in every channel
    want = run_tflm(path, [x])[0].reshape(256, 1, 6)
    p = ep.prelu_params_tflm(s_in, zp_in, s_a, zp_a, alpha_q, s_out, zp_out)
    got = c_prelu(lib, p, x)
    assert np.array_equal(got, want)


def _mul_tflm_model(s1, z1, s2, z2, so, zo, act, shape1, shape2, const2=None):
    w = ModelWriter()
    a = w.act(shape1, s1, z1)
    if const2 is None:
        b = w.act(shape2, s2, z2)
    else:
        b = w.tensor(shape2, w.INT8, s2, z2, data=np.asarray(const2, np.int8))
    y = w.act(shape1, so, zo)
    w.op(TOP["MUL"], [a, b], [y], *_mul_opts(act))
    return w.build([a] if const2 is not None else [a, b], [y])


@HYP
@given(s1=scale, z1=zp, s2=scale, z2=zp, so=st.floats(0.001, 0.5).map(F32), zo=zp,
       act=st.sampled_from(["none", "relu", "relu6"]))
def test_tflm_mul_all_pairs(lib, tmp_path, s1, z1, s2, z2, so, zo, act):
    """same shape (all 65536 pairs) and channel broadcast (the SE gate, all pairs again)."""
    path = tmp_path / "mul.tflite"
    a = np.repeat(ALL8[:, None], 256, axis=1)  # a varies along H, b along W
    b = a.T.copy()
    path.write_bytes(_mul_tflm_model(s1, z1, s2, z2, so, zo, act, [1, 256, 256, 1],
                                     [1, 256, 256, 1]))
    want = run_tflm(path, [a[..., None], b[..., None]])[0].reshape(256, 256, 1)
    p = ep.mul_params_tflm(s1, z1, s2, z2, so, zo, act=act)
    got = c_mul(lib, p, a[..., None], b[..., None])
    assert np.array_equal(got, want)
    # broadcast [1, 1, 1, C] second input: in1 (h, 0, c) = h - 128, gate c = c - 128
    x1 = np.repeat(ALL8[:, None, None], 256, axis=2)  # 256 x 1 x 256
    gate = ALL8.reshape(1, 1, 256)
    path.write_bytes(_mul_tflm_model(s1, z1, s2, z2, so, zo, act, [1, 256, 1, 256],
                                     [1, 1, 1, 256]))
    want_b = run_tflm(path, [x1, gate])[0].reshape(256, 1, 256)
    pb = ep.mul_params_tflm(s1, z1, s2, z2, so, zo, act=act, bcast=ep.MSF_BCAST_CHANNEL)
    assert np.array_equal(c_mul(lib, pb, x1, gate), want_b)
    # broadcast shares the arithmetic: the same pairs give the same bytes
    assert np.array_equal(want_b[:, 0, :], want[:, :, 0])


def test_tflm_mul_scalar_constant(lib, tmp_path):
    x = exhaustive_input()
    for k, (s1, z1, s2, z2, so, zo, act) in enumerate([(0.05, 3, 0.004, -128, 0.02, 5, "none"),
                                                       (0.1, -20, 0.5, 0, 0.3, -128, "relu6")]):
        for cval in (-128, -1, 0, 77, 127):
            path = tmp_path / f"muls{k}.tflite"
            path.write_bytes(_mul_tflm_model(s1, z1, s2, z2, so, zo, act, [1, 16, 16, 1], [1],
                                             const2=[cval]))
            want = run_tflm(path, [x])[0].reshape(16, 16, 1)
            p = ep.mul_params_tflm(s1, z1, s2, z2, so, zo, act=act, bcast=ep.MSF_BCAST_SCALAR)
            got = c_mul(lib, p, x, np.array([[[cval]]], np.int8))
            assert np.array_equal(got, want), (k, cval)


# ------------------------------------------------------------------------------------------------
# onnxruntime oracle
# ------------------------------------------------------------------------------------------------

def _sess(model, opt: bool):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not opt:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _model(nodes, inputs, inits, ms=False):
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TP.INT8, None)],
                          inits)
    ops = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 9
    return m


def _qparams(xs, xz, ys, yz):
    return [nh.from_array(np.array(xs, np.float32), "xs"),
            nh.from_array(np.array(xz, np.int8), "xz"),
            nh.from_array(np.array(ys, np.float32), "ys"),
            nh.from_array(np.array(yz, np.int8), "yz")]


def ort_unary(op, xs, xz, ys, yz, path, **attrs):
    """Run a one-op ONNX int8 model on all 256 values: path "qlinear" (com.microsoft op),
    "qdq" (DQ -> op -> Q, default optimisations) or "unfused" (the same, ORT_DISABLE_ALL)."""
    inits = _qparams(xs, xz, ys, yz)
    xin = [helper.make_tensor_value_info("x", TP.INT8, [1, 1, 16, 16])]
    if path == "qlinear":
        name = {"sigmoid": "QLinearSigmoid", "leaky_relu": "QLinearLeakyRelu"}[op]
        kw = {"alpha": float(attrs["alpha"])} if op == "leaky_relu" else {}
        nodes = [helper.make_node(name, ["x", "xs", "xz", "ys", "yz"], ["y"],
                                  domain="com.microsoft", **kw)]
        m = _model(nodes, xin, inits, ms=True)
    else:
        ins, kw = ["xf"], {}
        if op == "clip":
            for key in ("lo", "hi"):
                if attrs.get(key) is None:
                    ins.append("")
                else:
                    inits.append(nh.from_array(np.array(attrs[key], np.float32), key))
                    ins.append(key)
        elif op == "leaky_relu":
            kw = {"alpha": float(attrs["alpha"])}
        elif op == "hard_sigmoid":
            kw = {"alpha": float(attrs["alpha"]), "beta": float(attrs["beta"])}
        onnx_op = {"sigmoid": "Sigmoid", "tanh": "Tanh", "leaky_relu": "LeakyRelu",
                   "hard_sigmoid": "HardSigmoid", "hard_swish": "HardSwish", "clip": "Clip",
                   "relu": "Relu", "identity": "Identity"}[op]
        nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]),
                 helper.make_node(onnx_op, ins, ["yf"], **kw),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
        m = _model(nodes, xin, inits)
    s = _sess(m, opt=path != "unfused")
    return s.run(None, {"x": ALL8.reshape(1, 1, 16, 16)})[0].reshape(16, 16, 1)


ORT_CASES = [("sigmoid", ("qlinear", "qdq", "unfused")),
             ("leaky_relu", ("qlinear", "qdq", "unfused")),
             ("tanh", ("qdq", "unfused")), ("hard_sigmoid", ("qdq", "unfused")),
             ("hard_swish", ("qdq", "unfused")), ("clip", ("qdq", "unfused")),
             ("relu", ("qdq", "unfused")), ("identity", ("qdq", "unfused"))]


@pytest.mark.parametrize("op,paths", ORT_CASES, ids=[c[0] for c in ORT_CASES])
@HYP
@given(xs=st.floats(0.002, 0.3).map(F32), xz=zp, ys=st.floats(0.001, 0.1).map(F32), yz=zp,
       a=st.floats(-1.0, 1.0), b=st.floats(-1.0, 1.0), seed=st.integers(0, 3))
def test_ort_unary_tables_exhaustive(lib, op, paths, xs, xz, ys, yz, a, b, seed):
    attrs = {}
    if op == "leaky_relu":
        attrs = {"alpha": F32(a)}
    elif op == "hard_sigmoid":
        attrs = {"alpha": F32(a), "beta": F32(b)}
    elif op == "clip":
        lo, hi = sorted((F32(a * 6), F32(b * 6)))
        attrs = [{"lo": lo, "hi": hi}, {"lo": lo, "hi": None}, {"lo": None, "hi": hi},
                 {"lo": F32(0), "hi": F32(6)}][seed]
    for path in paths:
        want = ort_unary(op, xs, xz, ys, yz, path, **attrs)
        table = ep.ort_table(op, xs, xz, ys, yz, path=path, **attrs)
        got = c_lut(lib, table, exhaustive_input())
        assert np.array_equal(got, want), (op, path, xs, xz, ys, yz, attrs,
                                           np.flatnonzero(got != want)[:8])


def test_ort_graphs_are_what_the_tables_assume():
    """Which QDQ patterns ORT 1.32 fuses with its default optimisations (the tables' docstring)."""
    import os
    import tempfile

    import onnx

    def fused_ops(op, **attrs):
        inits = _qparams(0.05, 3, 0.03, -5)
        nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]),
                 helper.make_node(op, ["xf"], ["yf"], **attrs),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
        m = _model(nodes, [helper.make_tensor_value_info("x", TP.INT8, [1, 1, 16, 16])], inits)
        with tempfile.TemporaryDirectory() as d:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.optimized_model_filepath = os.path.join(d, "o.onnx")
            ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
            return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    assert fused_ops("Sigmoid") == ["QLinearSigmoid"]
    assert fused_ops("LeakyRelu", alpha=0.1) == ["QLinearLeakyRelu"]
    assert fused_ops("Tanh") == ["DequantizeLinear", "Tanh", "QuantizeLinear"]
    assert fused_ops("HardSwish") == ["DequantizeLinear", "HardSigmoid", "Mul", "QuantizeLinear"]


FLOAT_OPS = [("sigmoid", "Sigmoid", {}, {}), ("tanh", "Tanh", {}, {}),
             ("hard_sigmoid", "HardSigmoid", {"alpha": 0.2, "beta": 0.5}, {}),
             ("hard_sigmoid", "HardSigmoid", {"alpha": -0.37, "beta": 0.11}, {}),
             ("hard_swish", "HardSwish", {}, {}),
             ("leaky_relu", "LeakyRelu", {"alpha": 0.1}, {}),
             ("leaky_relu", "LeakyRelu", {"alpha": -1.3}, {}),
             ("relu", "Relu", {}, {}),
             ("clip", "Clip", {}, {"lo": -0.75, "hi": 3.5})]


@pytest.mark.parametrize("op,onnx_op,attrs,inputs", FLOAT_OPS, ids=[f"{c[0]}{i}" for i, c in
                                                                      enumerate(FLOAT_OPS)])
def test_float_functions_match_ort_float_ops(op, onnx_op, attrs, inputs):
    """The float32 functions behind ort_table (MLAS's FMA3 logistic / tanh, HardSigmoid's
    multiply-then-add, ...) against ORT's float ops on many float inputs, bit for bit: far more
    sensitive than the int8 tables (a 1-ulp difference rarely flips an int8 rounding)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-20, 20, 40000), rng.uniform(-1, 1, 40000),
                        rng.normal(0, 1e-3, 4000), [0.0, -0.0, 18.0, -18.0, 9.0, -9.0, 30, -30]])
    x = x.astype(np.float32)
    names, inits = ["x"], []
    for k, v in inputs.items():
        inits.append(nh.from_array(np.array(v, np.float32), k))
        names.append(k)
    m = helper.make_model(helper.make_graph(
        [helper.make_node(onnx_op, names, ["y"], **attrs)], "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [x.size])],
        [helper.make_tensor_value_info("y", TP.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    got = ep.ort_float_op(op, x, **{k: F32(v) for k, v in {**attrs, **inputs}.items()})
    for opt in (False, True):
        want = _sess(m, opt=opt).run(None, {"x": x})[0]
        assert np.array_equal(got.view(np.int32), want.view(np.int32)), (op, opt)


def test_fma_emulation_is_single_rounding():
    from msfopt.mcu_runtime.requant import fma_f32
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 3000).astype(np.float32)
    b = rng.normal(0, 1, 3000).astype(np.float32)
    c = (-(a.astype(np.float64) * b)).astype(np.float32)  # heavy cancellation
    c[::3] = rng.normal(0, 1, 1000).astype(np.float32)
    got = ep._fma_f32(a, b, c)
    want = np.array([fma_f32(x, y, z) for x, y, z in zip(a, b, c)], np.float32)
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    # a midpoint case where float64-then-float32 double-rounds: 1 + 2^-24 + 2^-60
    a1, b1, c1 = F32(1 + 2 ** -23), F32(1 + 2 ** -23), F32(-(2 ** -23))
    assert ep._fma_f32(a1, b1, c1) == fma_f32(a1, b1, c1)


# PReLU (QDQ, float path) -------------------------------------------------------------------------

@HYP
@given(xs=st.floats(0.002, 0.3).map(F32), xz=zp, ys=st.floats(0.001, 0.1).map(F32), yz=zp,
       seed=st.integers(0, 2 ** 16), quant_slope=st.booleans())
def test_ort_prelu_per_channel_exhaustive(lib, xs, xz, ys, yz, seed, quant_slope):
    rng = np.random.default_rng(seed)
    c = 5
    inits = _qparams(xs, xz, ys, yz)
    nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"])]
    if quant_slope:  # int8 slope with its own DequantizeLinear (as QDQ tools emit it)
        sq = rng.integers(-128, 128, c).astype(np.int8)
        ss, sz = F32(rng.uniform(0.001, 0.02)), int(rng.integers(-20, 20))
        inits += [nh.from_array(sq.reshape(c, 1, 1), "sq"), nh.from_array(np.array(ss), "ss"),
                  nh.from_array(np.array(sz, np.int8), "sz")]
        nodes.append(helper.make_node("DequantizeLinear", ["sq", "ss", "sz"], ["sl"]))
        slope = ep.ort_dequantize(sq, ss, sz)
    else:
        slope = rng.uniform(-2, 2, c).astype(np.float32)
        slope[0] = 0.0
        inits.append(nh.from_array(slope.reshape(c, 1, 1), "sl"))
    nodes += [helper.make_node("PRelu", ["xf", "sl"], ["yf"]),
              helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
    m = _model(nodes, [helper.make_tensor_value_info("x", TP.INT8, [1, c, 16, 16])], inits)
    x_nchw = np.broadcast_to(ALL8.reshape(1, 1, 16, 16), (1, c, 16, 16)).copy()
    x_hwc = x_nchw[0].transpose(1, 2, 0).copy()
    p = ep.prelu_params_ort(xs, xz, slope, ys, yz)
    got = c_prelu(lib, p, x_hwc)
    for opt in (True, False):
        want = _sess(m, opt).run(None, {"x": x_nchw})[0][0].transpose(1, 2, 0)
        assert np.array_equal(got, want), (opt, quant_slope)


# Mul ----------------------------------------------------------------------------------------------

def _qlinear_mul_model(s1, z1, s2, z2, so, zo, shape1, shape2, qdq: bool, const_b=None):
    inits = [nh.from_array(np.array(v, t), n) for v, t, n in
             ((s1, np.float32, "as"), (z1, np.int8, "az"), (s2, np.float32, "bs"),
              (z2, np.int8, "bz"), (so, np.float32, "ys"), (zo, np.int8, "yz"))]
    inputs = [helper.make_tensor_value_info("a", TP.INT8, shape1)]
    if const_b is None:
        inputs.append(helper.make_tensor_value_info("b", TP.INT8, shape2))
    else:
        inits.append(nh.from_array(np.asarray(const_b, np.int8).reshape(shape2), "b"))
    if qdq:
        nodes = [helper.make_node("DequantizeLinear", ["a", "as", "az"], ["af"]),
                 helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bf"]),
                 helper.make_node("Mul", ["af", "bf"], ["yf"]),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
        return _model(nodes, inputs, inits)
    nodes = [helper.make_node("QLinearMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"],
                              domain="com.microsoft")]
    return _model(nodes, inputs, inits, ms=True)


MUL_CFG = dict(s1=st.floats(0.002, 0.3).map(F32), z1=zp, s2=st.floats(0.002, 0.3).map(F32), z2=zp,
               so=st.floats(0.0005, 0.5).map(F32), zo=zp)


@HYP
@given(**MUL_CFG)
def test_ort_mul_all_pairs(lib, s1, z1, s2, z2, so, zo):
    """QLinearMul, DQ->Mul->Q (default: fused to QLinearMul) and DQ->Mul->Q unfused, on all
    65536 pairs, same shape and per-channel broadcast."""
    a = np.repeat(ALL8[:, None], 256, axis=1)  # (H=256, W=256), C = 1
    b = a.T.copy()
    pq = ep.mul_params_ort(s1, z1, s2, z2, so, zo, path="qlinear")
    pu = ep.mul_params_ort(s1, z1, s2, z2, so, zo, path="unfused")
    got_q = c_mul(lib, pq, a[..., None], b[..., None])[..., 0]
    got_u = c_mul(lib, pu, a[..., None], b[..., None])[..., 0]
    feed = {"a": a[None, None], "b": b[None, None]}
    shape = [1, 1, 256, 256]
    want = _sess(_qlinear_mul_model(s1, z1, s2, z2, so, zo, shape, shape, False), True).run(
        None, feed)[0][0, 0]
    assert np.array_equal(got_q, want)
    m_qdq = _qlinear_mul_model(s1, z1, s2, z2, so, zo, shape, shape, True)
    assert np.array_equal(got_q, _sess(m_qdq, True).run(None, feed)[0][0, 0])
    assert np.array_equal(got_u, _sess(m_qdq, False).run(None, feed)[0][0, 0])
    # channel broadcast: NCHW a (1, 256, 256, 1) = h - 128 in every channel c, b (1, 256, 1, 1)
    x1 = np.repeat(ALL8[:, None, None], 256, axis=2)  # HWC 256 x 1 x 256
    gate = ALL8.reshape(1, 1, 256)
    feed = {"a": x1.transpose(2, 0, 1)[None], "b": gate.reshape(1, 256, 1, 1)}
    mb = _qlinear_mul_model(s1, z1, s2, z2, so, zo, [1, 256, 256, 1], [1, 256, 1, 1], False)
    want_b = _sess(mb, True).run(None, feed)[0][0].transpose(1, 2, 0)
    pb = dict(pq, bcast=ep.MSF_BCAST_CHANNEL)
    assert np.array_equal(c_mul(lib, pb, x1, gate), want_b)
    mbu = _qlinear_mul_model(s1, z1, s2, z2, so, zo, [1, 256, 256, 1], [1, 256, 1, 1], True)
    want_bu = _sess(mbu, False).run(None, feed)[0][0].transpose(1, 2, 0)
    assert np.array_equal(c_mul(lib, dict(pu, bcast=ep.MSF_BCAST_CHANNEL), x1, gate), want_bu)
    # the broadcast QDQ pattern with default optimisations runs as QLinearMul
    assert np.array_equal(_sess(mbu, True).run(None, feed)[0][0].transpose(1, 2, 0), want_b)


def test_ort_mul_scalar_and_extremes(lib):
    x = exhaustive_input()
    cfgs = [(0.05, 3, 0.004, -128, 0.02, 5), (0.3, -128, 0.3, 127, 0.0005, 0),
            (0.01, 0, 0.01, 0, 0.5, -128), (0.125, 1, 0.25, -1, 0.0625, 3)]  # last: many ties
    for s1, z1, s2, z2, so, zo in cfgs:
        for cval in (-128, 0, 5, 127):
            for qdq in (False, True):
                m = _qlinear_mul_model(s1, z1, s2, z2, so, zo, [1, 1, 16, 16], [1], qdq,
                                       const_b=[cval])
                want = _sess(m, True).run(None, {"a": x.reshape(1, 1, 16, 16)})[0]
                p = ep.mul_params_ort(s1, z1, s2, z2, so, zo, bcast=ep.MSF_BCAST_SCALAR)
                got = c_mul(lib, p, x, np.array([[[cval]]], np.int8))
                assert np.array_equal(got.reshape(want.shape), want), (s1, z1, cval, qdq)


def test_mul_params_shapes():
    p = ep.mul_params_tflm(0.1, 0, 0.2, 0, 0.05, -10, act="relu6")
    assert p["act_min"] == -10 and p["act_max"] == min(127, -10 + round(6 / np.float32(0.05)))
    assert set(p) == {f for f, _ in MulS8._fields_}
    assert set(ep.mul_params_ort(0.1, 0, 0.2, 0, 0.05, -10)) == {f for f, _ in MulS8._fields_}
    assert set(ep.prelu_params_ort(0.1, 0, [0.2], 0.05, 1)) == {f for f, _ in PreluS8._fields_}
    assert set(ep.prelu_params_tflm(0.1, 0, 0.01, 0, [3], 0.05, 1)) == \
        {f for f, _ in PreluS8._fields_}
    with pytest.raises(ValueError):
        ep.ort_table("tanh", 0.1, 0, 0.1, 0, path="qlinear")


TIE_CFGS = [(0.5, 3, 0.25, -7, 0.25, 1), (0.125, 0, 0.5, 0, 1.0, -128), (0.25, -1, 0.25, 2, 2.0, 0)]


@pytest.mark.parametrize("cfg", TIE_CFGS)
def test_mul_all_pairs_exact_ties(lib, tmp_path, cfg):
    """Power-of-two scales: the real product lands exactly on .5 for many pairs, so the rounding
    rule (TFLM: SRDHM + RoundingDivideByPOT; ORT: round half to even) decides the result."""
    s1, z1, s2, z2, so, zo = cfg
    a = np.repeat(ALL8[:, None], 256, axis=1)
    b = a.T.copy()
    d = (a.astype(np.int64) - z1) * (b.astype(np.int64) - z2) * (s1 * s2 / so)
    assert np.count_nonzero((np.abs(d) % 1 == 0.5) & (np.abs(d) < 100)) > 100  # ties exist
    path = tmp_path / "mul.tflite"
    path.write_bytes(_mul_tflm_model(s1, z1, s2, z2, so, zo, "none", [1, 256, 256, 1],
                                     [1, 256, 256, 1]))
    want = run_tflm(path, [a[..., None], b[..., None]])[0].reshape(256, 256, 1)
    assert np.array_equal(c_mul(lib, ep.mul_params_tflm(s1, z1, s2, z2, so, zo),
                                a[..., None], b[..., None]), want)
    feed = {"a": a[None, None], "b": b[None, None]}
    shape = [1, 1, 256, 256]
    for qdq, opt, path_ in ((False, True, "qlinear"), (True, True, "qlinear"),
                            (True, False, "unfused")):
        m = _qlinear_mul_model(s1, z1, s2, z2, so, zo, shape, shape, qdq)
        want = _sess(m, opt).run(None, feed)[0][0, 0]
        got = c_mul(lib, ep.mul_params_ort(s1, z1, s2, z2, so, zo, path=path_),
                    a[..., None], b[..., None])[..., 0]
        assert np.array_equal(got, want), (qdq, opt)
    # the two frameworks really differ on these ties (else the test would not tell them apart)
    ort_q = c_mul(lib, ep.mul_params_ort(s1, z1, s2, z2, so, zo), a[..., None], b[..., None])
    tflm_q = c_mul(lib, ep.mul_params_tflm(s1, z1, s2, z2, so, zo), a[..., None], b[..., None])
    assert np.any(ort_q != tflm_q)


def test_unary_exact_ties(lib, tmp_path):
    """Requantisation by exactly 1/2: every odd input is a tie (TFLM: away from zero for
    positives; ORT: half to even)."""
    x = exhaustive_input()
    want_t = tflm_unary(tmp_path, "quantize", 0.5, 3, 1.0, -2)
    got_t = c_lut(lib, ep.tflm_table("quantize", 0.5, 3, 1.0, -2), x)
    assert np.array_equal(got_t, want_t)
    for op, attrs in (("identity", {}), ("relu", {}), ("clip", {"lo": F32(-20), "hi": F32(30)}),
                      ("leaky_relu", {"alpha": F32(0.5)}),
                      ("hard_sigmoid", {"alpha": F32(0.25), "beta": F32(0.5)})):
        for path in (("qlinear", "qdq") if op == "leaky_relu" else ("qdq", "unfused")):
            ys = 1 / 256 if op == "hard_sigmoid" else 1.0
            want = ort_unary(op, 0.5, 3, ys, -2, path, **attrs)
            got = c_lut(lib, ep.ort_table(op, 0.5, 3, ys, -2, path=path, **attrs), x)
            assert np.array_equal(got, want), (op, path)
    assert not np.array_equal(ep.ort_table("identity", 0.5, 3, 1.0, -2),
                              ep.tflm_table("quantize", 0.5, 3, 1.0, -2))


def test_prelu_single_slope(lib, tmp_path):
    """One slope for every channel (alpha / slope tensor of one element): per_channel = 0."""
    x = np.repeat(ALL8[:, None, None], 3, axis=2)  # 256 x 1 x 3
    for s_in, zp_in, s_a, zp_a, aq, s_out, zp_out in ((0.05, -3, 0.01, 5, -60, 0.04, 10),
                                                      (0.02, 100, 0.004, -128, 127, 0.1, -128)):
        w = ModelWriter()
        xi = w.act([1, 256, 1, 3], s_in, zp_in)
        ai = w.tensor([1], w.INT8, s_a, zp_a, data=np.array([aq], np.int8))
        yi = w.act([1, 256, 1, 3], s_out, zp_out)
        w.op(TOP["PRELU"], [xi, ai], [yi])
        path = tmp_path / "prelu1.tflite"
        path.write_bytes(w.build([xi], [yi]))
        want = run_tflm(path, [x])[0].reshape(256, 1, 3)
        p = ep.prelu_params_tflm(s_in, zp_in, s_a, zp_a, [aq], s_out, zp_out)
        assert p["per_channel"] == 0
        assert np.array_equal(c_prelu(lib, p, x), want)
        # ORT: DQ -> PRelu(scalar float slope) -> Q
        slope = F32(-0.37)
        inits = _qparams(s_in, zp_in, s_out, zp_out) + [nh.from_array(np.array([slope]), "sl")]
        nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]),
                 helper.make_node("PRelu", ["xf", "sl"], ["yf"]),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
        m = _model(nodes, [helper.make_tensor_value_info("x", TP.INT8, [1, 3, 256, 1])], inits)
        want = _sess(m, True).run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0].transpose(1, 2, 0)
        assert np.array_equal(c_prelu(lib, ep.prelu_params_ort(s_in, zp_in, [slope], s_out,
                                                               zp_out), x), want)
