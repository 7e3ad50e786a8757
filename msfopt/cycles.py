"""Cycle model: estimated cycles (executed instructions, as QEMU counts them) of a block schedule.

Linear in per-layer-kind coefficients; the generic defaults are a guess, MCU profiles carry tables
fitted from measured micro-models (``scripts/calibrate.py`` -> ``msfopt/data/mcus.toml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ir import ADD, CONV, Network

if TYPE_CHECKING:  # pragma: no cover
    from .schedule import BlockSchedule

#: layer kinds of the cycle model (pools split: an average pool requantises every output, a max
#: pool does not)
KINDS = ("conv", "pointwise", "dw", "maxpool", "avgpool", "gap", "dense")


@dataclass(frozen=True)
class CycleModel:
    """Estimated cycles of a block:

        sum over layers of  MACs x cpm[kind] + outputs x cpo[kind]
        + add elements x add_per_elem + kernel calls x per_call + copied bytes x copy_per_byte

    where outputs include recomputed ones (layer MACs / MACs per output).  The defaults are a
    generic guess; MCU profiles carry calibrated tables (``scripts/calibrate.py``)."""
    name: str = "generic"
    cpm: dict = field(default_factory=lambda: {
        "conv": 6.0, "pointwise": 5.0, "dw": 8.0, "maxpool": 4.0, "avgpool": 4.0, "gap": 3.0,
        "dense": 4.0})
    add_per_elem: float = 12.0
    per_call: float = 150.0
    cpo: dict = field(default_factory=dict)
    copy_per_byte: float = 2.0

    @staticmethod
    def kind(layer) -> str:
        if layer.op == CONV:
            return "pointwise" if layer.kernel == (1, 1) else "conv"
        return layer.op

    def cycles(self, net: Network, s: "BlockSchedule") -> int:
        total = 0.0
        for l, m in zip(range(s.first, s.last + 1), s.layer_macs):
            layer = net.layers[l]
            if layer.op == ADD:
                h, w, c = layer.out_shape
                total += h * w * c * self.add_per_elem
                continue
            k = self.kind(layer)
            total += m * self.cpm[k]
            mpo = layer.macs_per_output()
            if self.cpo and mpo > 0:
                total += (m / mpo) * self.cpo.get(k, 0.0)
        total += s.calls * self.per_call + s.copy_bytes * self.copy_per_byte
        return int(round(total))
