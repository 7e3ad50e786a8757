"""TFLite SPLIT / SPLIT_V, SUB of a constant, the channel shuffle RESHAPE -> TRANSPOSE -> RESHAPE
and MUL by a per-channel quantised constant (msfopt/importers/tflite_graph_ops.py) end to end:
small int8 models written with tests/tflite_builder.py are imported, planned, generated as C,
built for the host and run; every output is compared with tflite-micro on the ORIGINAL file
(msfopt.oracles.reference) and the linked arena with the predicted one (the harness of
tests/test_tflite_graph_ops.py).  The unsupported forms are refused with a one-line reason.

Expected values come only from tflite-micro; the tests also check what each op became in the IR
(so a model that imports as something else fails), and that the outputs are not degenerate.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import require

require("tflite", "tflite-micro")

from msfopt import ir  # noqa: E402
from msfopt.solver import solve  # noqa: E402
from tflite_builder import (OP, SAME, VALID, ModelWriter, split_opts,  # noqa: E402
                            split_v_opts, sub_opts, transpose_opts)
from test_tflite_graph_ops import _err, concat_opts, const8, mul_opts, run_small  # noqa: E402
from test_tflite_import import (_conv_weights, add_opts, conv_opts, mean_opts,  # noqa: E402
                               reshape_opts)


def _i32(w: ModelWriter, values):
    v = np.asarray(values, np.int32)
    return w.tensor(list(v.shape), w.INT32, data=v)


def _conv(w, rng, x, cin, cout, q, k=3):
    cw, cb = _conv_weights(w, rng, [cout, k, k, cin], 0)
    shape = list(w.tensors[x]["shape"][:3]) + [cout]
    h = w.act(shape, *q)
    w.op(OP["CONV_2D"], [x, cw, cb], [h], *conv_opts(SAME, (1, 1)))
    return h


# ------------------------------------------------------------------------------------------------
# SPLIT / SPLIT_V on the channels
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [3, -1])
def test_split_equal_parts_bit_exact(axis, tmp_path):
    """CONV -> SPLIT in 2 -> ADD(part 1, part 0): each part is a SLICE of the conv's output;
    the second part carries another quantisation than the conv (TFLM copies the bytes: a
    relabelling), which the ADD's requantisation must see.  Unfused and minimum-RAM plans."""
    rng = np.random.default_rng(1)
    w = ModelWriter()
    x = w.act([1, 6, 5, 3], 0.04, -5)
    h = _conv(w, rng, x, 3, 8, (0.05, 4))
    a, b = w.act([1, 6, 5, 4], 0.05, 4), w.act([1, 6, 5, 4], 0.07, -3)
    w.op(OP["SPLIT"], [_i32(w, [axis]), h], [a, b], *split_opts(2))
    y = w.act([1, 6, 5, 4], 0.08, 2)
    w.op(OP["ADD"], [b, a], [y], *add_opts("relu"))
    net, ys = run_small(tmp_path, "split", w.build([x], [y]), which=("unfused", "min-ram"))
    slices = [L for L in net.layers if L.op == ir.SLICE]
    assert [s.chan for s in slices] == [(0, 4), (4, 8)]
    assert net.tensor_quant[net.layers.index(slices[1]) + 1].scale[0] == pytest.approx(0.07)
    assert len(np.unique(ys[0])) > 20


@pytest.mark.parametrize("sizes,order,axis", [
    ([3, -1, 1], (2, 0, 1), 3),     # 3 unequal parts (one inferred), reordered by the concat
    ([2, 5, 1], (2, 0), -1),        # the middle part unused: no layer for it
])
def test_split_v_bit_exact(sizes, order, axis, tmp_path):
    """SPLIT_V of the model input into unequal parts, CONCATENATION of some of them in another
    order: output channel blocks come from the right input channels."""
    w = ModelWriter()
    q = (0.05, -2)
    x = w.act([1, 4, 5, 8], *q)
    real = [s if s >= 0 else 8 - (sum(sizes) + 1) for s in sizes]
    parts = [w.act([1, 4, 5, s], *q) for s in real]
    w.op(OP["SPLIT_V"], [x, _i32(w, sizes), _i32(w, [axis])], parts, *split_v_opts(len(sizes)))
    cat = w.act([1, 4, 5, sum(real[k] for k in order)], *q)
    w.op(OP["CONCATENATION"], [parts[k] for k in order], [cat], *concat_opts())
    # a conv after it, so that the plans have MACs (solve() divides by them)
    y = _conv(w, np.random.default_rng(len(order)), cat, sum(real[k] for k in order), 5,
              (0.1, 1), k=1)
    net, ys = run_small(tmp_path, "splitv", w.build([x], [y]), which=("unfused", "min-ram"))
    starts = np.cumsum([0] + real)
    assert [L.chan for L in net.layers if L.op == ir.SLICE] == \
        [(int(starts[k]), int(starts[k] + real[k])) for k in sorted(order)]
    assert len(np.unique(ys[0])) > 20


