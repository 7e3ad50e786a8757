"""Parameters of the C runtime's int8 elementwise kernels (``msf_s8_eltwise.h``), computed exactly
as the source framework computes them; the code generator writes them into the generated
parameter structs / constant tables.

Unary int8 ops are 256-entry tables (``msf_lut_s8``: ``out = table[x + 128]``):

* :func:`tflm_table` -- TFLite Micro reference kernels (Prepare + Eval integer code, transcribed
  operation by operation: gemmlowp fixed point, ``QuantizeMultiplier``,
  ``MultiplyByQuantizedMultiplier`` with double rounding, the int16 arithmetic of HARD_SWISH);
* :func:`ort_table` -- onnxruntime 1.32 on x86-64 (CPU EP): ``QLinearSigmoid`` /
  ``QLinearLeakyRelu`` (whose table ORT itself builds with ``QlinearBuildLookupTable``) and the
  ``DequantizeLinear -> op -> QuantizeLinear`` chains, float32 step by step, with MLAS's FMA3
  logistic / tanh kernels emulated exactly (single-rounding FMAs).

Binary ops: :func:`prelu_params_tflm`, :func:`prelu_params_ort`, :func:`mul_params_tflm`,
:func:`mul_params_ort` return dicts whose keys are the fields of ``msf_prelu_s8_params`` /
``msf_mul_s8_params``.

All arithmetic is Python integers (wrapped to int16 / int32 where C++ wraps) and numpy float32
scalars, so the tables are bit-exact with the frameworks, not approximations.
"""
from __future__ import annotations

import math

import numpy as np

from .requant import quantize_multiplier

MSF_RQ_FLOAT, MSF_RQ_FIXED, MSF_RQ_FLOAT_QDQ = 0, 1, 3
MSF_BCAST_NONE, MSF_BCAST_CHANNEL, MSF_BCAST_SCALAR, MSF_BCAST_PIXEL = 0, 1, 2, 3

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_f32 = np.float32

#: the output grid TFLite Micro's int8 LOGISTIC requires (scale 1/256, zero point -128)
TFLM_LOGISTIC_OUT = (1.0 / 256.0, -128)

TFLM_OPS = ("hard_swish", "logistic", "tanh", "leaky_relu", "quantize", "relu", "relu6")
ORT_OPS = ("sigmoid", "tanh", "leaky_relu", "hard_sigmoid", "hard_swish", "clip", "relu",
           "identity")


# ================================================================================================
# integer primitives (gemmlowp / TFLite), Python ints with C wrap-around
# ================================================================================================

def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _wrap16(x: int) -> int:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncation toward zero), b > 0."""
    q = abs(a) // b
    return q if a >= 0 else -q


def srdhm32(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul<int32>."""
    if a == b == _I32_MIN:
        return _I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _tdiv(ab + nudge, 1 << 31)


def srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul<int16>."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _wrap16(_tdiv(ab + nudge, 1 << 15))


def rdbpot(x: int, e: int, bits: int = 32) -> int:
    """gemmlowp RoundingDivideByPOT on an int<bits> (the mask is truncated to the type, as
    ``Dup<IntegerType>((1ll << exponent) - 1)`` does)."""
    wrap = _wrap32 if bits == 32 else _wrap16
    mask = wrap((1 << e) - 1)
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return wrap((x >> e) + (1 if rem > thr else 0))


def _sat_mul_pot(x: int, e: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> on int32."""
    if e == 0:
        return x
    if e < 0:
        return rdbpot(x, -e)
    thr = (1 << (31 - e)) - 1
    if x > thr:
        return _I32_MAX
    if x < -thr:
        return _I32_MIN
    return x << e


def mbqm(x: int, qmul: int, shift: int) -> int:
    """tflite::MultiplyByQuantizedMultiplier(int32, ...), double rounding (TFLM default)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm32(_wrap32(x * (1 << left)), qmul), right)


