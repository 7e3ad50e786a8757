"""More real-world ops in the importers (issue 12 follow-ups), each end to end against the oracle
on the ORIGINAL file: the model is written here (onnx.helper / tests/tflite_builder.py), imported,
planned (unfused; minimum RAM too where the graph gives the solver a choice), generated as C,
built for the host and run; every output is compared with onnxruntime (ONNX: float32 within
1e-4, int8 bit for bit) or tflite-micro (TFLite, bit for bit).

* int8 data movement in ONNX: a QDQ Concat whose inputs sit on other grids than its output
  (requantised first), com.microsoft QLinearConcat, QDQ Split / Slice, QDQ nearest Resize,
  int8 linear Resize (QDQ: onnxruntime's float island; on an int8 tensor: truncated);
* GlobalMaxPool (float and int8 QDQ) as a whole-input MAXPOOL, on another output grid than its
  input's followed by a requantisation;
* depthwise with a channel multiplier > 1 (ONNX Conv group = C_in, C_out = m C_in, float and
  int8 QDQ; TFLite DEPTHWISE_CONV_2D depth_multiplier 2) as a grouped CONV;
* AveragePool ceil_mode=1 (count_include_pad 0, and 1 without explicit pads);
* grouped ConvTranspose (group 2, 4) as SLICE + group-1 CONVT per group + CONCAT;
* fp16 initializers behind Cast (float16 -> float32 weights), ReduceMean over H, W (keepdims 0
  and 1, axes as attribute and as input);
* TFLite QUANTIZE with uint8 at the graph edges;
* the unsupported variants refused with one line.

Expected values come only from onnxruntime / tflite-micro on the file written here.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from onnx_helpers import G

from msfopt import ir, oracles
from msfopt.importers import UnsupportedModelError
from msfopt.importers.onnx_import import load_onnx
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host
from msfopt.solver import solve

F32, I8, U8 = TensorProto.FLOAT, TensorProto.INT8, TensorProto.UINT8


# ------------------------------------------------------------------------------------------------
# the check
# ------------------------------------------------------------------------------------------------

def _inputs(net, n, rng):
    if net.dtype == "int8":
        xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(n)]
        if n > 2:
            xs[1][:] = -128
            xs[2][:] = 127
        return xs
    return [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(n)]


def check_file(path, net, n_inputs=3, seed=0, min_ram=False):
    """Every plan's host output == the oracle on ``path`` (int8: bit for bit)."""
    rng = np.random.default_rng(seed)
    xs = _inputs(net, n_inputs, rng)
    ref = oracles.reference(net, xs, path)
    assert ref.kind == "external"
    plans = {"unfused": [(i, i, "unfused", 0) for i in range(net.n_layers)]}
    if min_ram:
        plans["min-ram"] = solve(net, objective="ram", check=True).blocks
    for tag, blocks in plans.items():
        gen = generate(net, blocks, path.parent / tag)
        exe = build_host(gen)
        for j, (x, want) in enumerate(zip(xs, ref.ys)):
            ok, fig = oracles.compare(run_host(gen, exe, x), want, net.dtype, tolerance_steps=0)
            assert ok, f"{net.name} {tag} input {j}: {fig}"
    return ref.ys


def run_onnx(tmp_path, model, name="m", **kw):
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    net = load_onnx(path)
    ys = check_file(path, net, **kw)
    return net, ys


def onnx_err(model) -> str:
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(model)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def ops(net):
    return [l.op + (f":{l.fn}" if l.op == ir.ACT else "") for l in net.layers]


# ------------------------------------------------------------------------------------------------
# int8 ONNX building blocks (QDQ and QOperator)
# ------------------------------------------------------------------------------------------------

def q_params(g: G, scale, zp, u8=False):
    return g.c(np.float32(scale)), g.c(np.uint8(zp + 128) if u8 else np.int8(zp))


