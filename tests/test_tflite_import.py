"""TFLite int8 import and the tflite-micro reference wrapper.

Real models are read from ``../shared/models`` beside the checkout (never copied into the repo);
those tests skip when the folder is absent.  Small models are also written here with the
``tflite`` package's generated flatbuffer builders (no TensorFlow needed) and run through
tflite-micro, which is the oracle for the importer's padding / weight layout / requantisation.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

tflite = pytest.importorskip("tflite", reason="the 'tflite' package is not installed")
flatbuffers = pytest.importorskip("flatbuffers")

from msfopt import ir  # noqa: E402
from msfopt.importers import UnsupportedModelError  # noqa: E402
from msfopt.importers.tflite_import import load_tflite, loads_tflite  # noqa: E402
from msfopt.mcu_runtime import requant  # noqa: E402

try:
    from tflite_micro.python.tflite_micro import runtime as _tflm_runtime  # noqa: F401
    HAVE_TFLM = True
except Exception:  # pragma: no cover - depends on the environment
    HAVE_TFLM = False

needs_tflm = pytest.mark.skipif(not HAVE_TFLM, reason="the 'tflite-micro' package is not installed")

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
needs_models = pytest.mark.skipif(not MODELS.exists(),
                                  reason=f"real models folder {MODELS} is absent")

# figures from shared/models/README.md
REAL = {
    "vww": dict(file="mlperf_tiny_vww_96_int8.tflite", layers=29, macs=7_489_664,
                peak=55_296, peak_chain=55_296, arena=103_680, adds=0, inp=(96, 96, 3),
                out=(1, 2), softmax=True),
    "resnet8": dict(file="mlperf_tiny_resnet8_int8.tflite", layers=14, macs=12_501_632,
                    peak=49_152, peak_chain=32_768, arena=55_984, adds=3, inp=(32, 32, 3),
                    out=(1, 10), softmax=True),
    "kws": dict(file="mlperf_tiny_dscnn_kws_int8.tflite", layers=11, macs=2_656_768,
                peak=16_000, peak_chain=16_000, arena=24_272, adds=0, inp=(49, 10, 1),
                out=(1, 12), softmax=True),
    "mcunet": dict(file="mcunet_320kb_1mb_imagenet_int8.tflite", layers=67, macs=81_785_520,
                   peak=340_736, peak_chain=309_760, arena=512_064, adds=11, inp=(176, 176, 3),
                   out=(1, 1000), softmax=False),
}


# ------------------------------------------------------------------------------------------------
# independent helpers
# ------------------------------------------------------------------------------------------------

def _shape(net, t):
    return net.input_shape if t == 0 else net.layers[t - 1].out_shape


def _bytes(net, t):
    h, w, c = _shape(net, t)
    return h * w * c  # int8


def live_peak(net, keep_skips: bool = True) -> int:
    """Max over layers of the live activation bytes, input image counted.

    keep_skips: a tensor stays alive from its production until the last layer reading it (as src
    or src2), the layer's own output included.  Otherwise (the paper's chain model) a layer only
    holds its src tensor and its output.  Computed from the layers' src/src2 alone."""
    last_read: dict[int, int] = {}
    for i, layer in enumerate(net.layers):
        reads = [layer.src] + ([layer.src2] if layer.src2 is not None else [])
        for t in reads:
            last_read[t] = max(last_read.get(t, -1), i)
    peak = 0
    for i, layer in enumerate(net.layers):
        if keep_skips:
            live = sum(_bytes(net, t) for t in range(i + 2)
                       if t == i + 1 or last_read.get(t, -1) >= i)
        else:
            live = _bytes(net, layer.src) + _bytes(net, i + 1)
        peak = max(peak, live)
    return peak


def tflite_graph(path):
    """(op names, op input/output tensor lists) straight from the flatbuffer."""
    from tflite.utils import BUILTIN_OPCODE2NAME
    buf = Path(path).read_bytes()
    m = tflite.Model.GetRootAs(buf, 0)
    g = m.Subgraphs(0)
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        ops.append((BUILTIN_OPCODE2NAME[code], list(op.InputsAsNumpy()), list(op.OutputsAsNumpy())))
    return ops


