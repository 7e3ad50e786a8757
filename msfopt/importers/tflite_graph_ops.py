"""TFLite import of the graph ops of real-world int8 models: standalone activations (HARD_SWISH,
LOGISTIC, TANH, LEAKY_RELU, RELU, RELU6, an int8 -> int8 QUANTIZE inside the network), MUL
(squeeze-excite gates, swish, constant factors), ADD / SUB of a constant, SUB of two
activations and of an activation from a constant, CONCATENATION,
SPLIT / SPLIT_V, the channel shuffle RESHAPE -> TRANSPOSE -> RESHAPE, RESIZE_NEAREST_NEIGHBOR /
RESIZE_BILINEAR and TRANSPOSE_CONV.

A mixin of :class:`msfopt.importers.tflite_import._Converter`, which owns the bookkeeping
(``get``, ``act_tensor``, ``quant``, ``const``, ``weight_quant``, ``check_out``, ``add_layer``,
``Skip``); each handler turns one TFLite operator into one IR layer (:mod:`msfopt.ir`).  What each
becomes, and why it is bit-exact with TFLite Micro (the code generator reproduces TFLM's
reference-kernel arithmetic from these IR facts):

==========================  ========================================================================
TFLite op                   IR layer
==========================  ========================================================================
PRELU                       ACT ``prelu``: ``weight`` = the int8 slopes (1 or C), ``w_quant``
                            their quantisation (TFLM's CalculatePreluParams).
HARD_SWISH, LOGISTIC,       ACT ``hardswish`` / ``sigmoid`` / ``tanh`` / ``leaky`` (alpha) /
TANH, LEAKY_RELU, RELU,     ``relu`` / ``clip`` (0, 6) / ``quantize``: a 256-entry table of TFLM's
RELU6, QUANTIZE (int8 ->    integer kernel (``eltwise_params.tflm_table``).  LOGISTIC needs output
int8, inside the network)   zero point -128 (TFLM's requirement); TFLM's LOGISTIC / TANH / RELU6
                            kernels ignore the output quantisation (1/256, 1/128, the input's),
                            which the tables reproduce byte for byte.
MUL of two activations      MUL ``srcs = (map, factor)``, the factor of the same shape, [1,1,C]
                            or a scalar (TFLM's broadcast kernel has MulElementwise's arithmetic);
                            fused activation NONE / RELU / RELU6.
MUL by a constant           MUL with ``weight`` = the int8 constant (1 or C values) and ``w_quant``
                            its quantisation (MobileNetV3's 1/6 and input Rescaling); a
                            per-channel quantised constant: its first scale / zero point, the
                            TfLiteTensor.params TFLM's MUL reads.
ADD of a constant scalar    ACT ``affine`` with unit slope (``weight`` None), ``bias`` = the int8
                            constant (1 value) and ``w_quant`` its quantisation.  int8
                            ADD(x, c) is a pure function of x: the code generator builds its
                            256-entry table with TFLM's AddFunc arithmetic
                            (``requant.add_fixed_params``: left shift 20, the three
                            QuantizeMultiplier multipliers, RoundingDivideByPOT(SRDHM(.)) per
                            step).  A [C] constant: the same arithmetic per channel
                            (msf_prelu_s8 MSF_ELT_ADD_CONST, the constant's summand
                            precomputed); per-channel quantised: its first scale / zero point,
                            the TfLiteTensor.params TFLM's ADD reads.
SUB of a constant           SUB(x, k), k a scalar or [C] constant: the ADD-of-a-constant layer
                            with the constant negated on its own scale (a zero point keeping every
                            value in int8).  TFLM's SUB subtracts the scaled summand,
                            RDBPOT(SRDHM((k - zp) << 20, m2), -s2), with ADD's multipliers; the
                            summand of -(k - zp) is minus that except at an SRDHM tie (rounded
                            upwards), where every int8 input is checked through both output
                            requantisations and a difference is refused.
SUB of two activations      ADD with ``sub`` (``srcs`` in operand order, minuend first): TFLM's
                            SUB Prepare computes ADD's multipliers and Eval subtracts the scaled
                            second input (msf_add_s8's ``sub``).  One operand may broadcast
                            ([1,1,1,C], [1,H,W,1] or a scalar; TFLM's BroadcastSubRecursively
                            has SubFunc's arithmetic): the map is ``src``, a broadcast minuend
                            sets ``rsub``; the layer runs msf_mul_s8's binary add mode.
SUB(k, x), k a constant     ACT ``affine`` with ``sub`` (``bias`` = k, its params as for ADD):
                            a scalar is a 256-entry table of scaled(k) - scaled(x); a [C]
                            constant runs MSF_ELT_ADD_CONST with the input multiplier negated,
                            exact except at an SRDHM tie (rounded upwards): every int8 input is
                            checked through the output requantisation, a difference is refused.
SPLIT, SPLIT_V              One SLICE (``chan``) per used output, on the channel (last) axis only
                            (a negative axis counts from the end; SPLIT_V's -1 size inferred).
                            TFLM copies the bytes: each part keeps its output's quantisation.
RESHAPE -> TRANSPOSE ->     Keras / TF's channel shuffle: RESHAPE [1, H, W, C] -> [.., g, C/g],
RESHAPE                     TRANSPOSE swapping the last two axes, RESHAPE back, each tensor read
                            by the next op only: one SHUFFLE (``groups`` g, the op ONNX's pattern
                            becomes).  Any other TRANSPOSE is refused.
CONCATENATION               CONCAT on the channels, or ``axis=1`` (the IR's width) for [1, N, k]
                            tensors (a detector's per-scale boxes).  TFLM copies the bytes and
                            rejects a model
                            whose inputs and output quantisation differ, so such a model is
                            rejected here too (nothing to requantise).
RESIZE_NEAREST_NEIGHBOR,    RESIZE with ``ResizeSpec(framework="tflite", align_corners,
RESIZE_BILINEAR             half_pixel_centers)``; constant size tensor; equal input / output
                            quantisation (TFLM moves / interpolates raw int8 values).
TRANSPOSE_CONV              CONVT: weights already OHWI (C_out, kh, kw, C_in), int8, zero points
                            0, per-channel or per-tensor; optional int32 bias (input 3); begin
                            pads as TFLM computes them (``resize_params.convt_tflite_geometry``:
                            ComputePaddingHeightWidth on the OUTPUT extent), end pads
                            s (in - 1) + k - begin - out (negative when TFLite crops).
==========================  ========================================================================

Anything else in these ops (broadcasts other than [1,1,C] / scalar, concatenation on another
axis, a fused activation TFLM does not apply, float or int16 tensors, non-constant sizes) is an
unsupported form reported with its reason.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..mcu_runtime import eltwise_params, resize_params

_INT8, _INT32 = 9, 2
_SAME, _VALID = 0, 1

#: TFLite standalone activations -> (IR ACT fn, the TFLM table op used to check the parameters)
_UNARY = {"HARD_SWISH": ("hardswish", "hard_swish"), "LOGISTIC": ("sigmoid", "logistic"),
          "TANH": ("tanh", "tanh"), "LEAKY_RELU": ("leaky", "leaky_relu"),
          "RELU": ("relu", "relu"), "RELU6": ("clip", "relu6")}
#: TFLite ops this mixin handles (QUANTIZE and ADD are dispatched by the converter)
GRAPH_OPS = frozenset(_UNARY) | {"PRELU", "MUL", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR",
                                 "RESIZE_BILINEAR", "TRANSPOSE_CONV", "SPLIT", "SPLIT_V", "SUB",
                                 "TRANSPOSE"}


def graph_options(name: str, table) -> dict:
    """The builtin options of a graph op as a dict (``{}`` when the op has none or none are
    stored; ``_present`` marks a stored table)."""
    import tflite
    spec = {
        "MUL": (tflite.MulOptions, lambda o: dict(act=o.FusedActivationFunction())),
        "CONCATENATION": (tflite.ConcatenationOptions,
                          lambda o: dict(axis=o.Axis(), act=o.FusedActivationFunction())),
        "RESIZE_BILINEAR": (tflite.ResizeBilinearOptions,
                            lambda o: dict(align_corners=bool(o.AlignCorners()),
                                           half_pixel_centers=bool(o.HalfPixelCenters()))),
        "RESIZE_NEAREST_NEIGHBOR": (tflite.ResizeNearestNeighborOptions,
                                    lambda o: dict(align_corners=bool(o.AlignCorners()),
                                                   half_pixel_centers=bool(o.HalfPixelCenters()))),
        "TRANSPOSE_CONV": (tflite.TransposeConvOptions,
                           lambda o: dict(padding=o.Padding(), stride=(o.StrideH(), o.StrideW()),
                                          act=o.FusedActivationFunction())),
        "LEAKY_RELU": (tflite.LeakyReluOptions, lambda o: dict(alpha=float(o.Alpha()))),
        "SPLIT": (tflite.SplitOptions, lambda o: dict(num_splits=o.NumSplits())),
        "SPLIT_V": (tflite.SplitVOptions, lambda o: dict(num_splits=o.NumSplits())),
        "SUB": (tflite.SubOptions, lambda o: dict(act=o.FusedActivationFunction())),
    }.get(name)
    if spec is None or table is None:
        return {}
    cls, read = spec
    o = cls()
    o.Init(table.Bytes, table.Pos)
    d = read(o)
    d["_present"] = True
    return d


def _broadcasts(small, big) -> bool:
    """``small`` (H, W, C) broadcasts to ``big`` the way the IR's MUL allows: equal, [1,1,C] or a
    scalar."""
    return small in (big, (1, 1, big[2]), (1, 1, 1))


class GraphOpsMixin:
    """Handlers of :data:`GRAPH_OPS`, :meth:`add_constant` (an ADD with a constant operand) and
    :meth:`requantize` (an int8 -> int8 QUANTIZE inside the network)."""

    def graph_handlers(self) -> dict:
        h = {name: self.unary for name in _UNARY}
        h.update({"PRELU": self.prelu, "MUL": self.mul, "CONCATENATION": self.concat,
                  "RESIZE_NEAREST_NEIGHBOR": self.resize, "RESIZE_BILINEAR": self.resize,
                  "TRANSPOSE_CONV": self.transpose_conv, "SPLIT": self.split,
                  "SPLIT_V": self.split, "SUB": self.sub, "TRANSPOSE": self.transpose})
        return h

    # ---- helpers ----------------------------------------------------------------------------
    def is_const(self, t: int) -> bool:
        """Tensor t holds data in the file (a constant operand)."""
        if t < 0:
            return False
        b = self.T(t).buffer
        return 0 < b < len(self.m.data) and self.m.data[b] is not None

    def _int8_const(self, t: int, what: str) -> tuple[np.ndarray, ir.Quant]:
        """An int8 constant operand, per-tensor quantised: (values flat, Quant)."""
        tt = self.T(t)
        if tt.type != _INT8:
            raise self.Skip(f"{what} is not int8")
        if tt.scale is None or len(tt.scale) != 1:
            raise self.Skip(f"{what} is not quantised per tensor")
        v = self.const(t, what).reshape(-1).astype(np.int8)
        return v, self.quant(t, what)

    def _int8_const_params(self, t: int, what: str) -> tuple[np.ndarray, ir.Quant]:
        """An int8 constant operand as TFLM's elementwise kernels read it: its values (flat) and
        TfLiteTensor.params, the FIRST scale / zero point even when the file quantises it per
        channel (TFLM's allocator always fills params from entry 0; ADD / SUB / MUL read only
        params)."""
        tt = self.T(t)
        if tt.type != _INT8:
            raise self.Skip(f"{what} is not int8")
        if tt.scale is None or len(tt.scale) < 1:
            raise self.Skip(f"{what} is not quantised")
        v = self.const(t, what).reshape(-1).astype(np.int8)
        try:
            return v, ir.Quant.of(tt.scale[0], tt.zero_point[0])
        except ir.IRError as e:
            raise self.Skip(f"{what}: {e}") from None

    def _unary_layer(self, op, fn: str, table_op: str, **attrs):
        src, _, _ = self.get(op.inputs[0], "input")
        it = self.act_tensor(op.inputs[0], "input")
        ot = self.act_tensor(op.outputs[0], "output")
        shape = self.shape_of(src)
        # the table TFLM's Prepare + Eval would compute: its parameter errors are import errors
        try:
            eltwise_params.tflm_table(table_op, it.scale[0], it.zero_point[0], ot.scale[0],
                                      ot.zero_point[0], **attrs)
        except ValueError as e:
            raise self.Skip(str(e)) from None
        kw = {}
        if fn == "leaky":
            kw["alpha"] = float(attrs["alpha"])
        if fn == "clip":
            kw["fclip"] = (0.0, 6.0)
        layer = ir.Layer(op=ir.ACT, in_shape=shape, out_shape=shape, srcs=(src,), fn=fn, **kw)
        self.add_layer(op, layer, self.check_out(op, layer))

    # ---- standalone activations -------------------------------------------------------------
    def unary(self, op):
        fn, table_op = _UNARY[op.name]
        attrs = {}
        if op.name == "LEAKY_RELU":
            if not op.opt.get("_present"):
                raise self.Skip("options missing")
            attrs["alpha"] = op.opt["alpha"]
        self._unary_layer(op, fn, table_op, **attrs)

    def prelu(self, op):
        """PRELU(x, alpha): ACT ``prelu`` with ``weight`` = the int8 slopes (1 or C values, the
        constant alpha tensor broadcast over H, W) and ``w_quant`` their quantisation (TFLM's
        CalculatePreluParams arithmetic, ``eltwise_params.prelu_params_tflm``)."""
        if len(op.inputs) != 2:
            raise self.Skip(f"{len(op.inputs)} inputs")
        src, _, _ = self.get(op.inputs[0], "input")
        self.act_tensor(op.inputs[0], "input")
        shape = self.shape_of(src)
        if not self.is_const(op.inputs[1]):
            raise self.Skip("alpha is not a constant")
        alpha, aq = self._int8_const(op.inputs[1], "alpha")
        dims = list(self.T(op.inputs[1]).shape)
        if not (alpha.size == 1 or (dims and dims[-1] == shape[2]
                                    and all(d == 1 for d in dims[:-1]))):
            raise self.Skip(f"alpha of shape {dims} is not one slope per channel")
        layer = ir.Layer(op=ir.ACT, in_shape=shape, out_shape=shape, srcs=(src,), fn="prelu",
                         weight=alpha, w_quant=aq)
        self.add_layer(op, layer, self.check_out(op, layer))

    def requantize(self, op):
        """QUANTIZE int8 -> int8 inside the network: an ACT ``quantize`` (TFLM's Requantize)."""
        for t, what in ((op.inputs[0], "input"), (op.outputs[0], "output")):
            if self.T(t).type != _INT8:
                raise self.Skip(f"requantisation inside the network with a non-int8 {what}")
        self._unary_layer(op, "quantize", "quantize")

    # ---- multiply -----------------------------------------------------------------------------
    def mul(self, op):
        if len(op.inputs) != 2:
            raise self.Skip(f"{len(op.inputs)} inputs")
        a, b = op.inputs
        act = self.act(op.opt)
        if self.is_const(a) and self.is_const(b):
            raise self.Skip("both factors are constants")
        if self.is_const(a):
            a, b = b, a
        src, _, _ = self.get(a, "first factor")
        self.act_tensor(a, "first factor")
        h, w, c = shape = self.shape_of(src)
        if self.is_const(b):
            # per-channel quantised: TFLM's MUL reads the first scale / zero point (params)
            k, kq = self._int8_const_params(b, "constant factor")
            dims = list(self.T(b).shape)
            if not (k.size == 1 or (dims and dims[-1] == c and all(d == 1 for d in dims[:-1]))):
                raise self.Skip(f"constant factor of shape {list(self.T(b).shape)} does not "
                                f"broadcast over the channels of {list(shape)}")
            layer = ir.Layer(op=ir.MUL, in_shape=shape, out_shape=shape, srcs=(src,), act=act,
                             weight=k, w_quant=kq)
        else:
            src2, _, _ = self.get(b, "second factor")
            self.act_tensor(b, "second factor")
            if self._fold_swish(op, src, src2, a, b, act):
                return
            s2 = self.shape_of(src2)
            if not _broadcasts(s2, shape) and _broadcasts(shape, s2):
                src, src2, shape, s2 = src2, src, s2, shape  # the full map first
            h, w, c = shape
            if s2 not in ((h, w, c), (1, 1, c), (1, 1, 1)):
                raise self.Skip(f"broadcasting multiply of {list(self.T(op.inputs[0]).shape)} "
                                f"and {list(self.T(op.inputs[1]).shape)}")
            layer = ir.Layer(op=ir.MUL, in_shape=shape, out_shape=shape, srcs=(src, src2),
                             act=act)
        self.add_layer(op, layer, self.check_out(op, layer))

    def _fold_swish(self, op, src: int, src2: int, a: int, b: int, act: str) -> bool:
        """MUL(x, LOGISTIC(x)) where the LOGISTIC's output feeds only this MUL: the LOGISTIC
        layer becomes one ACT ``swish`` (int8: a 256-entry table of TFLM's LOGISTIC to its fixed
        output grid (1/256, -128), then TFLM's MUL), so the pair runs as one elementwise step
        that fused blocks can pipeline.  Returns False (nothing changed) otherwise."""
        if src2 < 1 or src2 != len(self.layers):
            return False
        sig = self.layers[src2 - 1]
        if sig.op != ir.ACT or sig.fn != "sigmoid" or sig.srcs != (src,) or \
                len(self.consumers.get(b, [])) != 1 or b in self.m.outputs:
            return False
        q = self.tquant[src2]
        if (float(q.scale[0]), int(q.zero_point[0])) != eltwise_params.TFLM_LOGISTIC_OUT:
            return False
        out_q = self.check_out(op, sig)
        if out_q.per_channel:
            return False
        sig.fn, sig.act = "swish", act
        try:
            sig.act_min, sig.act_max = self.activation_range(act, out_q)
        except ValueError as e:
            raise self.Skip(str(e)) from None
        sig.name = f"{sig.name}+{op.index}_mul"
        self.tquant[src2] = out_q
        self.layer_ops[src2 - 1] = "LOGISTIC+MUL"
        self.alias[op.outputs[0]] = (src2, (0, 0, 0, 0), None)
        return True

    # ---- add of a constant --------------------------------------------------------------------
    def add_constant(self, op, x: int, k: int, negate: bool = False):
        """ADD(x, constant): ACT ``affine`` (unit slope, ``bias`` the int8 constant, ``w_quant``
        its quantisation).  A scalar is a table of TFLM's AddFunc; a [C] constant (shape [C] or
        [1, ..., 1, C]) runs msf_prelu_s8's MSF_ELT_ADD_CONST.  A per-channel quantised constant
        is read as TFLM reads it: TfLiteTensor.params, its first scale and zero point.
        ``negate``: SUB(x, constant), the same layer with the constant's summand negated
        (:meth:`_negated_addend`)."""
        src, _, _ = self.get(x, "input")
        it = self.act_tensor(x, "input")
        shape = self.shape_of(src)
        dims = list(self.T(k).shape)
        what = "constant subtrahend" if negate else "constant addend"
        v, kq = self._int8_const_params(k, what)
        if not (v.size == 1 or (dims and dims[-1] == shape[2] and v.size == shape[2]
                                and all(d == 1 for d in dims[:-1]))):
            raise self.Skip(f"{'sub' if negate else 'add'} of a constant of shape {dims} (a "
                            f"scalar or one value per channel of {list(shape)})")
        if negate:
            ot = self.act_tensor(op.outputs[0], "output")
            v, kq = self._negated_addend(v, kq, it.scale[0], int(it.zero_point[0]),
                                         ot.scale[0], int(ot.zero_point[0]))
        layer = ir.Layer(op=ir.ACT, in_shape=shape, out_shape=shape, srcs=(src,), fn="affine",
                         act=self.act(op.opt), bias=v, w_quant=kq)
        self.add_layer(op, layer, self.check_out(op, layer))

    # ---- concatenation ------------------------------------------------------------------------
    def concat(self, op):
        o = op.opt
        if not o.get("_present"):
            raise self.Skip("options missing")
        if self.act(o) != "none":
            raise self.Skip(f"fused activation {self.act(o)} on a concatenation")
        ot = self.act_tensor(op.outputs[0], "output")
        rank = len(ot.shape)
        axis = o["axis"] % max(rank, 1)
        # the channels, or the N axis of [1, N, k] tensors (the IR's width: one row of N)
        w_axis = rank == 3 and axis == 1 and ot.shape[0] == 1
        if axis != rank - 1 and not w_axis:
            raise self.Skip(f"concatenation on axis {o['axis']} of a {rank}-D tensor (channels, "
                            "or axis 1 of [1, N, k] tensors)")
        srcs = []
        for j, t in enumerate(op.inputs):
            src, _, _ = self.get(t, f"input {j}")
            it = self.act_tensor(t, f"input {j}")
            if len(it.shape) != rank:
                raise self.Skip(f"input {j} has rank {len(it.shape)}, the output {rank}")
            if not self.same_quant(it, ot):
                raise self.Skip(f"input {j} quantisation ({it.scale[0]:g}, {it.zero_point[0]}) "
                                f"differs from the output's ({ot.scale[0]:g}, "
                                f"{ot.zero_point[0]}): TFLite Micro rejects such a model")
            srcs.append(src)
        shapes = [self.shape_of(s) for s in srcs]
        h, w, c = shapes[0]
        if w_axis:
            if any(s[0] != 1 or s[2] != c for s in shapes):
                raise self.Skip(f"concatenation of [1, N, k] tensors of different k {shapes}")
            layer = ir.Layer(op=ir.CONCAT, in_shape=shapes[0],
                             out_shape=(1, sum(s[1] for s in shapes), c), srcs=tuple(srcs),
                             axis=1)
            self.add_layer(op, layer, self.check_out(op, layer))
            return
        if any(s[:2] != (h, w) for s in shapes):
            raise self.Skip(f"concatenation of maps of different sizes {shapes}")
        layer = ir.Layer(op=ir.CONCAT, in_shape=shapes[0],
                         out_shape=(h, w, sum(s[2] for s in shapes)), srcs=tuple(srcs))
        self.add_layer(op, layer, self.check_out(op, layer))

    # ---- upsampling ---------------------------------------------------------------------------
    def resize(self, op):
        if len(op.inputs) != 2:
            raise self.Skip(f"{len(op.inputs)} inputs")
        src, _, _ = self.get(op.inputs[0], "input")
        it = self.act_tensor(op.inputs[0], "input")
        ot = self.act_tensor(op.outputs[0], "output")
        if len(it.shape) != 4:
            raise self.Skip("input is not 4-D")
        if not self.is_const(op.inputs[1]):
            raise self.Skip("size is not a constant")
        size = [int(v) for v in self.const(op.inputs[1], "size").reshape(-1)]
        if len(size) != 2:
            raise self.Skip(f"size {size} (need [height, width])")
        if not self.same_quant(it, ot):
            raise self.Skip("input and output quantisation differ (TFLite Micro resamples the "
                            "raw int8 values)")
        h, w, c = self.shape_of(src)
        mode = "nearest" if op.name == "RESIZE_NEAREST_NEIGHBOR" else "bilinear"
        align, half = bool(op.opt.get("align_corners")), bool(op.opt.get("half_pixel_centers"))
        try:
            resize_params.tflite_resize_params(mode, (h, w), size, align_corners=align,
                                               half_pixel_centers=half)
        except ValueError as e:
            raise self.Skip(str(e)) from None
        layer = ir.Layer(op=ir.RESIZE, in_shape=(h, w, c), out_shape=(size[0], size[1], c),
                         srcs=(src,), resize=ir.ResizeSpec(mode=mode, framework="tflite",
                                                           align_corners=align,
                                                           half_pixel_centers=half))
        self.add_layer(op, layer, self.check_out(op, layer))

    # ---- transposed convolution ---------------------------------------------------------------
    def transpose_conv(self, op):
        o = op.opt
        if not o.get("_present"):
            raise self.Skip("options missing")
        if len(op.inputs) not in (3, 4):
            raise self.Skip(f"{len(op.inputs)} inputs (output shape, filter, input[, bias])")
        t_shape, t_w, t_x = op.inputs[:3]
        src, _, _ = self.get(t_x, "input")
        self.act_tensor(t_x, "input")
        h, w, cin = self.shape_of(src)
        if not self.is_const(t_shape):
            raise self.Skip("output shape is not a constant")
        oshape = [int(v) for v in self.const(t_shape, "output shape").reshape(-1)]
        ot = self.act_tensor(op.outputs[0], "output")
        if oshape != list(ot.shape) or len(oshape) != 4:
            raise self.Skip(f"output shape {oshape} != the output tensor's {list(ot.shape)}")
        wt = self.T(t_w)
        if wt.type != _INT8:
            raise self.Skip("filter is not int8")
        wgt = self.const(t_w, "filter")
        if wgt.ndim != 4 or wgt.shape[3] != cin:
            raise self.Skip(f"filter shape {list(wgt.shape)} for {cin} input channels")
        if wt.scale is not None and len(wt.scale) > 1 and wt.qdim != 0:
            raise self.Skip(f"filter quantised along axis {wt.qdim}")
        if wt.zero_point is not None and np.any(wt.zero_point != 0):
            raise self.Skip("filter zero points are not 0")
        cout, kh, kw, _ = wgt.shape
        if oshape[3] != cout:
            raise self.Skip(f"{cout} filters for {oshape[3]} output channels")
        has_bias = len(op.inputs) == 4 and op.inputs[3] >= 0
        bias = np.zeros(cout, np.int32)
        if has_bias:
            bt = self.T(op.inputs[3])
            if bt.type != _INT32:
                raise self.Skip("bias is not int32")
            bias = self.const(op.inputs[3], "bias").reshape(-1).astype(np.int32)
            if bias.shape != (cout,):
                raise self.Skip(f"bias has {bias.size} values for {cout} outputs")
        sh, sw = o["stride"]
        if min(sh, sw) < 1:
            raise self.Skip("stride < 1")
        if o["padding"] not in (_SAME, _VALID):
            raise self.Skip(f"padding mode {o['padding']}")
        oh, ow = oshape[1], oshape[2]
        g = resize_params.convt_tflite_geometry((oh, ow), (kh, kw), (sh, sw),
                                                "SAME" if o["padding"] == _SAME else "VALID")
        pt, pl = g["pad_top"], g["pad_left"]
        pb, pr = sh * (h - 1) + kh - pt - oh, sw * (w - 1) + kw - pl - ow
        wgt, bias, w_q = self.weight_quant(t_w, np.ascontiguousarray(wgt), bias, "filter")
        layer = ir.Layer(op=ir.CONVT, in_shape=(h, w, cin), out_shape=(oh, ow, cout),
                         kernel=(kh, kw), stride=(sh, sw), pad=(pt, pl, pb, pr), srcs=(src,),
                         act=self.act(o), weight=wgt, bias=bias if has_bias else None,
                         w_quant=w_q)
        self.add_layer(op, layer, self.check_out(op, layer))

    # ---- subtract ---------------------------------------------------------------------------
    def sub(self, op):
        """SUB(x, y) of two activations of one shape: an ADD with ``sub`` (msf_add_s8 subtracts
        the scaled second input, TFLM's SubElementwise); SUB(x, constant): the ADD-of-a-constant
        layer (:meth:`add_constant`) with the constant's summand negated; SUB(constant, x): an
        ACT affine with ``sub`` (:meth:`sub_from_constant`).  A SUB of two activations may
        broadcast one of them (one value per channel, per pixel, or one value): the full map is
        the layer's src, a broadcast minuend sets ``rsub``; TFLM's broadcast kernel applies the
        same per-element arithmetic."""
        if not op.opt.get("_present"):
            raise self.Skip("options missing")
        if len(op.inputs) != 2:
            raise self.Skip(f"{len(op.inputs)} inputs")
        a, b = op.inputs
        if self.is_const(a) and self.is_const(b):
            raise self.Skip("both operands are constants")
        if self.is_const(a):
            return self.sub_from_constant(op, a, b)
        if self.is_const(b):
            return self.add_constant(op, a, b, negate=True)
        src, _, _ = self.get(a, "first input")
        src2, _, _ = self.get(b, "second input")
        for t, what in ((a, "first input"), (b, "second input")):
            self.act_tensor(t, what)
        sa, sb = self.shape_of(src), self.shape_of(src2)
        rsub = False
        if sa != sb:
            # broadcast (TFLM's BroadcastSubRecursively: SubFunc per element): the full map is
            # the layer's src; a broadcast minuend sets rsub (src2 - src)
            if sb not in ir.add_operand_shapes(*sa):
                if sa not in ir.add_operand_shapes(*sb):
                    raise self.Skip(f"broadcasting subtraction of {list(self.T(a).shape)} and "
                                    f"{list(self.T(b).shape)} (only one value per channel, per "
                                    "pixel, or one value broadcasts)")
                src, src2, sa, rsub = src2, src, sb, True
        # operand order is the arithmetic's: src - src2 (no swap as for ADD), or rsub
        layer = ir.Layer(op=ir.ADD, in_shape=sa, out_shape=sa, act=self.act(op.opt),
                         srcs=(src, src2), sub=True, rsub=rsub)
        self.add_layer(op, layer, self.check_out(op, layer))

    def sub_from_constant(self, op, k: int, x: int):
        """SUB(k, x), k a scalar or [C] int8 constant (read as TFLM reads it: TfLiteTensor.params,
        its first scale / zero point): ACT ``affine`` with ``sub``, ``bias`` the constant.  A
        scalar is a 256-entry table of TFLM's arithmetic; a [C] constant runs msf_prelu_s8's
        MSF_ELT_ADD_CONST with the input multiplier negated, exact except at an SRDHM tie
        (checked on every int8 input, :func:`eltwise_params.sub_from_const_params`; a
        difference is refused with the input named)."""
        src, _, _ = self.get(x, "input")
        it = self.act_tensor(x, "input")
        shape = self.shape_of(src)
        dims = list(self.T(k).shape)
        v, kq = self._int8_const_params(k, "constant minuend")
        if not (v.size == 1 or (dims and dims[-1] == shape[2] and v.size == shape[2]
                                and all(d == 1 for d in dims[:-1]))):
            raise self.Skip(f"constant minus activation with a constant of shape {dims} (a "
                            f"scalar or one value per channel of {list(shape)})")
        layer = ir.Layer(op=ir.ACT, in_shape=shape, out_shape=shape, srcs=(src,), fn="affine",
                         act=self.act(op.opt), bias=v, w_quant=kq, sub=True)
        out_q = self.check_out(op, layer)
        if v.size > 1:
            try:
                lo, hi = self.activation_range(layer.act, out_q)
                p = eltwise_params.add_const_params_tflm(
                    it.scale[0], int(it.zero_point[0]), kq.scale[0], kq.zero_point[0], v,
                    out_q.scale[0], out_q.zero_point[0])
                eltwise_params.sub_from_const_params(p, lo, hi)
            except ValueError as e:
                raise self.Skip(str(e)) from None
        self.add_layer(op, layer, out_q)

    def _negated_addend(self, v: np.ndarray, kq: ir.Quant, x_scale, x_zp: int, y_scale,
                        y_zp: int):
        """The int8 constant (values, Quant) whose ADD summand is minus the SUB summand of
        ``v`` on ``kq``: TFLM's SUB computes RoundingDivideByPOT(SRDHM((v - zp) << 20, m2), -s2)
        and subtracts it, with the multipliers of ADD (the same Prepare arithmetic).  The
        negated difference -(v - zp) is put on the same scale with a zero point that keeps
        every value in int8.  SRDHM rounds ties upwards, so at a tie the negated summand is
        one off: then every int8 input is run through both output requantisations, and a
        difference on any is refused."""
        from ..mcu_runtime import requant
        zp = int(kq.zero_point[0])
        d = v.astype(np.int64) - zp
        lo, hi = max(-128, -128 + int(d.max())), min(127, 127 + int(d.min()))
        if lo > hi:
            raise self.Skip(f"constant subtrahend spans {int(d.max() - d.min())} steps: its "
                            "negation does not fit int8 on one zero point")
        z2 = min(max(zp, lo), hi)
        p = requant.add_fixed_params(x_scale, kq.scale[0], y_scale)

        def scaled(diff: int, mul: int, shift: int) -> int:
            s = (diff << p["left_shift"]) & 0xFFFFFFFF
            s = s - (1 << 32) if s >= 1 << 31 else s
            return eltwise_params.rdbpot(eltwise_params.srdhm32(s, mul), -shift)

        def summand(diff: int) -> int:
            return scaled(diff, p["in2_mul"], p["in2_shift"])

        def summand_x(q: int) -> int:
            return scaled(q - x_zp, p["in1_mul"], p["in1_shift"])

        def out(raw: int) -> int:   # the int8 output (the fused clamp is monotone: after it)
            r = eltwise_params.rdbpot(eltwise_params.srdhm32(raw, p["out_mul"]), -p["out_shift"])
            return min(127, max(-128, r + y_zp))
        for di in {int(x) for x in d}:
            if summand(-di) == -summand(di):
                continue
            for q in range(-128, 128):   # the input's summand: the same in SUB and ADD
                x = summand_x(q)
                if out(x - summand(di)) != out(x + summand(-di)):
                    raise self.Skip(f"constant subtrahend {di + zp} hits a rounding tie of "
                                    f"TFLM's SUB (input {q} would come out differently from a "
                                    "negated ADD)")
        return (z2 - d).astype(np.int8), ir.Quant.of(kq.scale[0], z2)

    # ---- channel split ----------------------------------------------------------------------
    def split(self, op):
        """SPLIT (inputs: axis, x) / SPLIT_V (x, size_splits, axis) on the channel axis (the
        last): one SLICE layer per used output, channels [c0, c0 + size).  TFLM copies the
        bytes; each part keeps its own output tensor's quantisation (a relabelling, exact)."""
        if op.name == "SPLIT":
            if len(op.inputs) != 2:
                raise self.Skip(f"{len(op.inputs)} inputs (axis, input)")
            t_axis, t_x = op.inputs
        else:
            if len(op.inputs) != 3:
                raise self.Skip(f"{len(op.inputs)} inputs (input, size_splits, axis)")
            t_x, t_sizes, t_axis = op.inputs
        src, _, _ = self.get(t_x, "input")
        it = self.act_tensor(t_x, "input")
        rank = len(it.shape)
        if not self.is_const(t_axis):
            raise self.Skip("axis is not a constant")
        ax = self.const(t_axis, "axis").reshape(-1)
        if ax.size != 1 or not -rank <= int(ax[0]) < rank:
            raise self.Skip(f"axis {ax.tolist()} for a {rank}-D input")
        axis = int(ax[0])
        if axis % rank != rank - 1:
            raise self.Skip(f"split on axis {axis} of a {rank}-D tensor (only the channel "
                            "axis, the last, maps onto channel slices)")
        h, w, c = self.shape_of(src)
        n = len(op.outputs)
        if op.name == "SPLIT":
            if c % n:
                raise self.Skip(f"{c} channels do not split into {n} equal parts")
            sizes = [c // n] * n
        else:
            if not self.is_const(t_sizes):
                raise self.Skip("size_splits is not a constant")
            sizes = [int(s) for s in self.const(t_sizes, "size_splits").reshape(-1)]
            if sizes.count(-1) == 1:
                sizes[sizes.index(-1)] = c - (sum(sizes) + 1)
            if len(sizes) != n or sum(sizes) != c or min(sizes) < 1:
                raise self.Skip(f"size_splits {sizes} do not partition {c} channels into {n} "
                                "non-empty outputs")
        if op.opt.get("_present") and op.opt.get("num_splits") not in (0, n):
            raise self.Skip(f"num_splits {op.opt['num_splits']} for {n} outputs")
        from dataclasses import replace
        c0 = 0
        for k, (size, t_out) in enumerate(zip(sizes, op.outputs)):
            if self.consumers.get(t_out) or t_out in self.m.outputs:
                part = replace(op, outputs=[t_out])
                layer = ir.Layer(op=ir.SLICE, in_shape=(h, w, c), out_shape=(h, w, size),
                                 srcs=(src,), chan=(c0, c0 + size))
                self.add_layer(part, layer, self.check_out(part, layer))
                layer.name += f":{k}"
            c0 += size

    # ---- channel shuffle ----------------------------------------------------------------------
    def transpose(self, op):
        """TRANSPOSE: only as the middle of a channel shuffle (:meth:`channel_shuffle`, which
        consumed it already); anything else moves data across axes the IR keeps fixed."""
        if op.index in self.shuffle_ops:
            self.folded.append(op.index)
            return
        perm = (self.const(op.inputs[1], "perm").reshape(-1).tolist()
                if len(op.inputs) > 1 and self.is_const(op.inputs[1]) else "?")
        raise self.Skip(f"perm {perm} of {list(self.T(op.inputs[0]).shape)} is not a channel "
                        "shuffle (RESHAPE [.., g, C/g] -> TRANSPOSE of the last two axes -> "
                        "RESHAPE back)")

    def channel_shuffle(self, op) -> str | None:
        """RESHAPE x [1, H, W, C] -> [.., g, C/g] (leading dims H W elements), TRANSPOSE
        swapping the last two axes, RESHAPE back to [1, H, W, C] (Keras / TF's channel shuffle,
        each intermediate tensor read only by the next op): one SHUFFLE layer of ``groups`` g
        (out channel j g + i = in channel i C/g + j, msf_channel_shuffle), named after the
        first RESHAPE; the TRANSPOSE and the second RESHAPE become no layer.  Returns None when
        done, else why the RESHAPE feeding a TRANSPOSE is not one (the caller's reason)."""
        t_view = op.outputs[0]
        cons = self.consumers.get(t_view, [])
        if len(cons) != 1 or self.m.ops[cons[0]].name != "TRANSPOSE" or t_view in self.m.outputs:
            return "its output is not read by one TRANSPOSE only"
        tr = self.m.ops[cons[0]]
        src, _, _ = self.get(op.inputs[0], "input")
        it = self.act_tensor(op.inputs[0], "input")
        h, w, c = self.shape_of(src)
        view = list(self.T(t_view).shape)
        if len(it.shape) != 4 or len(view) < 3 or view[-2] * view[-1] != c or \
                int(np.prod(view[:-2])) != h * w or view[-2] < 1:
            return f"{list(it.shape)} -> {view} does not split the channels into [g, C/g]"
        r = len(view)
        if len(tr.inputs) != 2 or not self.is_const(tr.inputs[1]) or \
                self.const(tr.inputs[1], "perm").reshape(-1).tolist() != \
                list(range(r - 2)) + [r - 1, r - 2]:
            return "the TRANSPOSE does not swap the last two axes"
        t_t = tr.outputs[0]
        cons2 = self.consumers.get(t_t, [])
        if len(cons2) != 1 or self.m.ops[cons2[0]].name != "RESHAPE" or t_t in self.m.outputs:
            return "the TRANSPOSE output is not read by one RESHAPE only"
        back = self.m.ops[cons2[0]]
        final = back.outputs[0]
        ft = self.act_tensor(final, "shuffle output")
        if list(ft.shape) != list(it.shape):
            return f"the last RESHAPE gives {list(ft.shape)}, not {list(it.shape)}"
        from dataclasses import replace
        whole = replace(op, name="RESHAPE+TRANSPOSE+RESHAPE", outputs=[final])
        layer = ir.Layer(op=ir.SHUFFLE, in_shape=(h, w, c), out_shape=(h, w, c), srcs=(src,),
                         groups=view[-2])
        self.add_layer(whole, layer, self.check_out(whole, layer))
        self.shuffle_ops.update((tr.index, back.index))
        return None
