"""msfopt IR -> ONNX exporter (runs on onnxruntime).

``mode="float"``: a float32 NCHW model (Conv / MaxPool / AveragePool / GlobalAveragePool /
Flatten + Gemm / Add (Sub for a subtracting add), activations as Relu or Clip(0, 6)).  int8
networks are exported with dequantised weights.

``mode="int8"``: a QOperator model with int8 input and output tensors: QLinearConv,
MaxPool on int8 (when input and output share their quantisation; otherwise a
DequantizeLinear -> MaxPool -> QuantizeLinear island), QLinearAveragePool and
QLinearGlobalAveragePool (com.microsoft), QGemm (com.microsoft, per-channel B, int32 bias) for
dense layers, QLinearAdd (com.microsoft) for residual adds (a subtracting add is refused: there
is no QLinearSub), and activations as an int8 Clip
between the layer's own int8 clamp ``act_min`` / ``act_max`` (doc_string
``msfopt act=relu|relu6``).  An average pool imported from a QDQ model (``avg_rounding="qdq"``)
stays a DequantizeLinear -> AveragePool -> QuantizeLinear island (QuantizeLinear's rounding).
Scales are stored as float32.

Layout is NCHW; ``nhwc_io=True`` takes an NHWC input (followed by Transpose(0,3,1,2)) and
returns an NHWC output (a trailing Transpose(0,2,3,1)) for byte-wise comparison with NHWC
runtimes.  ``msfopt.importers.onnx_import.load_onnx`` reads every variant back to the same IR.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .ir import ADD, AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, Layer, Network
from .reference import float_params

__all__ = ["to_onnx", "OPSET", "MS_OPSET"]

OPSET = 17
MS_OPSET = 1
_IR_VERSION = 9


class _Builder:
    def __init__(self, net: Network, mode: str, nhwc_io: bool):
        self.net = net
        self.mode = mode
        self.nhwc_io = nhwc_io
        self.nodes: list = []
        self.inits: list = []
        self._names: set[str] = set()
        self.rank: dict[int, int] = {}         # tensor id -> 4 (NCHW) or 2 ([1, K])
        self.name: dict[int, str] = {}         # tensor id -> ONNX name of that rank
        self.alt: dict[tuple[int, int], str] = {}  # (tid, rank) -> reshaped view name
        self.uses_ms = False
        self._node_names: set[str] = set()
        self.p = ""

    # ---- naming / constants -----------------------------------------------------------------
    def const(self, name: str, arr) -> str:
        if name in self._names:
            return name
        self._names.add(name)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op, ins, outs, name, domain="", doc="", **attrs):
        if domain == "com.microsoft":
            self.uses_ms = True
        n = helper.make_node(op, ins, outs, name=name, domain=domain or None, **attrs)
        if doc:
            n.doc_string = doc
        self.nodes.append(n)
        return outs[0]

    def qparams(self, t: int) -> tuple[str, str]:
        q = self.net.quant_of(t)
        if q is None:
            raise ValueError(f"tensor {t} has no quantisation parameters (run init_weights with "
                             "dtype='int8')")
        if q.per_channel:
            raise ValueError(f"tensor {t} is quantised per channel; only per-tensor is exportable")
        return (self.const(f"t{t}_scale", np.float32(q.scale[0])),
                self.const(f"t{t}_zp", np.int8(q.zero_point[0])))

    # ---- layout views -----------------------------------------------------------------------
    def view(self, t: int, rank: int) -> str:
        if self.rank[t] == rank:
            return self.name[t]
        key = (t, rank)
        if key in self.alt:
            return self.alt[key]
        h, w, c = self.net.tensor_shape(t)
        src = self.name[t]
        if rank == 2:
            out = self.node("Flatten", [src], [f"t{t}_flat"], f"flatten_t{t}", axis=1)
        else:
            if h != 1 or w != 1:
                raise ValueError(f"tensor {t} is a flat vector of a {h}x{w} map; cannot reshape")
            shp = self.const(f"t{t}_shape4", np.array([1, c, 1, 1], np.int64))
            out = self.node("Reshape", [src, shp], [f"t{t}_nchw"], f"reshape_t{t}")
        self.alt[key] = out
        return out

    # ---- activations ------------------------------------------------------------------------
    def act(self, i: int, l: Layer, pre: str, out: str) -> str:
        if l.act == "none":
            return pre
        if self.mode == "float":
            if l.act == "relu":
                return self.node("Relu", [pre], [out], f"{l.name}_relu")
            lo = self.const("f_zero", np.float32(0.0))
            hi = self.const("f_six", np.float32(6.0))
            return self.node("Clip", [pre, lo, hi], [out], f"{l.name}_relu6")
        if l.act_min is None or l.act_max is None:
            raise ValueError(f"layer {l.name} has no int8 activation clamp (act_min/act_max)")
        lo_q, hi_q = int(l.act_min), int(l.act_max)  # the layer's own ints, never re-derived
        lo = self.const(f"clip_lo_{lo_q}", np.int8(lo_q))
        hi = self.const(f"clip_hi_{hi_q}", np.int8(hi_q))
        return self.node("Clip", [pre, lo, hi], [out], f"{l.name}_{l.act}",
                         doc=f"msfopt act={l.act}")

    # ---- layers -----------------------------------------------------------------------------
    def window_attrs(self, l: Layer) -> dict:
        return dict(kernel_shape=list(l.kernel), strides=list(l.stride), pads=list(l.pad))

    def layer(self, i: int, l: Layer):
        t_out = i + 1
        final = f"t{t_out}"
        pre = f"t{t_out}_pre" if l.act != "none" else final
        nm = l.name or f"L{i}"
        if nm in self._node_names:
            nm = f"L{i}_{nm}"
        self._node_names.add(nm)
        self.p = f"l{i}"  # prefix of this layer's initializers
        if self.mode == "float":
            self.float_layer(i, l, pre, nm)
        else:
            self.int8_layer(i, l, pre, nm)
        self.act(i, l, pre, final)
        self.rank[t_out] = 2 if l.op == DENSE else self.rank_of_add(l) if l.op == ADD else 4
        self.name[t_out] = final

    def rank_of_add(self, l: Layer) -> int:
        return self.rank[l.src]

    def conv_weight(self, i, l):
        w, b = float_params(self.net, i)
        return w.transpose(0, 3, 1, 2).astype(np.float32), b.astype(np.float32)

    def dense_cols_to_chw(self, l: Layer, w: np.ndarray) -> np.ndarray:
        h, wd, c = l.in_shape
        if self.rank[l.src] == 4 and h * wd > 1 and c > 1:
            n = w.shape[0]
            return w.reshape(n, h, wd, c).transpose(0, 3, 1, 2).reshape(n, h * wd * c)
        return w

    def float_layer(self, i, l: Layer, out: str, nm: str):
        if l.op in (CONV, DW):
            w, b = self.conv_weight(i, l)
            ins = [self.view(l.src, 4), self.const(f"{self.p}_W", w), self.const(f"{self.p}_B", b)]
            self.node("Conv", ins, [out], nm, group=l.groups, **self.window_attrs(l))
        elif l.op == MAXPOOL:
            self.node("MaxPool", [self.view(l.src, 4)], [out], nm, **self.window_attrs(l))
        elif l.op == AVGPOOL:
            self.node("AveragePool", [self.view(l.src, 4)], [out], nm,
                      count_include_pad=int(l.count_include_pad), **self.window_attrs(l))
        elif l.op == GAP:
            self.node("GlobalAveragePool", [self.view(l.src, 4)], [out], nm)
        elif l.op == DENSE:
            w, b = float_params(self.net, i)
            w = self.dense_cols_to_chw(l, w)
            x = self.view(l.src, 2)
            self.node("Gemm", [x, self.const(f"{self.p}_W", w.astype(np.float32)),
                               self.const(f"{self.p}_B", b.astype(np.float32))], [out], nm, transB=1)
        elif l.op == ADD:
            r = self.rank[l.src]
            ins = [self.view(l.src, r), self.view(l.src2, r)]   # src2 may broadcast
            self.node("Sub" if l.sub else "Add", ins[::-1] if l.rsub else ins, [out], nm)
        else:
            raise ValueError(f"cannot export op {l.op}")

    def wq(self, l: Layer, nm: str, n_out: int):
        if l.weight is None or l.w_quant is None or not np.issubdtype(l.weight.dtype, np.integer):
            raise ValueError(f"layer {nm} has no int8 weights (run init_weights with dtype='int8')")
        q = l.w_quant
        if q.per_channel:
            s = np.asarray(q.scale, np.float32)
            z = np.asarray(q.zero_point, np.int8)
        else:
            s = np.float32(q.scale[0])
            z = np.int8(q.zero_point[0])
        bias = None
        if l.bias is not None:
            if not np.issubdtype(np.asarray(l.bias).dtype, np.integer):
                raise ValueError(f"layer {nm}: int8 export needs an int32 bias")
            bias = self.const(f"{self.p}_B", np.asarray(l.bias, np.int32).reshape(n_out))
        return self.const(f"{self.p}_Ws", s), self.const(f"{self.p}_Wz", z), bias

    def int8_layer(self, i, l: Layer, out: str, nm: str):
        t_out = i + 1
        if l.op in (CONV, DW):
            ws, wz, b = self.wq(l, nm, l.out_shape[2])
            w = np.asarray(l.weight, np.int8).transpose(0, 3, 1, 2)
            xs, xz = self.qparams(l.src)
            ys, yz = self.qparams(t_out)
            ins = [self.view(l.src, 4), xs, xz, self.const(f"{self.p}_W", w), ws, wz, ys, yz]
            if b is not None:
                ins.append(b)
            self.node("QLinearConv", ins, [out], nm, group=l.groups, **self.window_attrs(l))
        elif l.op == MAXPOOL:
            qi, qo = self.net.quant_of(l.src), self.net.quant_of(t_out)
            x = self.view(l.src, 4)
            if qi is not None and qo is not None and qi.scale == qo.scale and \
                    qi.zero_point == qo.zero_point:
                self.node("MaxPool", [x], [out], nm, **self.window_attrs(l))
            else:
                xs, xz = self.qparams(l.src)
                ys, yz = self.qparams(t_out)
                d = self.node("DequantizeLinear", [x, xs, xz], [f"{nm}_dq"], f"{nm}_dq")
                m = self.node("MaxPool", [d], [f"{nm}_f"], nm, **self.window_attrs(l))
                self.node("QuantizeLinear", [m, ys, yz], [out], f"{nm}_q")
        elif l.op == AVGPOOL and l.avg_rounding == "qdq":
            # QuantizeLinear's rounding (from a QDQ model): keep the DQ -> AveragePool -> Q island
            xs, xz = self.qparams(l.src)
            ys, yz = self.qparams(t_out)
            d = self.node("DequantizeLinear", [self.view(l.src, 4), xs, xz], [f"{nm}_dq"],
                          f"{nm}_dq")
            a = self.node("AveragePool", [d], [f"{nm}_f"], nm,
                          count_include_pad=int(l.count_include_pad), **self.window_attrs(l))
            self.node("QuantizeLinear", [a, ys, yz], [out], f"{nm}_q")
        elif l.op == AVGPOOL:
            xs, xz = self.qparams(l.src)
            ys, yz = self.qparams(t_out)
            self.node("QLinearAveragePool", [self.view(l.src, 4), xs, xz, ys, yz], [out], nm,
                      domain="com.microsoft", count_include_pad=int(l.count_include_pad),
                      **self.window_attrs(l))
        elif l.op == GAP:
            xs, xz = self.qparams(l.src)
            ys, yz = self.qparams(t_out)
            self.node("QLinearGlobalAveragePool", [self.view(l.src, 4), xs, xz, ys, yz], [out],
                      nm, domain="com.microsoft", channels_last=0)
        elif l.op == DENSE:
            ws, wz, b = self.wq(l, nm, l.out_shape[2])
            w = self.dense_cols_to_chw(l, np.asarray(l.weight, np.int8))
            xs, xz = self.qparams(l.src)
            ys, yz = self.qparams(t_out)
            self.node("QGemm", [self.view(l.src, 2), xs, xz, self.const(f"{self.p}_W", w), ws, wz,
                                b or "", ys, yz], [out], nm, domain="com.microsoft", transB=1)
        elif l.op == ADD:
            if l.sub:   # com.microsoft has QLinearAdd only; TFLite's SUB arithmetic is not ORT's
                raise ValueError(f"cannot export the subtracting add {nm} as int8 (no "
                                 "QLinearSub); export mode='float'")
            # (a QDQ file's add, which onnxruntime runs in float32, is written as QLinearAdd: the
            # same function but on 2 of the 65,536 input pairs of one of the QDQ MobileNetV3's
            # adds, so the re-export is an extra check only)
            r = self.rank[l.src]
            ta, tb = (l.src2, l.src) if l.rsub else (l.src, l.src2)  # QLinearAdd's A, B
            as_, az = self.qparams(ta)
            bs, bz = self.qparams(tb)
            ys, yz = self.qparams(t_out)
            self.node("QLinearAdd", [self.view(ta, r), as_, az, self.view(tb, r), bs, bz,
                                     ys, yz], [out], nm, domain="com.microsoft")
        else:
            raise ValueError(f"cannot export op {l.op}")

    # ---- whole model ------------------------------------------------------------------------
    def build(self, name: str) -> onnx.ModelProto:
        net = self.net
        h, w, c = net.input_shape
        et = TensorProto.FLOAT if self.mode == "float" else TensorProto.INT8
        if self.mode == "int8" and net.quant_of(0) is None:
            raise ValueError("the network input has no quantisation parameters")
        if self.nhwc_io:
            inp = helper.make_tensor_value_info("input", et, [1, h, w, c])
            self.name[0] = self.node("Transpose", ["input"], ["input_nchw"], "input_to_nchw",
                                     perm=[0, 3, 1, 2])
        else:
            inp = helper.make_tensor_value_info("input", et, [1, c, h, w])
            self.name[0] = "input"
        self.rank[0] = 4
        for i, l in enumerate(net.layers):
            self.layer(i, l)
        n = net.n_layers
        ho, wo, co = net.tensor_shape(n)
        last = self.name[n]
        if self.rank[n] == 2:
            out_shape = [1, co]
        elif self.nhwc_io:
            last = self.node("Transpose", [last], ["output_nhwc"], "output_to_nhwc",
                             perm=[0, 2, 3, 1])
            out_shape = [1, ho, wo, co]
        else:
            out_shape = [1, co, ho, wo]
        self.node("Identity", [last], ["output"], "output")
        outp = helper.make_tensor_value_info("output", et, out_shape)
        graph = helper.make_graph(self.nodes, name, [inp], [outp], self.inits)
        opsets = [helper.make_opsetid("", OPSET)]
        if self.uses_ms:
            opsets.append(helper.make_opsetid("com.microsoft", MS_OPSET))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="msfopt")
        model.ir_version = _IR_VERSION
        if self.mode == "int8":
            q0 = net.quant_of(0)
            helper.set_model_props(model, {"msfopt.input_scale": repr(float(np.float32(q0.scale[0]))),
                                           "msfopt.input_zero_point": str(q0.zero_point[0])})
        return model


def to_onnx(net: Network, mode: str = "float", *, nhwc_io: bool = False,
            name: str | None = None) -> onnx.ModelProto:
    """Export ``net`` to an ONNX model (``mode`` "float" or "int8", see the module doc)."""
    if mode not in ("float", "int8"):
        raise ValueError(f"mode must be 'float' or 'int8', not {mode!r}")
    net.validate()
    if mode == "int8" and net.dtype != "int8":
        raise ValueError("int8 export needs an int8 network (init_weights(net, dtype='int8'))")
    b = _Builder(net, mode, nhwc_io)
    return b.build(name or net.name or "msfopt")
