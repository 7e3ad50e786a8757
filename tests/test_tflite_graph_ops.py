"""TFLite graph ops (msfopt/importers/tflite_graph_ops.py) end to end, bit-exact with tflite-micro:
the model file is imported, planned, generated as C, built for the host and run; every output is
compared with tflite-micro on the same file (msfopt.oracles.reference, a child process), and the
linked arena with the predicted one.

* The three real Keras graph models of ``../shared/models`` (MobileNetV3-small: HARD_SWISH,
  squeeze-excite MEAN -> CONV -> CONV(relu6) -> MUL(1/6) -> MUL broadcast, input Rescaling as
  MUL + ADD of constants; EfficientNet-B0: swish = LOGISTIC + MUL, squeeze-excite; U-Net:
  CONCATENATION, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, TRANSPOSE_CONV, per-pixel SOFTMAX):
  unfused, zero-recompute minimum-RAM and minimum-RAM plans.
* Small models written here with tests/tflite_builder.py: each new op alone (every int8 input
  value reaches the unary ones) and one graph model mixing them under fused plans.
* The unsupported forms are refused with a clear one-line reason.

Expected values come only from tflite-micro.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED_MODELS, require

require("tflite", "tflite-micro")
import tflite  # noqa: E402

from msfopt import ir, oracles  # noqa: E402
from msfopt.dag import build_dag  # noqa: E402
from msfopt.importers import UnsupportedModelError  # noqa: E402
from msfopt.importers.tflite_import import load_tflite, loads_tflite  # noqa: E402
from msfopt.layout import aligned_arena  # noqa: E402
from msfopt.mcu_runtime.codegen import generate  # noqa: E402
from msfopt.mcu_runtime.hostrun import build_host, run_host  # noqa: E402
from msfopt.solver import solve  # noqa: E402
from tflite_builder import ACT, BO, OP, SAME, VALID, ModelWriter  # noqa: E402
from test_graph_models import GUARD, _elf_arena  # noqa: E402
from test_tflite_import import (_conv_weights, add_opts, conv_opts, mean_opts,  # noqa: E402
                                reshape_opts)
from test_tflm_exact import softmax_opts  # noqa: E402

BOP = tflite.BuiltinOperator
OPS = dict(OP, HARD_SWISH=BOP.HARD_SWISH, LOGISTIC=BOP.LOGISTIC, TANH=BOP.TANH,
           LEAKY_RELU=BOP.LEAKY_RELU, PRELU=BOP.PRELU, RELU=BOP.RELU, RELU6=BOP.RELU6, QUANTIZE=BOP.QUANTIZE,
           RESIZE_NEAREST_NEIGHBOR=BOP.RESIZE_NEAREST_NEIGHBOR,
           RESIZE_BILINEAR=BOP.RESIZE_BILINEAR, TRANSPOSE_CONV=BOP.TRANSPOSE_CONV)


# ------------------------------------------------------------------------------------------------
# options builders
# ------------------------------------------------------------------------------------------------

def mul_opts(act="none"):
    def f(b):
        tflite.MulOptionsStart(b)
        tflite.MulOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.MulOptionsEnd(b)
    return BO.MulOptions, f


def concat_opts(axis=3, act="none"):
    def f(b):
        tflite.ConcatenationOptionsStart(b)
        tflite.ConcatenationOptionsAddAxis(b, axis)
        tflite.ConcatenationOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.ConcatenationOptionsEnd(b)
    return BO.ConcatenationOptions, f


def leaky_opts(alpha):
    def f(b):
        tflite.LeakyReluOptionsStart(b)
        tflite.LeakyReluOptionsAddAlpha(b, alpha)
        return tflite.LeakyReluOptionsEnd(b)
    return BO.LeakyReluOptions, f


def resize_opts(nearest: bool, align=False, half=False):
    if nearest:
        def f(b):
            tflite.ResizeNearestNeighborOptionsStart(b)
            tflite.ResizeNearestNeighborOptionsAddAlignCorners(b, align)
            tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters(b, half)
            return tflite.ResizeNearestNeighborOptionsEnd(b)
        return BO.ResizeNearestNeighborOptions, f

    def g(b):
        tflite.ResizeBilinearOptionsStart(b)
        tflite.ResizeBilinearOptionsAddAlignCorners(b, align)
        tflite.ResizeBilinearOptionsAddHalfPixelCenters(b, half)
        return tflite.ResizeBilinearOptionsEnd(b)
    return BO.ResizeBilinearOptions, g


def tconv_opts(padding, stride, act="none"):
    def f(b):
        tflite.TransposeConvOptionsStart(b)
        tflite.TransposeConvOptionsAddPadding(b, padding)
        tflite.TransposeConvOptionsAddStrideH(b, stride[0])
        tflite.TransposeConvOptionsAddStrideW(b, stride[1])
        tflite.TransposeConvOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.TransposeConvOptionsEnd(b)
    return BO.TransposeConvOptions, f


def const8(w: ModelWriter, values, scale, zp, shape=None):
    v = np.asarray(values, np.int8)
    return w.tensor(list(v.shape) if shape is None else shape, w.INT8, scale, zp, data=v)


# ------------------------------------------------------------------------------------------------
# the check: import, plan, generate, build, run == tflite-micro, linked arena == predicted
# ------------------------------------------------------------------------------------------------

def all_values_inputs(shape, n, rng):
    """n random int8 inputs; the first holds every int8 value (if it has >= 256 elements), the
    next the two extremes."""
    xs = [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(n)]
    if xs[0].size >= 256:
        flat = xs[0].reshape(-1)
        flat[:256] = rng.permutation(np.arange(-128, 128)).astype(np.int8)
    if n > 2:
        xs[1][:] = -128
        xs[2][:] = 127
    return xs


def plans_of(net, which=("unfused", "zero-recompute", "min-ram")):
    dag = build_dag(net)
    out = {}
    if "unfused" in which:
        out["unfused"] = [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e])
                          for e in dag.vanilla_path()]
    if "zero-recompute" in which:
        out["zero-recompute"] = solve(net, objective="ram", max_overhead=1.0, dag=dag,
                                      check=False).blocks
    if "min-ram" in which:
        out["min-ram"] = solve(net, objective="ram", dag=dag, check=False).blocks
    return out


def _key(blocks):
    return tuple(b if isinstance(b, tuple) else (b.first_layer, b.last_layer, b.mode, b.tile)
                 for b in blocks)


def check_bit_exact(net, path, xs, plans, tmp_path):
    """Every plan's C output == tflite-micro's on every input; returns tflite-micro's outputs.
    Plans with the same blocks give the same C: built once, run for each."""
    ref = oracles.reference(net, xs, path)
    assert ref.oracle == oracles.TFLM and ref.kind == "external"
    built: dict = {}
    for tag, blocks in plans.items():
        k = _key(blocks)
        if k not in built:
            gen = generate(net, blocks, tmp_path / tag)
            exe = build_host(gen, guard=GUARD)
            assert _elf_arena(exe) == gen.arena_bytes + 2 * GUARD, \
                f"{net.name} {tag}: linked arena != predicted {gen.arena_bytes} B"
            assert gen.arena_bytes == aligned_arena(max(s.ram_bytes for s in gen.schedules))
            built[k] = (gen, exe)
        gen, exe = built[k]
        for j, (x, want) in enumerate(zip(xs, ref.ys)):
            y = run_host(gen, exe, x)
            assert y.shape == want.shape and np.array_equal(y, want), (
                f"{net.name} {tag} input {j}: {int(np.sum(y != want))} of {want.size} outputs "
                f"differ from tflite-micro")
    return ref.ys


def run_small(tmp_path, name, model: bytes, n_inputs=4, which=("unfused",), seed=0):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    net = load_tflite(path)
    xs = all_values_inputs(net.input_shape, n_inputs, np.random.default_rng(seed))
    ys = check_bit_exact(net, path, xs, plans_of(net, which), tmp_path)
    return net, ys


# ------------------------------------------------------------------------------------------------
# the three real models
# ------------------------------------------------------------------------------------------------

REAL = {
    # file -> (IR layer kinds that must appear, with minimum counts), inputs
    "keras_mobilenet_v3_small_r96_int8.tflite": ({"act:hardswish": 19, "mul": 19,
                                                  "act:affine": 1, "gap": 9}, 5),
    # swish = LOGISTIC + MUL folds into one table (49); the 16 SE gates stay LOGISTIC, MUL
    "keras_efficientnet_b0_r96_int8.tflite": ({"act:swish": 49, "act:sigmoid": 16, "mul": 16,
                                               "add": 9, "gap": 16}, 5),
    "keras_unet_r96_int8.tflite": ({"concat": 3, "resize": 2, "convt": 1}, 5),
}


def _kinds(net):
    return [l.op + (f":{l.fn}" if l.op == ir.ACT else "") for l in net.layers]


@pytest.mark.parametrize("file", list(REAL))
def test_real_graph_model_bit_exact_with_tflm(file, tmp_path):
    require("../shared/models")
    path = SHARED_MODELS / file
    net = load_tflite(path)
    want_ops, n = REAL[file]
    kinds = _kinds(net)
    for k, c in want_ops.items():
        assert kinds.count(k) >= c, f"{file}: {kinds.count(k)} {k} layers, expected >= {c}"
    assert net.tail_softmax is not None and net.requant == "fixed"
    rng = np.random.default_rng(len(file))
    xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(n)]
    ys = check_bit_exact(net, path, xs, plans_of(net), tmp_path)
    assert len({y.tobytes() for y in ys}) == n   # the oracle's outputs depend on the input


def test_real_unet_layers(tmp_path):
    """The U-Net's graph layers carry TFLite's facts: resize flags, CONVT geometry, concat
    operands in TFLite's order."""
    require("../shared/models")
    net = load_tflite(SHARED_MODELS / "keras_unet_r96_int8.tflite")
    rs = [l for l in net.layers if l.op == ir.RESIZE]
    assert [r.resize.mode for r in rs] == ["nearest", "bilinear"]
    assert all(r.resize.framework == "tflite" for r in rs)
    (ct,) = [l for l in net.layers if l.op == ir.CONVT]
    assert ct.kernel == (2, 2) and ct.stride == (2, 2) and ct.out_shape == (96, 96, 8)
    assert ct.pad == (0, 0, 0, 0) and ct.weight.shape == (8, 2, 2, 16)
    for l in net.layers:
        if l.op == ir.CONCAT:
            assert l.srcs[0] == net.layers.index(l)   # the upsampled map first, then the skip
            assert l.srcs[1] < l.srcs[0]


