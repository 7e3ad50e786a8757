"""Quantisation regressions, each checked end to end (import -> generated C -> host build) against
an oracle msfopt did not produce: tflite-micro for TFLite, onnxruntime and ``onnx.reference`` on
the ORIGINAL ONNX file.

* One integer clamp per layer: a fused ReLU6 whose 6 / scale is a float32 .5 tie.  TFLM rounds it
  half away from zero, ONNX QuantizeLinear half to even; the IR carries the clamp the source
  framework computes (``Layer.act_min`` / ``act_max``) and every reader uses it.
* QDQ AveragePool (DequantizeLinear -> AveragePool -> QuantizeLinear, as
  ``onnxruntime.quantization.quantize_static`` writes it): QuantizeLinear's rounding,
  rne(avg / scale) + zero point, not QLinearAveragePool's rne(avg / scale + zero point).
  The QDQ pool is compared with onnxruntime running the graph as written
  (``ORT_DISABLE_ALL``) and with ``onnx.reference``: onnxruntime's default optimiser rewrites
  DQ -> AveragePool -> Q into its own QLinearAveragePool, which does not follow the spec's
  rounding (with count_include_pad=0 and these pads it differs from ``onnx.reference`` itself).
* Relu followed by Clip(0, 6) is a ReLU6; a zero-size input dim is reported as such (exit 2).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import require
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from msfopt.dag import build_dag
from msfopt.export_onnx import to_onnx
from msfopt.importers import UnsupportedModelError
from msfopt.importers.onnx_import import load_onnx
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host

F = np.float32
#: the output scale of the review finding: 6 / scale is exactly 130.5 in float32
TIE_SCALE = F(0.04597701132297516)


def unfused(net):
    dag = build_dag(net, io="arena")
    return [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e])
            for e in dag.vanilla_path()]


def run_c(net, x_hwc, tmp_path, tag, rq=None):
    gen = generate(net, unfused(net), tmp_path / tag, rq=rq)
    return run_host(gen, build_host(gen), x_hwc)


def test_the_scale_is_a_float32_tie():
    assert F(6.0) / TIE_SCALE == F(130.5)        # float32 division: an exact tie
    assert 6.0 / float(TIE_SCALE) != 130.5        # float64 is not (it rounds to 131)


# ------------------------------------------------------------------------------------------------
# TFLite: FULLY_CONNECTED + RELU6 at the tie, tflite-micro is the oracle
# ------------------------------------------------------------------------------------------------

def fc_relu6_tflite() -> bytes:
    from test_tflite_import import OP, ModelWriter, fc_opts
    w = ModelWriter()
    x = w.act([1, 4], 0.05, 0)
    wt = w.tensor([2, 4], w.INT8, 0.01, 0, data=np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.int8))
    b = w.tensor([2], w.INT32, 0.0005, 0, data=np.array([1000000, 11000], np.int32))
    y = w.act([1, 2], TIE_SCALE, -128)
    w.op(OP["FULLY_CONNECTED"], [x, wt, b], [y], *fc_opts("relu6"))
    return w.build([x], [y])


def test_tflite_fc_relu6_tie_matches_tflite_micro(tmp_path):
    require("tflite", "tflite-micro")
    from msfopt.importers.tflite_import import load_tflite
    from msfopt.tflm_ref import run_tflm
    path = tmp_path / "fc_relu6.tflite"
    path.write_bytes(fc_relu6_tflite())
    x = np.array([[5, 0, 0, 0]], np.int8)
    want = run_tflm(path, [x])[0].reshape(-1)
    assert want[0] == 3  # TFLM: -128 + TfLiteRound(130.5f) = -128 + 131 (output 0 saturates)
    net = load_tflite(path)
    for rq in ("fixed", "float"):  # the clamp is the layer's, whatever the requantisation
        got = run_c(net, x.reshape(net.input_shape), tmp_path, f"c_{rq}", rq=rq).reshape(-1)
        if rq == "fixed":
            np.testing.assert_array_equal(got, want)
        else:
            assert got[0] == want[0]
    assert (net.layers[0].act_min, net.layers[0].act_max) == (-128, 3)


# ------------------------------------------------------------------------------------------------
# ONNX at the tie: QuantizeLinear rounds half to even (-128 + 130 = 2)
# ------------------------------------------------------------------------------------------------

def _model(nodes, inits, in_shape, in_type, opset=21, ms=False):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", in_type, in_shape)],
                          [helper.make_tensor_value_info("y", in_type, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 10
    return m


def _sess(m, optimise=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not optimise:  # run the graph exactly as written (the ONNX spec path)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _tie_conv_params(rng, cin=4, cout=6):
    w = rng.integers(-60, 61, (cout, cin, 1, 1)).astype(np.int8)
    ws = F(0.02)
    xs = F(0.05)
    # large positive biases on half the channels: those outputs saturate at the ReLU6 clamp
    b = np.where(np.arange(cout) % 2 == 0, 20000, rng.integers(-3000, 3000, cout)).astype(np.int32)
    return w, ws, xs, b


def qop_clip_tie_model(hi: int):
    """QLinearConv 1x1 -> int8 Clip(-128, hi) with output scale TIE_SCALE, zero point -128."""
    rng = np.random.default_rng(3)
    w, ws, xs, b = _tie_conv_params(rng)
    inits = dict(xs=xs, xz=np.int8(0), w=w, ws=ws, wz=np.int8(0), ys=TIE_SCALE, yz=np.int8(-128),
                 b=b, lo=np.int8(-128), hi=np.int8(hi))
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                              ["c"], kernel_shape=[1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    return _model(nodes, inits, [1, 4, 3, 5], TensorProto.INT8)


def qdq_clip_tie_model(pre_relu=False):
    """DQ -> Conv 1x1 -> [Relu ->] Clip(0, 6) -> Q(TIE_SCALE, -128) -> DQ."""
    rng = np.random.default_rng(4)
    w, ws, xs, b = _tie_conv_params(rng)
    inits = dict(xs=xs, xz=np.int8(0), w=w, ws=ws, wz=np.int8(0), b=b,
                 bs=F(xs * ws), bz=np.int32(0), ys=TIE_SCALE, yz=np.int8(-128),
                 lo=F(0.0), hi=F(6.0))
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], kernel_shape=[1, 1])]
    src = "c"
    if pre_relu:
        nodes.append(helper.make_node("Relu", ["c"], ["r"]))
        src = "r"
    nodes += [helper.make_node("Clip", [src, "lo", "hi"], ["cl"]),
              helper.make_node("QuantizeLinear", ["cl", "ys", "yz"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    return _model(nodes, inits, [1, 4, 3, 5], TensorProto.FLOAT)


def _to_int(y_float, scale, zp):
    """The int8 values behind a DequantizeLinear output (exact: DQ(q) divides back to q)."""
    q = np.rint(y_float / F(scale)).astype(np.int32) + zp
    np.testing.assert_array_equal(((q - zp) * F(scale)).astype(F), y_float)
    return q


def test_onnx_qoperator_clip_at_the_tie_matches_onnxruntime(tmp_path):
    m = qop_clip_tie_model(hi=-128 + 130)  # the graph's own int bound (QuantizeLinear of 6.0)
    net = load_onnx(m)                     # (a float64 6 / scale says 131: once refused here)
    assert net.layers[0].act == "relu6"
    assert (net.layers[0].act_min, net.layers[0].act_max) == (-128, 2)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (1, 4, 3, 5)).astype(np.int8)
    want = _sess(m).run(None, {"x": x})[0][0].transpose(1, 2, 0)
    assert (want == 2).sum() >= 6  # the clamp is reached
    np.testing.assert_array_equal(run_c(net, x[0].transpose(1, 2, 0), tmp_path, "qop"), want)
    # the int8 export states the same clamp (not a re-derived 131)
    clips = [n for n in to_onnx(net, "int8").graph.node if n.op_type == "Clip"]
    inits = {i.name: numpy_helper.to_array(i) for i in to_onnx(net, "int8").graph.initializer}
    assert [int(inits[c.input[2]]) for c in clips] == [2]


def test_onnx_qoperator_clip_other_tie_side_is_kept_too(tmp_path):
    """A tool that rounds 6 / scale half away from zero writes 131: the graph's int is kept."""
    m = qop_clip_tie_model(hi=-128 + 131)
    net = load_onnx(m)
    assert (net.layers[0].act, net.layers[0].act_max) == ("relu6", 3)
    x = np.random.default_rng(1).integers(-128, 128, (1, 4, 3, 5)).astype(np.int8)
    want = _sess(m).run(None, {"x": x})[0][0].transpose(1, 2, 0)
    assert (want == 3).sum() >= 6
    np.testing.assert_array_equal(run_c(net, x[0].transpose(1, 2, 0), tmp_path, "qop131"), want)


