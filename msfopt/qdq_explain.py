"""Why the generated C of an int8 QDQ ONNX model differs from onnxruntime, layer by layer.

onnxruntime (default optimisations) fuses most DequantizeLinear -> op -> QuantizeLinear groups
of a QDQ file into integer QLinear kernels, but runs some in float32: e.g. 16 of the 52
convolutions of the QDQ MobileNetV3-small.  A float32 convolution of dequantised values rounds
its sum in MLAS's order (blocking, FMA, ISA-dependent); where that sum lands within a rounding
error of a QuantizeLinear tie it may round the other way than msfopt's exact integer sum, and a
one-step difference can grow through later layers (up to 10 steps on that model's logits).

:func:`explain` tells such a difference apart from a wrong result, on one input:

1. the generated C's outputs equal msfopt's own int8 interpreter
   (:func:`msfopt.reference.int8_forward`, the C's arithmetic in numpy);
2. every layer, fed onnxruntime's OWN int8 inputs, is compared with onnxruntime's int8 output:
   only layers onnxruntime runs as float32 convolutions may differ;
3. with onnxruntime's outputs of those float convolutions substituted (every other layer
   msfopt's), the interpreter reproduces onnxruntime's outputs exactly.

All three hold: the difference is explained (every differing value comes from onnxruntime's
float convolutions).  onnxruntime's intermediates come from its own optimised graph (saved at
ENABLE_EXTENDED, which makes the default level's fusions, then run unoptimised with every
tensor msfopt maps as an extra graph output): adding outputs to the original file would change
which nodes onnxruntime fuses.  The optimised graph's final output is checked equal to the
original file's.

``tests/test_qdq_models.py`` runs this on the shared QDQ MobileNetV3 (50 inputs: 44 bit-exact,
the other 6 explained).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ir import Network

__all__ = ["Explanation", "OrtIntermediates", "explain"]

#: the zero-point input of the onnxruntime nodes that produce a quantised tensor (its element
#: type names the extra graph output's type)
_ZP_INPUT = {"QuantizeLinear": 2, "QLinearConv": 7, "QGemm": 8, "QLinearGlobalAveragePool": 4,
             "QLinearAveragePool": 4, "QLinearAdd": 7, "QLinearMul": 7, "QLinearMatMul": 7,
             "QLinearSigmoid": 4, "QLinearLeakyRelu": 4, "QLinearSoftmax": 4}


class ExplainError(Exception):
    """onnxruntime's intermediates cannot be mapped onto the IR's tensors."""


@dataclass
class Explanation:
    explained: bool
    reason: str                                   # one line for the user
    float_convs: int = 0                          # layers onnxruntime runs as float32 Conv
    # (layer, onnxruntime's op, values that differ, max steps), each layer fed ORT's inputs
    differing: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"explained": self.explained, "reason": self.reason,
                "float_convs": self.float_convs,
                "differing_layers": [{"layer": i, "onnxruntime_op": op, "values": n,
                                      "max_steps": d} for i, op, n, d in self.differing]}


class OrtIntermediates:
    """onnxruntime's int8 value of every IR tensor (H, W, C) and the op computing it, from its
    optimised graph of ``path`` (names: ``net.provenance.tensor_names``)."""

    def __init__(self, path, net: Network, work: Path):
        import onnx
        import onnxruntime as ort
        names = net.provenance.tensor_names if net.provenance is not None else ()
        if len(names) != net.n_layers + 1 or not all(names):
            raise ExplainError("the network does not name its tensors in the ONNX file")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(work / "ort_optimised.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        orig = {o: n for n in onnx.load(str(path)).graph.node for o in n.output}
        mo = onnx.load(so.optimized_model_filepath)
        by_name = {n.name: n for n in mo.graph.node}
        self.prod = {o: n for n in mo.graph.node for o in n.output}
        inits = {i.name: i for i in mo.graph.initializer}
        self.names: list[str | None] = [None]
        for t in range(1, net.n_layers + 1):
            q = orig.get(names[t])
            if q is None or q.op_type != "QuantizeLinear":
                raise ExplainError(f"tensor {t} ({names[t]}) is not a QuantizeLinear output")
            # unfused: the QuantizeLinear node survives; fused: the QLinear node carries the
            # name of the node that produced the QuantizeLinear's input
            node = by_name.get(q.name)
            if node is None and q.input[0] in orig:
                node = by_name.get(orig[q.input[0]].name)
            if node is None:
                raise ExplainError(f"tensor {t} ({names[t]}): not found in onnxruntime's "
                                   "optimised graph")
            self.names.append(node.output[0])
        have = {o.name for o in mo.graph.output}
        for nm in self.names[1:]:
            if nm in have:
                continue
            n = self.prod[nm]
            k = _ZP_INPUT.get(n.op_type)
            if k is None or k >= len(n.input) or n.input[k] not in inits:
                raise ExplainError(f"onnxruntime's {n.op_type} computing {nm}: unknown output "
                                   "type")
            mo.graph.output.append(onnx.helper.make_tensor_value_info(
                nm, inits[n.input[k]].data_type, None))
            have.add(nm)
        so2 = ort.SessionOptions()
        so2.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so2.log_severity_level = 3
        self.sess = ort.InferenceSession(mo.SerializeToString(), so2,
                                         providers=["CPUExecutionProvider"])
        self.orig = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.net = net
        self.final = mo.graph.output[0].name

    def op(self, t: int) -> str:
        """onnxruntime's op computing tensor t: 'QLinearConv', ..., or 'float <op>' for a float
        op followed by QuantizeLinear."""
        n = self.prod[self.names[t]]
        if n.op_type == "QuantizeLinear":
            return "float " + self.prod[n.input[0]].op_type
        return n.op_type

    def run(self, x_nhwc: np.ndarray) -> dict[int, np.ndarray]:
        """{tensor id: onnxruntime's int8 value (H, W, C)} for IR input x (int8 NHWC)."""
        q0 = self.net.quant_of(0)
        x_nhwc = np.asarray(x_nhwc).reshape(self.net.input_shape)
        xf = ((x_nhwc.astype(np.float32) - q0.zero_point[0]) * np.float32(q0.scale[0]))
        xf = xf.transpose(2, 0, 1)[None].astype(np.float32)
        feed = {self.orig.get_inputs()[0].name: xf}
        outs = dict(zip([o.name for o in self.sess.get_outputs()], self.sess.run(None, feed)))
        if not np.array_equal(outs[self.final], self.orig.run(None, feed)[0]):
            raise ExplainError("onnxruntime's optimised graph computes another output than the "
                               "original file")
        vals = {0: x_nhwc.astype(np.int8)}
        for t in range(1, self.net.n_layers + 1):
            a = outs[self.names[t]]
            if a.dtype == np.uint8:   # onnxruntime's s8 -> u8 QDQ conversion
                a = a.astype(np.int16) - 128
            if a.ndim == 4:
                a = a[0].transpose(1, 2, 0)
            vals[t] = a.reshape(self.net.tensor_shape(t)).astype(np.int8)
        return vals


def explain(path, net: Network, x: np.ndarray, outputs) -> Explanation:
    """Whether the generated C's ``outputs`` (one array per graph output, in
    ``net.output_ids`` order, or one array) for int8 input ``x`` differ from onnxruntime on
    ``path`` only through onnxruntime's float32 convolutions (module docstring)."""
    from . import reference
    outs = [outputs] if isinstance(outputs, np.ndarray) else list(outputs)
    ids = list(net.output_ids)
    if len(outs) != len(ids):
        return Explanation(False, f"{len(outs)} outputs given for {len(ids)} graph outputs")
    try:
        with tempfile.TemporaryDirectory(prefix="msfopt-qdq-") as td:
            ints = OrtIntermediates(path, net, Path(td))
            v = ints.run(x)
    except ExplainError as exc:
        return Explanation(False, f"no per-layer comparison: {exc}")
    mine = reference.int8_forward(net, x)
    for t, y in zip(ids, outs):
        if not np.array_equal(np.asarray(y).reshape(-1), mine[t].reshape(-1)):
            return Explanation(False, f"the generated C's output (tensor {t}) differs from "
                                      "msfopt's int8 interpreter of the same plan arithmetic")
    float_convs = [t for t in range(1, net.n_layers + 1) if ints.op(t) == "float Conv"]
    differing = []
    for i, L in enumerate(net.layers):
        got = reference.int8_layer_forward(net, i, v[L.src],
                                           v[L.src2] if L.src2 is not None else None)
        d = np.abs(got.astype(np.int16) - v[i + 1].astype(np.int16))
        if d.any():
            differing.append((i, ints.op(i + 1), int(np.count_nonzero(d)), int(d.max())))
    bad = [r for r in differing if r[1] != "float Conv"]
    if bad:
        i, op, n, d = bad[0]
        return Explanation(False, f"layer {i} ({op} in onnxruntime), fed onnxruntime's own "
                                  f"inputs, differs on {n} values (up to {d} steps)",
                           len(float_convs), differing)
    subst = reference.int8_forward(net, x, feeds={t: v[t] for t in float_convs})
    for t in ids:
        if not np.array_equal(subst[t].reshape(-1), v[t].reshape(-1)):
            return Explanation(False, "with onnxruntime's float-convolution outputs "
                                      "substituted the outputs still differ",
                               len(float_convs), differing)
    n_vals = sum(r[2] for r in differing)
    return Explanation(True, f"explained: fed onnxruntime's own inputs every layer is "
                             f"bit-exact but {len(differing)} of the {len(float_convs)} "
                             f"convolutions onnxruntime runs in float32 ({n_vals} values, "
                             f"<= {max((r[3] for r in differing), default=0)} step: MLAS's "
                             "float rounding of ties); with their outputs substituted msfopt "
                             "reproduces onnxruntime exactly", len(float_convs), differing)