def qdq_conv(g: G, x_q, cin, cout, k, xq, yq, group=1, pads=None):
    """int8 tensor x_q on grid xq -> DQ -> Conv (DQ int8 per-channel weights, int32 bias) ->
    Q on grid yq; returns the int8 output name."""
    r = g.rng
    wv = r.integers(-127, 128, (cout, cin // group, k, k)).astype(np.int8)
    ws = r.uniform(0.004, 0.012, cout).astype(np.float32)
    w = g.op("DequantizeLinear", [g.c(wv), g.c(ws), g.c(np.zeros(cout, np.int8))], axis=0)
    bv = r.integers(-300, 300, cout).astype(np.int32)
    b = g.op("DequantizeLinear", [g.c(bv), g.c((ws * np.float32(xq[0])).astype(np.float32)),
                                  g.c(np.zeros(cout, np.int32))], axis=0)
    xd = g.op("DequantizeLinear", [x_q, *q_params(g, *xq)])
    y = g.op("Conv", [xd, w, b], kernel_shape=[k, k], group=group,
             pads=list(pads) if pads is not None else [k // 2] * 4)
    return g.op("QuantizeLinear", [y, *q_params(g, *yq)])


def dq(g: G, x_q, q):
    return g.op("DequantizeLinear", [x_q, *q_params(g, *q)])


def qz(g: G, x, q):
    return g.op("QuantizeLinear", [x, *q_params(g, *q)])


XQ = (0.05, -3)


# ------------------------------------------------------------------------------------------------
# int8 Concat / Split / Slice / Resize (ONNX)
# ------------------------------------------------------------------------------------------------

def test_qdq_concat_requantises_inputs_on_other_grids(tmp_path):
    """DQ(a) ++ DQ(b) ++ DQ(x) -> Q: a on the output's grid (copied), b and the input on others
    (each first requantised by an ACT quantize)."""
    g = G(1)
    yq = (0.04, 5)
    a = qdq_conv(g, "x", 3, 4, 3, XQ, yq)
    b = qdq_conv(g, "x", 3, 2, 1, XQ, (0.09, -20))
    c = g.op("Concat", [dq(g, a, yq), dq(g, b, (0.09, -20)), dq(g, "x", XQ)], axis=1)
    y = qz(g, c, yq)
    net, ys = run_onnx(tmp_path, g.model("x", y, [1, 3, 6, 5], [1, 9, 6, 5], in_type=I8),
                       min_ram=True)
    assert ops(net) == ["conv", "conv", "act:quantize", "act:quantize", "concat"]
    assert net.tensor_quant[-1] == ir.Quant.of(np.float32(yq[0]), yq[1])
    assert len(np.unique(ys[0])) > 30


def test_qlinear_concat_uint8(tmp_path):
    """com.microsoft QLinearConcat on uint8 tensors: the input (another grid) is requantised,
    the QLinearConv output (the output's grid) copied."""
    g = G(2)
    yq = (0.03, 10)
    r = g.rng
    wv = r.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8)
    conv = g.op("QLinearConv", ["x", *q_params(g, *XQ, u8=True), g.c(wv),
                                g.c(np.float32(0.01)), g.c(np.uint8(128)),
                                *q_params(g, *yq, u8=True),
                                g.c(r.integers(-500, 500, 4).astype(np.int32))],
                kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = g.op("QLinearConcat", [*q_params(g, *yq, u8=True), "x", *q_params(g, *XQ, u8=True),
                               conv, *q_params(g, *yq, u8=True)], domain="com.microsoft", axis=1)
    net, ys = run_onnx(tmp_path, g.model("x", y, [1, 3, 5, 6], [1, 7, 5, 6], in_type=U8,
                                         ms=True))
    assert ops(net) == ["conv", "act:quantize", "concat"]


def test_qdq_split_slice_and_nearest_resize(tmp_path):
    """DQ -> Split -> Q (one part requantised), DQ -> Slice -> Q, DQ -> Resize nearest -> Q and
    a final QDQ Concat of the three."""
    g = G(3)
    hq = (0.05, -3)
    t = qdq_conv(g, "x", 2, 6, 3, XQ, hq)
    s0 = g.op("Split", [dq(g, t, hq), g.c(np.array([2, 4], np.int64))], n_out=2, axis=1)
    s1 = s0[:-1] + "1"
    a = qz(g, s0, hq)                      # same grid: a plain slice
    b = qz(g, s1, (0.02, 7))               # another grid: slice then requantise
    sl = g.op("Slice", [dq(g, b, (0.02, 7)), g.c(np.array([1], np.int64)),
                        g.c(np.array([3], np.int64)), g.c(np.array([1], np.int64))])
    sl = qz(g, sl, (0.02, 7))
    small = qdq_conv(g, a, 2, 2, 3, hq, hq)
    pool = qz(g, g.op("MaxPool", [dq(g, small, hq)], kernel_shape=[2, 2], strides=[2, 2]), hq)
    up = g.op("Resize", [dq(g, pool, hq), "", g.c(np.array([1, 1, 2, 2], np.float32))],
              mode="nearest")
    up = qz(g, up, (0.06, 0))
    yq = (0.06, 0)
    c = g.op("Concat", [dq(g, a, hq), dq(g, sl, (0.02, 7)), dq(g, up, yq)], axis=1)
    y = qz(g, c, yq)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 2, 6, 8], [1, 6, 6, 8], in_type=I8),
                      min_ram=True)
    kinds = ops(net)
    assert kinds.count("slice") == 3 and "resize" in kinds and kinds[-1] == "concat"
    assert kinds.count("act:quantize") >= 3


def test_qoperator_split_on_int8_shares_the_grid(tmp_path):
    """Split directly on an int8 tensor (QOperator, no Q / DQ around): both parts keep the
    input's quantisation; each feeds a QLinearConv."""
    g = G(4)
    r = g.rng
    parts = g.op("Split", ["x", g.c(np.array([1, 3], np.int64))], n_out=2, axis=1)
    parts = [parts, parts.replace("out0", "out1")]
    outs = []
    for p, cin in zip(parts, (1, 3)):
        outs.append(g.op("QLinearConv", [p, *q_params(g, *XQ), g.c(r.integers(
            -127, 128, (2, cin, 3, 3)).astype(np.int8)), g.c(np.float32(0.01)), g.c(np.int8(0)),
            *q_params(g, 0.04, 2), g.c(r.integers(-300, 300, 2).astype(np.int32))],
            kernel_shape=[3, 3], pads=[1] * 4))
    y = g.op("QLinearConcat", [*q_params(g, 0.04, 2), outs[0], *q_params(g, 0.04, 2),
                               outs[1], *q_params(g, 0.04, 2)], domain="com.microsoft", axis=1)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 4, 5, 5], [1, 4, 5, 5], in_type=I8, ms=True))
    assert ops(net) == ["slice", "slice", "conv", "conv", "concat"]
    assert net.tensor_quant[1] == net.tensor_quant[0] == net.tensor_quant[2]