@pytest.mark.parametrize("pre_relu", [False, True], ids=["clip", "relu+clip"])
def test_onnx_qdq_clip_at_the_tie_matches_onnxruntime_and_reference(tmp_path, pre_relu):
    m = qdq_clip_tie_model(pre_relu)
    net = load_onnx(m)
    assert [l.act for l in net.layers] == ["relu6"]  # Relu then Clip(0, 6) is one ReLU6
    rng = np.random.default_rng(2)
    x = rng.uniform(-6, 6, (1, 4, 3, 5)).astype(F)
    qin = net.tensor_quant[0]
    xq = np.clip(np.rint(x / F(qin.scale[0])) + qin.zero_point[0], -128, 127).astype(np.int8)
    got = run_c(net, xq[0].transpose(1, 2, 0), tmp_path, f"qdq{int(pre_relu)}")
    got = got.transpose(2, 0, 1)[None].astype(np.int32)
    for name, y in (("onnxruntime", _sess(m).run(None, {"x": x})[0]),
                    ("onnxruntime (no graph optimisation)", _sess(m, False).run(None, {"x": x})[0]),
                    ("onnx.reference", ReferenceEvaluator(m).run(None, {"x": x})[0])):
        want = _to_int(y, TIE_SCALE, -128)
        assert (want == 2).sum() >= 6, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert (net.layers[0].act_min, net.layers[0].act_max) == (-128, 2)


