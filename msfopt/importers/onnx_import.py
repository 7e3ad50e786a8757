"""ONNX -> msfopt IR importer.

Supports float models, int8 QDQ models (QuantizeLinear/DequantizeLinear around float ops) and
int8 QOperator models (QLinearConv, QLinearAdd, QLinear(Global)AveragePool, QGemm,
QLinearMatMul, MaxPool/Clip on int8).  uint8 tensors are accepted and converted exactly to the
equivalent int8 representation (q - 128, zero_point - 128).

The graph is a DAG of ops over feature maps (layers may read any earlier tensor; the graph ops
are in :mod:`.onnx_graph_ops`).  Every problem found is collected and reported in ONE line by
:class:`UnsupportedModelError`.

Pooling: GlobalMaxPool is a MAXPOOL whose window is the whole input; MaxPool / AveragePool
``ceil_mode=1`` becomes extra bottom / right padding (an average pool then divides by its valid
taps, which is onnxruntime's count when there are no explicit pads or count_include_pad=0).
An int8 GlobalMaxPool inside a QDQ island whose QuantizeLinear is on another grid than its
input is the max on the input's grid followed by an ACT ``quantize`` requantisation (a MaxPool
stays one MAXPOOL with its own output quantisation, which the int8 C kernel does not yet
requantise).  A Conv with group = C_in and C_out = m C_in (depthwise with a channel multiplier)
is a grouped CONV.  Cast of a constant (fp16 initializers -> float32) is evaluated at import.

Activations: Relu, Clip(0, 6) and Relu followed by Clip(0, 6) fold into the producing layer.  Its
int8 clamp (``act_min`` / ``act_max``) is taken from the original graph: the int values of an
int8 Clip / Relu (QOperator), or QuantizeLinear (round half to even) of the float bounds of a
Clip / Relu that a QuantizeLinear follows (QDQ).  A DequantizeLinear -> AveragePool ->
QuantizeLinear island keeps QuantizeLinear's rounding (``avg_rounding="qdq"``).
"""
from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ..ir import (ADD, add_operand_shapes, AVGPOOL, CONCAT, CONV, DENSE, DW, GAP, MAXPOOL, RESIZE,
                  SHUFFLE, SLICE, Layer, Network, Provenance, Quant, quantize_linear_s8)
from . import UnsupportedModelError, grouped
from .onnx_fold import fold_constants
from .onnx_graph_ops import GRAPH_OPS, GraphOpsMixin
from .onnx_inputs import fix_input_shapes

__all__ = ["load_onnx", "UnsupportedModelError"]

_MS = "com.microsoft"
_STD_OPS = {
    "Conv", "BatchNormalization", "Relu", "Clip", "Add", "MaxPool", "AveragePool",
    "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Gemm",
    "MatMul", "Identity", "Dropout", "Transpose", "QuantizeLinear", "DequantizeLinear",
    "QLinearConv", "QLinearMatMul", "Constant", "GlobalMaxPool", "Cast", "Sub",
} | GRAPH_OPS
_MS_OPS = {"QLinearAdd", "QLinearGlobalAveragePool", "QLinearAveragePool", "QGemm",
           "QLinearConcat"}
#: ops whose output is the same value as their input (a view); they do not "use" a tensor
_VIEW_OPS = {"Identity", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose"}
_QOPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd",
         "QLinearGlobalAveragePool", "QLinearAveragePool", "QGemm", "QLinearConcat"}
_FLT_MAX = 3.0e38


class _NodeError(Exception):
    """A problem with one node (collected, then reported together)."""


# -- value kinds ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Const:
    value: np.ndarray            # raw stored value (integers if quant is set)
    quant: Quant | None = None   # set when value is DequantizeLinear(integer constant)
    qaxis: int | None = None     # ONNX axis of a per-channel quant

    def real(self) -> np.ndarray:
        if self.quant is None:
            return self.value.astype(np.float64)
        s = np.asarray(self.quant.scale)
        z = np.asarray(self.quant.zero_point)
        v = self.value.astype(np.float64)
        if len(s) > 1:
            shp = [1] * v.ndim
            shp[self.qaxis] = -1
            s, z = s.reshape(shp), z.reshape(shp)
        return (v - z) * s


@dataclass(frozen=True)
class _Act:
    """An activation tensor: IR tensor ``tid`` seen through an ONNX layout.

    layout: 'nchw' (4-D), 'nhwc' (raw NHWC graph input), 'flat' ([1, K], ``order`` tells the
    flatten order of the H x W x C map), 'nhwc_out' (transposed back to NHWC for the output),
    'grouped' / 'grouped_t' ([1, g, C/g, H, W] and its transpose [1, C/g, g, H, W] inside a
    channel shuffle).
    kind: 'float' (float model), 'q' (int8 tensor), 'dq' (dequantised int8 tensor),
    'fq' (float result of a QDQ op, still to be quantised).
    """
    tid: int
    shape: tuple[int, int, int]
    layout: str
    kind: str
    order: str = "chw"
    groups: int = 0   # 'grouped' / 'grouped_t' (a channel shuffle under way): the groups


class _Poison:
    """Output of a node that already failed: consumers are skipped silently."""


_POISON = _Poison()


# -- helpers ----------------------------------------------------------------------------------

def _fail(msg: str):
    raise UnsupportedModelError(f"unsupported ONNX model: {msg}")


def _node_name(node) -> str:
    return node.name or (node.output[0] if node.output else "?")


def _node_label(node) -> str:
    return f"node '{_node_name(node)}' ({node.op_type})"


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def _load(path_or_model) -> tuple[onnx.ModelProto, str]:
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, "<ModelProto>"
    try:
        if isinstance(path_or_model, (bytes, bytearray)):
            m = onnx.load_from_string(bytes(path_or_model))
            src = "<bytes>"
        else:
            src = os.fspath(path_or_model)
            m = onnx.load(src)
    except Exception as e:  # noqa: BLE001 -- any parse failure becomes a one-line error
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        _fail(f"cannot read ONNX file {src!s}: {type(e).__name__}: {first}")
    if len(m.graph.node) == 0 and len(m.graph.output) == 0:
        _fail(f"cannot read ONNX file {src!s}: empty or not an ONNX model")
    return m, src


def _same_quant(a: Quant, b: Quant) -> bool:
    return (len(a.scale) == len(b.scale) and a.zero_point == b.zero_point
            and np.allclose(a.scale, b.scale, rtol=1e-6, atol=0.0))


# -- the importer -----------------------------------------------------------------------------

