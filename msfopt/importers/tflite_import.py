"""Import an int8 TensorFlow Lite model into the msfopt IR.

The flatbuffer is read with the generated reader of the PyPI ``tflite`` package.

Supported (single subgraph, one input, 1 to 8 outputs, batch 1, int8 activations):

* CONV_2D (also grouped), DEPTHWISE_CONV_2D (a depth multiplier m > 1 becomes a CONV with
  groups = C_in and m C_in outputs, the same arithmetic), FULLY_CONNECTED, ADD (same shapes;
  broadcasting: see the graph ops), MAX_POOL_2D, AVERAGE_POOL_2D, MEAN over H and W.
  Per-tensor or per-channel int8 weights, int32 bias, fused activation NONE / RELU / RELU6,
  dilation 1.
  SAME padding is made explicit exactly as TFLite computes it
  (total = max((out - 1) * s + k - in, 0), top/left = total // 2, the rest at the bottom/right).
* PAD / PADV2 (pad value = the zero point, i.e. real 0, and the same quantisation on both sides)
  are folded into the following CONV_2D / DEPTHWISE_CONV_2D / pool as asymmetric padding.  Into an
  AVERAGE_POOL_2D it becomes ``count_include_pad=True`` (the pool itself must then be unpadded);
  into a MAX_POOL_2D only when its input is the output of a RELU/RELU6 layer (then padding with
  real 0 equals ignoring the pads).  All-zero PAD ops are dropped wherever they are.
* An AVERAGE_POOL_2D whose window covers the whole (unpadded) input and MEAN over H, W become
  ``GAP``, with ``gap_rounding`` "tflm-avgpool" resp. "tflm-mean" (TFLM rounds them differently).
* RESHAPE feeding FULLY_CONNECTED (the dense layer reads the HWC-flattened tensor, which is what
  TFLite's row-major reshape of NHWC gives), at the tail, or not changing H, W, C: an alias.
* SOFTMAX at the tail: ``net.tail_softmax`` (:class:`~msfopt.ir.TailSoftmax`: beta and the output
  quantisation), not a layer.
* QUANTIZE at the input / DEQUANTIZE (or QUANTIZE to another type) at the output: recorded, not
  layers.  An int8 -> int8 QUANTIZE anywhere is an ACT ``quantize`` layer.
* Graph ops (:mod:`msfopt.importers.tflite_graph_ops`, the table there says what each becomes):
  HARD_SWISH, LOGISTIC, TANH, LEAKY_RELU, RELU, RELU6 (ACT layers), MUL (of two activations with
  [1,1,C] / scalar broadcast, or by an int8 constant, also per-channel quantised), ADD / SUB of
  a constant int8 scalar or [C] constant (an ACT ``affine``: TFLM's AddFunc, the constant
  negated for x - c; ``sub`` for c - x), ADD / SUB of two activations (an ADD, ``sub`` for
  SUB; one operand may broadcast: [1,1,1,C], [1,H,W,1] or a scalar), SPLIT / SPLIT_V on the
  channels (SLICE layers), the channel shuffle RESHAPE -> TRANSPOSE -> RESHAPE (one SHUFFLE),
  CONCATENATION on the channels or on axis 1 of [1, N, k] tensors (the IR's width; equal
  quantisation, as TFLM requires), RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR, TRANSPOSE_CONV,
  and a RESHAPE that really changes the shape (a detector head [1, H, W, A k] -> [1, H W A,
  k]: a RESHAPE layer, the same bytes).

The returned :class:`~msfopt.ir.Network` has ``requant="fixed"`` (TFLite Micro's integer-only
arithmetic) and ``provenance`` (:class:`~msfopt.ir.Provenance`, for messages and tests):
``layer_ops`` (TFLite op name per IR layer), ``layer_op_index`` (TFLite operator index per layer),
``input_dtype`` / ``output_dtype`` (``"int8"`` unless a QUANTIZE / DEQUANTIZE sits at an edge),
``output_shape`` (TFLite shape of the model output), ``output_quant`` (its Quant, if quantised),
``folded`` (indices of the PAD / RESHAPE / QUANTIZE / DEQUANTIZE / SOFTMAX ops that became no
layer), ``weight_scale_fixups`` ({layer: {"zero_scales": n, "negated_scales": n}}, see below).

The IR wants positive weight scales; TFLite files may hold 0 (dead channels) or negative ones
(MCUNet has both).  Scale 0 becomes the smallest normal float32 (TFLite's multiplier is 0, ours
underflows to 0: same outputs); a negative scale becomes positive with that channel's int8
weights and int32 bias negated (accumulator and multiplier both flip sign: bit-identical).

Fixed-point requantisation data are not stored in the IR: the code generator computes them from
the IR's quantisation parameters the way TFLite / TFLM do.  The int8 clamp of each layer's fused
activation is stored once, as ``layer.act_min`` / ``layer.act_max``, computed like TFLM's
``CalculateActivationRangeQuantized`` (float32 ``6.0f / scale``, ``TfLiteRound`` = round half away
from zero): see :func:`tflm_activation_range`.

Anything else raises :class:`msfopt.importers.UnsupportedModelError` with a single line: the
offending operators grouped by op type and reason, with counts and the first few operator indices
(:func:`msfopt.importers.grouped`); unreadable / truncated files raise the same error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msfopt import ir
from msfopt.mcu_runtime import eltwise_params
from msfopt.importers import UnsupportedModelError, grouped
from msfopt.importers.tflite_graph_ops import GRAPH_OPS, GraphOpsMixin, graph_options

# TFLite TensorType values (schema.fbs)
_FLOAT32, _INT32, _UINT8, _INT64, _INT16, _INT8 = 0, 2, 3, 4, 7, 9
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
               6: "bool", 7: "int16", 9: "int8", 10: "float64", 16: "uint32", 17: "int4"}
_NP_TYPES = {_FLOAT32: np.float32, _INT32: np.int32, _UINT8: np.uint8, _INT64: np.int64,
             _INT16: np.int16, _INT8: np.int8}
# ActivationFunctionType
_ACTS = {0: "none", 1: "relu", 3: "relu6"}
_ACT_NAMES = {2: "RELU_N1_TO_1", 4: "TANH", 5: "SIGN_BIT"}
# Padding
_SAME, _VALID = 0, 1

_LAYER_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MAX_POOL_2D",
              "AVERAGE_POOL_2D", "MEAN"}
_PLUMBING = {"PAD", "PADV2", "RESHAPE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"}
SUPPORTED_OPS = tuple(sorted(_LAYER_OPS | _PLUMBING | GRAPH_OPS))


# ------------------------------------------------------------------------------------------------
# reading the flatbuffer into plain Python data
# ------------------------------------------------------------------------------------------------

@dataclass
class _T:
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    qdim: int
    dynamic: bool


@dataclass
class _Op:
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    opt: dict = field(default_factory=dict)


@dataclass
class _Model:
    tensors: list[_T]
    ops: list[_Op]
    inputs: list[int]
    outputs: list[int]
    n_subgraphs: int
    data: list[bytes | None]  # buffer index -> bytes (None: empty)


def _opcode_name(oc) -> str:
    from tflite.utils import BUILTIN_OPCODE2NAME
    code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
    name = BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_{code}")
    if name == "CUSTOM":
        cc = oc.CustomCode()
        if cc:
            name = f"CUSTOM({cc.decode('utf-8', 'replace')})"
    return name


def _options(name: str, op) -> dict:
    import tflite
    table = op.BuiltinOptions()
    cls = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
           "FULLY_CONNECTED": tflite.FullyConnectedOptions, "ADD": tflite.AddOptions,
           "MAX_POOL_2D": tflite.Pool2DOptions, "AVERAGE_POOL_2D": tflite.Pool2DOptions,
           "MEAN": tflite.ReducerOptions, "SOFTMAX": tflite.SoftmaxOptions}.get(name)
    if cls is None:
        return graph_options(name, table)
    if table is None:
        return {}
    o = cls()
    o.Init(table.Bytes, table.Pos)
    d: dict = {}
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        d = dict(padding=o.Padding(), stride=(o.StrideH(), o.StrideW()),
                 dilation=(o.DilationHFactor(), o.DilationWFactor()),
                 act=o.FusedActivationFunction())
        if name == "DEPTHWISE_CONV_2D":
            d["depth_multiplier"] = o.DepthMultiplier()
    elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        d = dict(padding=o.Padding(), stride=(o.StrideH(), o.StrideW()),
                 filter=(o.FilterHeight(), o.FilterWidth()), act=o.FusedActivationFunction())
    elif name == "FULLY_CONNECTED":
        d = dict(act=o.FusedActivationFunction(), weights_format=o.WeightsFormat())
    elif name == "ADD":
        d = dict(act=o.FusedActivationFunction())
    elif name == "MEAN":
        d = dict(keep_dims=bool(o.KeepDims()))
    elif name == "SOFTMAX":
        d = dict(beta=float(o.Beta()))
    d["_present"] = True
    return d


def _read(buf: bytes) -> _Model:
    import tflite
    if len(buf) < 8 or not tflite.Model.ModelBufferHasIdentifier(buf, 0):
        raise ValueError("no TFL3 file identifier")
    m = tflite.Model.GetRootAs(buf, 0)
    n_sub = m.SubgraphsLength()
    if n_sub < 1:
        raise ValueError("no subgraph")
    g = m.Subgraphs(0)
    tensors = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        shape = tuple(int(x) for x in t.ShapeAsNumpy()) if not t.ShapeIsNone() else ()
        sig = tuple(int(x) for x in t.ShapeSignatureAsNumpy()) if not t.ShapeSignatureIsNone() \
            else ()
        dynamic = any(x < 0 for x in sig[1:])
        q = t.Quantization()
        scale = zp = None
        qdim = 0
        if q is not None and not q.ScaleIsNone() and q.ScaleLength() > 0:
            scale = np.array(q.ScaleAsNumpy(), dtype=np.float64)  # float32 -> exact double
            zp = (np.array(q.ZeroPointAsNumpy(), dtype=np.int64) if not q.ZeroPointIsNone()
                  else np.zeros(len(scale), np.int64))
            qdim = int(q.QuantizedDimension())
        name = t.Name()
        tensors.append(_T(name.decode("utf-8", "replace") if name else f"t{i}", shape,
                          int(t.Type()), int(t.Buffer()), scale, zp, qdim, dynamic))
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc_index = op.OpcodeIndex()
        if oc_index >= m.OperatorCodesLength():
            raise ValueError(f"operator {i} has an invalid opcode index")
        name = _opcode_name(m.OperatorCodes(oc_index))
        ins = [int(x) for x in op.InputsAsNumpy()] if not op.InputsIsNone() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if not op.OutputsIsNone() else []
        for t in ins + outs:
            if t >= len(tensors) or t < -1:
                raise ValueError(f"operator {i} refers to tensor {t} which does not exist")
        ops.append(_Op(i, name, ins, outs, _options(name, op)))
    data: list[bytes | None] = []
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        off, size = int(b.Offset()), int(b.Size())
        if off > 1:  # data stored after the flatbuffer (models over 2 GB)
            if off + size > len(buf):
                raise ValueError(f"buffer {i} extends past the end of the file")
            data.append(bytes(buf[off:off + size]))
        elif not b.DataIsNone() and b.DataLength() > 0:
            arr = b.DataAsNumpy()
            data.append(arr.tobytes())
        else:
            data.append(None)
    for t in tensors:
        if t.buffer >= len(data) and t.buffer != 0:
            raise ValueError(f"tensor {t.name!r} refers to a missing buffer")
    ins = [int(x) for x in g.InputsAsNumpy()] if not g.InputsIsNone() else []
    outs = [int(x) for x in g.OutputsAsNumpy()] if not g.OutputsIsNone() else []
    for t in ins + outs:
        if not 0 <= t < len(tensors):
            raise ValueError(f"graph input/output tensor {t} does not exist")
    return _Model(tensors, ops, ins, outs, n_sub, data)


# ------------------------------------------------------------------------------------------------
# conversion
# ------------------------------------------------------------------------------------------------

class _Skip(Exception):
    """An operator cannot be imported; the message is the reason (collected, raised at the end)."""


def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    if len(shape) == 4 and shape[0] == 1:
        return (shape[1], shape[2], shape[3])
    if len(shape) == 3 and shape[0] == 1:   # [1, N, k] (a detector's boxes): one row of N
        return (1, shape[1], shape[2])
    if len(shape) == 2 and shape[0] == 1:
        return (1, 1, shape[1])
    if len(shape) == 1:
        return (1, 1, shape[0])
    return None


def _same_pad(size: int, k: int, s: int, out: int) -> tuple[int, int]:
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _quant_equal(a: _T, b: _T) -> bool:
    if a.scale is None or b.scale is None:
        return False
    return (len(a.scale) == len(b.scale) and np.array_equal(a.scale, b.scale)
            and np.array_equal(a.zero_point, b.zero_point))


class _Converter(GraphOpsMixin):
    Skip = _Skip  # the graph-op mixin raises it

    def __init__(self, model: _Model, name: str, source: str):
        self.m = model
        self.name = name
        self.source = source
        self.problems: list[str] = []                       # model-level problems
        self.op_problems: list[tuple[str, str, str]] = []   # (op type, "op N", reason)
        self.layers: list[ir.Layer] = []
        self.tquant: list[ir.Quant | None] = []
        self.layer_ops: list[str] = []
        self.layer_op_index: list[int] = []
        self.folded: list[int] = []
        self.fixups: dict[int, dict] = {}  # IR layer -> weight scales made IR-legal
        self.failed: set[int] = set()  # TFLite tensors whose producer could not be imported
        # TFLite tensor -> (IR tensor id, pending explicit padding (t, l, b, r), padded by op)
        self.alias: dict[int, tuple[int, tuple[int, int, int, int], int | None]] = {}
        self.consumers: dict[int, list[int]] = {}
        for op in model.ops:
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op.index)
        self.softmax: _Op | None = None
        self.softmax_in: int | None = None
        self.input_dtype = "int8"
        self.output_dtype = "int8"
        self.input_t: int | None = None
        self.out_edge_op: _Op | None = None
        self.shuffle_ops: set[int] = set()  # TRANSPOSE / RESHAPE ops inside a channel shuffle

    # -- helpers -------------------------------------------------------------------------------
    def T(self, t: int) -> _T:
        return self.m.tensors[t]

    @staticmethod
    def same_quant(a: _T, b: _T) -> bool:
        return _quant_equal(a, b)

    @staticmethod
    def activation_range(act: str, q: ir.Quant) -> tuple[int, int]:
        return tflm_activation_range(act, q.scale[0], q.zero_point[0])

    def const(self, t: int, what: str) -> np.ndarray:
        if t < 0:
            raise _Skip(f"missing {what}")
        tt = self.T(t)
        raw = self.m.data[tt.buffer] if tt.buffer < len(self.m.data) else None
        if raw is None:
            raise _Skip(f"{what} is not a constant")
        if tt.type not in _NP_TYPES:
            raise _Skip(f"{what} has type {_TYPE_NAMES.get(tt.type, tt.type)}")
        dt = np.dtype(_NP_TYPES[tt.type]).newbyteorder("<")
        n = int(np.prod(tt.shape)) if tt.shape else 1
        if len(raw) != n * dt.itemsize:
            raise _Skip(f"{what} holds {len(raw)} bytes, expected {n * dt.itemsize} "
                        "(truncated or corrupt file)")
        return np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(
            tt.shape)

    def quant(self, t: int, what: str, ir_axis: int | None = None) -> ir.Quant:
        tt = self.T(t)
        if tt.scale is None:
            raise _Skip(f"{what} is not quantised")
        try:
            return ir.Quant.of(tt.scale, tt.zero_point, ir_axis if len(tt.scale) > 1 else None)
        except ir.IRError as e:
            raise _Skip(f"{what}: {e}") from None

    def weight_quant(self, t: int, weight: np.ndarray, bias: np.ndarray, what: str):
        """Quant of a weight tensor (IR layout, output channel first), made IR-legal:

        * scale 0 (dead channel; TFLite's multiplier is then 0 and the channel outputs the zero
          point) -> the smallest normal float32: the multiplier still underflows to 0 and the real
          values stay ~0;
        * negative scale (MCUNet's first conv has one; TFLite then uses a negative multiplier)
          -> |scale| with that channel's weights and bias negated: the accumulator and the
          multiplier both change sign, so the fixed-point product is bit-identical.
        Returns (weight, bias, Quant)."""
        tt = self.T(t)
        if tt.scale is None:
            raise _Skip(f"{what} is not quantised")
        scale = tt.scale.copy()
        zp = tt.zero_point.copy()
        n = weight.shape[0]
        if len(scale) not in (1, n):
            raise _Skip(f"{what} has {len(scale)} scales for {n} output channels")
        if not np.isfinite(scale).all():
            raise _Skip(f"{what} has a non-finite scale")
        neg = np.flatnonzero(scale < 0)
        if neg.size:
            chans = range(n) if len(scale) == 1 else neg
            w = weight.astype(np.int16)
            if (zp[neg] != 0).any() or any((w[c] == -128).any() for c in chans):
                raise _Skip(f"{what} has a negative scale on a channel that cannot be negated")
            weight = weight.copy()
            bias = bias.copy()
            for c in chans:
                weight[c] = (-w[c]).astype(np.int8)
                bias[c] = -np.int64(bias[c])
            scale[neg] = -scale[neg]
            self.fixups.setdefault(len(self.layers), {})["negated_scales"] = int(neg.size)
        zero = scale == 0.0
        if zero.any():
            scale[zero] = float(np.finfo(np.float32).tiny)
            self.fixups.setdefault(len(self.layers), {})["zero_scales"] = int(zero.sum())
        try:
            q = ir.Quant.of(scale, zp, 0 if len(scale) > 1 else None)
        except ir.IRError as e:
            raise _Skip(f"{what}: {e}") from None
        return weight, bias, q

    def act_tensor(self, t: int, what: str) -> _T:
        tt = self.T(t)
        if tt.type != _INT8:
            raise _Skip(f"{what} is {_TYPE_NAMES.get(tt.type, tt.type)}, not int8")
        if tt.dynamic:
            raise _Skip(f"{what} has a dynamic shape")
        if tt.scale is None:
            raise _Skip(f"{what} is not quantised")
        if len(tt.scale) != 1:
            raise _Skip(f"{what} is quantised per channel")
        if _hwc(tt.shape) is None:
            raise _Skip(f"{what} has shape {list(tt.shape)} (need batch 1, NHWC or N x C)")
        return tt

    def get(self, t: int, what: str, allow_pad: bool = False):
        if t < 0 or t not in self.alias:
            raise _Skip(f"{what} (tensor {t}) is not an int8 activation produced earlier")
        ir_id, pad, pad_op = self.alias[t]
        if any(pad) and not allow_pad:
            raise _Skip(f"{what} comes from PAD op {pad_op}, which only folds into a conv or pool")
        return ir_id, pad, pad_op

    def act(self, opt: dict) -> str:
        a = opt.get("act", 0)
        if a not in _ACTS:
            raise _Skip(f"fused activation {_ACT_NAMES.get(a, a)}")
        return _ACTS[a]

    def shape_of(self, ir_id: int) -> tuple[int, int, int]:
        return self.tquant_shape[ir_id]

    def add_layer(self, op: _Op, layer: ir.Layer, out_q: ir.Quant):
        if out_q.per_channel:
            raise _Skip("output quantised per channel")
        try:
            layer.act_min, layer.act_max = tflm_activation_range(layer.act, out_q.scale[0],
                                                                 out_q.zero_point[0])
        except ValueError as e:
            raise _Skip(str(e)) from None
        layer.name = f"{op.index}_{op.name.lower()}"
        self.layers.append(layer)
        self.tquant.append(out_q)
        self.tquant_shape.append(tuple(layer.out_shape))
        self.layer_ops.append(op.name)
        self.layer_op_index.append(op.index)
        self.alias[op.outputs[0]] = (len(self.layers), (0, 0, 0, 0), None)

    def check_out(self, op: _Op, layer: ir.Layer):
        if len(op.outputs) != 1:
            raise _Skip(f"{len(op.outputs)} outputs")
        ot = self.act_tensor(op.outputs[0], "output")
        exp = _hwc(ot.shape)
        if tuple(layer.out_shape) != exp:
            raise _Skip(f"output shape {list(ot.shape)} does not match the computed "
                        f"{list(layer.out_shape)}")
        return self.quant(op.outputs[0], "output")

    # -- per-op converters ----------------------------------------------------------------------
    def window(self, op: _Op):
        o = op.opt
        if not o.get("_present"):
            raise _Skip("options missing")
        is_conv = op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")
        src, epad, pad_op = self.get(op.inputs[0], "input", allow_pad=True)
        it = self.act_tensor(op.inputs[0], "input")
        ih, iw, ic = self.shape_of(src)
        ph, pw = ih + epad[0] + epad[2], iw + epad[1] + epad[3]  # what TFLite sees
        if _hwc(it.shape) != (ph, pw, ic):
            raise _Skip(f"input shape {list(it.shape)} inconsistent with the graph")
        sh, sw = o["stride"]
        if min(sh, sw) < 1:
            raise _Skip("stride < 1")
        act = self.act(o)
        weight = bias = w_q = None
        groups = 1
        if is_conv:
            if tuple(o["dilation"]) != (1, 1):
                raise _Skip(f"dilation {tuple(o['dilation'])}")
            if len(op.inputs) < 2:
                raise _Skip("no filter")
            wt = self.T(op.inputs[1])
            if wt.type != _INT8:
                raise _Skip(f"filter is {_TYPE_NAMES.get(wt.type, wt.type)}, not int8")
            w = self.const(op.inputs[1], "filter")
            if w.ndim != 4:
                raise _Skip(f"filter shape {list(w.shape)}")
            if op.name == "CONV_2D":
                cout, kh, kw, wcin = w.shape
                if wcin < 1 or ic % wcin or cout % (ic // wcin):
                    raise _Skip(f"filter input depth {wcin} does not divide input depth {ic}")
                groups = ic // wcin
                weight = w
                if wt.scale is not None and len(wt.scale) > 1 and wt.qdim != 0:
                    raise _Skip(f"filter quantised along axis {wt.qdim}")
                op_kind = ir.CONV
            else:
                one, kh, kw, cout = w.shape
                if one != 1 or cout % max(ic, 1) or cout < ic:
                    raise _Skip(f"filter {list(w.shape)} for {ic} input channels")
                oc = self.T(op.outputs[0]).shape[-1] if self.T(op.outputs[0]).shape else None
                if oc != cout:
                    raise _Skip(f"depth multiplier {cout // ic} gives {cout} channels, the output "
                                f"tensor has {oc}")
                # output channel o reads input channel o // m; OHWI (cout, kh, kw, 1) either way
                weight = np.ascontiguousarray(w.transpose(3, 1, 2, 0))
                if wt.scale is not None and len(wt.scale) > 1 and wt.qdim != 3:
                    raise _Skip(f"filter quantised along axis {wt.qdim}")
                if cout == ic:
                    op_kind = ir.DW
                else:   # depth multiplier m > 1: a grouped conv, groups = C_in, C_out = m C_in
                    op_kind, groups = ir.CONV, ic
            bias = self.bias(op, cout)
            weight, bias, w_q = self.weight_quant(op.inputs[1], weight, bias, "filter")
        else:
            kh, kw = o["filter"]
            op_kind = ir.MAXPOOL if op.name == "MAX_POOL_2D" else ir.AVGPOOL
            cout = ic
        if min(kh, kw) < 1:
            raise _Skip(f"kernel {kh}x{kw}")
        ot = self.act_tensor(op.outputs[0], "output")
        oh, ow, _ = _hwc(ot.shape)
        if o["padding"] == _SAME:
            exp = (-(-ph // sh), -(-pw // sw))
        else:
            exp = (-(-(ph - kh + 1) // sh), -(-(pw - kw + 1) // sw))
        if (oh, ow) != exp:
            raise _Skip(f"output {oh}x{ow} but TFLite's padding rule gives {exp[0]}x{exp[1]}")
        if o["padding"] == _SAME:
            st, sb = _same_pad(ph, kh, sh, oh)
            sl, sr = _same_pad(pw, kw, sw, ow)
        elif o["padding"] == _VALID:
            st = sb = sl = sr = 0
        else:
            raise _Skip(f"padding mode {o['padding']}")
        same = (st, sl, sb, sr)
        pad = tuple(e + s for e, s in zip(epad, same))
        count_include_pad = False
        if any(epad):
            if op_kind == ir.AVGPOOL:
                if any(same):
                    raise _Skip(f"explicit PAD op {pad_op} before a SAME-padded average pool")
                count_include_pad = True
            elif op_kind == ir.MAXPOOL:
                if src == 0 or self.layers[src - 1].act == "none":
                    raise _Skip(f"explicit PAD op {pad_op} before a max pool whose input is not "
                                "ReLU-clamped")
        if pad[0] >= kh or pad[2] >= kh or pad[1] >= kw or pad[3] >= kw:
            raise _Skip(f"padding {pad} not smaller than the {kh}x{kw} kernel")
        # a window over the whole unpadded input -> global average pooling
        if (op_kind == ir.AVGPOOL and not any(pad) and (kh, kw) == (ih, iw)
                and (oh, ow) == (1, 1)):
            layer = ir.Layer(op=ir.GAP, in_shape=(ih, iw, ic), out_shape=(1, 1, ic), act=act,
                             srcs=(src,), gap_rounding="tflm-avgpool")
        else:
            layer = ir.window_layer(op_kind, (ih, iw, ic), cout, (kh, kw), (sh, sw), pad,
                                    groups=groups if op_kind == ir.CONV else None, act=act,
                                    count_include_pad=count_include_pad)
            layer.srcs = (src,)
            layer.weight, layer.bias, layer.w_quant = weight, bias, w_q
        out_q = self.check_out(op, layer)
        self.add_layer(op, layer, out_q)

    def bias(self, op: _Op, cout: int) -> np.ndarray:
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return np.zeros(cout, np.int32)
        bt = self.T(op.inputs[2])
        if bt.type != _INT32:
            raise _Skip(f"bias is {_TYPE_NAMES.get(bt.type, bt.type)}, not int32")
        b = self.const(op.inputs[2], "bias").reshape(-1)
        if b.shape != (cout,):
            raise _Skip(f"bias has {b.size} values for {cout} outputs")
        return b.astype(np.int32)

    def dense(self, op: _Op):
        o = op.opt
        if not o.get("_present"):
            raise _Skip("options missing")
        if o.get("weights_format", 0) != 0:
            raise _Skip("shuffled weights format")
        src, _, _ = self.get(op.inputs[0], "input")
        self.act_tensor(op.inputs[0], "input")
        h, w, c = self.shape_of(src)
        wt = self.T(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if wt is None or wt.type != _INT8:
            raise _Skip("weights are not int8")
        wgt = self.const(op.inputs[1], "weights")
        if wgt.ndim != 2 or wgt.shape[1] != h * w * c:
            raise _Skip(f"weights shape {list(wgt.shape)} for an input of {h * w * c} values")
        cout = wgt.shape[0]
        wgt, bias, w_q = self.weight_quant(op.inputs[1], np.ascontiguousarray(wgt),
                                           self.bias(op, cout), "weights")
        layer = ir.Layer(op=ir.DENSE, in_shape=(h, w, c), out_shape=(1, 1, cout),
                         act=self.act(o), srcs=(src,), weight=wgt, bias=bias, w_quant=w_q)
        out_q = self.check_out(op, layer)
        self.add_layer(op, layer, out_q)

    def add(self, op: _Op):
        if not op.opt.get("_present"):
            raise _Skip("options missing")
        if len(op.inputs) != 2:
            raise _Skip(f"{len(op.inputs)} inputs")
        consts = [self.is_const(t) for t in op.inputs]
        if all(consts):
            raise _Skip("both summands are constants")
        if any(consts):
            x, k = op.inputs if consts[1] else op.inputs[::-1]
            return self.add_constant(op, x, k)
        a, _, _ = self.get(op.inputs[0], "first input")
        b, _, _ = self.get(op.inputs[1], "second input")
        for t, what in ((op.inputs[0], "first input"), (op.inputs[1], "second input")):
            self.act_tensor(t, what)
        sa, sb = self.shape_of(a), self.shape_of(b)
        if sa != sb:
            # broadcast (TFLM's BroadcastAdd6DSlow: AddFunc per element): the full map first,
            # the [1, 1, 1, C] / [1, H, W, 1] / scalar operand second
            big, small = (a, b) if sb in ir.add_operand_shapes(*sa) else (b, a)
            if self.shape_of(small) not in ir.add_operand_shapes(*self.shape_of(big)):
                raise _Skip(f"broadcasting add of {list(sa)} and {list(sb)} (only one value per "
                            "channel, per pixel, or one value broadcasts)")
            shape = self.shape_of(big)
            layer = ir.Layer(op=ir.ADD, in_shape=shape, out_shape=shape, act=self.act(op.opt),
                             srcs=(big, small))
            self.add_layer(op, layer, self.check_out(op, layer))
            return
        # src: the main path (the most recent tensor), src2: the skip tensor (the older one)
        src, src2 = (a, b) if a >= b else (b, a)
        layer = ir.Layer(op=ir.ADD, in_shape=sa, out_shape=sa, act=self.act(op.opt), srcs=(src,
                         src2))
        out_q = self.check_out(op, layer)
        self.add_layer(op, layer, out_q)

    def mean(self, op: _Op):
        src, _, _ = self.get(op.inputs[0], "input")
        it = self.act_tensor(op.inputs[0], "input")
        if len(it.shape) != 4:
            raise _Skip("input is not 4-D")
        axes = sorted({int(x) % 4 for x in np.atleast_1d(self.const(op.inputs[1], "axes"))})
        if axes != [1, 2]:
            raise _Skip(f"mean over axes {axes} (only over H and W)")
        h, w, c = self.shape_of(src)
        layer = ir.Layer(op=ir.GAP, in_shape=(h, w, c), out_shape=(1, 1, c), srcs=(src,),
                         gap_rounding="tflm-mean")
        out_q = self.check_out(op, layer)
        self.add_layer(op, layer, out_q)

    def pad(self, op: _Op):
        src, epad, _ = self.get(op.inputs[0], "input", allow_pad=True)
        it = self.act_tensor(op.inputs[0], "input")
        ot = self.act_tensor(op.outputs[0], "output")
        p = self.const(op.inputs[1], "paddings")
        if p.shape != (len(it.shape), 2) or len(it.shape) != 4:
            raise _Skip(f"paddings of shape {list(p.shape)} for a {len(it.shape)}-D input")
        if p[0].any() or p[3].any() or (p < 0).any():
            raise _Skip("padding of the batch or channel axis")
        if not _quant_equal(it, ot):
            raise _Skip("input and output quantisation differ")
        if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            v = self.const(op.inputs[2], "pad value").reshape(-1)
            if v.size != 1 or int(v[0]) != int(ot.zero_point[0]):
                raise _Skip("pad value is not the zero point")
        new = (epad[0] + int(p[1, 0]), epad[1] + int(p[2, 0]),
               epad[2] + int(p[1, 1]), epad[3] + int(p[2, 1]))
        h, w, c = self.shape_of(src)
        if _hwc(ot.shape) != (h + new[0] + new[2], w + new[1] + new[3], c):
            raise _Skip("output shape inconsistent with the paddings")
        if any(new):
            for ci in self.consumers.get(op.outputs[0], []):
                if self.m.ops[ci].name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D",
                                               "AVERAGE_POOL_2D", "PAD", "PADV2"):
                    raise _Skip(f"non-zero padding feeds {self.m.ops[ci].name} op {ci}, "
                                "which cannot absorb it")
            if op.outputs[0] in self.m.outputs:
                raise _Skip("padded tensor is the model output")
        self.alias[op.outputs[0]] = (src, new, op.index)
        self.folded.append(op.index)

    def reshape(self, op: _Op):
        if op.index in self.shuffle_ops:   # the last RESHAPE of a channel shuffle (already a layer)
            self.folded.append(op.index)
            return
        out = op.outputs[0]
        if any(self.m.ops[c].name == "TRANSPOSE" for c in self.consumers.get(out, [])):
            why = self.channel_shuffle(op)
            if why is not None:
                raise _Skip(f"reshape feeding TRANSPOSE is not a channel shuffle: {why}")
            return
        src, _, _ = self.get(op.inputs[0], "input")
        it = self.act_tensor(op.inputs[0], "input")
        ot = self.T(out)
        if ot.type != _INT8 or ot.dynamic or not ot.shape:
            raise _Skip("output is not a static int8 tensor")
        if int(np.prod(ot.shape)) != int(np.prod(it.shape)):
            raise _Skip("element count changes")
        if ot.scale is None or not _quant_equal(it, ot):
            # TFLM's RESHAPE copies the bytes: a differing output quantisation only relabels
            # them, which matters to a consumer inside the network but not at the model output
            # (MCUNet's last RESHAPE does this; net.provenance.output_quant keeps the label)
            if out not in self.m.outputs or self.consumers.get(out):
                raise _Skip("input and output quantisation differ")
        cons = [self.m.ops[c].name for c in self.consumers.get(out, [])]
        ok = (_hwc(ot.shape) == self.shape_of(src)
              or (cons and all(c in ("FULLY_CONNECTED", "RESHAPE") for c in cons))
              or all(c in ("SOFTMAX", "DEQUANTIZE", "QUANTIZE") for c in cons)
              and (self.shape_of(src)[:2] == (1, 1) or not cons))
        if not ok and _hwc(ot.shape) is not None and _quant_equal(it, ot):
            # a real change of shape (e.g. a detector head [1, H, W, A k] -> [1, H W A, k]): the
            # same bytes under the new shape, a RESHAPE layer (in place when the input dies)
            layer = ir.Layer(op=ir.RESHAPE, in_shape=self.shape_of(src),
                             out_shape=_hwc(ot.shape), srcs=(src,))
            self.add_layer(op, layer, self.check_out(op, layer))
            return
        if not ok:
            raise _Skip(f"reshape {list(it.shape)} -> {list(ot.shape)} feeding "
                        f"{', '.join(cons) or 'the output'}")
        self.alias[out] = (src, (0, 0, 0, 0), None)
        self.folded.append(op.index)

    def softmax_op(self, op: _Op):
        src, _, _ = self.get(op.inputs[0], "input")
        self.act_tensor(op.inputs[0], "input")
        self.act_tensor(op.outputs[0], "output")
        if self.softmax is not None:
            raise _Skip(f"second softmax (first is op {self.softmax.index})")
        self.softmax, self.softmax_in = op, src
        self.alias[op.outputs[0]] = (src, (0, 0, 0, 0), None)
        self.softmax_quant = self.quant(op.outputs[0], "output")
        self.folded.append(op.index)

    def _u8_shift_only(self, t_u8: int, t_s8: int) -> bool:
        """A uint8 <-> int8 QUANTIZE that only moves the zero point by 128 (same scale): the
        bytes differ by 128 exactly, no requantisation."""
        a, b = self.T(t_u8), self.T(t_s8)
        return (a.scale is not None and b.scale is not None and len(a.scale) == len(b.scale) == 1
                and np.float32(a.scale[0]) == np.float32(b.scale[0])
                and int(a.zero_point[0]) - 128 == int(b.zero_point[0]))

    def quantize(self, op: _Op):
        t_in, t_out = op.inputs[0], op.outputs[0]
        if t_in == self.input_t and t_in not in self.alias:
            if self.T(t_in).type == _UINT8 and not self._u8_shift_only(t_in, t_out):
                raise _Skip("uint8 model input requantised to another scale / zero point (only "
                            "the zero point shift by 128 is supported: the generated code takes "
                            "the int8 input)")
            self.act_tensor(t_out, "output")
            self.input_dtype = _TYPE_NAMES.get(self.T(t_in).type, str(self.T(t_in).type))
            self.alias[t_out] = (0, (0, 0, 0, 0), None)
            self.input_quant_t = t_out
        elif t_out not in self.m.outputs or self.consumers.get(t_out) or \
                self.T(t_out).type == self.T(t_in).type == _INT8:
            self.requantize(op)   # int8 -> int8: an ACT quantize layer
            return
        else:
            src, _, _ = self.get(t_in, "input")
            self.out_edge_op = op
            self.output_dtype = _TYPE_NAMES.get(self.T(t_out).type, str(self.T(t_out).type))
            ot = self.T(t_out)
            if ot.type == _UINT8 and self.T(t_in).type == _INT8 and \
                    not self._u8_shift_only(t_out, t_in):
                # int8 -> uint8 on another grid: TFLM's Requantize, which on the uint8 grid
                # shifted by -128 is the int8 -> int8 requantisation (an ACT quantize layer)
                it = self.act_tensor(t_in, "input")
                if ot.scale is None or len(ot.scale) != 1:
                    raise _Skip("uint8 output is not quantised per tensor")
                out_q = ir.Quant.of(ot.scale, int(ot.zero_point[0]) - 128)
                try:
                    eltwise_params.tflm_table("quantize", it.scale[0], it.zero_point[0],
                                              out_q.scale[0], out_q.zero_point[0])
                except ValueError as e:
                    raise _Skip(str(e)) from None
                shape = self.shape_of(src)
                layer = ir.Layer(op=ir.ACT, in_shape=shape, out_shape=shape, srcs=(src,),
                                 fn="quantize")
                self.add_layer(op, layer, out_q)
                return
            self.alias[t_out] = (src, (0, 0, 0, 0), None)
        self.folded.append(op.index)

    def dequantize(self, op: _Op):
        t_in, t_out = op.inputs[0], op.outputs[0]
        if t_out not in self.m.outputs:
            raise _Skip("dequantisation inside the network (float or fp16 weights?)")
        src, _, _ = self.get(t_in, "input")
        self.out_edge_op = op
        self.output_dtype = _TYPE_NAMES.get(self.T(t_out).type, str(self.T(t_out).type))
        self.alias[t_out] = (src, (0, 0, 0, 0), None)
        self.folded.append(op.index)

    # -- driver ---------------------------------------------------------------------------------
    def run(self) -> ir.Network:
        m = self.m
        graph_problems = []
        if m.n_subgraphs != 1:
            graph_problems.append(f"{m.n_subgraphs} subgraphs (only 1 supported)")
        if len(m.inputs) != 1 or not 1 <= len(m.outputs) <= 8:
            graph_problems.append(f"{len(m.inputs)} inputs and {len(m.outputs)} outputs "
                                  "(need 1 input and 1 to 8 outputs)")
        if not m.ops:
            graph_problems.append("no operators")
        if graph_problems:
            self.fail(graph_problems)
        self.input_t = m.inputs[0]
        self.tquant_shape: list[tuple[int, int, int]] = []
        self.input_quant_t = None
        it = self.T(self.input_t)
        if it.type == _INT8:
            try:
                self.act_tensor(self.input_t, "input")
                self.alias[self.input_t] = (0, (0, 0, 0, 0), None)
                self.input_quant_t = self.input_t
            except _Skip as e:
                self.fail([f"model input: {e}"])
        elif not any(op.name == "QUANTIZE" and op.inputs and op.inputs[0] == self.input_t
                     for op in m.ops):
            self.fail([f"model input is {_TYPE_NAMES.get(it.type, it.type)} and not quantised "
                       "by a QUANTIZE op"])
        handlers = {"CONV_2D": self.window, "DEPTHWISE_CONV_2D": self.window,
                    "MAX_POOL_2D": self.window, "AVERAGE_POOL_2D": self.window,
                    "FULLY_CONNECTED": self.dense, "ADD": self.add, "MEAN": self.mean,
                    "PAD": self.pad, "PADV2": self.pad, "RESHAPE": self.reshape,
                    "SOFTMAX": self.softmax_op, "QUANTIZE": self.quantize,
                    "DEQUANTIZE": self.dequantize, **self.graph_handlers()}
        for op in m.ops:
            h = handlers.get(op.name)
            if h is None:
                self.op_problems.append((op.name, f"op {op.index}", "unsupported op type"))
                self.failed.update(op.outputs)
                continue
            if any(t in self.failed for t in op.inputs):
                # fed by an operator already reported: do not report the consequences
                self.failed.update(op.outputs)
                continue
            try:
                if self.input_quant_t is not None and not self.tquant_shape:
                    self.tquant_shape.append(_hwc(self.T(self.input_quant_t).shape))
                    self.tquant.append(self.quant(self.input_quant_t, "model input"))
                if not op.inputs or not op.outputs or op.inputs[0] < 0:
                    raise _Skip("no input or output")
                h(op)
            except _Skip as e:
                self.op_problems.append((op.name, f"op {op.index}", str(e)))
                self.failed.update(op.outputs)
        if self.op_problems:
            self.problems.append(grouped(self.op_problems))
        if self.problems:
            self.fail(self.problems)
        n = len(self.layers)
        if n == 0:
            self.fail(["no conv / pool / dense / add layer"])
        out_ids = []
        for out_t in m.outputs:
            if out_t not in self.alias or self.alias[out_t][0] in (0, *out_ids):
                self.fail([f"model output (tensor {out_t}) is not a layer's output of its own"])
            out_ids.append(self.alias[out_t][0])
        if n not in out_ids:
            self.fail(["the last layer's output is not a model output"])
        if self.softmax is not None and len(out_ids) > 1:
            self.fail([f"op {self.softmax.index} SOFTMAX on a model with several outputs"])
        out_t = m.outputs[0]
        tail_softmax = None
        if self.softmax is not None:
            if self.softmax_in != n:
                self.fail([f"op {self.softmax.index} SOFTMAX (not at the tail)"])
            beta = self.softmax.opt.get("beta")
            tail_softmax = ir.TailSoftmax(beta=1.0 if beta is None else float(beta),
                                          quant=self.softmax_quant)
        ot = self.T(out_t)
        out_q = None
        if ot.scale is not None and len(ot.scale) == 1:
            out_q = ir.Quant.of(ot.scale, ot.zero_point)
        provenance = ir.Provenance(
            framework="tflite", layer_ops=tuple(self.layer_ops),
            layer_op_index=tuple(self.layer_op_index), folded=tuple(sorted(self.folded)),
            input_dtype=self.input_dtype, output_dtype=self.output_dtype,
            output_shape=tuple(ot.shape), output_quant=out_q,
            weight_scale_fixups=dict(self.fixups))
        net = ir.Network(name=self.name, input_shape=self.tquant_shape[0], layers=self.layers,
                         dtype="int8", input_quant=self.tquant[0], tensor_quant=self.tquant,
                         source=self.source, requant="fixed", tail_softmax=tail_softmax,
                         provenance=provenance,
                         outputs=tuple(out_ids) if len(out_ids) > 1 else ())
        try:
            net.validate()
        except ir.IRError as e:
            self.fail([f"IR validation failed: {e}"])
        return net

    def fail(self, problems: list[str]):
        raise UnsupportedModelError(f"{self.name}: cannot import TFLite model: "
                                    + "; ".join(problems))


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def loads_tflite(buf: bytes, name: str = "tflite_model", source: str = "") -> ir.Network:
    """Import a TFLite model from its bytes (see :func:`load_tflite`)."""
    try:
        model = _read(bytes(buf))
    except Exception as e:  # the generated reader fails in many ways on bad input
        raise UnsupportedModelError(_one_line(
            f"{name}: not a readable TFLite flatbuffer (corrupt or truncated file): "
            f"{type(e).__name__}: {e}")) from None
    try:
        return _Converter(model, name, source).run()
    except UnsupportedModelError:
        raise
    except (IndexError, ValueError, TypeError, KeyError, OverflowError) as e:
        # inconsistent data that slipped past the checks: still a bad model, one line
        raise UnsupportedModelError(_one_line(
            f"{name}: inconsistent TFLite model: {type(e).__name__}: {e}")) from None


def load_tflite(path) -> ir.Network:
    """Read an int8 ``.tflite`` file into an :class:`msfopt.ir.Network` (validated).

    Raises :class:`msfopt.importers.UnsupportedModelError` (one line naming every offending
    operator index and op type) for unsupported operators or structures and for unreadable or
    truncated files; ``FileNotFoundError`` / ``OSError`` when the file cannot be read at all."""
    p = Path(path)
    return loads_tflite(p.read_bytes(), name=p.stem, source=str(p))


# ------------------------------------------------------------------------------------------------
# TFLM's integer activation clamp
# ------------------------------------------------------------------------------------------------

def _tflm_quantize(scale: float, zero_point: int, f: float) -> int:
    """TFLM's ``Quantize`` helper of kernel_util: zero_point + (int32)TfLiteRound(f / scale), the
    division in float32 and std::round (half away from zero)."""
    with np.errstate(over="ignore", divide="ignore"):
        tmp = float(np.float32(np.float32(f) / np.float32(scale)))
    r = math.floor(abs(tmp) + 0.5) if math.isfinite(tmp) else tmp
    if not (-2.0 ** 31 <= r <= 2.0 ** 31 - 1):
        raise ValueError(f"activation bound {f:g} / scale {scale:g} overflows int32 (TFLM "
                         "rejects the model)")
    return int(zero_point) + int(math.copysign(r, tmp))


def tflm_activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """int8 (act_min, act_max) of a fused activation exactly as TFLM's
    ``CalculateActivationRangeQuantized`` computes it from the output's float32 scale."""
    if act == "none":
        return -128, 127
    lo = max(-128, _tflm_quantize(scale, zero_point, 0.0))
    hi = 127 if act == "relu" else min(127, _tflm_quantize(scale, zero_point, 6.0))
    return lo, hi
