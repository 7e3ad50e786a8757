"""Numpy float reference forward pass of an IR network (NHWC, batch 1).

Computation is done in float64 and returned as float32.  For an int8 network the weights and
biases are dequantised (``float_params``) but activations are NOT quantised: this is a float
reference, the int8 oracle is onnxruntime on the exported model.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .ir import ADD, AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, Layer, Network

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
    elif l.op == ADD:
        y = x + x2
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