# ------------------------------------------------------------------------------------------------
# real models
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_nets():
    out = {}
    for key, ref in REAL.items():
        t0 = time.perf_counter()
        out[key] = (load_tflite(MODELS / ref["file"]), time.perf_counter() - t0)
    return out


@needs_models
@pytest.mark.parametrize("key", list(REAL))
def test_real_model_import(real_nets, key):
    ref = REAL[key]
    net, seconds = real_nets[key]
    assert seconds < 10
    net.validate()
    assert net.dtype == "int8"
    assert net.n_layers == ref["layers"]
    assert net.input_shape == ref["inp"]
    assert len(net.tensor_quant) == net.n_layers + 1
    assert all(q is not None and not q.per_channel for q in net.tensor_quant)
    assert (net.tail_softmax is not None) is ref["softmax"]
    assert net.requant == "fixed" and net.provenance.framework == "tflite"
    assert net.provenance.output_shape == ref["out"]
    assert net.layers[-1].out_shape[2] == ref["out"][1]
    for layer in net.layers:
        if layer.op in (ir.CONV, ir.DW, ir.DENSE):
            assert layer.weight is not None and layer.weight.dtype == np.int8
            assert layer.weight.shape == ir.Network.weight_shape(layer)
            assert layer.bias is not None and layer.bias.dtype == np.int32
            assert layer.bias.shape == (layer.c_out,)
            assert layer.w_quant is not None
            assert len(layer.w_quant.scale) in (1, layer.c_out)


@needs_models
@pytest.mark.parametrize("key", list(REAL))
def test_real_model_macs(real_nets, key):
    net, _ = real_nets[key]
    macs = sum(l.macs for l in net.layers if l.op in (ir.CONV, ir.DW, ir.DENSE))
    assert macs == REAL[key]["macs"]


@needs_models
@pytest.mark.parametrize("key", list(REAL))
def test_real_model_live_peak(real_nets, key):
    net, _ = real_nets[key]
    assert live_peak(net, keep_skips=True) == REAL[key]["peak"]
    assert live_peak(net, keep_skips=False) == REAL[key]["peak_chain"]


@needs_models
@pytest.mark.parametrize("key", list(REAL))
def test_real_model_residual_adds(real_nets, key):
    net, _ = real_nets[key]
    adds = [(i, l) for i, l in enumerate(net.layers) if l.op == ir.ADD]
    assert len(adds) == REAL[key]["adds"]
    # ADD layers map 1:1 onto the file's ADD ops, with the same two operands
    ops = tflite_graph(MODELS / REAL[key]["file"])
    layer_of_tensor = {}  # TFLite tensor -> IR tensor id, following the layers' op indices
    for i, opi in enumerate(net.provenance.layer_op_index):
        layer_of_tensor[ops[opi][2][0]] = i + 1
    for i, layer in adds:
        assert layer.src2 is not None and layer.src2 < layer.src <= i
        assert layer.src == i  # the main path is the tensor just produced
        assert _shape(net, layer.src2) == _shape(net, layer.src) == layer.out_shape
        name, ins, _ = ops[net.provenance.layer_op_index[i]]
        assert name == "ADD"
        assert {layer_of_tensor.get(t, 0) for t in ins} == {layer.src, layer.src2}
    if key == "resnet8":
        # block 1: identity skip from the first conv; blocks 2 and 3: 1x1 stride-2 projections
        assert [(l.src, l.src2) for _, l in adds] == [(3, 1), (7, 6), (11, 10)]
        proj = [net.layers[6], net.layers[10]]
        assert all(p.op == ir.CONV and p.kernel == (1, 1) and p.stride == (2, 2) for p in proj)
        assert proj[0].src == 4 and proj[1].src == 8