class _Importer(GraphOpsMixin):
    NodeError, Act, Const = _NodeError, _Act, _Const   # for the handler mixins
    same_quant = staticmethod(_same_quant)

    def __init__(self, model: onnx.ModelProto, source: str, name: str | None):
        self.model = model
        self.source = source
        self.name = name
        self.errors: list[str] = []           # model-level problems
        self.node_errors: list[tuple[str, str, str]] = []   # (op type, node name, reason)
        self.vals: dict[str, object] = {}
        self.layers: list[Layer] = []
        self.tq: dict[int, Quant] = {}
        self.qlink: dict[int, set[int]] = {}  # tensors sharing one quantisation (int8 MaxPool)
        self.root: dict[int, str] = {}     # tid -> ONNX name holding its current (folded) value
        self.input_shape: tuple[int, int, int] | None = None
        self.fclip: dict[int, tuple[float, float]] = {}  # tid -> float Clip/Relu bounds (QDQ)
        self.iclip: dict[int, tuple[int, int, str]] = {}  # tid -> int8 Clip/Relu bounds, node
        self.elem: dict[str, int] = {}     # name -> ONNX elem type (from inference)
        self.shapes: dict[str, list] = {}  # name -> dims (ints or str)

    # ---- driver -----------------------------------------------------------------------------
    def run(self) -> Network:
        g = self.model.graph
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model)
        except Exception as e:  # noqa: BLE001
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            _fail(f"shape inference failed: {msg}")
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + \
                list(inferred.graph.output):
            tt = vi.type.tensor_type
            self.elem[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                self.shapes[vi.name] = [d.dim_param if d.HasField("dim_param") or
                                        not d.HasField("dim_value") else d.dim_value
                                        for d in tt.shape.dim]
        for init in g.initializer:
            self.elem[init.name] = init.data_type

        inits = {i.name: i for i in g.initializer}
        inputs = [i for i in g.input if i.name not in inits]
        errs: list[str] = []
        if not 1 <= len(g.output) <= 8:
            errs.append(f"graph has {len(g.output)} outputs, 1 to 8 are supported")
        if len(inputs) != 1:
            errs.append(f"graph has {len(inputs)} inputs, exactly one is supported")
        for i in inputs:
            tt = i.type.tensor_type
            dims = tt.shape.dim if tt.HasField("shape") else []
            if not tt.HasField("shape"):
                errs.append(f"input '{i.name}' has unknown rank")
            for k, d in enumerate(dims):
                if d.HasField("dim_value") and d.dim_value > 0:
                    if k == 0 and d.dim_value != 1:
                        errs.append(f"input '{i.name}' has batch {d.dim_value}, only 1 is supported")
                    continue
                if d.HasField("dim_value"):  # a fixed size 0 (or negative): not dynamic
                    errs.append(f"input '{i.name}' has a zero-size dim (dim {k} is "
                                f"{d.dim_value})")
                    continue
                label = d.dim_param if d.HasField("dim_param") and d.dim_param else "?"
                errs.append(f"input '{i.name}' has dynamic dim '{label}' (fix it with "
                            f"--input-shape)")
        nodes = self._live_nodes(g)
        unsupported = []
        for n in nodes:
            dom = n.domain or ""
            ok = (dom in ("", "ai.onnx") and n.op_type in _STD_OPS) or \
                 (dom == _MS and n.op_type in _MS_OPS)
            if not ok:
                unsupported.append((n.op_type, _node_name(n), "op not supported"))
        if errs or unsupported:
            _fail("; ".join(errs + ([grouped(unsupported)] if unsupported else [])))

        in_et = inputs[0].type.tensor_type.elem_type
        self.quantized = any(n.op_type in _QOPS for n in nodes) or \
            in_et in (TensorProto.INT8, TensorProto.UINT8)
        self.nodes = nodes
        self.by_input: dict[str, list] = {}   # tensor name -> the live nodes reading it
        for n in nodes:
            for x in n.input:
                if x:
                    self.by_input.setdefault(x, []).append(n)
        self.graph_outputs = {o.name for o in g.output}
        self._count_uses(g, nodes)
        for name, init in inits.items():
            self.vals[name] = _Const(numpy_helper.to_array(init))
        self._bind_input(inputs[0], nodes)

        for n in nodes:
            ins = [self.vals.get(x) if x else None for x in n.input]
            if any(v is _POISON for v in ins):
                for o in n.output:
                    self.vals[o] = _POISON
                continue
            missing = [x for x, v in zip(n.input, ins) if x and v is None]
            try:
                if missing:
                    raise _NodeError(f"input '{missing[0]}' is not produced by the graph")
                handler = getattr(self, f"_op_{n.op_type}")
                handler(n, ins, _attrs(n))
            except _NodeError as e:
                self.node_errors.append((n.op_type, _node_name(n), str(e)))
                for o in n.output:
                    self.vals[o] = _POISON
        if self.node_errors:
            self.errors.insert(0, grouped(self.node_errors))
        if self.quantized and 0 not in self.tq and not self.errors:
            # a graph whose int8 input only feeds MaxPools carries no quantisation parameters;
            # the exporter records them in the model metadata
            meta = {p.key: p.value for p in self.model.metadata_props}
            if "msfopt.input_scale" in meta:
                try:
                    self._bind_quant(self.vals[inputs[0].name],
                                     Quant.of(float(meta["msfopt.input_scale"]),
                                              int(meta.get("msfopt.input_zero_point", 0))),
                                     "input")
                except (ValueError, _NodeError) as e:
                    self.errors.append(f"metadata input quantisation: {e}")
        out_tids = []
        for vo in g.output if not self.errors else ():
            out_name = vo.name
            out = self.vals.get(out_name)
            if not isinstance(out, _Act):
                self.errors.append(f"graph output '{out_name}' is not a computed feature map")
            elif not self.layers:
                self.errors.append("network has no layers")
            elif out.tid == 0:
                self.errors.append(f"graph output '{out_name}' is the network input")
            elif out.tid in out_tids:
                self.errors.append(f"graph output '{out_name}' repeats another output")
            elif out.kind == "fq":
                self.errors.append(f"graph output '{out_name}' of a quantised model is not quantised")
            elif out.layout not in ("nchw", "flat", "nhwc_out"):
                self.errors.append(f"graph output '{out_name}' has an unsupported layout")
            else:
                out_tids.append(out.tid)
        if not self.errors and len(self.layers) not in out_tids:
            self.errors.append("the last layer's output is not a graph output")
        if self.quantized and not self.errors:
            for t in range(len(self.layers) + 1):
                if t not in self.tq:
                    who = "the network input" if t == 0 else f"layer '{self.layers[t - 1].name}'"
                    self.errors.append(f"output of {who} has no quantisation parameters")
        if self.quantized and not self.errors:
            self._assign_clamps()
        if self.errors:
            _fail("; ".join(self.errors))

        dtype = "int8" if self.quantized else "float32"
        tensor_quant = [self.tq[t] for t in range(len(self.layers) + 1)] if self.quantized else []
        name = self.name or g.name or (os.path.splitext(os.path.basename(self.source))[0]
                                       if not self.source.startswith("<") else "onnx_model")
        net = Network(name=name, input_shape=self.input_shape, layers=self.layers, dtype=dtype,
                      input_quant=tensor_quant[0] if tensor_quant else None,
                      tensor_quant=tensor_quant, source=self.source,
                      outputs=tuple(out_tids) if len(out_tids) > 1 else ())
        try:
            net.validate()
        except ValueError as e:
            _fail(f"imported network is inconsistent: {e}")
        return net

    def _assign_clamps(self):
        """Every layer's int8 clamp (act_min, act_max), from the ORIGINAL graph: the int values of
        an int8 Clip / Relu, or ONNX QuantizeLinear (round half to even) of the float bounds of a
        Clip / Relu that a QuantizeLinear follows (QDQ)."""
        for k, layer in enumerate(self.layers):
            tid = k + 1
            q = self.tq[tid]
            zp = int(q.zero_point[0])
            lo, hi = -128, 127
            if tid in self.fclip:
                flo, fhi = self.fclip[tid]
                lo = max(lo, quantize_linear_s8(flo, q.scale[0], zp))
                hi = min(hi, quantize_linear_s8(fhi, q.scale[0], zp))
            who = f"layer '{layer.name}'"
            if tid in self.iclip:
                ilo, ihi, who = self.iclip[tid]
                lo, hi = max(lo, ilo), min(hi, ihi)
            if layer.act == "relu" and not (lo == max(-128, zp) and hi == 127) or \
                    layer.act == "relu6" and lo != max(-128, zp):
                self.errors.append(f"{who}: int8 clamp [{lo}, {hi}] is not a {layer.act} of the "
                                   f"real values (output zero point {zp})")
                continue
            layer.act_min, layer.act_max = lo, hi

    # ---- graph analysis ---------------------------------------------------------------------
    @staticmethod
    def _live_nodes(g) -> list:
        """Nodes that contribute to the graph outputs, in a deterministic topological order."""
        producer = {}
        for idx, n in enumerate(g.node):
            for o in n.output:
                if o:
                    producer[o] = idx
        live, stack = set(), [o.name for o in g.output]
        while stack:
            name = stack.pop()
            idx = producer.get(name)
            if idx is None or idx in live:
                continue
            live.add(idx)
            stack.extend(x for x in g.node[idx].input if x)
        deps = {i: {producer[x] for x in g.node[i].input if x in producer and producer[x] in live}
                for i in live}
        users: dict[int, list[int]] = {i: [] for i in live}
        for i, ds in deps.items():
            for d in ds:
                users[d].append(i)
        indeg = {i: len(ds) for i, ds in deps.items()}
        heap = [i for i in live if indeg[i] == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            i = heapq.heappop(heap)
            order.append(i)
            for u in users[i]:
                indeg[u] -= 1
                if indeg[u] == 0:
                    heapq.heappush(heap, u)
        if len(order) != len(live):
            _fail("graph has a cycle")
        return [g.node[i] for i in order]

    def _count_uses(self, g, nodes):
        cons: dict[str, list] = {}
        for n in nodes:
            for x in n.input:
                if x:
                    cons.setdefault(x, []).append(n)
        outs = {o.name for o in g.output}
        memo: dict[str, int] = {}

        def uses(name: str) -> int:
            if name in memo:
                return memo[name]
            u = 1 if name in outs else 0
            for c in cons.get(name, []):
                u += uses(c.output[0]) if c.op_type in _VIEW_OPS else 1
            memo[name] = u
            return u
        self._uses = uses

    def _foldable(self, act: _Act, what: str) -> Layer:
        """The layer producing ``act`` if ``what`` may be folded into it (sole use of its value)."""
        if act.tid == 0:
            raise _NodeError(f"{what} applied to the network input cannot be folded into a layer")
        if self._uses(self.root[act.tid]) != 1:
            raise _NodeError(f"{what} cannot be folded: its input is also used elsewhere")
        return self.layers[act.tid - 1]

    def _bind_input(self, vi, nodes):
        tt = vi.type.tensor_type
        dims = [d.dim_value for d in tt.shape.dim]
        kind = self._kind_of_type(tt.elem_type, f"input '{vi.name}'")
        if len(dims) == 4:
            # NHWC if the input (through Q/DQ/Identity) reaches a Transpose(0,3,1,2)
            nhwc, name = False, vi.name
            by_input: dict[str, list] = {}
            for n in nodes:
                for x in n.input:
                    by_input.setdefault(x, []).append(n)
            seen = 0
            while seen < 8:
                seen += 1
                cs = by_input.get(name, [])
                if len(cs) != 1:
                    break
                c = cs[0]
                if c.op_type == "Transpose":
                    nhwc = list(_attrs(c).get("perm", [])) == [0, 3, 1, 2]
                    break
                if c.op_type not in ("QuantizeLinear", "DequantizeLinear", "Identity"):
                    break
                name = c.output[0]
            if nhwc:
                shape = (dims[1], dims[2], dims[3])
                self.vals[vi.name] = _Act(0, shape, "nhwc", kind)
            else:
                shape = (dims[2], dims[3], dims[1])
                self.vals[vi.name] = _Act(0, shape, "nchw", kind)
        elif len(dims) == 2:
            shape = (1, 1, dims[1])
            self.vals[vi.name] = _Act(0, shape, "flat", kind, order="hwc")
        else:
            _fail(f"input '{vi.name}' has rank {len(dims)}, expected 4 (NCHW/NHWC) or 2")
        self.input_shape = shape
        self.root[0] = vi.name

    def _kind_of_type(self, et: int, what: str) -> str:
        if et == TensorProto.FLOAT:
            return "float"
        if et in (TensorProto.INT8, TensorProto.UINT8):
            return "q"
        _fail(f"{what} has element type {TensorProto.DataType.Name(et)}; float, int8 or uint8 "
              "expected")

    # ---- small accessors --------------------------------------------------------------------
    @staticmethod
    def _act(v, what="input") -> _Act:
        if not isinstance(v, _Act):
            raise _NodeError(f"{what} must be a feature map, got a constant")
        return v

    @staticmethod
    def _const(v, what="parameter") -> _Const:
        if not isinstance(v, _Const):
            raise _NodeError(f"{what} must be a constant (initializer)")
        return v

    def _new_tensor(self, layer: Layer, out_name: str, layout: str, kind: str,
                    quant: Quant | None = None, order: str = "chw") -> _Act:
        self.layers.append(layer)
        tid = len(self.layers)
        if not layer.name:
            layer.name = out_name
        self.root[tid] = out_name
        if quant is not None:
            self.tq[tid] = quant
        act = _Act(tid, layer.out_shape, layout, kind, order)
        self.vals[out_name] = act
        return act

    def _check_inferred(self, name: str, act: _Act):
        dims = self.shapes.get(name)
        if dims is None or any(not isinstance(d, int) for d in dims):
            return
        h, w, c = act.shape
        exp = {"nchw": [1, c, h, w], "nhwc": [1, h, w, c], "nhwc_out": [1, h, w, c],
               "flat": [1, h * w * c]}[act.layout]
        if list(dims) != exp:
            raise _NodeError(f"computed shape {exp} disagrees with ONNX shape inference {dims}")

    def _scale_zp(self, scale_v, zp_v, what: str, per_tensor=True, tensor: str = "") -> Quant:
        s = self._const(scale_v, f"{what} scale").value.astype(np.float64).reshape(-1)
        if zp_v is None:
            z = np.zeros(s.shape, np.int64)
            # without a zero point the integer type is the tensor's (QuantizeLinear: uint8)
            u8 = self.elem.get(tensor, TensorProto.UINT8) == TensorProto.UINT8
        else:
            zc = self._const(zp_v, f"{what} zero point").value
            u8 = zc.dtype == np.uint8
            if zc.dtype not in (np.int8, np.uint8, np.int32):
                raise _NodeError(f"{what} zero point has unsupported type {zc.dtype}")
            z = zc.astype(np.int64).reshape(-1)
        if u8:
            z = z - 128
        if per_tensor and s.size != 1:
            raise _NodeError(f"{what} must be quantised per tensor")
        try:
            return Quant.of(s, z)
        except ValueError as e:
            raise _NodeError(f"{what}: {e}") from None

    def _bind_quant(self, act: _Act, q: Quant, what: str):
        if len(q.scale) != 1:
            raise _NodeError(f"{what}: activations must be quantised per tensor")
        old = self.tq.get(act.tid)
        if old is None:
            for t in self._linked(act.tid):
                self.tq[t] = q
        elif not _same_quant(old, q):
            raise _NodeError(f"{what}: quantisation {q.scale[0]:g}/{q.zero_point[0]} differs from "
                             f"the tensor's {old.scale[0]:g}/{old.zero_point[0]} (requantisation "
                             "is not supported)")

    def _linked(self, tid: int) -> set[int]:
        seen, stack = {tid}, [tid]
        while stack:
            for u in self.qlink.get(stack.pop(), ()):
                if u not in seen:
                    seen.add(u)
                    stack.append(u)
        return seen

    def _in_quant(self, act: _Act, what: str) -> Quant:
        q = self.tq.get(act.tid)
        if q is None:
            raise _NodeError(f"{what}: quantisation of the input is unknown")
        return q

    def _data_kind(self, acts: list[_Act]) -> str:
        """Kind of the result of a float-domain op on ``acts``; enforces quantised inputs."""
        kinds = {a.kind for a in acts}
        if self.quantized:
            if kinds <= {"dq"}:
                return "fq"
            if kinds <= {"q"}:
                return "q"
            raise _NodeError("float op on a non-dequantised tensor in a quantised model "
                             "(mixed float/int8 graphs are not supported)")
        return "float"

    # ---- geometry ---------------------------------------------------------------------------
    @staticmethod
    def _window(a: dict, h: int, w: int, kh: int, kw: int, pool: bool,
                ceil_extra: list | None = None):
        if "kernel_shape" in a and list(a["kernel_shape"]) != [kh, kw]:
            raise _NodeError(f"kernel_shape {list(a['kernel_shape'])} does not match the weight")
        dil = [int(d) for d in a.get("dilations", [1, 1])]
        if len(dil) != 2 or min(dil) < 1:
            raise _NodeError(f"dilations {dil} not supported (2-D, >= 1)")
        if pool and dil != [1, 1]:
            raise _NodeError(f"pooling with dilations {dil} not supported")
        kh, kw = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1   # the rows / columns spanned
        sh, sw = (list(a.get("strides", [1, 1])) + [1, 1])[:2]
        if len(a.get("strides", [1, 1])) != 2:
            raise _NodeError("only 2-D windows are supported")
        auto = _s(a.get("auto_pad", "NOTSET"))
        if auto in ("", "NOTSET"):
            p = list(a.get("pads", [0, 0, 0, 0]))
            if len(p) != 4:
                raise _NodeError("only 2-D windows are supported")
            pad = (p[0], p[1], p[2], p[3])
        elif auto == "VALID":
            pad = (0, 0, 0, 0)
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            res = []
            for size, k, s in ((h, kh, sh), (w, kw, sw)):
                out = -(-size // s)
                total = max((out - 1) * s + k - size, 0)
                small, big = total // 2, total - total // 2
                res.append((small, big) if auto == "SAME_UPPER" else (big, small))
            pad = (res[0][0], res[1][0], res[0][1], res[1][1])
        else:
            raise _NodeError(f"auto_pad {auto!r} not supported")
        if min(pad) < 0:
            raise _NodeError("negative padding not supported")
        if max(pad[0], pad[2]) >= kh or max(pad[1], pad[3]) >= kw:
            raise _NodeError(f"padding {list(pad)} must be smaller than the (dilated) kernel "
                             f"{kh}x{kw}")
        if pool and a.get("ceil_mode", 0):
            # ceil_mode: one more window where the last one would start inside the input or its
            # leading padding (ONNX / PyTorch rule); it is padding at the bottom / right.  A max
            # pool ignores padding taps; an average pool then divides by the valid taps only
            # (the caller checks count_include_pad, ``ceil_extra`` receives the extra rows /
            # columns).
            extra = []
            for size, k, s, p0, p1 in ((h, kh, sh, pad[0], pad[2]), (w, kw, sw, pad[1], pad[3])):
                span = size + p0 + p1 - k
                out = -(-span // s) + 1
                if (out - 1) * s >= size + p0:
                    out -= 1
                extra.append((out - 1) * s + k - (size + p0 + p1))
            if ceil_extra is not None:
                ceil_extra[:] = [max(0, e) for e in extra]
            pad = (pad[0], pad[1], pad[2] + max(0, extra[0]), pad[3] + max(0, extra[1]))
            if max(pad[0], pad[2]) >= kh or max(pad[1], pad[3]) >= kw:
                raise _NodeError(f"ceil_mode padding {list(pad)} reaches the kernel size")
        ho = (h + pad[0] + pad[2] - kh) // sh + 1
        wo = (w + pad[1] + pad[3] - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise _NodeError("window larger than the padded input")
        return (sh, sw), pad, (ho, wo)

    @staticmethod
    def _need4d(act: _Act) -> _Act:
        if act.layout != "nchw":
            raise _NodeError(f"expects an NCHW feature map, got layout '{act.layout}'")
        return act

    # ---- constants & views ------------------------------------------------------------------
    def _op_Constant(self, n, ins, a):
        if "value" not in a:
            raise _NodeError("only Constant(value=tensor) is supported")
        self.vals[n.output[0]] = _Const(numpy_helper.to_array(a["value"]))

    def _alias(self, n, v):
        self.vals[n.output[0]] = v

    def _op_Identity(self, n, ins, a):
        self._alias(n, ins[0])

    def _op_Dropout(self, n, ins, a):
        if len(n.output) > 1 and n.output[1]:
            raise _NodeError("Dropout mask output not supported")
        self._alias(n, ins[0])

    def _op_Transpose(self, n, ins, a):
        x = ins[0]
        perm = list(a.get("perm", []))
        if isinstance(x, _Const):
            self.vals[n.output[0]] = _Const(np.transpose(x.value, perm or None))
            return
        shuffled = self.grouped_transpose(x, perm)
        if shuffled is not None:
            self._alias(n, shuffled)
        elif perm == [0, 3, 1, 2] and x.layout == "nhwc":
            self._alias(n, _Act(x.tid, x.shape, "nchw", x.kind))
        elif perm == [0, 2, 3, 1] and x.layout == "nchw":
            self._alias(n, _Act(x.tid, x.shape, "nhwc_out", x.kind))
        elif perm == list(range(len(perm))):
            self._alias(n, x)
        else:
            raise _NodeError(f"Transpose perm {perm} on layout '{x.layout}' not supported (only an "
                             "NHWC input followed by Transpose(0,3,1,2))")

    def _reshape_like(self, n, x):
        x = self._act(x)
        h, w, c = x.shape
        dims = self.shapes.get(n.output[0])
        if n.op_type == "Flatten":
            ax = _attrs(n).get("axis", 1)
            if ax < 0:
                ax += 4 if x.layout != "flat" else 2
            dims = [1, h * w * c] if ax in (0, 1) else None
            if dims is None:
                raise _NodeError(f"Flatten axis {ax} not supported")
        if dims is None or any(not isinstance(d, int) for d in dims):
            raise _NodeError("output shape is unknown (shape inference could not resolve it)")
        dims = list(dims)
        grouped_view = self.grouped_view(x, dims)
        if grouped_view is not None:
            self._alias(n, grouped_view)
        elif self.shuffle_from(n, x, dims) is not None:
            pass
        elif len(dims) == 2 and dims == [1, h * w * c]:
            if x.layout == "nchw":
                order = "chw"
            elif x.layout == "flat":
                order = x.order
            elif x.layout == "nhwc":
                order = "hwc"
            else:
                raise _NodeError(f"cannot flatten layout '{x.layout}'")
            if h * w == 1 or c == 1:
                order = "hwc"  # both orders coincide
            self._alias(n, _Act(x.tid, x.shape, "flat", x.kind, order))
        elif len(dims) == 4 and dims == [1, c, h, w] and (x.layout == "nchw" or
                                                          (x.layout == "flat" and h == w == 1)):
            self._alias(n, _Act(x.tid, x.shape, "nchw", x.kind))
        else:
            raise _NodeError(f"reshape of a {x.layout} map {[h, w, c]} (HWC) to {dims} not "
                             "supported (only flattening to [1, C] before a dense layer)")

    def _op_Flatten(self, n, ins, a):
        self._reshape_like(n, ins[0])

    def _op_Reshape(self, n, ins, a):
        if isinstance(ins[0], _Const):
            raise _NodeError("Reshape of a constant not supported")
        self._reshape_like(n, ins[0])

    _op_Squeeze = _op_Reshape
    _op_Unsqueeze = _op_Reshape

    # ---- quantisation ops -------------------------------------------------------------------
    def _op_QuantizeLinear(self, n, ins, a):
        x = ins[0]
        q = self._scale_zp(ins[1], ins[2] if len(ins) > 2 else None, "QuantizeLinear",
                           per_tensor=True, tensor=n.output[0])
        if isinstance(x, _Const):
            raise _NodeError("QuantizeLinear of a constant not supported (store int8 weights)")
        if x.kind == "fq" or (x.kind == "float" and x.tid == 0):
            if x.tid > 0:
                self._foldable(x, "QuantizeLinear")
            self._bind_quant(x, q, "QuantizeLinear")
            self.root[x.tid] = n.output[0]
        elif x.kind == "dq":
            self._bind_quant(x, q, "QuantizeLinear")  # Q(DQ(x)) with the same params: no-op
        else:
            raise _NodeError(f"QuantizeLinear of a '{x.kind}' tensor not supported")
        self._alias(n, _Act(x.tid, x.shape, x.layout, "q", x.order))

    def _op_DequantizeLinear(self, n, ins, a):
        x = ins[0]
        zp = ins[2] if len(ins) > 2 else None
        if isinstance(x, _Const):
            v = x.value
            if v.dtype not in (np.int8, np.uint8, np.int32):
                raise _NodeError(f"DequantizeLinear of a {v.dtype} constant not supported")
            s = self._const(ins[1], "scale").value.astype(np.float64).reshape(-1)
            if zp is None:
                z = np.zeros(s.shape, np.int64)
            else:
                z = self._const(zp, "zero point").value.astype(np.int64).reshape(-1)
            if v.dtype == np.uint8:
                v = (v.astype(np.int16) - 128).astype(np.int8)
                z = z - 128
            axis = None
            if s.size > 1:
                axis = a.get("axis", 1)
                if axis < 0:
                    axis += v.ndim
            try:
                quant = Quant.of(s, z, axis)
            except ValueError as e:
                raise _NodeError(str(e)) from None
            self.vals[n.output[0]] = _Const(v, quant, axis)
            return
        if x.kind != "q":
            raise _NodeError(f"DequantizeLinear of a '{x.kind}' tensor")
        q = self._scale_zp(ins[1], zp, "DequantizeLinear", per_tensor=True, tensor=n.input[0])
        self._bind_quant(x, q, "DequantizeLinear")
        self._alias(n, _Act(x.tid, x.shape, x.layout, "dq", x.order))

    # ---- activations ------------------------------------------------------------------------
    def _set_act(self, n, x: _Act, act: str, fbounds=None, ibounds=None):
        """Fold a ReLU (act "relu") or ReLU6 ("relu6") into the producing layer.  Relu then
        Clip(0, 6) (or the reverse) is ReLU6.  ``fbounds``: the float bounds of a float-domain
        Clip / Relu (quantised later by the QuantizeLinear that follows, QDQ); ``ibounds``: the
        int8 bounds of a Clip / Relu on an int8 tensor (QOperator).  A float Relu / Clip that
        cannot fold (the network input, a tensor also read elsewhere, a concat / slice /
        shuffle, which have no clamp) becomes a standalone clip layer."""
        if x.kind == "float" and (x.tid == 0 or self._uses(self.root[x.tid]) != 1 or
                                  self.layers[x.tid - 1].op in (CONCAT, SLICE, SHUFFLE)):
            lo, hi = fbounds if fbounds is not None else (0.0, np.inf)
            self.standalone_clip(n, x, lo, min(hi, _FLT_MAX))
            return
        layer = self._foldable(x, n.op_type)
        if x.kind != "float" and layer.op in (CONCAT, SLICE, SHUFFLE, RESIZE):
            raise _NodeError(f"int8 {n.op_type} after a {layer.op} (a copy of int8 values has no "
                             "clamp) not supported")
        if layer.act != "none":
            act = "relu6" if "relu6" in (layer.act, act) else "relu"
        tid = x.tid
        if fbounds is not None and self.quantized:
            old = self.fclip.get(tid, (-np.inf, np.inf))
            self.fclip[tid] = (max(old[0], fbounds[0]), min(old[1], fbounds[1]))
        if ibounds is not None:
            old = self.iclip.get(tid, (-128, 127, _node_label(n)))
            self.iclip[tid] = (max(old[0], ibounds[0]), min(old[1], ibounds[1]), _node_label(n))
        layer.act = act
        self.root[x.tid] = n.output[0]
        self._alias(n, x)

    def _op_Relu(self, n, ins, a):
        x = self._act(ins[0])
        if x.kind == "q":  # max(q, 0) on the integers
            self._set_act(n, x, "relu", ibounds=(0, 127))
        else:
            self._set_act(n, x, "relu", fbounds=(0.0, np.inf))

    def _clip_bound(self, v, what: str):
        c = self._const(v, what)
        if c.value.size != 1:
            raise _NodeError(f"{what} must be a scalar")
        if c.value.dtype == np.uint8:  # a uint8 tensor's bound, on the int8 grid
            return int(c.value.reshape(-1)[0]) - 128
        return c.value.reshape(-1)[0].item()

    def _op_Clip(self, n, ins, a):
        x = self._act(ins[0])
        if "min" in a or "max" in a:  # opset < 11
            lo, hi = a.get("min", -_FLT_MAX), a.get("max", _FLT_MAX)
        else:
            lo = self._clip_bound(ins[1], "Clip min") if len(ins) > 1 and ins[1] is not None \
                else None
            hi = self._clip_bound(ins[2], "Clip max") if len(ins) > 2 and ins[2] is not None \
                else None
        if x.kind == "q":
            q = self._in_quant(x, "Clip")
            zp, s = q.zero_point[0], q.scale[0]
            lo = -128 if lo is None else int(lo)
            hi = 127 if hi is None else int(hi)
            if not (lo == zp or (lo <= -128 and zp <= -128)):
                raise _NodeError(f"int8 Clip min {lo} is not the zero point {zp} (not a ReLU)")
            six = 6.0 / s  # the graph's own int bound is kept; 6 / scale only names it
            hint = "act=relu6" in (n.doc_string or "")
            if hi >= 127:
                act = "relu6" if hint and zp + six >= 126.5 else "relu"
            elif abs((hi - zp) - six) <= 0.5 + 1e-5 * max(1.0, six):
                act = "relu6"
            else:
                raise _NodeError(f"int8 Clip max {hi} is neither 127 nor 6.0 quantised "
                                 f"({zp} + 6 / {s:g} = {zp + six:.3f})")
            self._set_act(n, x, act, ibounds=(max(lo, -128), min(hi, 127)))
            return
        lo = -np.inf if lo is None else float(lo)
        hi = np.inf if hi is None else float(hi)
        if lo != 0.0:
            raise _NodeError(f"Clip({lo:g}, {hi:g}) is not ReLU/ReLU6")
        if hi >= _FLT_MAX:
            act, hi = "relu", np.inf
        elif abs(hi - 6.0) < 1e-6:
            act = "relu6"
        else:
            raise _NodeError(f"Clip(0, {hi:g}) is not ReLU/ReLU6")
        self._set_act(n, x, act, fbounds=(lo, hi))

    # ---- conv family ------------------------------------------------------------------------
    def _conv_layer(self, n, x: _Act, w_oihw: np.ndarray, a: dict) -> Layer:
        x = self._need4d(x)
        h, wd, c = x.shape
        if w_oihw.ndim != 4:
            raise _NodeError("only 2-D convolutions are supported")
        cout, cin_g, kh, kw = w_oihw.shape
        groups = int(a.get("group", 1))
        if cin_g * groups != c or cout % groups:
            raise _NodeError(f"weight {list(w_oihw.shape)} with group {groups} does not match "
                             f"{c} input channels")
        stride, pad, (ho, wo) = self._window(a, h, wd, kh, kw, pool=False)
        op = DW if groups == c == cout and groups > 1 else CONV
        dil = tuple(int(d) for d in a.get("dilations", [1, 1]))
        return Layer(op=op, in_shape=(h, wd, c), out_shape=(ho, wo, cout), kernel=(kh, kw),
                     stride=stride, pad=pad, groups=groups, srcs=(x.tid,), name=n.name or "",
                     dilation=dil)

    def _int_bias(self, b, in_q: Quant, w_q: Quant, cout: int) -> np.ndarray | None:
        if b is None:
            return None
        b = self._const(b, "bias")
        acc_scale = np.asarray(in_q.scale[0]) * np.asarray(w_q.scale)
        acc_scale = np.broadcast_to(acc_scale, (cout,))
        if b.quant is not None and b.value.dtype == np.int32 and \
                np.allclose(np.broadcast_to(np.asarray(b.quant.scale), (cout,)), acc_scale,
                            rtol=1e-5) and all(z == 0 for z in b.quant.zero_point):
            return b.value.astype(np.int32).reshape(cout)
        real = b.real().reshape(-1)
        if real.size != cout:
            raise _NodeError(f"bias has {real.size} values, expected {cout}")
        return np.clip(np.round(real / acc_scale), -2**31, 2**31 - 1).astype(np.int32)

    def _op_Conv(self, n, ins, a):
        x = self._act(ins[0])
        w = self._const(ins[1], "weight")
        b = ins[2] if len(ins) > 2 else None
        kind = self._data_kind([x])
        if kind == "q":
            raise _NodeError("float Conv on an int8 tensor")
        layer = self._conv_layer(n, x, w.value, a)
        cout = layer.out_shape[2]
        if kind == "fq":
            if w.quant is None or w.value.dtype != np.int8:
                raise _NodeError("weights of a quantised Conv must be DequantizeLinear(int8)")
            if w.quant.per_channel and w.qaxis != 0:
                raise _NodeError(f"per-channel weight quantisation on axis {w.qaxis} (expected 0)")
            layer.weight = np.ascontiguousarray(w.value.transpose(0, 2, 3, 1))
            layer.w_quant = Quant.of(w.quant.scale, w.quant.zero_point,
                                     0 if w.quant.per_channel else None)
            layer.bias = self._int_bias(b, self._in_quant(x, "Conv"), layer.w_quant, cout)
        else:
            if w.quant is not None:
                raise _NodeError("quantised weights in a float model")
            layer.weight = np.ascontiguousarray(w.real().transpose(0, 2, 3, 1)).astype(np.float32)
            if b is not None:
                layer.bias = self._const(b, "bias").real().reshape(cout).astype(np.float32)
        out = self._new_tensor(layer, n.output[0], "nchw", kind)
        self._check_inferred(n.output[0], out)

    def _op_QLinearConv(self, n, ins, a):
        ins = list(ins) + [None] * (9 - len(ins))
        x = self._act(ins[0])
        if x.kind != "q":
            raise _NodeError("QLinearConv input must be an int8 tensor")
        xq = self._scale_zp(ins[1], ins[2], "x", tensor=n.input[0])
        self._bind_quant(x, xq, "QLinearConv x")
        w = self._const(ins[3], "weight")
        wv = w.value
        ws = self._const(ins[4], "w_scale").value.astype(np.float64).reshape(-1)
        wz = self._const(ins[5], "w_zero_point").value
        wz64 = wz.astype(np.int64).reshape(-1)
        if wv.dtype == np.uint8:
            wv = (wv.astype(np.int16) - 128).astype(np.int8)
            wz64 = wz64 - 128
        elif wv.dtype != np.int8:
            raise _NodeError(f"weight type {wv.dtype} not supported")
        yq = self._scale_zp(ins[6], ins[7], "y", tensor=n.output[0])
        layer = self._conv_layer(n, x, wv, a)
        cout = layer.out_shape[2]
        layer.weight = np.ascontiguousarray(wv.transpose(0, 2, 3, 1))
        try:
            layer.w_quant = Quant.of(ws, wz64, 0 if ws.size > 1 else None)
        except ValueError as e:
            raise _NodeError(f"weight quantisation: {e}") from None
        if ins[8] is not None:
            bv = self._const(ins[8], "bias").value
            if bv.dtype != np.int32:
                raise _NodeError("QLinearConv bias must be int32")
            layer.bias = bv.reshape(cout).astype(np.int32)
        out = self._new_tensor(layer, n.output[0], "nchw", "q", quant=yq)
        self._check_inferred(n.output[0], out)

    def _op_BatchNormalization(self, n, ins, a):
        x = self._act(ins[0])
        if a.get("training_mode", 0):
            raise _NodeError("training-mode BatchNormalization not supported")
        if x.kind != "float":
            raise _NodeError("BatchNormalization in a quantised model must be folded beforehand")
        eps = float(a.get("epsilon", 1e-5))
        if x.tid == 0 or self._uses(self.root[x.tid]) != 1 or \
                self.layers[x.tid - 1].op not in (CONV, DW) or self.layers[x.tid - 1].act != "none":
            self.standalone_batchnorm(n, x, ins, eps)   # no conv to fold into
            return
        layer = self._foldable(x, "BatchNormalization")
        gamma, beta, mean, var = (self._const(v).real().reshape(-1) for v in ins[1:5])
        eps = float(a.get("epsilon", 1e-5))
        k = gamma / np.sqrt(var + eps)
        w = layer.weight.astype(np.float64) * k[:, None, None, None]
        b = layer.bias.astype(np.float64) if layer.bias is not None else np.zeros_like(k)
        layer.weight = w.astype(np.float32)
        layer.bias = ((b - mean) * k + beta).astype(np.float32)
        self.root[x.tid] = n.output[0]
        self._alias(n, x)

    # ---- add --------------------------------------------------------------------------------
    def _add_layer(self, n, x: _Act, y: _Act, broadcast: bool = False, sub: bool = False,
                   ordered: bool = False) -> Layer:
        """ADD of feature maps x and y (``sub``: x - y).  ``broadcast``: one of them may be an
        NCHW [1, C, 1, 1] (one value per channel), [1, 1, H, W] (one per pixel) or [1, 1, 1, 1]
        map, numpy-broadcast over the other: it becomes the layer's src2 (a subtraction whose
        minuend broadcasts sets ``rsub``).  ``ordered`` (QLinearAdd, whose float arithmetic is
        not symmetric in its inputs): ``rsub`` is set when x, the node's first input A, is the
        earlier of two same-shaped maps (src2).  A broadcast A: onnxruntime runs a scalar A in
        its span kernel with the operands swapped, so (map, scalar) is the arithmetic's order;
        a per-channel or per-pixel A is refused (which operand onnxruntime treats as a scalar
        span depends on the layout its graph optimiser gives the add: NCHW or NHWC)."""
        what = n.op_type
        if broadcast and x.shape != y.shape and x.layout == y.layout == "nchw":
            out = tuple(max(u, v) for u, v in zip(x.shape, y.shape))
            big, small = (x, y) if x.shape == out else (y, x)
            if big.shape != out or small.shape not in add_operand_shapes(*out):
                raise _NodeError(f"{what} of maps {x.shape} and {y.shape} (HWC) does not "
                                 "broadcast (one value per channel, per pixel, or one value)")
            if ordered and small is x and small.shape != (1, 1, 1):
                raise _NodeError(f"{what} whose first input A broadcasts (one value per "
                                 f"{'channel' if small.shape[:2] == (1, 1) else 'pixel'}): "
                                 "onnxruntime's rounding then depends on the layout its graph "
                                 "optimiser picks; give the broadcast tensor as input B")
            return Layer(op=ADD, in_shape=big.shape, out_shape=big.shape,
                         srcs=(big.tid, small.tid), name=n.name or "", sub=sub,
                         rsub=sub and big is y)
        if x.layout != y.layout or x.shape != y.shape or (x.layout == "flat" and x.order != y.order
                                                          and x.shape[0] * x.shape[1] > 1):
            raise _NodeError(f"{what} of tensors with different shapes/layouts {x.shape} and "
                             f"{y.shape} (broadcasting) not supported")
        if x.layout not in ("nchw", "flat"):
            raise _NodeError(f"{what} on layout '{x.layout}' not supported")
        if x.tid == y.tid:
            raise _NodeError(f"{what} of a tensor with itself not supported")
        if sub:   # operand order is the arithmetic's
            return Layer(op=ADD, in_shape=x.shape, out_shape=x.shape, srcs=(x.tid, y.tid),
                         name=n.name or "", sub=True)
        main, skip = (x, y) if x.tid > y.tid else (y, x)
        return Layer(op=ADD, in_shape=main.shape, out_shape=main.shape, srcs=(main.tid,
                     skip.tid), name=n.name or "", rsub=ordered and main is y)

    def _op_Add(self, n, ins, a):
        x, y = ins[0], ins[1]
        if isinstance(x, _Const) and isinstance(y, _Act):
            x, y = y, x
        x = self._act(x)
        if isinstance(y, _Const):  # bias add after Conv / MatMul / Gemm (float)
            if x.kind != "float":
                raise _NodeError("Add of a constant in a quantised model not supported")
            layer = self._foldable(x, "bias Add")
            if layer.op not in (CONV, DW, DENSE) or layer.act != "none":
                raise _NodeError("constant Add must follow a conv/dense layer")
            cout = layer.out_shape[2]
            v = y.real()
            if v.size != cout or (x.layout == "nchw" and v.ndim == 4 and v.shape[1] != cout) or \
                    (x.layout == "nchw" and v.ndim in (1, 2) and cout > 1):
                raise _NodeError(f"constant Add of shape {list(v.shape)} is not a per-channel bias")
            b = layer.bias.astype(np.float64) if layer.bias is not None else np.zeros(cout)
            layer.bias = (b + v.reshape(cout)).astype(np.float32)
            self.root[x.tid] = n.output[0]
            self._alias(n, x)
            return
        self._binary_add(n, x, y, sub=False)

    def _binary_add(self, n, x, y, sub: bool):
        """Add / Sub of two feature maps (float, or DQ -> op -> Q: ``qdq``), numpy broadcasting
        of a per-channel / per-pixel / scalar operand."""
        kind = self._data_kind([x, y])
        if kind == "q":
            raise _NodeError(f"float {n.op_type} on int8 tensors")
        layer = self._add_layer(n, x, y, broadcast=True, sub=sub)
        # DQ -> Add -> Q: onnxruntime runs the Add in float32 on the dequantised inputs (it
        # does not fuse it into QLinearAdd), whose rounding the code generator reproduces
        layer.qdq = kind == "fq"
        big = x if x.tid == layer.src else y
        out = self._new_tensor(layer, n.output[0], big.layout, kind, order=big.order)
        self._check_inferred(n.output[0], out)

    def _op_Sub(self, n, ins, a):
        """Sub of two feature maps (x - y; either may broadcast per channel / pixel)."""
        x, y = ins[0], ins[1]
        if isinstance(x, _Const) or isinstance(y, _Const):
            raise _NodeError("Sub of a constant not supported (only of two feature maps)")
        self._binary_add(n, self._act(x), self._act(y), sub=True)

    def _op_QLinearAdd(self, n, ins, a):
        x, y = self._act(ins[0]), self._act(ins[3])
        if x.kind != "q" or y.kind != "q":
            raise _NodeError("QLinearAdd inputs must be int8 tensors")
        self._bind_quant(x, self._scale_zp(ins[1], ins[2], "A", tensor=n.input[0]), "QLinearAdd A")
        self._bind_quant(y, self._scale_zp(ins[4], ins[5], "B", tensor=n.input[3]), "QLinearAdd B")
        cq = self._scale_zp(ins[6], ins[7] if len(ins) > 7 else None, "C", tensor=n.output[0])
        layer = self._add_layer(n, x, y, broadcast=True, ordered=True)
        big = x if x.tid == layer.src else y
        out = self._new_tensor(layer, n.output[0], big.layout, "q", quant=cq, order=big.order)
        self._check_inferred(n.output[0], out)

    # ---- pooling ----------------------------------------------------------------------------
    def _pool(self, n, x: _Act, a: dict, op: str) -> Layer:
        x = self._need4d(x)
        h, w, c = x.shape
        ks = list(a.get("kernel_shape", []))
        if len(ks) != 2:
            raise _NodeError("kernel_shape must have 2 entries")
        if a.get("storage_order", 0):
            raise _NodeError("storage_order=1 not supported")
        extra: list = []
        stride, pad, (ho, wo) = self._window(a, h, w, ks[0], ks[1], pool=True,
                                                ceil_extra=extra)
        cip = op == AVGPOOL and bool(a.get("count_include_pad", 0))
        if cip and any(extra):
            if any(pad[:2]) or pad[2] != extra[0] or pad[3] != extra[1]:
                raise _NodeError("AveragePool ceil_mode=1 with count_include_pad=1 and explicit "
                                 "pads not supported (the divisor would count the pads but not "
                                 "the ceil_mode extension)")
            # no explicit pads: every tap onnxruntime counts is a valid one (it never counts
            # the ceil_mode extension), so count_include_pad is moot
            cip = False
        return Layer(op=op, in_shape=(h, w, c), out_shape=(ho, wo, c), kernel=(ks[0], ks[1]),
                     stride=stride, pad=pad, groups=1, srcs=(x.tid,), name=n.name or "",
                     count_include_pad=cip)

    def _op_MaxPool(self, n, ins, a):
        """MaxPool (and GlobalMaxPool).  Inside a QDQ island the max is taken on the input's
        grid and then requantised by an ACT quantize when the QuantizeLinear's grid differs: the
        int8 max pool kernel compares and copies, it cannot move values to another grid."""
        if len(n.output) > 1 and n.output[1]:
            raise _NodeError("MaxPool indices output not supported")
        x = self._act(ins[0])
        kind = self._data_kind([x])
        layer = self._pool(n, x, a, MAXPOOL)
        cons = self.by_input.get(n.output[0], [])
        if kind == "fq" and cons and \
                all(c.op_type == "QuantizeLinear" for c in cons):
            # DQ -> MaxPool -> Q: the max on the input's grid, then requantised to the Q's if
            # that differs (exact: Q(DQ(.)) is monotone, so it commutes with max)
            yq = self.qdq_out_quant(n.output[0])
            pooled = self._new_tensor(layer, n.output[0] + "#max", "nchw", "q",
                                      quant=self._in_quant(x, n.op_type))
            y = self.requant_to(n, pooled, yq)
            self.root[y.tid] = n.output[0]
            out = _Act(y.tid, y.shape, "nchw", "fq")
            self.vals[n.output[0]] = out
            self._check_inferred(n.output[0], out)
            return
        q = self.tq.get(x.tid) if kind == "q" else None
        out = self._new_tensor(layer, n.output[0], "nchw", kind, quant=q)
        if kind == "q" and q is None:  # quantisation not known yet: shared with the input
            self.qlink.setdefault(x.tid, set()).add(out.tid)
            self.qlink.setdefault(out.tid, set()).add(x.tid)
        self._check_inferred(n.output[0], out)

    def _op_GlobalMaxPool(self, n, ins, a):
        """GlobalMaxPool = a MAXPOOL whose window is the whole (unpadded) input -> 1 x 1 x C.
        In a QDQ island the max is taken on the input's grid, then requantised to the
        QuantizeLinear's if that differs (exact: Q(DQ(.)) is monotone, so it commutes with max)."""
        x = self._need4d(self._act(ins[0]))
        h, w, _ = x.shape
        self._op_MaxPool(n, ins, dict(kernel_shape=[h, w], strides=[1, 1]))

    def _op_Cast(self, n, ins, a):
        """Cast of a constant (fp16 weights -> float32, index types): evaluated here; a Cast of
        a feature map only when it keeps the element type."""
        to = int(a.get("to", 0))
        x = ins[0]
        if isinstance(x, _Const):
            if x.quant is not None:
                raise _NodeError("Cast of a dequantised constant not supported")
            try:
                dt = onnx.helper.tensor_dtype_to_np_dtype(to)
            except Exception:  # noqa: BLE001 - unknown / non-numeric target type
                raise _NodeError(f"Cast to type {to} not supported") from None
            self.vals[n.output[0]] = _Const(np.asarray(x.value).astype(dt))
            return
        x = self._act(x)
        src_et = self.elem.get(n.input[0])
        if src_et is None or src_et != to:
            raise _NodeError(f"Cast of a feature map to {TensorProto.DataType.Name(to)} not "
                             "supported (only casts of constants, e.g. fp16 weights)")
        self._alias(n, x)

    def _op_AveragePool(self, n, ins, a):
        x = self._act(ins[0])
        kind = self._data_kind([x])
        if kind == "q":
            raise _NodeError("AveragePool on int8 needs requantisation; use QLinearAveragePool")
        layer = self._pool(n, x, a, AVGPOOL)
        if kind == "fq":  # DQ -> AveragePool -> Q: QuantizeLinear's rounding, not QLinear's
            layer.avg_rounding = "qdq"
        out = self._new_tensor(layer, n.output[0], "nchw", kind)
        self._check_inferred(n.output[0], out)

    def _op_QLinearAveragePool(self, n, ins, a):
        x = self._act(ins[0])
        if x.kind != "q":
            raise _NodeError("QLinearAveragePool input must be an int8 tensor")
        if a.get("channels_last", 0):
            raise _NodeError("channels_last=1 not supported")
        self._bind_quant(x, self._scale_zp(ins[1], ins[2], "x", tensor=n.input[0]), "QLinearAveragePool x")
        yq = self._scale_zp(ins[3], ins[4] if len(ins) > 4 else None, "y", tensor=n.output[0])
        layer = self._pool(n, x, a, AVGPOOL)
        self._new_tensor(layer, n.output[0], "nchw", "q", quant=yq)

    def _gap(self, n, x: _Act, kind: str, keep: bool, quant=None):
        if x.layout == "halfmean":
            x = _Act(x.tid, x.shape, "nchw", x.kind)
        x = self._need4d(x)
        h, w, c = x.shape
        layer = Layer(op=GAP, in_shape=(h, w, c), out_shape=(1, 1, c), kernel=(h, w),
                      srcs=(x.tid,), name=n.name or "")
        out = self._new_tensor(layer, n.output[0], "nchw" if keep else "flat", kind, quant=quant,
                               order="hwc")
        self._check_inferred(n.output[0], out)

    def _op_GlobalAveragePool(self, n, ins, a):
        x = self._act(ins[0])
        kind = self._data_kind([x])
        if kind == "q":
            raise _NodeError("GlobalAveragePool on int8; use QLinearGlobalAveragePool")
        self._gap(n, x, kind, True)

    def _op_QLinearGlobalAveragePool(self, n, ins, a):
        x = self._act(ins[0])
        if x.kind != "q":
            raise _NodeError("QLinearGlobalAveragePool input must be an int8 tensor")
        if a.get("channels_last", 0):
            raise _NodeError("channels_last=1 not supported")
        self._bind_quant(x, self._scale_zp(ins[1], ins[2], "x", tensor=n.input[0]), "QLinearGlobalAveragePool x")
        yq = self._scale_zp(ins[3], ins[4] if len(ins) > 4 else None, "y", tensor=n.output[0])
        self._gap(n, x, "q", True, quant=yq)

    def _mean_axes(self, n, ins, a, rank: int) -> list[int]:
        if len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in self._const(ins[1], "axes").value.reshape(-1)]
        else:
            axes = list(a.get("axes", []))
        return sorted(ax + rank if ax < 0 else ax for ax in axes)

    def _op_ReduceMean(self, n, ins, a):
        """ReduceMean over H and W of an NCHW map: GAP.  Float: also two consecutive means, one
        over W (or H) read only by one over the other (PyTorch ``x.mean(3).mean(2)``): one GAP
        (the mean of equal-sized row means is the mean)."""
        x = self._act(ins[0])
        kind = self._data_kind([x])
        if kind == "q":
            raise _NodeError("ReduceMean on int8 not supported")
        keep = bool(a.get("keepdims", 1))
        if x.layout == "halfmean":   # the second of two means, checked by the first
            self._gap(n, x, kind, keep)
            return
        axes = self._mean_axes(n, ins, a, 4)
        if x.layout == "nchw" and axes in ([2], [3]) and kind == "float":
            # the other spatial axis in this mean's output: 2 or 3 (keepdims), 2 (else)
            other = ([3] if axes == [2] else [2]) if keep else [2]
            cons = self.by_input.get(n.output[0], [])
            if len(cons) == 1 and cons[0].op_type == "ReduceMean" and \
                    n.output[0] not in self.graph_outputs:
                c = cons[0]
                c_ins = [self.vals.get(v) if v else None for v in c.input]
                try:
                    c_axes = self._mean_axes(c, c_ins, _attrs(c), 4 if keep else 3)
                except _NodeError:
                    c_axes = None
                if c_axes == other:
                    self._alias(n, _Act(x.tid, x.shape, "halfmean", kind))
                    return
        if x.layout != "nchw" or axes != [2, 3]:
            raise _NodeError(f"ReduceMean over axes {axes} not supported (only H, W of NCHW, or "
                             "a float mean over W then H)")
        self._gap(n, x, kind, keep)

    # ---- dense ------------------------------------------------------------------------------
    def _dense_layer(self, n, x: _Act, w_nk: np.ndarray) -> Layer:
        if x.layout != "flat":
            raise _NodeError(f"dense layer input must be flattened to [1, K], got layout "
                             f"'{x.layout}'")
        h, w, c = x.shape
        cout, k = w_nk.shape
        if k != h * w * c:
            raise _NodeError(f"weight has {k} inputs, the flattened map has {h * w * c}")
        if x.order == "chw" and h * w > 1 and c > 1:
            w_nk = w_nk.reshape(cout, c, h, w).transpose(0, 2, 3, 1).reshape(cout, k)
        layer = Layer(op=DENSE, in_shape=(h, w, c), out_shape=(1, 1, cout), srcs=(x.tid,),
                      name=n.name or "")
        layer.weight = np.ascontiguousarray(w_nk)
        return layer

    def _dense_common(self, n, x: _Act, w: _Const, b, trans_b: bool, alpha: float, beta: float):
        kind = self._data_kind([x])
        if kind == "q":
            raise _NodeError(f"float {n.op_type} on an int8 tensor")
        if w.value.ndim != 2:
            raise _NodeError("weight must be 2-D")
        if kind == "fq":
            if w.quant is None or w.value.dtype != np.int8:
                raise _NodeError(f"weights of a quantised {n.op_type} must be "
                                 "DequantizeLinear(int8)")
            if alpha != 1.0 or beta != 1.0:
                raise _NodeError("alpha/beta != 1 in a quantised Gemm")
            ch_axis = 0 if trans_b else 1
            if w.quant.per_channel and w.qaxis != ch_axis:
                raise _NodeError("weight quantisation must be per output channel")
            wv = w.value if trans_b else w.value.T
            layer = self._dense_layer(n, x, wv)
            layer.w_quant = Quant.of(w.quant.scale, w.quant.zero_point,
                                     0 if w.quant.per_channel else None)
            layer.bias = self._int_bias(b, self._in_quant(x, n.op_type), layer.w_quant,
                                        layer.out_shape[2])
        else:
            if w.quant is not None:
                raise _NodeError("quantised weights in a float model")
            wv = w.real() if trans_b else w.real().T
            layer = self._dense_layer(n, x, (alpha * wv).astype(np.float32))
            if b is not None:
                bv = self._const(b, "bias").real().reshape(-1) * beta
                cout = layer.out_shape[2]
                if bv.size == 1:
                    bv = np.full(cout, bv[0])
                if bv.size != cout:
                    raise _NodeError("bias is not per output channel")
                layer.bias = bv.astype(np.float32)
        out = self._new_tensor(layer, n.output[0], "flat", kind, order="hwc")
        self._check_inferred(n.output[0], out)

    def _op_Gemm(self, n, ins, a):
        x = self._act(ins[0])
        if a.get("transA", 0):
            raise _NodeError("transA=1 not supported")
        w = self._const(ins[1], "weight")
        b = ins[2] if len(ins) > 2 else None
        self._dense_common(n, x, w, b, bool(a.get("transB", 0)), float(a.get("alpha", 1.0)),
                           float(a.get("beta", 1.0)))

    def _op_MatMul(self, n, ins, a):
        x = self._act(ins[0])
        w = self._const(ins[1], "weight")
        self._dense_common(n, x, w, None, False, 1.0, 1.0)

    def _qdense(self, n, x: _Act, xq: Quant, wv: np.ndarray, ws, wz, yq: Quant, bias,
                trans_b: bool):
        if x.kind != "q":
            raise _NodeError(f"{n.op_type} input must be an int8 tensor")
        self._bind_quant(x, xq, f"{n.op_type} A")
        ws = self._const(ws, "B scale").value.astype(np.float64).reshape(-1)
        wz = self._const(wz, "B zero point").value
        wz64 = wz.astype(np.int64).reshape(-1)
        if wv.dtype == np.uint8:
            wv = (wv.astype(np.int16) - 128).astype(np.int8)
            wz64 = wz64 - 128
        elif wv.dtype != np.int8:
            raise _NodeError(f"weight type {wv.dtype} not supported")
        if wv.ndim != 2:
            raise _NodeError("weight must be 2-D")
        layer = self._dense_layer(n, x, wv if trans_b else wv.T)
        try:
            layer.w_quant = Quant.of(ws, wz64, 0 if ws.size > 1 else None)
        except ValueError as e:
            raise _NodeError(f"weight quantisation: {e}") from None
        if bias is not None:
            bv = self._const(bias, "bias").value
            if bv.dtype != np.int32:
                raise _NodeError("bias must be int32")
            layer.bias = np.broadcast_to(bv.reshape(-1), (layer.out_shape[2],)).astype(np.int32)
        out = self._new_tensor(layer, n.output[0], "flat", "q", quant=yq, order="hwc")
        self._check_inferred(n.output[0], out)

    def _op_QGemm(self, n, ins, a):
        ins = list(ins) + [None] * (9 - len(ins))
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
            raise _NodeError("transA/alpha not supported")
        if ins[7] is None:
            raise _NodeError("QGemm with float output (no y_scale) not supported")
        x = self._act(ins[0])
        xq = self._scale_zp(ins[1], ins[2], "A", tensor=n.input[0])
        yq = self._scale_zp(ins[7], ins[8], "Y", tensor=n.output[0])
        w = self._const(ins[3], "B")
        self._qdense(n, x, xq, w.value, ins[4], ins[5], yq, ins[6], bool(a.get("transB", 0)))

    def _op_QLinearMatMul(self, n, ins, a):
        x = self._act(ins[0])
        xq = self._scale_zp(ins[1], ins[2], "a", tensor=n.input[0])
        yq = self._scale_zp(ins[6], ins[7], "y", tensor=n.output[0])
        w = self._const(ins[3], "b")
        self._qdense(n, x, xq, w.value, ins[4], ins[5], yq, None, False)


def load_onnx(path_or_model, name: str | None = None,
              input_shapes: dict | None = None) -> Network:
    """Import an ONNX model (path, bytes or ``onnx.ModelProto``) into a validated IR network.

    ``input_shapes`` ({input name or None: dims}, see :func:`msfopt.units.parse_input_shapes`)
    fixes dynamic input dims; a dynamic batch dim otherwise becomes 1, noted in
    ``net.provenance.notes``.  Raises :class:`UnsupportedModelError` (one line, the offending
    nodes grouped by op type) when the model cannot be represented.
    """
    model, source = _load(path_or_model)
    model, notes = fix_input_shapes(model, input_shapes)
    imp = _Importer(fold_constants(model), source, name)
    net = imp.run()
    names = tuple(imp.root.get(t, "") for t in range(net.n_layers + 1))
    return replace(net, provenance=Provenance(framework="onnx", notes=tuple(notes),
                                              tensor_names=names))
