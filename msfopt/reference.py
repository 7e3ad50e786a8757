"""Numpy float reference forward pass of an IR network (NHWC, batch 1).

Computation is done in float64 and returned as float32.  For an int8 network the weights and
biases are dequantised (``float_params``) but activations are NOT quantised: this is a float
reference, the int8 oracle is onnxruntime on the exported model.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .ir import ACT, ADD, AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, MUL, Layer, Network

__all__ = ["reference_forward", "float_params", "apply_act"]


def float_params(net: Network, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 (weight, bias) of conv/dw/dense layer ``i`` (dequantised for int8 networks).

    A missing bias is returned as zeros.  Raises ValueError when the layer has no weights.
    """
    l = net.layers[i]
    if l.weight is None:
        raise ValueError(f"layer {i} ({l.name}) has no weights; run msfopt.weights.init_weights")
    cout = l.out_shape[2]
    w = np.asarray(l.weight)
    if l.w_quant is not None and np.issubdtype(w.dtype, np.integer):
        s = np.asarray(l.w_quant.scale, np.float64)
        z = np.asarray(l.w_quant.zero_point, np.float64)
        shp = (-1,) + (1,) * (w.ndim - 1)
        wf = (w.astype(np.float64) - z.reshape(shp)) * s.reshape(shp) if s.size > 1 else \
            (w.astype(np.float64) - z[0]) * s[0]
        if l.bias is None:
            b = np.zeros(cout)
        elif np.issubdtype(np.asarray(l.bias).dtype, np.integer):
            q_in = net.quant_of(l.src)
            if q_in is None:
                raise ValueError(f"layer {i}: int32 bias needs the input tensor's quantisation")
            b = np.asarray(l.bias, np.float64) * q_in.scale[0] * np.broadcast_to(s, (cout,))
        else:
            b = np.asarray(l.bias, np.float64)
        return wf, b
    b = np.zeros(cout) if l.bias is None else np.asarray(l.bias, np.float64)
    return w.astype(np.float64), b