@needs_models
def test_real_model_padding(real_nets):
    kws, _ = real_nets["kws"]
    first = kws.layers[0]
    # 49x10 input, 10x4 kernel, stride 2, SAME: out 25x5, totals 9 and 2
    assert first.kernel == (10, 4) and first.stride == (2, 2)
    assert first.pad == (4, 1, 5, 1)
    assert first.out_shape == (25, 5, 64)
    vww, _ = real_nets["vww"]
    assert vww.layers[0].pad == (0, 0, 1, 1)  # 96 -> 48 with k3 s2 SAME: total 1, at the end
    mc, _ = real_nets["mcunet"]
    # explicit PAD ops folded: the first conv reads the 176x176 input directly
    assert mc.layers[0].src == 0 and mc.layers[0].in_shape == (176, 176, 3)
    assert mc.layers[0].pad == (1, 1, 1, 1) and mc.layers[0].out_shape == (88, 88, 16)
    assert any(l.kernel == (7, 7) and l.pad == (3, 3, 3, 3) for l in mc.layers if l.op == ir.DW)
    assert sum(1 for o in tflite_graph(MODELS / REAL["mcunet"]["file"]) if o[0] == "PAD") == 54
    assert len(mc.provenance.folded) == 54 + 1  # the PAD ops and the final RESHAPE
    for net, _ in real_nets.values():
        assert net.layers[[l.op for l in net.layers].index(ir.GAP)].out_shape[:2] == (1, 1)


@needs_models
@needs_tflm
@pytest.mark.parametrize("key", list(REAL))
def test_tflm_arena_totals(key):
    from msfopt.tflm_ref import tflm_allocations, tflm_arena_bytes
    path = MODELS / REAL[key]["file"]
    assert tflm_arena_bytes(path) == REAL[key]["arena"]
    rep = tflm_allocations(path)
    assert rep["head"] + rep["tail"] == rep["total"] == REAL[key]["arena"]


@needs_models
@needs_tflm
@pytest.mark.parametrize("key", ["vww", "resnet8", "kws", "mcunet"])
def test_run_tflm_real(key):
    from msfopt.tflm_ref import run_tflm
    ref = REAL[key]
    x = np.random.default_rng(1).integers(-128, 128, size=ref["inp"], dtype=np.int8)
    a = run_tflm(MODELS / ref["file"], [x])
    b = run_tflm(MODELS / ref["file"], [x[None]])  # with the batch dimension
    assert len(a) == 1 and a[0].dtype == np.int8 and a[0].shape == ref["out"]
    assert np.array_equal(a[0], b[0])
    with pytest.raises(ValueError):
        run_tflm(MODELS / ref["file"], [x[:-1]])


@needs_models
def test_garbage_and_truncated(tmp_path):
    real = (MODELS / REAL["resnet8"]["file"]).read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(real[:1000])
    with pytest.raises(UnsupportedModelError) as e:
        load_tflite(cut)
    assert "\n" not in str(e.value) and "cut" in str(e.value)


def test_garbage_file(tmp_path):
    bad = tmp_path / "garbage.tflite"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for blob in (bad.read_bytes(), b"", b"TFL3", b"\x00" * 64, b"\x10\x00\x00\x00TFL3" + b"\xff" * 40):
        with pytest.raises(UnsupportedModelError) as e:
            loads_tflite(blob, name="blob")
        assert "\n" not in str(e.value)
    with pytest.raises(UnsupportedModelError):
        load_tflite(bad)
    assert issubclass(UnsupportedModelError, ValueError)


# ------------------------------------------------------------------------------------------------
# writing small .tflite files with the generated builders
# ------------------------------------------------------------------------------------------------

from tflite_builder import _mod, ModelWriter, OP, BO, SAME, VALID, ACT  # noqa: E402,F401


def conv_opts(padding, stride, act="none"):
    def f(b):
        T = tflite
        T.Conv2DOptionsStart(b)
        T.Conv2DOptionsAddPadding(b, padding)
        T.Conv2DOptionsAddStrideH(b, stride[0])
        T.Conv2DOptionsAddStrideW(b, stride[1])
        T.Conv2DOptionsAddFusedActivationFunction(b, ACT[act])
        T.Conv2DOptionsAddDilationHFactor(b, 1)
        T.Conv2DOptionsAddDilationWFactor(b, 1)
        return T.Conv2DOptionsEnd(b)
    return BO.Conv2DOptions, f


