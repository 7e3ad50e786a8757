"""Code generation: a plan becomes ``model.h`` / ``model.c`` that run it from one static arena.

The generated code reads the same block schedules the optimizer costed
(:func:`msfopt.modes.schedule_of`) and the arena layout of :func:`msfopt.layout.plan_layout`,
so ``MSF_ARENA_BYTES`` is the predicted arena by construction.

Requantisation: ``rq="float"`` is bit-exact with onnxruntime (ONNX models, the zoo);
``rq="fixed"`` is TFLite Micro's integer-only arithmetic (TFLite models).  The multipliers come
from :mod:`msfopt.mcu_runtime.requant`, exactly as ``msf_runtime.h`` prescribes.

The C text lives in ``templates/*.tmpl``, filled in by :mod:`msfopt.mcu_runtime.ctext` (which
also escapes every piece of model text); the block descriptors' numbers come from
:mod:`msfopt.mcu_runtime.descriptor`.  This module computes the values: every parameter struct,
layer row and block descriptor is a C99 designated initialiser (``.field = value``, in
``msf_runtime.h``'s field order), so a renamed field fails to compile and a reordered one cannot
be filled with another field's value.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msfopt.ir import (ACT, ADD, AVGPOOL, CONCAT, CONV, CONVT, DENSE, DW, GAP, MAXPOOL, MUL,
                       RESHAPE, RESIZE, SHUFFLE, SLICE, Network)
from msfopt.layout import plan_layout
from msfopt.modes import schedule_of
from msfopt.schedule import BlockSchedule, Liveness

from . import eltwise_params, requant, resize_params
from .ctext import CodegenError, c_array, c_comment_text, c_float, c_init, render
from .descriptor import BlockDescriptor, block_descriptor, in_slice_row, slice_row
from .runtime_files import HEADERS, SOURCES, SRC_DIR

F32_MAX = "3.40282347e+38f"


@dataclass
class Generated:
    out_dir: Path
    arena_bytes: int
    peak_ram_bytes: int
    files: list[Path]
    schedules: list[BlockSchedule]
    tensor_offsets: dict[int, int]
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    dtype: str
    io: str
    rq: str
    weight_bytes: int
    extra: dict = field(default_factory=dict)
    # every graph output, in the model's order (one entry: output_shape); the caller's output
    # buffer holds them back to back
    output_shapes: tuple = ()


# -- per-layer parameters ----------------------------------------------------------------------------

#: largest right shift of the DSP cores' lean requantisation records (msf_s8_requant.h's
#: MSF_RQF_MAX_E; tests/test_codegen.py reads the header and checks that they agree)
RQD_MAX_E = 20


def _tflm_rq(acc: int, mul: int, e: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier(acc, mul, -e) for a right shift e >= 0 (before
    the zero point): SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT."""
    if acc == mul == -2**31:
        q = 2**31 - 1
    else:
        q = (acc * mul + 2**30) // 2**31      # floor: SRDHM's nudge and truncation, either sign
    mask = (1 << e) - 1
    return (q >> e) + (1 if (q & mask) > (mask >> 1) + (1 if q < 0 else 0) else 0)


