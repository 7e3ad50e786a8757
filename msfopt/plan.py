"""Plan: the chosen fusion setting, its costs, and how it was found (serialisable to JSON)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import InputError

SCHEMA_VERSION = 1


@dataclass
class PlanBlock:
    first_layer: int
    last_layer: int
    mode: str
    tile: int
    ram_bytes: int
    macs: int
    est_cycles: int

    @property
    def label(self) -> str:
        rng = str(self.first_layer) if self.first_layer == self.last_layer \
            else f"{self.first_layer}-{self.last_layer}"
        return rng


@dataclass
class Plan:
    model: str
    status: str
    objective: str
    cost_model: str
    io: str
    peak_ram_bytes: int
    macs: int
    vanilla_macs: int
    mac_overhead: float
    est_cycles: int
    blocks: list[PlanBlock]
    backend: str
    solve_seconds: float
    cross_check: dict | None
    constraints: dict = field(default_factory=dict)
    arena_bytes: int | None = None
    vanilla_peak_bytes: int | None = None
    vanilla_cycles: int | None = None
    gap: float | None = None
    mcu: str | None = None
    dtype: str = "int8"
    dag: dict = field(default_factory=dict)
    layout_rejected: int = 0       # better plans skipped because their arena layout did not pack
    gap_of: str | None = None      # what ``gap`` measures: "primary" objective or a "tiebreak" stage
    note: str = ""                 # e.g. the referee's optimum replaced a time-limited answer
    schema_version: int = SCHEMA_VERSION

    @property
    def setting(self) -> str:
        """The fusion setting in the paper's notation, e.g. ``0-1, 2-12, 13``."""
        return ", ".join(b.label for b in self.blocks)

    def to_dict(self) -> dict:
        d = asdict(self)
        return d

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @staticmethod
    def from_dict(d: dict) -> "Plan":
        try:
            blocks = [PlanBlock(**b) for b in d["blocks"]]
            kw = {k: v for k, v in d.items() if k != "blocks"}
            return Plan(blocks=blocks, **kw)
        except (KeyError, TypeError) as exc:
            raise InputError(f"not a msfopt plan JSON: {exc}") from None

    @staticmethod
    def load(path: str | Path) -> "Plan":
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"plan file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"plan file {path} is not valid JSON: {exc}") from None
        if not isinstance(d, dict):
            raise InputError(f"plan file {path} does not hold a JSON object")
        return Plan.from_dict(d)


def parse_setting(text: str) -> list[tuple[int, int]]:
    """Parse a fusion setting in the paper's notation into inclusive layer ranges:
    ``"0-1, 2-12, 13, 24..28 unf."`` -> [(0, 1), (2, 12), (13, 13), (24, 24), ..., (28, 28)]."""
    blocks: list[tuple[int, int]] = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            continue
        try:
            if p.endswith("unf."):
                a, b = p[:-4].strip().split("..")
                blocks += [(k, k) for k in range(int(a), int(b) + 1)]
            elif "-" in p:
                a, b = p.split("-")
                blocks.append((int(a), int(b)))
            else:
                blocks.append((int(p), int(p)))
        except ValueError:
            raise InputError(f"cannot parse fusion setting element {p!r}") from None
    return blocks
