"""QLinearAdd (com.microsoft, int8 QOperator models): its float arithmetic is not symmetric in
its inputs A and B.  msfopt must keep ORT's operand roles through import (``Layer.rsub`` when A
is the earlier of two same-shaped maps, src2), code generation (MSF_RQ_FLOAT_REV) and the C
kernels, and takes a broadcast B (one value per channel or per pixel).

Every test runs the generated C of a written file on the host and compares it with
onnxruntime on that file, on inputs built so that the add sees ALL 65,536 (A, B) value pairs,
with scales chosen (by a search over random scales) so that some pairs are rounding ties where
the two operand orders give different results (checked below).  A broadcast first input A (per
channel / per pixel) is refused: which operand onnxruntime's kernel then treats as the scalar
span depends on the layout its graph optimiser picks (NCHW or NHWC)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from msfopt import oracles
from msfopt.importers.onnx_import import load_onnx
from msfopt.mcu_runtime import requant
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host
from test_graph_ops_onnx import plan_blocks
from test_residual import independent_liveness_check

# (P-side scale, zero point), (map Q scale, zero point), output (scale, zero point): scale sets
# where ORT's formula with A and B swapped disagrees with itself on some of the 65,536 pairs
SCALES = [((0.07540002465248108, -18), (0.13990002870559692, 3), (0.07, 3)),
          ((0.19309747219085693, 15), (0.10162035375833511, -14), (0.07, 3))]


def _formulas(qa, qb, qc):
    """The 256 x 256 int8 results [a + 128, b + 128] (a on grid qa, the P side; b on grid qb,
    the map Q) of ORT's kernel (exact float32 FMA emulation) with A = the P side ("p-first")
    and with A = Q ("q-first") -- used only to show that the test data tells them apart."""
    v = np.arange(-128, 128)
    a64, b64 = v[:, None].astype(np.float64), v[None, :].astype(np.float64)
    out = {}
    for k, (first, second) in (("p-first", (qa, qb)), ("q-first", (qb, qa))):
        m1, m2, fb = requant.add_float_params(first[0], first[1], second[0], second[1],
                                              qc[0], qc[1])
        x1, x2 = (a64, b64) if k == "p-first" else (b64, a64)
        approx = x1 * float(m1) + x2 * float(m2) + float(fb)
        r = np.clip(np.rint(approx), -128, 127).astype(np.int64)
        for i, j in np.argwhere(np.abs(approx % 1.0 - 0.5) < 1e-3):  # exact near ties
            u, w = (int(v[i]), int(v[j])) if k == "p-first" else (int(v[j]), int(v[i]))
            r[i, j] = np.rint(np.clip(requant.fma_f32(u, m1, requant.fma_f32(w, m2, fb)),
                                      -128, 127))
        out[k] = r
    return out


def _model(kind: str, a_first: bool, qa, qb, qc) -> onnx.ModelProto:
    """x (int values as float32, QuantizeLinear scale 1, zero point 0) with 2 x 256 channels on
    16 x 16 pixels; P = 1x1 QLinearConv picking the first half (A's grid qa), Q = 1x1
    QLinearConv picking the second half (B's grid qb), both exact copies of the input values
    (multiplier 1, the zero points undone by the biases).  A is P reduced to one value per
    channel (MaxPool 16x16, ``kind`` "channel") or to one per pixel (a 1x1 conv of P's channel
    0, "pixel") or P itself ("none"); B is Q.  QLinearAdd(A, B) (``a_first``) or (B, A)."""
    C, H, W = 256, 16, 16
    inits, nodes = [], []

    def const(name, v):
        inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name

    def node(op, ins, out, domain="", **attrs):
        nodes.append(helper.make_node(op, ins, [out], domain=domain, **attrs))
        return out

    const("sx", np.float32(1.0))
    const("zx", np.int8(0))
    for t, (s, z) in (("a", qa), ("b", qb), ("c", qc)):
        const(f"s{t}", np.float32(s))
        const(f"z{t}", np.int8(z))
    xq = node("QuantizeLinear", ["x", "sx", "zx"], "xq")

    def pick(name, first, cout, grid):
        """1x1 QLinearConv: output c = input channel first + c, exactly, on grid 'a' / 'b'."""
        w = np.zeros((cout, 2 * C, 1, 1), np.int8)
        w[np.arange(cout), first + np.arange(cout)] = 1
        const(f"{name}_w", w)
        const(f"{name}_ws", np.float32(dict(a=qa, b=qb)[grid][0]))   # multiplier 1 exactly
        const(f"{name}_wz", np.int8(0))
        z = dict(a=qa, b=qb)[grid][1]
        const(f"{name}_b", np.full(cout, -z, np.int32))   # out = x - 0 - z + z
        return node("QLinearConv", [xq, "sx", "zx", f"{name}_w", f"{name}_ws", f"{name}_wz",
                                    f"s{grid}", f"z{grid}", f"{name}_b"], name)
    p = pick("P", 0, C if kind != "pixel" else 1, "a")
    q = pick("Q", C, C, "b")
    if kind == "channel":
        a = node("MaxPool", [p], "A", kernel_shape=[H, W])
    else:
        a = p
    ins = [a, "sa", "za", q, "sb", "zb"] if a_first else [q, "sb", "zb", a, "sa", "za"]
    y = node("QLinearAdd", ins + ["sc", "zc"], "y", domain="com.microsoft")
    node("DequantizeLinear", [y, "sc", "zc"], "out")
    g = helper.make_graph(nodes, "qladd", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2 * C, H, W])], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


def _input(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x as NCHW int values, A's values, B's values) so that the add sees every (A, B) pair:
    "channel": channel c of P is -128 but for pixel 0 = c - 128 (its max), Q's channel c holds
    every value once over the pixels; "pixel" / "none": P's pixel k = k - 128 (channel 0 /
    every channel), Q's channel c = c - 128 everywhere."""
    C, HW = 256, 256
    v = np.arange(-128, 128)
    x = np.zeros((2 * C, HW), np.int64)
    if kind == "channel":
        x[:C] = -128
        x[:C, 0] = v
        x[C:] = v[None, :]
        a = np.broadcast_to(v[:, None], (C, HW))
        b = x[C:]
    else:
        x[:C] = v[None, :]
        x[C:] = v[:, None]
        a, b = x[:C], x[C:]
    return x.reshape(1, 2 * C, 16, 16).astype(np.float32), a, b


CASES = [(kind, a_first, si) for kind in ("channel", "pixel", "none") for a_first in (True, False)
         for si in range(len(SCALES)) if kind == "none" or not a_first]


@pytest.mark.parametrize("kind,a_first,si", CASES)
def test_qlinearadd_operand_roles_bit_exact(kind, a_first, si, tmp_path, kept_oracle_workers):
    """Same-shaped maps in either order (the earlier tensor as A: MSF_RQ_FLOAT_REV) and a
    per-channel / per-pixel broadcast B: all 65,536 pairs, unfused and minimum-RAM plans, ==
    onnxruntime on the written file."""
    qa, qb, qc = SCALES[si]
    path = tmp_path / "qladd.onnx"
    onnx.save(_model(kind, a_first, qa, qb, qc), path)
    net = load_onnx(path)
    (L,) = [L for L in net.layers if L.op == "add"]
    # the map Q is src, the P side src2 (the broadcast operand, or the earlier tensor):
    # rsub exactly when ORT's first input A is the P side
    assert net.layers[L.src - 1].name == "Q" and L.rsub == a_first
    x, a, b = _input(kind)
    seen = np.zeros((256, 256), bool)
    seen[np.asarray(a).reshape(-1) + 128, np.asarray(b).reshape(-1) + 128] = True
    assert seen.all()
    # the data tells the operand orders apart
    f = _formulas(qa, qb, qc)
    assert (f["p-first"] != f["q-first"]).any()
    xq = _quantized(net, x)
    ref = oracles.reference(net, [xq], path)
    assert ref.oracle == oracles.ORT
    for plan in ("unfused", "min-ram"):
        blocks, _ = plan_blocks(net, plan, np.random.default_rng(0))
        gen = generate(net, blocks, tmp_path / plan)
        independent_liveness_check(net, gen.schedules, "arena")
        ok, fig = oracles.compare(run_host(gen, build_host(gen), xq), ref.ys[0], net.dtype,
                                  tolerance_steps=0)
        assert ok, f"{plan}: {fig}"


@pytest.mark.parametrize("a_first", [True, False])
def test_qlinearadd_re_export_keeps_operand_roles(a_first, tmp_path):
    """msfopt's int8 ONNX re-export writes QLinearAdd with ORT's A first again (rsub: src2):
    onnxruntime on the re-export == onnxruntime on the original, all 65,536 pairs."""
    import onnxruntime as ort
    from msfopt.export_onnx import to_onnx
    m = _model("none", a_first, *SCALES[0])
    path = tmp_path / "qladd.onnx"
    onnx.save(m, path)
    net = load_onnx(path)
    x, _, _ = _input("none")
    want = ort.InferenceSession(m.SerializeToString(), providers=[
        "CPUExecutionProvider"]).run(None, {"x": x})[0]
    want_q = np.rint(want / np.float32(SCALES[0][2][0])).astype(np.int64) + SCALES[0][2][1]
    e = ort.InferenceSession(to_onnx(net, mode="int8").SerializeToString(),
                             providers=["CPUExecutionProvider"])
    got = e.run(None, {e.get_inputs()[0].name: x.astype(np.int8)})[0]
    np.testing.assert_array_equal(got.astype(np.int64), want_q)


@pytest.mark.parametrize("si", range(len(SCALES)))
def test_qlinearadd_scalar_first_input_is_taken_second(si, tmp_path, kept_oracle_workers):
    """A scalar A ([1, 1, 1, 1]): onnxruntime's span kernel runs it as the second operand, so
    the import keeps (map, scalar) as the arithmetic's order (no rsub).  Shown on all 65,536
    pairs against onnxruntime (one run per scalar value), with the formula of that order;
    then such a node imported and its generated C run against onnxruntime on the file."""
    import onnxruntime as ort
    qa, qb, qc = SCALES[si]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (
        ("sa", np.float32(qa[0])), ("za", np.int8(qa[1])), ("sb", np.float32(qb[0])),
        ("zb", np.int8(qb[1])), ("sc", np.float32(qc[0])), ("zc", np.int8(qc[1])))]
    g = helper.make_graph([helper.make_node("QLinearAdd", ["A", "sa", "za", "B", "sb", "zb",
                                                            "sc", "zc"], ["y"],
                                            domain="com.microsoft")], "s",
                          [helper.make_tensor_value_info("A", TensorProto.INT8, [1, 1, 1, 1]),
                           helper.make_tensor_value_info("B", TensorProto.INT8, [1, 4, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    b = np.arange(-128, 128).astype(np.int8).reshape(1, 4, 8, 8)
    got = np.stack([sess.run(None, {"A": np.full((1, 1, 1, 1), a, np.int8), "B": b})[0]
                    .reshape(-1) for a in range(-128, 128)])
    f = _formulas(qa, qb, qc)   # [a + 128, b + 128], a on grid qa (here A), b on qb (here B)
    assert (f["p-first"] != f["q-first"]).any()
    np.testing.assert_array_equal(got, f["q-first"])
    # the import: an add after a 1x1 conv of the input (B) and a scalar from a global max (A)
    path = tmp_path / "scalar.onnx"
    onnx.save(_scalar_model(qa, qb, qc), path)
    net = load_onnx(path)
    (L,) = [L for L in net.layers if L.op == "add"]
    assert not L.rsub and net.tensor_shape(L.src2) == (1, 1, 1)
    rng = np.random.default_rng(si)
    xs = [rng.integers(-128, 128, net.input_shape).astype(np.int8) for _ in range(5)]
    ref = oracles.reference(net, xs, path)
    blocks, _ = plan_blocks(net, "unfused", rng)
    gen = generate(net, blocks, tmp_path / "g")
    exe = build_host(gen)
    for x, want in zip(xs, ref.ys):
        ok, fig = oracles.compare(run_host(gen, exe, x), want, net.dtype, tolerance_steps=0)
        assert ok, fig


def _scalar_model(qa, qb, qc) -> onnx.ModelProto:
    """QLinearAdd(A = MaxPool over everything of a one-channel 1x1 QLinearConv, B = the input
    map requantised by a 1x1 QLinearConv)."""
    inits, nodes = [], []

    def c(name, v):
        inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name
    for t, (sc_, z) in (("x", (1.0, 0)), ("a", qa), ("b", qb), ("c", qc)):
        c(f"s{t}", np.float32(sc_))
        c(f"z{t}", np.int8(z))
    nodes.append(helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]))
    for name, cout, grid in (("P", 1, "a"), ("Q", 4, "b")):
        c(f"{name}_w", np.ones((cout, 4, 1, 1), np.int8))
        c(f"{name}_ws", np.float32(0.01))
        c(f"{name}_wz", np.int8(0))
        nodes.append(helper.make_node("QLinearConv", ["xq", "sx", "zx", f"{name}_w",
                                                      f"{name}_ws", f"{name}_wz", f"s{grid}",
                                                      f"z{grid}"], [name]))
    nodes.append(helper.make_node("MaxPool", ["P"], ["A"], kernel_shape=[8, 8]))
    nodes.append(helper.make_node("QLinearAdd", ["A", "sa", "za", "Q", "sb", "zb", "sc", "zc"],
                                  ["y"], domain="com.microsoft"))
    nodes.append(helper.make_node("DequantizeLinear", ["y", "sc", "zc"], ["out"]))
    g = helper.make_graph(nodes, "scalar", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4, 8, 8])], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("kind", ["channel", "pixel"])
def test_qlinearadd_broadcast_first_input_refused(kind, tmp_path):
    """A per-channel / per-pixel A: onnxruntime's result depends on the layout its optimiser
    gives the add (shown here: default optimisation and none disagree on this file), so the
    import refuses it with one message naming the node."""
    import onnxruntime as ort
    qa, qb, qc = SCALES[0]
    m = _model(kind, True, qa, qb, qc)
    x, _, _ = _input(kind)
    outs = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        outs.append(ort.InferenceSession(m.SerializeToString(), so, providers=[
            "CPUExecutionProvider"]).run(None, {"x": x})[0])
    assert (outs[0] != outs[1]).any()
    path = tmp_path / "qladd.onnx"
    onnx.save(m, path)
    with pytest.raises(Exception, match="first input A broadcasts .* give the broadcast tensor "
                                        "as input B"):
        load_onnx(path)


def _quantized(net, x_nchw: np.ndarray) -> np.ndarray:
    """The int8 input msfopt's network takes (HWC) for the float file input x (scale 1)."""
    return np.transpose(x_nchw[0], (1, 2, 0)).astype(np.int8).reshape(net.input_shape)
