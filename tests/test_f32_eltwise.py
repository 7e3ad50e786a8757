"""float32 elementwise kernels of the C runtime (mcu_runtime/src/msf_f32_eltwise.{h,c}).

msf_expf against numpy's float64 exp over a dense sweep of the float range (several million
points, through a small array wrapper linked against the runtime library), sigmoid / tanh
likewise; msf_unary_f32 (every MSF_FN_*) and msf_binary_f32 (every MSF_BIN_* and broadcast)
against onnxruntime one-op models, through full views, sub-regions and ring-buffer views.
Oracles: numpy float64 (exp, tanh, 1 / (1 + exp(-x))) and onnxruntime (CPU EP; DEFAULT graph
optimisations and ORT_DISABLE_ALL).
"""
from __future__ import annotations

import ctypes as C
import subprocess

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from msfopt.mcu_runtime import hostlib

F32_MAX = hostlib.F32_MAX
RTOL, ATOL = 1e-5, 1e-6

# -- ctypes mirrors of msf_f32_eltwise.h -----------------------------------------------------------

(FN_RELU, FN_CLIP, FN_LEAKY, FN_PRELU, FN_HARDSIGMOID, FN_HARDSWISH, FN_SIGMOID, FN_TANH,
 FN_SWISH, FN_AFFINE) = range(10)
BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_RSUB, BIN_RDIV = range(6)
BCAST_NONE, BCAST_CHANNEL, BCAST_SCALAR = 0, 1, 2  # msf_s8_eltwise.h


class UnaryF32(C.Structure):
    _fields_ = [("fn", C.c_int32), ("alpha", C.c_float), ("beta", C.c_float),
                ("lo", C.c_float), ("hi", C.c_float), ("slope", C.POINTER(C.c_float)),
                ("bias", C.POINTER(C.c_float))]


class BinaryF32(C.Structure):
    _fields_ = [("op", C.c_int32), ("bcast", C.c_int32), ("act_min", C.c_float),
                ("act_max", C.c_float)]


_REGION = [C.c_int32] * 4

_ARRAY_HELPER = r"""
#include <stdint.h>
float msf_expf(float x);
float msf_sigmoidf(float x);
float msf_tanhf(float x);
#define ARRAY_FN(name, f) \
    void name(const float *x, float *y, int64_t n) { int64_t i; for (i = 0; i < n; i++) y[i] = f(x[i]); }
ARRAY_FN(exp_array, msf_expf)
ARRAY_FN(sigmoid_array, msf_sigmoidf)
ARRAY_FN(tanh_array, msf_tanhf)
"""


@pytest.fixture(scope="module")
def lib():
    """The runtime with UBSan and -DMSF_CHECK_BOUNDS (every view access checked against the
    view's cap; a failure is recorded by the hook and fails the test, see no_bounds_failures)."""
    path = hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all",
                                 "-DMSF_CHECK_BOUNDS"])
    lib = hostlib.load(path)
    msgs = []
    lib._hook = hostlib.BOUNDS_HOOK(lambda m: msgs.append(m.decode()))
    lib.msf_set_bounds_hook(lib._hook)
    lib._msgs = msgs
    P = C.POINTER
    lib.msf_unary_f32.argtypes = [P(UnaryF32), P(hostlib.View), P(hostlib.View), *_REGION]
    lib.msf_unary_f32.restype = None
    lib.msf_binary_f32.argtypes = [P(BinaryF32), P(hostlib.View), P(hostlib.View),
                                   P(hostlib.View), *_REGION]
    lib.msf_binary_f32.restype = None
    for name in ("msf_expf", "msf_sigmoidf", "msf_tanhf"):
        getattr(lib, name).argtypes = [C.c_float]
        getattr(lib, name).restype = C.c_float
    return lib


@pytest.fixture(scope="module")
def arr(tmp_path_factory):
    """exp / sigmoid / tanh over whole arrays: a 3-line loop around the library's functions, linked
    against the optimised runtime library (the ctypes call per element would be too slow)."""
    rt = hostlib.build_shared(count_macs=False)
    d = tmp_path_factory.mktemp("arr")
    (d / "arr.c").write_text(_ARRAY_HELPER)
    so = d / "libarr.so"
    subprocess.run([hostlib.compiler(), *hostlib.STRICT_FLAGS, "-O2", "-fPIC", "-shared",
                    str(d / "arr.c"), str(rt), f"-Wl,-rpath,{rt.parent}", "-o", str(so)],
                   check=True, capture_output=True, text=True)
    h = C.CDLL(str(so))
    fns = {}
    for name in ("exp", "sigmoid", "tanh"):
        f = getattr(h, name + "_array")
        f.argtypes = [C.c_void_p, C.c_void_p, C.c_int64]
        f.restype = None

        def run(x, f=f):
            x = np.ascontiguousarray(x, np.float32)
            y = np.empty_like(x)
            f(x.ctypes.data, y.ctypes.data, x.size)
            return y
        fns[name] = run
    return fns


