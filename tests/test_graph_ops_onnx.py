"""Random small float32 ONNX graphs with branches (hypothesis), written with onnx.helper: Concat
of parallel branches, Split / Slice on channels, the channel shuffle Reshape -> Transpose ->
Reshape, squeeze-excite Mul gates, residual Adds, x2 Resize (nearest and bilinear), standalone
activations (PRelu, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Tanh, BatchNormalization after a
non-conv), broadcasting Sub / Add of two activations (x - mean(x) per channel, x +/- a
one-channel map), ceil-mode max pooling, dilated convolutions and sometimes a second graph
output.  Each is imported, planned (one plan an example: unfused, minimum RAM or a random path
of the fusion DAG), generated as C, built for the host and compared with onnxruntime on the
ORIGINAL graph (float32 within 1e-4).  ``MSFOPT_HYPOTHESIS_SCALE`` multiplies the examples
(scripts/nightly.sh).
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from random_nets import path_blocks, random_path
from test_concat_slices import slice_liveness_check as independent_liveness_check

from msfopt import oracle_engines, oracles
from msfopt.dag import build_dag
from msfopt.importers.onnx_import import load_onnx
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host
from msfopt.solver import solve


class _G:
    """A float32 NCHW graph under construction (shapes tracked as (C, H, W))."""

    def __init__(self, rng, c, h, w):
        self.rng, self.nodes, self.inits, self.k = rng, [], [], 0
        self.cur, self.shape = "x", (c, h, w)

    def name(self, p):
        self.k += 1
        return f"{p}{self.k}"

    def const(self, arr):
        n = self.name("k")
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), n))
        return n

    def node(self, op, ins, n_out=1, **attrs):
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))
        return outs if n_out > 1 else outs[0]

    def conv(self, x, cin, cout, k=1, s=1, p=0, d=1, group=1):
        wgt = self.rng.standard_normal((cout, cin // group, k, k)).astype(np.float32) * 0.4
        b = self.rng.standard_normal(cout).astype(np.float32) * 0.1
        return self.node("Conv", [x, self.const(wgt), self.const(b)], kernel_shape=[k, k],
                         strides=[s, s], pads=[p] * 4, dilations=[d, d], group=group)

    def model(self):
        c, h, w = self.shape
        heads = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, *shp])
                 for n, shp in getattr(self, "heads", [])]
        g = helper.make_graph(
            self.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] + list(
                self.in_shape))],
            heads + [helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, [1, c, h, w])],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def _step(g: _G, kind: str):
    """Append one pattern to the graph (updates g.cur / g.shape)."""
    c, h, w = g.shape
    x = g.cur
    if kind == "concat":           # two branches (1x1 conv, 3x3 conv) joined on channels
        a = g.conv(x, c, 2, 1)
        b = g.conv(x, c, 3, 3, p=1)
        g.cur, g.shape = g.node("Concat", [a, b], axis=1), (5, h, w)
    elif kind == "split" and c >= 2:   # split, a conv on one half, concat back, shuffle
        c0 = c // 2
        a, b = g.node("Split", [x, g.inits_int([c0, c - c0])], n_out=2, axis=1)
        b = g.conv(b, c - c0, c - c0, 3, p=1)
        y = g.node("Concat", [a, b], axis=1)
        if c % 2 == 0:
            r = g.node("Reshape", [y, g.inits_int([1, 2, c // 2, h, w])])
            t = g.node("Transpose", [r], perm=[0, 2, 1, 3, 4])
            y = g.node("Reshape", [t, g.inits_int([1, c, h, w])])
        g.cur = y
    elif kind == "slice" and c >= 2:
        g.cur = g.node("Slice", [x, g.inits_int([1]), g.inits_int([c]), g.inits_int([1])])
        g.shape = (c - 1, h, w)
    elif kind == "se":             # GAP -> 1x1 -> relu -> 1x1 -> HardSigmoid -> Mul
        p = g.node("GlobalAveragePool", [x])
        r = g.node("Relu", [g.conv(p, c, 2, 1)])
        gate = g.node("HardSigmoid", [g.conv(r, 2, c, 1)], alpha=1.0 / 6, beta=0.5)
        g.cur = g.node("Mul", [x, gate])
    elif kind == "swish":
        g.cur = g.node("Mul", [x, g.node("Sigmoid", [x])])
    elif kind in ("PRelu",):
        g.cur = g.node("PRelu", [x, g.const(g.rng.uniform(-0.5, 0.5, (c, 1, 1)))])
    elif kind in ("LeakyRelu", "HardSwish", "Tanh", "HardSigmoid"):
        g.cur = g.node(kind, [x])
    elif kind == "bn":             # BatchNormalization after a non-conv (here: a Tanh)
        t = g.node("Tanh", [x])
        prm = [g.const(v) for v in (g.rng.uniform(0.5, 1.5, c), g.rng.standard_normal(c),
                                    g.rng.standard_normal(c), g.rng.uniform(0.5, 2.0, c))]
        g.cur = g.node("BatchNormalization", [t] + prm)
    elif kind == "pool" and h >= 3 and w >= 3:   # ceil-mode max pool
        g.cur = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
        g.shape = (c, -(-(h - 3) // 2) + 1, -(-(w - 3) // 2) + 1)
        if (g.shape[1] - 1) * 2 >= h:
            g.shape = (c, g.shape[1] - 1, g.shape[2])
        if (g.shape[2] - 1) * 2 >= w:
            g.shape = (c, g.shape[1], g.shape[2] - 1)
    elif kind == "residual":       # conv -> relu branch added to its skip
        b = g.node("Relu", [g.conv(x, c, c, 3, p=1)])
        g.cur = g.node("Add", [b, x])
    elif kind == "sub_mean":       # x - mean(x) per channel ([1, C, 1, 1]), either order
        m = g.node("GlobalAveragePool", [x])
        g.cur = g.node("Sub", [x, m] if g.rng.integers(2) else [m, x])
    elif kind == "add_pixel":      # x +/- a one-channel 1x1 conv of x ([1, 1, H, W])
        p = g.conv(x, c, 1, 1)
        op = "Sub" if g.rng.integers(2) else "Add"
        g.cur = g.node(op, [x, p] if g.rng.integers(2) else [p, x])
    elif kind == "resize" and h * w <= 49:   # x2 upsampling, nearest or bilinear
        mode, coord = [("nearest", "asymmetric"), ("nearest", "half_pixel"),
                       ("linear", "half_pixel"), ("linear", "align_corners"),
                       ("linear", "asymmetric")][int(g.rng.integers(5))]
        g.cur = g.node("Resize", [x, "", g.const(np.array([1, 1, 2, 2], np.float32))],
                       mode=mode, coordinate_transformation_mode=coord,
                       nearest_mode="floor" if mode == "nearest" else "round_prefer_floor")
        g.shape = (c, 2 * h, 2 * w)
    elif kind == "dilated" and h >= 5 and w >= 5:
        g.cur = g.conv(x, c, c, 3, p=2, d=2)
    else:                          # a plain conv keeps the chain going
        g.cur = g.conv(x, c, c + 1, 3, p=1)
        g.shape = (c + 1, h, w)


def _inits_int(self, vals):
    n = self.name("i")
    self.inits.append(numpy_helper.from_array(np.asarray(vals, np.int64), n))
    return n


_G.inits_int = _inits_int

KINDS = ["concat", "split", "slice", "se", "swish", "PRelu", "LeakyRelu", "HardSwish", "Tanh",
         "HardSigmoid", "bn", "pool", "dilated", "conv", "residual", "resize", "sub_mean",
         "add_pixel"]


@pytest.fixture(scope="module")
def kept_oracle():
    """One long-lived onnxruntime worker for the whole module (no start-up per example)."""
    with oracle_engines.kept_workers():
        yield


def plan_blocks(net, plan: str, rng):
    """The blocks of one plan: "unfused" (layer by layer), "min-ram" (the solver's, checked)
    or "random" (``random_nets.random_path``: a uniformly drawn fusion-DAG path); with the
    DAG's predicted peak for a DAG path (None for the solver's plan)."""
    if plan == "min-ram":
        p = solve(net, objective="ram", check=True)
        return p.blocks, None
    dag = build_dag(net)
    path = dag.vanilla_path() if plan == "unfused" else random_path(dag, rng)
    return path_blocks(dag, path), dag.totals(path)["peak"]


PLANS = ("unfused", "min-ram", "random")


# ~0.4 s an example: one onnxruntime worker for the module, one plan (and one host build) per
# example, the runtime objects compiled once (hostrun's object cache)
@settings(max_examples=examples(130), deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=2, max_size=5),
       c=st.integers(2, 4), h=st.integers(5, 9), w=st.integers(5, 9), seed=st.integers(0, 999),
       plan=st.sampled_from(PLANS), two_outputs=st.booleans())
# found by CI: the only plan of this graph cannot be laid out at its peak (400 B; CP-SAT proves
# it), which once made the solver answer "infeasible" instead of the plan laid out larger
@example(kinds=["split", "split"], c=2, h=5, w=5, seed=0, plan="min-ram", two_outputs=False)
def test_random_graph_runs_like_onnxruntime(tmp_path_factory, kept_oracle, kinds, c, h, w,
                                            seed, plan, two_outputs):
    """A random graph of the patterns above (SE gates, concats of branches, split + shuffle,
    residual adds, nearest / bilinear x2 resizes, activations; with ``two_outputs`` a 1x1-conv
    head on the middle tensor is a second graph output), one plan of it (unfused, minimum RAM
    or a random DAG path) as C: equal to onnxruntime on the written file, every output, two
    inputs; the schedules pass the independent liveness replay and a DAG path's predicted
    peak is the generated schedules'."""
    rng = np.random.default_rng(seed)
    g = _G(rng, c, h, w)
    g.in_shape = (c, h, w)
    g.cur = g.conv("x", c, c, 1)   # the network input feeds one conv (no op on the input)
    g.heads = []
    for k, kind in enumerate(kinds):
        _step(g, kind)
        if two_outputs and k == (len(kinds) - 1) // 2:
            g.heads.append((g.conv(g.cur, g.shape[0], 2, 1), (2,) + g.shape[1:]))
    path = tmp_path_factory.mktemp("g") / "g.onnx"
    onnx.save(g.model(), path)
    net = load_onnx(path)
    assert len(net.output_ids) == 1 + len(g.heads)
    xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(2)]
    ref = oracles.reference(net, xs, path)
    assert ref.oracle == oracles.ORT
    blocks, peak = plan_blocks(net, plan, rng)
    gen = generate(net, blocks, path.parent / plan)
    independent_liveness_check(net, gen.schedules, "arena")
    if peak is not None:
        assert max(s.ram_bytes for s in gen.schedules) == peak
    exe = build_host(gen)
    for x, want in zip(xs, ref.ys):
        ok, fig = oracles.compare(run_host(gen, exe, x), want, net.dtype)
        assert ok, f"{kinds} {plan} {blocks}: {fig}"