@pytest.mark.parametrize("coord,size", [("half_pixel", (9, 11)), ("align_corners", (10, 12)),
                                        ("asymmetric", (9, 7)), ("pytorch_half_pixel", (3, 5))])
def test_qdq_linear_resize_bit_exact(coord, size, tmp_path):
    """DQ -> Resize linear -> Q, input and output on different grids, to a size that is no
    integer multiple (and a downscale): onnxruntime keeps the island in float32 (dequantise,
    float bilinear, QuantizeLinear); the C kernel (msf_resize_s8, MSF_RESIZE_S8_QDQ) equals it
    bit for bit, unfused and in the minimum-RAM plan."""
    g = G(5)
    hq, yq = (0.05, -3), (0.04, 9)
    t = qdq_conv(g, "x", 2, 3, 3, XQ, hq)
    up = g.op("Resize", [dq(g, t, hq), "", "", g.c(np.array([1, 3, *size], np.int64))],
              mode="linear", coordinate_transformation_mode=coord)
    y = qz(g, up, yq)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 2, 6, 5], [1, 3, *size], in_type=I8),
                      min_ram=True)
    (r,) = [L for L in net.layers if L.op == ir.RESIZE]
    assert r.qdq and r.resize.mode == "bilinear" and r.resize.coord == coord
    assert net.quant_of(net.layers.index(r) + 1).scale[0] == np.float32(yq[0])


