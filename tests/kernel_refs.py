"""Pure-Python transcriptions of the TFLite Micro / gemmlowp integer primitives and of the int8
softmax kernel: test references for the C runtime (``mcu_runtime/src``), never used by msfopt."""
from __future__ import annotations

import numpy as np

from msfopt.mcu_runtime.requant import softmax_params


def _sat_shl(x: int, e: int) -> int:
    thr = (1 << (31 - e)) - 1
    if x > thr:
        return (1 << 31) - 1
    if x < -thr:
        return -(1 << 31)
    return x << e


def _wrap(x: int) -> int:
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def _exp_neg_q5_26(a: int) -> int:
    q = 1 << 24
    amq = (a & (q - 1)) - q
    x = _wrap(_sat_shl(amq, 5) + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    poly = rdbpot(_wrap(srdhm(_wrap(rdbpot(x4, 2) + x3), 715827883) + x2), 1)
    result = _wrap(1895147668 + srdhm(1895147668, _wrap(x + poly)))
    rem = _wrap(amq - a)
    for k, m in enumerate((1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)):
        if rem & (1 << (24 + k)):
            result = srdhm(result, m)
    return (1 << 31) - 1 if a == 0 else result


def _one_over_one_plus_x(a: int) -> int:
    s = a + (1 << 31) - 1
    half = (s + (1 if s >= 0 else -1)) // 2 if s >= 0 else -((-s + 1) // 2)
    x = _wrap(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        one_minus = _wrap((1 << 29) - srdhm(half, x))
        x = _wrap(x + _sat_shl(srdhm(x, one_minus), 2))
    return _sat_shl(x, 1)


def softmax_s8_ref(x, beta, x_scale) -> np.ndarray:
    """Pure-Python TFLM int8 softmax over the last axis (the C kernel's reference)."""
    qm, ls, dmin = softmax_params(beta, x_scale)
    a = np.asarray(x, dtype=np.int64)
    rows = a.reshape(-1, a.shape[-1])
    out = np.empty(rows.shape, np.int8)
    for i, row in enumerate(rows):
        mx = int(row.max())
        diffs = [int(v) - mx for v in row]
        exps = [(_exp_neg_q5_26(srdhm(_wrap(d << ls), qm)) if d >= dmin else None) for d in diffs]
        total = 0
        for e in exps:
            if e is not None:
                total = _wrap(total + rdbpot(e, 12))
        head = 32 - total.bit_length() if total > 0 else 32
        nbits = 12 - head
        recip = _one_over_one_plus_x(_wrap(((total << head) & 0xFFFFFFFF) - (1 << 31)))
        expo = min(max(nbits + 31 - 8, 0), 31)  # TFLM aborts outside [0, 31]
        for c, e in enumerate(exps):
            out[i, c] = -128 if e is None else max(-128, min(127, rdbpot(srdhm(recip, e), expo) - 128))
    return out.reshape(a.shape)


# gemmlowp primitives

def srdhm(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31
    return q if v >= 0 else -q


def rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def mbqm(x: int, qm: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    xs = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)
    return rdbpot(srdhm(xs, qm), right)