def _two_head_model(rng):
    """A detector-like graph: a backbone, a head on the early feature map (output 0) and a
    deeper head (output 1, produced last), each its own graph output."""
    g = _G(rng, 3, 12, 12)
    g.in_shape = (3, 12, 12)
    f1 = g.node("Relu", [g.conv("x", 3, 6, 3, s=2, p=1)])           # 6 x 6 x 6
    head0 = g.node("Sigmoid", [g.conv(f1, 6, 4, 3, p=1)])           # 4 x 6 x 6
    f2 = g.node("Relu", [g.conv(f1, 6, 8, 3, s=2, p=1)])            # 8 x 3 x 3
    head1 = g.conv(f2, 8, 5, 1)                                     # 5 x 3 x 3
    graph = helper.make_graph(
        g.nodes, "two_heads", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 12, 12])],
        [helper.make_tensor_value_info(head0, TensorProto.FLOAT, [1, 4, 6, 6]),
         helper.make_tensor_value_info(head1, TensorProto.FLOAT, [1, 5, 3, 3])], g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def test_two_outputs_every_io_mode(tmp_path):
    """Several graph outputs: the importer keeps them in the model's order, the plan keeps both
    alive to the end, the generated code writes them back to back (MSF_OUTPUT_<k>_* macros) and
    the host run equals onnxruntime on both, with the outputs in the arena or outside it."""
    from msfopt.mcu_runtime.hostrun import split_outputs
    rng = np.random.default_rng(7)
    path = tmp_path / "two.onnx"
    onnx.save(_two_head_model(rng), path)
    net = load_onnx(path)
    assert len(net.output_ids) == 2 and net.output_ids[1] == net.n_layers
    xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(3)]
    ref = oracles.reference(net, xs, path)
    for io in ("arena", "external", "input-external"):
        plan = solve(net, objective="ram", io=io, check=True)
        gen = generate(net, plan.blocks, tmp_path / io, io=io)
        independent_liveness_check(net, gen.schedules, io)
        assert gen.output_shapes == ((6, 6, 4), (3, 3, 5))
        hdr = (gen.out_dir / "msf_model.h").read_text()
        assert "#define MSF_N_OUTPUTS 2" in hdr and "#define MSF_OUTPUT_1_OFFSET 144" in hdr
        assert "#define MSF_OUTPUT_ELEMS 189" in hdr
        exe = build_host(gen, guard=8)
        for x, want in zip(xs, ref.ys):
            y = run_host(gen, exe, x)
            ok, fig = oracles.compare(y, want, net.dtype)
            assert ok, f"io={io}: {fig}"
            a, b = split_outputs(gen, y)
            assert a.shape == (6, 6, 4) and b.shape == (3, 3, 5)
            assert np.all((a > 0) & (a < 1))   # output 0 is the sigmoid head