def test_relu_then_clip_float_model_is_relu6(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.normal(0, 1.5, (3, 2, 3, 3)).astype(F)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Clip", ["r", "lo", "hi"], ["y"])]
    m = _model(nodes, dict(w=w, lo=F(0.0), hi=F(6.0)), [1, 2, 5, 6], TensorProto.FLOAT, opset=17)
    net = load_onnx(m)
    assert [l.act for l in net.layers] == ["relu6"] and net.layers[0].act_min is None
    x = rng.normal(0, 2, (1, 2, 5, 6)).astype(F)
    want = _sess(m).run(None, {"x": x})[0][0].transpose(1, 2, 0)
    assert (want == 6.0).sum() > 0 and (want == 0.0).sum() > 0
    got = run_c(net, x[0].transpose(1, 2, 0), tmp_path, "f32")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_int8_relu_with_nonzero_zero_point_is_refused():
    """ONNX Relu on int8 is max(q, 0): a ReLU of the real values only when the zero point is 0."""
    inits = dict(xs=F(0.05), xz=np.int8(0), w=np.ones((2, 2, 1, 1), np.int8), ws=F(0.02),
                 wz=np.int8(0), ys=F(0.1), yz=np.int8(-20))
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["c"],
                              kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    with pytest.raises(UnsupportedModelError, match="not a relu"):
        load_onnx(_model(nodes, inits, [1, 2, 3, 3], TensorProto.INT8))


def test_zero_size_input_dim_is_reported_as_zero_exit_2(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    m = _model(nodes, {}, [1, 3, 0, 8], TensorProto.FLOAT, opset=17)
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    assert "zero-size dim (dim 2 is 0)" in str(e.value) and "dynamic" not in str(e.value)
    f = tmp_path / "zero.onnx"
    onnx.save(m, f)
    p = subprocess.run([sys.executable, "-m", "msfopt.cli", "solve", str(f)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "zero-size dim" in p.stderr and "dynamic" not in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------
# QDQ AveragePool from onnxruntime's quantize_static: the spec path, exactly
# ------------------------------------------------------------------------------------------------

IN_SHAPE = [1, 3, 13, 14]


def float_conv_avgpool(cip: int) -> onnx.ModelProto:
    rng = np.random.default_rng(10 + cip)
    w = rng.normal(0, 0.4, (8, 3, 3, 3)).astype(F)
    b = rng.normal(0, 0.1, 8).astype(F)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[3, 3], strides=[1, 1],
                              pads=[1, 0, 2, 1], count_include_pad=cip)]  # asymmetric pads
    return _model(nodes, dict(w=w, b=b), IN_SHAPE, TensorProto.FLOAT)


class _Calib:
    def __init__(self, n=8):
        rng = np.random.default_rng(1)
        self.data = iter([{"x": rng.uniform(-1, 1, IN_SHAPE).astype(F)} for _ in range(n)])

    def get_next(self):
        return next(self.data, None)


def quantize_static_uint8(m: onnx.ModelProto, tmp_path, tag) -> onnx.ModelProto:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(_Calib, CalibrationDataReader):
        pass
    fp, qp = tmp_path / f"{tag}_f.onnx", tmp_path / f"{tag}_q.onnx"
    onnx.save(m, fp)
    quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return onnx.load(qp)


@pytest.mark.parametrize("cip", [0, 1])
def test_qdq_avgpool_matches_onnxruntime_and_reference(tmp_path, cip):
    qm = quantize_static_uint8(float_conv_avgpool(cip), tmp_path, f"ap{cip}")
    ops = [n.op_type for n in qm.graph.node]
    assert "AveragePool" in ops and ops.count("QuantizeLinear") >= 3
    net = load_onnx(qm)
    pool = net.layers[1]
    assert pool.op == "avgpool" and pool.count_include_pad == bool(cip)
    assert pool.pad == (1, 0, 2, 1)
    gen = generate(net, unfused(net), tmp_path / f"ap{cip}_c")  # default rq for ONNX: float
    assert gen.rq == "float"
    exe = build_host(gen)
    q_in, q_out = net.tensor_quant[0], net.tensor_quant[-1]
    ref = ReferenceEvaluator(qm)
    spec_ort = _sess(qm, optimise=False)
    rng = np.random.default_rng(7)
    total = mism = 0
    for _ in range(6):
        x = rng.uniform(-1.2, 1.2, IN_SHAPE).astype(F)
        xq = np.clip(np.rint(x / F(q_in.scale[0])) + q_in.zero_point[0], -128, 127)
        got = run_host(gen, exe, xq.astype(np.int8)[0].transpose(1, 2, 0))
        got = got.transpose(2, 0, 1)[None].astype(np.int32)
        for name, y in (("onnxruntime (graph as written)", spec_ort.run(None, {"x": x})[0]),
                        ("onnx.reference", ref.run(None, {"x": x})[0])):
            want = _to_int(y, q_out.scale[0], q_out.zero_point[0])
            mism += int((got != want).sum())
            total += want.size
    assert mism == 0, f"{mism} of {total} outputs differ from the ONNX spec path"
    assert pool.avg_rounding == "qdq"


def test_qdq_avgpool_int8_export_keeps_the_qdq_island():
    """int8 DQ -> AveragePool -> Q is re-exported as that island (not as QLinearAveragePool,
    which rounds differently) and reads back with the same rounding."""
    s_in, s_out = F(0.05), F(0.07)
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["d"]),
             helper.make_node("AveragePool", ["d"], ["a"], kernel_shape=[2, 3], pads=[0, 1, 1, 0],
                              count_include_pad=0),
             helper.make_node("QuantizeLinear", ["a", "s2", "z2"], ["y"])]
    mm = _model(nodes, dict(s=s_in, z=np.int8(3), s2=s_out, z2=np.int8(-7)), [1, 2, 5, 6],
                TensorProto.INT8)
    net = load_onnx(mm)
    assert net.layers[0].avg_rounding == "qdq"
    back = load_onnx(to_onnx(net, "int8"))
    assert back.layers[0].avg_rounding == "qdq"
    ops = [n.op_type for n in to_onnx(net, "int8").graph.node]
    assert "AveragePool" in ops and "QLinearAveragePool" not in ops
    x = np.random.default_rng(3).integers(-128, 128, (1, 2, 5, 6)).astype(np.int8)
    np.testing.assert_array_equal(_sess(to_onnx(net, "int8"), False).run(None, {"input": x})[0],
                                  ReferenceEvaluator(mm).run(None, {"x": x})[0])