def dw_opts(padding, stride, act="none", mult=1):
    def f(b):
        T = tflite
        T.DepthwiseConv2DOptionsStart(b)
        T.DepthwiseConv2DOptionsAddPadding(b, padding)
        T.DepthwiseConv2DOptionsAddStrideH(b, stride[0])
        T.DepthwiseConv2DOptionsAddStrideW(b, stride[1])
        T.DepthwiseConv2DOptionsAddDepthMultiplier(b, mult)
        T.DepthwiseConv2DOptionsAddFusedActivationFunction(b, ACT[act])
        T.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
        T.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
        return T.DepthwiseConv2DOptionsEnd(b)
    return BO.DepthwiseConv2DOptions, f


def pool_opts(padding, stride, k, act="none"):
    def f(b):
        T = tflite
        T.Pool2DOptionsStart(b)
        T.Pool2DOptionsAddPadding(b, padding)
        T.Pool2DOptionsAddStrideH(b, stride[0])
        T.Pool2DOptionsAddStrideW(b, stride[1])
        T.Pool2DOptionsAddFilterHeight(b, k[0])
        T.Pool2DOptionsAddFilterWidth(b, k[1])
        T.Pool2DOptionsAddFusedActivationFunction(b, ACT[act])
        return T.Pool2DOptionsEnd(b)
    return BO.Pool2DOptions, f


def add_opts(act="none"):
    def f(b):
        tflite.AddOptionsStart(b)
        tflite.AddOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.AddOptionsEnd(b)
    return BO.AddOptions, f


def fc_opts(act="none"):
    def f(b):
        tflite.FullyConnectedOptionsStart(b)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.FullyConnectedOptionsEnd(b)
    return BO.FullyConnectedOptions, f


def mean_opts(keep):
    def f(b):
        tflite.ReducerOptionsStart(b)
        tflite.ReducerOptionsAddKeepDims(b, keep)
        return tflite.ReducerOptionsEnd(b)
    return BO.ReducerOptions, f


def softmax_opts():
    def f(b):
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, 1.0)
        return tflite.SoftmaxOptionsEnd(b)
    return BO.SoftmaxOptions, f


def pad_opts():
    def f(b):
        tflite.PadOptionsStart(b)
        return tflite.PadOptionsEnd(b)
    return BO.PadOptions, f


def reshape_opts(shape):
    def f(b):
        vec = ModelWriter._ivec(b, tflite.ReshapeOptionsStartNewShapeVector, list(shape))
        tflite.ReshapeOptionsStart(b)
        tflite.ReshapeOptionsAddNewShape(b, vec)
        return tflite.ReshapeOptionsEnd(b)
    return BO.ReshapeOptions, f


def _conv_weights(w: ModelWriter, rng, shape, per_channel_axis):
    wt = rng.integers(-127, 128, size=shape, dtype=np.int8)
    n = shape[per_channel_axis]
    scale = rng.uniform(0.002, 0.02, n).astype(np.float32)
    wi = w.tensor(shape, w.INT8, scale, np.zeros(n, np.int64), qdim=per_channel_axis, data=wt)
    bias = rng.integers(-2000, 2000, size=n, dtype=np.int32)
    bi = w.tensor([n], w.INT32, scale * 0.05, np.zeros(n, np.int64), data=bias)
    return wi, bi