# ------------------------------------------------------------------------------------------------
# one op at a time
# ------------------------------------------------------------------------------------------------

#: op -> (input quant, output quant, options)
UNARY = {
    "HARD_SWISH": ((0.05, -5), (0.03, -110), None),
    "LOGISTIC": ((0.06, 3), (1 / 256, -128), None),
    "TANH": ((0.03, 0), (1 / 128, 0), None),
    "LEAKY_RELU": ((0.04, 10), (0.03, -20), leaky_opts(0.2)),
    "RELU": ((0.05, -3), (0.04, -128), None),
    "RELU6": ((0.04, -30), (0.04, -30), None),
    "QUANTIZE": ((0.05, 4), (0.07, -9), None),
    # TFLM's LOGISTIC / TANH ignore the output scale (and TANH the zero point): so do the tables
    "LOGISTIC:odd-scale": ((0.06, 3), (0.01, -128), None),
    "TANH:odd-quant": ((0.03, 0), (0.01, 5), None),
}


def unary_model(case, shape=(8, 8, 4)):
    (si, zi), (so, zo), opts = UNARY[case]
    w = ModelWriter()
    x = w.act([1, *shape], si, zi)
    y = w.act([1, *shape], so, zo)
    w.op(OPS[case.split(":")[0]], [x], [y], *(opts or ()))
    return w.build([x], [y])


