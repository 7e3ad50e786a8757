"""MCU profiles for planning: RAM available to the arena and the cycle model of a target or board.

The profiles themselves are data (``msfopt/data/mcus.toml``), shared with the build harness
(``msfopt.mcu_runtime.targets``).  The RAM a plan may use on a profile is its RAM size minus the
reserved stack (stack-first layout) minus ``ram_reserve`` (platform statics), so a plan that fits
here links there: ``stack_size`` is the single source of truth for both.

Latency: ``cycle_model()`` is the profile's ``[cycles]`` table.  Calibrated tables
(``scripts/calibrate.py``; unit: executed instructions, as counted by QEMU) also carry
per-output-element terms ``<kind>_out``; the model is then

    est = sum_layers MACs x c_kind + outputs x c_kind_out  +  add elements x add_per_elem
          + kernel calls x overhead_per_call

(outputs include recomputed ones in fused blocks: ``layer_macs / macs_per_output``); see
:class:`msfopt.cycles.CycleModel`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .cycles import KINDS, CycleModel  # noqa: F401  (KINDS: the calibrated kinds)

@dataclass(frozen=True)
class MCUProfile:
    name: str
    core: str
    target: str
    ram_size: int
    stack_size: int
    clock_hz: int
    fpu: bool
    cycles: dict
    ram_reserve: int = 0
    int_only: bool = False

    @property
    def ram_bytes(self) -> int | None:
        """RAM the planner may give to the arena (None: no limit, e.g. host)."""
        if not self.ram_size:
            return None
        return self.ram_size - self.stack_size - self.ram_reserve

    @property
    def calibrated(self) -> bool:
        return bool((self.cycles or {}).get("calibrated", False))

    def cycle_model(self) -> CycleModel:
        c = self.cycles or {}
        base = CycleModel()
        cpm = {k: float(c.get(k, c.get("pool", v) if k in ("maxpool", "avgpool") else v))
               for k, v in base.cpm.items()}
        cpo = {k: float(c[f"{k}_out"]) for k in KINDS if f"{k}_out" in c}
        return CycleModel(name=self.name, cpm=cpm,
                                    add_per_elem=float(c.get("add_per_elem", base.add_per_elem)),
                                    per_call=float(c.get("overhead_per_call", base.per_call)),
                                    cpo=cpo)


def _convert(p) -> MCUProfile:
    return MCUProfile(name=p.name, core=p.core, target=p.target, ram_size=int(p.ram_size or 0),
                      stack_size=int(p.stack_size or 0), clock_hz=int(p.clock_hz or 0),
                      fpu=bool(p.fpu), cycles=dict(p.cycles or {}),
                      ram_reserve=int(getattr(p, "ram_reserve", 0) or 0),
                      int_only=bool(p.int_only))


def list_profiles() -> list[MCUProfile]:
    from .mcu_runtime.targets import load_profiles
    return [_convert(p) for p in load_profiles().values()]


def get_profile(name: str) -> MCUProfile:
    from .mcu_runtime.targets import resolve
    try:
        return _convert(resolve(name))
    except KeyError as exc:
        raise InputError(str(exc).strip("'\"")) from None
