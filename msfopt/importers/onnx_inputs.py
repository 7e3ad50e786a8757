"""Static input shapes for an ONNX model: ``--input-shape`` fixes its dynamic dims before shape
inference, and a dynamic batch dim with no given shape becomes 1 (with a note).

A given shape must have the input's rank and agree with every dim the file fixes; a batch
other than 1 is refused (the generated C runs one input at a time).
"""
from __future__ import annotations

import onnx

from . import UnsupportedModelError


def fix_input_shapes(model: onnx.ModelProto, shapes: dict | None) -> tuple[onnx.ModelProto, list[str]]:
    """``model`` with static input dims (a copy when anything changed) and the notes to show."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    shapes = dict(shapes or {})
    names = [i.name for i in inputs]
    for key in shapes:
        if key is not None and key not in names:
            raise UnsupportedModelError(f"unsupported ONNX model: --input-shape names input "
                                        f"{key!r}; the model's inputs are "
                                        f"{', '.join(repr(n) for n in names) or 'none'}")
    if None in shapes and len(inputs) != 1:
        raise UnsupportedModelError(f"unsupported ONNX model: --input-shape without a name, but "
                                    f"the model has {len(inputs)} inputs: name each (NAME:DIMS)")
    out = None
    notes: list[str] = []
    for k, inp in enumerate(inputs):
        given = shapes.get(inp.name, shapes.get(None))
        tt = inp.type.tensor_type
        if not tt.HasField("shape"):
            if given is None:
                continue                       # the importer reports the unknown rank
            dims_now = [None] * len(given)
        else:
            dims_now = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                        for d in tt.shape.dim]
        if given is not None:
            if len(given) != len(dims_now):
                raise UnsupportedModelError(
                    f"unsupported ONNX model: --input-shape for input '{inp.name}' has "
                    f"{len(given)} dims, the input has rank {len(dims_now)}")
            for j, (have, want) in enumerate(zip(dims_now, given)):
                if have is not None and have != want:
                    raise UnsupportedModelError(
                        f"unsupported ONNX model: --input-shape for input '{inp.name}': dim {j} "
                        f"is {have} in the file, not {want}")
            if given and given[0] != 1:
                raise UnsupportedModelError(
                    f"unsupported ONNX model: --input-shape for input '{inp.name}': batch "
                    f"{given[0]}, only 1 is supported")
            new = list(given)
        elif dims_now and dims_now[0] is None and all(d is not None for d in dims_now[1:]):
            new = [1] + dims_now[1:]
            d0 = tt.shape.dim[0]
            label = d0.dim_param if d0.HasField("dim_param") and d0.dim_param else "?"
            notes.append(f"input '{inp.name}': dynamic batch dim '{label}' set to 1")
        else:
            continue                           # static, or other dynamic dims: importer says so
        if new == dims_now:
            continue
        if out is None:
            out = onnx.ModelProto()
            out.CopyFrom(model)
        target = [i for i in out.graph.input if i.name == inp.name][0]
        shape = target.type.tensor_type.shape
        del shape.dim[:]
        for v in new:
            shape.dim.add().dim_value = int(v)
    return (out if out is not None else model), notes
