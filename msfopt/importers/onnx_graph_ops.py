"""ONNX import of the graph ops: branches that merge or split (Concat, Split, Slice on channels,
the channel shuffle Reshape -> Transpose -> Reshape), standalone elementwise functions (PRelu,
LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Tanh, a BatchNormalization that follows no conv) and
the elementwise Mul (squeeze-excite gates, swish, constant factors).

A mixin of :class:`msfopt.importers.onnx_import._Importer` (which owns the value bookkeeping:
``_act``, ``_const``, ``_new_tensor``, ``_data_kind``, ``_check_inferred``); each ``_op_<Type>``
handler turns one node into IR layers (:mod:`msfopt.ir`: CONCAT, SLICE, SHUFFLE, ACT, MUL).
Float32 models, and the elementwise ops of int8 QDQ models (DequantizeLinear -> op ->
QuantizeLinear: the layer's output quantisation is bound by the QuantizeLinear that follows, and
the code generator reproduces onnxruntime's arithmetic).

Data movement on int8 tensors (Concat, Split, Slice, nearest Resize): in a QDQ island
(DequantizeLinear -> op -> QuantizeLinear) and in com.microsoft QLinearConcat every input whose
quantisation differs from the output's is first requantised by an ACT ``quantize`` layer (the
table QuantizeLinear(DequantizeLinear(q)), which is what onnxruntime computes on both paths);
the copy itself then moves bytes of one grid.  On QOperator int8 tensors (no Q / DQ around) the
output shares the input's quantisation.  A linear Resize is no copy: in a QDQ island onnxruntime
interpolates the dequantised input in float32 and quantises to the QuantizeLinear's grid (the
layer reads the input on its own grid, ``qdq`` set); on a QOperator int8 tensor it truncates the
float32 sum of the raw values (:mod:`msfopt.mcu_runtime.resize_params`).
"""
from __future__ import annotations

import numpy as np

from ..ir import ACT, CONCAT, CONVT, MUL, RESIZE, SHUFFLE, SLICE, Layer, ResizeSpec
from ..mcu_runtime import resize_params

#: ONNX op types this mixin handles
GRAPH_OPS = {"Concat", "Split", "Slice", "PRelu", "LeakyRelu", "HardSigmoid", "HardSwish",
             "Sigmoid", "Tanh", "Mul", "Resize", "ConvTranspose"}
#: the most groups a ConvTranspose may have (each group becomes a slice and a transposed conv)
MAX_CONVT_GROUPS = 16
#: elementwise unary ONNX ops -> (ACT function, attribute defaults (alpha, beta))
_UNARY = {"LeakyRelu": ("leaky", (0.01, 0.0)), "HardSigmoid": ("hardsigmoid", (0.2, 0.5)),
          "HardSwish": ("hardswish", (0.0, 0.0)), "Sigmoid": ("sigmoid", (0.0, 0.0)),
          "Tanh": ("tanh", (0.0, 0.0))}


