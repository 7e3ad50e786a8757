"""Model IR: a CNN as an ordered list of layers over numbered tensors.

Tensor ids: tensor 0 is the network input, tensor ``l + 1`` is the output of layer ``l``.
So for a plain chain, layer ``l`` reads tensor ``l`` and the fusion DAG's node ``l`` is exactly
tensor ``l`` (the paper's X_l).  The IR is a graph of ops over tensors: a layer reads any earlier
tensors (``srcs``, in operand order: a residual add its two summands, a concat its parts, a
squeeze-excite multiply the map and its gate), so skip connections and branches are explicit
edges of the IR; the layer order is one topological order of that graph.

Layout is H x W x C (NHWC without the batch).  Weights of conv layers are stored as
``(C_out, kh, kw, C_in / groups)`` (OHWI), dense weights as ``(C_out, C_in)`` where the input is
flattened in H, W, C order.

Activations are folded into their producer as a clamp (``act``: none / relu / relu6).  In a
quantised int8 network every layer also carries that clamp as integers, ``act_min`` /
``act_max``, computed ONCE where the quantisation is assigned, exactly as the source framework
does (the TFLite importer: TFLM's ``CalculateActivationRangeQuantized``, float32 division and
round half away from zero; the ONNX importer: the int8 bounds of the graph's Clip, or ONNX
``QuantizeLinear`` of the float bounds, round half to even; :func:`msfopt.weights.init_weights`:
``QuantizeLinear``, as its ONNX export states).  Every reader (code generator, exporter) uses these
fields; nothing re-derives them from ``act`` and the scale.

Facts an importer learns that change the arithmetic are declared fields too, never extra attributes:
``Network.requant`` (the requantisation arithmetic the model was made with), ``Network.tail_softmax``
(an int8 softmax after the last layer, :class:`TailSoftmax`) and ``Layer.gap_rounding`` (how an int8
global pool rounds).  ``Network.provenance`` (:class:`Provenance`) records what the importer saw in
the source file, for messages and tests only.  Every copy (``dataclasses.replace``,
:func:`with_layers`) keeps them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

#: operation kinds of the IR
CONV = "conv"          # regular convolution (groups == 1, or grouped)
DW = "dw"              # depthwise convolution (groups == C_in == C_out)
MAXPOOL = "maxpool"
AVGPOOL = "avgpool"
GAP = "gap"            # global average pooling -> 1 x 1 x C
DENSE = "dense"        # fully connected on the flattened input -> 1 x 1 x C_out
ADD = "add"            # elementwise add of src and src2 (``sub``: src - src2; with ``rsub``
                       # src2 - src); src2 may broadcast (add_operand_shapes)
# graph ops (ops over any earlier tensors; unfused blocks for now)
CONCAT = "concat"      # channel concatenation of srcs (any number, same H x W)
SLICE = "slice"        # channels [chan[0], chan[1]) of src (Split / Slice on channels)
SHUFFLE = "shuffle"    # channel shuffle in ``groups`` (Reshape [g, C/g] -> Transpose -> Reshape)
ACT = "act"            # standalone elementwise function ``fn`` of src (see ACT_FNS)
MUL = "mul"            # src * src2 (same shape, 1 x 1 x C or 1 x 1 x 1 broadcast) or src * weight
RESIZE = "resize"      # nearest / bilinear resampling of H x W (``resize``: a ResizeSpec)
CONVT = "convt"        # transposed convolution (weights OHWI (C_out, kh, kw, C_in), groups 1)
RESHAPE = "reshape"    # the same bytes (H x W x C, row-major) under another shape
OPS = (CONV, DW, MAXPOOL, AVGPOOL, GAP, DENSE, ADD, CONCAT, SLICE, SHUFFLE, ACT, MUL, RESIZE,
       CONVT, RESHAPE)
#: ops that slide a window over the rows of their input and can be fused tile by tile
WINDOW_OPS = (CONV, DW, MAXPOOL, AVGPOOL)
#: ops a fused block runs tile by tile: the window ops and the standalone activations (a 1 x 1
#: window of stride 1 without padding, the Layer defaults, which ACT layers must keep)
PIPELINE_OPS = WINDOW_OPS + (ACT,)

def add_operand_shapes(h: int, w: int, c: int) -> tuple:
    """Shapes an ADD's second input may have for an (h, w, c) output: the same, one value per
    channel (1 x 1 x c: a per-image channel mean), one per pixel (h x w x 1) or one value."""
    return ((h, w, c), (1, 1, c), (h, w, 1), (1, 1, 1))


#: ops whose output element (y, x, c) depends only on input element(s) (y, x, c) (broadcast
#: operands aside): they may overwrite a dying same-shape input
ELEMENTWISE_OPS = (ADD, ACT, MUL)
#: functions of an ACT layer.  float: x -> relu max(x, 0); clip clamp(x, *fclip); leaky
#: x < 0 ? alpha x : x; prelu x < 0 ? weight[c] x : x; hardsigmoid clamp(alpha x + beta, 0, 1);
#: hardswish x * clamp(x / 6 + 1 / 2, 0, 1); sigmoid; tanh; swish x * sigmoid(x); affine
#: weight[c] x + bias[c]; quantize: identity (an int8 requantisation between two grids)
ACT_FNS = ("relu", "clip", "leaky", "prelu", "hardsigmoid", "hardswish", "sigmoid", "tanh",
           "swish", "affine", "quantize")
ACTS = ("none", "relu", "relu6")
#: int8 AVGPOOL rounding in float requantisation (see Layer.avg_rounding)
AVG_ROUNDINGS = ("qlinear", "qdq")
#: int8 GAP rounding in fixed requantisation (see Layer.gap_rounding)
GAP_ROUNDINGS = ("msfopt", "tflm-avgpool", "tflm-mean")
#: requantisation arithmetic of a quantised network (see Network.requant)
REQUANTS = ("float", "fixed")
DTYPES = {"int8": 1, "float32": 4}


class IRError(ValueError):
    """An inconsistent network description."""


@dataclass(frozen=True)
class Quant:
    """Affine quantisation: real = scale * (q - zero_point). Per-tensor (len 1) or per-channel."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None  # channel axis of the per-channel case (in the IR's layout)

    @staticmethod
    def of(scale, zero_point=0, axis=None) -> "Quant":
        s = tuple(float(x) for x in np.atleast_1d(np.asarray(scale, dtype=np.float64)))
        z = tuple(int(x) for x in np.atleast_1d(np.asarray(zero_point, dtype=np.int64)))
        if len(z) == 1 and len(s) > 1:
            z = z * len(s)
        if len(s) != len(z):
            raise IRError("quantisation scale and zero point lengths differ")
        if any(not (x > 0.0) or not np.isfinite(x) for x in s):
            raise IRError("quantisation scales must be positive and finite")
        return Quant(s, z, axis if len(s) > 1 else None)

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class ResizeSpec:
    """How a RESIZE layer maps output to input coordinates, in its framework's terms (the code
    generator turns it into the kernel's parameters, :mod:`msfopt.mcu_runtime.resize_params`)."""
    mode: str                                  # "nearest" | "bilinear"
    framework: str                             # "onnx" | "tflite": whose arithmetic
    coord: str = "half_pixel"                  # ONNX coordinate_transformation_mode
    nearest: str = "round_prefer_floor"        # ONNX nearest_mode
    scales: tuple[float, float] | None = None  # ONNX scales input (H, W); None: sizes given
    align_corners: bool = False                # TFLite options
    half_pixel_centers: bool = False