@pytest.mark.parametrize("case", list(UNARY))
def test_unary_op_bit_exact(case, tmp_path):
    net, ys = run_small(tmp_path, "unary", unary_model(case))
    op = case.split(":")[0]
    fn = {"HARD_SWISH": "hardswish", "LOGISTIC": "sigmoid", "TANH": "tanh",
          "LEAKY_RELU": "leaky", "RELU": "relu", "RELU6": "clip", "QUANTIZE": "quantize"}[op]
    assert [(l.op, l.fn) for l in net.layers] == [(ir.ACT, fn)]
    assert len(np.unique(ys[0])) > 20   # the table is not degenerate over the 256 values


@pytest.mark.parametrize("alpha_shape", [[1, 1, 4], [4], []])
def test_prelu_bit_exact(alpha_shape, tmp_path):
    w = ModelWriter()
    x = w.act([1, 8, 8, 4], 0.04, 9)
    vals = np.array([-90, 0, 45, 127], np.int8) if alpha_shape else np.int8(-70)
    a = const8(w, np.asarray(vals).reshape(alpha_shape), 0.005, -20)
    y = w.act([1, 8, 8, 4], 0.03, -30)
    w.op(OPS["PRELU"], [x, a], [y])
    net, ys = run_small(tmp_path, "prelu", w.build([x], [y]))
    (l,) = net.layers
    assert (l.op, l.fn) == (ir.ACT, "prelu") and l.weight.size == (4 if alpha_shape else 1)
    assert len(np.unique(ys[0])) > 20