def test_int8_tensor_linear_resize_bit_exact(tmp_path):
    """Resize linear directly on an int8 tensor between two QLinearConvs (QOperator):
    onnxruntime's UpsampleBilinear<int8_t> sums the raw values in float32 and truncates toward
    zero (MSF_RESIZE_S8_TRUNC); both convs and the resize share no grid assumption beyond the
    int8 values."""
    g = G(8)
    r = g.rng

    def qconv(x, cin, cout, xq, yq):
        return g.op("QLinearConv", [x, *q_params(g, *xq), g.c(r.integers(
            -127, 128, (cout, cin, 3, 3)).astype(np.int8)), g.c(np.float32(0.01)),
            g.c(np.int8(0)), *q_params(g, *yq), g.c(r.integers(-300, 300, cout).astype(
                np.int32))], kernel_shape=[3, 3], pads=[1] * 4)
    a = qconv("x", 2, 3, XQ, (0.04, 2))
    up = g.op("Resize", [a, "", g.c(np.array([1, 1, 2, 2], np.float32))], mode="linear")
    y = qconv(up, 3, 2, (0.04, 2), (0.05, -1))
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 2, 5, 4], [1, 2, 10, 8], in_type=I8),
                      min_ram=True)
    (rz,) = [L for L in net.layers if L.op == ir.RESIZE]
    assert not rz.qdq and rz.resize.mode == "bilinear"


def test_qdq_concat_read_by_a_float_op_is_refused():
    g = G(6)
    c = g.op("Concat", [dq(g, "x", XQ), dq(g, "x", XQ)], axis=1)
    y = g.op("Relu", [c])
    msg = onnx_err(g.model("x", y, [1, 2, 4, 4], [1, 4, 4, 4], in_type=I8, out_type=F32))
    assert "Concat x1" in msg and "must be read only by QuantizeLinear" in msg


# ------------------------------------------------------------------------------------------------
# pooling, depthwise multiplier, fp16 weights (ONNX)
# ------------------------------------------------------------------------------------------------

def test_global_max_pool_float(tmp_path):
    g = G(7)
    t = g.op("Relu", [g.conv("x", 3, 5, 3, pads=[1] * 4)])
    p = g.op("GlobalMaxPool", [g.conv(t, 5, 4, 1)])
    y = g.op("Flatten", [p])
    y = g.op("Gemm", [y, g.c(g.rng.standard_normal((3, 4)).astype(np.float32))], transB=1)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 3, 7, 6], [1, 3]), min_ram=True)
    mp = net.layers[2]
    assert (mp.op, mp.kernel, mp.out_shape) == (ir.MAXPOOL, (7, 6), (1, 1, 4))


@pytest.mark.parametrize("same_grid", [True, False])
def test_global_max_pool_int8_qdq(same_grid, tmp_path):
    """DQ -> GlobalMaxPool -> Q (int8 GlobalMaxPool does not exist in ONNX): on the input's grid
    a MAXPOOL alone, on another one followed by a requantisation."""
    g = G(8)
    q1 = (0.04, 2)
    q2 = q1 if same_grid else (0.07, -30)
    t = qdq_conv(g, "x", 3, 6, 3, XQ, q1)
    b = qz(g, g.op("GlobalMaxPool", [dq(g, t, q1)]), q2)
    y = qdq_conv(g, b, 6, 4, 1, q2, (0.08, 0))
    net, ys = run_onnx(tmp_path, g.model("x", y, [1, 3, 6, 7], [1, 4, 1, 1], in_type=I8),
                       n_inputs=4)
    assert ops(net) == ["conv", "maxpool"] + ([] if same_grid else ["act:quantize"]) + ["conv"]
    assert net.layers[1].kernel == (6, 7)


def test_qdq_reduce_mean_onto_another_grid(tmp_path):
    """DQ -> ReduceMean(H, W) -> Q on another grid: a GAP with its own requantisation."""
    g = G(20)
    q1, q2 = (0.04, 2), (0.07, -30)
    t = qdq_conv(g, "x", 3, 6, 3, XQ, q1)
    y = qz(g, g.op("ReduceMean", [dq(g, t, q1)], axes=[2, 3], keepdims=1), q2)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 3, 6, 7], [1, 6, 1, 1], in_type=I8),
                      n_inputs=5)
    assert ops(net) == ["conv", "gap"]