def build_small_model(rng, unsupported: bool = False) -> bytes:
    """8x8x4 -> PAD(1,2,0,1)+DW3x3 VALID relu -> CONV1x1 SAME relu6 (per channel) -> ADD(skip)
    -> MAXPOOL 2x2/2 -> CONV3x3/2 SAME (7x... asym) -> MEAN(H,W) -> RESHAPE -> FC -> SOFTMAX."""
    w = ModelWriter()
    x = w.act([1, 8, 8, 4], 0.05, -3)
    pads = w.tensor([4, 2], w.INT32, data=np.array([[0, 0], [1, 0], [2, 1], [0, 0]], np.int32))
    xp = w.act([1, 9, 11, 4], 0.05, -3)
    w.op(OP["PAD"], [x, pads], [xp], *pad_opts())
    dwW, dwB = _conv_weights(w, rng, [1, 3, 3, 4], 3)
    a1 = w.act([1, 7, 9, 4], 0.04, -128)
    w.op(OP["DEPTHWISE_CONV_2D"], [xp, dwW, dwB], [a1], *dw_opts(VALID, (1, 1), "relu"))
    cW, cB = _conv_weights(w, rng, [4, 1, 1, 4], 0)
    a2 = w.act([1, 7, 9, 4], 0.03, -120)
    w.op(OP["CONV_2D"], [a1, cW, cB], [a2], *conv_opts(SAME, (1, 1), "relu6"))
    a3 = w.act([1, 7, 9, 4], 0.06, -100)
    w.op(OP["ADD"], [a1, a2], [a3], *add_opts("none"))
    a4 = w.act([1, 3, 4, 4], 0.06, -100)
    w.op(OP["MAX_POOL_2D"], [a3], [a4], *pool_opts(VALID, (2, 2), (2, 2)))
    c2W, c2B = _conv_weights(w, rng, [6, 3, 3, 4], 0)
    a5 = w.act([1, 2, 2, 6], 0.05, 5)
    w.op(OP["CONV_2D"], [a4, c2W, c2B], [a5], *conv_opts(SAME, (2, 2), "relu"))
    axes = w.tensor([2], w.INT32, data=np.array([1, 2], np.int32))
    a6 = w.act([1, 1, 1, 6], 0.05, 5)
    w.op(OP["MEAN"], [a5, axes], [a6], *mean_opts(True))
    shp = w.tensor([2], w.INT32, data=np.array([1, 6], np.int32))
    a7 = w.act([1, 6], 0.05, 5)
    w.op(OP["RESHAPE"], [a6, shp], [a7], *reshape_opts([1, 6]))
    fW = w.tensor([3, 6], w.INT8, 0.01, 0, data=rng.integers(-127, 128, (3, 6), dtype=np.int8))
    fB = w.tensor([3], w.INT32, 0.0005, 0, data=np.array([10, -20, 30], np.int32))
    a8 = w.act([1, 3], 0.1, 2)
    w.op(OP["FULLY_CONNECTED"], [a7, fW, fB], [a8], *fc_opts())
    out = w.act([1, 3], 1.0 / 256, -128)
    w.op(OP["SOFTMAX"], [a8], [out], *softmax_opts())
    if unsupported:
        # op 3 becomes a SQUARED_DIFFERENCE (99, unsupported), op 1 a depth-multiplier-2
        # depthwise conv
        idx, ins, outs, _, _ = w.ops[3]
        w.codes.append(99)
        w.ops[3] = (len(w.codes) - 1, ins, outs, 0, None)
        dw2W, dw2B = _conv_weights(w, rng, [1, 3, 3, 8], 3)
        _, ins, outs, _, _ = w.ops[1]
        w.ops[1] = (w.codes.index(OP["DEPTHWISE_CONV_2D"]), [xp, dw2W, dw2B], outs,
                    *dw_opts(VALID, (1, 1), "relu", mult=2))
    return w.build([x], [out])


def test_small_model_import():
    blob = build_small_model(np.random.default_rng(0))
    net = loads_tflite(blob, name="small")
    assert [l.op for l in net.layers] == [ir.DW, ir.CONV, ir.ADD, ir.MAXPOOL, ir.CONV, ir.GAP,
                                          ir.DENSE]
    dw, pw, add, mp, c2, gap, fc = net.layers
    assert dw.in_shape == (8, 8, 4) and dw.src == 0
    assert dw.pad == (1, 2, 0, 1) and dw.out_shape == (7, 9, 4) and dw.act == "relu"
    assert pw.act == "relu6" and pw.pad == (0, 0, 0, 0)
    assert (add.src, add.src2) == (2, 1)
    assert mp.out_shape == (3, 4, 4)
    # 3x4 input, k3 s2 SAME -> 2x2: totals (1*2+3-3, 1*2+3-4) = (2, 1) -> (1, 0, 1, 1)
    assert c2.pad == (1, 0, 1, 1) and c2.out_shape == (2, 2, 6)
    assert gap.out_shape == (1, 1, 6) and net.provenance.layer_ops[5] == "MEAN"
    assert gap.gap_rounding == "tflm-mean"
    assert fc.in_shape == (1, 1, 6) and fc.weight.shape == (3, 6)
    assert net.tail_softmax.quant.zero_point == (-128,) and net.tail_softmax.beta == 1.0
    assert net.tensor_quant[0] == ir.Quant.of(float(np.float32(0.05)), -3)  # float32 kept exactly
    assert net.tensor_quant[3].zero_point == (-100,)
    assert dw.w_quant.per_channel and dw.w_quant.axis == 0 and len(dw.w_quant.scale) == 4
    assert fc.w_quant.per_channel is False
    assert net.provenance.folded == (0, 7, 9)  # PAD, RESHAPE, SOFTMAX


