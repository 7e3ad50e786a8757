"""Deterministic random weights (and int8 quantisation parameters) for networks without trained
weights, e.g. the zoo models, so that they can be exported to ONNX and executed.

Float: He-normal weights, small random biases (numpy Generator with a fixed seed).
int8:  per-output-channel symmetric int8 weights (zero point 0, |q| <= 127), int32 biases with
scale ``s_in * s_w[c]``, and per-tensor affine activation quantisation calibrated on a fixed
random input with the float reference (:func:`msfopt.reference.reference_forward`): each
tensor's [min, max] (widened to include 0, clamped by the producer's ReLU/ReLU6) is mapped onto
[-128, 127].  MaxPool outputs reuse their input's parameters (an int8 max needs no
requantisation).  All scales are float32-representable so an ONNX export round-trips exactly.
Each layer's int8 activation clamp (``act_min`` / ``act_max``) is assigned here, with the
quantisation: ONNX QuantizeLinear of the activation's float bounds (round half to even).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ir import CONV, DENSE, DW, MAXPOOL, DTYPES, Network, Quant, quantize_linear_clamp
from .reference import reference_forward

__all__ = ["init_weights", "calibration_input", "quant_from_range"]


def calibration_input(net: Network, seed: int = 0) -> np.ndarray:
    """The fixed random calibration input (H, W, C) float32 in [-1, 1] used by init_weights."""
    rng = np.random.default_rng([seed, 0xCA11B])
    return rng.uniform(-1.0, 1.0, size=net.input_shape).astype(np.float32)


def _f32(x: float) -> float:
    return float(np.float32(x))


def quant_from_range(lo: float, hi: float) -> Quant:
    """int8 affine quantisation mapping [min(lo, 0), max(hi, 0)] onto [-128, 127]."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:  # constant-zero tensor: any small positive scale will do
        hi = lo + 1e-6
    scale = _f32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return Quant.of(scale, zp)


def init_weights(net: Network, seed: int = 0, dtype: str | None = None) -> Network:
    """A copy of ``net`` with deterministic weights/biases for every conv/dw/dense layer (and,
    for dtype "int8", weight/bias/activation quantisation).  ``dtype`` defaults to net.dtype.

    The copy is quantised the ONNX way (``requant="float"``): an imported model's arithmetic
    facts (fixed-point requantisation, tail softmax, TFLM GAP rounding) and its provenance do not
    carry over."""
    dtype = dtype or net.dtype
    if dtype not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}")
    rng = np.random.default_rng(seed)
    layers = [replace(l, weight=None, bias=None, w_quant=None, act_min=None, act_max=None,
                      gap_rounding="msfopt") for l in net.layers]
    out = replace(net, layers=layers, dtype="float32", tensor_quant=[], input_quant=None,
                  requant="float", tail_softmax=None, provenance=None)
    for l in layers:
        if l.op not in (CONV, DW, DENSE):
            continue
        shape = Network.weight_shape(l)
        fan_in = int(np.prod(shape[1:]))
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        b = rng.normal(0.0, 0.05, size=l.out_shape[2])
        l.weight = w.astype(np.float32)
        l.bias = b.astype(np.float32)
    out.validate()
    if dtype == "float32":
        return out

    # -- int8: quantise weights per output channel (symmetric), then calibrate activations --
    wq: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, l in enumerate(layers):
        if l.weight is None:
            continue
        w = l.weight.astype(np.float64)
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        s = np.array([_f32(max(a, 1e-8) / 127.0) for a in amax])
        q = np.clip(np.round(w / s.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127)
        wq[i] = (q.astype(np.int8), s)
        # calibrate with the weights the int8 model will actually use
        l.weight = (q * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    acts = reference_forward(out, calibration_input(net, seed), return_all=True)
    tq: list[Quant] = []
    for t, a in enumerate(acts):
        prod = layers[t - 1] if t > 0 else None
        if prod is not None and prod.op == MAXPOOL and prod.act == "none":
            tq.append(tq[prod.src])
            continue
        lo, hi = float(a.min()), float(a.max())
        if prod is not None and prod.act in ("relu", "relu6"):
            lo = 0.0
            if prod.act == "relu6":
                hi = min(hi, 6.0)
        tq.append(quant_from_range(lo, hi))
    for i, l in enumerate(layers):
        # the int8 clamp of the folded activation: QuantizeLinear of its float bounds, which is
        # what the ONNX export of this network states (and onnxruntime computes)
        q_out = tq[i + 1]
        l.act_min, l.act_max = quantize_linear_clamp(l.act, q_out.scale[0], q_out.zero_point[0])
        if i not in wq:
            continue
        q, s = wq[i]
        s_in = tq[l.src].scale[0]
        l.weight = q
        l.w_quant = Quant.of(s, 0, axis=0)
        l.bias = np.clip(np.round(l.bias.astype(np.float64) / (s_in * s)),
                         -2**31, 2**31 - 1).astype(np.int32)
    out = replace(out, dtype="int8", tensor_quant=tq, input_quant=tq[0])
    return out.validate()