# -- ulp error against a float64 reference ---------------------------------------------------------

def ulp_err(got: np.ndarray, ref64: np.ndarray) -> np.ndarray:
    """|got - ref| in units of the float32 spacing at ref (subnormal spacing 2^-149 below 2^-126;
    ref is the float64 value, not rounded).  got == ref == +-inf counts 0."""
    a = np.abs(ref64)
    e = np.floor(np.log2(np.maximum(a, 2.0 ** -126)))
    ulp = np.exp2(e - 23)
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(np.float64) - ref64) / ulp
    return np.where(np.isinf(ref64) & (got.astype(np.float64) == ref64), 0.0, err)


def float_sweep(lo: float, hi: float, n_bits_step: int) -> np.ndarray:
    """Every n-th float32 bit pattern in [lo, hi] (both signs), plus a uniform grid."""
    out = []
    for s, a, b in ((1.0, max(lo, 0.0), hi), (-1.0, max(-hi, 0.0), -lo)):
        if b <= a:
            continue
        ba = np.float32(a).view(np.uint32)
        bb = np.float32(b).view(np.uint32)
        bits = np.arange(ba, bb + 1, n_bits_step, dtype=np.uint32)
        out.append(s * bits.view(np.float32))
    out.append(np.linspace(lo, hi, 1_000_003, dtype=np.float32))
    return np.concatenate(out).astype(np.float32)


def test_expf_dense_sweep_within_1_ulp(arr):
    """msf_expf over ~7 million floats of [-104, 89] (every 331st bit pattern, a uniform grid, and
    every float around the overflow / underflow thresholds) against the float64 exp: <= 0.9 ulp
    for normal results, <= 0.75 of the subnormal spacing below 2^-126 (the bounds msf_f32_eltwise.h
    documents from an offline exhaustive check of all 2^32 inputs: 0.8903 / 0.7474)."""
    x = float_sweep(-104.0, 89.0, 331)
    edges = [np.float32(88.72283), np.float32(-87.33654), np.float32(-103.27893),
             np.float32(-103.97208), np.float32(1e-30)]
    near = [(e.view(np.uint32).astype(np.int64) + np.arange(-20000, 20001)).astype(np.uint32)
            .view(np.float32) for e in edges]
    x = np.concatenate([x, *near, -near[-1]])
    assert x.size > 6_000_000
    y = arr["exp"](x)
    ref = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    # overflow: inf exactly when the correctly rounded result is inf
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref32))
    fin = ~np.isinf(ref32)
    err = ulp_err(y[fin], ref[fin])
    normal = ref[fin] >= 2.0 ** -126
    assert err[normal].max() <= 0.9, (err[normal].max(), x[fin][normal][np.argmax(err[normal])])
    assert err[~normal].max() <= 0.75, err[~normal].max()  # gradual underflow, one rounding
    assert (~normal).sum() > 20000 and (y[fin] == 0).sum() > 100  # the subnormal tail ran
    # the bulk is mostly correctly rounded
    assert np.mean(y[fin] == ref32[fin]) > 0.9


def test_expf_special_values(arr, lib):
    inf = np.float32(np.inf)
    x = np.array([np.nan, -np.nan, inf, -inf, 0.0, -0.0, 89.0, 89.01, 1e38, -104.0, -104.01,
                  -1e38, 1e-45, -1e-45], np.float32)
    y = arr["exp"](x)
    assert np.isnan(y[0]) and np.isnan(y[1])
    assert y[2] == inf and y[3] == 0.0 and y[4] == 1.0 and y[5] == 1.0
    assert y[6] == inf and y[7] == inf and y[8] == inf
    assert y[9] == 0.0 and y[10] == 0.0 and y[11] == 0.0 and y[12] == 1.0 and y[13] == 1.0
    assert lib.msf_expf(1.0) == np.float32(np.e)  # the ctypes export agrees