def mul_model(kind, act="none"):
    """x [6,5,8] -> MUL of kind: 'same' (x * LOGISTIC(x)), 'gate' (x * MEAN(x) [1,1,1,8]),
    'gate-first' (MEAN(x) * x), 'scalar' (x * constant), 'scalar-first' (constant * x),
    'channel' (x * constant [8])."""
    w = ModelWriter()
    x = w.act([1, 6, 5, 8], 0.05, -7)
    ins = None
    if kind == "same":
        s = w.act([1, 6, 5, 8], 1 / 256, -128)
        w.op(OPS["LOGISTIC"], [x], [s])
        ins = [x, s]
    elif kind.startswith("gate"):
        axes = w.tensor([2], w.INT32, data=np.array([1, 2], np.int32))
        g = w.act([1, 1, 1, 8], 0.02, 5)
        w.op(OPS["MEAN"], [x, axes], [g], *mean_opts(True))
        ins = [x, g] if kind == "gate" else [g, x]
    elif kind.startswith("scalar"):
        k = const8(w, 97, 0.004, -20, shape=[])
        ins = [x, k] if kind == "scalar" else [k, x]
    elif kind == "channel":
        k = const8(w, np.arange(-60, 100, 20), 0.01, 3, shape=[8])
        ins = [x, k]
    y = w.act([1, 6, 5, 8], 0.03, 11)
    w.op(OPS["MUL"], ins, [y], *mul_opts(act))
    return w.build([x], [y])


@pytest.mark.parametrize("kind,act", [("same", "none"), ("gate", "relu"), ("gate-first", "none"),
                                      ("scalar", "relu6"), ("scalar-first", "none"),
                                      ("channel", "none")])
def test_mul_bit_exact(kind, act, tmp_path):
    net, ys = run_small(tmp_path, f"mul-{kind}", mul_model(kind, act))
    if kind == "same":   # x * LOGISTIC(x) folds into one swish table (bit-exact all the same)
        assert [(l.op, l.fn, l.act) for l in net.layers] == [(ir.ACT, "swish", act)]
        assert net.provenance.layer_ops == ("LOGISTIC+MUL",)
        assert len(np.unique(ys[0])) > 10
        return
    (m,) = [l for l in net.layers if l.op == ir.MUL]
    assert m.in_shape == (6, 5, 8) and m.act == act
    assert (m.src2 is None) == (kind in ("scalar", "scalar-first", "channel"))
    assert len(np.unique(ys[0])) > 10


def add_const_model(first: bool, act="none", cval=-100, cq=(0.01, 20), xq=(0.02, -10),
                    yq=(0.025, 30)):
    w = ModelWriter()
    x = w.act([1, 4, 8, 8], *xq)
    k = const8(w, cval, cq[0], cq[1], shape=[])
    y = w.act([1, 4, 8, 8], *yq)
    w.op(OPS["ADD"], [k, x] if first else [x, k], [y], *add_opts(act))
    return w.build([x], [y])


ADD_CONST_CASES = [
    (False, "none", -100, (0.01, 20), (0.02, -10), (0.025, 30)),
    (True, "relu", 77, (0.003, -128), (0.02, -10), (0.025, 30)),
    (False, "relu6", 127, (0.004, 127), (0.02, -10), (0.025, 30)),
    # exact ties: TFLM's fixed-point AddFunc differs from rounding the real sum (either way)
    # on 39 of the 256 inputs
    (False, "none", -62, (0.025, 35), (0.1, 19), (0.15, -5)),
]


@pytest.mark.parametrize("first,shape,act,per_channel_q", [
    (False, [6], "none", False), (True, [1, 1, 1, 6], "relu", False),
    (False, [6], "relu6", True), (True, [1, 6], "none", True)])
def test_add_per_channel_constant_bit_exact(first, shape, act, per_channel_q, tmp_path):
    """ADD(x, k) with a [C] constant (one int8 value per channel, every value on its channel's
    rows; either operand order): msf_prelu_s8's MSF_ELT_ADD_CONST (TFLM's AddFunc with the
    constant's summand precomputed per channel) equals tflite-micro on every int8 input (the
    first of the four inputs holds all 256 values), unfused and inside the minimum-RAM plan
    after a conv.  A per-channel quantised constant (a scale / zero point per channel) is
    computed as TFLM does, with its first scale / zero point."""
    rng = np.random.default_rng(len(shape) + 3 * per_channel_q)
    w = ModelWriter()
    x = w.act([1, 6, 7, 6], 0.03, -7)
    cw, cb = _conv_weights(w, rng, [6, 3, 3, 6], 0)
    h = w.act([1, 6, 7, 6], 0.05, 4)
    w.op(OPS["CONV_2D"], [x, cw, cb], [h], *conv_opts(SAME, (1, 1), "none"))
    vals = rng.integers(-128, 128, 6).astype(np.int8)
    vals[:2] = (-128, 127)
    if per_channel_q:
        k = w.tensor(shape, w.INT8, rng.uniform(0.01, 0.08, 6).astype(np.float32),
                     rng.integers(-20, 20, 6), qdim=len(shape) - 1, data=vals.reshape(shape))
    else:
        k = const8(w, vals, 0.04, 11, shape=shape)
    y = w.act([1, 6, 7, 6], 0.06, -3)
    w.op(OPS["ADD"], [k, h] if first else [h, k], [y], *add_opts(act))
    net, ys = run_small(tmp_path, "addpc", w.build([x], [y]), which=("unfused", "min-ram"))
    (a,) = [L for L in net.layers if L.op == ir.ACT]
    assert (a.fn, a.act, np.asarray(a.bias).size) == ("affine", act, 6)
    assert len(np.unique(ys[0])) > 20