def test_imported_facts_are_declared_fields_that_copies_keep():
    from dataclasses import replace
    from msfopt.weights import init_weights
    net = loads_tflite(build_small_model(np.random.default_rng(0)), name="small")
    copy = ir.with_layers(net, [replace(l) for l in net.layers]).validate()
    assert copy.requant == "fixed" and copy.tail_softmax == net.tail_softmax
    assert copy.provenance == net.provenance and copy.layers[5].gap_rounding == "tflm-mean"
    with pytest.raises(ir.IRError, match="unknown requantisation"):
        replace(net, requant="integer").validate()
    with pytest.raises(ir.IRError, match="non-GAP layer"):
        ir.with_layers(net, [replace(net.layers[0], gap_rounding="tflm-mean")]
                       + net.layers[1:]).validate()
    with pytest.raises(ir.IRError, match="one entry per layer"):
        replace(net, provenance=replace(net.provenance, layer_ops=("CONV_2D",))).validate()
    # msfopt's own weights and quantisation: the ONNX arithmetic, no TFLite facts
    own = init_weights(net, seed=0)
    assert own.requant == "float" and own.tail_softmax is None and own.provenance is None
    assert all(l.gap_rounding == "msfopt" for l in own.layers)


def test_small_model_unsupported_lists_every_op():
    blob = build_small_model(np.random.default_rng(0), unsupported=True)
    with pytest.raises(UnsupportedModelError) as e:
        loads_tflite(blob, name="bad")
    msg = str(e.value)
    assert "\n" not in msg
    assert "DEPTHWISE_CONV_2D x1: " in msg and "depth multiplier" in msg and "('op 1')" in msg
    assert "SQUARED_DIFFERENCE x1: unsupported op type ('op 3')" in msg


@needs_tflm
def test_small_model_runs_in_tflm(tmp_path):
    from msfopt.tflm_ref import run_tflm, tflm_arena_bytes
    path = tmp_path / "small.tflite"
    path.write_bytes(build_small_model(np.random.default_rng(0)))
    x = np.random.default_rng(5).integers(-128, 128, (8, 8, 4), dtype=np.int8)
    a = run_tflm(path, [x])
    assert a[0].shape == (1, 3) and a[0].dtype == np.int8
    assert np.array_equal(a[0], run_tflm(path, [x])[0])
    assert tflm_arena_bytes(path) > 0
    net = load_tflite(path)
    assert net.n_layers == 7


# ------------------------------------------------------------------------------------------------
# tflite-micro as the oracle for padding, weight layout and the fixed-point requantisation
# ------------------------------------------------------------------------------------------------

def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    a = a.astype(np.int64)
    ab = a * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    q = np.abs(s) >> 31
    out = np.where(s < 0, -q, q)  # C++ division truncates toward zero
    return np.where((a == -(1 << 31)) & (b == -(1 << 31)), (1 << 31) - 1, out)


def _rdbpot(x: np.ndarray, e: int) -> np.ndarray:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def _mbqm(x, m, shift):
    left = max(shift, 0)
    right = max(-shift, 0)
    return _rdbpot(_srdhm(x * (1 << left), m), right)