def test_sigmoid_tanh_sweep(arr):
    """sigmoid / tanh over the whole float range, vs float64: <= 2.5 / 1.1 ulp (the header's
    bounds), no overflow for any |x|, tanh relative-accurate down to subnormal x."""
    x = float_sweep(-1e38, 1e38, 4099)
    x = np.concatenate([x, np.linspace(-20, 20, 2_000_001, dtype=np.float32)])
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        sref = 1.0 / (1.0 + np.exp(-x64))
    s = arr["sigmoid"](x)
    es = ulp_err(s, sref)
    assert es.max() <= 2.5, (es.max(), x[np.argmax(es)])
    t = arr["tanh"](x)
    et = ulp_err(t, np.tanh(x64))
    assert et.max() <= 1.1, (et.max(), x[np.argmax(et)])
    small = np.abs(x) < 0.8
    assert et[small].max() <= 1.0, et[small].max()  # the polynomial branch
    assert np.isnan(arr["sigmoid"](np.array([np.nan], np.float32)))[0]
    assert np.isnan(arr["tanh"](np.array([np.nan], np.float32)))[0]
    inf = np.array([np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(arr["sigmoid"](inf), [1.0, 0.0])
    np.testing.assert_array_equal(arr["tanh"](inf), [1.0, -1.0])


# -- onnxruntime one-op models ---------------------------------------------------------------------

def _session(nodes, inputs: dict, inits: list, opt: bool):
    vin = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()]
    vout = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "g", vin, vout, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not opt:  # else DEFAULT (ORT_ENABLE_ALL): what a user's InferenceSession does
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, inputs)[0]


def _nchw(x):
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _hwc(y):
    return np.ascontiguousarray(y[0].transpose(1, 2, 0))