# ------------------------------------------------------------------------------------------------
# broadcasting Add / Sub of two activations, float32 and int8 QDQ
# ------------------------------------------------------------------------------------------------

def _bcast_model(dtype: str, op: str, kind: str, order: str, seed: int = 0):
    """x -> Conv (8 channels) = h; ``op`` of h and a broadcast operand: its per-channel mean
    (GlobalAveragePool, [1, 8, 1, 1]) or a one-channel 1x1 conv ([1, 1, H, W]); ``order``
    "map-first" (h op g) or "bcast-first" (g op h); then a 1x1 conv.  int8: every tensor
    QuantizeLinear / DequantizeLinear (QDQ, int8 weights and int32 biases)."""
    g = _G(np.random.default_rng(seed), 3, 6, 7)
    g.in_shape = (3, 6, 7)
    rng = g.rng
    qdq = dtype == "int8"

    def q(x, s, z):   # QuantizeLinear -> DequantizeLinear on grid (s, z)
        if not qdq:
            return x
        sc, zc = g.const(np.float32(s)), g.name("z")
        g.inits.append(numpy_helper.from_array(np.asarray(z, np.int8), zc))
        y = g.node("QuantizeLinear", [x, sc, zc])
        return g.node("DequantizeLinear", [y, sc, zc])

    def conv(x, cin, cout, s_in):
        w = (rng.standard_normal((cout, cin, 1, 1)) * 0.5).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        if not qdq:
            return g.node("Conv", [x, g.const(w), g.const(b)])
        ws = np.float32(np.abs(w).max() / 127)
        wq = np.clip(np.round(w / ws), -127, 127).astype(np.int8)
        wn, bn = g.name("w"), g.name("b")
        g.inits.append(numpy_helper.from_array(wq, wn))
        g.inits.append(numpy_helper.from_array(np.round(b / (s_in * ws)).astype(np.int32), bn))
        wd = g.node("DequantizeLinear", [wn, g.const(ws)])
        bd = g.node("DequantizeLinear", [bn, g.const(np.float32(s_in * ws))])
        return g.node("Conv", [x, wd, bd])
    x = q("x", 0.03, -4)
    h = q(conv(x, 3, 8, 0.03), 0.05, 3)
    if kind == "channel":
        gb = q(g.node("GlobalAveragePool", [h]), 0.02, -10)
    else:
        gb = q(conv(h, 8, 1, 0.05), 0.07, 12)
    y = g.node(op, [h, gb] if order == "map-first" else [gb, h])
    y = q(y, 0.04, -2 if op == "Sub" else 5)
    g.cur, g.shape = q(conv(y, 8, 4, 0.04), 0.06, 1), (4, 6, 7)
    return g.model()


