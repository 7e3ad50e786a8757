"""MCU profiles for planning: RAM available to the arena and the cycle model of a target or board.

The profiles themselves are data (``msfopt/data/mcus.toml``), shared with the build harness
(``msfopt.mcu_runtime.targets``).  The RAM a plan may use on a profile is its RAM size minus the
reserved stack (stack-first layout), so a plan that fits here links there.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .schedule import CycleModel


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

    @property
    def ram_bytes(self) -> int | None:
        """RAM the planner may give to the arena (None: no limit, e.g. host)."""
        if not self.ram_size:
            return None
        return self.ram_size - self.stack_size

    def cycle_model(self) -> CycleModel:
        c = self.cycles or {}
        base = CycleModel()
        cpm = {k: float(c.get(k, v)) for k, v in base.cpm.items()}
        return CycleModel(name=self.name, cpm=cpm,
                          add_per_elem=float(c.get("add_per_elem", base.add_per_elem)),
                          per_call=float(c.get("overhead_per_call", base.per_call)))


def _convert(p) -> MCUProfile:
    return MCUProfile(name=p.name, core=p.core, target=p.target, ram_size=int(p.ram_size or 0),
                      stack_size=int(p.stack_size or 0), clock_hz=int(p.clock_hz or 0),
                      fpu=bool(p.fpu), cycles=dict(p.cycles or {}))


def list_profiles() -> list[MCUProfile]:
    from .mcu_runtime.targets import load_profiles
    return [_convert(p) for p in load_profiles().values()]


def get_profile(name: str) -> MCUProfile:
    from .mcu_runtime.targets import resolve
    try:
        return _convert(resolve(name))
    except KeyError as exc:
        raise InputError(str(exc).strip("'\"")) from None