def _t(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def rand_input(rng, h, w, c, scale=4.0):
    """Normal values plus the points where the fns change branch and some extreme ones."""
    x = (rng.standard_normal((h, w, c)) * scale).astype(np.float32)
    special = np.array([0.0, -0.0, 3.0, -3.0, 2.5, -2.5, 1e-20, -1e-20, 30.0, -30.0, 100.0,
                        -100.0, 0.8, -0.8, 6.0, -6.0], np.float32)
    flat = x.reshape(-1)
    k = min(len(special), flat.size // 3)
    flat[rng.choice(flat.size, k, replace=False)] = special[:k]
    return x


def c_unary(lib, p: UnaryF32, x: np.ndarray, regions: bool = False) -> np.ndarray:
    h, w, c = x.shape
    y = np.full_like(x, np.nan)
    vi, vo = hostlib.full_view(x), hostlib.full_view(y)
    if not regions:
        lib.msf_unary_f32(C.byref(p), C.byref(vi), C.byref(vo), 0, h, 0, w)
    else:  # three sub-regions covering the output
        ys, xs = h // 2, w // 3
        for r in ((0, ys, 0, w), (ys, h, 0, xs), (ys, h, xs, w)):
            lib.msf_unary_f32(C.byref(p), C.byref(vi), C.byref(vo), *r)
    return y


def ring_run(call, x: np.ndarray, out_c: int, rng, garbage=np.nan):
    """Computes a same-pixel kernel band by band through ring views: each band of output rows
    [r0, r1) and chunk of k columns reads an input ring (y0 = r0, xcap = kin >= k) that holds
    only those pixels (other slots garbage) and writes an output ring (y0 = r0, xcap = kout);
    returns the assembled full output.  call(in_view, out_view, oy0, oy1, ox0, ox1)."""
    h, w, c = x.shape
    y = np.empty((h, w, out_c), x.dtype)
    r0 = 0
    while r0 < h:
        r1 = min(h, r0 + int(rng.integers(1, 4)))
        k = int(rng.integers(1, w + 1))
        kin = int(rng.integers(k, w + 1))
        kout = int(rng.integers(k, w + 1))
        for c0 in range(0, w, k):
            c1 = min(w, c0 + k)
            rin = np.full(((r1 - r0) * kin, c), garbage, x.dtype)
            for xx in range(c0, c1):
                rin[(np.arange(r0, r1) - r0) * kin + xx % kin] = x[r0:r1, xx]
            rout = np.full(((r1 - r0) * kout, out_c), garbage, x.dtype)
            vin = hostlib.View(rin.ctypes.data, h, w, c, r0, kin, rin.size)
            vout = hostlib.View(rout.ctypes.data, h, w, out_c, r0, kout, rout.size)
            call(vin, vout, r0, r1, c0, c1)
            for xx in range(c0, c1):
                y[r0:r1, xx] = rout[(np.arange(r0, r1) - r0) * kout + xx % kout]
        r0 = r1
    return y


def unary_params(fn, alpha=0.0, beta=0.0, lo=-F32_MAX, hi=F32_MAX, slope=None, bias=None):
    keep = [a for a in (slope, bias) if a is not None]
    p = UnaryF32(fn, alpha, beta, lo, hi, hostlib.ptr(slope, C.c_float),
                 hostlib.ptr(bias, C.c_float))
    p._keep = keep
    return p


def _unary_case(kind, rng):
    """(ORT nodes, initializers, C params) of one unary op on a 1 x C x H x W input."""
    c = int(rng.integers(1, 9))
    inits, nodes = [], []
    if kind == "relu":
        nodes = [helper.make_node("Relu", ["x"], ["y"])]
        p = unary_params(FN_RELU)
    elif kind == "relu6":  # Relu6 as ONNX exports it: Clip(0, 6) ... run as RELU + clamp
        inits = [_t("lo", np.float32(0)), _t("hi", np.float32(6))]
        nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])]
        p = unary_params(FN_RELU, lo=0.0, hi=6.0)
    elif kind == "clip":
        lo, hi = sorted(rng.uniform(-5, 5, 2).astype(np.float32))
        inits = [_t("lo", np.float32(lo)), _t("hi", np.float32(hi))]
        nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])]
        p = unary_params(FN_CLIP, lo=float(lo), hi=float(hi))
    elif kind == "leaky":
        a = float(np.float32(rng.choice([0.01, 0.1, 0.2, rng.uniform(-1, 2)])))
        nodes = [helper.make_node("LeakyRelu", ["x"], ["y"], alpha=a)]
        p = unary_params(FN_LEAKY, alpha=a)
    elif kind == "leaky_relu6":  # a fused clamp after the fn
        a = 0.1
        inits = [_t("lo", np.float32(-F32_MAX)), _t("hi", np.float32(6))]
        nodes = [helper.make_node("LeakyRelu", ["x"], ["t"], alpha=a),
                 helper.make_node("Clip", ["t", "lo", "hi"], ["y"])]
        p = unary_params(FN_LEAKY, alpha=a, hi=6.0)
    elif kind == "prelu":
        slope = rng.uniform(-0.5, 1.5, c).astype(np.float32)
        inits = [_t("s", slope.reshape(c, 1, 1))]
        nodes = [helper.make_node("PRelu", ["x", "s"], ["y"])]
        p = unary_params(FN_PRELU, slope=slope)
    elif kind == "hardsigmoid":
        nodes = [helper.make_node("HardSigmoid", ["x"], ["y"])]  # ONNX defaults 0.2 / 0.5
        p = unary_params(FN_HARDSIGMOID, alpha=0.2, beta=0.5)
    elif kind == "hardsigmoid_torch":
        a = float(np.float32(1 / 6))
        nodes = [helper.make_node("HardSigmoid", ["x"], ["y"], alpha=a, beta=0.5)]
        p = unary_params(FN_HARDSIGMOID, alpha=a, beta=0.5)
    elif kind == "hardswish":
        nodes = [helper.make_node("HardSwish", ["x"], ["y"])]
        p = unary_params(FN_HARDSWISH)
    elif kind == "sigmoid":
        nodes = [helper.make_node("Sigmoid", ["x"], ["y"])]
        p = unary_params(FN_SIGMOID)
    elif kind == "tanh":
        nodes = [helper.make_node("Tanh", ["x"], ["y"])]
        p = unary_params(FN_TANH)
    elif kind == "swish":
        nodes = [helper.make_node("Sigmoid", ["x"], ["s"]),
                 helper.make_node("Mul", ["x", "s"], ["y"])]
        p = unary_params(FN_SWISH)
    elif kind == "batchnorm":
        scale = rng.uniform(0.2, 2.0, c).astype(np.float32)
        b = rng.uniform(-1, 1, c).astype(np.float32)
        mean = rng.uniform(-1, 1, c).astype(np.float32)
        var = rng.uniform(0.05, 3.0, c).astype(np.float32)
        eps = float(np.float32(rng.choice([1e-5, 1e-3])))
        inits = [_t("sc", scale), _t("b", b), _t("m", mean), _t("v", var)]
        nodes = [helper.make_node("BatchNormalization", ["x", "sc", "b", "m", "v"], ["y"],
                                  epsilon=eps)]
        # the folding an importer does (the caller's job, see msf_f32_eltwise.h), in float64
        slope64 = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
        slope = slope64.astype(np.float32)
        bias = (b - mean.astype(np.float64) * slope64).astype(np.float32)
        p = unary_params(FN_AFFINE, slope=slope, bias=bias)
    else:
        raise KeyError(kind)
    return c, nodes, inits, p


