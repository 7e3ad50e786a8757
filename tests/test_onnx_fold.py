"""Constant folding before ONNX import (msfopt/importers/onnx_fold.py): exporter shape arithmetic
(Shape -> Gather -> Unsqueeze -> Concat -> Reshape, Shape -> Gather -> Div) is evaluated away, the
folded model computes what onnxruntime computes on the ORIGINAL model, and the importer takes
models it refused before."""
from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(__file__))
from conftest import SHARED_MODELS, require  # noqa: E402
from onnx_helpers import G, ort_run  # noqa: E402

from msfopt.importers import UnsupportedModelError  # noqa: E402
from msfopt.importers.onnx_fold import MAX_ELEMS, fold_constants  # noqa: E402
from msfopt.importers.onnx_import import load_onnx  # noqa: E402
from msfopt.reference import reference_forward  # noqa: E402


def torch_flatten_classifier(opset=13):
    """conv -> GAP -> x.view(x.size(0), -1) as PyTorch exports it -> Gemm."""
    g = G(3)
    c = g.op("Relu", [g.conv("x", 3, 8, 3, 1, [1, 1, 1, 1], name="conv")])
    gap = g.op("GlobalAveragePool", [c], name="gap")
    shp = g.op("Shape", [gap], name="shape")
    n = g.op("Gather", [shp, g.c(np.array(0, np.int64))], name="gather", axis=0)
    n1 = g.op("Unsqueeze", [n, g.c(np.array([0], np.int64))], name="unsq")
    cat = g.op("Concat", [n1, g.c(np.array([-1], np.int64))], name="cat", axis=0)
    flat = g.op("Reshape", [gap, cat], name="view")
    w = g.c(g.rng.normal(0, 0.3, (5, 8)).astype(np.float32))
    b = g.c(g.rng.normal(0, 0.1, 5).astype(np.float32))
    y = g.op("Gemm", [flat, w, b], name="fc", transB=1)
    return g.model("x", y, [1, 3, 8, 8], [1, 5], opset=opset)


def test_shape_arithmetic_folds_to_initializers():
    m = torch_flatten_classifier()
    f = fold_constants(m)
    ops = [n.op_type for n in f.graph.node]
    assert ops == ["Conv", "Relu", "GlobalAveragePool", "Reshape", "Gemm"]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in f.graph.initializer}
    assert list(inits["cat_out"]) == [1, -1]          # [x.size(0), -1] with batch 1
    onnx.checker.check_model(f)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(ort_run(f, x), ort_run(m, x))


def test_folded_classifier_imports_and_matches_onnxruntime_on_the_original():
    m = torch_flatten_classifier()
    net = load_onnx(m)                 # refused before folding: Shape / Gather / Concat
    assert [L.op for L in net.layers] == ["conv", "gap", "dense"]
    for seed in range(3):
        x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
        y = reference_forward(net, x[0].transpose(1, 2, 0))
        np.testing.assert_allclose(y.reshape(-1), ort_run(m, x).reshape(-1), rtol=1e-4, atol=1e-5)


def test_chunk_arithmetic_folds():
    """PyTorch's chunk: Shape -> Gather(1) -> Div(2) feeding Slice ends."""
    g = G(1)
    c = g.conv("x", 3, 8, 1, name="c")
    shp = g.op("Shape", [c])
    ch = g.op("Gather", [shp, g.c(np.array(1, np.int64))], axis=0)
    half = g.op("Div", [ch, g.c(np.array(2, np.int64))])
    end = g.op("Unsqueeze", [half, g.c(np.array([0], np.int64))])
    y = g.op("Slice", [c, g.c(np.array([0], np.int64)), end, g.c(np.array([1], np.int64))],
             name="split_lo")
    m = g.model("x", y, [1, 3, 4, 4], [1, 4, 4, 4])
    f = fold_constants(m)
    assert [n.op_type for n in f.graph.node] == ["Conv", "Slice"]
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(ort_run(f, x), ort_run(m, x))


def test_dynamic_shapes_and_big_values_are_not_folded():
    # a Shape of a tensor with a dynamic dim stays; so does a constant subgraph whose value
    # exceeds MAX_ELEMS, and DequantizeLinear of int8 weights (the QDQ importer reads it)
    g = G(2)
    big = g.op("ConstantOfShape", [g.c(np.array([MAX_ELEMS + 1], np.int64))])
    dq = g.op("DequantizeLinear", [g.c(np.ones((4, 3, 1, 1), np.int8)), g.c(np.float32(0.1))])
    y = g.op("Conv", ["x", dq])
    shp = g.op("Shape", [y])
    m = g.model("x", y, ["N", 3, 4, 4], ["N", 4, 4, 4], extra_outputs=(shp, big))
    f = fold_constants(m)
    assert [n.op_type for n in f.graph.node] == [n.op_type for n in m.graph.node]


def test_only_the_ops_folding_cannot_remove_are_reported():
    """Before folding the flatten's Shape / Gather / Unsqueeze / Concat were reported as
    unsupported next to the real blocker; after it only the Softplus is."""
    g = G(4)
    c = g.op("Softplus", [g.conv("x", 3, 8, 3, name="c")], name="t")
    gap = g.op("GlobalAveragePool", [c])
    shp = g.op("Shape", [gap])
    n = g.op("Gather", [shp, g.c(np.array(0, np.int64))], axis=0)
    cat = g.op("Concat", [g.op("Unsqueeze", [n, g.c(np.array([0], np.int64))]),
                          g.c(np.array([-1], np.int64))], axis=0)
    y = g.op("Reshape", [gap, cat])
    m = g.model("x", y, [1, 3, 8, 8], [1, 8])
    with pytest.raises(UnsupportedModelError) as e:
        load_onnx(m)
    assert str(e.value) == "unsupported ONNX model: Softplus x1: op not supported ('t')"


def test_shufflenet_split_arithmetic_folds():
    """The shared ShuffleNetV2 exports channel split as Shape -> Gather -> Div -> Slice: after
    folding no Shape/Gather/Div node is left, and the folded model equals the original under
    onnxruntime."""
    require("../shared/models", "onnxruntime")
    m = onnx.load(str(SHARED_MODELS / "tv_shufflenet_v2_x0_5_r128.onnx"))
    f = fold_constants(m)
    before = {n.op_type for n in m.graph.node}
    after = {n.op_type for n in f.graph.node}
    assert {"Shape", "Gather", "Div"} <= before and not ({"Shape", "Gather", "Div"} & after)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    np.testing.assert_array_equal(ort_run(f, x), ort_run(m, x))
    assert TensorProto.FLOAT == f.graph.input[0].type.tensor_type.elem_type