def apply_act(y: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(y, 0.0)
    if act == "relu6":
        return np.clip(y, 0.0, 6.0)
    return y


def _windows(x: np.ndarray, l: Layer, fill: float) -> np.ndarray:
    """(Ho, Wo, C, kh, kw) view of the padded input windows."""
    pt, pl, pb, pr = l.pad
    xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    win = sliding_window_view(xp, (l.kh, l.kw), axis=(0, 1))
    ho, wo = l.out_shape[0], l.out_shape[1]
    return win[::l.sh, ::l.sw][:ho, :wo]


def _layer_forward(net: Network, i: int, x: np.ndarray, x2: np.ndarray | None) -> np.ndarray:
    l = net.layers[i]
    if l.op in (CONV, DW):
        w, b = float_params(net, i)             # (Cout, kh, kw, Cin/g)
        win = _windows(x, l, 0.0)               # (Ho, Wo, C, kh, kw)
        ho, wo, c = win.shape[0], win.shape[1], win.shape[2]
        g = l.groups
        cg, cout = c // g, l.out_shape[2]
        wg = w.reshape(g, cout // g, l.kh, l.kw, cg)
        y = np.einsum("hwgcij,gkijc->hwgk", win.reshape(ho, wo, g, cg, l.kh, l.kw), wg,
                      optimize=True).reshape(ho, wo, cout) + b
    elif l.op == MAXPOOL:
        y = _windows(x, l, -np.inf).max(axis=(3, 4))
    elif l.op == AVGPOOL:
        s = _windows(x, l, 0.0).sum(axis=(3, 4))
        if l.count_include_pad:
            y = s / (l.kh * l.kw)
        else:
            ones = np.ones(x.shape[:2] + (1,))
            y = s / _windows(ones, l, 0.0).sum(axis=(3, 4))
    elif l.op == GAP:
        y = x.mean(axis=(0, 1), keepdims=True)
    elif l.op == DENSE:
        w, b = float_params(net, i)
        y = (w @ x.reshape(-1) + b).reshape(1, 1, -1)
    elif l.op == ADD:   # x2 may broadcast (1 x 1 x C, H x W x 1, 1 x 1 x 1)
        y = ((x2 - x) if l.rsub else (x - x2)) if l.sub else x + x2
    else:  # pragma: no cover - validated IR
        raise ValueError(f"unknown op {l.op}")
    return apply_act(y, l.act)


def reference_forward(net: Network, x_nhwc, *, return_all: bool = False):
    """Run ``net`` on ``x_nhwc`` ((H, W, C) or (1, H, W, C)); returns the output (H, W, C) as
    float32, or every tensor (list indexed by tensor id) when ``return_all``."""
    x = np.asarray(x_nhwc, dtype=np.float64)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError("batch must be 1")
        x = x[0]
    if tuple(x.shape) != tuple(net.input_shape):
        raise ValueError(f"input shape {x.shape} != network input {net.input_shape}")
    tensors: list[np.ndarray] = [x]
    for i, l in enumerate(net.layers):
        a = tensors[l.src]
        b = tensors[l.src2] if l.src2 is not None else None
        tensors.append(_layer_forward(net, i, a, b))
    if return_all:
        return [t.astype(np.float32) for t in tensors]
    return tensors[-1].astype(np.float32)


# -- int8 interpreter of the generated C's onnxruntime arithmetic --------------------------------
#
# The generated C of an int8 ONNX network (requantisation "float": onnxruntime's arithmetic)
# computes every layer from integer inputs with the code generator's parameters
# (mcu_runtime.requant / eltwise_params).  ``int8_forward`` replays those kernels in numpy, one
# layer at a time, so that a layer can be fed ANY int8 input -- e.g. onnxruntime's own
# intermediate tensor -- and compared with onnxruntime's output of the same node (per-layer
# figures, tests/test_qdq_models.py).  The tests check it equals the host build of the C, byte
# for byte, on whole networks; it covers the ops of int8 ONNX classifiers (conv / dw / dense,
# GAP, ACT tables, MUL, ADD) and raises ValueError on anything else.

_INT8_OPS = (CONV, DW, DENSE, GAP, ACT, MUL, ADD)


def _rne_clamp(v: np.ndarray, zp: int, lo: int, hi: int) -> np.ndarray:
    """float32 ``v`` rounded half to even, + zp, clamped to [lo, hi] (msf_rqc_apply float)."""
    return np.clip(np.rint(v.astype(np.float32)).astype(np.int64) + zp, lo, hi).astype(np.int8)


def _int_acc(net: Network, i: int, x: np.ndarray) -> np.ndarray:
    """int64 accumulators sum((x - x_zp) (w - w_zp)) + bias of conv / dw / dense layer i."""
    l = net.layers[i]
    xz = int(net.quant_of(l.src).zero_point[0])
    w = np.asarray(l.weight, np.int64) - np.asarray(l.w_quant.zero_point, np.int64).reshape(
        (-1,) + (1,) * (np.ndim(l.weight) - 1))
    xd = x.astype(np.int64) - xz
    cout = l.out_shape[2]
    if l.op == DENSE:
        acc = (w @ xd.reshape(-1)).reshape(1, 1, cout)
    else:
        win = _windows(xd, l, 0)                # padding taps are x_zp: (x - zp) = 0
        ho, wo, c = win.shape[0], win.shape[1], win.shape[2]
        g = l.groups
        cg = c // g
        wg = w.reshape(g, cout // g, l.kh, l.kw, cg)
        acc = np.einsum("hwgcij,gkijc->hwgk", win.reshape(ho, wo, g, cg, l.kh, l.kw), wg
                        ).reshape(ho, wo, cout)
    if l.bias is not None:
        acc = acc + np.asarray(l.bias, np.int64).reshape(cout)
    return acc


def int8_layer_forward(net: Network, i: int, x: np.ndarray, x2: np.ndarray | None = None,
                       rq: str = "float") -> np.ndarray:
    """Layer ``i`` of int8 network ``net`` on int8 inputs ``x`` (and ``x2``, the second source),
    as the generated C computes it with requantisation ``rq`` ("float" only: onnxruntime's
    arithmetic).  Returns the int8 (H, W, C) output."""
    from .mcu_runtime import codegen, eltwise_params, requant
    if rq != "float":
        raise ValueError("int8_layer_forward replays requantisation 'float' only")
    l = net.layers[i]
    if l.op not in _INT8_OPS:
        raise ValueError(f"layer {i} ({l.name}): int8 op {l.op} is not replayed")
    xq, yq = net.quant_of(l.src), net.quant_of(i + 1)
    xs, xz = np.float32(xq.scale[0]), int(xq.zero_point[0])
    ys, yz = np.float32(yq.scale[0]), int(yq.zero_point[0])
    lo, hi = l.act_min, l.act_max
    x = np.asarray(x, np.int8)
    if l.op in (CONV, DW, DENSE):
        fm = requant.conv_float_multipliers(xs, l.w_quant.scale, ys)
        v = _int_acc(net, i, x).astype(np.float32) * fm.astype(np.float32)
        return _rne_clamp(v, yz, lo, hi)
    if l.op == GAP:
        h, w, _ = l.in_shape
        acc = x.astype(np.int64).sum(axis=(0, 1), keepdims=True) - xz * h * w
        v = acc.astype(np.float32) * requant.gap_float_multiplier(xs, ys, h * w)
        return _rne_clamp(v, yz, lo, hi)
    if l.op == ACT:
        table = np.clip(np.asarray(codegen._s8_table(l, rq, xs, xz, ys, yz), np.int64), lo, hi)
        return table[x.astype(np.int64) + 128].astype(np.int8)
    if l.op == MUL:
        q2 = net.quant_of(l.src2)
        s2, z2 = np.float32(q2.scale[0]), int(q2.zero_point[0])
        b = np.asarray(x2, np.int64)
        if b.shape != x.shape:
            b = np.broadcast_to(b.reshape(1, 1, -1), x.shape)
        da, db = x.astype(np.int64) - xz, b - z2
        if l.qdq:   # DQ -> Mul -> QuantizeLinear in float32 (MSF_RQ_FLOAT_QDQ)
            prod = ((xs * da.astype(np.float32)) * (s2 * db.astype(np.float32))).astype(
                np.float32)
            return eltwise_params.ort_quantize(prod, ys, yz).astype(np.int64).clip(lo, hi) \
                .astype(np.int8)
        ratio = np.float32(np.float32(np.float32(xs) * s2) / ys)
        v = (da * db).astype(np.float32) * ratio + np.float32(yz)
        return np.clip(np.rint(np.clip(v, -128, 127)), lo, hi).astype(np.int8)
    if l.op == ADD:
        q2 = net.quant_of(l.src2)
        s2, z2 = np.float32(q2.scale[0]), int(q2.zero_point[0])
        b = np.broadcast_to(np.asarray(x2, np.int8), x.shape)
        if l.rsub:   # the arithmetic's first operand is the broadcast one
            x, b, xs, xz, s2, z2 = b, x, s2, z2, xs, xz
        if l.qdq:   # DQ -> Add / Sub -> QuantizeLinear in float32 (MSF_RQ_FLOAT_QDQ)
            fa = eltwise_params.ort_dequantize(x, xs, xz)
            fb = eltwise_params.ort_dequantize(b, s2, z2)
            return eltwise_params.ort_quantize((fa - fb if l.sub else fa + fb).astype(
                np.float32), ys, yz).astype(np.int64).clip(lo, hi).astype(np.int8)
        # QLinearAdd: fma(a, mul1, fma(b, mul2, fbias)), a 256 x 256 table of the exact
        # single-rounding fma per (a, b) pair that occurs
        if l.sub:
            raise ValueError(f"layer {i} ({l.name}): QLinearAdd does not subtract")
        m1, m2, fb = requant.add_float_params(xs, xz, s2, z2, ys, yz)
        pairs = {(a, c): None for a, c in zip(x.reshape(-1).tolist(), b.reshape(-1).tolist())}
        for a, c in pairs:
            v = requant.fma_f32(a, m1, requant.fma_f32(c, m2, fb))
            pairs[a, c] = int(np.rint(np.clip(v, -128, 127)))
        out = np.array([pairs[a, c] for a, c in zip(x.reshape(-1).tolist(),
                                                     b.reshape(-1).tolist())]).reshape(x.shape)
        return np.clip(out, lo, hi).astype(np.int8)
    raise ValueError(f"layer {i} ({l.name}): int8 op {l.op} is not replayed")


def int8_forward(net: Network, x: np.ndarray, feeds: dict | None = None,
                 rq: str = "float") -> list[np.ndarray]:
    """Every tensor (list indexed by tensor id) of int8 network ``net`` on int8 input ``x``
    (H, W, C), as the generated C computes them.  ``feeds`` {tensor id: int8 array}: a layer
    reads these instead of its own chained results (each layer fed e.g. onnxruntime's
    intermediates: per-layer comparisons)."""
    feeds = feeds or {}
    tensors: list[np.ndarray] = [np.asarray(x, np.int8).reshape(net.input_shape)]

    def src(t):
        return np.asarray(feeds[t], np.int8) if t in feeds else tensors[t]
    for i, l in enumerate(net.layers):
        tensors.append(int8_layer_forward(net, i, src(l.src),
                                          src(l.src2) if l.src2 is not None else None, rq))
    return tensors