@pytest.mark.parametrize("quant", [False, True])
def test_depthwise_channel_multiplier_is_a_grouped_conv(quant, tmp_path):
    """Conv group = C_in = 3, C_out = 6 (multiplier 2), stride 2: a grouped CONV."""
    g = G(9)
    if quant:
        t = qdq_conv(g, "x", 3, 3, 1, XQ, (0.03, 1))
        y = qdq_conv(g, t, 3, 6, 3, (0.03, 1), (0.05, -7), group=3)
        model = g.model("x", y, [1, 3, 7, 8], [1, 6, 7, 8], in_type=I8)
    else:
        t = g.conv("x", 3, 3, 1)
        y = g.conv(t, 3, 6, 3, s=2, pads=[1] * 4, group=3)
        model = g.model("x", y, [1, 3, 7, 8], [1, 6, 4, 4])
    net, _ = run_onnx(tmp_path, model, min_ram=True)
    dwm = net.layers[-1]
    assert (dwm.op, dwm.groups, dwm.out_shape[2], dwm.weight.shape[-1]) == (ir.CONV, 3, 6, 1)


@pytest.mark.parametrize("pads,cip", [((0, 0, 0, 0), 0), ((1, 1, 1, 1), 0), ((0, 0, 0, 0), 1)])
def test_average_pool_ceil_mode(pads, cip, tmp_path):
    """AveragePool 3x3 / 2, ceil_mode=1 on 8 x 7: the extra last window divides by its valid
    taps (count_include_pad 0, or 1 without explicit pads)."""
    g = G(10)
    t = g.conv("x", 2, 3, 1)
    y = g.op("AveragePool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=list(pads),
             ceil_mode=1, count_include_pad=cip)
    y = g.conv(y, 3, 2, 1)
    oh, ow = (8 + 2 * pads[0] - 3 + 1) // 2 + 1, (7 + 2 * pads[1] - 3 + 1) // 2 + 1
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 2, 8, 7], [1, 2, oh, ow]))
    ap = net.layers[1]
    assert ap.op == ir.AVGPOOL and not ap.count_include_pad
    # H (8 + 2 p - 3 odd) gets the ceil_mode row, W (7 + 2 p - 3 even) is exact
    assert ap.out_shape[:2] == (oh, ow) and ap.pad[2:] == (pads[2] + 1, pads[3])


def test_qlinear_average_pool_ceil_mode_int8(tmp_path):
    """com.microsoft QLinearAveragePool 3x3 / 2 ceil_mode=1 on 8 x 8 (uint8 tensors)."""
    g = G(23)
    q1, q2 = (0.04, 2), (0.03, -5)
    t = qdq_conv(g, "x", 3, 4, 3, XQ, q1)
    y = g.op("QLinearAveragePool", [t, *q_params(g, *q1), *q_params(g, *q2)],
             domain="com.microsoft", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 3, 8, 8], [1, 4, 4, 4], in_type=I8, ms=True),
                      n_inputs=4)
    assert ops(net) == ["conv", "avgpool"] and net.layers[1].pad == (0, 0, 1, 1)


def test_average_pool_ceil_mode_counting_pads_is_refused():
    g = G(11)
    y = g.op("AveragePool", [g.conv("x", 2, 3, 1)], kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)
    msg = onnx_err(g.model("x", y, [1, 2, 8, 8], [1, 3, 5, 5]))
    assert "AveragePool x1" in msg and "count_include_pad=1" in msg


def test_fp16_weights_behind_cast(tmp_path):
    """Float16 initializers (a conv with 18 x 16 x 3 x 3 = 2592 and one with 32 x 18 x 3 x 3 =
    5184 weights, past the constant folder's size limit) each behind Cast(to=FLOAT)."""
    g = G(12)

    def conv16(x, cin, cout):
        w = g.rng.normal(0, 0.2, (cout, cin, 3, 3)).astype(np.float16)
        b = g.rng.normal(0, 0.1, cout).astype(np.float16)
        wc = g.op("Cast", [g.c(w)], to=F32)
        bc = g.op("Cast", [g.c(b)], to=F32)
        return g.op("Conv", [x, wc, bc], kernel_shape=[3, 3], pads=[1] * 4)
    t = g.op("Relu", [conv16("x", 16, 18)])
    y = conv16(t, 18, 32)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 16, 5, 4], [1, 32, 5, 4]))
    assert net.layers[1].weight.dtype == np.float32
    w16 = onnx.numpy_helper.to_array(next(i for i in g.inits if i.dims == [32, 18, 3, 3]))
    np.testing.assert_array_equal(net.layers[1].weight, w16.astype(np.float32).transpose(
        0, 2, 3, 1))


