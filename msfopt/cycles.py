"""Cycle model: estimated cycles (executed instructions, as QEMU counts them) of a block schedule.

Linear in per-layer-kind coefficients; the generic defaults are a guess, MCU profiles carry tables
fitted from measured micro-models (``scripts/calibrate.py`` -> ``msfopt/data/mcus.toml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ir import ACT, ADD, CONCAT, CONV, CONVT, MUL, RESHAPE, RESIZE, SHUFFLE, SLICE, Network

if TYPE_CHECKING:  # pragma: no cover
    from .schedule import BlockSchedule

#: layer kinds of the cycle model (pools split: an average pool requantises every output, a max
#: pool does not)
KINDS = ("conv", "pointwise", "dw", "maxpool", "avgpool", "gap", "dense")


def pipelined(s: "BlockSchedule") -> bool:
    """Whether the block's layers run inside a column / patch pipeline (vs whole tensors)."""
    return s.mode not in ("unfused", "inplace")


#: kinds whose kernels requantise every output (max pooling only compares)
REQUANT_KINDS = ("conv", "pointwise", "dw", "avgpool", "gap", "dense")


def unclamped(layer) -> bool:
    """Whether a layer requantises its outputs with no clamping activation."""
    return layer.act == "none" and CycleModel.kind(layer) in REQUANT_KINDS


def conv_taps(layer, macs: float) -> float:
    """Kernel taps a k x k convolution visits for ``macs`` multiply-accumulates (one inner loop
    over its input channels each)."""
    return macs / layer.in_shape[2]


@dataclass(frozen=True)
class CycleModel:
    """Estimated cycles of a block:

        sum over layers of  MACs x cpm[kind] + outputs x (cpo[kind] + fused_out if pipelined)
        + add elements x add_per_elem + kernel calls x per_call + copied bytes x copy_per_byte

    where outputs include recomputed ones (layer MACs / MACs per output) and "pipelined" means
    the layer runs inside a column or patch pipeline (every mode but ``unfused`` and
    ``inplace``): each output element produced there costs ``fused_out`` more (the ring and view
    index arithmetic; about 70 instructions on Xtensa LX106, under 1 on Cortex-M4).  On cores
    without an FPU the float requantisation's soft-float rounding is cheaper for outputs that
    clamp, so each output of a requantising layer with no clamping activation (``act == "none"``)
    costs ``unclamped_out`` more (75-105 instructions on Cortex-M0/M3 and RV32, 0 with an FPU).
    A k x k convolution also pays ``conv_tap`` per kernel tap of every output (MACs / C_in: its
    inner loop over the input channels starts once per tap; about 15 instructions on Cortex-M).
    The graph ops are priced by the same coefficients: a standalone activation or multiply like
    the add (per output element), a concat / slice / channel shuffle / resize as copied bytes,
    a transposed conv as a conv (their own calibration is still to do).  The defaults are a generic guess; MCU profiles carry calibrated
    tables (``scripts/calibrate.py``)."""
    name: str = "generic"
    cpm: dict = field(default_factory=lambda: {
        "conv": 6.0, "pointwise": 5.0, "dw": 8.0, "maxpool": 4.0, "avgpool": 4.0, "gap": 3.0,
        "dense": 4.0})
    add_per_elem: float = 12.0
    per_call: float = 150.0
    cpo: dict = field(default_factory=dict)
    copy_per_byte: float = 2.0
    fused_out: float = 0.0
    unclamped_out: float = 0.0
    conv_tap: float = 0.0

    @staticmethod
    def kind(layer) -> str:
        if layer.op in (CONV, CONVT):   # a transposed conv priced as a conv (not calibrated)
            return "pointwise" if layer.kernel == (1, 1) and layer.op == CONV else "conv"
        return layer.op

    def layer_table(self, net: Network) -> list[tuple]:
        """Per layer, the constants :meth:`cycles` reads (computed once per network; the
        arithmetic on them is the same, so the result is identical bit for bit)."""
        return [self._entry(net, layer) for layer in net.layers]

    def _entry(self, net: Network, layer) -> tuple:
        h, w, c = layer.out_shape
        if layer.op in (ADD, ACT, MUL):
            # elementwise: priced like the residual add (not yet calibrated apart from it)
            return (0, h * w * c * self.add_per_elem)
        if layer.op in (CONCAT, SLICE, SHUFFLE, RESIZE, RESHAPE):   # data movement
            return (0, h * w * c * net.elem_bytes * self.copy_per_byte)
        k = self.kind(layer)
        return (1, self.cpm[k], k == "conv", layer.in_shape[2], layer.macs_per_output(),
                self.cpo.get(k, 0.0), self.unclamped_out if unclamped(layer) else 0.0)

    def cycles(self, net: Network, s: "BlockSchedule", table: list[tuple] | None = None) -> int:
        """Estimated cycles of block ``s``; ``table`` is :meth:`layer_table` of ``net`` (built
        here when not given)."""
        total = 0.0
        extra = self.fused_out if pipelined(s) else 0.0
        conv_tap = self.conv_tap
        for l, m in zip(range(s.first, s.last + 1), s.layer_macs):
            t = table[l] if table is not None else self._entry(net, net.layers[l])
            if t[0] == 0:
                total += t[1]
                continue
            _, cpm, is_conv, c_in, mpo, cpo, uncl = t
            total += m * cpm
            if is_conv:
                total += m / c_in * conv_tap
            if mpo > 0:
                total += (m / mpo) * (cpo + extra + uncl)
        total += s.calls * self.per_call + s.copy_bytes * self.copy_per_byte
        return int(round(total))