@pytest.mark.parametrize("first,act,cval,cq,xq,yq", ADD_CONST_CASES)
def test_add_constant_bit_exact(first, act, cval, cq, xq, yq, tmp_path):
    net, ys = run_small(tmp_path, "addc", add_const_model(first, act, cval, cq, xq, yq))
    (l,) = net.layers
    assert (l.op, l.fn, l.act) == (ir.ACT, "affine", act) and l.weight is None
    assert int(l.bias[0]) == cval and l.w_quant.scale[0] == pytest.approx(cq[0])
    assert len(np.unique(ys[0])) > 10


def concat_model(axis=3):
    """x [5,6,3] -> CONV a (4 ch), CONV b (2 ch) with x's quantisation -> CONCAT(b, x, a)."""
    rng = np.random.default_rng(3)
    w = ModelWriter()
    x = w.act([1, 5, 6, 3], 0.05, -4)
    outs = []
    for c in (4, 2):
        cw, cb = _conv_weights(w, rng, [c, 3, 3, 3], 0)
        o = w.act([1, 5, 6, c], 0.05, -4)
        w.op(OPS["CONV_2D"], [x, cw, cb], [o], *conv_opts(SAME, (1, 1)))
        outs.append(o)
    y = w.act([1, 5, 6, 9], 0.05, -4)
    w.op(OPS["CONCATENATION"], [outs[1], x, outs[0]], [y], *concat_opts(axis))
    return w.build([x], [y])


@pytest.mark.parametrize("axis", [3, -1])
def test_concat_bit_exact(axis, tmp_path):
    net, _ = run_small(tmp_path, "concat", concat_model(axis),
                       which=("unfused", "zero-recompute", "min-ram"))
    (c,) = [l for l in net.layers if l.op == ir.CONCAT]
    assert c.srcs == (2, 0, 1) and c.out_shape == (5, 6, 9)


@pytest.mark.parametrize("nearest", [True, False])
@pytest.mark.parametrize("align,half", [(False, False), (True, False), (False, True)])
def test_resize_bit_exact(nearest, align, half, tmp_path):
    w = ModelWriter()
    x = w.act([1, 5, 4, 3], 0.04, 7)
    size = w.tensor([2], w.INT32, data=np.array([10, 11], np.int32))
    y = w.act([1, 10, 11, 3], 0.04, 7)
    w.op(OPS["RESIZE_NEAREST_NEIGHBOR" if nearest else "RESIZE_BILINEAR"], [x, size], [y],
         *resize_opts(nearest, align, half))
    net, _ = run_small(tmp_path, "resize", w.build([x], [y]))
    (r,) = net.layers
    assert r.op == ir.RESIZE and r.out_shape == (10, 11, 3)
    assert (r.resize.align_corners, r.resize.half_pixel_centers) == (align, half)