def test_cast_of_a_feature_map_is_refused():
    g = G(13)
    y = g.op("Cast", [g.conv("x", 2, 2, 1)], to=TensorProto.INT32)
    msg = onnx_err(g.model("x", y, [1, 2, 4, 4], [1, 2, 4, 4], out_type=TensorProto.INT32))
    assert "Cast x1" in msg and "only casts of constants" in msg


@pytest.mark.parametrize("keep,as_input", [(1, False), (0, True)])
def test_reduce_mean_over_h_w_is_gap(keep, as_input, tmp_path):
    g = G(14)
    t = g.conv("x", 3, 4, 3, pads=[1] * 4)
    if as_input:     # opset 18: axes is an input
        m = g.op("ReduceMean", [t, g.c(np.array([-1, -2], np.int64))], keepdims=keep)
    else:
        m = g.op("ReduceMean", [t], axes=[2, 3], keepdims=keep)
    if keep:
        m = g.op("Flatten", [m])
    y = g.op("Gemm", [m, g.c(g.rng.standard_normal((2, 4)).astype(np.float32))], transB=1)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 3, 5, 6], [1, 2],
                                        opset=18 if as_input else 17))
    assert ops(net) == ["conv", "gap", "dense"]


@pytest.mark.parametrize("keep,first", [(0, 3), (1, 2)])
def test_two_consecutive_means_are_one_gap(keep, first, tmp_path):
    """PyTorch x.mean(3).mean(2) (keepdims 0) and ReduceMean(H) -> ReduceMean(W) (keepdims 1)."""
    g = G(18)
    t = g.conv("x", 3, 4, 3, pads=[1] * 4)
    m = g.op("ReduceMean", [t], axes=[first], keepdims=keep)
    m = g.op("ReduceMean", [m], axes=[2 if not keep else 5 - first], keepdims=keep)
    if keep:
        m = g.op("Flatten", [m])
    y = g.op("Gemm", [m, g.c(g.rng.standard_normal((2, 4)).astype(np.float32))], transB=1)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 3, 5, 6], [1, 2]))
    assert ops(net) == ["conv", "gap", "dense"]


def test_reduce_mean_over_one_axis_is_refused():
    g = G(15)
    y = g.op("ReduceMean", [g.conv("x", 2, 2, 1)], axes=[3], keepdims=1)
    msg = onnx_err(g.model("x", y, [1, 2, 4, 4], [1, 2, 4, 1]))
    assert "ReduceMean x1" in msg and "only H, W" in msg


# ------------------------------------------------------------------------------------------------
# TFLite: depth multiplier > 1, uint8 at the graph edges (bit-exact with tflite-micro)
# ------------------------------------------------------------------------------------------------

def _tfl():
    from conftest import require
    require("tflite", "tflite-micro")
    import test_tflite_graph_ops as tg
    import test_tflite_import as ti
    return tg, ti


def test_tflite_depthwise_multiplier_2_is_a_grouped_conv(tmp_path):
    """DEPTHWISE_CONV_2D 3x3 / 2 SAME, 3 -> 6 channels (multiplier 2), per-channel filter ->
    a CONV with groups 3; then a depthwise with multiplier 1 stays DW."""
    tg, ti = _tfl()
    rng = np.random.default_rng(16)
    w = tg.ModelWriter()
    x = w.act([1, 7, 8, 3], 0.05, -3)
    f, b = ti._conv_weights(w, rng, [1, 3, 3, 6], 3)
    t = w.act([1, 4, 4, 6], 0.04, 5)
    w.op(tg.OPS["DEPTHWISE_CONV_2D"], [x, f, b], [t], *ti.dw_opts(tg.SAME, (2, 2), "relu6", 2))
    f2, b2 = ti._conv_weights(w, rng, [1, 3, 3, 6], 3)
    y = w.act([1, 4, 4, 6], 0.06, -1)
    w.op(tg.OPS["DEPTHWISE_CONV_2D"], [t, f2, b2], [y], *ti.dw_opts(tg.SAME, (1, 1)))
    net, ys = tg.run_small(tmp_path, "dwm", w.build([x], [y]),
                           which=("unfused", "zero-recompute", "min-ram"))
    assert [(l.op, l.groups) for l in net.layers] == [(ir.CONV, 3), (ir.DW, 6)]
    assert len(np.unique(ys[0])) > 30


