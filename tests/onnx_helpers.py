"""Helpers for the ONNX importer/exporter tests: a tiny graph builder and IR comparison."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


class G:
    """Minimal ONNX graph builder: nodes and initializers with automatic names."""

    def __init__(self, seed: int = 0):
        self.nodes: list = []
        self.inits: list = []
        self.rng = np.random.default_rng(seed)
        self._n = 0

    def c(self, arr, name=None) -> str:
        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, ins, name=None, domain="", n_out=1, **attrs) -> str:
        self._n += 1
        name = name or f"{op_type.lower()}_{self._n}"
        outs = [f"{name}_out"] if n_out == 1 else [f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, ins, outs, name=name,
                                           domain=domain or None, **attrs))
        return outs[0]

    def model(self, inp, out, in_shape, out_shape=None, in_type=TensorProto.FLOAT,
              out_type=None, ms=False, opset=17, extra_outputs=()) -> onnx.ModelProto:
        outputs = [helper.make_tensor_value_info(out, out_type or in_type, out_shape)]
        for o in extra_outputs:
            outputs.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
        g = helper.make_graph(self.nodes, "test_graph",
                              [helper.make_tensor_value_info(inp, in_type, in_shape)],
                              outputs, self.inits)
        ops = [helper.make_opsetid("", opset)]
        if ms:
            ops.append(helper.make_opsetid("com.microsoft", 1))
        m = helper.make_model(g, opset_imports=ops)
        m.ir_version = 9
        return m

    # -- float building blocks ------------------------------------------------------------------
    def conv(self, x, cin, cout, k, s=1, pads=None, group=1, bias=True, name=None, **kw):
        kh, kw_ = (k, k) if isinstance(k, int) else k
        sh, sw = (s, s) if isinstance(s, int) else s
        w = self.rng.normal(0, np.sqrt(2.0 / (kh * kw_ * cin // group)),
                            (cout, cin // group, kh, kw_)).astype(np.float32)
        ins = [x, self.c(w)]
        if bias:
            ins.append(self.c(self.rng.normal(0, 0.1, cout).astype(np.float32)))
        attrs = dict(kernel_shape=[kh, kw_], strides=[sh, sw], group=group, **kw)
        if pads is not None:
            attrs["pads"] = list(pads)
        return self.op("Conv", ins, name=name, **attrs)

    def bn(self, x, c, name=None):
        r = self.rng
        return self.op("BatchNormalization",
                       [x, self.c(r.uniform(0.5, 1.5, c).astype(np.float32)),
                        self.c(r.normal(0, 0.2, c).astype(np.float32)),
                        self.c(r.normal(0, 0.3, c).astype(np.float32)),
                        self.c(r.uniform(0.5, 2.0, c).astype(np.float32))],
                       name=name, epsilon=1e-3)

    def relu6(self, x, name=None):
        return self.op("Clip", [x, self.c(np.float32(0)), self.c(np.float32(6))], name=name)


def ort_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def quantize(x, q):
    return np.clip(np.round(np.asarray(x, np.float64) / q.scale[0]) + q.zero_point[0],
                   -128, 127).astype(np.int8)


def assert_same_ir(a, b, exact_float=False):
    """Two IR networks are equal: geometry, topology, activations, weights and quantisation."""
    assert a.dtype == b.dtype
    assert tuple(a.input_shape) == tuple(b.input_shape)
    assert a.n_layers == b.n_layers, (a.n_layers, b.n_layers)
    for i, (x, y) in enumerate(zip(a.layers, b.layers)):
        for f in ("op", "in_shape", "out_shape", "kernel", "stride", "pad", "groups", "act",
                  "src", "src2"):
            assert tuple(np.atleast_1d(getattr(x, f))) == tuple(np.atleast_1d(getattr(y, f))), \
                (i, f, getattr(x, f), getattr(y, f))
        if x.op == "avgpool":
            assert x.count_include_pad == y.count_include_pad, i
            assert x.avg_rounding == y.avg_rounding, (i, x.avg_rounding, y.avg_rounding)
        assert (x.act_min, x.act_max) == (y.act_min, y.act_max), \
            (i, "int8 clamp", (x.act_min, x.act_max), (y.act_min, y.act_max))
        for f in ("weight", "bias"):
            u, v = getattr(x, f), getattr(y, f)
            assert (u is None) == (v is None), (i, f)
            if u is None:
                continue
            assert u.shape == v.shape, (i, f)
            if np.issubdtype(u.dtype, np.integer) or exact_float:
                assert u.dtype == v.dtype, (i, f, u.dtype, v.dtype)
                np.testing.assert_array_equal(u, v)
            else:
                np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)
        assert x.w_quant == y.w_quant, (i, x.w_quant, y.w_quant)
    assert list(a.tensor_quant) == list(b.tensor_quant)
