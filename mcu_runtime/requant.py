"""Requantisation parameters of the C runtime's kernels, computed exactly as ``msf_runtime.h``
prescribes; the code generator writes them into the generated parameter structs.

* :func:`conv_float_multipliers`, :func:`gap_float_multiplier`, :func:`add_float_params`
  -- the ``MSF_RQ_FLOAT`` parameters, bit-exact with onnxruntime 1.32 on x86-64;
* :func:`quantize_multiplier`, :func:`conv_fixed_multipliers`, :func:`add_fixed_params`,
  :func:`gap_fixed_multiplier`, :func:`mean_fixed_multiplier`, :func:`softmax_params`
  -- the ``MSF_RQ_FIXED`` / ``MSF_RQ_MEAN`` (TFLite Micro) parameters.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


# -- MSF_RQ_FLOAT parameters (onnxruntime 1.32, x86-64) ---------------------------------------------

def conv_float_multipliers(x_scale, w_scale, y_scale) -> np.ndarray:
    """QLinearConv / QGemm(alpha=1): (x_scale * w_scale[c]) / y_scale, every step in float32."""
    ws = np.atleast_1d(np.asarray(w_scale, dtype=np.float32))
    return ((np.float32(x_scale) * ws) / np.float32(y_scale)).astype(np.float32)


def gap_float_multiplier(x_scale, y_scale, hw: int) -> np.float32:
    """QLinearGlobalAveragePool: x_scale / (y_scale * float(H*W)) in float32."""
    return np.float32(np.float32(x_scale) / (np.float32(y_scale) * np.float32(hw)))


def _round_f32(r: Fraction) -> np.float32:
    """Correctly rounded (half to even) conversion of an exact rational to float32."""
    x = np.float32(float(r))  # may be off by double rounding: check the neighbours
    best = None
    for cand in (x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))):
        if not np.isfinite(cand):
            continue
        err = abs(Fraction(float(cand)) - r)
        odd = int(np.frombuffer(np.float32(cand).tobytes(), np.uint32)[0]) & 1
        key = (err, odd)
        if best is None or key < best[0]:
            best = (key, cand)
    return np.float32(best[1])


def fma_f32(a, b, c) -> np.float32:
    """Single-rounding float32 fused multiply-add (exact rational arithmetic)."""
    return _round_f32(Fraction(float(np.float32(a))) * Fraction(float(np.float32(b)))
                      + Fraction(float(np.float32(c))))


def add_float_params(a_scale, a_zp, b_scale, b_zp, c_scale, c_zp):
    """QLinearAdd (ORT's AVX2 kernel): (mul1, mul2, fbias) as float32."""
    r1 = np.float32(np.float32(a_scale) / np.float32(c_scale))
    r2 = np.float32(np.float32(b_scale) / np.float32(c_scale))
    t = np.float32(r2 * np.float32(b_zp))
    fbias = np.float32(np.float32(c_zp) - fma_f32(r1, np.float32(a_zp), t))
    return r1, r2, fbias


# -- MSF_RQ_FIXED parameters (TFLite Micro reference kernels) ----------------------------------------

def quantize_multiplier(m: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double rounding build): (Q31 multiplier, shift)."""
    m = float(m)
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    x = q * (1 << 31)  # exact
    q_fixed = int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)  # TfLiteRound = std::round
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def conv_fixed_multipliers(x_scale, w_scale, y_scale):
    ws = np.atleast_1d(np.asarray(w_scale, dtype=np.float32))
    pairs = [quantize_multiplier(float(np.float32(x_scale)) * float(w) / float(np.float32(y_scale)))
             for w in ws]
    return (np.array([p[0] for p in pairs], dtype=np.int32),
            np.array([p[1] for p in pairs], dtype=np.int32))


def gap_fixed_multiplier(x_scale, y_scale):
    return quantize_multiplier(float(np.float32(x_scale)) / float(np.float32(y_scale)))


def add_fixed_params(s1, s2, s_out, left_shift: int = 20) -> dict:
    twice = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier(float(np.float32(s1)) / twice)
    m2, sh2 = quantize_multiplier(float(np.float32(s2)) / twice)
    mo, sho = quantize_multiplier(twice / ((1 << left_shift) * float(np.float32(s_out))))
    return dict(left_shift=left_shift, in1_mul=m1, in1_shift=sh1, in2_mul=m2, in2_shift=sh2,
                out_mul=mo, out_shift=sho)


def mean_fixed_multiplier(x_scale, y_scale, n: int) -> tuple[int, int]:
    """TFLM MEAN (reference_ops::QuantizedMeanOrSum, compute_sum=false): the input/output
    multiplier with 1/n folded in: (qmul, qshift) for MSF_RQ_MEAN."""
    m, e = quantize_multiplier(float(np.float32(x_scale)) / float(np.float32(y_scale)))
    s = min(n.bit_length() - 1, 32, 31 + e)
    return int((m << s) // n), e - s


SOFTMAX_INT_BITS = 5  # kScaledDiffIntegerBits


def softmax_params(beta, x_scale) -> tuple[int, int, int]:
    """TFLM CalculateSoftmaxParams for int8 -> int8: (input_multiplier, input_left_shift, diff_min)
    (PreprocessSoftmaxScaling, QuantizeMultiplier, -CalculateInputRadius)."""
    real = min(float(np.float32(beta)) * float(np.float32(x_scale))
               * float(1 << (31 - SOFTMAX_INT_BITS)), float((1 << 31) - 1))
    qm, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"softmax input multiplier {real} < 1 (TFLM rejects it)")
    radius = math.floor(((1 << SOFTMAX_INT_BITS) - 1) * float(1 << (31 - SOFTMAX_INT_BITS))
                        / float(1 << shift))
    return qm, shift, -int(radius)