@pytest.mark.parametrize("out_grid", ["shift", "other"])
def test_tflite_uint8_edges(out_grid, tmp_path):
    """uint8 input -> QUANTIZE (zero point - 128) -> CONV -> QUANTIZE -> uint8 output: the
    output QUANTIZE only shifting by 128 is folded, one onto another grid is an ACT quantize."""
    tg, ti = _tfl()
    rng = np.random.default_rng(17)
    w = tg.ModelWriter()
    xu = w.tensor([1, 5, 6, 3], 3, 0.05, 125)
    x = w.act([1, 5, 6, 3], 0.05, -3)
    w.op(tg.OPS["QUANTIZE"], [xu], [x])
    f, b = ti._conv_weights(w, rng, [4, 3, 3, 3], 0)
    t = w.act([1, 5, 6, 4], 0.04, 5)
    w.op(tg.OPS["CONV_2D"], [x, f, b], [t], *ti.conv_opts(tg.SAME, (1, 1)))
    yu = w.tensor([1, 5, 6, 4], 3, *((0.04, 133) if out_grid == "shift" else (0.07, 120)))
    w.op(tg.OPS["QUANTIZE"], [t], [yu])
    net, ys = tg.run_small(tmp_path, "u8", w.build([xu], [yu]))
    assert net.provenance.input_dtype == net.provenance.output_dtype == "uint8"
    assert ops(net) == ["conv"] + ([] if out_grid == "shift" else ["act:quantize"])


def test_tflite_uint8_input_on_another_grid_is_refused():
    tg, ti = _tfl()
    w = tg.ModelWriter()
    xu = w.tensor([1, 4, 4, 2], 3, 0.05, 128)
    x = w.act([1, 4, 4, 2], 0.1, -3)
    w.op(tg.OPS["QUANTIZE"], [xu], [x])
    f, b = ti._conv_weights(w, np.random.default_rng(0), [2, 1, 1, 2], 0)
    y = w.act([1, 4, 4, 2], 0.1, 0)
    w.op(tg.OPS["CONV_2D"], [x, f, b], [y], *ti.conv_opts(tg.SAME, (1, 1)))
    msg = tg._err(w.build([xu], [y]))
    assert "QUANTIZE x1" in msg and "uint8 model input requantised" in msg


@pytest.mark.parametrize("group", [2, 4])
def test_grouped_conv_transpose(group, tmp_path):
    """ConvTranspose group 2 / 4 (4 x 3 x 3 weights per group, stride 2): one SLICE and one
    group-1 CONVT per group, then a CONCAT."""
    g = G(21)
    t = g.conv("x", 2, 4, 1)
    cg_out = 6 // group if group == 2 else 1
    w = g.rng.normal(0, 0.3, (4, cg_out, 3, 3)).astype(np.float32)
    b = g.rng.normal(0, 0.1, cg_out * group).astype(np.float32)
    y = g.op("ConvTranspose", [t, g.c(w), g.c(b)], kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1], output_padding=[1, 1], group=group)
    net, _ = run_onnx(tmp_path, g.model("x", y, [1, 2, 4, 5], [1, cg_out * group, 8, 10]))
    assert ops(net) == ["conv"] + ["slice", "convt"] * group + ["concat"]


def test_conv_transpose_with_too_many_groups_is_refused():
    g = G(22)
    w = g.rng.normal(0, 0.3, (32, 1, 2, 2)).astype(np.float32)
    y = g.op("ConvTranspose", [g.conv("x", 2, 32, 1), g.c(w)], kernel_shape=[2, 2],
             strides=[2, 2], group=32)
    msg = onnx_err(g.model("x", y, [1, 2, 4, 4], [1, 32, 8, 8]))
    assert "ConvTranspose x1" in msg and "group 32 not supported" in msg