UNARY_KINDS = ("relu", "relu6", "clip", "leaky", "leaky_relu6", "prelu", "hardsigmoid",
               "hardsigmoid_torch", "hardswish", "sigmoid", "tanh", "swish", "batchnorm")


@pytest.mark.parametrize("kind", UNARY_KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_unary_matches_onnxruntime(lib, kind, seed):
    rng = np.random.default_rng(100 * seed + UNARY_KINDS.index(kind))
    c, nodes, inits, p = _unary_case(kind, rng)
    h, w = (int(v) for v in rng.integers(1, 9, 2))
    x = rand_input(rng, h, w, c, scale=float(rng.choice([1.0, 4.0, 30.0])))
    for opt in (True, False):
        ref = _hwc(_session(nodes, {"x": _nchw(x)}, inits, opt))
        got = c_unary(lib, p, x, regions=opt)
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=f"{kind} opt={opt}")
    # ring views give the same bits as the full-view run
    full = c_unary(lib, p, x)
    rung = ring_run(lambda vi, vo, *r: lib.msf_unary_f32(C.byref(p), C.byref(vi), C.byref(vo), *r),
                    x, c, rng)
    np.testing.assert_array_equal(rung, full)
    # in place (out aliases in)
    x2 = x.copy()
    v = hostlib.full_view(x2)
    lib.msf_unary_f32(C.byref(p), C.byref(v), C.byref(v), 0, h, 0, w)
    np.testing.assert_array_equal(x2, full)


def test_unary_ops_distinguish_wrong_parameters(lib):
    """The tolerance is tight enough to tell torch's HardSigmoid from ONNX's and a BatchNorm with
    a different epsilon, and the clamp of every fn is applied."""
    rng = np.random.default_rng(7)
    x = rand_input(rng, 4, 5, 3)
    onnx_hs = c_unary(lib, unary_params(FN_HARDSIGMOID, alpha=0.2, beta=0.5), x)
    torch_a = float(np.float32(1 / 6))
    torch_hs = c_unary(lib, unary_params(FN_HARDSIGMOID, alpha=torch_a, beta=0.5), x)
    assert not np.allclose(onnx_hs, torch_hs, rtol=RTOL, atol=ATOL)
    for fn in range(10):
        s = np.full(3, 2.0, np.float32)
        p = unary_params(fn, alpha=0.5, beta=0.5, lo=-0.25, hi=0.75, slope=s, bias=s)
        y = c_unary(lib, p, x)
        assert y.min() >= -0.25 and y.max() <= 0.75 and np.any(y == 0.75), fn


# -- binary ops ------------------------------------------------------------------------------------

ONNX_BIN = {BIN_ADD: "Add", BIN_SUB: "Sub", BIN_MUL: "Mul", BIN_DIV: "Div"}