def rqd_records(qmul, qshift, x_zp: int, w, bias, act_min: int, act_max: int) -> list | None:
    """(mul, e, n) per output channel for msf_s8_requant.h's msf_rqf_apply_dsp (the records of
    msf_conv_s8_params.rqd), each exact for every accumulator the channel can reach,
    |acc - bias| <= sum |w| * max |x - x_zp| (see msf_rqf_model): (mul, -shift,
    2^(-shift-1)) when 2^30 <= mul and 1 <= -shift <= RQD_MAX_E (any accumulator), or any
    mul > 0 and 1 <= -shift <= 31 with accumulators bounded by 2^29 (QADD never saturates, no
    sum overflows); a channel whose output is one value k + zp over its whole accumulator
    range (the pruned channels: mul 0, or a tiny multiplier on a bias near 2^30; the
    requantisation is monotonic, so the range's two ends decide) as (0, 1, 2k).  None when a
    channel or the clamp (-128 <= act_min <= act_max <= 127) does not qualify.  qmul / qshift:
    one entry per output channel, or one for all; w: (C_out, ...) int8 weights."""
    if not -128 <= act_min <= act_max <= 127:
        return None
    w = np.asarray(w, np.int64)
    cout = w.shape[0]
    qm = np.broadcast_to(np.asarray(qmul, np.int64).reshape(-1), (cout,))
    qs = np.broadcast_to(np.asarray(qshift, np.int64).reshape(-1), (cout,))
    b = np.zeros(cout, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    xmax = max(127 - int(x_zp), int(x_zp) + 128)
    d = np.abs(w.reshape(cout, -1)).sum(axis=1) * xmax
    rec: list[int] = []
    for c in range(cout):
        mul, e = int(qm[c]), -int(qs[c])
        lo, hi = int(b[c]) - int(d[c]), int(b[c]) + int(d[c])
        if mul >= 2**30 and 1 <= e <= RQD_MAX_E or \
                0 < mul < 2**31 and 1 <= e <= 31 and max(-lo, hi) <= 2**29:
            rec += [mul, e, 1 << (e - 1)]
        elif 0 <= mul < 2**31 and 0 <= e <= 31 and -2**31 <= lo and hi < 2**31 and \
                _tflm_rq(lo, mul, e) == _tflm_rq(hi, mul, e):
            rec += [0, 1, 2 * _tflm_rq(lo, mul, e)]
        else:
            return None
    return rec


class _Emitter:
    """Each layer's parameter struct (its designated-initialiser fields) and the constant arrays
    (weights, biases, multipliers) it points to, in requantisation ``rq``."""

    def __init__(self, net: Network, rq: str):
        self.net = net
        self.rq = rq
        self.lines: list[str] = []
        self.weight_bytes = 0
        self.op_override: dict[int, str] = {}  # layer -> MSF_OP_* (a "tflm-avgpool" GAP)

    def arr(self, ctype, name, values):
        a = np.asarray(values)
        self.weight_bytes += a.size * {"int8_t": 1, "int32_t": 4, "float": 4}[ctype]
        self.lines.append(c_array(ctype, name, values))
        return name

    def quant(self, t: int):
        q = self.net.quant_of(t)
        if q is None:
            raise CodegenError(f"tensor {t} has no quantisation parameters (int8 network)")
        if q.per_channel:
            raise CodegenError(f"tensor {t}: per-channel activation quantisation is not supported")
        return np.float32(q.scale[0]), int(q.zero_point[0])

    def requant(self, name, x_scale, w_scale, y_scale) -> dict:
        """msf_requant fields for conv/dense."""
        ws = np.atleast_1d(np.asarray(w_scale, dtype=np.float64))
        per = 1 if ws.size > 1 else 0
        if self.rq == "float":
            fm = requant.conv_float_multipliers(x_scale, ws, y_scale)
            self.arr("float", f"{name}_fmul", fm)
            return _rq("MSF_RQ_FLOAT", per, fmul=f"{name}_fmul")
        qm, qs = requant.conv_fixed_multipliers(x_scale, ws, y_scale)
        self.arr("int32_t", f"{name}_qmul", qm)
        self.arr("int32_t", f"{name}_qshift", qs)
        return _rq("MSF_RQ_FIXED", per, qmul=f"{name}_qmul", qshift=f"{name}_qshift")

    def layer_params(self, i: int) -> tuple[str, dict]:
        """(C type, designated-initialiser fields) of layer i's params struct; also emits its
        constant arrays."""
        net, L = self.net, self.net.layers[i]
        name = f"L{i}"
        f32 = net.dtype == "float32"
        if L.op in (CONV, DW, DENSE):
            return self._weighted_params(i)
        if L.op in (MAXPOOL, AVGPOOL):
            return self._pool_params(i)
        if L.op == GAP:
            if f32:
                return "msf_act_f32_params", _act_f32(L)
            xs, xz = self.quant(L.src)
            ys, yz = self.quant(i + 1)
            amin, amax = L.act_min, L.act_max
            h, w, _ = L.in_shape
            if self.rq == "fixed" and L.gap_rounding == "tflm-avgpool":
                # TFLM's whole-input average pool (sum of raw values, rounding division, no
                # requantisation) rounds differently from its mean: run it as an unpadded
                # whole-input avgpool
                self.op_override[i] = "MSF_OP_AVGPOOL"
                win = dict(kh=h, kw=w, sh=1, sw=1, pad_top=0, pad_left=0, pad_bottom=0, pad_right=0)
                return "msf_pool_s8_params", dict(
                    win=win, count_include_pad=0, mode="MSF_RQ_FIXED", in_scale=c_float(xs),
                    out_scale=c_float(ys), in_zp=xz, out_zp=yz, act_min=amin, act_max=amax)
            if self.rq == "fixed" and L.gap_rounding == "tflm-mean":
                # TFLM's mean (QuantizedMeanOrSum): 1/(H*W) folded into the multiplier
                qm, qs = requant.mean_fixed_multiplier(xs, ys, h * w)
                self.arr("int32_t", f"{name}_qmul", [qm])
                self.arr("int32_t", f"{name}_qshift", [qs])
                rq = _rq("MSF_RQ_MEAN", 0, qmul=f"{name}_qmul", qshift=f"{name}_qshift")
                return "msf_gap_s8_params", dict(in_zp=xz, out_zp=yz, act_min=amin, act_max=amax,
                                                 rq=rq)
            if self.rq == "float":
                fm = requant.gap_float_multiplier(xs, ys, h * w)
                self.arr("float", f"{name}_fmul", [fm])
                rq = _rq("MSF_RQ_FLOAT", 0, fmul=f"{name}_fmul")
            else:
                qm, qs = requant.gap_fixed_multiplier(xs, ys)
                self.arr("int32_t", f"{name}_qmul", [qm])
                self.arr("int32_t", f"{name}_qshift", [qs])
                rq = _rq("MSF_RQ_FIXED", 0, qmul=f"{name}_qmul", qshift=f"{name}_qshift")
            return "msf_gap_s8_params", dict(in_zp=xz, out_zp=yz, act_min=amin, act_max=amax, rq=rq)
        if L.op == ADD:
            return self._add_params(i)
        if L.op in (CONCAT, SLICE, SHUFFLE, RESHAPE):
            return "msf_move_params", dict(
                esize=net.elem_bytes, c_off=L.chan[0] if L.op == SLICE else 0,
                groups=L.groups if L.op == SHUFFLE else 1)
        if L.op == ACT:
            return self._act_params(i)
        if L.op == MUL:
            return self._mul_params(i)
        if L.op == RESIZE:
            return "msf_resize_params", _resize_fields(net, i)
        if L.op == CONVT:
            return self._convt_params(i)
        raise CodegenError(f"layer {i}: op {L.op} has no C kernel")

    def _convt_params(self, i: int) -> tuple[str, dict]:
        """CONVT: the geometry (begin pads), weights OHWI, bias, requantisation."""
        L, name = self.net.layers[i], f"L{i}"
        geo = dict(kh=L.kh, kw=L.kw, sh=L.sh, sw=L.sw, dh=L.dilation[0], dw=L.dilation[1],
                   pad_top=L.pad[0], pad_left=L.pad[1])
        if L.weight is None:
            raise CodegenError(f"layer {i} ({L.name}) has no weights")
        w = np.asarray(L.weight)
        if self.net.dtype == "float32":
            self.arr("float", f"{name}_w", w.astype(np.float32))
            b = "0" if L.bias is None else self.arr("float", f"{name}_b",
                                                     np.asarray(L.bias, np.float32))
            return "msf_convt_f32_params", dict(**geo, **_act_f32(L), weights=f"{name}_w", bias=b)
        if self.rq != "fixed":
            raise CodegenError(f"layer {i} ({L.name}): an int8 transposed conv has only TFLite "
                               "Micro's arithmetic (onnxruntime has no QLinearConvTranspose)")
        xs, xz = self.quant(L.src)
        ys, yz = self.quant(i + 1)
        wq = L.w_quant
        if wq is None or set(wq.zero_point) != {0}:
            raise CodegenError(f"layer {i} ({L.name}): int8 transposed conv weights need zero "
                               "points 0")
        self.arr("int8_t", f"{name}_w", w.astype(np.int8))
        b = "0" if L.bias is None else self.arr("int32_t", f"{name}_b",
                                                 np.asarray(L.bias, np.int32))
        return "msf_convt_s8_params", dict(**geo, in_zp=xz, out_zp=yz, act_min=L.act_min,
                                           act_max=L.act_max, weights=f"{name}_w", bias=b,
                                           rq=self.requant(name, xs, wq.scale, ys))

    def _act_params(self, i: int) -> tuple[str, dict]:
        """ACT: float32 msf_unary_f32 (function, parameters, trailing clamp); int8 a 256-entry
        table (msf_lut_s8) of the framework's arithmetic, or msf_prelu_s8."""
        L, name = self.net.layers[i], f"L{i}"
        if self.net.dtype != "float32":
            return self._act_s8_params(i)
        if L.fn == "quantize":
            raise CodegenError(f"layer {i} ({L.name}): requantisation on a float32 network")
        clamp = _act_f32(L)
        if L.fn == "clip":
            clamp = dict(act_min=c_float(L.fclip[0]), act_max=c_float(L.fclip[1]))
        slope = bias = "0"
        if L.fn in ("prelu", "affine"):
            slope = self.arr("float", f"{name}_slope", np.asarray(L.weight, np.float32))
        if L.fn == "affine":
            bias = self.arr("float", f"{name}_bias", np.asarray(L.bias, np.float32))
        return "msf_unary_f32_params", dict(
            fn=_FN[L.fn], alpha=c_float(L.alpha), beta=c_float(L.beta), lo=clamp["act_min"],
            hi=clamp["act_max"], slope=slope, bias=bias)

    def _act_s8_params(self, i: int) -> tuple[str, dict]:
        L, name = self.net.layers[i], f"L{i}"
        xs, xz = self.quant(L.src)
        ys, yz = self.quant(i + 1)
        if L.fn == "prelu":
            if self.rq == "fixed":
                wq = L.w_quant
                if wq is None or wq.per_channel:
                    raise CodegenError(f"layer {i} ({L.name}): TFLite PRELU slopes need one "
                                       "int8 quantisation")
                p = eltwise_params.prelu_params_tflm(xs, xz, wq.scale[0], wq.zero_point[0],
                                                     np.asarray(L.weight), ys, yz)
            else:
                p = eltwise_params.prelu_params_ort(xs, xz, np.asarray(L.weight, np.float32),
                                                    ys, yz)
            alpha_q = self.arr("int8_t", f"{name}_aq", p["alpha_q"]) \
                if p["alpha_q"] is not None else "0"
            alpha_f = self.arr("float", f"{name}_af", p["alpha_f"]) \
                if p["alpha_f"] is not None else "0"
            mode = "MSF_RQ_FIXED" if self.rq == "fixed" else "MSF_RQ_FLOAT"
            return "msf_prelu_s8_params", dict(
                mode=mode, per_channel=p["per_channel"], in_zp=p["in_zp"],
                alpha_zp=p["alpha_zp"], out_zp=p["out_zp"], alpha_q=alpha_q, mul1=p["mul1"],
                shift1=p["shift1"], mul2=p["mul2"], shift2=p["shift2"], alpha_f=alpha_f,
                in_scale=c_float(p["in_scale"]), out_scale=c_float(p["out_scale"]))
        if _add_const_per_channel(L):
            if self.rq != "fixed" or L.w_quant.per_channel:
                raise CodegenError(f"layer {i} ({L.name}): an int8 per-channel constant add is "
                                   "TFLite's ADD (rq fixed, the constant on one grid)")
            p = eltwise_params.add_const_params_tflm(
                xs, xz, L.w_quant.scale[0], L.w_quant.zero_point[0], np.asarray(L.bias), ys, yz)
            if L.sub:
                try:
                    p = eltwise_params.sub_from_const_params(p, L.act_min, L.act_max)
                except ValueError as e:
                    raise CodegenError(f"layer {i} ({L.name}): {e}") from None
            return "msf_prelu_s8_params", dict(
                mode="MSF_ELT_ADD_CONST", per_channel=1, in_zp=xz, out_zp=yz,
                mul1=p["mul1"], shift1=p["shift1"], mul2=p["mul2"], shift2=p["shift2"],
                addend=self.arr("int32_t", f"{name}_addend", p["addend"]),
                left_shift=p["left_shift"], act_min=L.act_min, act_max=L.act_max)
        if L.fn == "affine":
            table = self._add_const_table(i, xs, xz, ys, yz)
        else:
            table = np.asarray(_s8_table(L, self.rq, xs, xz, ys, yz), np.int8)
        # the layer's int8 clamp (a folded Relu / Clip after the function) is part of the table
        table = np.clip(table, L.act_min, L.act_max).astype(np.int8)
        return "msf_lut_s8_params", dict(table=self.arr("int8_t", f"{name}_lut", table))

    def _add_const_table(self, i: int, xs, xz, ys, yz) -> np.ndarray:
        """int8 ACT "affine" of a TFLite network: ADD(x, c) (``sub``: SUB(c, x)) of a constant
        int8 scalar c (``bias``, quantised ``w_quant``; unit slope, ``weight`` None) is a
        function of x alone:
        the 256-entry table of TFLM's reference_integer_ops::AddFunc with
        requant.add_fixed_params (left shift 20; each summand RoundingDivideByPOT(SRDHM(
        (q - zp) << 20, mul), -shift); the sum likewise with the output multiplier, + out zp,
        saturated to int8; the fused clamp is applied by the caller)."""
        L = self.net.layers[i]
        c = None if L.bias is None else np.asarray(L.bias).reshape(-1)
        if self.rq != "fixed" or L.weight is not None or c is None or c.size != 1 \
                or L.w_quant is None or L.w_quant.per_channel:
            raise CodegenError(f"layer {i} ({L.name}): int8 affine is only TFLite's ADD of a "
                               "constant int8 scalar (bias + w_quant, no slope, rq fixed)")
        cs, cz = np.float32(L.w_quant.scale[0]), int(L.w_quant.zero_point[0])
        p = requant.add_fixed_params(xs, cs, ys)

        def scaled(q, zp, mul, shift):
            v = ((q - zp) << p["left_shift"]) & 0xFFFFFFFF
            v = v - (1 << 32) if v >= 1 << 31 else v
            return eltwise_params.rdbpot(eltwise_params.srdhm32(v, mul), -shift)
        b = scaled(int(np.int8(c[0])), cz, p["in2_mul"], p["in2_shift"])
        out = []
        for q in range(-128, 128):
            # sub: TFLite's SUB(c, x), the constant's scaled value minus the input's (ADD's
            # multipliers: TFLM's Prepare is symmetric in the two inputs' scales)
            sx = scaled(q, xz, p["in1_mul"], p["in1_shift"])
            r = b - sx if L.sub else sx + b
            r = eltwise_params.rdbpot(eltwise_params.srdhm32(r, p["out_mul"]), -p["out_shift"])
            out.append(max(-128, min(127, r + yz)))
        return np.array(out, np.int8)

    def _mul_params(self, i: int) -> tuple[str, dict]:
        """MUL: float32 msf_binary_f32 with the factor's broadcast; int8 msf_mul_s8 (TFLM's or
        onnxruntime's QLinearMul arithmetic)."""
        L = self.net.layers[i]
        bcast = _bcast(self.net, L)
        if self.net.dtype == "float32":
            return "msf_binary_f32_params", dict(op="MSF_BIN_MUL", bcast=bcast, **_act_f32(L))
        s1, z1 = self.quant(L.src)
        if L.src2 is not None:
            s2, z2 = self.quant(L.src2)
        else:
            if L.w_quant is None or L.w_quant.per_channel:
                raise CodegenError(f"layer {i} ({L.name}): int8 constant factor needs one "
                                   "quantisation")
            s2, z2 = np.float32(L.w_quant.scale[0]), int(L.w_quant.zero_point[0])
        so, zo = self.quant(i + 1)
        b = _BCAST[bcast]
        if self.rq == "fixed":
            p = eltwise_params.mul_params_tflm(s1, z1, s2, z2, so, zo, bcast=b)
        else:
            p = eltwise_params.mul_params_ort(s1, z1, s2, z2, so, zo, bcast=b,
                                              path="unfused" if L.qdq else "qlinear")
        mode = {eltwise_params.MSF_RQ_FIXED: "MSF_RQ_FIXED",
                eltwise_params.MSF_RQ_FLOAT: "MSF_RQ_FLOAT",
                eltwise_params.MSF_RQ_FLOAT_QDQ: "MSF_RQ_FLOAT_QDQ"}[p["mode"]]
        return "msf_mul_s8_params", dict(
            mode=mode, bcast=bcast, in1_zp=p["in1_zp"], in2_zp=p["in2_zp"], out_zp=p["out_zp"],
            act_min=L.act_min, act_max=L.act_max, out_mul=p["out_mul"], out_shift=p["out_shift"],
            ratio=c_float(p["ratio"]), in1_scale=c_float(p["in1_scale"]),
            in2_scale=c_float(p["in2_scale"]), out_scale=c_float(p["out_scale"]))

    def constant_operand(self, i: int) -> str:
        """The C array of layer i's constant second operand (a multiply's constant factor)."""
        L = self.net.layers[i]
        if self.net.dtype == "float32":
            return self.arr("float", f"L{i}_k", np.asarray(L.weight, np.float32).reshape(-1))
        return self.arr("int8_t", f"L{i}_k", np.asarray(L.weight, np.int8).reshape(-1))

    def _weighted_params(self, i: int) -> tuple[str, dict]:
        """CONV / DW / DENSE: the weights, bias and requantisation."""
        L, name = self.net.layers[i], f"L{i}"
        if L.weight is None:
            raise CodegenError(f"layer {i} ({L.name}) has no weights: initialise them first "
                               f"(msfopt.weights.init_weights)")
        w = np.asarray(L.weight)
        if self.net.dtype == "float32":
            self.arr("float", f"{name}_w", w.astype(np.float32))
            b = "0"
            if L.bias is not None:
                b = self.arr("float", f"{name}_b", np.asarray(L.bias, dtype=np.float32))
            tail = dict(_act_f32(L), weights=f"{name}_w", bias=b)
            if L.op == DENSE:
                return "msf_dense_f32_params", tail
            return "msf_conv_f32_params", dict(win=_window(L), groups=L.groups, **tail)
        xs, xz = self.quant(L.src)
        ys, yz = self.quant(i + 1)
        wq = L.w_quant
        if wq is None:
            raise CodegenError(f"layer {i} ({L.name}) has no weight quantisation")
        wz = set(wq.zero_point)
        if len(wz) != 1 or (len(wq.zero_point) > 1 and wz != {0}):
            raise CodegenError(f"layer {i}: per-channel weight zero points must be 0")
        wzp = int(wq.zero_point[0])
        self.arr("int8_t", f"{name}_w", w.astype(np.int8))
        b = "0"
        if L.bias is not None:
            b = self.arr("int32_t", f"{name}_b", np.asarray(L.bias, dtype=np.int32))
        rq = self.requant(name, xs, wq.scale, ys)
        fields = dict(in_zp=xz, w_zp=wzp, out_zp=yz, act_min=L.act_min, act_max=L.act_max,
                      weights=f"{name}_w", bias=b, rq=rq)
        if L.op == DENSE:
            return "msf_dense_s8_params", fields
        fields["bias_zp"] = self.bias_zp(name, w, L.bias, xz) if wzp == 0 else "0"
        fields["rqd"] = self.rq_dsp(name, xs, xz, wq.scale, ys, w, L.bias, L.act_min,
                                    L.act_max)
        return "msf_conv_s8_params", dict(win=_window(L), groups=L.groups, **fields)

    def rq_dsp(self, name, x_scale, x_zp: int, w_scale, y_scale, w, bias, act_min: int,
               act_max: int) -> str:
        """The DSP cores' lean fixed-point requantisation records of a conv / depthwise layer
        (msf_conv_s8_params.rqd, :func:`rqd_records`; 12 B of flash per output channel,
        compiled only where MSF_RQD_ON), so the short calls derive nothing per channel; "0"
        when the layer has none."""
        if self.rq != "fixed":
            return "0"
        qm, qs = requant.conv_fixed_multipliers(x_scale, w_scale, y_scale)
        rec = rqd_records(qm, qs, x_zp, w, bias, act_min, act_max)
        if rec is None:
            return "0"
        # (not in weight_bytes: compiled only on the DSP cores, 12 B per output channel there)
        self.lines.append("#if MSF_RQD_ON\n" + c_array("int32_t", f"{name}_rqd", rec) +
                          "#endif\n")
        return f"MSF_RQD({name}_rqd)"

    def bias_zp(self, name, w, bias, in_zp: int) -> str:
        """The folded accumulator start bias[c] - in_zp * sum(w[c]) of a conv / depthwise layer
        (weights OHWI, every tap of output channel c), wrapped to int32 exactly as the kernels'
        int32 sums wrap, so the fast kernels need no per-run weight sums (4 B of flash per
        output channel)."""
        w = np.asarray(w, dtype=np.int64)
        s = w.reshape(w.shape[0], -1).sum(axis=1)
        b = np.zeros(w.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64)
        v = (b.reshape(-1) - int(in_zp) * s + 2**31) % 2**32 - 2**31
        return self.arr("int32_t", f"{name}_bzp", v.astype(np.int32))

    def _pool_params(self, i: int) -> tuple[str, dict]:
        """MAXPOOL / AVGPOOL (the int8 avgpool's rounding: ORT, ONNX QDQ or TFLM)."""
        L = self.net.layers[i]
        cip = int(bool(L.count_include_pad))
        if self.net.dtype == "float32":
            return "msf_pool_f32_params", dict(win=_window(L), count_include_pad=cip,
                                               **_act_f32(L))
        xs, xz = self.quant(L.src)
        ys, yz = self.quant(i + 1)
        if L.op == MAXPOOL and (xs, xz) != (ys, yz):
            # the int8 max pool compares and copies: it cannot move values to another grid
            raise CodegenError(f"layer {i} ({c_comment_text(L.name)}): int8 max pool whose output "
                               f"quantisation differs from its input's is not supported (import "
                               f"it as a max pool followed by a requantisation)")
        mode = "MSF_RQ_FIXED" if self.rq == "fixed" else \
            "MSF_RQ_FLOAT_QDQ" if L.avg_rounding == "qdq" else "MSF_RQ_FLOAT"
        return "msf_pool_s8_params", dict(
            win=_window(L), count_include_pad=cip, mode=mode, in_scale=c_float(xs),
            out_scale=c_float(ys), in_zp=xz, out_zp=yz, act_min=L.act_min, act_max=L.act_max)

    def _add_params(self, i: int) -> tuple[str, dict]:
        """ADD: ORT's float parameters or TFLM's fixed-point ones (the other set zero).  A
        subtracting ADD (``sub``, TFLite's SUB: TFLM's Prepare computes ADD's multipliers, Eval
        subtracts the scaled second input) sets the kernel's ``sub``; it exists in TFLM's
        fixed-point arithmetic and the ONNX QDQ float path (DQ -> Sub -> Q), not in QLinearAdd.
        A broadcasting ADD / SUB (or a float SUB) runs as a binary graph op (MSF_OP_MUL: the
        executor's operand path): float msf_binary_f32, int8 msf_mul_s8 with an
        msf_binary_s8_params around these add parameters."""
        L = self.net.layers[i]
        if L.sub and self.net.dtype == "int8" and self.rq != "fixed" and not L.qdq:
            raise CodegenError(f"layer {i} ({L.name}): a subtracting add is TFLite's int8 SUB "
                               "(requantisation fixed) or an ONNX QDQ Sub")
        binary = _binary_add(self.net, L)
        if binary:
            self.op_override[i] = "MSF_OP_MUL"
        if self.net.dtype == "float32":
            if binary:
                op = ("MSF_BIN_RSUB" if L.rsub else "MSF_BIN_SUB") if L.sub else "MSF_BIN_ADD"
                return "msf_binary_f32_params", dict(op=op, bcast=_bcast(self.net, L),
                                                     **_act_f32(L))
            return "msf_act_f32_params", _act_f32(L)
        ctype, fields = self._add_s8_params(i, binary)
        if not binary:
            return ctype, fields
        # the arithmetic's operands are (src2, src) with rsub: the add's in1 is src2's
        fields = dict(fields, act_min=-128, act_max=127)
        base = dict(mode="MSF_ELT_BINARY_ADD", bcast=_bcast(self.net, L), act_min=L.act_min,
                    act_max=L.act_max)
        return "msf_binary_s8_params", dict(base=base, add=fields, reverse=int(bool(L.rsub)))

    def _add_s8_params(self, i: int, binary: bool = False) -> tuple[str, dict]:
        """The msf_add_s8_params of int8 ADD i (its first operand src, or src2 with rsub).
        QLinearAdd (float, not QDQ) with rsub, ORT's first input A being src2: run by
        msf_add_s8 (``binary`` False, the kernel's in1 is src) it is MSF_RQ_FLOAT_REV with the
        multipliers of in1 / in2 (a binary op takes its operands reversed instead)."""
        L = self.net.layers[i]
        if L.rsub and L.sub and not binary:
            raise CodegenError(f"layer {i} ({L.name}): a reversed subtract runs as a binary op")
        # the arithmetic's (first, second) operands; msf_add_s8 (not binary) takes (src, src2),
        # and with rsub only QLinearAdd's arithmetic is asymmetric (MSF_RQ_FLOAT_REV below)
        rev = bool(L.rsub) and not binary and self.rq == "float" and not L.qdq
        a, b = (L.src2, L.src) if L.rsub and (binary or rev) else (L.src, L.src2)
        s1, z1 = self.quant(a)
        s2, z2 = self.quant(b)
        so, zo = self.quant(i + 1)
        fields = dict(in1_zp=z1, in2_zp=z2, out_zp=zo, act_min=L.act_min, act_max=L.act_max)
        if self.rq == "float":
            fixed = dict.fromkeys(("left_shift", "in1_mul", "in1_shift", "in2_mul", "in2_shift",
                                   "out_mul", "out_shift"), 0)
            if L.qdq:   # ONNX DQ -> Add / Sub -> Q in float32: mul1 / mul2 / fbias = the scales
                return "msf_add_s8_params", dict(mode="MSF_RQ_FLOAT_QDQ", **fields,
                                                 mul1=c_float(s1), mul2=c_float(s2),
                                                 fbias=c_float(so), **fixed,
                                                 sub=int(bool(L.sub)))
            m1, m2, fb = requant.add_float_params(s1, z1, s2, z2, so, zo)
            mode = "MSF_RQ_FLOAT"
            if rev:   # (a, b) = (A, B) = (src2, src): the kernel's in1 is src = B
                m1, m2 = m2, m1
                fields = dict(fields, in1_zp=z2, in2_zp=z1)
                mode = "MSF_RQ_FLOAT_REV"
            return "msf_add_s8_params", dict(mode=mode, **fields, mul1=c_float(m1),
                                             mul2=c_float(m2), fbias=c_float(fb), **fixed)
        p = requant.add_fixed_params(s1, s2, so)
        return "msf_add_s8_params", dict(mode="MSF_RQ_FIXED", **fields, mul1="0.0f", mul2="0.0f",
                                         fbias="0.0f", **p, sub=int(bool(L.sub)))


def _window(layer) -> dict:
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    pt, pl, pb, pr = layer.pad
    dh, dw = layer.dilation
    return dict(kh=kh, kw=kw, sh=sh, sw=sw, pad_top=pt, pad_left=pl, pad_bottom=pb, pad_right=pr,
                dil_h=dh, dil_w=dw)


def _rq(mode: str, per_channel: int, fmul="0", qmul="0", qshift="0") -> dict:
    """msf_requant fields."""
    return dict(mode=mode, per_channel=per_channel, fmul=fmul, qmul=qmul, qshift=qshift)


def _act_f32(L) -> dict:
    """float32 clamp bounds (act_min, act_max) of an activation."""
    lo, hi = {"none": (f"-{F32_MAX}", F32_MAX), "relu": ("0.0f", F32_MAX),
              "relu6": ("0.0f", "6.0f")}[L.act]
    return dict(act_min=lo, act_max=hi)


_OP = {CONV: "MSF_OP_CONV", DW: "MSF_OP_DW", MAXPOOL: "MSF_OP_MAXPOOL",
       AVGPOOL: "MSF_OP_AVGPOOL", GAP: "MSF_OP_GAP", DENSE: "MSF_OP_DENSE", ADD: "MSF_OP_ADD",
       CONCAT: "MSF_OP_CONCAT", SLICE: "MSF_OP_SLICE", SHUFFLE: "MSF_OP_SHUFFLE",
       ACT: "MSF_OP_ACT", MUL: "MSF_OP_MUL", RESIZE: "MSF_OP_RESIZE", CONVT: "MSF_OP_CONVT",
       RESHAPE: "MSF_OP_RESHAPE"}
#: graph ops: unfused blocks that read msf_block.operands
_GRAPH_OPS = (CONCAT, SLICE, SHUFFLE, ACT, MUL, RESIZE, CONVT, RESHAPE)
_FN = {"relu": "MSF_FN_RELU", "clip": "MSF_FN_CLIP", "leaky": "MSF_FN_LEAKY",
       "prelu": "MSF_FN_PRELU", "hardsigmoid": "MSF_FN_HARDSIGMOID",
       "hardswish": "MSF_FN_HARDSWISH", "sigmoid": "MSF_FN_SIGMOID", "tanh": "MSF_FN_TANH",
       "swish": "MSF_FN_SWISH", "affine": "MSF_FN_AFFINE"}


_BCAST = {"MSF_BCAST_NONE": 0, "MSF_BCAST_CHANNEL": 1, "MSF_BCAST_SCALAR": 2,
          "MSF_BCAST_PIXEL": 3}


def _resize_fields(net: Network, i: int) -> dict:
    """msf_resize_params of RESIZE layer i (its framework's coordinate arithmetic)."""
    L = net.layers[i]
    r = L.resize
    (h, w, _), (oh, ow, _) = L.in_shape, L.out_shape
    try:
        if r.framework == "onnx":
            kw = dict(scales=r.scales) if r.scales is not None else dict(sizes=(oh, ow))
            p = resize_params.onnx_resize_params(r.mode, (h, w), coord=r.coord,
                                                 nearest_mode=r.nearest, **kw)
            if net.dtype == "int8" and r.mode == "bilinear":
                qi, qo = net.quant_of(L.src), net.quant_of(i + 1)
                p.update(resize_params.onnx_s8_bilinear_fields(
                    L.qdq, (qi.scale[0], qi.zero_point[0]), (qo.scale[0], qo.zero_point[0])))
        else:
            q = {}
            if net.dtype == "int8":
                qi, qo = net.quant_of(L.src), net.quant_of(i + 1)
                q = dict(in_quant=(qi.scale[0], qi.zero_point[0]),
                         out_quant=(qo.scale[0], qo.zero_point[0]))
            p = resize_params.tflite_resize_params(r.mode, (h, w), (oh, ow),
                                                   align_corners=r.align_corners,
                                                   half_pixel_centers=r.half_pixel_centers, **q)
    except (ValueError, AssertionError) as e:
        raise CodegenError(f"layer {i} ({L.name}): {e}") from None
    if tuple(p["out_hw"]) != (oh, ow):
        raise CodegenError(f"layer {i} ({L.name}): resize gives {p['out_hw']}, the IR {oh}x{ow}")
    fields = {k: p[k] for k in resize_params.RESIZE_FIELDS + resize_params.ONNX_S8_FIELDS
              if k in p}
    for k in ("scale_h", "scale_w", "in_scale", "out_scale"):
        if k in fields:
            fields[k] = c_float(fields[k])
    return fields
#: IR ACT function -> (TFLM table op, ONNX / onnxruntime table op)
_S8_TABLE_OPS = {"hardswish": ("hard_swish", "hard_swish"), "sigmoid": ("logistic", "sigmoid"),
                 "tanh": ("tanh", "tanh"), "leaky": ("leaky_relu", "leaky_relu"),
                 "hardsigmoid": (None, "hard_sigmoid"), "quantize": ("quantize", "identity"),
                 "relu": ("relu", "relu"), "clip": (None, "clip")}


def _swish_table_tflm(xs, xz, ys, yz):
    """TFLM's LOGISTIC (to its fixed grid 1/256, -128) then MUL(x, logistic(x)), per int8 x."""
    ls, lz = eltwise_params.TFLM_LOGISTIC_OUT
    sig = eltwise_params.tflm_table("logistic", xs, xz, ls, lz).astype(np.int64)
    p = eltwise_params.mul_params_tflm(xs, xz, ls, lz, ys, yz)
    x = np.arange(-128, 128, dtype=np.int64)
    d = (x - p["in1_zp"]) * (sig - p["in2_zp"])
    y = [eltwise_params.mbqm(int(v), p["out_mul"], p["out_shift"]) + p["out_zp"] for v in d]
    return np.clip(np.asarray(y), -128, 127).astype(np.int8)


def _s8_table(L, rq: str, xs, xz, ys, yz):
    """The 256-entry int8 table of ACT layer L's function, as the source framework computes it
    (``rq``: "fixed" TFLite Micro, "float" onnxruntime)."""
    if L.fn == "swish":
        if rq != "fixed":
            raise CodegenError(f"layer {L.name}: int8 swish has only TFLite Micro's arithmetic "
                               "(LOGISTIC then MUL)")
        return _swish_table_tflm(xs, xz, ys, yz)
    ops = _S8_TABLE_OPS.get(L.fn)
    op = None if ops is None else ops[0 if rq == "fixed" else 1]
    if rq == "fixed" and L.fn == "clip" and L.fclip == (0.0, 6.0):
        op = "relu6"
    if op is None:
        raise CodegenError(f"layer {L.name}: int8 {L.fn} has no {'TFLM' if rq == 'fixed' else 'ONNX'}"
                           " arithmetic")
    attrs = {}
    if L.fn == "leaky":
        attrs = dict(alpha=L.alpha)
    elif L.fn == "hardsigmoid":
        attrs = dict(alpha=L.alpha, beta=L.beta)
    elif L.fn == "clip" and rq == "float":
        attrs = dict(lo=L.fclip[0], hi=L.fclip[1])
    if rq == "fixed":
        return eltwise_params.tflm_table(op, xs, xz, ys, yz, **attrs)
    return eltwise_params.ort_table(op, xs, xz, ys, yz, path="qdq", **attrs)


def _add_const_per_channel(L) -> bool:
    """An int8 TFLite ADD of a [C] constant (ACT affine, no slope): msf_prelu_s8's
    MSF_ELT_ADD_CONST mode (a scalar constant is a 256-entry table)."""
    return L.op == ACT and L.fn == "affine" and L.weight is None and L.w_quant is not None \
        and L.bias is not None and np.asarray(L.bias).size > 1


def _op_code(L) -> str:
    if L.op == ACT and L.fn == "prelu" or _add_const_per_channel(L):
        return "MSF_OP_PRELU"
    if L.op == CONCAT and L.axis == 1:
        return "MSF_OP_CONCAT_W"
    return _OP[L.op]


def _bcast(net: Network, L) -> str:
    """MSF_BCAST_* of a multiply's factor or an add's second input."""
    other = net.tensor_shape(L.src2) if L.src2 is not None else \
        (1, 1, int(np.asarray(L.weight).size))
    if other == tuple(L.out_shape):
        return "MSF_BCAST_NONE"
    if other == (1, 1, 1):
        return "MSF_BCAST_SCALAR"
    return "MSF_BCAST_CHANNEL" if other[:2] == (1, 1) else "MSF_BCAST_PIXEL"


def _binary_add(net: Network, L) -> bool:
    """An ADD that runs as a binary graph op (msf_binary_f32 / msf_mul_s8's add mode): its
    second input broadcasts, or a float subtract (msf_add_f32 only adds)."""
    return L.op == ADD and (net.tensor_shape(L.src2) != tuple(L.out_shape) or
                            (net.dtype == "float32" and bool(L.sub)))


def _tail_softmax(net: Network):
    """(multiplier, left_shift, diff_min) of the network's int8 tail softmax, or None."""
    sm = net.tail_softmax
    if sm is None or net.dtype != "int8":
        return None
    q_in, q_out = net.quant_of(net.n_layers), sm.quant
    if q_in is None:
        raise CodegenError("tail softmax without quantisation parameters")
    if q_out.zero_point[0] != -128 or np.float32(q_out.scale[0]) != np.float32(1.0 / 256):
        raise CodegenError("int8 softmax output must have scale 1/256 and zero point -128 "
                           "(TFLite Micro requires it)")
    return requant.softmax_params(sm.beta, q_in.scale[0])


def _range(r) -> dict:
    """msf_range fields of a (step, lo_sub, hi_add, hi_max) tuple."""
    return dict(zip(("step", "lo_sub", "hi_add", "hi_max"), (int(v) for v in r)))


def default_rq(net: Network) -> str:
    """The requantisation the model was made with (``Network.requant``)."""
    return net.requant


def chain_schedules(net: Network, blocks, io: str) -> list[BlockSchedule]:
    """The block schedules of ``blocks`` (a Plan's blocks or (first, last, mode, tile) tuples),
    checked to chain over every layer."""
    keys = [b if isinstance(b, tuple) else (b.first_layer, b.last_layer, b.mode, b.tile)
            for b in blocks]
    live = Liveness(net, io)
    scheds = [schedule_of(net, live, *k) for k in keys]
    v = 0
    for s in scheds:
        if s.first != v:
            raise CodegenError(f"blocks do not chain: block {s.first}-{s.last} after layer {v - 1}")
        v = s.last + 1
    if v != net.n_layers:
        raise CodegenError(f"blocks cover layers 0..{v - 1} of {net.n_layers}")
    return scheds


def _check_alignment(net: Network, lay) -> None:
    if net.elem_bytes == 4:
        offs = list(lay.tensor_offset.values()) + [x for r in lay.ring_offsets for x in r]
        if any(o % 4 for o in offs):
            raise CodegenError("float32 buffer offsets must be 4-byte aligned")


def _tensor_offset(lay, io: str, outputs: tuple[int, ...], t: int) -> str:
    """C expression of tensor t's block offset: its arena byte offset, or the caller's buffer
    (the input; output k with io = external)."""
    if io in ("external", "input-external") and t == 0:
        return "MSF_OFF_EXT_IN"
    if io == "external" and t in outputs:
        k = outputs.index(t)
        return "MSF_OFF_EXT_OUT" if k == 0 else f"MSF_OFF_EXT_OUT_K({k})"
    return f"{lay.tensor_offset[t]}u"


def _output_offsets(net: Network) -> list[int]:
    """Byte offset of each graph output in the caller's output buffer (outputs back to back,
    in the model's order)."""
    offs, pos = [], 0
    for t in net.output_ids:
        offs.append(pos)
        pos += net.tensor_bytes(t)
    return offs


def _layer_table(net: Network, em: _Emitter, k: int, s: BlockSchedule,
                 desc: BlockDescriptor) -> str:
    """The ``msf_layer`` array ``B{k}_layers`` of block k."""
    rows = []
    for l, dl in zip(range(s.first, s.last + 1), desc.layers):
        L = net.layers[l]
        (hi, wi, ci), (ho, wo, co) = L.in_shape, L.out_shape
        b_off, b_bytes, b_rows, b_cols = dl["buf"]
        fields = dict(op=em.op_override.get(l, _op_code(L)), params=f"&L{l}_p", in_h=hi, in_w=wi,
                      in_c=ci, out_h=ho, out_w=wo, out_c=co, buf_off=f"{b_off}u",
                      buf_bytes=f"{b_bytes}u", buf_rows=b_rows, buf_cols=b_cols,
                      out_rows=_range(dl["out_rows"]), out_cols=_range(dl["out_cols"]),
                      need_cols=_range(dl["need_cols"]))
        rows.append(f"    /* layer {l}: {L.op} {c_comment_text(L.name or '-', 80)} */\n"
                    f"    {c_init(fields, '    ')}")
    return f"static const msf_layer B{k}_layers[{len(rows)}] = {{\n" + ",\n".join(rows) + "\n};"


def _operand_table(net: Network, em: _Emitter, k: int, s: BlockSchedule,
                   off, slices=None, sl_row=None) -> tuple[str, int] | None:
    """The ``msf_operand`` array ``B{k}_operands`` of a graph-op block (every input tensor in
    operand order, then a constant factor; a concat input already in its slice (``slices``:
    Liveness.alias_of) as an in-slice row) and its length, then the slice row ``sl_row`` of a
    block writing a concat slice (descriptor.slice_row); None for the other blocks."""
    L = net.layers[s.first]
    rows = []
    if s.first != s.last or (L.op not in _GRAPH_OPS and not _binary_add(net, L)):
        if sl_row is None:
            return None
    else:
        for t in L.srcs:
            h, w, c = net.tensor_shape(t)
            rows.append(in_slice_row(net, t) if slices and t in slices and L.op == CONCAT
                        else dict(off=off(t), data="0", h=h, w=w, c=c))
        if L.op == MUL and L.src2 is None:
            rows.append(dict(off="0u", data=em.constant_operand(s.first), h=1, w=1,
                             c=int(np.asarray(L.weight).size)))
    if sl_row is not None:
        rows.append(sl_row)
    body = ",\n".join(f"    {c_init(r, '    ')}" for r in rows)
    return f"static const msf_operand B{k}_operands[{len(rows)}] = {{\n{body}\n}};", len(rows)


def _block_init(net: Network, k: int, s: BlockSchedule, desc: BlockDescriptor, off,
                n_operands: int) -> str:
    """The ``msf_block`` initialiser of block k (``off``: tensor -> offset expression)."""
    L0 = net.layers[s.first]
    in2 = off(L0.src2) if (L0.op == ADD and s.first == s.last) else "0u"
    fields = dict(dtype="MSF_DT_F32" if net.dtype == "float32" else "MSF_DT_S8",
                  tile_h=desc.tile_h, n_layers=s.last - s.first + 1, layers=f"B{k}_layers",
                  in_off=off(L0.src), in2_off=in2, out_off=off(s.last + 1), mode=desc.mode,
                  tile_w=desc.tile_w, n_tiles=desc.n_tiles, n_tile_cols=desc.n_tile_cols,
                  operands=f"B{k}_operands" if n_operands else "0", n_operands=n_operands)
    return f"    {c_init(fields, '    ')}"


def _output_quant(net: Network, t: int):
    """Quantisation of graph output t as the caller sees it (after a tail softmax)."""
    if t == net.n_layers and _tail_softmax(net) is not None:
        return net.tail_softmax.quant
    return net.quant_of(t)


def _quant_defines(net: Network) -> str:
    """MSF_INPUT/OUTPUT_SCALE/ZERO_POINT of an int8 model (output 0, after a tail softmax), and
    MSF_OUTPUT_<k>_SCALE / _ZERO_POINT of every output of a several-output model."""
    if net.dtype != "int8":
        return ""
    q_in, q_out = net.quant_of(0), _output_quant(net, net.output_ids[0])
    if q_in is None or q_out is None:
        return ""
    text = render("model_quant.h.tmpl", in_scale=c_float(q_in.scale[0]),
                  in_zp=int(q_in.zero_point[0]), out_scale=c_float(q_out.scale[0]),
                  out_zp=int(q_out.zero_point[0]))
    if len(net.output_ids) > 1:
        for k, t in enumerate(net.output_ids):
            q = _output_quant(net, t)
            text += (f"\n#define MSF_OUTPUT_{k}_SCALE {c_float(q.scale[0])}"
                     f"\n#define MSF_OUTPUT_{k}_ZERO_POINT ({int(q.zero_point[0])})")
    return text


def _output_defines(net: Network) -> str:
    """MSF_OUTPUT_<k>_H / _W / _C / _ELEMS / _OFFSET (elements into the caller's buffer) of
    every graph output."""
    lines = []
    offs = _output_offsets(net)
    for k, t in enumerate(net.output_ids):
        h, w, c = net.tensor_shape(t)
        lines += [f"#define MSF_OUTPUT_{k}_H {h}", f"#define MSF_OUTPUT_{k}_W {w}",
                  f"#define MSF_OUTPUT_{k}_C {c}",
                  f"#define MSF_OUTPUT_{k}_ELEMS {net.tensor_elems(t)}",
                  f"#define MSF_OUTPUT_{k}_OFFSET {offs[k] // net.elem_bytes}"]
    return "\n".join(lines)


def _run_body(net: Network, lay, io: str, n_blocks: int, softmax: bool) -> str:
    """The statements of ``msf_model_run`` after the arena is set up: the blocks, the tail
    softmax (on the last layer's output), then every output copied to the caller's buffer
    (outputs back to back) unless the blocks wrote them there (io = external)."""
    n = net.n_layers
    outs, offs = net.output_ids, _output_offsets(net)
    oh, ow, oc = net.tensor_shape(n)
    esize = net.elem_bytes
    where = f"arena + {lay.tensor_offset.get(n, 0)}u" if io != "external" else \
        f"(uint8_t *)out + {offs[outs.index(n)]}u"
    tail = render("model_softmax.c.tmpl", where=where, rows=oh * ow, depth=oc) if softmax else ""
    copy_out = "" if io == "external" else "".join(
        render("model_copy_out.c.tmpl", dst_offset=offs[k], output_offset=lay.tensor_offset[t],
               output_bytes=net.tensor_bytes(t)) for k, t in enumerate(outs))
    ext_outs = "" if io != "external" else "".join(
        f"    m.ext_outs[{k}] = (uint8_t *)out + {offs[k]}u;\n" for k in range(len(outs)))
    if io == "arena":
        return render("model_run_arena.c.tmpl", drop_blank=True,
                      input_offset=lay.tensor_offset[0], input_bytes=net.tensor_elems(0) * esize,
                      n_blocks=n_blocks, softmax=tail, copy_out=copy_out)
    return render("model_run_mem.c.tmpl", drop_blank=True, n_blocks=n_blocks, softmax=tail,
                  copy_out=copy_out, n_max_outputs="MSF_MAX_OUTPUTS", ext_outs=ext_outs)


def _write_runtime_and_build_files(out: Path, copy_runtime: bool) -> list[Path]:
    """The runtime sources (``copy_runtime``), a Makefile fragment and a CMakeLists.txt."""
    files = []
    if copy_runtime:
        for f in SOURCES + HEADERS:
            if f != "msf_config.h":
                shutil.copy(SRC_DIR / f, out / f)
            files.append(out / f)
    srcs = " ".join(["msf_model.c", *SOURCES])
    for f in ("msfopt.mk", "CMakeLists.txt"):
        (out / f).write_text(render(f + ".tmpl", sources=srcs))
        files.append(out / f)
    return files


def generate(net: Network, blocks, out_dir, io: str = "arena", rq: str | None = None,
             copy_runtime: bool = True, name: str = "msf_model") -> Generated:
    """Write the C sources of ``net`` executed as ``blocks`` (a Plan's blocks or
    (first, last, mode, tile) tuples) into ``out_dir``."""
    net.validate()
    rq = rq or default_rq(net)
    if rq not in ("float", "fixed"):
        raise CodegenError("rq must be 'float' or 'fixed'")
    scheds = chain_schedules(net, blocks, io)
    lay = plan_layout(net, scheds, io)
    _check_alignment(net, lay)
    n = net.n_layers

    em = _Emitter(net, rq)
    params = []
    for i in range(n):
        ctype, fields = em.layer_params(i)
        params.append(f"static const {ctype} L{i}_p = {c_init(fields)};")
    softmax = _tail_softmax(net)
    if softmax is not None:
        # the tail softmax, in place on the output tensor (no extra RAM)
        fields = dict(zip(("input_multiplier", "input_left_shift", "diff_min"), softmax))
        params.append(f"static const msf_softmax_s8_params msf_softmax_p = {c_init(fields)};")

    if len(net.output_ids) > 8:
        raise CodegenError(f"{len(net.output_ids)} graph outputs; the runtime takes at most 8")

    live = Liveness(net, io)   # concat slices: an aliased input lives in its concat output

    def off(t: int) -> str:
        return _tensor_offset(lay, io, net.output_ids, live.alias_of.get(t, (t,))[0])

    tables, block_inits = [], []
    for k, (s, rings) in enumerate(zip(scheds, lay.ring_offsets)):
        desc = block_descriptor(net, s, rings)
        tables.append(_layer_table(net, em, k, s, desc))
        ops = _operand_table(net, em, k, s, off, live.alias_of,
                             slice_row(net, live, s, rings))
        n_ops = 0
        if ops is not None:
            tables.append(ops[0])
            n_ops = ops[1]
        block_inits.append(_block_init(net, k, s, desc, off, n_ops))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ih, iw, ic = net.input_shape
    oh, ow, oc = net.tensor_shape(net.output_ids[0])
    out_elems = sum(net.tensor_elems(t) for t in net.output_ids)
    setting = ", ".join(f"{s.first}" if s.first == s.last else f"{s.first}-{s.last}"
                        for s in scheds)
    peak = max(s.ram_bytes for s in scheds)
    model_name = c_comment_text(net.name)
    header = render(
        "model.h.tmpl", model_name=model_name, n_blocks=len(scheds), io=io, rq=rq,
        setting=setting, arena_bytes=lay.arena_bytes, io_external=int(io == "external"),
        output_in_arena=int(io != "external"), ih=ih, iw=iw, ic=ic,
        in_elems=net.tensor_elems(0), oh=oh, ow=ow, oc=oc, out_elems=out_elems,
        n_outputs=len(net.output_ids), output_defines=_output_defines(net),
        dtype_tag="F32" if net.dtype == "float32" else "S8",
        tail_softmax=int(softmax is not None), quant_defines=_quant_defines(net),
        io_ctype="float" if net.dtype == "float32" else "int8_t")
    source = render(
        "model.c.tmpl", model_name=model_name,
        model_source=c_comment_text(net.source or "in-memory network", 200), setting=setting,
        arena_bytes=lay.arena_bytes, peak_block=peak, constant_arrays="".join(em.lines),
        param_structs="\n".join(params), layer_tables="\n".join(tables),
        n_blocks=len(scheds), blocks=",\n".join(block_inits),
        output_offset=lay.tensor_offset.get(net.output_ids[0], 0),
        output_offsets=", ".join(f"{lay.tensor_offset.get(t, 0)}u" for t in net.output_ids),
        n_outputs=len(net.output_ids),
        run_body=_run_body(net, lay, io, len(scheds), softmax is not None))
    longest = max(s.last - s.first + 1 for s in scheds)  # the executor's stack arrays' size
    (out / "msf_config.h").write_text(render("msf_config.h.tmpl",
                                             max_block_layers=max(2, longest),
                                             has_s8=int(net.dtype == "int8"),
                                             has_f32=int(net.dtype == "float32")))
    (out / "msf_model.h").write_text(header)
    (out / "msf_model.c").write_text(source)
    files = [out / "msf_config.h", out / "msf_model.h", out / "msf_model.c"]
    files += _write_runtime_and_build_files(out, copy_runtime)
    return Generated(out_dir=out, arena_bytes=lay.arena_bytes, peak_ram_bytes=peak, files=files,
                     schedules=scheds, tensor_offsets=dict(lay.tensor_offset),
                     input_shape=net.input_shape,
                     output_shape=net.tensor_shape(net.output_ids[0]),
                     output_shapes=tuple(net.tensor_shape(t) for t in net.output_ids),
                     dtype=net.dtype, io=io, rq=rq, weight_bytes=em.weight_bytes,
                     extra={"fallback_layout": lay.fallback, "layout_method": lay.method})