def _round_away(v: float) -> int:
    """std::round / TfLiteRound: half away from zero."""
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


# gemmlowp fixed-point transcendental functions (FixedPoint<int32, int_bits>, raw values) ----------

def _exp_on_interval_neg_quarter_0(a: int) -> int:
    x = _wrap32(a + (1 << 28))
    x2 = srdhm32(x, x)
    x3 = srdhm32(x2, x)
    x4 = srdhm32(x2, x2)
    x4_over_4 = _sat_mul_pot(x4, -2)
    t = _sat_mul_pot(_wrap32(srdhm32(_wrap32(x4_over_4 + x3), 715827883) + x2), -1)
    return _wrap32(1895147668 + srdhm32(1895147668, _wrap32(x + t)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: int, int_bits: int) -> int:
    """gemmlowp exp_on_negative_values: a = FixedPoint<int32, int_bits> raw, result Q0.31."""
    frac = 31 - int_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval_neg_quarter_0(_sat_mul_pot(a_mod, int_bits))
    remainder = _wrap32(a_mod - a)
    for k, mult in _EXP_BARREL:
        if int_bits > k and remainder & (1 << (frac + k)):
            result = srdhm32(result, mult)
    if int_bits > 5:
        if a < -(1 << (36 - int_bits)):
            result = 0
    return _I32_MAX if a == 0 else result


def _newton_reciprocal_half(a: int) -> tuple[int, int]:
    """The Newton-Raphson part shared by one_over_one_plus_x_for_x_in_0_1 and
    one_minus_x_over_one_plus_x_for_x_in_0_1: (x in Q2.29, half_denominator)."""
    s = a + _I32_MAX
    half = _tdiv(s + (1 if s >= 0 else -1), 2)  # RoundingHalfSum(a, F0::One())
    x = _wrap32(1515870810 + srdhm32(half, -1010580540))
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - srdhm32(half, x))
        x = _wrap32(x + _sat_mul_pot(srdhm32(x, one_minus), 2))
    return x, half


def _one_over_one_plus_x(a: int) -> int:
    x, _ = _newton_reciprocal_half(a)
    return _sat_mul_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x))


def _one_minus_x_over_one_plus_x(a: int) -> int:
    x, _ = _newton_reciprocal_half(a)
    return _sat_mul_pot(_wrap32(x - (1 << 29)), 2)  # Rescale<0>(x - F2::One())


def gemmlowp_logistic(a: int, int_bits: int) -> int:
    """gemmlowp::logistic(FixedPoint<int32, int_bits>) -> raw Q0.31."""
    if a == 0:
        return 1 << 30
    ab = a if a > 0 else _wrap32(-a)
    pos = _one_over_one_plus_x(exp_on_negative_values(_wrap32(-ab), int_bits))
    return pos if a > 0 else _I32_MAX - pos


def gemmlowp_tanh(a: int, int_bits: int) -> int:
    """gemmlowp::tanh(FixedPoint<int32, int_bits>) -> raw Q0.31."""
    if a == 0:
        return 0
    n = a if a < 0 else _wrap32(-a)
    t = _one_minus_x_over_one_plus_x(exp_on_negative_values(n, int_bits + 1))
    return _wrap32(-t) if a < 0 else t


# ================================================================================================
# TFLite Micro tables
# ================================================================================================

def _sat8(v: int) -> int:
    return max(-128, min(127, v))


def _frexp_multiplier(real: float) -> tuple[int, int]:
    """LOGISTIC / TANH Prepare: q, shift = frexp(real); static_cast<int32_t>(TfLiteRound(q * 2^31))
    (no QuantizeMultiplier fix-up: 2^31 converts to INT32_MIN on x86-64)."""
    q, shift = math.frexp(real)
    m = _round_away(q * (1 << 31))
    if m == 1 << 31:
        m = _I32_MIN
    return m, shift


