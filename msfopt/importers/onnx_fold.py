"""Constant folding before ONNX import: shape arithmetic evaluated once, by onnx's own reference
implementation of each op.

Exporters emit subgraphs that compute constants at run time: PyTorch's ``x.view(x.size(0), -1)``
becomes Shape -> Gather -> Unsqueeze -> Concat -> Reshape, ``chunk`` becomes Shape -> Gather ->
Div -> Slice, an opset-11 Resize takes its sizes from Shape -> Slice -> Concat.  With the static
shapes ``onnx.shape_inference`` gives, every node of such a subgraph has constant inputs: a Shape
or Size of a statically shaped tensor is its shape, and every other node in :data:`FOLDABLE` whose
inputs are all known constants is run by ``onnx.reference`` (one node at a time, the model's own
opset).  Its outputs become initializers and the node disappears, so the importer only sees ops
on feature maps.

Only shape-like values are folded: no input or output of a folded node may exceed
:data:`MAX_ELEMS` elements, and quantisation ops are never folded (the QDQ importer reads
DequantizeLinear of int8 weights itself).  A node whose evaluation fails is left in the graph for
the importer to report.  The folded model computes the same function as the original: the same
values, computed earlier.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: ops folded when all their inputs are known constants (shape arithmetic and small tensors)
FOLDABLE = frozenset({
    "Constant", "Shape", "Size", "Gather", "Slice", "Concat", "Cast", "Unsqueeze", "Squeeze",
    "Reshape", "Identity", "Add", "Sub", "Mul", "Div", "Floor", "Ceil", "Neg", "Abs", "Min",
    "Max", "ReduceProd", "ConstantOfShape", "Range", "Equal", "Less", "Greater", "Not", "And",
    "Or", "Where", "Expand",
})
#: the largest tensor (elements) a folded node may read or write
MAX_ELEMS = 4096


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its constant subgraphs replaced by initializers (the same object when
    nothing folds)."""
    g = model.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - the importer reports shape-inference failures itself
        return model
    static = _static_shapes(inferred.graph)
    opset = {(o.domain or ""): o.version for o in model.opset_import}
    known: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer
                                    if _size(i.dims) <= MAX_ELEMS}
    folded: set[int] = set()
    for idx, n in enumerate(g.node):
        if (n.domain or "") not in ("", "ai.onnx") or n.op_type not in FOLDABLE:
            continue
        outs = _evaluate(n, known, static, opset)
        if outs is None:
            continue
        for name, v in zip(n.output, outs):
            if name:
                known[name] = v
        folded.add(idx)
    if not folded:
        return model
    keep = [n for i, n in enumerate(g.node) if i not in folded]
    produced = {o for i in folded for o in g.node[i].output if o}
    needed = {x for n in keep for x in n.input} | {o.name for o in g.output}
    new_inits = [numpy_helper.from_array(np.asarray(known[name]), name)
                 for name in sorted(produced & needed)]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(keep)
    out.graph.initializer.extend(new_inits)
    # value_info of folded values would now describe initializers: drop them
    kept_vi = [vi for vi in out.graph.value_info if vi.name not in produced]
    del out.graph.value_info[:]
    out.graph.value_info.extend(kept_vi)
    return out


def _size(dims) -> int:
    return int(np.prod([int(d) for d in dims])) if len(dims) else 1


def _static_shapes(g) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, for every tensor shape inference knows completely."""
    out = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[vi.name] = tuple(int(d.dim_value) for d in dims)
    for init in g.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def _evaluate(n, known, static, opset) -> list[np.ndarray] | None:
    """The outputs of node ``n`` if they are constants worth folding, else None."""
    if n.op_type in ("Shape", "Size"):
        shape = static.get(n.input[0]) if n.input else None
        if shape is None:
            return None
        if n.op_type == "Size":
            return [np.array(int(np.prod(shape)), dtype=np.int64)]
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        return [np.array(shape[slice(start, end)], dtype=np.int64)]
    ins = [x for x in n.input if x]
    if any(x not in known for x in ins):
        return None
    try:
        from onnx.reference import ReferenceEvaluator
        ev = ReferenceEvaluator(n, opsets={"": opset.get("", 13)})
        outs = ev.run(None, {x: known[x] for x in ins})
    except Exception:  # noqa: BLE001 - left in the graph: the importer names the node
        return None
    outs = [np.asarray(v) for v in outs]
    if any(v.size > MAX_ELEMS for v in outs):
        return None
    return outs