BCAST_ONNX = [(d, op, kind, order) for d in ("float32", "int8") for op in ("Sub", "Add")
              for kind in ("channel", "pixel") for order in ("map-first", "bcast-first")]


@pytest.mark.parametrize("dtype,op,kind,order", BCAST_ONNX)
def test_broadcast_add_sub_runs_like_onnxruntime(dtype, op, kind, order, tmp_path, kept_oracle):
    """Sub / Add of a feature map and its channel mean ([1, C, 1, 1]) or a one-channel map
    ([1, 1, H, W]), either operand order, float32 and int8 QDQ (DequantizeLinear -> float
    Sub / Add -> QuantizeLinear, which onnxruntime runs in float32): one ADD layer (the map
    src, the broadcast operand src2, rsub for a broadcast minuend), unfused and minimum-RAM
    plans equal to onnxruntime on the written file (int8 bit-exact, float32 within 1e-4)."""
    path = tmp_path / "bcast.onnx"
    onnx.save(_bcast_model(dtype, op, kind, order, seed=len(op + kind + order)), path)
    net = load_onnx(path)
    assert net.dtype == dtype
    (L,) = [L for L in net.layers if L.op == "add"]
    assert L.sub == (op == "Sub") and L.rsub == (op == "Sub" and order == "bcast-first")
    assert net.tensor_shape(L.src2) == ((1, 1, 8) if kind == "channel" else (6, 7, 1))
    assert L.qdq == (dtype == "int8")
    rng = np.random.default_rng(3)
    if dtype == "int8":
        xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(3)]
    else:
        xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(3)]
    ref = oracles.reference(net, xs, path)
    assert ref.oracle == oracles.ORT
    for plan in ("unfused", "min-ram"):
        blocks, _ = plan_blocks(net, plan, rng)
        gen = generate(net, blocks, tmp_path / plan)
        independent_liveness_check(net, gen.schedules, "arena")
        exe = build_host(gen)
        for x, want in zip(xs, ref.ys):
            ok, fig = oracles.compare(run_host(gen, exe, x), want, net.dtype,
                                      tolerance_steps=0)
            assert ok, f"{plan}: {fig}"
    assert len({np.round(y, 3).tobytes() for y in ref.ys}) == len(xs)