@dataclass
class Layer:
    op: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    groups: int = 1
    dilation: tuple[int, int] = (1, 1)  # conv / depthwise: tap spacing (rows, columns)
    act: str = "none"
    # tensor ids of the inputs, in the op's operand order; () -> (this layer's index,)
    srcs: tuple[int, ...] = ()
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    w_quant: Quant | None = None
    count_include_pad: bool = False  # AVGPOOL: divide by the full window (True) or valid taps only
    name: str = ""
    # int8 clamp of the folded activation on the output's integer grid (quantised int8 networks;
    # None elsewhere).  Set where the quantisation is assigned; see the module docstring.
    act_min: int | None = None
    act_max: int | None = None
    # int8 AVGPOOL, float requantisation: "qlinear" = onnxruntime's QLinearAveragePool
    # (rne(avg / y_scale + y_zp)); "qdq" = the ONNX spec path DequantizeLinear -> AveragePool ->
    # QuantizeLinear (rne(avg / y_scale) + y_zp).  avg = float32 mean of the dequantised taps.
    avg_rounding: str = "qlinear"
    # int8 GAP, fixed requantisation: "msfopt" = the zero-point-corrected sum times the input /
    # output fixed-point multiplier, then a rounding division by H W; "tflm-avgpool" = TFLite
    # Micro's average pool over the whole input (rounding division of the raw sum, no
    # requantisation: the executor runs it as an unpadded whole-input average pool, never as a
    # streaming GAP tail); "tflm-mean" = TFLite Micro's mean over H, W (1 / (H W) folded into the
    # multiplier).
    gap_rounding: str = "msfopt"
    # ACT: the function (ACT_FNS) and its float parameters (leaky / hardsigmoid alpha, beta;
    # clip bounds); prelu slopes and affine scales are ``weight`` (C,), affine offsets ``bias``
    fn: str = ""
    alpha: float = 0.0
    beta: float = 0.0
    fclip: tuple[float, float] | None = None
    # SLICE: the channel range read
    chan: tuple[int, int] | None = None
    # CONCAT: the axis joined, 2 = channels, 1 = width (same rows and channels)
    axis: int = 2
    # int8 MUL / ADD of an ONNX QDQ model: onnxruntime runs DequantizeLinear -> float Mul / Add
    # -> QuantizeLinear unfused (float32 product / sum of the dequantised inputs,
    # QuantizeLinear's rounding) instead of QLinearMul's / QLinearAdd's arithmetic
    qdq: bool = False
    # RESIZE: the coordinate mapping
    resize: ResizeSpec | None = None
    # TFLite SUB (int8, the requantisation arithmetic of ADD): an ADD computes src - src2 (the
    # second input's scaled value subtracted), an int8 ACT "affine" (a constant ``bias``, unit
    # slope) computes bias - src (c - x).  x - c is an affine of the negated constant.
    sub: bool = False
    # an ADD whose arithmetic takes its operands in the order (src2, src): a subtracting ADD
    # whose minuend is the broadcast second input, src2 - src (SUB(c, x) of a per-channel /
    # per-pixel activation c and a map x; the map stays src, the kernel's in1), or a QLinearAdd
    # whose first input A is src2 (its float arithmetic is not symmetric in A and B)
    rsub: bool = False

    # -- inputs -------------------------------------------------------------------------------
    @property
    def src(self) -> int:
        """The first input's tensor id."""
        return self.srcs[0]

    @property
    def src2(self) -> int | None:
        """The second input's tensor id (ADD's skip tensor, MUL's other factor), or None."""
        return self.srcs[1] if len(self.srcs) > 1 else None

    # -- derived geometry -------------------------------------------------------------------
    @property
    def kh(self) -> int:
        return self.kernel[0]

    @property
    def kw(self) -> int:
        return self.kernel[1]

    @property
    def ekh(self) -> int:
        """Rows the window spans (the kernel height stretched by the dilation)."""
        return (self.kernel[0] - 1) * self.dilation[0] + 1

    @property
    def ekw(self) -> int:
        """Columns the window spans."""
        return (self.kernel[1] - 1) * self.dilation[1] + 1

    @property
    def sh(self) -> int:
        return self.stride[0]

    @property
    def sw(self) -> int:
        return self.stride[1]

    @property
    def c_in(self) -> int:
        return self.in_shape[2]

    @property
    def c_out(self) -> int:
        return self.out_shape[2]

    def macs_per_output(self) -> int:
        """Multiply-accumulates per output element (pool window taps count as MACs, as in the paper)."""
        if self.op == CONV:
            return self.kh * self.kw * (self.c_in // self.groups)
        if self.op in (DW, MAXPOOL, AVGPOOL):
            return self.kh * self.kw
        if self.op == GAP:
            return self.in_shape[0] * self.in_shape[1]
        if self.op == DENSE:
            h, w, c = self.in_shape
            return h * w * c
        if self.op == CONVT:   # nominal: every tap of every input channel (the C kernel counts it)
            return self.kh * self.kw * self.c_in
        if self.op == RESIZE:
            return 4 if self.resize is not None and self.resize.mode == "bilinear" else 0
        return 0  # ADD and the other graph ops

    @property
    def macs(self) -> int:
        h, w, c = self.out_shape
        return h * w * c * self.macs_per_output()


def conv_out(size: int, k: int, s: int, p0: int, p1: int) -> int:
    """Output extent of a sliding window: floor((size + p0 + p1 - k) / s) + 1."""
    n = (size + p0 + p1 - k) // s + 1
    return n


@dataclass(frozen=True)
class TailSoftmax:
    """An int8 softmax over the channels of the network output, run after the last layer (TFLite
    classifiers end with one).  Not a layer: it needs no arena tensor of its own."""
    beta: float
    quant: Quant          # quantisation of the softmax output (the model's output)


@dataclass(frozen=True)
class Provenance:
    """What an importer saw in the source file, for messages and tests only: nothing computes with
    it (the facts that change the arithmetic are the declared fields ``Network.requant``,
    ``Network.tail_softmax`` and ``Layer.gap_rounding``)."""
    framework: str                                  # e.g. "tflite"
    layer_ops: tuple[str, ...] = ()                 # the framework's op name of each IR layer
    layer_op_index: tuple[int, ...] = ()            # the framework's operator index of each layer
    folded: tuple[int, ...] = ()                    # operators that became no layer
    input_dtype: str = ""                           # element type of the file's model input
    output_dtype: str = ""                          # ... and of its model output
    output_shape: tuple[int, ...] = ()              # the file's model output shape
    output_quant: Quant | None = None               # its quantisation, if per-tensor quantised
    weight_scale_fixups: dict = field(default_factory=dict)  # layer -> {"zero_scales": n, ...}
    notes: tuple[str, ...] = ()                     # what the importer assumed, to show the user
    # the source file's name of each IR tensor (ONNX: the value holding it, in a QDQ file the
    # QuantizeLinear output; "" where none): msfopt.qdq_explain finds onnxruntime's values
    tensor_names: tuple[str, ...] = ()


@dataclass
class Network:
    name: str
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    dtype: str = "int8"
    input_quant: Quant | None = None
    tensor_quant: list[Quant | None] = field(default_factory=list)  # per tensor id, may be empty
    source: str = ""
    # requantisation arithmetic the quantised model was made with: "float" = ONNX semantics
    # (onnxruntime's float requantisation: ONNX imports, the zoo), "fixed" = TFLite Micro's
    # integer-only arithmetic (TFLite imports).  The code generator's default.
    requant: str = "float"
    tail_softmax: TailSoftmax | None = None
    provenance: Provenance | None = None
    # the graph outputs (tensor ids) in the model's order; () means the last layer's output only.
    # The last layer's output is always one of them (layers are in a topological order of what
    # the outputs need).  Read through output_ids.
    outputs: tuple[int, ...] = ()

    def __post_init__(self):
        for i, layer in enumerate(self.layers):
            if not layer.srcs:
                layer.srcs = (i,)
            else:
                layer.srcs = tuple(int(t) for t in layer.srcs)
            if not layer.name:
                layer.name = f"L{i}_{layer.op}"
        if self.tensor_quant and len(self.tensor_quant) != len(self.layers) + 1:
            raise IRError("tensor_quant must have one entry per tensor (layers + 1)")

    # -- tensors ----------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def elem_bytes(self) -> int:
        return DTYPES[self.dtype]

    def tensor_shape(self, t: int) -> tuple[int, int, int]:
        return self.input_shape if t == 0 else self.layers[t - 1].out_shape

    def tensor_elems(self, t: int) -> int:
        h, w, c = self.tensor_shape(t)
        return h * w * c

    def tensor_bytes(self, t: int) -> int:
        return self.tensor_elems(t) * self.elem_bytes

    @property
    def output_ids(self) -> tuple[int, ...]:
        """The graph output tensors, in the model's order."""
        return tuple(self.outputs) if self.outputs else (self.n_layers,)

    def quant_of(self, t: int) -> Quant | None:
        if self.tensor_quant:
            return self.tensor_quant[t]
        return self.input_quant if t == 0 else None

    def inputs_of(self, i: int) -> tuple[int, ...]:
        return self.layers[i].srcs

    def consumers(self) -> list[list[int]]:
        """consumers()[t] = indices of the layers that read tensor t (ascending)."""
        cons: list[list[int]] = [[] for _ in range(self.n_layers + 1)]
        for i in range(self.n_layers):
            for t in self.inputs_of(i):
                cons[t].append(i)
        return cons

    def last_use(self) -> list[int]:
        """last_use()[t] = index of the last layer reading tensor t; the graph outputs get N
        (they are alive to the end)."""
        cons = self.consumers()
        n = self.n_layers
        outs = set(self.output_ids)
        out = []
        for t in range(n + 1):
            out.append(n if t in outs else (max(cons[t]) if cons[t] else t - 1))
        return out

    @property
    def is_chain(self) -> bool:
        return all(l.srcs == (i,) for i, l in enumerate(self.layers))

    @property
    def vanilla_macs(self) -> int:
        return sum(l.macs for l in self.layers)

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> "Network":
        if self.dtype not in DTYPES:
            raise IRError(f"unsupported dtype {self.dtype!r}")
        if not self.layers:
            raise IRError("network has no layers")
        if any(d <= 0 for d in self.input_shape):
            raise IRError(f"input shape {self.input_shape} is not positive")
        for i, l in enumerate(self.layers):
            where = f"layer {i} ({l.name}, {l.op})"
            if l.op not in OPS:
                raise IRError(f"{where}: unknown op")
            if l.act not in ACTS:
                raise IRError(f"{where}: unknown activation {l.act!r}")
            if not l.srcs or any(not (0 <= t <= i) for t in l.srcs):
                raise IRError(f"{where}: reads a tensor that is not produced before it")
            n_in = {ADD: (2, 2), CONCAT: (1, 10 ** 9), MUL: (1, 2)}.get(l.op, (1, 1))
            if l.op == CONVT:
                self._validate_convt(l, where)
            if not (n_in[0] <= len(l.srcs) <= n_in[1]):
                raise IRError(f"{where}: {len(l.srcs)} inputs (expected {n_in[0]}"
                              f"{'' if n_in[0] == n_in[1] else '+'})")
            if tuple(l.in_shape) != self.tensor_shape(l.src):
                raise IRError(f"{where}: input shape {l.in_shape} != tensor {l.src} shape "
                              f"{self.tensor_shape(l.src)}")
            h, w, c = l.in_shape
            if l.op in WINDOW_OPS:
                if min(l.kh, l.kw, l.sh, l.sw, *l.dilation) < 1 or min(l.pad) < 0:
                    raise IRError(f"{where}: kernel/stride/dilation must be >= 1 and padding >= 0")
                if l.dilation != (1, 1) and l.op not in (CONV, DW):
                    raise IRError(f"{where}: only convolutions may be dilated")
                ho = conv_out(h, l.ekh, l.sh, l.pad[0], l.pad[2])
                wo = conv_out(w, l.ekw, l.sw, l.pad[1], l.pad[3])
                if max(l.pad[0], l.pad[2]) >= l.ekh or max(l.pad[1], l.pad[3]) >= l.ekw:
                    raise IRError(f"{where}: padding must be smaller than the (dilated) kernel")
                co = c if l.op != CONV else l.out_shape[2]
                if (ho, wo, co) != tuple(l.out_shape) or ho < 1 or wo < 1:
                    raise IRError(f"{where}: output shape {l.out_shape} inconsistent, expected "
                                  f"{(ho, wo, co)}")
                if l.op == CONV and (c % l.groups or l.out_shape[2] % l.groups):
                    raise IRError(f"{where}: channels not divisible by groups")
                if l.op == DW and l.groups != c:
                    raise IRError(f"{where}: depthwise layer must have groups == channels")
            elif l.op == GAP:
                if tuple(l.out_shape) != (1, 1, c):
                    raise IRError(f"{where}: GAP output must be 1x1x{c}")
            elif l.op == DENSE:
                if l.out_shape[0] != 1 or l.out_shape[1] != 1:
                    raise IRError(f"{where}: dense output must be 1x1xC")
            elif l.op == ADD:
                h, w, c = l.in_shape
                if l.src2 is None or tuple(l.out_shape) != tuple(l.in_shape) or \
                        self.tensor_shape(l.src) != tuple(l.in_shape) or \
                        self.tensor_shape(l.src2) not in add_operand_shapes(h, w, c):
                    raise IRError(f"{where}: add inputs/output shapes differ (the second input "
                                  f"may broadcast: 1x1x{c}, {h}x{w}x1 or 1x1x1)")
            else:
                self._validate_graph_op(l, where)
            if l.avg_rounding not in AVG_ROUNDINGS:
                raise IRError(f"{where}: unknown avg_rounding {l.avg_rounding!r}")
            if l.gap_rounding not in GAP_ROUNDINGS:
                raise IRError(f"{where}: unknown gap_rounding {l.gap_rounding!r}")
            if l.gap_rounding != "msfopt" and l.op != GAP:
                raise IRError(f"{where}: gap_rounding {l.gap_rounding!r} on a non-GAP layer")
            self._validate_sub(l, where)
            self._validate_rsub(l, where)
            self._validate_clamp(i, l, where)
            if l.weight is not None:
                exp = self.weight_shape(l)
                if exp is not None and tuple(l.weight.shape) != exp:
                    raise IRError(f"{where}: weight shape {l.weight.shape} != {exp}")
        self._validate_facts()
        return self

    def _validate_sub(self, l: Layer, where: str):
        """``sub``: a bool; only in an int8 network, on an ADD or an ACT affine of a constant
        without a slope (TFLite's SUB of two activations, c - x)."""
        if not isinstance(l.sub, (bool, np.bool_)):
            raise IRError(f"{where}: sub must be a bool, not {l.sub!r}")
        if not l.sub:
            return
        if self.dtype != "int8" and l.op != ADD:   # float: msf_binary_f32 subtracts
            raise IRError(f"{where}: sub on a {self.dtype} network (only an add subtracts)")
        if l.op == ACT and l.fn == "affine":
            if l.weight is not None or l.bias is None:
                raise IRError(f"{where}: a subtracting affine is int8 constant minus input "
                              "(a bias, no slope)")
        elif l.op != ADD:
            raise IRError(f"{where}: sub is only for an add or an int8 affine")

    @staticmethod
    def _validate_rsub(l: Layer, where: str):
        """``rsub``: a bool, only on an ADD (operands in the order src2, src)."""
        if not isinstance(l.rsub, (bool, np.bool_)):
            raise IRError(f"{where}: rsub must be a bool, not {l.rsub!r}")
        if l.rsub and l.op != ADD:
            raise IRError(f"{where}: rsub is only for an add")

    @staticmethod
    def _validate_convt(l: Layer, where: str):
        """out = s (in - 1) + (k - 1) d + 1 - pad_begin - pad_end per axis (pad_end may be
        negative: ONNX output_padding, TFLite's output size)."""
        if l.groups != 1 or min(l.kh, l.kw, l.sh, l.sw, *l.dilation) < 1 or min(l.pad[:2]) < 0:
            raise IRError(f"{where}: transposed conv needs groups 1, kernel/stride/dilation >= 1 "
                          "and begin pads >= 0")
        for ax, (n, s, e, p0, p1, o) in enumerate(((l.in_shape[0], l.sh, l.ekh, l.pad[0],
                                                    l.pad[2], l.out_shape[0]),
                                                   (l.in_shape[1], l.sw, l.ekw, l.pad[1],
                                                    l.pad[3], l.out_shape[1]))):
            if s * (n - 1) + e - p0 - p1 != o or o < 1:
                raise IRError(f"{where}: transposed conv output extent {o} inconsistent")

    def _validate_graph_op(self, l: Layer, where: str):
        """Shapes and attributes of CONCAT, SLICE, SHUFFLE, ACT, MUL."""
        h, w, c = l.in_shape
        out = tuple(l.out_shape)
        if l.op == CONCAT:
            shapes = [self.tensor_shape(t) for t in l.srcs]
            if l.axis == 2:
                ok = all(s[:2] == (h, w) for s in shapes) and \
                    out == (h, w, sum(s[2] for s in shapes))
            elif l.axis == 1:
                ok = all(s[0] == h and s[2] == c for s in shapes) and \
                    out == (h, sum(s[1] for s in shapes), c)
            else:
                ok = False
            if not ok:
                raise IRError(f"{where}: concat of {shapes} on axis {l.axis} cannot give {out}")
        elif l.op == RESHAPE:
            if h * w * c != out[0] * out[1] * out[2]:
                raise IRError(f"{where}: reshape of {l.in_shape} to {out} changes the size")
        elif l.op == SLICE:
            if l.chan is None or not (0 <= l.chan[0] < l.chan[1] <= c) \
                    or out != (h, w, l.chan[1] - l.chan[0]):
                raise IRError(f"{where}: channel slice {l.chan} of {l.in_shape} cannot give {out}")
        elif l.op == SHUFFLE:
            if l.groups < 1 or c % l.groups or out != (h, w, c):
                raise IRError(f"{where}: channel shuffle of {c} channels in {l.groups} groups")
        elif l.op == ACT:
            if l.fn not in ACT_FNS:
                raise IRError(f"{where}: unknown function {l.fn!r} (one of {', '.join(ACT_FNS)})")
            if out != (h, w, c):
                raise IRError(f"{where}: output shape {out} != input shape {l.in_shape}")
            if l.fn in ("prelu", "affine") and self.dtype == "float32" and (
                    l.weight is None or np.asarray(l.weight).shape != (c,)):
                raise IRError(f"{where}: {l.fn} needs {c} per-channel weights")
            if l.fn == "affine" and self.dtype == "float32" and (
                    l.bias is None or np.asarray(l.bias).shape != (c,)):
                raise IRError(f"{where}: affine needs {c} per-channel offsets")
            if l.fn == "clip" and (l.fclip is None or not (l.fclip[0] <= l.fclip[1])):
                raise IRError(f"{where}: clip bounds {l.fclip} are not an interval")
            if (tuple(l.kernel), tuple(l.stride), tuple(l.pad), tuple(l.dilation)) != \
                    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)):
                raise IRError(f"{where}: an activation's window must be 1x1, stride 1, no padding")
        elif l.op == RESIZE:
            if l.resize is None or l.resize.mode not in ("nearest", "bilinear") or \
                    l.resize.framework not in ("onnx", "tflite") or out[2] != c:
                raise IRError(f"{where}: resize needs a ResizeSpec and keeps the channels")
        elif l.op == CONVT:
            pass  # checked with the window ops' inputs (_validate_convt)
        elif l.op == MUL:
            if out != (h, w, c):
                raise IRError(f"{where}: output shape {out} != input shape {l.in_shape}")
            other = self.tensor_shape(l.src2) if l.src2 is not None else (
                None if l.weight is None else (1, 1, int(np.asarray(l.weight).size)))
            if other is None:
                raise IRError(f"{where}: mul has one input and no constant factor")
            if other not in ((h, w, c), (1, 1, c), (1, 1, 1)):
                raise IRError(f"{where}: factor of shape {other} does not broadcast to {out}")

    def _validate_facts(self):
        """requant, tail_softmax, provenance, outputs: declared types and values."""
        outs = self.output_ids
        if len(set(outs)) != len(outs) or any(not (1 <= t <= self.n_layers) for t in outs) \
                or self.n_layers not in outs:
            raise IRError(f"outputs {outs} must be distinct layer outputs including the last "
                          f"layer's ({self.n_layers})")
        if self.requant not in REQUANTS:
            raise IRError(f"unknown requantisation {self.requant!r} (one of {', '.join(REQUANTS)})")
        if self.requant == "fixed" and self.dtype != "int8":
            raise IRError(f"fixed-point requantisation on a {self.dtype} network")
        sm = self.tail_softmax
        if sm is not None:
            if not isinstance(sm, TailSoftmax) or not isinstance(sm.quant, Quant):
                raise IRError("tail_softmax must be a TailSoftmax with a Quant")
            if isinstance(sm.beta, bool) or not isinstance(sm.beta, (int, float)) \
                    or not np.isfinite(sm.beta):
                raise IRError(f"tail softmax beta {sm.beta!r} is not a finite number")
        pv = self.provenance
        if pv is not None:
            if not isinstance(pv, Provenance):
                raise IRError("provenance must be a Provenance")
            for what, per_layer in (("layer_ops", pv.layer_ops),
                                    ("layer_op_index", pv.layer_op_index)):
                if per_layer and len(per_layer) != self.n_layers:
                    raise IRError(f"provenance.{what} must have one entry per layer")
            if pv.tensor_names and len(pv.tensor_names) != self.n_layers + 1:
                raise IRError("provenance.tensor_names must have one entry per tensor")

    @property
    def is_quantised(self) -> bool:
        """int8 with quantisation parameters (integer arithmetic is defined)."""
        return self.dtype == "int8" and bool(self.tensor_quant or self.input_quant)

    def _validate_clamp(self, i: int, l: Layer, where: str):
        """act_min / act_max: ints on the output's int8 grid, consistent with ``act``."""
        have = (l.act_min is not None, l.act_max is not None)
        if have[0] != have[1]:
            raise IRError(f"{where}: act_min and act_max must be set together")
        if not have[0]:
            if self.is_quantised:
                raise IRError(f"{where}: int8 layer has no integer activation clamp "
                              "(act_min/act_max); set it where the quantisation is assigned")
            return
        if self.dtype != "int8":
            raise IRError(f"{where}: integer activation clamp on a {self.dtype} network")
        lo, hi = l.act_min, l.act_max
        if isinstance(lo, bool) or isinstance(hi, bool) or \
                not isinstance(lo, (int, np.integer)) or not isinstance(hi, (int, np.integer)):
            raise IRError(f"{where}: act_min/act_max must be integers")
        if not (-128 <= lo <= hi <= 127):
            raise IRError(f"{where}: activation clamp [{lo}, {hi}] is not within [-128, 127]")
        q = self.quant_of(i + 1)
        if q is None or q.per_channel:
            return
        zp, s = int(q.zero_point[0]), float(q.scale[0])
        want_lo = -128 if l.act == "none" else max(-128, zp)
        if lo != want_lo:
            raise IRError(f"{where}: act_min {lo} inconsistent with act {l.act!r} and output zero "
                          f"point {zp} (expected {want_lo})")
        if l.act in ("none", "relu"):
            ok = hi == 127
        else:  # relu6: 6 / scale rounded by some framework rule (ties may go either way)
            six = 6.0 / s
            tol = 0.5 + 1e-5 * max(1.0, six)
            ok = abs((hi - zp) - six) <= tol if hi < 127 else zp + six >= 127 - tol
        if not ok:
            raise IRError(f"{where}: act_max {hi} inconsistent with act {l.act!r} and output "
                          f"quantisation {s:g}/{zp}")

    @staticmethod
    def weight_shape(l: Layer) -> tuple[int, ...] | None:
        if l.op == CONVT:
            return (l.out_shape[2], l.kh, l.kw, l.in_shape[2])
        if l.op in (CONV, DW):
            return (l.out_shape[2], l.kh, l.kw, l.in_shape[2] // l.groups)
        if l.op == DENSE:
            h, w, c = l.in_shape
            return (l.out_shape[2], h * w * c)
        return None

    def summary_rows(self) -> list[dict]:
        rows = []
        for i, l in enumerate(self.layers):
            rows.append({
                "index": i, "name": l.name, "op": l.op, "in": l.in_shape, "out": l.out_shape,
                "kernel": l.kernel, "stride": l.stride, "pad": l.pad, "groups": l.groups,
                "act": l.act if l.op != ACT else l.fn, "srcs": l.srcs, "macs": l.macs,
                "in_out_bytes": (sum(self.tensor_bytes(t) for t in dict.fromkeys(l.srcs))
                                 + self.tensor_bytes(i + 1)),
            })
        return rows


# -- integer clamps -------------------------------------------------------------------------------

def quantize_linear_s8(v: float, scale: float, zero_point: int) -> int:
    """ONNX ``QuantizeLinear`` of one value to int8, as onnxruntime and ``onnx.reference`` compute
    it: saturate(rne(float32(v) / float32(scale)) + zero_point), round half to even."""
    x = np.float32(v)
    if np.isnan(x):
        raise IRError("cannot quantise NaN")
    if np.isinf(x):
        return 127 if x > 0 else -128
    with np.errstate(over="ignore"):
        r = np.float32(x / np.float32(scale))
    if np.isinf(r):
        return 127 if r > 0 else -128
    return int(np.clip(int(np.rint(r)) + int(zero_point), -128, 127))


def quantize_linear_clamp(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """(act_min, act_max) of a ReLU / ReLU6 / no activation whose float bounds are quantised with
    ONNX ``QuantizeLinear`` (a QDQ graph's Clip / Relu before its QuantizeLinear; the zoo nets,
    whose ONNX export states exactly these ints)."""
    if act == "none":
        return -128, 127
    lo = quantize_linear_s8(0.0, scale, zero_point)
    hi = 127 if act == "relu" else quantize_linear_s8(6.0, scale, zero_point)
    return lo, hi


# -- builders used by the zoo and the importers --------------------------------------------------

def window_layer(op: str, in_shape: Sequence[int], c_out: int | None, k, s=1, pad=0, *,
                 groups: int | None = None, act: str = "none", name: str = "",
                 count_include_pad: bool = False, dilation=(1, 1)) -> Layer:
    """Make a conv/dw/pool layer, computing its output shape. k, s: int or (h, w);
    pad: int (symmetric), (ph, pw) or (top, left, bottom, right)."""
    kh, kw = (k, k) if isinstance(k, int) else tuple(k)
    sh, sw = (s, s) if isinstance(s, int) else tuple(s)
    if isinstance(pad, int):
        pt = pl = pb = pr = pad
    elif len(pad) == 2:
        pt, pl = pad
        pb, pr = pad
    else:
        pt, pl, pb, pr = pad
    h, w, c = in_shape
    if op == DW:
        groups = c
        c_out = c
    elif op in (MAXPOOL, AVGPOOL):
        groups = 1
        c_out = c
    elif groups is None:
        groups = 1
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    ho = conv_out(h, (kh - 1) * dh + 1, sh, pt, pb)
    wo = conv_out(w, (kw - 1) * dw + 1, sw, pl, pr)
    return Layer(op=op, in_shape=(h, w, c), out_shape=(ho, wo, c_out), kernel=(kh, kw),
                 stride=(sh, sw), pad=(pt, pl, pb, pr), groups=groups, act=act, name=name,
                 count_include_pad=count_include_pad, dilation=(dh, dw))


def chain(name: str, input_shape: Sequence[int], specs: Iterable[tuple], dtype="int8") -> Network:
    """Build a chain network from (op, c_out, k, s, p) tuples."""
    layers: list[Layer] = []
    shape = tuple(input_shape)
    for spec in specs:
        op, c_out, k, s, p = spec
        layer = window_layer(op, shape, c_out, k, s, p)
        layers.append(layer)
        shape = layer.out_shape
    return Network(name=name, input_shape=tuple(input_shape), layers=layers, dtype=dtype).validate()


def with_layers(net: Network, layers: list[Layer], **kw) -> Network:
    return replace(net, layers=layers, **kw)