# the kernel alone: MSF_RQ_FLOAT_QDQ on random windows, tie-heavy power-of-two scales, odd and
# even zero points, against DequantizeLinear -> AveragePool -> QuantizeLinear (int8)

@pytest.fixture(scope="module")
def lib():
    from msfopt.mcu_runtime import hostlib
    return hostlib.load(hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all"]))


@pytest.mark.parametrize("seed", range(40))
def test_qdq_avgpool_kernel_matches_the_spec_path(lib, seed):
    from test_c_kernels import c_pool_s8, pool_case

    from msfopt.ir import quantize_linear_clamp
    from msfopt.mcu_runtime import hostlib
    cs = pool_case(7000 + seed)
    pt, pl, pb, pr = cs["pad"]
    lo, hi = quantize_linear_clamp(cs["act"], cs["ys"], cs["y_zp"])
    inits = dict(xs=F(cs["xs"]), xz=np.int8(cs["x_zp"]), ys=F(cs["ys"]), yz=np.int8(cs["y_zp"]),
                 lo=np.int8(lo), hi=np.int8(hi))
    nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["d"]),
             helper.make_node("AveragePool", ["d"], ["a"], kernel_shape=list(cs["kernel"]),
                              strides=list(cs["stride"]), pads=[pt, pl, pb, pr],
                              count_include_pad=cs["cip"]),
             helper.make_node("QuantizeLinear", ["a", "ys", "yz"], ["q"]),
             helper.make_node("Clip", ["q", "lo", "hi"], ["y"])]
    h, w, c = cs["x"].shape
    m = _model(nodes, inits, [1, c, h, w], TensorProto.INT8)
    x = np.ascontiguousarray(cs["x"].transpose(2, 0, 1)[None])
    got = c_pool_s8(lib, cs, "avg", mode=hostlib.MSF_RQ_FLOAT_QDQ)
    for name, y in (("onnxruntime (graph as written)", _sess(m, False).run(None, {"x": x})[0]),
                    ("onnx.reference", ReferenceEvaluator(m).run(None, {"x": x})[0])):
        np.testing.assert_array_equal(got, y[0].transpose(1, 2, 0), err_msg=name)