class GraphOpsMixin:
    """Handlers of :data:`GRAPH_OPS` (and the standalone-activation fallback of Relu / Clip)."""

    # ---- helpers ----------------------------------------------------------------------------
    def _float_only(self, xs, what: str) -> str:
        kind = self._data_kind(list(xs))
        if kind != "float":
            raise self.NodeError(f"int8 {what} not supported yet")
        return kind

    def _eltwise_kind(self, xs, what: str) -> str:
        """float, or 'fq' for an elementwise op on dequantised int8 tensors (QDQ)."""
        kind = self._data_kind(list(xs))
        if kind == "q":
            raise self.NodeError(f"{what} on int8 tensors (QOperator form) not supported yet")
        return kind

    # ---- int8 data movement ---------------------------------------------------------------------
    def _q_of(self, x):
        q = self.tq.get(x.tid)
        if q is None:
            raise self.NodeError("quantisation of the input is unknown")
        return q

    def qdq_out_quant(self, name: str):
        """The quantisation of the float output ``name`` of an op inside a QDQ island: that of
        the QuantizeLinear node(s) reading it (all alike); the island must end there."""
        cons = self.by_input.get(name, [])
        if not cons or name in self.graph_outputs or \
                any(c.op_type != "QuantizeLinear" for c in cons):
            raise self.NodeError("output of an op on dequantised int8 tensors must be read only by "
                                 "QuantizeLinear (QDQ)")
        qs = []
        for c in cons:
            zp = self.vals.get(c.input[2]) if len(c.input) > 2 and c.input[2] else None
            qs.append(self._scale_zp(self.vals.get(c.input[1]), zp, "QuantizeLinear",
                                     tensor=c.output[0]))
        if any(not self.same_quant(q, qs[0]) for q in qs[1:]):
            raise self.NodeError("the QuantizeLinear nodes reading the output disagree")
        return qs[0]

    def requant_to(self, n, x, q, label=""):
        """int8 tensor ``x`` on the grid ``q``: ``x`` itself when already there, else a new ACT
        ``quantize`` layer (QuantizeLinear(DequantizeLinear(x)), onnxruntime's rounding)."""
        if self.same_quant(self._q_of(x), q):
            return x
        base = n.name or n.output[0]
        layer = Layer(op=ACT, in_shape=x.shape, out_shape=x.shape, srcs=(x.tid,), fn="quantize",
                      name=f"{base}:requant{label}")
        return self._new_tensor(layer, f"{n.output[0]}#requant{label}", x.layout, "q", quant=q,
                                order=x.order)

    def _copy_in(self, n, xs, kind: str, out_name: str):
        """Inputs of an int8 data-movement op, all on the output's grid, and that grid:
        QDQ ('fq') requantises to the following QuantizeLinear's; QOperator ('q') needs one
        shared grid (None while still unknown).  Float: (xs, None)."""
        if kind == "fq":
            q = self.qdq_out_quant(out_name)
            return [self.requant_to(n, x, q, f"{j}" if len(xs) > 1 else "")
                    for j, x in enumerate(xs)], q
        if kind == "q":
            qs = [self.tq.get(x.tid) for x in xs]
            if any(q is None for q in qs) and len(xs) > 1:
                raise self.NodeError("int8 inputs of unknown quantisation")
            if any(not self.same_quant(q, qs[0]) for q in qs[1:]):
                raise self.NodeError("int8 inputs with different quantisation (requantising "
                                     "them needs QLinearConcat or a QDQ island)")
            return xs, qs[0]
        return xs, None

    def _copy_out(self, layer, out_name: str, kind: str, q, layout="nchw"):
        """Append data-movement layer ``layer`` (its srcs on one grid ``q``) as ``out_name``."""
        out = self._new_tensor(layer, out_name, layout, kind, quant=q)
        if kind == "q" and q is None:   # shares the input's quantisation, bound later
            self.qlink.setdefault(layer.src, set()).add(out.tid)
            self.qlink.setdefault(out.tid, set()).add(layer.src)
        self._check_inferred(out_name, out)
        return out

    def _channel_axis(self, x, axis: int, what: str):
        if x.layout != "nchw":
            raise self.NodeError(f"{what} of a '{x.layout}' map not supported (NCHW only)")
        if axis < 0:
            axis += 4
        if axis != 1:
            raise self.NodeError(f"{what} on axis {axis} not supported (channels only)")

    def _unary_layer(self, n, x, fn: str, alpha=0.0, beta=0.0, weight=None, bias=None,
                     fclip=None):
        """A standalone ACT layer computing ``fn`` of feature map ``x``."""
        kind = self._eltwise_kind([x], n.op_type)
        layer = Layer(op=ACT, in_shape=x.shape, out_shape=x.shape, srcs=(x.tid,), fn=fn,
                      alpha=float(alpha), beta=float(beta), weight=weight, bias=bias,
                      fclip=fclip, name=n.name or "")
        out = self._new_tensor(layer, n.output[0], x.layout, kind, order=x.order)
        self._check_inferred(n.output[0], out)
        return out

    def standalone_clip(self, n, x, lo: float, hi: float):
        """A Relu / Clip that cannot fold into its producer (the network input, a tensor also
        read elsewhere, a concat or slice): a standalone clip."""
        return self._unary_layer(n, x, "clip", fclip=(float(lo), float(hi)))

    def _per_channel(self, v, c: int, what: str) -> np.ndarray:
        """A [C], [C,1,1], [1,C,1,1] or scalar constant as C float32 values."""
        arr = self._const(v, what).real()
        if arr.size == 1:
            return np.full(c, float(arr.reshape(-1)[0]), np.float32)
        sq = [d for d in arr.shape if d != 1]
        if arr.size != c or len(sq) != 1 or (arr.ndim >= 3 and arr.shape[-3] != c):
            raise self.NodeError(f"{what} of shape {list(arr.shape)} is not per channel ({c})")
        return arr.reshape(c).astype(np.float32)

    # ---- merge / split ------------------------------------------------------------------------
    def _op_Concat(self, n, ins, a):
        xs = [self._act(v, "Concat input") for v in ins]
        kind = self._data_kind(xs)
        self._concat(n, xs, int(a.get("axis", 1)), kind)

    def _concat(self, n, xs, axis: int, kind: str, q=None):
        for x in xs:
            self._channel_axis(x, axis, n.op_type)
        h, w, _ = xs[0].shape
        if any(x.shape[:2] != (h, w) for x in xs):
            raise self.NodeError(f"Concat of maps of different sizes {[x.shape for x in xs]}")
        if q is None:
            xs, q = self._copy_in(n, xs, kind, n.output[0])
        c = sum(x.shape[2] for x in xs)
        layer = Layer(op=CONCAT, in_shape=xs[0].shape, out_shape=(h, w, c),
                      srcs=tuple(x.tid for x in xs), name=n.name or "")
        self._copy_out(layer, n.output[0], kind, q)

    def _op_QLinearConcat(self, n, ins, a):
        """com.microsoft QLinearConcat(Y_scale, Y_zp, (X, X_scale, X_zp)...): each input not
        on Y's grid is requantised (onnxruntime's table of QuantizeLinear(DequantizeLinear))."""
        if len(ins) < 5 or (len(ins) - 2) % 3:
            raise self.NodeError(f"{len(ins)} inputs (expected Y_scale, Y_zero_point and "
                                 "(X, X_scale, X_zero_point) triples)")
        yq = self._scale_zp(ins[0], ins[1], "Y", tensor=n.output[0])
        xs = []
        for j in range(2, len(ins), 3):
            x = self._act(ins[j], "QLinearConcat input")
            if x.kind != "q":
                raise self.NodeError("QLinearConcat inputs must be int8 tensors")
            self._bind_quant(x, self._scale_zp(ins[j + 1], ins[j + 2], f"X{(j - 2) // 3}",
                                               tensor=n.input[j]), "QLinearConcat input")
            xs.append(x)
        for x in xs:
            self._channel_axis(x, int(a.get("axis", 1)), "QLinearConcat")
        xs = [self.requant_to(n, x, yq, f"{j}") for j, x in enumerate(xs)]
        self._concat(n, xs, int(a.get("axis", 1)), "q", q=yq)

    def _slice_layer(self, n, x, c0: int, c1: int, out_name: str, kind: str = "float"):
        h, w, c = x.shape
        (xr,), q = self._copy_in(n, [x], kind, out_name)
        if (c0, c1) == (0, c):
            if xr is x:    # the same values on the same grid
                self.vals[out_name] = x
            else:          # only the requantisation remains
                self.root[xr.tid] = out_name
                self.vals[out_name] = self.Act(xr.tid, xr.shape, xr.layout, "fq", xr.order)
            return
        layer = Layer(op=SLICE, in_shape=x.shape, out_shape=(h, w, c1 - c0), srcs=(xr.tid,),
                      chan=(c0, c1), name=(n.name or "") + (f":{out_name}"
                                                             if len(n.output) > 1 else ""))
        self._copy_out(layer, out_name, kind, q)

    def _op_Split(self, n, ins, a):
        x = self._act(ins[0])
        kind = self._data_kind([x])
        self._channel_axis(x, int(a.get("axis", 0)), "Split")
        c = x.shape[2]
        if len(ins) > 1 and ins[1] is not None:
            sizes = [int(v) for v in self._const(ins[1], "split").value.reshape(-1)]
        elif "split" in a:
            sizes = [int(v) for v in a["split"]]
        else:
            k = len(n.output)
            sizes = [-(-c // k)] * (k - 1)
            sizes.append(c - sum(sizes))
        if len(sizes) != len(n.output) or sum(sizes) != c or min(sizes) < 1:
            raise self.NodeError(f"Split sizes {sizes} do not partition {c} channels into "
                                 f"{len(n.output)} outputs")
        c0 = 0
        for size, name in zip(sizes, n.output):
            if name:
                self._slice_layer(n, x, c0, c0 + size, name, kind)
            c0 += size

    def _op_Slice(self, n, ins, a):
        x = self._act(ins[0])
        kind = self._data_kind([x])
        if len(ins) < 3:
            raise self.NodeError("Slice needs starts and ends inputs (opset >= 10)")
        vec = [None if (k >= len(ins) or ins[k] is None) else
               [int(v) for v in self._const(ins[k], "Slice parameter").value.reshape(-1)]
               for k in range(1, 5)]
        starts, ends, axes, steps = vec
        axes = axes or list(range(len(starts)))
        steps = steps or [1] * len(starts)
        c = x.shape[2]
        c0, c1 = 0, c
        for s0, e0, ax, st in zip(starts, ends, axes, steps):
            if ax < 0:
                ax += 4
            dims = {0: 1, 1: c, 2: x.shape[0], 3: x.shape[1]}
            if ax not in dims:
                raise self.NodeError(f"Slice axis {ax} out of range")
            size = dims[ax]
            b = max(0, min(size, s0 + size if s0 < 0 else s0))
            e = max(0, min(size, e0 + size if e0 < 0 else e0))
            if (b, e, st) == (0, size, 1):
                continue
            if ax != 1 or st != 1 or x.layout != "nchw":
                raise self.NodeError(f"Slice on axis {ax} (step {st}) not supported (channels "
                                     "only, step 1)")
            if e <= b:
                raise self.NodeError(f"empty Slice [{s0}, {e0}) of {size} channels")
            c0, c1 = b, e
        self._slice_layer(n, x, c0, c1, n.output[0], kind)

    # ---- channel shuffle: Reshape [1, g, C/g, H, W] -> Transpose(0, 2, 1, 3, 4) -> Reshape ----
    def grouped_view(self, x, dims):
        """The 5-D Reshape of a channel shuffle, or None when ``dims`` is not one."""
        h, w, c = x.shape
        if x.layout != "nchw" or len(dims) != 5 or dims[0] != 1 or dims[3:] != [h, w] \
                or dims[1] * dims[2] != c or dims[1] < 1:
            return None
        return self.Act(x.tid, x.shape, "grouped", x.kind, groups=dims[1])

    def grouped_transpose(self, x, perm):
        if x.layout == "grouped" and perm == [0, 2, 1, 3, 4]:
            return self.Act(x.tid, x.shape, "grouped_t", x.kind, groups=x.groups)
        return None

    def shuffle_from(self, n, x, dims):
        """The Reshape back to [1, C, H, W] after a grouped transpose: one SHUFFLE layer."""
        h, w, c = x.shape
        if x.layout != "grouped_t" or list(dims) != [1, c, h, w]:
            return None
        self._float_only([x], "channel shuffle")
        layer = Layer(op=SHUFFLE, in_shape=x.shape, out_shape=x.shape, srcs=(x.tid,),
                      groups=x.groups, name=n.name or "")
        out = self._new_tensor(layer, n.output[0], "nchw", "float")
        self._check_inferred(n.output[0], out)
        return out

    # ---- upsampling -------------------------------------------------------------------------
    def _op_Resize(self, n, ins, a):
        x = self._act(ins[0])
        if x.layout != "nchw":
            raise self.NodeError(f"Resize of a '{x.layout}' map not supported (NCHW only)")
        kind = self._data_kind([x])
        mode = self._str(a.get("mode", "nearest"))
        if mode not in ("nearest", "linear"):
            raise self.NodeError(f"Resize mode {mode!r} not supported (nearest, linear)")
        for attr, ok in (("antialias", 0), ("exclude_outside", 0)):
            if int(a.get(attr, ok)) != ok:
                raise self.NodeError(f"Resize {attr}={a[attr]} not supported")
        if "axes" in a or self._str(a.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
            raise self.NodeError("Resize axes / keep_aspect_ratio_policy not supported")
        coord = self._str(a.get("coordinate_transformation_mode", "half_pixel"))
        nearest = self._str(a.get("nearest_mode", "round_prefer_floor"))
        h, w, c = x.shape

        def vec(k, what):
            if len(ins) <= k or ins[k] is None:
                return None
            v = self._const(ins[k], what).value.reshape(-1)
            return None if v.size == 0 else v
        scales, sizes = vec(2, "Resize scales"), vec(3, "Resize sizes")
        kw = {}
        if scales is not None:
            if len(scales) != 4 or float(scales[0]) != 1.0 or float(scales[1]) != 1.0:
                raise self.NodeError(f"Resize scales {list(scales)} not supported (H, W only)")
            kw["scales"] = (float(scales[2]), float(scales[3]))
        elif sizes is not None:
            if len(sizes) != 4 or int(sizes[0]) != 1 or int(sizes[1]) != c:
                raise self.NodeError(f"Resize sizes {list(sizes)} not supported (H, W only)")
            kw["sizes"] = (int(sizes[2]), int(sizes[3]))
        else:
            raise self.NodeError("Resize needs constant scales or sizes")
        try:
            p = resize_params.onnx_resize_params(mode, (h, w), coord=coord, nearest_mode=nearest,
                                                 **kw)
        except ValueError as e:
            raise self.NodeError(str(e)) from None
        spec = ResizeSpec(mode="nearest" if mode == "nearest" else "bilinear", framework="onnx",
                          coord=coord, nearest=nearest, scales=kw.get("scales"))
        oh, ow = p["out_hw"]
        if kind == "fq" and mode == "linear":
            # DQ -> linear Resize -> Q: onnxruntime interpolates the dequantised values in
            # float32 and quantises the sum to the QuantizeLinear's grid (no requantisation
            # first: that would round twice); msf_resize_s8's MSF_RESIZE_S8_QDQ
            xr, q = x, self.qdq_out_quant(n.output[0])
        else:   # nearest: a copy on one grid; int8 linear (QOperator): raw values, truncated
            (xr,), q = self._copy_in(n, [x], kind, n.output[0])
        layer = Layer(op=RESIZE, in_shape=x.shape, out_shape=(oh, ow, c), srcs=(xr.tid,),
                      resize=spec, name=n.name or "", qdq=kind == "fq")
        self._copy_out(layer, n.output[0], kind, q)

    @staticmethod
    def _str(v):
        return v.decode() if isinstance(v, bytes) else str(v)

    def _op_ConvTranspose(self, n, ins, a):
        x = self._act(ins[0])
        if x.layout != "nchw":
            raise self.NodeError(f"ConvTranspose of a '{x.layout}' map not supported")
        kind = self._float_only([x], "ConvTranspose")
        w = self._const(ins[1], "ConvTranspose weight").real()
        groups = int(a.get("group", 1))
        if w.ndim != 4:
            raise self.NodeError("only 2-D ConvTranspose is supported")
        cin, cout_g, kh, kw_ = w.shape
        cout = cout_g * groups
        h, wd, c = x.shape
        if cin != c or groups < 1 or c % groups:
            raise self.NodeError(f"ConvTranspose weight {list(w.shape)} with group {groups} does "
                                 f"not match {c} input channels")
        if groups > MAX_CONVT_GROUPS:
            raise self.NodeError(f"ConvTranspose with group {groups} not supported (at most "
                                 f"{MAX_CONVT_GROUPS}: each group is its own layer)")
        try:
            geo = resize_params.convt_onnx_geometry(
                (h, wd), (kh, kw_), strides=a.get("strides", (1, 1)),
                pads=a.get("pads", (0, 0, 0, 0)), output_padding=a.get("output_padding", (0, 0)),
                dilations=a.get("dilations", (1, 1)),
                output_shape=list(a["output_shape"])[-2:] if "output_shape" in a else None,
                auto_pad=self._str(a.get("auto_pad", "NOTSET")))
        except ValueError as e:
            raise self.NodeError(str(e)) from None
        oh, ow = geo["out_hw"]
        ekh, ekw = (kh - 1) * geo["dh"] + 1, (kw_ - 1) * geo["dw"] + 1
        pb = geo["sh"] * (h - 1) + ekh - geo["pad_top"] - oh
        pr = geo["sw"] * (wd - 1) + ekw - geo["pad_left"] - ow
        bias = None
        if len(ins) > 2 and ins[2] is not None:
            bias = self._const(ins[2], "ConvTranspose bias").real().reshape(cout).astype(
                np.float32)
        geom = dict(kernel=(kh, kw_), stride=(geo["sh"], geo["sw"]),
                    pad=(geo["pad_top"], geo["pad_left"], pb, pr), dilation=(geo["dh"], geo["dw"]))
        if groups == 1:
            layer = Layer(op=CONVT, in_shape=x.shape, out_shape=(oh, ow, cout), srcs=(x.tid,),
                          name=n.name or "", bias=bias,
                          weight=resize_params.convt_weights_from_onnx(w).astype(np.float32),
                          **geom)
            out = self._new_tensor(layer, n.output[0], "nchw", kind)
            self._check_inferred(n.output[0], out)
            return
        # group g > 1: the convolutions of the g channel groups are independent: SLICE the
        # input channels of group j, a group-1 CONVT with its weights, CONCAT the outputs
        cg, base, parts = c // groups, n.name or n.output[0], []
        for j in range(groups):
            sl = Layer(op=SLICE, in_shape=x.shape, out_shape=(h, wd, cg), srcs=(x.tid,),
                       chan=(j * cg, (j + 1) * cg), name=f"{base}:in{j}")
            xs = self._new_tensor(sl, f"{n.output[0]}#in{j}", "nchw", kind)
            wj = w[j * cg:(j + 1) * cg]
            layer = Layer(op=CONVT, in_shape=xs.shape, out_shape=(oh, ow, cout_g),
                          srcs=(xs.tid,), name=f"{base}:g{j}",
                          bias=None if bias is None else bias[j * cout_g:(j + 1) * cout_g],
                          weight=resize_params.convt_weights_from_onnx(wj).astype(np.float32),
                          **geom)
            parts.append(self._new_tensor(layer, f"{n.output[0]}#g{j}", "nchw", kind).tid)
        cat = Layer(op=CONCAT, in_shape=(oh, ow, cout_g), out_shape=(oh, ow, cout),
                    srcs=tuple(parts), name=base)
        out = self._new_tensor(cat, n.output[0], "nchw", kind)
        self._check_inferred(n.output[0], out)

    # ---- elementwise --------------------------------------------------------------------------
    def _unary(self, n, ins, a):
        fn, (alpha, beta) = _UNARY[n.op_type]
        x = self._act(ins[0])
        self._unary_layer(n, x, fn, alpha=a.get("alpha", alpha), beta=a.get("beta", beta))

    _op_LeakyRelu = _op_HardSigmoid = _op_HardSwish = _op_Sigmoid = _op_Tanh = _unary

    def _op_PRelu(self, n, ins, a):
        x = self._act(ins[0])
        slope = self._per_channel(ins[1], x.shape[2], "PRelu slope")
        self._unary_layer(n, x, "prelu", weight=slope)

    def standalone_batchnorm(self, n, x, ins, eps: float):
        """BatchNormalization that follows no conv: a per-channel affine ACT layer."""
        c = x.shape[2]
        gamma, beta, mean, var = (self._per_channel(v, c, "BatchNormalization parameter")
                                  .astype(np.float64) for v in ins[1:5])
        k = gamma / np.sqrt(var + eps)
        self._unary_layer(n, x, "affine", weight=k.astype(np.float32),
                          bias=(beta - mean * k).astype(np.float32))

    def _fold_swish(self, n, x, y) -> bool:
        """Mul(x, Sigmoid(x)) (either order) whose Sigmoid feeds only the Mul: the Sigmoid layer
        becomes one ACT ``swish`` (float32 x * sigmoid(x), the same two roundings), so the pair
        is one elementwise step that fused blocks pipeline.  False when it does not apply."""
        for v, s in ((x, y), (y, x)):
            if s.tid < 1 or s.tid != len(self.layers):
                continue
            sig = self.layers[s.tid - 1]
            if sig.op == ACT and sig.fn == "sigmoid" and sig.act == "none" and \
                    sig.srcs == (v.tid,) and self._uses(self.root[s.tid]) == 1:
                sig.fn = "swish"
                sig.name = f"{sig.name}+{n.name or 'Mul'}"
                self.root[s.tid] = n.output[0]
                self.vals[n.output[0]] = s
                return True
        return False

    def _op_Mul(self, n, ins, a):
        x, y = ins[0], ins[1]
        if isinstance(x, self.Const) and not isinstance(y, self.Const):
            x, y = y, x
        x = self._act(x)
        h, w, c = x.shape
        if isinstance(y, self.Const):
            self._float_only([x], "Mul by a constant")
            v = y.real()
            if v.size == 1:
                k = v.reshape(1)
            else:
                k = self._per_channel(y, c, "Mul constant")
            layer = Layer(op=MUL, in_shape=x.shape, out_shape=x.shape, srcs=(x.tid,),
                          weight=np.asarray(k, np.float32), name=n.name or "")
            out = self._new_tensor(layer, n.output[0], x.layout, "float", order=x.order)
            self._check_inferred(n.output[0], out)
            return
        y = self._act(y)
        kind = self._eltwise_kind([x, y], "Mul")
        if kind == "float" and self._fold_swish(n, x, y):
            return
        if x.shape != y.shape and x.shape in ((1, 1, c), (1, 1, 1)) or \
                (x.shape == (1, 1, 1) and y.shape != (1, 1, 1)):
            x, y = y, x   # the full map first, the broadcast factor second
        h, w, c = x.shape
        if y.shape not in ((h, w, c), (1, 1, c), (1, 1, 1)):
            raise self.NodeError(f"Mul of maps {x.shape} and {y.shape} (HWC) does not broadcast")
        if x.layout not in ("nchw", "flat") or (y.layout != x.layout and y.shape != (1, 1, c)):
            raise self.NodeError(f"Mul of layouts '{x.layout}' and '{y.layout}' not supported")
        layer = Layer(op=MUL, in_shape=x.shape, out_shape=x.shape, srcs=(x.tid, y.tid),
                      name=n.name or "", qdq=kind == "fq")
        out = self._new_tensor(layer, n.output[0], x.layout, kind, order=x.order)
        self._check_inferred(n.output[0], out)
