"""MCU profiles: ``msfopt/data/mcus.toml`` read into one :class:`MCUProfile` per target or board.

One profile type serves both readers: the planner (the RAM a plan may use, the cycle model) and
the build/run harness in ``msfopt.mcu_runtime`` (compiler, flags, memory map, QEMU machine, the
family's startup files).  A board (``[boards.<name>]``) is its emulated target's table with the
board's overrides merged in; ``profile.target`` names that target.

The RAM a plan may use on a profile is its RAM size minus the reserved stack (stack-first layout)
minus ``ram_reserve`` (platform statics), so a plan that fits here links there: ``stack_size`` is
the single source of truth for both.

Latency: ``cycle_model()`` is the profile's ``[cycles]`` table.  Calibrated tables
(``scripts/calibrate.py``; unit: executed instructions, as counted by QEMU) also carry
per-output-element terms ``<kind>_out``; the model is then

    est = sum_layers MACs x c_kind + outputs x (c_kind_out + fused_out if pipelined
                                               + unclamped_out if no clamping activation
                                               + float_rq_out / fixed_rq_out by arithmetic)
          + add elements x (add_per_elem float / fixed_add_elem fixed point)
          + kernel calls x overhead_per_call
          + copied bytes x copy_per_byte + k x k conv taps x conv_tap + fast-kernel terms

(outputs include recomputed ones in fused blocks: ``layer_macs / macs_per_output``); see
:class:`msfopt.cycles.CycleModel`.

Public API: ``list_profiles()``, ``get_profile(name)`` (unknown name: :class:`InputError`),
``larger_map(name)`` (a stock target's code on a QEMU machine with more memory, for measuring
models that do not fit the stock profile).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import tomllib
from dataclasses import dataclass, field
from typing import Mapping

from .errors import InputError
from .cycles import KINDS, CycleModel  # noqa: F401  (KINDS: the calibrated kinds)

__all__ = ["FamilySpec", "MCUProfile", "get_profile", "larger_map", "list_profiles"]


@dataclass(frozen=True)
class FamilySpec:
    """How to build for a family (``[family.<name>]``); paths are relative to the harness's
    ``mcu_runtime/startup/`` folder."""
    name: str
    startup: tuple[str, ...]
    linker_script: str
    common_cflags: tuple[str, ...]
    common_ldflags: tuple[str, ...]
    libs: tuple[str, ...]
    semihosting: str  # "chardev" | "stdout" | "none"


@dataclass(frozen=True)
class MCUProfile:
    """One MCU profile. For a board, ``target`` names the emulated target it maps onto and the
    fields already include the board's overrides (RAM size, clock, ...)."""

    name: str
    kind: str  # "target" | "board"
    target: str
    family: str
    core: str
    description: str
    gcc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int  # 0: not enforced (host)
    emu_ram_size: int
    stack_size: int
    clock_hz: int
    fpu: bool
    int_only: bool
    qemu: str
    machine: str
    qemu_args: tuple[str, ...]
    ram_reserve: int = 0  # RAM kept from the planner for platform/app statics (see mcus.toml)
    cycles: Mapping[str, float] = field(default_factory=dict)
    defsym: Mapping[str, int] = field(default_factory=dict)
    family_spec: FamilySpec | None = None

    @property
    def is_host(self) -> bool:
        return self.family == "host"

    @property
    def ram_bytes(self) -> int | None:
        """RAM the planner may give to the arena (None: no limit, e.g. host)."""
        if not self.ram_size:
            return None
        return self.ram_size - self.stack_size - self.ram_reserve

    @property
    def calibrated(self) -> bool:
        return bool((self.cycles or {}).get("calibrated", False))

    def cycle_model(self, requant: str | None = None) -> CycleModel:
        """The profile's calibrated cycle model (every term of :class:`CycleModel`; one reader of
        the table: :meth:`CycleModel.from_table`), for code generated with requantisation
        ``requant`` (default: each network's own; fixed point on integer-only cores)."""
        return CycleModel.from_table(self.name, self.cycles,
                                     requant=requant or ("fixed" if self.int_only else None))


_TARGET_KEYS = {f.name for f in dataclasses.fields(MCUProfile)} - {"name", "kind", "target",
                                                                   "family_spec"}


def _read_toml() -> dict:
    data = importlib.resources.files(__package__ or "msfopt").joinpath("data/mcus.toml")
    return tomllib.loads(data.read_bytes().decode("utf-8"))