def tconv_model(padding, out_hw, k, s, bias: bool, act="none", seed=0):
    rng = np.random.default_rng(seed)
    h, wd, cin, cout = 5, 4, 3, 4
    w = ModelWriter()
    x = w.act([1, h, wd, cin], 0.05, -3)
    oshape = w.tensor([4], w.INT32, data=np.array([1, *out_hw, cout], np.int32))
    ws = rng.uniform(0.003, 0.02, cout).astype(np.float32)
    wt = w.tensor([cout, *k, cin], w.INT8, ws, np.zeros(cout, np.int64), qdim=0,
                  data=rng.integers(-127, 128, (cout, *k, cin), dtype=np.int8))
    ins = [oshape, wt, x]
    if bias:
        ins.append(w.tensor([cout], w.INT32, ws * 0.05, np.zeros(cout, np.int64),
                            data=rng.integers(-2000, 2000, cout, dtype=np.int32)))
    taps = max(1, k[0] * k[1] * cin // (s[0] * s[1]))
    ys = float(0.05 * ws.mean() * 70 * np.sqrt(taps))
    y = w.act([1, *out_hw, cout], ys, 6)
    w.op(OPS["TRANSPOSE_CONV"], ins, [y], *tconv_opts(padding, s, act))
    return w.build([x], [y])


@pytest.mark.parametrize("padding,out_hw,k,s,bias,act", [
    (SAME, (10, 8), (2, 2), (2, 2), False, "none"),       # the U-Net's upsampling
    (SAME, (9, 7), (3, 3), (2, 2), True, "relu"),         # TFLite crops the end
    (VALID, (11, 9), (3, 3), (2, 2), True, "relu6"),
    (VALID, (7, 6), (3, 2), (1, 2), False, "none"),
])
def test_transpose_conv_bit_exact(padding, out_hw, k, s, bias, act, tmp_path):
    net, ys = run_small(tmp_path, "tconv", tconv_model(padding, out_hw, k, s, bias, act))
    (c,) = net.layers
    assert c.op == ir.CONVT and c.out_shape == (*out_hw, 4) and c.act == act
    assert (c.bias is not None) == bias
    assert len(np.unique(ys[0])) > 10


# ------------------------------------------------------------------------------------------------
# a small graph model mixing the ops, under fused plans
# ------------------------------------------------------------------------------------------------

def graph_model(seed=5) -> bytes:
    """16x16x3 -> MUL(const) -> ADD(const) [input rescaling] -> CONV 3x3 -> HARD_SWISH h
    -> SE: MEAN -> CONV relu -> CONV relu6 -> MUL(1/6) -> MUL(h, gate) = se
    -> CONV 3x3/2 d -> swish (LOGISTIC, MUL: one swish table) sw [8x8x8]
    -> RESIZE_BILINEAR(sw) and TRANSPOSE_CONV 2x2/2(sw) -> CONCAT(resized, se, tconv)
    -> CONV 1x1 -> 3 classes -> per-pixel SOFTMAX."""
    rng = np.random.default_rng(seed)
    w = ModelWriter()
    Q = (0.03, -100)   # the concat's common quantisation
    x = w.act([1, 16, 16, 3], 1.0, -128)
    k1 = const8(w, 0, 3.076e-05, -128, shape=[])          # ~1/255 (Keras Rescaling)
    a = w.act([1, 16, 16, 3], 0.0039, -128)
    w.op(OPS["MUL"], [x, k1], [a], *mul_opts())
    k2 = const8(w, -128, 0.0039, 127, shape=[])           # -1.0
    b = w.act([1, 16, 16, 3], 0.0078, -1)
    w.op(OPS["ADD"], [a, k2], [b], *add_opts())
    cw, cb = _conv_weights(w, rng, [8, 3, 3, 3], 0)
    c = w.act([1, 16, 16, 8], 0.06, -3)
    w.op(OPS["CONV_2D"], [b, cw, cb], [c], *conv_opts(SAME, (1, 1)))
    h = w.act([1, 16, 16, 8], 0.03, -110)
    w.op(OPS["HARD_SWISH"], [c], [h])
    axes = w.tensor([2], w.INT32, data=np.array([1, 2], np.int32))
    m = w.act([1, 1, 1, 8], 0.01, -100)
    w.op(OPS["MEAN"], [h, axes], [m], *mean_opts(True))
    s1w, s1b = _conv_weights(w, rng, [4, 1, 1, 8], 0)
    s1 = w.act([1, 1, 1, 4], 0.01, -128)
    w.op(OPS["CONV_2D"], [m, s1w, s1b], [s1], *conv_opts(VALID, (1, 1), "relu"))
    s2w, s2b = _conv_weights(w, rng, [8, 1, 1, 4], 0)
    s2 = w.act([1, 1, 1, 8], 0.0235, -128)
    w.op(OPS["CONV_2D"], [s1, s2w, s2b], [s2], *conv_opts(VALID, (1, 1), "relu6"))
    six = const8(w, 127, 0.00065, -128, shape=[])
    g = w.act([1, 1, 1, 8], 0.0039, -128)
    w.op(OPS["MUL"], [s2, six], [g], *mul_opts())
    se = w.act([1, 16, 16, 8], *Q)
    w.op(OPS["MUL"], [h, g], [se], *mul_opts())
    dw_, db = _conv_weights(w, rng, [8, 3, 3, 8], 0)
    d = w.act([1, 8, 8, 8], 0.05, 2)
    w.op(OPS["CONV_2D"], [se, dw_, db], [d], *conv_opts(SAME, (2, 2)))
    sg = w.act([1, 8, 8, 8], 1 / 256, -128)
    w.op(OPS["LOGISTIC"], [d], [sg])
    sw = w.act([1, 8, 8, 8], *Q)
    w.op(OPS["MUL"], [d, sg], [sw], *mul_opts())
    size = w.tensor([2], w.INT32, data=np.array([16, 16], np.int32))
    up = w.act([1, 16, 16, 8], *Q)
    w.op(OPS["RESIZE_BILINEAR"], [sw, size], [up], *resize_opts(False, False, True))
    oshape = w.tensor([4], w.INT32, data=np.array([1, 16, 16, 4], np.int32))
    tws = rng.uniform(0.003, 0.02, 4).astype(np.float32)
    tw = w.tensor([4, 2, 2, 8], w.INT8, tws, np.zeros(4, np.int64), qdim=0,
                  data=rng.integers(-127, 128, (4, 2, 2, 8), dtype=np.int8))
    tb = w.tensor([4], w.INT32, tws * Q[0], np.zeros(4, np.int64),
                  data=rng.integers(-500, 500, 4, dtype=np.int32))
    tc = w.act([1, 16, 16, 4], *Q)
    w.op(OPS["TRANSPOSE_CONV"], [oshape, tw, sw, tb], [tc], *tconv_opts(SAME, (2, 2), "relu"))
    cat = w.act([1, 16, 16, 20], *Q)
    w.op(OPS["CONCATENATION"], [up, se, tc], [cat], *concat_opts(3))
    hw, hb = _conv_weights(w, rng, [3, 1, 1, 20], 0)
    logits = w.act([1, 16, 16, 3], 0.08, 0)
    w.op(OPS["CONV_2D"], [cat, hw, hb], [logits], *conv_opts(VALID, (1, 1)))
    out = w.act([1, 16, 16, 3], 1 / 256, -128)
    w.op(OPS["SOFTMAX"], [logits], [out], *softmax_opts(1.0))
    return w.build([x], [out])


def test_graph_model_fused_plans_bit_exact(tmp_path):
    path = tmp_path / "graph.tflite"
    path.write_bytes(graph_model())
    net = load_tflite(path)
    kinds = _kinds(net)
    for k in ("mul", "act:affine", "act:hardswish", "act:swish", "resize", "convt", "concat"):
        assert k in kinds, k
    plans = plans_of(net)
    plans["latency"] = solve(net, objective="latency", check=False).blocks
    assert any(b[0] != b[1] for bl in plans.values() for b in _key(bl)), "no fused block"
    xs = all_values_inputs(net.input_shape, 5, np.random.default_rng(9))
    ys = check_bit_exact(net, path, xs, plans, tmp_path)
    assert len({y.tobytes() for y in ys}) == 5


# ------------------------------------------------------------------------------------------------
# unsupported forms: one clear line
# ------------------------------------------------------------------------------------------------

def _err(model: bytes) -> str:
    with pytest.raises(UnsupportedModelError) as e:
        loads_tflite(model, name="m")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_concat_with_different_quantisation_is_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    y0 = w.act([1, 4, 4, 2], 0.1, 3)
    w.op(OPS["QUANTIZE"], [x], [y0])
    y = w.act([1, 4, 4, 4], 0.05, 3)
    w.op(OPS["CONCATENATION"], [x, y0], [y], *concat_opts())
    msg = _err(w.build([x], [y]))
    assert "CONCATENATION x1" in msg and "differs from the output's" in msg


def test_concat_on_another_axis_is_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    y = w.act([1, 8, 4, 2], 0.05, 3)
    w.op(OPS["CONCATENATION"], [x, x], [y], *concat_opts(1))
    assert "concatenation on axis 1" in _err(w.build([x], [y]))


def test_mul_unsupported_broadcast_is_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    k = const8(w, np.arange(8).reshape(1, 4, 1, 2), 0.01, 0)
    y = w.act([1, 4, 4, 2], 0.05, 3)
    w.op(OPS["MUL"], [x, k], [y], *mul_opts())
    assert "MUL x1: constant factor of shape [1, 4, 1, 2] does not broadcast" in \
        _err(w.build([x], [y]))
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    axes = w.tensor([1], w.INT32, data=np.array([2], np.int32))
    g = w.act([1, 4, 1, 2], 0.05, 3)
    w.op(OPS["MEAN"], [x, axes], [g], *mean_opts(True))
    y = w.act([1, 4, 4, 2], 0.05, 3)
    w.op(OPS["MUL"], [x, g], [y], *mul_opts())
    msg = _err(w.build([x], [y]))
    assert "MEAN x1: mean over axes [2]" in msg   # the MUL is not reported as a consequence
    assert "MUL" not in msg


def test_add_of_a_constant_of_another_shape_is_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    k = const8(w, [3, -4, 5, 6], 0.01, 0, shape=[4, 1, 1])
    y = w.act([1, 4, 4, 2], 0.05, 3)
    w.op(OPS["ADD"], [x, k], [y], *add_opts())
    assert "ADD x1: add of a constant of shape [4, 1, 1] (a scalar or one value per channel" \
        in _err(w.build([x], [y]))


def test_resize_forms_refused():
    def model(out_q=(0.04, 7), const_size=True, align=True, half=True):
        w = ModelWriter()
        x = w.act([1, 4, 4, 3], 0.04, 7)
        size = w.tensor([2], w.INT32, data=np.array([8, 8], np.int32) if const_size else None)
        y = w.act([1, 8, 8, 3], *out_q)
        w.op(OPS["RESIZE_BILINEAR"], [x, size], [y], *resize_opts(False, align, half))
        return w.build([x], [y])
    assert "half_pixel_centers requires align_corners = False" in _err(model())
    assert "input and output quantisation differ" in _err(model(out_q=(0.05, 7), align=False))
    assert "size is not a constant" in _err(model(const_size=False, align=False))


def test_transpose_conv_forms_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 3], 0.05, 0)
    oshape = w.tensor([4], w.INT32, data=np.array([1, 8, 8, 2], np.int32))
    wt = w.tensor([2, 2, 2, 3], w.INT8, [0.01, 0.01], [0, 5], qdim=0,
                  data=np.ones((2, 2, 2, 3), np.int8))
    y = w.act([1, 8, 8, 2], 0.05, 0)
    w.op(OPS["TRANSPOSE_CONV"], [oshape, wt, x], [y], *tconv_opts(SAME, (2, 2)))
    assert "TRANSPOSE_CONV x1: filter zero points are not 0" in _err(w.build([x], [y]))