def c_binary(lib, p, a, b, bview=None, regions=False):
    h, w, c = a.shape
    y = np.full_like(a, np.nan)
    va, vy = hostlib.full_view(a), hostlib.full_view(y)
    vb = bview if bview is not None else hostlib.full_view(b)
    regs = [(0, h, 0, w)] if not regions else [(0, h // 2, 0, w), (h // 2, h, 0, w // 2),
                                                (h // 2, h, w // 2, w)]
    for r in regs:
        lib.msf_binary_f32(C.byref(p), C.byref(va), C.byref(vb), C.byref(vy), *r)
    return y


@pytest.mark.parametrize("op", [BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_RSUB, BIN_RDIV])
@pytest.mark.parametrize("bcast", [BCAST_NONE, BCAST_CHANNEL, BCAST_SCALAR])
@pytest.mark.parametrize("seed", range(3))
def test_binary_bit_exact_with_onnxruntime(lib, op, bcast, seed):
    """Add / Sub / Mul / Div (and Sub / Div with the broadcast operand first, run as RSUB / RDIV),
    second operand full, [C, 1, 1] or scalar, a graph input or a constant, optional Relu:
    identical bits to onnxruntime."""
    rng = np.random.default_rng(1000 * op + 100 * bcast + seed)
    h, w, c = (int(v) for v in rng.integers(1, 8, 3))
    a = (rng.standard_normal((h, w, c)) * 3).astype(np.float32)
    bshape = {BCAST_NONE: (h, w, c), BCAST_CHANNEL: (1, 1, c), BCAST_SCALAR: (1, 1, 1)}[bcast]
    b = (rng.standard_normal(bshape) * 3).astype(np.float32)
    if op in (BIN_DIV, BIN_RDIV):  # keep divisors away from 0 (IEEE inf is its own test)
        d = a if op == BIN_RDIV else b
        d[np.abs(d) < 0.05] = 0.5
    relu = seed == 1
    const = seed == 2 or bcast != BCAST_NONE and seed == 0
    onnx_b = (_nchw(b) if bcast == BCAST_NONE else b.reshape(c, 1, 1) if bcast == BCAST_CHANNEL
              else b.reshape(()))
    ins = ["b", "x"] if op in (BIN_RSUB, BIN_RDIV) else ["x", "b"]
    name = ONNX_BIN.get(op) or ("Sub" if op == BIN_RSUB else "Div")
    nodes = [helper.make_node(name, ins, ["t" if relu else "y"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["t"], ["y"]))
    inputs = {"x": _nchw(a)}
    inits = []
    if const:
        inits.append(_t("b", onnx_b))
    else:
        inputs["b"] = np.ascontiguousarray(onnx_b)
    p = BinaryF32(op, bcast, 0.0 if relu else -F32_MAX, F32_MAX)
    for opt in (True, False):
        ref = _hwc(_session(nodes, inputs, inits, opt))
        np.testing.assert_array_equal(c_binary(lib, p, a, b, regions=opt), ref)
    # ring views of both full operands (NONE) or of in1 only (broadcast operand: a full 1x1 view)
    full = c_binary(lib, p, a, b)
    if bcast == BCAST_NONE:
        ab = np.concatenate([a, b], axis=2)  # ring_run moves one tensor: split it again inside

        def call(vi, vo, *r):
            src = np.ctypeslib.as_array(C.cast(vi.data, C.POINTER(C.c_float)), (vi.cap,))
            n = vi.cap // (2 * c)
            ra = np.ascontiguousarray(src.reshape(n, 2 * c)[:, :c])
            rb = np.ascontiguousarray(src.reshape(n, 2 * c)[:, c:])
            va = hostlib.View(ra.ctypes.data, h, w, c, vi.y0, vi.xcap, ra.size)
            vb = hostlib.View(rb.ctypes.data, h, w, c, vi.y0, vi.xcap, rb.size)
            lib.msf_binary_f32(C.byref(p), C.byref(va), C.byref(vb), C.byref(vo), *r)
        rung = ring_run(call, ab, c, rng)
    else:
        vb = hostlib.full_view(b)

        def call(vi, vo, *r):
            lib.msf_binary_f32(C.byref(p), C.byref(vi), C.byref(vb), C.byref(vo), *r)
        rung = ring_run(call, a, c, rng)
    np.testing.assert_array_equal(rung, full)
    # out aliases in1
    a2 = a.copy()
    va = hostlib.full_view(a2)
    vb = hostlib.full_view(b)
    lib.msf_binary_f32(C.byref(p), C.byref(va), C.byref(vb), C.byref(va), 0, h, 0, w)
    np.testing.assert_array_equal(a2, full)


def test_binary_division_by_zero_and_nan_like_onnxruntime(lib):
    a = np.array([1.0, -1.0, 0.0, np.inf, np.nan, 2.0], np.float32).reshape(1, 1, 6)
    b = np.array([0.0, 0.0, 0.0, 0.0, 1.0, -0.0], np.float32).reshape(1, 1, 6)
    nodes = [helper.make_node("Div", ["x", "b"], ["y"])]
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = _hwc(_session(nodes, {"x": _nchw(a), "b": _nchw(b)}, [], True))
    got = c_binary(lib, BinaryF32(BIN_DIV, BCAST_NONE, -np.inf, np.inf), a, b)
    np.testing.assert_array_equal(got, ref)  # assert_array_equal treats NaN == NaN
    assert np.isinf(got[0, 0, 0]) and np.isnan(got[0, 0, 2])