def ref_layer(net, i, x: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
    """Tiny int8 reference of one CONV / DW / ADD layer from the IR and the fixed-point
    requantisation parameters the code generator uses (:mod:`msfopt.mcu_runtime.requant`)."""
    layer = net.layers[i]
    qi, qo = net.quant_of(layer.src), net.quant_of(i + 1)
    zi, zo = qi.zero_point[0], qo.zero_point[0]
    if layer.op == ir.ADD:
        q2 = net.quant_of(layer.src2)
        p = requant.add_fixed_params(qi.scale[0], q2.scale[0], qo.scale[0])
        a = (x.astype(np.int64) - zi) << p["left_shift"]
        b = (x2.astype(np.int64) - q2.zero_point[0]) << p["left_shift"]
        a = _mbqm(a, p["in1_mul"], p["in1_shift"])
        b = _mbqm(b, p["in2_mul"], p["in2_shift"])
        y = _mbqm(a + b, p["out_mul"], p["out_shift"]) + zo
        return np.clip(y, layer.act_min, layer.act_max).astype(np.int8)
    mul, shift = requant.conv_fixed_multipliers(qi.scale[0], layer.w_quant.scale, qo.scale[0])
    pt, pl, pb, pr = layer.pad
    xi = x.astype(np.int64) - zi
    xi = np.pad(xi, ((pt, pb), (pl, pr), (0, 0)))  # zero after the offset = pad with zp
    ho, wo, co = layer.out_shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    acc = np.zeros((ho, wo, co), np.int64)
    wgt = layer.weight.astype(np.int64)
    for dy in range(kh):
        for dx in range(kw):
            patch = xi[dy:dy + sh * (ho - 1) + 1:sh, dx:dx + sw * (wo - 1) + 1:sw, :]
            if layer.op == ir.DW:
                acc += patch * wgt[:, dy, dx, 0][None, None, :]
            else:
                acc += np.einsum("hwc,oc->hwo", patch, wgt[:, dy, dx, :])
    acc += layer.bias.astype(np.int64)
    y = np.empty_like(acc)
    for c in range(co):
        k = c if len(mul) > 1 else 0
        y[..., c] = _mbqm(acc[..., c], int(mul[k]), int(shift[k]))
    y += zo
    return np.clip(y, layer.act_min, layer.act_max).astype(np.int8)


def _single(rng, kind: str):
    w = ModelWriter()
    if kind == "conv":
        x = w.act([1, 7, 6, 5], 0.03, 4)
        cW, cB = _conv_weights(w, rng, [6, 3, 4, 5], 0)
        y = w.act([1, 3, 3, 6], 0.05, -10)
        w.op(OP["CONV_2D"], [x, cW, cB], [y], *conv_opts(SAME, (3, 2), "relu6"))
    elif kind == "dw":
        x = w.act([1, 6, 7, 8], 0.04, -7)
        pads = w.tensor([4, 2], w.INT32, data=np.array([[0, 0], [2, 0], [0, 1], [0, 0]], np.int32))
        xp = w.act([1, 8, 8, 8], 0.04, -7)
        w.op(OP["PAD"], [x, pads], [xp], *pad_opts())
        dW, dB = _conv_weights(w, rng, [1, 3, 3, 8], 3)
        y = w.act([1, 4, 4, 8], 0.03, 3)
        w.op(OP["DEPTHWISE_CONV_2D"], [xp, dW, dB], [y], *dw_opts(SAME, (2, 2), "relu"))
    elif kind == "conv_neg":  # a negative and a zero weight scale, as in MCUNet
        x = w.act([1, 6, 6, 3], 0.02, -128)
        cW, cB = _conv_weights(w, rng, [5, 3, 3, 3], 0)
        w.tensors[cW]["scale"][1] *= -1
        w.tensors[cW]["scale"][3] = 0.0
        y = w.act([1, 3, 3, 5], 0.01, 0)
        w.op(OP["CONV_2D"], [x, cW, cB], [y], *conv_opts(SAME, (2, 2), "none"))
    else:  # conv + residual add
        x = w.act([1, 5, 5, 4], 0.05, -2)
        cW, cB = _conv_weights(w, rng, [4, 3, 3, 4], 0)
        y = w.act([1, 5, 5, 4], 0.07, 1)
        w.op(OP["CONV_2D"], [x, cW, cB], [y], *conv_opts(SAME, (1, 1), "none"))
        z = w.act([1, 5, 5, 4], 0.09, -5)
        w.op(OP["ADD"], [y, x], [z], *add_opts("relu"))
        return w.build([x], [z])
    return w.build([x], [y])


@needs_tflm
@pytest.mark.parametrize("kind", ["conv", "dw", "add", "conv_neg"])
def test_importer_matches_tflm_bit_exact(tmp_path, kind):
    from msfopt.tflm_ref import run_tflm
    rng = np.random.default_rng({"conv": 1, "dw": 2, "add": 3, "conv_neg": 4}[kind])
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(_single(rng, kind))
    net = load_tflite(path)
    for trial in range(3):
        x = rng.integers(-128, 128, net.input_shape, dtype=np.int8)
        want = run_tflm(path, [x])[0][0]
        y = ref_layer(net, 0, x)
        if kind == "add":
            y = ref_layer(net, 1, y, x)
        assert np.array_equal(y, want), f"{kind} trial {trial}"
    if kind == "conv_neg":
        assert net.provenance.weight_scale_fixups == {0: {"negated_scales": 1, "zero_scales": 1}}
        assert min(net.layers[0].w_quant.scale) > 0


def _pool_after_pad(pool: str, relu_before: bool, pool_padding=VALID) -> bytes:
    rng = np.random.default_rng(7)
    w = ModelWriter()
    x = w.act([1, 6, 6, 4], 0.05, -128)
    cW, cB = _conv_weights(w, rng, [4, 1, 1, 4], 0)
    a = w.act([1, 6, 6, 4], 0.05, -128)
    w.op(OP["CONV_2D"], [x, cW, cB], [a], *conv_opts(VALID, (1, 1), "relu" if relu_before else "none"))
    pads = w.tensor([4, 2], w.INT32, data=np.array([[0, 0], [1, 1], [0, 1], [0, 0]], np.int32))
    ap = w.act([1, 8, 7, 4], 0.05, -128)
    w.op(OP["PAD"], [a, pads], [ap], *pad_opts())
    y = w.act([1, 4, 3 if pool_padding == VALID else 4, 4], 0.05, -128)
    w.op(OP[pool], [ap], [y], *pool_opts(pool_padding, (2, 2), (2, 2)))
    return w.build([x], [y])


def test_pad_folding_into_pools():
    net = loads_tflite(_pool_after_pad("AVERAGE_POOL_2D", False), name="avg")
    pool = net.layers[1]
    assert pool.op == ir.AVGPOOL and pool.pad == (1, 0, 1, 1) and pool.count_include_pad
    net = loads_tflite(_pool_after_pad("MAX_POOL_2D", True), name="max")
    assert net.layers[1].op == ir.MAXPOOL and net.layers[1].pad == (1, 0, 1, 1)
    with pytest.raises(UnsupportedModelError, match=r"MAX_POOL_2D x1: .*\('op 2'\)"):
        loads_tflite(_pool_after_pad("MAX_POOL_2D", False), name="max")
    with pytest.raises(UnsupportedModelError, match=r"AVERAGE_POOL_2D x1: .*\('op 2'\)"):
        loads_tflite(_pool_after_pad("AVERAGE_POOL_2D", False, SAME), name="avg")


@needs_tflm
def test_padded_avgpool_matches_tflm(tmp_path):
    """PAD + VALID average pool == our pool with count_include_pad (divisor = full window)."""
    from msfopt.tflm_ref import run_tflm
    path = tmp_path / "avg.tflite"
    path.write_bytes(_pool_after_pad("AVERAGE_POOL_2D", False))
    net = load_tflite(path)
    x = np.random.default_rng(8).integers(-128, 128, net.input_shape, dtype=np.int8)
    got = run_tflm(path, [x])[0][0]
    a = ref_layer(net, 0, x).astype(np.int64)
    pool = net.layers[1]
    zp = net.tensor_quant[1].zero_point[0]
    pt, pl, pb, pr = pool.pad
    ap = np.pad(a, ((pt, pb), (pl, pr), (0, 0)), constant_values=zp)
    s = sum(ap[dy::2, dx::2][:4, :3] for dy in range(2) for dx in range(2))
    want = np.where(s >= 0, (s + 2) // 4, -((-s + 2) // 4))  # TFLite rounds half away from 0
    assert np.array_equal(got, want.astype(np.int8))