def test_logistic_output_zero_point_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 3], 0.05, 0)
    y = w.act([1, 4, 4, 3], 1 / 256, 0)
    w.op(OPS["LOGISTIC"], [x], [y])
    assert "LOGISTIC x1: LOGISTIC int8: TFLM requires output zero point -128" in \
        _err(w.build([x], [y]))


def test_reshape_that_moves_data_is_a_reshape_layer(tmp_path):
    """A RESHAPE that is a layout no-op ([1,1,1,C] -> [1,C]) is no layer; one that regroups a
    map feeding a convolution ([1,4,4,2] -> [1,8,2,2]: the same bytes under another shape) is a
    RESHAPE layer, bit-exact with tflite-micro."""
    w = ModelWriter()
    x = w.act([1, 1, 1, 6], 0.05, 0)
    shp = w.tensor([2], w.INT32, data=np.array([1, 6], np.int32))
    f = w.act([1, 6], 0.05, 0)
    w.op(OPS["RESHAPE"], [x, shp], [f], *reshape_opts([1, 6]))
    y = w.act([1, 6], 0.04, 1)
    w.op(OPS["HARD_SWISH"], [f], [y])
    net = loads_tflite(w.build([x], [y]))
    assert [l.op for l in net.layers] == [ir.ACT] and net.provenance.folded == (0,)

    rng = np.random.default_rng(0)
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 0)
    c0w, c0b = _conv_weights(w, rng, [2, 1, 1, 2], 0)
    x1 = w.act([1, 4, 4, 2], 0.05, 0)
    w.op(OPS["CONV_2D"], [x, c0w, c0b], [x1], *conv_opts(VALID, (1, 1)))
    shp = w.tensor([4], w.INT32, data=np.array([1, 8, 2, 2], np.int32))
    r = w.act([1, 8, 2, 2], 0.05, 0)
    w.op(OPS["RESHAPE"], [x1, shp], [r], *reshape_opts([1, 8, 2, 2]))
    cw, cb = _conv_weights(w, rng, [2, 1, 1, 2], 0)
    y = w.act([1, 8, 2, 2], 0.05, 0)
    w.op(OPS["CONV_2D"], [r, cw, cb], [y], *conv_opts(VALID, (1, 1)))
    net, _ = run_small(tmp_path, "reshape", w.build([x], [y]), which=("unfused", "min-ram"))
    assert [l.op for l in net.layers] == [ir.CONV, ir.RESHAPE, ir.CONV]
    assert net.layers[1].out_shape == (8, 2, 2)