@pytest.mark.parametrize("op,kind,order", [(op, kind, order) for op in ("Sub", "Add")
                                           for kind in ("channel", "pixel")
                                           for order in ("map-first", "bcast-first")])
def test_broadcast_add_sub_re_export(op, kind, order):
    """msfopt's ONNX re-export of a broadcasting Add / Sub (float32: the operands in the file's
    order, so a broadcast minuend stays the minuend) runs like the original file in
    onnxruntime; the int8 QDQ form's subtraction is refused (com.microsoft has no QLinearSub),
    its add is written as QLinearAdd."""
    from msfopt.export_onnx import to_onnx
    from onnx_helpers import ort_run
    seed = len(op + kind + order)
    orig = _bcast_model("float32", op, kind, order, seed=seed)
    net = load_onnx(orig)
    x = np.random.default_rng(5).standard_normal((1, 3, 6, 7)).astype(np.float32)
    want = ort_run(orig, x)
    got = ort_run(to_onnx(net, mode="float"), x)
    assert want.shape == got.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    q = load_onnx(_bcast_model("int8", op, kind, order, seed=seed))
    if op == "Sub":
        with pytest.raises(ValueError, match="cannot export the subtracting add"):
            to_onnx(q, mode="int8")
    else:
        assert "QLinearAdd" in {n.op_type for n in to_onnx(q, mode="int8").graph.node}