# ------------------------------------------------------------------------------------------------
# channel shuffle
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("groups,view5", [(2, True), (4, True), (2, False)])
def test_channel_shuffle_bit_exact(groups, view5, tmp_path):
    """CONV -> RESHAPE [1, H, W, g, C/g] (or [1, H W, g, C/g]) -> TRANSPOSE of the last two axes
    -> RESHAPE [1, H, W, C] -> CONV: one SHUFFLE layer; unfused, zero-recompute and min-RAM."""
    rng = np.random.default_rng(groups)
    w = ModelWriter()
    H, W, C = 4, 5, 8
    q = (0.05, 3)
    x = w.act([1, H, W, 3], 0.04, -5)
    h = _conv(w, rng, x, 3, C, q)
    lead = [1, H, W] if view5 else [1, H * W]
    v = w.act(lead + [groups, C // groups], *q)
    w.op(OP["RESHAPE"], [h, _i32(w, lead + [groups, C // groups])], [v],
         *reshape_opts(lead + [groups, C // groups]))
    r = len(lead) + 2
    t = w.act(lead + [C // groups, groups], *q)
    w.op(OP["TRANSPOSE"], [v, _i32(w, list(range(r - 2)) + [r - 1, r - 2])], [t],
         *transpose_opts())
    s = w.act([1, H, W, C], *q)
    w.op(OP["RESHAPE"], [t, _i32(w, [1, H, W, C])], [s], *reshape_opts([1, H, W, C]))
    y = _conv(w, rng, s, C, 6, (0.1, -1), k=1)
    net, ys = run_small(tmp_path, "shuffle", w.build([x], [y]),
                        which=("unfused", "zero-recompute", "min-ram"))
    assert [L.op for L in net.layers] == [ir.CONV, ir.SHUFFLE, ir.CONV]
    assert net.layers[1].groups == groups
    assert net.provenance.layer_ops[1] == "RESHAPE+TRANSPOSE+RESHAPE"
    assert len(np.unique(ys[0])) > 20


def test_channel_shuffle_at_the_output_bit_exact(tmp_path):
    """The shuffle alone on the model input, its result the model output: every input value
    must land on its permuted channel."""
    w = ModelWriter()
    q = (0.02, 0)
    x = w.act([1, 4, 8, 6], *q)
    v = w.act([1, 4, 8, 3, 2], *q)
    w.op(OP["RESHAPE"], [x, _i32(w, [1, 4, 8, 3, 2])], [v], *reshape_opts([1, 4, 8, 3, 2]))
    t = w.act([1, 4, 8, 2, 3], *q)
    w.op(OP["TRANSPOSE"], [v, _i32(w, [0, 1, 2, 4, 3])], [t], *transpose_opts())
    y = w.act([1, 4, 8, 6], *q)
    w.op(OP["RESHAPE"], [t, _i32(w, [1, 4, 8, 6])], [y], *reshape_opts([1, 4, 8, 6]))
    net, _ = run_small(tmp_path, "shuffle-out", w.build([x], [y]))
    assert [(L.op, L.groups) for L in net.layers] == [(ir.SHUFFLE, 3)]
    # a network without MACs plans like any other (F = 1 by definition: nothing to recompute)
    for objective in ("ram", "latency"):
        plan = solve(net, objective=objective)
        assert plan.macs == plan.vanilla_macs == 0 and plan.mac_overhead == 1.0
        assert plan.peak_ram_bytes == 2 * 4 * 8 * 6      # input and output, both alive


def _shuffle(w, x, shape, groups, q):
    """RESHAPE -> TRANSPOSE -> RESHAPE channel shuffle of x (shape [1, H, W, C]) in ``groups``."""
    _, H, W, C = shape
    view = [1, H, W, groups, C // groups]
    v = w.act(view, *q)
    w.op(OP["RESHAPE"], [x, _i32(w, view)], [v], *reshape_opts(view))
    t = w.act([1, H, W, C // groups, groups], *q)
    w.op(OP["TRANSPOSE"], [v, _i32(w, [0, 1, 2, 4, 3])], [t], *transpose_opts())
    s = w.act(shape, *q)
    w.op(OP["RESHAPE"], [t, _i32(w, shape)], [s], *reshape_opts(shape))
    return s


def test_shufflenet_unit_fused_plans_bit_exact(tmp_path):
    """Two ShuffleNetV2 units as Keras writes them: CONV -> SPLIT in 2; one half through
    CONV 1x1 (relu, expanding) -> DEPTHWISE 3x3 -> CONV 1x1 (relu); CONCATENATION with the other half
    (the same quantisation, as TFLM requires) -> channel shuffle in 2; then a second unit with
    SPLIT_V and a reordered concat -> CONV.  Unfused, zero-recompute and minimum-RAM plans."""
    from test_tflite_import import dw_opts
    rng = np.random.default_rng(11)
    w = ModelWriter()
    H, W, C, E = 12, 12, 8, 24    # E: the branch's expanded width (what fusion saves)
    q = (0.05, -6)
    x = w.act([1, H, W, 3], 0.04, -5)
    h = _conv(w, rng, x, 3, C, q)
    for unit, split in enumerate(("SPLIT", "SPLIT_V")):
        a, b = w.act([1, H, W, C // 2], *q), w.act([1, H, W, C // 2], *q)
        if split == "SPLIT":
            w.op(OP["SPLIT"], [_i32(w, [-1]), h], [a, b], *split_opts(2))
        else:
            w.op(OP["SPLIT_V"], [h, _i32(w, [-1, C // 2]), _i32(w, [3])], [a, b],
                 *split_v_opts(2))
        cw, cb = _conv_weights(w, rng, [E, 1, 1, C // 2], 0)
        b1 = w.act([1, H, W, E], 0.04, -128)
        w.op(OP["CONV_2D"], [b, cw, cb], [b1], *conv_opts(SAME, (1, 1), "relu"))
        dw, db = _conv_weights(w, rng, [1, 3, 3, E], 3)
        b2 = w.act([1, H, W, E], 0.06, 2)
        w.op(OP["DEPTHWISE_CONV_2D"], [b1, dw, db], [b2], *dw_opts(SAME, (1, 1)))
        cw, cb = _conv_weights(w, rng, [C // 2, 1, 1, E], 0)
        b3 = w.act([1, H, W, C // 2], *q)
        w.op(OP["CONV_2D"], [b2, cw, cb], [b3], *conv_opts(SAME, (1, 1), "relu"))
        cat = w.act([1, H, W, C], *q)
        w.op(OP["CONCATENATION"], [a, b3] if unit == 0 else [b3, a], [cat], *concat_opts())
        h = _shuffle(w, cat, [1, H, W, C], 2, q)
    y = _conv(w, rng, h, C, 5, (0.1, 3), k=1)
    net, ys = run_small(tmp_path, "shufflenet", w.build([x], [y]), n_inputs=3,
                        which=("unfused", "zero-recompute", "min-ram"))
    # the minimum-RAM plan fuses each branch's CONV -> DEPTHWISE -> CONV between the slices
    fused = [(b.first_layer, b.last_layer) for b in solve(net, objective="ram", check=False).blocks
             if b.last_layer > b.first_layer]
    assert fused == [(3, 5), (10, 12)]
    kinds = [L.op for L in net.layers]
    assert kinds.count(ir.SLICE) == 4 and kinds.count(ir.SHUFFLE) == 2
    assert kinds.count(ir.CONCAT) == 2
    assert len(np.unique(ys[0])) > 20


# ------------------------------------------------------------------------------------------------
# SUB of a constant
# ------------------------------------------------------------------------------------------------

SUB_CASES = {
    # name: (constant shape, per-channel quantised, act, constant quant, x quant, y quant)
    "scalar": ([], False, "none", (0.01, 20), (0.02, -10), (0.025, 30)),
    "scalar-relu6": ([], False, "relu6", (0.004, 127), (0.02, -10), (0.02, -128)),
    # x - (-1.0 .. +2.5) on a narrow output grid: most outputs saturate at -128 / 127
    "saturating": ([], False, "none", (0.02, -128), (0.05, 0), (0.004, 0)),
    "channel": ([8], False, "relu", (0.03, -7), (0.02, -10), (0.025, 30)),
    "broadcast-1x1x1xC": ([1, 1, 1, 8], False, "none", (0.05, 100), (0.03, 5), (0.04, -2)),
    "per-channel-q": ([1, 1, 1, 8], True, "none", (0.05, 3), (0.03, 5), (0.04, -2)),
}


@pytest.mark.parametrize("case", list(SUB_CASES))
def test_sub_constant_bit_exact(case, tmp_path):
    """SUB(x, k), k a scalar or one int8 value per channel (shape [C] or [1, 1, 1, C]): the ADD
    of the negated constant, bit-exact with TFLM's SUB on every int8 input value (the first of
    the four inputs holds all 256 values, the next two the extremes)."""
    shape, per_channel_q, act, cq, xq, yq = SUB_CASES[case]
    rng = np.random.default_rng(len(case))
    w = ModelWriter()
    x = w.act([1, 4, 8, 8], *xq)
    n = int(np.prod(shape)) if shape else 1
    vals = rng.integers(-128, 128, n).astype(np.int8)
    vals[: min(n, 2)] = (-128, 127)[: min(n, 2)]
    if case == "saturating":
        vals[:] = 127
    if per_channel_q:
        k = w.tensor(shape, w.INT8, rng.uniform(0.01, 0.08, n).astype(np.float32),
                     rng.integers(-20, 20, n), qdim=len(shape) - 1, data=vals.reshape(shape))
    else:
        k = const8(w, vals.reshape(shape), cq[0], cq[1], shape=shape)
    y = w.act([1, 4, 8, 8], *yq)
    w.op(OP["SUB"], [x, k], [y], *sub_opts(act))
    net, ys = run_small(tmp_path, f"sub-{case}", w.build([x], [y]))
    (L,) = net.layers
    assert (L.op, L.fn, L.act, np.asarray(L.bias).size) == (ir.ACT, "affine", act, n)
    if case == "saturating":
        assert (ys[0] == -128).sum() > 50 and (ys[0] == 127).sum() > 10
    else:
        assert len(np.unique(ys[0])) > 20


def test_sub_after_a_conv_in_a_fused_plan_bit_exact(tmp_path):
    """CONV -> SUB([C] constant) -> CONV under the minimum-RAM plan (the SUB inside a block)."""
    rng = np.random.default_rng(7)
    w = ModelWriter()
    x = w.act([1, 8, 6, 3], 0.04, -5)
    h = _conv(w, rng, x, 3, 6, (0.05, 4))
    k = const8(w, rng.integers(-128, 128, 6), 0.03, 9, shape=[6])
    s = w.act([1, 8, 6, 6], 0.06, -3)
    w.op(OP["SUB"], [h, k], [s], *sub_opts())
    y = _conv(w, rng, s, 6, 4, (0.1, 2))
    net, ys = run_small(tmp_path, "sub-conv", w.build([x], [y]),
                        which=("unfused", "zero-recompute", "min-ram"))
    assert [L.op for L in net.layers] == [ir.CONV, ir.ACT, ir.CONV]
    assert len(np.unique(ys[0])) > 20


# ------------------------------------------------------------------------------------------------
# SUB of two activations, and constant minus activation
# ------------------------------------------------------------------------------------------------

SUB2_CASES = {
    # name: (conv output first?, act, conv quant, output quant)
    "conv-minus-input": (True, "none", (0.05, 4), (0.06, 3)),
    "input-minus-conv-relu": (False, "relu", (0.11, -20), (0.03, -7)),
    "conv-minus-input-relu6": (True, "relu6", (0.02, 60), (0.025, -128)),
    # a narrow output grid: most outputs saturate at -128 and at 127
    "saturating": (False, "none", (0.05, 4), (0.003, 0)),
}


@pytest.mark.parametrize("case", list(SUB2_CASES))
def test_sub_of_two_activations_bit_exact(case, tmp_path):
    """CONV(x) - x and x - CONV(x) (two grids, an output grid of its own, fused activation
    NONE / RELU / RELU6): one ADD with ``sub``, the operands in the file's order, bit-exact with
    TFLM's SUB (all 256 input values in the first input)."""
    conv_first, act, hq, yq = SUB2_CASES[case]
    rng = np.random.default_rng(len(case))
    w = ModelWriter()
    x = w.act([1, 5, 6, 4], 0.04, -5)
    h = _conv(w, rng, x, 4, 4, hq)
    y = w.act([1, 5, 6, 4], *yq)
    w.op(OP["SUB"], [h, x] if conv_first else [x, h], [y], *sub_opts(act))
    net, ys = run_small(tmp_path, f"sub2-{case}", w.build([x], [y]))
    L = net.layers[1]
    assert (L.op, L.sub, L.act, L.srcs) == (ir.ADD, True, act, (1, 0) if conv_first else (0, 1))
    if case == "saturating":
        assert (ys[0] == -128).sum() > 30 and (ys[0] == 127).sum() > 30
    else:
        assert len(np.unique(ys[0])) > 20


def _tflm_srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul (numpy int64, C's truncating division)."""
    ab = a.astype(np.int64) * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    v = ab + nudge
    q = np.where(v >= 0, v // (1 << 31), -((-v) // (1 << 31)))
    return np.where((a == -(1 << 31)) & (b == -(1 << 31)), (1 << 31) - 1, q)


def _tflm_rdbpot(x, e):
    """gemmlowp RoundingDivideByPOT (half away from zero)."""
    mask = (1 << e) - 1
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > thr)


@pytest.mark.parametrize("seed", range(4))
def test_add_kernel_subtract_mode_matches_tflm_formula(seed):
    """msf_add_s8 with ``sub`` (fast path and reference loop) on all 65536 (a, b) pairs ==
    TFLM's SubElementwise written out here: scaled_i = RDBPOT(SRDHM((q_i - zp_i) << 20, m_i),
    -s_i), raw = scaled_1 - scaled_2, RDBPOT(SRDHM(raw, m_o), -s_o) + zp_o, clamped."""
    import ctypes as C
    from msfopt.mcu_runtime import hostlib, requant
    from msfopt.importers.tflite_import import tflm_activation_range
    lib = hostlib.load(hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all"]))
    P = C.POINTER
    lib.msf_add_s8_ref.argtypes = [P(hostlib.AddS8), P(hostlib.View), P(hostlib.View),
                                   P(hostlib.View)] + [C.c_int32] * 4
    rng = np.random.default_rng(seed)
    A = np.repeat(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256, 1)
    B = np.tile(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256, 1)
    sa, sb, sc = (float(np.float32(v)) for v in rng.uniform(0.002, 0.3, 3))
    if seed == 0:
        sa, sb, sc = 0.5, 0.25, 2.0 ** -3     # exact ratios: SRDHM ties
    za, zb, zc = (int(v) for v in rng.integers(-128, 128, 3))
    act = ("none", "relu", "relu6", "none")[seed]
    lo, hi = tflm_activation_range(act, sc, zc)
    fx = requant.add_fixed_params(sa, sb, sc)
    ls = fx["left_shift"]
    s1 = _tflm_rdbpot(_tflm_srdhm((A.astype(np.int64) - za) << ls, fx["in1_mul"]),
                      -fx["in1_shift"])
    s2 = _tflm_rdbpot(_tflm_srdhm((B.astype(np.int64) - zb) << ls, fx["in2_mul"]),
                      -fx["in2_shift"])
    r = _tflm_rdbpot(_tflm_srdhm(s1 - s2, fx["out_mul"]), -fx["out_shift"]) + zc
    ref = np.clip(r, lo, hi).astype(np.int8)
    p = hostlib.AddS8(hostlib.MSF_RQ_FIXED, za, zb, zc, lo, hi, 0.0, 0.0, 0.0, ls,
                      fx["in1_mul"], fx["in1_shift"], fx["in2_mul"], fx["in2_shift"],
                      fx["out_mul"], fx["out_shift"], 1)
    for fn in (lib.msf_add_s8, lib.msf_add_s8_ref):
        y = np.zeros_like(A)
        fn(C.byref(p), C.byref(hostlib.full_view(A)), C.byref(hostlib.full_view(B)),
           C.byref(hostlib.full_view(y)), 0, 256, 0, 256)
        np.testing.assert_array_equal(y, ref)
    assert len(np.unique(ref)) > 10


def test_sub_attribute_is_validated():
    """``sub`` is a bool, only in an int8 network, on an ADD or a constant affine (c - x)
    without a slope."""
    shape = (2, 2, 3)

    def add_net(dtype="int8", sub=True):
        return ir.Network("n", shape, [ir.Layer(op=ir.CONV, in_shape=shape, out_shape=shape),
                                       ir.Layer(op=ir.ADD, in_shape=shape, out_shape=shape,
                                                srcs=(1, 0), sub=sub)], dtype=dtype)
    add_net().validate()
    add_net("float32").validate()     # a float subtract runs msf_binary_f32
    with pytest.raises(ir.IRError, match="sub on a float32 network"):
        ir.Network("n", shape, [ir.Layer(op=ir.ACT, fn="affine", in_shape=shape,
                                         out_shape=shape, weight=np.ones(3, np.float32),
                                         bias=np.zeros(3, np.float32), sub=True)],
                   dtype="float32").validate()
    with pytest.raises(ir.IRError, match="rsub is only for an add"):
        ir.Network("n", shape, [ir.Layer(op=ir.CONV, in_shape=shape, out_shape=shape,
                                         rsub=True)], dtype="int8").validate()
    # an add with its operands in the order (src2, src): a QLinearAdd whose A input is src2
    ir.Network("n", shape, [ir.Layer(op=ir.CONV, in_shape=shape, out_shape=shape),
                            ir.Layer(op=ir.ADD, in_shape=shape, out_shape=shape,
                                     srcs=(1, 0), rsub=True)], dtype="int8").validate()
    with pytest.raises(ir.IRError, match="add inputs/output shapes differ"):
        ir.Network("n", shape, [ir.Layer(op=ir.CONV, in_shape=shape, out_shape=(2, 1, 3),
                                         kernel=(1, 2)),
                                ir.Layer(op=ir.ADD, in_shape=shape, out_shape=shape,
                                         srcs=(0, 1))], dtype="int8").validate()
    with pytest.raises(ir.IRError, match="sub must be a bool"):
        add_net(sub=1).validate()
    with pytest.raises(ir.IRError, match="sub is only for an add or an int8 affine"):
        ir.Network("n", shape, [ir.Layer(op=ir.CONV, in_shape=shape, out_shape=shape,
                                         sub=True)], dtype="int8").validate()
    with pytest.raises(ir.IRError, match="subtracting affine is int8 constant minus input"):
        ir.Network("n", shape, [ir.Layer(op=ir.ACT, fn="affine", in_shape=shape,
                                         out_shape=shape, weight=np.ones(3, np.int8),
                                         bias=np.zeros(3, np.int8), sub=True)],
                   dtype="int8").validate()


def test_subtracting_add_export(tmp_path):
    """msfopt's ONNX export writes a subtracting add as Sub (float), and refuses it as int8
    (com.microsoft has no QLinearSub; TFLM's arithmetic is not onnxruntime's)."""
    from msfopt.export_onnx import to_onnx
    from msfopt.importers.tflite_import import load_tflite
    rng = np.random.default_rng(3)
    w = ModelWriter()
    x = w.act([1, 5, 6, 4], 0.04, -5)
    h = _conv(w, rng, x, 4, 4, (0.05, 4))
    y = w.act([1, 5, 6, 4], 0.06, 3)
    w.op(OP["SUB"], [x, h], [y], *sub_opts())
    path = tmp_path / "sub-export.tflite"
    path.write_bytes(w.build([x], [y]))
    net = load_tflite(path)
    nodes = to_onnx(net, mode="float").graph.node
    (sub,) = [n for n in nodes if n.op_type == "Sub"]
    assert not [n for n in nodes if n.op_type == "Add"]
    assert sub.input[0].startswith("input") or sub.input[0] == "t0"   # x first: x - conv(x)
    with pytest.raises(ValueError, match=r"subtracting add 1_sub as int8 \(no QLinearSub\)"):
        to_onnx(net, mode="int8")


def test_sub_of_two_activations_after_a_fused_branch(tmp_path):
    """x -> CONV -> h; h -> CONV -> CONV -> g (a branch); g - h -> CONV: the minimum-RAM plan
    fuses the branch while h stays alive; h - g's operand order is kept.  Every plan bit-exact
    with tflite-micro."""
    rng = np.random.default_rng(11)
    w = ModelWriter()
    x = w.act([1, 12, 12, 3], 0.04, -5)
    h = _conv(w, rng, x, 3, 8, (0.05, 4))
    b1 = _conv(w, rng, h, 8, 24, (0.06, -2))
    g = _conv(w, rng, b1, 24, 8, (0.07, 1))
    s = w.act([1, 12, 12, 8], 0.08, -3)
    w.op(OP["SUB"], [h, g], [s], *sub_opts("relu"))
    y = _conv(w, rng, s, 8, 4, (0.1, 2), k=1)
    net, ys = run_small(tmp_path, "sub2-branch", w.build([x], [y]),
                        which=("unfused", "zero-recompute", "min-ram"))
    assert [L.op for L in net.layers] == [ir.CONV, ir.CONV, ir.CONV, ir.ADD, ir.CONV]
    assert net.layers[3].sub and net.layers[3].srcs == (1, 3)
    plan = solve(net, objective="ram", check=False)
    assert any(b.first_layer == 1 and b.last_layer >= 2 for b in plan.blocks), plan.setting
    assert len(np.unique(ys[0])) > 20


RSUB_CASES = {
    # name: (constant shape, act, constant quant, x quant, y quant)
    "scalar": ([], "none", (0.01, 20), (0.02, -10), (0.025, 30)),
    "scalar-relu": ([], "relu", (0.05, -100), (0.02, 7), (0.02, -50)),
    "channel": ([8], "none", (0.03, -7), (0.02, -10), (0.025, 30)),
    "channel-1x1x1xC-relu6": ([1, 1, 1, 8], "relu6", (0.05, 10), (0.03, 5), (0.03, -128)),
    # 1 - x on a narrow grid: saturation at both ends
    "saturating": ([], "none", (0.02, 77), (0.05, 0), (0.004, 0)),
}


@pytest.mark.parametrize("case", list(RSUB_CASES))
def test_constant_minus_activation_bit_exact(case, tmp_path):
    """SUB(k, x), k a scalar (a 256-entry table) or one int8 value per channel
    (MSF_ELT_ADD_CONST with the input multiplier negated), bit-exact with TFLM on all 256
    input values."""
    shape, act, cq, xq, yq = RSUB_CASES[case]
    rng = np.random.default_rng(len(case) + 100)
    w = ModelWriter()
    x = w.act([1, 4, 8, 8], *xq)
    n = int(np.prod(shape)) if shape else 1
    vals = rng.integers(-128, 128, n).astype(np.int8)
    vals[: min(n, 2)] = (-128, 127)[: min(n, 2)]
    if case == "saturating":
        vals[:] = 127     # 1.0
    k = const8(w, vals.reshape(shape), cq[0], cq[1], shape=shape)
    y = w.act([1, 4, 8, 8], *yq)
    w.op(OP["SUB"], [k, x], [y], *sub_opts(act))
    net, ys = run_small(tmp_path, f"rsub-{case}", w.build([x], [y]))
    (L,) = net.layers
    assert (L.op, L.fn, L.sub, L.act, np.asarray(L.bias).size) == (ir.ACT, "affine", True, act, n)
    if case == "saturating":
        assert (ys[0] == -128).sum() > 50 and (ys[0] == 127).sum() > 50
    else:
        assert len(np.unique(ys[0])) > 20


# x scale 2^-5 + 2^-26 below the constant's 2^-4: the input multiplier 2^30 + 2^9 makes
# SRDHM((x - 0) << 20, m) an exact tie at x = +-2 mod 8 (TFLM rounds it upwards, so the negated
# multiplier gives minus the scaled input plus one there)
RSUB_TIE = dict(xq=(float(np.float32(2.0 ** -5 + 2.0 ** -26)), 0), kq=(2.0 ** -4, 0))


def _rsub_model(yq, kvals) -> bytes:
    w = ModelWriter()
    x = w.act([1, 4, 8, 8], *RSUB_TIE["xq"])
    k = const8(w, np.asarray(kvals, np.int8), *RSUB_TIE["kq"], shape=[8])
    y = w.act([1, 4, 8, 8], *yq)
    w.op(OP["SUB"], [k, x], [y], *sub_opts())
    return w.build([x], [y])


def test_constant_minus_activation_at_a_rounding_tie(tmp_path):
    """SUB([C] k, x) at SRDHM ties of the input's scaled value: on a coarse output grid every
    input still comes out as with the negated multiplier (imported, bit-exact with tflite-micro);
    on the grid 2^-18 the channel with k = 61 does not at input 122, and the model is refused.
    The refusal is needed: tflite-micro's output there is TFLM's formula, not the negated one."""
    kvals = [61, -3, 0, 17, -128, 127, 5, -40]
    net, _ = run_small(tmp_path, "rsub-tie", _rsub_model((0.03, -10), kvals))
    assert net.layers[0].sub and np.asarray(net.layers[0].bias).size == 8
    msg = _err(_rsub_model((2.0 ** -18, 0), kvals))
    assert "SUB x1: constant minus input hits a rounding tie" in msg and "(input 122 " in msg
    from msfopt.mcu_runtime import requant
    from msfopt.oracle_engines import run_engine
    path = tmp_path / "rsub-tie-fine.tflite"
    path.write_bytes(_rsub_model((2.0 ** -18, 0), kvals))
    y = run_engine("tflite-micro", path, [[np.full((1, 4, 8, 8), 122, np.int8)]])[0][0]
    fx = requant.add_fixed_params(RSUB_TIE["kq"][0], RSUB_TIE["xq"][0], 2.0 ** -18)

    def scaled(d, m, s):
        return int(_tflm_rdbpot(_tflm_srdhm(np.array([d << 20]), m), -s)[0])

    def out(raw):
        r = int(_tflm_rdbpot(_tflm_srdhm(np.array([raw]), fx["out_mul"]), -fx["out_shift"])[0])
        return min(127, max(-128, r))
    sk = scaled(61, fx["in1_mul"], fx["in1_shift"])
    exact = out(sk - scaled(122, fx["in2_mul"], fx["in2_shift"]))
    negated = out(sk + scaled(122, -fx["in2_mul"], fx["in2_shift"]))
    assert exact != negated and int(y.reshape(-1, 8)[0, 0]) == exact


# ------------------------------------------------------------------------------------------------
# MUL by a per-channel quantised constant
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [[8], [1, 1, 1, 8]])
def test_mul_per_channel_quantised_constant_bit_exact(shape, tmp_path):
    """x * k with k quantised per channel in the file: TFLM's MUL reads only TfLiteTensor.params
    (the first scale / zero point), and so does the import."""
    rng = np.random.default_rng(len(shape))
    w = ModelWriter()
    x = w.act([1, 4, 8, 8], 0.05, -7)
    vals = rng.integers(-128, 128, 8).astype(np.int8)
    k = w.tensor(shape, w.INT8, rng.uniform(0.005, 0.05, 8).astype(np.float32),
                 rng.integers(-10, 10, 8), qdim=len(shape) - 1, data=vals.reshape(shape))
    y = w.act([1, 4, 8, 8], 0.03, 11)
    w.op(OP["MUL"], [x, k], [y], *mul_opts("relu"))
    net, ys = run_small(tmp_path, "mul-pcq", w.build([x], [y]))
    (L,) = net.layers
    assert L.op == ir.MUL and not L.w_quant.per_channel
    assert L.w_quant.scale[0] == pytest.approx(float(w.tensors[k]["scale"][0]))
    assert len(np.unique(ys[0])) > 20


# ------------------------------------------------------------------------------------------------
# unsupported forms: one clear line naming the op and why
# ------------------------------------------------------------------------------------------------

def test_split_on_height_is_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    a, b = w.act([1, 2, 4, 2], 0.05, 3), w.act([1, 2, 4, 2], 0.05, 3)
    w.op(OP["SPLIT"], [_i32(w, [1]), x], [a, b], *split_opts(2))
    y = w.act([1, 2, 4, 2], 0.05, 3)
    w.op(OP["ADD"], [a, b], [y], *add_opts())
    msg = _err(w.build([x], [y]))
    assert "SPLIT x1" in msg and "split on axis 1 of a 4-D tensor" in msg
    assert "ADD" not in msg     # consequences are not reported


def test_split_v_bad_sizes_are_refused():
    w = ModelWriter()
    x = w.act([1, 4, 4, 6], 0.05, 3)
    a, b = w.act([1, 4, 4, 2], 0.05, 3), w.act([1, 4, 4, 3], 0.05, 3)
    w.op(OP["SPLIT_V"], [x, _i32(w, [2, 3]), _i32(w, [3])], [a, b], *split_v_opts(2))
    y = w.act([1, 4, 4, 5], 0.05, 3)
    w.op(OP["CONCATENATION"], [a, b], [y], *concat_opts())
    msg = _err(w.build([x], [y]))
    assert "SPLIT_V x1" in msg and "do not partition 6 channels" in msg


def test_transpose_that_is_not_a_shuffle_is_refused():
    w = ModelWriter()
    x = w.act([1, 4, 6, 2], 0.05, 3)
    y = w.act([1, 6, 4, 2], 0.05, 3)
    w.op(OP["TRANSPOSE"], [x, _i32(w, [0, 2, 1, 3])], [y], *transpose_opts())
    msg = _err(w.build([x], [y]))
    assert "TRANSPOSE x1" in msg and "perm [0, 2, 1, 3]" in msg and "not a channel shuffle" in msg
    # a grouped view whose transpose does not swap the last two axes
    w = ModelWriter()
    x = w.act([1, 4, 4, 8], 0.05, 3)
    v = w.act([1, 4, 4, 2, 4], 0.05, 3)
    w.op(OP["RESHAPE"], [x, _i32(w, [1, 4, 4, 2, 4])], [v], *reshape_opts([1, 4, 4, 2, 4]))
    t = w.act([1, 4, 4, 2, 4], 0.05, 3)
    w.op(OP["TRANSPOSE"], [v, _i32(w, [0, 2, 1, 3, 4])], [t], *transpose_opts())
    y = w.act([1, 4, 4, 8], 0.05, 3)
    w.op(OP["RESHAPE"], [t, _i32(w, [1, 4, 4, 8])], [y], *reshape_opts([1, 4, 4, 8]))
    msg = _err(w.build([x], [y]))
    assert "RESHAPE x1" in msg and "not a channel shuffle" in msg and \
        "does not swap the last two axes" in msg


def test_sub_forms_refused():
    """A SUB of two activations that broadcast other than per channel / per pixel / a scalar
    (here [1, 1, W, C]) and c - x with a constant that is neither a scalar nor one value per
    channel: one line naming the op."""
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    cw, cb = _conv_weights(w, np.random.default_rng(0), [2, 4, 1, 2], 0)
    g = w.act([1, 1, 4, 2], 0.05, 3)
    w.op(OP["CONV_2D"], [x, cw, cb], [g], *conv_opts(VALID, (1, 1)))
    y = w.act([1, 4, 4, 2], 0.05, 3)
    w.op(OP["SUB"], [x, g], [y], *sub_opts())
    msg = _err(w.build([x], [y]))
    assert "SUB x1: broadcasting subtraction of [1, 4, 4, 2] and [1, 1, 4, 2]" in msg
    w = ModelWriter()
    x = w.act([1, 4, 4, 2], 0.05, 3)
    k = const8(w, np.arange(8), 0.01, 0, shape=[1, 4, 1, 2])
    y = w.act([1, 4, 4, 2], 0.05, 3)
    w.op(OP["SUB"], [k, x], [y], *sub_opts())
    assert "SUB x1: constant minus activation with a constant of shape [1, 4, 1, 2]" in \
        _err(w.build([x], [y]))


def _sub_or_add_model(op: str, c: int, xq, cq, yq) -> bytes:
    w = ModelWriter()
    x = w.act([1, 4, 8, 8], *xq)
    k = const8(w, c, cq[0], cq[1], shape=[])
    y = w.act([1, 4, 8, 8], *yq)
    w.op(OP[op], [x, k], [y], *(sub_opts() if op == "SUB" else add_opts()))
    return w.build([x], [y])


# scales where SRDHM((3 << 20), m2) of the constant's summand is an exact tie (rounded upwards:
# the negated summand is one off), on an output grid fine enough for that to show
TIE = dict(xq=(0.07866507768630981, 0), cq=(0.019481239840388298, 0))


def test_sub_constant_at_a_rounding_tie(tmp_path):
    """SUB(x, 3) at a tie of TFLM's arithmetic: on a coarse output grid every input still comes
    out as the negated ADD's (imported, bit-exact: the exhaustive check passes); on a fine one
    some do not, and the model is refused.  That refusal is needed: tflite-micro itself gives
    SUB(x, 3) != ADD(x, -3) on the input named in the message."""
    net, _ = run_small(tmp_path, "sub-tie", _sub_or_add_model("SUB", 3, yq=(0.05, 0), **TIE))
    assert net.layers[0].fn == "affine"
    fine = dict(yq=(float(np.float32(0.0003235430340282619)), 0), **TIE)
    msg = _err(_sub_or_add_model("SUB", 3, **fine))
    assert "SUB x1: constant subtrahend 3 hits a rounding tie" in msg
    q = int(msg.split("(input ")[1].split()[0])
    from msfopt.oracle_engines import run_engine
    x = np.full((1, 4, 8, 8), q, np.int8)
    ys = []
    for op, c in (("SUB", 3), ("ADD", -3)):
        path = tmp_path / f"tie-{op}.tflite"
        path.write_bytes(_sub_or_add_model(op, c, **fine))
        ys.append(run_engine("tflite-micro", path, [[x]])[0][0])
    assert not np.array_equal(ys[0], ys[1])


# ------------------------------------------------------------------------------------------------
# broadcasting ADD / SUB of two activations ([1,H,W,C] with [1,1,1,C] or [1,H,W,1])
# ------------------------------------------------------------------------------------------------

BCAST_CASES = {
    # name: (op, operand order, broadcast kind, act, map quant, operand quant, output quant)
    "sub-channel-mean": ("SUB", "map-first", "channel", "none", (0.05, 4), (0.03, -2),
                         (0.04, 1)),
    "channel-mean-minus-map-relu": ("SUB", "bcast-first", "channel", "relu", (0.05, 4),
                                    (0.03, -2), (0.02, -9)),
    "sub-pixel": ("SUB", "map-first", "pixel", "none", (0.06, -3), (0.09, 10), (0.05, 0)),
    "pixel-minus-map-relu6": ("SUB", "bcast-first", "pixel", "relu6", (0.06, -3), (0.09, 10),
                              (0.03, -128)),
    "add-pixel-first-relu": ("ADD", "bcast-first", "pixel", "relu", (0.05, 4), (0.07, -20),
                             (0.06, -30)),
    "add-channel": ("ADD", "map-first", "channel", "none", (0.05, 4), (0.02, 50), (0.07, 3)),
    # a narrow output grid: most outputs saturate
    "sub-channel-saturating": ("SUB", "map-first", "channel", "none", (0.05, 4), (0.03, -2),
                               (0.002, 0)),
    # one value ([1,1,1,1]: a 1x1 conv of the channel mean) minus the map, and added
    "scalar-minus-map": ("SUB", "bcast-first", "scalar", "none", (0.05, 4), (0.04, 7),
                         (0.05, -6)),
    "add-scalar-relu": ("ADD", "map-first", "scalar", "relu", (0.05, 4), (0.04, 7), (0.03, -50)),
}


def _bcast_operand(w, rng, h, kind, cin, q):
    """A [1,1,1,C] per-image channel mean (MEAN keepdims), a [1,H,W,1] 1x1 conv of h, or one
    value ([1,1,1,1]: a one-channel 1x1 conv of the channel mean)."""
    shape = list(w.tensors[h]["shape"])
    if kind in ("channel", "scalar"):
        g = w.act([1, 1, 1, shape[3]], *(q if kind == "channel" else (0.03, -2)))
        w.op(OP["MEAN"], [h, _i32(w, [1, 2])], [g], *mean_opts(True))
        return g if kind == "channel" else _conv(w, rng, g, cin, 1, q, k=1)
    return _conv(w, rng, h, cin, 1, q, k=1)


@pytest.mark.parametrize("case", list(BCAST_CASES))
def test_broadcast_add_sub_of_two_activations_bit_exact(case, tmp_path):
    """CONV(x) = h; ADD / SUB of h and a broadcast operand (its channel mean [1,1,1,C], or a
    one-channel 1x1 conv [1,H,W,1]), either operand order, fused activation: one ADD layer
    (src = the map, src2 = the broadcast operand, rsub for a broadcast minuend), bit-exact
    with tflite-micro's broadcast kernels on the written flatbuffer."""
    op, order, kind, act, hq, gq, yq = BCAST_CASES[case]
    rng = np.random.default_rng(len(case) + 300)
    w = ModelWriter()
    x = w.act([1, 6, 5, 3], 0.04, -5)
    h = _conv(w, rng, x, 3, 8, hq)
    g = _bcast_operand(w, rng, h, kind, 8, gq)
    y = w.act([1, 6, 5, 8], *yq)
    ins = [h, g] if order == "map-first" else [g, h]
    w.op(OP[op], ins, [y], *(sub_opts(act) if op == "SUB" else add_opts(act)))
    net, ys = run_small(tmp_path, f"bcast-{case}", w.build([x], [y]),
                        which=("unfused", "min-ram"))
    L = net.layers[-1]
    assert (L.op, L.sub, L.act) == (ir.ADD, op == "SUB", act)
    assert L.src == 1 and net.tensor_shape(L.src2) == {"channel": (1, 1, 8), "pixel": (6, 5, 1),
                                                       "scalar": (1, 1, 1)}[kind]
    assert L.rsub == (op == "SUB" and order == "bcast-first")
    if case.endswith("saturating"):
        assert (ys[0] == -128).sum() > 30 and (ys[0] == 127).sum() > 30
    else:
        assert len(np.unique(ys[0])) > 20


def test_broadcast_sub_inside_a_fused_plan_bit_exact(tmp_path):
    """x -> CONV -> CONV -> h; h - mean(h) ([1,1,1,C]) -> CONV -> CONV: the minimum-RAM plan
    fuses the conv chains on both sides while the mean (the broadcast operand) and h are alive
    during the SUB.  Every plan bit-exact with tflite-micro."""
    rng = np.random.default_rng(21)
    w = ModelWriter()
    x = w.act([1, 16, 16, 3], 0.04, -5)
    a = _conv(w, rng, x, 3, 8, (0.05, 4))
    h = _conv(w, rng, a, 8, 8, (0.06, -2))
    g = _bcast_operand(w, rng, h, "channel", 8, (0.03, 1))
    s = w.act([1, 16, 16, 8], 0.05, 0)
    w.op(OP["SUB"], [h, g], [s], *sub_opts("relu"))
    b = _conv(w, rng, s, 8, 16, (0.07, 1))
    y = _conv(w, rng, b, 16, 4, (0.1, 2))
    net, ys = run_small(tmp_path, "bcast-fused", w.build([x], [y]),
                        which=("unfused", "zero-recompute", "min-ram"))
    assert [L.op for L in net.layers] == [ir.CONV, ir.CONV, ir.GAP, ir.ADD, ir.CONV, ir.CONV]
    plan = solve(net, objective="ram", check=False)
    fused = [(b.first_layer, b.last_layer) for b in plan.blocks if b.last_layer > b.first_layer]
    assert any(f <= 1 for f, _ in fused) and any(f >= 4 for f, _ in fused), plan.setting
    assert len(np.unique(ys[0])) > 20


@pytest.mark.parametrize("kind,reverse", [("channel", 0), ("channel", 1), ("pixel", 0),
                                          ("pixel", 1)])
def test_broadcast_sub_kernel_matches_tflm_formula(kind, reverse):
    """msf_mul_s8's broadcasting add mode (msf_binary_s8_params) on all 65536 (a, b) pairs, the
    map [256, 1, 256] against a [1, 1, 256] channel operand or a [256, 1, 1] pixel operand ==
    TFLM's SubElementwise written out here (scaled_i = RDBPOT(SRDHM((q_i - zp_i) << 20, m_i),
    -s_i), RDBPOT(SRDHM(scaled_1 - scaled_2, m_o), -s_o) + zp_o, clamped), for map - operand
    and (reverse) operand - map."""
    import ctypes as C
    from msfopt.mcu_runtime import hostlib, requant
    lib = hostlib.load(hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all"]))
    P = C.POINTER
    lib.msf_mul_s8.argtypes = [P(hostlib.BinaryS8), P(hostlib.View), P(hostlib.View),
                               P(hostlib.View)] + [C.c_int32] * 4
    rng = np.random.default_rng(len(kind) + reverse)
    v = np.arange(-128, 128, dtype=np.int8)
    if kind == "channel":   # map[y, 0, c] = y, operand[c] = c: every (a, b) pair once
        M = np.repeat(v, 256).reshape(256, 1, 256)
        G = v.reshape(1, 1, 256)
        Gfull = np.broadcast_to(G, M.shape)
        bc = hostlib.MSF_BCAST_CHANNEL
    else:                   # map[y, 0, c] = c, operand[y] = y
        M = np.tile(v, 256).reshape(256, 1, 256)
        G = v.reshape(256, 1, 1)
        Gfull = np.broadcast_to(G, M.shape)
        bc = hostlib.MSF_BCAST_PIXEL
    sm, sg, so = (float(np.float32(s)) for s in rng.uniform(0.002, 0.3, 3))
    zm, zg, zo = (int(z) for z in rng.integers(-128, 128, 3))
    first, second = ((Gfull, sg, zg), (M, sm, zm)) if reverse else ((M, sm, zm), (Gfull, sg, zg))
    fx = requant.add_fixed_params(first[1], second[1], so)
    ls = fx["left_shift"]
    s1 = _tflm_rdbpot(_tflm_srdhm((first[0].astype(np.int64) - first[2]) << ls, fx["in1_mul"]),
                      -fx["in1_shift"])
    s2 = _tflm_rdbpot(_tflm_srdhm((second[0].astype(np.int64) - second[2]) << ls,
                                  fx["in2_mul"]), -fx["in2_shift"])
    lo, hi = -100, 120
    ref = np.clip(_tflm_rdbpot(_tflm_srdhm(s1 - s2, fx["out_mul"]), -fx["out_shift"]) + zo,
                  lo, hi).astype(np.int8)
    add = hostlib.AddS8(hostlib.MSF_RQ_FIXED, first[2], second[2], zo, -128, 127, 0.0, 0.0, 0.0,
                        ls, fx["in1_mul"], fx["in1_shift"], fx["in2_mul"], fx["in2_shift"],
                        fx["out_mul"], fx["out_shift"], 1)
    p = hostlib.BinaryS8(mode=hostlib.MSF_ELT_BINARY_ADD, bcast=bc, act_min=lo, act_max=hi,
                         add=add, reverse=reverse)
    y = np.zeros_like(M)
    G = np.ascontiguousarray(G)
    lib.msf_mul_s8(C.byref(p), C.byref(hostlib.full_view(M)), C.byref(hostlib.full_view(G)),
                   C.byref(hostlib.full_view(y)), 0, 256, 0, 1)
    np.testing.assert_array_equal(y, ref)
    assert len(np.unique(ref)) > 50
