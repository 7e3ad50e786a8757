"""ONNX importer tests: hand-built float / QDQ / QOperator models and error cases."""
from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(__file__))
from onnx_helpers import G, assert_same_ir, ort_run, quantize  # noqa: E402

from msfopt.export_onnx import to_onnx  # noqa: E402
from msfopt.importers import UnsupportedModelError  # noqa: E402
from msfopt.importers.onnx_import import load_onnx  # noqa: E402
from msfopt.ir import Quant  # noqa: E402
from msfopt.reference import reference_forward  # noqa: E402


def conv_macs(ho, wo, cout, kh, kw, cin, groups=1):
    return ho * wo * cout * kh * kw * (cin // groups)


def check_float_numerics(model, net, in_shape_onnx, nhwc_input=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, in_shape_onnx).astype(np.float32)
    y_ort = ort_run(model, x)
    x_nhwc = x[0] if nhwc_input else x[0].transpose(1, 2, 0)
    y_ref = reference_forward(net, x_nhwc)
    if y_ort.ndim == 4:
        y_ort = y_ort[0].transpose(1, 2, 0)
    np.testing.assert_allclose(y_ref.reshape(-1), y_ort.reshape(-1), rtol=1e-4, atol=1e-5)
    assert np.abs(y_ort).max() > 1e-3  # not a trivially-zero output


# ---------------------------------------------------------------------------------------------
# float models
# ---------------------------------------------------------------------------------------------

def mbv2_model():
    g = G(1)
    c0 = g.relu6(g.bn(g.conv("x", 3, 8, 3, 2, [1, 1, 1, 1], name="stem"), 8))
    e = g.relu6(g.bn(g.conv(c0, 8, 16, 1, bias=False, name="expand"), 16))
    d = g.relu6(g.bn(g.conv(e, 16, 16, 3, 1, [1, 1, 1, 1], group=16, name="dw"), 16))
    p = g.bn(g.conv(d, 16, 8, 1, name="project"), 8)
    a = g.op("Add", [p, c0], name="residual")
    gap = g.op("GlobalAveragePool", [a], name="gap")
    f = g.op("Flatten", [gap], axis=1)
    w = g.c(g.rng.normal(0, 0.3, (10, 8)).astype(np.float32))
    b = g.c(g.rng.normal(0, 0.1, 10).astype(np.float32))
    y = g.op("Gemm", [f, w, b], name="fc", transB=1)
    return g.model("x", y, [1, 3, 16, 16], [1, 10])


def test_mobilenetv2_block_shapes_macs_and_bn_folding():
    m = mbv2_model()
    net = load_onnx(m)
    assert net.dtype == "float32" and net.input_shape == (16, 16, 3)
    assert [l.op for l in net.layers] == ["conv", "conv", "dw", "conv", "add", "gap", "dense"]
    assert [l.act for l in net.layers] == ["relu6", "relu6", "relu6", "none", "none", "none",
                                           "none"]
    assert [l.out_shape for l in net.layers] == [(8, 8, 8), (8, 8, 16), (8, 8, 16), (8, 8, 8),
                                                 (8, 8, 8), (1, 1, 8), (1, 1, 10)]
    add = net.layers[4]
    assert (add.src, add.src2) == (4, 1)
    assert [l.src for l in net.layers] == [0, 1, 2, 3, 4, 5, 6]
    expected = [conv_macs(8, 8, 8, 3, 3, 3), conv_macs(8, 8, 16, 1, 1, 8),
                conv_macs(8, 8, 16, 3, 3, 16, 16), conv_macs(8, 8, 8, 1, 1, 16), 0,
                8 * 8 * 8, 8 * 10]
    assert [l.macs for l in net.layers] == expected
    assert net.vanilla_macs == sum(expected)
    assert net.layers[2].weight.shape == (16, 3, 3, 1)
    assert net.layers[1].bias is not None  # BN created a bias for the bias-free conv
    check_float_numerics(m, net, [1, 3, 16, 16])


def resnet_model():
    g = G(2)
    a = g.op("Relu", [g.conv("x", 4, 8, 3, 2, [1, 1, 1, 1], name="conv_a")])
    b = g.bn(g.conv(a, 8, 8, 3, 1, [1, 1, 1, 1], name="conv_b"), 8)
    proj = g.bn(g.conv("x", 4, 8, 1, 2, name="proj"), 8)
    s = g.op("Relu", [g.op("Add", [b, proj], name="add")])
    mp = g.op("MaxPool", [s], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    f = g.op("Flatten", [mp], axis=1)
    w = g.c(g.rng.normal(0, 0.3, (6, 32)).astype(np.float32))
    y = g.op("Gemm", [f, w, g.c(np.zeros(6, np.float32))], name="fc", transB=1)
    return g.model("x", y, [1, 4, 8, 8], [1, 6])


def test_resnet_projection_shortcut_and_flatten_on_2x2_map():
    m = resnet_model()
    net = load_onnx(m)
    assert [l.op for l in net.layers] == ["conv", "conv", "conv", "add", "maxpool", "dense"]
    assert [l.src for l in net.layers] == [0, 1, 0, 3, 4, 5]
    assert net.layers[3].src2 == 2 and net.layers[3].act == "relu"
    assert net.layers[2].stride == (2, 2) and net.layers[2].kernel == (1, 1)
    assert net.layers[4].out_shape == (2, 2, 8)
    assert net.layers[5].in_shape == (2, 2, 8) and net.layers[5].weight.shape == (6, 32)
    expected = [conv_macs(4, 4, 8, 3, 3, 4), conv_macs(4, 4, 8, 3, 3, 8),
                conv_macs(4, 4, 8, 1, 1, 4), 0, 2 * 2 * 8 * 4, 32 * 6]
    assert [l.macs for l in net.layers] == expected
    # the dense columns are permuted from ONNX's CHW flatten order to the IR's HWC order:
    w_onnx = next(onnx.numpy_helper.to_array(i) for i in m.graph.initializer
                  if i.dims == [6, 32])
    # IR column for (h=0, w=1, c=2) is 0*2*8 + 1*8 + 2 = 10; ONNX column is 2*4 + 0*2 + 1 = 9
    np.testing.assert_array_equal(net.layers[5].weight[:, 10], w_onnx[:, 9])
    check_float_numerics(m, net, [1, 4, 8, 8])


def geometry_model():
    g = G(3)
    c1 = g.conv("x", 3, 4, (3, 5), (2, 1), [0, 1, 2, 3], name="asym")
    c2 = g.conv(c1, 4, 5, (1, 3), (1, 2), auto_pad="SAME_UPPER", name="same_upper")
    c2 = g.op("Clip", [c2, g.c(np.float32(0))], name="clip_inf")   # Clip(0, inf) = ReLU
    c3 = g.conv(c2, 5, 6, 3, 2, auto_pad="SAME_LOWER", name="same_lower")
    c4 = g.conv(c3, 6, 6, 2, 1, group=2, auto_pad="VALID", name="valid_grouped")
    p1 = g.op("AveragePool", [c4], name="avg_incl", kernel_shape=[2, 3], pads=[1, 0, 0, 1],
              count_include_pad=1)
    p2 = g.op("AveragePool", [p1], name="avg_excl", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
              count_include_pad=0)
    p3 = g.op("MaxPool", [p2], name="max_ns", kernel_shape=[3, 2], pads=[1, 0, 1, 1])
    r = g.op("ReduceMean", [p3], name="mean", axes=[2, 3], keepdims=0)
    mm = g.op("MatMul", [r, g.c(g.rng.normal(0, 0.5, (6, 7)).astype(np.float32))], name="mm")
    y = g.op("Add", [mm, g.c(g.rng.normal(0, 0.5, 7).astype(np.float32))], name="mm_bias")
    return g.model("x", y, [1, 3, 11, 13], [1, 7])


def test_geometry_asymmetric_pads_nonsquare_autopad_pools():
    m = geometry_model()
    net = load_onnx(m)
    L = net.layers
    assert [l.op for l in L] == ["conv", "conv", "conv", "conv", "avgpool", "avgpool",
                                 "maxpool", "gap", "dense"]

    def out(n, k, s, p0, p1):
        return (n + p0 + p1 - k) // s + 1

    # asymmetric explicit pads, non-square kernel and stride
    assert L[0].pad == (0, 1, 2, 3) and L[0].kernel == (3, 5) and L[0].stride == (2, 1)
    h1, w1 = out(11, 3, 2, 0, 2), out(13, 5, 1, 1, 3)
    assert L[0].out_shape == (h1, w1, 4) == (6, 13, 4)
    # SAME_UPPER: output ceil(n / s), extra pad at the end
    assert L[1].out_shape == (-(-h1 // 1), -(-w1 // 2), 5) == (6, 7, 5)
    assert L[1].pad == (0, 1, 0, 1) and L[1].act == "relu"
    # SAME_LOWER with odd total padding puts the extra row at the beginning
    assert L[2].out_shape == (3, 4, 6) and L[2].pad == (1, 1, 0, 1)
    assert L[3].groups == 2 and L[3].out_shape == (2, 3, 6) and L[3].pad == (0, 0, 0, 0)
    assert L[4].count_include_pad is True and L[4].out_shape == (out(2, 2, 1, 1, 0),
                                                                 out(3, 3, 1, 0, 1), 6)
    assert L[5].count_include_pad is False and L[5].out_shape == (3, 3, 6)
    assert L[6].kernel == (3, 2) and L[6].out_shape == (3, 3, 6)
    assert L[7].out_shape == (1, 1, 6) and L[8].out_shape == (1, 1, 7)
    assert L[8].bias is not None
    expected = [conv_macs(6, 13, 4, 3, 5, 3), conv_macs(6, 7, 5, 1, 3, 4),
                conv_macs(3, 4, 6, 3, 3, 5), conv_macs(2, 3, 6, 2, 2, 6, 2),
                2 * 2 * 6 * 6, 3 * 3 * 6 * 4, 3 * 3 * 6 * 6, 3 * 3 * 6, 6 * 7]
    assert [l.macs for l in L] == expected
    check_float_numerics(m, net, [1, 3, 11, 13])


def nhwc_model():
    g = G(4)
    t = g.op("Transpose", ["x"], perm=[0, 3, 1, 2])
    c = g.op("Relu", [g.conv(t, 3, 4, 3, 1, [1, 1, 1, 1], name="c")])
    c = g.op("Identity", [c])
    mp = g.op("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2], name="mp")
    mp = g.op("Dropout", [mp])
    gp = g.op("ReduceMean", [mp], axes=[2, 3], keepdims=1, name="rm")
    r = g.op("Reshape", [gp, g.c(np.array([1, -1], np.int64))])
    y = g.op("Gemm", [r, g.c(g.rng.normal(0, 1, (4, 3)).astype(np.float32)),
                      g.c(g.rng.normal(0, 1, 3).astype(np.float32))],
             name="fc", transB=0, alpha=0.5, beta=2.0)
    return g.model("x", y, [1, 6, 6, 3], [1, 3])


def test_nhwc_input_passthrough_ops_reshape_and_gemm_attrs():
    m = nhwc_model()
    net = load_onnx(m)
    assert net.input_shape == (6, 6, 3)
    assert [l.op for l in net.layers] == ["conv", "maxpool", "gap", "dense"]
    assert net.layers[0].act == "relu" and net.layers[3].weight.shape == (3, 4)
    check_float_numerics(m, net, [1, 6, 6, 3], nhwc_input=True)


def test_load_from_path_and_bytes(tmp_path):
    m = resnet_model()
    p = tmp_path / "resnet.onnx"
    onnx.save(m, str(p))
    a, b = load_onnx(str(p)), load_onnx(m.SerializeToString())
    assert a.name == "test_graph" and a.source == str(p)
    assert_same_ir(a, b, exact_float=True)


# ---------------------------------------------------------------------------------------------
# int8 models
# ---------------------------------------------------------------------------------------------

F = np.float32


def qdq_model():
    g = G(5)
    r = g.rng
    s = [F(0.02), F(0.05), F(0.04), F(0.06), F(0.03), F(0.1)]
    z = [5, -128, -3, 2, 0, -10]

    def Q(x, i):
        return g.op("QuantizeLinear", [x, g.c(s[i]), g.c(np.int8(z[i]))])

    def DQ(x, i):
        return g.op("DequantizeLinear", [x, g.c(s[i]), g.c(np.int8(z[i]))])

    def wdq(shape, axis=0):
        w = r.integers(-127, 128, shape).astype(np.int8)
        ws = r.uniform(0.002, 0.01, shape[axis]).astype(F)
        return w, ws, g.op("DequantizeLinear", [g.c(w), g.c(ws), g.c(np.zeros(shape[axis],
                                                                                np.int8))],
                           axis=axis)

    def bdq(n, s_in, ws):
        b = r.integers(-2000, 2000, n).astype(np.int32)
        return b, g.op("DequantizeLinear", [g.c(b), g.c((s_in * ws).astype(F)),
                                            g.c(np.zeros(n, np.int32))], axis=0)

    params = {}
    x = DQ(Q("x", 0), 0)
    w1, ws1, w1d = wdq((8, 3, 3, 3))
    b1, b1d = bdq(8, s[0], ws1)
    params["conv1"] = (w1, ws1, b1)
    t1 = Q(g.op("Relu", [g.op("Conv", [x, w1d, b1d], name="conv1", pads=[1, 1, 1, 1])]), 1)
    w2, ws2, w2d = wdq((8, 1, 3, 3))
    b2, b2d = bdq(8, s[1], ws2)
    params["dw"] = (w2, ws2, b2)
    t2 = Q(g.op("Conv", [DQ(t1, 1), w2d, b2d], name="dw", pads=[1, 1, 1, 1], group=8), 2)
    t3 = Q(g.op("Add", [DQ(t2, 2), DQ(t1, 1)], name="add"), 3)
    t4 = Q(g.op("GlobalAveragePool", [DQ(t3, 3)], name="gap"), 4)
    f = g.op("Flatten", [DQ(t4, 4)])
    w5, ws5, w5d = wdq((5, 8))
    b5, b5d = bdq(5, s[4], ws5)
    params["fc"] = (w5, ws5, b5)
    y = DQ(Q(g.op("Gemm", [f, w5d, b5d], name="fc", transB=1), 5), 5)
    return g.model("x", y, [1, 3, 8, 8], [1, 5]), s, z, params


def test_qdq_int8_import():
    m, s, z, params = qdq_model()
    net = load_onnx(m)
    assert net.dtype == "int8"
    assert [l.op for l in net.layers] == ["conv", "dw", "add", "gap", "dense"]
    assert net.layers[0].act == "relu" and net.layers[2].act == "none"
    assert (net.layers[2].src, net.layers[2].src2) == (2, 1)
    assert net.tensor_quant == [Quant.of(float(si), zi) for si, zi in zip(s, z)]
    assert net.input_quant == net.tensor_quant[0]
    for idx, key in ((0, "conv1"), (1, "dw")):
        w, ws, b = params[key]
        l = net.layers[idx]
        assert l.weight.dtype == np.int8
        np.testing.assert_array_equal(l.weight, w.transpose(0, 2, 3, 1))
        assert l.w_quant == Quant.of(ws.astype(np.float64), 0, axis=0)
        np.testing.assert_array_equal(l.bias, b)
        assert l.bias.dtype == np.int32
    w5, ws5, b5 = params["fc"]
    np.testing.assert_array_equal(net.layers[4].weight, w5)
    np.testing.assert_array_equal(net.layers[4].bias, b5)
    assert [l.macs for l in net.layers] == [conv_macs(8, 8, 8, 3, 3, 3),
                                            conv_macs(8, 8, 8, 3, 3, 8, 8), 0, 64 * 8, 40]

    # The QOperator export computes (almost) the same int8 function as ORT on the QDQ model.
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, (1, 3, 8, 8)).astype(np.float32)
    y_qdq = ort_run(m, x)
    q8 = to_onnx(net, "int8")
    y8 = ort_run(q8, quantize(x, net.tensor_quant[0]))
    assert y8.dtype == np.int8
    qo = net.tensor_quant[-1]
    y8f = (y8.astype(np.float64) - qo.zero_point[0]) * qo.scale[0]
    assert np.abs(y8f - y_qdq).max() <= 2 * qo.scale[0] + 1e-7
    assert len(np.unique(y8)) > 2
    # and the int8 export round-trips to the same IR
    assert_same_ir(load_onnx(q8), net)


def qop_model(with_matmul=True):
    g = G(6)
    r = g.rng
    sq = {n: F(v) for n, v in dict(x=0.02, c1=0.05, c2=0.07, add=0.09, avg=0.08, gap=0.04,
                                      fc=0.1, mm=0.2).items()}
    zq = dict(x=3, c1=-128, c2=4, add=-5, avg=-6, gap=1, fc=-2, mm=7)

    def sz(n):
        return [g.c(sq[n]), g.c(np.int8(zq[n]))]

    def wq(shape, per_channel=True):
        w = r.integers(-127, 128, shape).astype(np.int8)
        n = shape[0] if per_channel else 1
        ws = r.uniform(0.002, 0.01, n).astype(F)
        return [g.c(w), g.c(ws if per_channel else ws[0]),
                g.c(np.zeros(n, np.int8) if per_channel else np.int8(0))]

    xq = g.op("QuantizeLinear", ["x"] + sz("x"))
    c1 = g.op("QLinearConv", [xq] + sz("x") + wq((6, 3, 3, 3)) + sz("c1")
              + [g.c(r.integers(-500, 500, 6).astype(np.int32))], name="qconv1",
              pads=[1, 1, 1, 1], strides=[1, 1])
    mp = g.op("MaxPool", [c1], kernel_shape=[2, 2], strides=[2, 2], name="mp")
    c2 = g.op("QLinearConv", [mp] + sz("c1") + wq((6, 6, 1, 1), per_channel=False) + sz("c2"),
              name="qconv2")
    ad = g.op("QLinearAdd", [c2] + sz("c2") + [mp] + sz("c1") + sz("add"), domain="com.microsoft",
              name="qadd")
    av = g.op("QLinearAveragePool", [ad] + sz("add") + sz("avg"), domain="com.microsoft",
              kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0, name="qavg")
    gp = g.op("QLinearGlobalAveragePool", [av] + sz("avg") + sz("gap"), domain="com.microsoft",
              name="qgap")
    f = g.op("Flatten", [gp], axis=1)
    fc = g.op("QGemm", [f] + sz("gap") + wq((5, 6)) + [g.c(r.integers(-300, 300, 5)
                                                             .astype(np.int32))] + sz("fc"),
              domain="com.microsoft", transB=1, name="qgemm")
    last, ln = fc, "fc"
    if with_matmul:
        b = r.integers(-127, 128, (5, 4)).astype(np.int8)
        last = g.op("QLinearMatMul", [fc] + sz("fc") + [g.c(b), g.c(F(0.01)), g.c(np.int8(0))]
                    + sz("mm"), name="qmm")
        ln = "mm"
    y = g.op("DequantizeLinear", [last] + sz(ln))
    return g.model("x", y, [1, 3, 8, 8], [1, 4 if with_matmul else 5], ms=True), sq, zq


@pytest.mark.parametrize("with_matmul", [False, True])
def test_qoperator_int8_import_and_bytewise_reexport(with_matmul):
    m, sq, zq = qop_model(with_matmul)
    net = load_onnx(m)
    ops = ["conv", "maxpool", "conv", "add", "avgpool", "gap", "dense"] + \
        (["dense"] if with_matmul else [])
    assert [l.op for l in net.layers] == ops
    names = ["x", "c1", "c1", "c2", "add", "avg", "gap", "fc"] + (["mm"] if with_matmul else [])
    assert net.tensor_quant == [Quant.of(float(sq[n]), zq[n]) for n in names]
    assert net.layers[0].w_quant.per_channel and not net.layers[2].w_quant.per_channel
    assert (net.layers[3].src, net.layers[3].src2) == (3, 2)
    assert net.layers[4].count_include_pad is False
    if with_matmul:
        assert net.layers[7].bias is None and net.layers[7].weight.shape == (4, 5)
    assert [l.macs for l in net.layers][:3] == [conv_macs(8, 8, 6, 3, 3, 3), 4 * 4 * 6 * 4,
                                               conv_macs(4, 4, 6, 1, 1, 6)]
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, (1, 3, 8, 8)).astype(np.float32)
    y_orig = ort_run(m, x)
    y8 = ort_run(to_onnx(net, "int8"), quantize(x, net.tensor_quant[0]))
    qo = net.tensor_quant[-1]
    y8f = ((y8.astype(np.float64) - qo.zero_point[0]) * qo.scale[0]).astype(np.float32)
    if with_matmul:  # QLinearMatMul is re-exported as a bias-free QGemm: rounding may differ
        assert np.abs(y8f - y_orig).max() <= qo.scale[0] * 1.001
    else:            # identical QOperator ops: byte for byte
        np.testing.assert_array_equal(y8f, y_orig)
    assert len(np.unique(y8)) > 1


def test_uint8_qoperator_is_converted_exactly_to_int8():
    g = G(7)
    r = g.rng
    w = r.integers(0, 256, (4, 2, 3, 3)).astype(np.uint8)
    y = g.op("QLinearConv", ["x", g.c(F(0.03)), g.c(np.uint8(128)), g.c(w), g.c(F(0.004)),
                             g.c(np.uint8(120)), g.c(F(0.05)), g.c(np.uint8(100)),
                             g.c(r.integers(-900, 900, 4).astype(np.int32))],
             name="qconv", pads=[1, 1, 1, 1])
    m = g.model("x", y, [1, 2, 5, 5], [1, 4, 5, 5], in_type=TensorProto.UINT8)
    net = load_onnx(m)
    assert net.dtype == "int8"
    assert net.tensor_quant == [Quant.of(float(F(0.03)), 0), Quant.of(float(F(0.05)), -28)]
    assert net.layers[0].w_quant == Quant.of(float(F(0.004)), -8)
    np.testing.assert_array_equal(net.layers[0].weight,
                                  (w.astype(np.int16) - 128).astype(np.int8).transpose(0, 2, 3, 1))
    xu = r.integers(0, 256, (1, 2, 5, 5)).astype(np.uint8)
    yu = ort_run(m, xu)
    y8 = ort_run(to_onnx(net, "int8"), (xu.astype(np.int16) - 128).astype(np.int8))
    np.testing.assert_array_equal(y8.astype(np.int16), yu.astype(np.int16) - 128)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

def assert_one_line_error(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg
    assert msg.startswith("unsupported ONNX model: ")
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def test_error_names_every_unsupported_node():
    g = G()
    c = g.conv("x", 3, 4, 3, name="c")
    s = g.op("Softplus", [c], name="sig_1")
    t = g.op("Erf", [s], name="hswish_2")
    m = g.model("x", t, [1, 3, 8, 8], [1, 4, 6, 6])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    msg = assert_one_line_error(e, "Softplus x1: op not supported ('sig_1')",
                                "Erf x1: op not supported ('hswish_2')")
    assert msg.count("op not supported") == 2
    assert isinstance(e.value, ValueError)


def test_error_groups_unsupported_nodes_by_op_type_with_counts():
    """Eleven nodes of two unsupported types: one group per type with its count and the first
    three node names, not a line (or a clause) per node."""
    g = G()
    t = g.conv("x", 3, 4, 3, name="c")
    for k in range(7):
        t = g.op("Softplus", [t], name=f"sig_{k}")
    for k in range(4):
        t = g.op("Softsign", [t], name=f"tanh_{k}")
    m = g.model("x", t, [1, 3, 8, 8], [1, 4, 6, 6])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    msg = assert_one_line_error(e)
    assert msg == ("unsupported ONNX model: Softplus x7: op not supported ('sig_0', 'sig_1', "
                   "'sig_2', ... 4 more); Softsign x4: op not supported ('tanh_0', 'tanh_1', "
                   "'tanh_2', ... 1 more)")


def test_dynamic_batch_dim_becomes_one_with_a_note():
    g = G()
    y = g.op("Relu", [g.conv("x", 3, 4, 3)])
    m = g.model("x", y, ["N", 3, 8, 8], ["N", 4, 6, 6])
    net = load_onnx(m)
    assert net.input_shape == (8, 8, 3)
    assert net.provenance.notes == ("input 'x': dynamic batch dim 'N' set to 1",)
    check_float_numerics(m, net, (1, 3, 8, 8))


def test_error_dynamic_spatial_dim_asks_for_input_shape():
    g = G()
    y = g.op("Relu", [g.conv("x", 3, 4, 3)])
    m = g.model("x", y, [1, 3, "H", 8], [1, 4, "H2", 6])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    assert_one_line_error(e, "input 'x' has dynamic dim 'H' (fix it with --input-shape)")


def test_concat_branch_is_a_concat_layer():
    g = G()
    a = g.conv("x", 3, 4, 3, 1, [1, 1, 1, 1])
    b = g.conv("x", 3, 4, 1)
    y = g.op("Concat", [a, b], name="cat", axis=1)
    m = g.model("x", y, [1, 3, 8, 8], [1, 8, 8, 8])
    net = load_onnx(m)
    assert [l.op for l in net.layers] == ["conv", "conv", "concat"]
    assert net.layers[2].srcs == (1, 2) and net.layers[2].out_shape == (8, 8, 8)


def test_preactivation_value_used_by_a_second_branch_gets_a_standalone_relu():
    """The Relu cannot fold into the conv (the Add reads the value before it): a standalone clip
    layer computes it, and the Add reads the conv's own output."""
    g = G()
    c = g.conv("x", 3, 4, 3, 1, [1, 1, 1, 1], name="c")
    r = g.op("Relu", [c], name="act")
    d = g.conv(r, 4, 4, 1, name="d")
    y = g.op("Add", [d, c], name="add")      # reads the conv output *before* the ReLU
    m = g.model("x", y, [1, 3, 8, 8], [1, 4, 8, 8])
    net = load_onnx(m)
    ops = [(l.op, l.fn, l.act) for l in net.layers]
    assert ops == [("conv", "", "none"), ("act", "clip", "none"), ("conv", "", "none"),
                   ("add", "", "none")]
    assert net.layers[1].fclip[0] == 0.0 and net.layers[3].srcs == (3, 1)


def test_two_outputs_and_error_broadcast_add():
    """A second graph output reading the conv before its Relu: the Relu becomes a standalone
    clip and both tensors are outputs, in the model's order."""
    g = G()
    c = g.conv("x", 3, 4, 3, name="c")
    y = g.op("Relu", [c], name="r")
    m = g.model("x", y, [1, 3, 8, 8], [1, 4, 6, 6], extra_outputs=[c])
    net = load_onnx(m)
    assert [(l.op, l.fn) for l in net.layers] == [("conv", ""), ("act", "clip")]
    assert net.output_ids == (2, 1)
    g = G()
    c = g.conv("x", 3, 4, 3, name="c")
    # a [1, 4, 1, 6] operand (per channel and column) is no broadcast msfopt runs; per channel
    # ([1, 4, 1, 1]) and per pixel are (tests/test_graph_ops_onnx.py)
    p = g.op("MaxPool", [c], name="p", kernel_shape=[6, 1])
    y = g.op("Add", [c, p], name="bcast")
    m = g.model("x", y, [1, 3, 8, 8], [1, 4, 6, 6])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    assert_one_line_error(e, "Add x1: ", "broadcast", "('bcast')")


def test_error_garbage_and_truncated_files(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(str(garbage))
    assert_one_line_error(e, "garbage.onnx")
    data = resnet_model().SerializeToString()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(trunc)
    assert_one_line_error(e, "trunc.onnx")
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(tmp_path / "missing.onnx")
    assert_one_line_error(e, "missing.onnx")


def test_error_dilation_and_big_padding_collected_together():
    g = G()
    a = g.conv("x", 3, 4, 3, name="dil", dilations=[0, 0])
    b = g.conv("x", 3, 4, 3, 1, [3, 3, 3, 3], name="bigpad")
    y = g.op("Add", [a, b], name="add")
    m = g.model("x", y, [1, 3, 12, 12], [1, 4, 8, 8])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    assert_one_line_error(e, "Conv x1: dilations", "('dil')", "Conv x1: padding", "('bigpad')")