def _input_radius(int_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """tflite::CalculateInputRadius (floating-point build)."""
    if left_shift < 0 or left_shift > 62:
        raise ValueError(f"input scale gives a left shift of {left_shift} (TFLM: undefined)")
    v = 1.0 * ((1 << int_bits) - 1) * float(1 << (total_bits - int_bits)) / float(1 << left_shift)
    return int(math.floor(v))


def _downscale_i16(m32: int) -> int:
    """tflite::DownScaleInt32ToInt16Multiplier."""
    if m32 >= _I32_MAX - (1 << 15):
        return (1 << 15) - 1
    return (m32 + (1 << 15)) >> 16


def _sat_shl16(v: int, amount: int) -> int:
    """reference_ops::SaturatingLeftShift (hard_swish.h)."""
    return max(-(1 << 15), min((1 << 15) - 1, v * (1 << amount)))


def _sdhm16(a: int, b: int) -> int:
    """reference_ops::SaturatingDoublingHighMul<int16> (no rounding nudge, C division)."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    return _wrap16(_tdiv(a * b, 1 << 15))


def hard_swish_params_tflm(in_scale, in_zp, out_scale, out_zp) -> dict:
    """HardSwishPrepare (int8): the HardSwishParams fields."""
    s_in, s_out = _f32(in_scale), _f32(out_scale)
    hires = _f32(_f32(1.0 / 128.0) * s_in)
    reluish_scale = _f32(_f32(3.0) / _f32(32768.0))
    out_m32, out_e = quantize_multiplier(float(_f32(hires / s_out)))
    if out_e > 0:
        raise ValueError("HARD_SWISH: output multiplier exponent > 0 (TFLM rejects it)")
    rel_m32, rel_e = quantize_multiplier(float(_f32(hires / reluish_scale)))
    return dict(input_zero_point=int(in_zp), output_zero_point=int(out_zp),
                output_multiplier_fixedpoint_int16=_downscale_i16(out_m32),
                output_multiplier_exponent=out_e,
                reluish_multiplier_fixedpoint_int16=_downscale_i16(rel_m32),
                reluish_multiplier_exponent=rel_e)


def _hard_swish_tflm(p: dict, x: int) -> int:
    """reference_ops::HardSwish<int8_t> for one value."""
    iv = _wrap16(x - p["input_zero_point"])
    hires = _wrap16(iv * (1 << 7))
    pre_out = srdhm16(hires, p["output_multiplier_fixedpoint_int16"])
    e = p["reluish_multiplier_exponent"]
    rv = hires
    if e > 0:
        rv = _sat_shl16(rv, e - 1)
    rv = srdhm16(rv, p["reluish_multiplier_fixedpoint_int16"])
    if e > 0:
        rv = _sat_shl16(rv, 1)
    if e < 0:
        rv = rdbpot(rv, -e, bits=16)
    rv = _wrap16((rv + (1 << 15)) >> 1)
    pso = _sdhm16(rv, pre_out)
    out = rdbpot(pso, -p["output_multiplier_exponent"], bits=16)
    out = _wrap16(out + p["output_zero_point"])
    return _sat8(out)


def tflm_table(op: str, in_scale, in_zp, out_scale, out_zp, **attrs) -> np.ndarray:
    """256-entry int8 table (index x + 128) of a TFLite int8 unary op as TFLite Micro's reference
    kernel computes it.

    op: ``hard_swish``, ``logistic`` (TFLM requires out_zp == -128; out_scale is not used: the
    kernel assumes 1/256), ``tanh`` (out_scale / out_zp are not used: the kernel assumes 1/128
    and 0), ``leaky_relu`` (attrs: alpha), ``quantize`` (int8 -> int8 requantisation),
    ``relu`` (requantises in -> out, then clamps at the output zero point), ``relu6`` (TFLM's
    RELU6 does NOT requantise: it clamps the raw input to [in_zp, round(6 / in_scale) + in_zp];
    out_scale / out_zp are not used)."""
    s_in, s_out = _f32(in_scale), _f32(out_scale)
    in_zp, out_zp = int(in_zp), int(out_zp)
    xs = range(-128, 128)
    if op == "hard_swish":
        p = hard_swish_params_tflm(s_in, in_zp, s_out, out_zp)
        vals = [_hard_swish_tflm(p, x) for x in xs]
    elif op in ("logistic", "tanh"):
        if op == "logistic" and out_zp != -128:
            raise ValueError("LOGISTIC int8: TFLM requires output zero point -128")
        m, shift = _frexp_multiplier(float(s_in) * float(1 << 27))
        radius = _input_radius(4, shift)
        vals = []
        for x in xs:
            v = x - in_zp
            if v <= -radius:
                vals.append(-128)
            elif v >= radius:
                vals.append(127)
            else:
                q4 = mbqm(v, m, shift)
                if op == "logistic":
                    vals.append(_sat8(rdbpot(gemmlowp_logistic(q4, 4), 23) - 128))
                else:
                    vals.append(_sat8(rdbpot(gemmlowp_tanh(q4, 4), 24)))
    elif op == "leaky_relu":
        alpha = _f32(attrs["alpha"])
        ma, sa = quantize_multiplier(float(_f32(_f32(s_in * alpha) / s_out)))
        mi, si = quantize_multiplier(float(_f32(s_in / s_out)))
        safe = -ma if ma < 0 else ma
        vals = []
        for x in xs:
            v = x - in_zp
            if v >= 0:
                r = out_zp + mbqm(v, mi, si)
            else:
                t = mbqm(v, safe, sa)
                r = out_zp + (-t if ma < 0 else t)
            vals.append(_sat8(r))
    elif op == "quantize":
        m, s = quantize_multiplier(float(s_in) / float(s_out))
        vals = [_sat8(mbqm(x - in_zp, m, s) + out_zp) for x in xs]
    elif op == "relu":
        m, s = quantize_multiplier(float(_f32(s_in / s_out)))
        lo = max(-128, out_zp + int(_round_away(float(_f32(_f32(0.0) / s_out)))))
        vals = [max(lo, min(127, out_zp + mbqm(x - in_zp, m, s))) for x in xs]
    elif op == "relu6":
        six = _sat8(_round_away(float(_f32(_f32(6.0) / s_in))) + in_zp)
        vals = [six if x > six else (in_zp if x < in_zp else x) for x in xs]
    else:
        raise ValueError(f"unknown TFLM unary op {op!r} (known: {', '.join(TFLM_OPS)})")
    return np.array(vals, dtype=np.int8)


# ================================================================================================
# onnxruntime tables (float32, x86-64 with FMA3: MLAS's FMA kernels)
# ================================================================================================

def _fma_f32(a, b, c) -> np.ndarray:
    """Single-rounding float32 fused multiply-add, elementwise (numpy): the float64 sum of the
    exact product and c, corrected when it lies on a float32 rounding midpoint (the same
    argument as msf_fmaf in msf_quant.c)."""
    a = np.asarray(a, np.float32).astype(np.float64)
    b = np.asarray(b, np.float32).astype(np.float64)
    c = np.asarray(c, np.float32).astype(np.float64)
    p = a * b  # exact: 24 + 24 bits
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    s, err = np.broadcast_arrays(s, err)
    bits = np.ascontiguousarray(s).view(np.uint64).copy()
    mid = ((bits & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)) & (err != 0)
    towards = (s < 0) == (err < 0)
    bits = np.where(mid & towards, bits + np.uint64(1), np.where(mid, bits - np.uint64(1), bits))
    return bits.view(np.float64).astype(np.float32)


_LOGISTIC_ALPHA = [_f32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07,
                                     6.08574864600143e-05, 8.51377133304701e-03,
                                     2.48287947061529e-01)]
_LOGISTIC_BETA = [_f32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09,
                                    6.29106785017040e-06, 1.70198817374094e-03,
                                    1.16817656904453e-01, 9.93151921023180e-01)]
_TANH_ALPHA = [_f32(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13,
                                 -8.60467152213735e-11, 5.12229709037114e-08,
                                 1.48572235717979e-05, 6.37261928875436e-04,
                                 4.89352455891786e-03)]
_TANH_BETA = [_f32(v) for v in (1.19825839466702e-06, 1.18534705686654e-04,
                                2.26843463243900e-03, 4.89352518554385e-03)]


def mlas_logistic(x) -> np.ndarray:
    """MlasComputeLogistic on x86-64 with FMA3 (MlasLogisticKernelFma3): clamp to [-18, 18],
    odd/even rational polynomial in x^2 with FMAs, p / q + 0.5, max(0, .)."""
    x = np.minimum(_f32(18.0), np.maximum(_f32(-18.0), np.asarray(x, np.float32)))
    x2 = (x * x).astype(np.float32)
    p = _fma_f32(x2, _LOGISTIC_ALPHA[0], _LOGISTIC_ALPHA[1])
    for c in _LOGISTIC_ALPHA[2:]:
        p = _fma_f32(x2, p, c)
    q = _fma_f32(x2, _LOGISTIC_BETA[0], _LOGISTIC_BETA[1])
    for c in _LOGISTIC_BETA[2:]:
        q = _fma_f32(x2, q, c)
    p = (x * p).astype(np.float32)
    r = ((p / q).astype(np.float32) + _f32(0.5)).astype(np.float32)
    return np.maximum(_f32(0.0), r)


def mlas_tanh(x) -> np.ndarray:
    """MlasComputeTanh on x86-64 with FMA3 (the Eigen rational approximation): clamp to [-9, 9],
    p = x * P(x^2), q = Q(x^2) with FMAs, p / q."""
    x = np.minimum(_f32(9.0), np.maximum(_f32(-9.0), np.asarray(x, np.float32)))
    x2 = (x * x).astype(np.float32)
    p = _fma_f32(x2, _TANH_ALPHA[0], _TANH_ALPHA[1])
    for c in _TANH_ALPHA[2:]:
        p = _fma_f32(p, x2, c)
    p = (p * x).astype(np.float32)
    q = _fma_f32(x2, _TANH_BETA[0], _TANH_BETA[1])
    for c in _TANH_BETA[2:]:
        q = _fma_f32(q, x2, c)
    return (p / q).astype(np.float32)


def _hard_sigmoid_f32(x, alpha, beta) -> np.ndarray:
    """ORT HardSigmoid: max(0, min(1, alpha * x + beta)) (multiply, then add: no FMA)."""
    v = (_f32(alpha) * x).astype(np.float32)
    v = (v + _f32(beta)).astype(np.float32)
    return np.maximum(_f32(0.0), np.minimum(_f32(1.0), v))


def ort_dequantize(x, scale, zp) -> np.ndarray:
    """DequantizeLinear / QlinearBuildLookupTable: float32(scale * float(x - zp))."""
    return (_f32(scale) * (np.asarray(x, np.int32) - int(zp)).astype(np.float32)).astype(np.float32)


def ort_quantize(y, scale, zp) -> np.ndarray:
    """MlasQuantizeLinear (int8): rne(clamp(y / scale, -128 - zp, 127 - zp)) + zp."""
    v = (np.asarray(y, np.float32) / _f32(scale)).astype(np.float32)
    v = np.minimum(np.maximum(v, _f32(-128 - int(zp))), _f32(127 - int(zp)))
    return (np.rint(v).astype(np.int32) + int(zp)).astype(np.int8)


def ort_float_op(op: str, x, **attrs) -> np.ndarray:
    """The float32 function f of ort_table (what ORT's float kernels compute), elementwise."""
    x = np.asarray(x, np.float32)
    if op == "sigmoid":
        y = mlas_logistic(x)
    elif op == "tanh":
        y = mlas_tanh(x)
    elif op == "leaky_relu":
        y = np.where(x >= 0, x, (_f32(attrs.get("alpha", 0.01)) * x).astype(np.float32))
    elif op == "hard_sigmoid":
        y = _hard_sigmoid_f32(x, attrs.get("alpha", 0.2), attrs.get("beta", 0.5))
    elif op == "hard_swish":
        y = (x * _hard_sigmoid_f32(x, _f32(1.0 / 6.0), 0.5)).astype(np.float32)
    elif op == "clip":
        y = x
        if attrs.get("lo") is not None:
            y = np.maximum(y, _f32(attrs["lo"]))
        if attrs.get("hi") is not None:
            y = np.minimum(y, _f32(attrs["hi"]))
    elif op == "relu":
        y = np.where(x < 0, _f32(0.0), x)  # ORT keeps -0.0
    elif op == "identity":
        y = x
    else:
        raise ValueError(f"unknown ORT unary op {op!r} (known: {', '.join(ORT_OPS)})")
    return y


def ort_table(op: str, x_scale, x_zp, y_scale, y_zp, path: str = "qdq", **attrs) -> np.ndarray:
    """256-entry int8 table (index x + 128) of what onnxruntime 1.32 (CPU EP, x86-64 with FMA3)
    computes for an int8 unary op: out = Q(f(DQ(x))) in float32 (see ort_dequantize,
    ort_quantize), f:

    ``sigmoid`` (mlas_logistic), ``tanh`` (mlas_tanh), ``leaky_relu`` (alpha: v >= 0 ? v :
    alpha * v), ``hard_sigmoid`` (alpha, beta), ``hard_swish`` (x * hard_sigmoid(x, 1/6 as
    float32, 0.5): ORT expands the ONNX function), ``clip`` (lo, hi: min(max(x, lo), hi); None =
    no bound), ``relu`` (max(x, 0)), ``identity`` (DQ -> Q requantisation).

    path: ``"qlinear"`` = the com.microsoft QLinearSigmoid / QLinearLeakyRelu op (only those two
    exist); ``"qdq"`` = the DQ -> op -> Q pattern as ORT runs it with its default optimisations
    (sigmoid / leaky_relu are fused into the QLinear op, the others run as float ops);
    ``"unfused"`` = the pattern with ORT_DISABLE_ALL.  The arithmetic is the same on all three
    paths (ORT builds the QLinear table with the same float kernels), which the tests check."""
    if path not in ("qdq", "qlinear", "unfused"):
        raise ValueError(f"unknown path {path!r}")
    if path == "qlinear" and op not in ("sigmoid", "leaky_relu"):
        raise ValueError(f"onnxruntime has no QLinear op for {op!r}")
    if op not in ORT_OPS:
        raise ValueError(f"unknown ORT unary op {op!r} (known: {', '.join(ORT_OPS)})")
    y = ort_float_op(op, ort_dequantize(np.arange(-128, 128), x_scale, x_zp), **attrs)
    return ort_quantize(y, y_scale, y_zp)


# ================================================================================================
# PReLU and MUL parameters
# ================================================================================================

def prelu_params_tflm(in_scale, in_zp, alpha_scale, alpha_zp, alpha_q, out_scale, out_zp) -> dict:
    """TFLM PRELU (CalculatePreluParams): alpha is an int8 tensor with its own quantisation,
    one value per channel (alpha shape [1, 1, C] / [C]) or a single value."""
    m1, s1 = quantize_multiplier(float(_f32(in_scale)) / float(_f32(out_scale)))
    m2, s2 = quantize_multiplier(float(_f32(in_scale)) * float(_f32(alpha_scale))
                                 / float(_f32(out_scale)))
    a = np.ascontiguousarray(np.asarray(alpha_q, np.int8).reshape(-1))
    return dict(mode=MSF_RQ_FIXED, per_channel=int(a.size > 1), in_zp=int(in_zp),
                alpha_zp=int(alpha_zp), out_zp=int(out_zp), alpha_q=a, mul1=m1, shift1=s1,
                mul2=m2, shift2=s2, alpha_f=None, in_scale=0.0, out_scale=0.0)


def prelu_params_ort(in_scale, in_zp, slope, out_scale, out_zp) -> dict:
    """ORT DQ -> PRelu -> Q (float path, not fused by ORT): slope = the float32 slope values
    (per channel or one), as the PRelu node sees them (a DequantizeLinear'd int8 slope gives
    ort_dequantize(slope_q, s, zp))."""
    a = np.ascontiguousarray(np.asarray(slope, np.float32).reshape(-1))
    return dict(mode=MSF_RQ_FLOAT, per_channel=int(a.size > 1), in_zp=int(in_zp), alpha_zp=0,
                out_zp=int(out_zp), alpha_q=None, mul1=0, shift1=0, mul2=0, shift2=0, alpha_f=a,
                in_scale=float(_f32(in_scale)), out_scale=float(_f32(out_scale)))


def tflm_activation_range(act: str, out_scale, out_zp) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (Quantize: TfLiteRound(f / scale) in float)."""
    s = _f32(out_scale)

    def q(f):
        return int(out_zp) + _round_away(float(_f32(_f32(f) / s)))
    if act == "none":
        return -128, 127
    if act == "relu":
        return max(-128, q(0.0)), 127
    if act == "relu6":
        return max(-128, q(0.0)), min(127, q(6.0))
    if act == "relu_n1_to_1":
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise ValueError(f"unknown activation {act!r}")


def mul_params_tflm(s1, zp1, s2, zp2, s_out, zp_out, act: str = "none",
                    bcast: int = MSF_BCAST_NONE) -> dict:
    """TFLM MUL int8 (CalculateOpDataMul; the broadcast kernel uses the same arithmetic)."""
    m, s = quantize_multiplier(float(_f32(s1)) * float(_f32(s2)) / float(_f32(s_out)))
    lo, hi = tflm_activation_range(act, s_out, zp_out)
    return dict(mode=MSF_RQ_FIXED, bcast=int(bcast), in1_zp=int(zp1), in2_zp=int(zp2),
                out_zp=int(zp_out), act_min=lo, act_max=hi, out_mul=m, out_shift=s,
                ratio=0.0, in1_scale=0.0, in2_scale=0.0, out_scale=0.0)


def mul_params_ort(s1, zp1, s2, zp2, s_out, zp_out, bcast: int = MSF_BCAST_NONE,
                   path: str = "qlinear", act_min: int = -128, act_max: int = 127) -> dict:
    """ORT int8 Mul.  path ``"qlinear"``: QLinearMul (MLAS MlasQLinearMul, SSE2 kernel on x86-64),
    also what ORT runs for DQ -> Mul -> Q with its default optimisations (fused into
    QLinearMul): ratio = np.float32(np.float32(s1 * s2) / s_out).  path ``"unfused"``: the
    float chain (ORT_DISABLE_ALL): mode MSF_RQ_FLOAT_QDQ with the three float32 scales."""
    if path == "qlinear":
        ratio = _f32(_f32(_f32(s1) * _f32(s2)) / _f32(s_out))
        return dict(mode=MSF_RQ_FLOAT, bcast=int(bcast), in1_zp=int(zp1), in2_zp=int(zp2),
                    out_zp=int(zp_out), act_min=int(act_min), act_max=int(act_max), out_mul=0,
                    out_shift=0, ratio=float(ratio), in1_scale=0.0, in2_scale=0.0,
                    out_scale=0.0)
    if path == "unfused":
        return dict(mode=MSF_RQ_FLOAT_QDQ, bcast=int(bcast), in1_zp=int(zp1), in2_zp=int(zp2),
                    out_zp=int(zp_out), act_min=int(act_min), act_max=int(act_max), out_mul=0,
                    out_shift=0, ratio=0.0, in1_scale=float(_f32(s1)),
                    in2_scale=float(_f32(s2)), out_scale=float(_f32(s_out)))
    raise ValueError(f"unknown path {path!r}")


def add_const_params_tflm(x_scale, x_zp, k_scale, k_zp, k_values, y_scale, y_zp) -> dict:
    """msf_prelu_s8_params (mode MSF_ELT_ADD_CONST) of TFLite's int8 ADD(x, k) with a constant
    ``k`` of one int8 value per channel on grid (k_scale, k_zp): TFLM's AddPrepare multipliers
    (``requant.add_fixed_params``, left shift 20) and, per channel, the constant's summand of
    reference_integer_ops::AddFunc, RoundingDivideByPOT(SRDHM((k - k_zp) << 20, m2), -shift2),
    which does not depend on x.  mul1 / shift1 are the input's, mul2 / shift2 the output's."""
    from .requant import add_fixed_params
    p = add_fixed_params(x_scale, k_scale, y_scale)
    ls = p["left_shift"]

    def scaled(d: int, mul: int, shift: int) -> int:
        v = (d << ls) & 0xFFFFFFFF
        v = v - (1 << 32) if v >= 1 << 31 else v
        return rdbpot(srdhm32(v, mul), -shift)
    addend = np.array([scaled(int(v) - int(k_zp), p["in2_mul"], p["in2_shift"])
                       for v in np.asarray(k_values).astype(np.int64).reshape(-1)], np.int32)
    return dict(left_shift=ls, mul1=p["in1_mul"], shift1=p["in1_shift"], mul2=p["out_mul"],
                shift2=p["out_shift"], addend=addend, in_zp=int(x_zp), out_zp=int(y_zp))


def sub_from_const_params(p: dict, act_min: int, act_max: int) -> dict:
    """msf_prelu_s8 MSF_ELT_ADD_CONST parameters ``p`` of ADD(x, k) (k one int8 value per
    channel, :func:`add_const_params_tflm`) turned into TFLite's SUB(k, x): the
    kernel adds the input's scaled value RDBPOT(SRDHM((x - zp) << 20, m1), -s1) to the constant's,
    SUB(k, x) subtracts it.  With the multiplier negated the kernel computes
    RDBPOT(SRDHM(., -m1), -s1); RoundingDivideByPOT is symmetric (half away from zero) but SRDHM
    rounds ties upwards, so that is minus the scaled input except at a tie.  Every int8 input is
    checked; where one differs, every channel's output (after the clamp ``act_min`` ..
    ``act_max``) is compared and a difference raises ValueError naming the input."""
    ls, m1, s1 = p["left_shift"], int(p["mul1"]), int(p["shift1"])
    if m1 == -(1 << 31):
        raise ValueError("the input multiplier cannot be negated")
    if s1 > 0 or p["shift2"] > 0:
        raise ValueError("a requantisation multiplier is not below 1 (TFLM's SUB needs the "
                         "output scale above twice the larger input scale / 2^20)")

    def scaled(q: int, mul: int) -> int:
        v = ((q - p["in_zp"]) << ls) & 0xFFFFFFFF
        v = v - (1 << 32) if v >= 1 << 31 else v
        return rdbpot(srdhm32(v, mul), -s1)

    def out(raw: int) -> int:
        r = rdbpot(srdhm32(raw, p["mul2"]), -p["shift2"])
        return min(act_max, max(act_min, r + p["out_zp"]))
    for q in range(-128, 128):
        want, got = -scaled(q, m1), scaled(q, -m1)
        if want != got and any(out(int(k) + want) != out(int(k) + got) for k in p["addend"]):
            raise ValueError(f"constant minus input hits a rounding tie of TFLM's SUB (input {q} "
                             "would come out differently from the negated input multiplier)")
    return dict(p, mul1=-m1)