def _mk_profile(name: str, kind: str, target: str, fields: dict, families: dict) -> MCUProfile:
    unknown = set(fields) - _TARGET_KEYS
    if unknown:
        raise ValueError(f"mcus.toml: {kind} {name!r} has unknown keys {sorted(unknown)}")
    f = dict(fields)
    for k in ("cflags", "ldflags", "qemu_args"):
        f[k] = tuple(f.get(k, ()))
    f["cycles"] = dict(f.get("cycles", {}))
    f["defsym"] = dict(f.get("defsym", {}))
    f.setdefault("description", "")
    f.setdefault("ram_reserve", 0)
    fam = f["family"]
    if fam not in families:
        raise ValueError(f"mcus.toml: {kind} {name!r} uses unknown family {fam!r}")
    missing = _TARGET_KEYS - set(f)
    if missing:
        raise ValueError(f"mcus.toml: {kind} {name!r} lacks keys {sorted(missing)}")
    return MCUProfile(name=name, kind=kind, target=target, family_spec=families[fam], **f)


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, MCUProfile]:
    doc = _read_toml()
    families = {}
    for fname, spec in doc.get("family", {}).items():
        families[fname] = FamilySpec(
            name=fname,
            startup=tuple(spec.get("startup", ())),
            linker_script=spec.get("linker_script", ""),
            common_cflags=tuple(spec.get("common_cflags", ())),
            common_ldflags=tuple(spec.get("common_ldflags", ())),
            libs=tuple(spec.get("libs", ())),
            semihosting=spec.get("semihosting", "none"),
        )
    targets = doc.get("targets", {})
    out: dict[str, MCUProfile] = {}
    for name, t in targets.items():
        out[name] = _mk_profile(name, "target", name, t, families)
    for name, b in doc.get("boards", {}).items():
        b = dict(b)
        tname = b.pop("target", None)
        if tname not in targets:
            raise ValueError(f"mcus.toml: board {name!r} maps to unknown target {tname!r}")
        if name in out:
            raise ValueError(f"mcus.toml: board {name!r} clashes with a target name")
        merged = dict(targets[tname])
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        out[name] = _mk_profile(name, "board", tname, merged, families)
    return out


def list_profiles() -> list[MCUProfile]:
    """Every profile of ``mcus.toml``: the emulated targets, then the boards."""
    return list(_load().values())


def get_profile(name: str | MCUProfile) -> MCUProfile:
    """The profile for a target or board name (case-insensitive; '_' and '-' equivalent); a
    profile is returned as is.  A board carries its emulated target's build/run recipe with the
    board's RAM size, clock, etc.  Unknown name: :class:`InputError` (exit 2) naming the known
    ones."""
    if isinstance(name, MCUProfile):
        return name
    profs = _load()
    if name in profs:
        return profs[name]
    norm = {k.lower().replace("_", "-"): v for k, v in profs.items()}
    key = str(name).lower().replace("_", "-")
    if key in norm:
        return norm[key]
    raise InputError(f"unknown MCU target/board {name!r}; known: {', '.join(sorted(profs))}")


#: mps2-an386's 16 MiB PSRAM, where ``larger_map("cortex-m4")`` links code and weights
PSRAM = 0x21000000


def larger_map(name: str | MCUProfile) -> MCUProfile:
    """The stock target's code, unchanged (same compiler, flags, cycle model), linked and run on
    a QEMU machine with a larger memory map -- for measuring models whose weights or arena do
    not fit the stock profile (no mcus.toml entry; these are emulator maps, not boards):

    * ``cortex-m4-psram``: mps2-an386 has a 16 MiB PSRAM at 0x21000000 besides the 4 MiB
      SSRAM1 at 0x0 (aliased at 0x400000, so flash cannot grow past 4 MiB there); code and
      weights are linked there and the reset vector table is moved with ``-global
      armv7m.init-nsvtor=0x21000000``.  RAM stays the 4 MiB SSRAM2/3 at 0x20000000.
    * ``rv32imac-16m``: virt has 128 MiB of DRAM at 0x80000000; code and weights get 16 MiB -
      4 KiB (the 4 KiB keep them clear of the PMP stack guard below the stack), RAM 4 MiB at
      0x81000000.
    * ``cortex-m0-an386``: the ARMv6-M code built for cortex-m0 (a subset of ARMv7-M: it runs
      unchanged on the Cortex-M4 of mps2-an386, executing the same instructions) with
      cortex-m4's stock map: 4 MiB of code and weights, 4 MiB of RAM, instead of the
      micro:bit's 256 KiB / 16 KiB.
    Other targets: :class:`InputError`."""
    p = get_profile(name)
    if p.name == "cortex-m4":
        return dataclasses.replace(
            p, name="cortex-m4-psram", flash_origin=PSRAM, flash_size=16 << 20,
            qemu_args=(*p.qemu_args, "-global", f"armv7m.init-nsvtor={PSRAM:#x}"),
            description=p.description + "; code + weights in the 16 MiB PSRAM at 0x21000000")
    if p.name == "rv32imac":
        flash = 0x80000000
        ram = flash + (16 << 20)
        return dataclasses.replace(
            p, name="rv32imac-16m", flash_origin=flash, flash_size=ram - flash - 4096,
            ram_origin=ram, ram_size=4 << 20, emu_ram_size=0x8000000 - (16 << 20),
            description=p.description + "; 16 MiB code + weights, 4 MiB RAM at 0x81000000")
    if p.name == "cortex-m0":
        m4 = get_profile("cortex-m4")
        return dataclasses.replace(
            p, name="cortex-m0-an386", flash_origin=m4.flash_origin, flash_size=m4.flash_size,
            ram_origin=m4.ram_origin, ram_size=m4.ram_size, emu_ram_size=m4.emu_ram_size,
            machine=m4.machine, qemu=m4.qemu, qemu_args=m4.qemu_args,
            description=p.description + "; its code run on mps2-an386 (4 MiB code + weights, "
                                        "4 MiB RAM)")
    raise InputError(f"no larger memory map known for {p.name} (cortex-m4, rv32imac and "
                     "cortex-m0 have one)")
