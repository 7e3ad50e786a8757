"""Plan: the chosen fusion setting, its costs, and how it was found (serialisable to JSON)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import InputError

SCHEMA_VERSION = 1


def mac_overhead(macs: int, vanilla_macs: int) -> float:
    """F = MACs / the unfused MACs, to 6 decimals; 1.0 for a network without MACs (pure data
    movement: split, concat, shuffle -- nothing to recompute)."""
    return round(macs / vanilla_macs, 6) if vanilla_macs else 1.0


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
    # the graph outputs in the model's order: {"tensor": id, "shape": [H, W, C]}
    outputs: list = field(default_factory=list)
    # the execution order (the model's op index run at each position; the blocks' layer indices
    # are positions in it); None: the model file's order
    order: list | None = None
    # concat slices: the concat inputs the plan's blocks write straight into their channel slice
    # of the concat output ({"tensor": a, "concat": c, "channel": first channel}); computed from
    # the (reordered) network and io by msfopt.schedule.concat_slices, recorded for readers
    concat_slices: list = field(default_factory=list)

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
        """A Plan from its JSON form; every field's presence and type is checked (InputError
        naming what is wrong).  Whether the blocks fit a model: :meth:`validate`."""
        d = dict(d) if isinstance(d, dict) else d
        errs = _check_fields(d)
        if errs:
            raise InputError("not a valid msfopt plan: " + "; ".join(errs))
        blocks = [PlanBlock(**b) for b in d["blocks"]]
        kw = {k: v for k, v in d.items() if k != "blocks"}
        return Plan(blocks=blocks, **kw)

    @staticmethod
    def load(path: str | Path) -> "Plan":
        """Read a plan JSON file (structure checked; see :meth:`validate` for the model)."""
        p = Path(path)
        if p.is_dir():
            raise InputError(f"plan file {path} is a directory")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"plan file not found: {path}") from None
        except OSError as exc:
            raise InputError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            msg = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise InputError(f"plan file {path} is not valid JSON: {msg}") from None
        if not isinstance(d, dict):
            raise InputError(f"plan file {path} does not hold a JSON object")
        try:
            return Plan.from_dict(d)
        except InputError as exc:
            raise InputError(f"plan file {path}: {exc}") from None

    def network(self, net):
        """``net`` as this plan executes it: reordered by :attr:`order` (checked to be a
        topological order of ``net``'s ops), or ``net`` itself."""
        if self.order is None:
            return net
        from .order import reorder
        if not all(isinstance(o, int) and not isinstance(o, bool) for o in self.order):
            raise InputError("plan order must be a list of op indices")
        return reorder(net, self.order)

    def validate(self, net, io: str | None = None) -> "Plan":
        """Check that the plan's blocks execute ``net``: see :func:`validate_blocks`.
        Raises InputError naming every problem; returns the plan."""
        io = self.io if io is None else io
        validate_blocks(net, self.blocks, io)
        if self.concat_slices and self.concat_slices != plan_concat_slices(net, io):
            raise InputError("invalid plan: its concat slices "
                             f"{_short(self.concat_slices)} are not the model's "
                             f"{_short(plan_concat_slices(net, io))}")
        return self


def plan_concat_slices(net, io: str = "arena") -> list:
    """The plan JSON's ``concat_slices`` of ``net`` run with ``io``: every concat input written
    into its slice of the concat output (:func:`msfopt.schedule.concat_slices`), by tensor."""
    from .schedule import Liveness
    live = Liveness(net, io)
    return [{"tensor": a, "concat": c, "channel": off}
            for a, (c, off) in sorted(live.alias_of.items())]


# -- validation ---------------------------------------------------------------------------------

_NUM = (int, float)
#: largest tile / patch size a plan may name (the C runtime's fields are int32)
TILE_MAX = 1 << 16
#: keys of older plan files that are read and ignored
_LEGACY_KEYS = ("excluded_variants",)


def _plan_fields() -> dict:
    """field -> (accepted JSON types, required), from the Plan dataclass itself (None in the
    types: JSON null allowed)."""
    import dataclasses
    table = {"int": (int,), "float": _NUM, "str": (str,), "dict": (dict,), "None": (None,),
             "bool": (bool,)}
    out = {}
    for f in dataclasses.fields(Plan):
        types: tuple = ()
        for part in str(f.type).split("|"):
            part = part.strip()
            types += (list,) if part.startswith("list") else table.get(part, (object,))
        required = (f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING)
        out[f.name] = (types, required)
    return out


_BLOCK_FIELDS = ("first_layer", "last_layer", "mode", "tile", "ram_bytes", "macs", "est_cycles")


def _type_ok(v, types) -> bool:
    if object in types:
        return True
    if v is None:
        return None in types
    if isinstance(v, bool):          # JSON true/false are not numbers
        return bool in types
    return isinstance(v, tuple(t for t in types if t is not None))


def _tname(types) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object", None: "null", bool: "true/false", object: "anything"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _check_fields(d) -> list[str]:
    if not isinstance(d, dict):
        return ["not a JSON object"]
    errs = []
    fields = _plan_fields()
    for k in _LEGACY_KEYS:
        if k not in fields:
            d.pop(k, None)
    missing = [k for k, (_t, req) in fields.items() if req and k not in d]
    if missing:
        errs.append(f"missing key(s) {', '.join(missing)}")
    unknown = [str(k) for k in d if k not in fields]
    if unknown:
        errs.append(f"unknown key(s) {', '.join(unknown[:8])}")
    for k, (types, _req) in fields.items():
        if k in d and not _type_ok(d[k], types):
            errs.append(f"{k} must be {_tname(types)}, got {_short(d[k])}")
    blocks = d.get("blocks")
    if isinstance(blocks, list):
        if not blocks:
            errs.append("blocks is empty")
        for k, b in enumerate(blocks):
            if not isinstance(b, dict):
                errs.append(f"blocks[{k}] must be an object, got {_short(b)}")
                continue
            miss = [f for f in _BLOCK_FIELDS if f not in b]
            extra = [str(f) for f in b if f not in _BLOCK_FIELDS]
            if miss:
                errs.append(f"blocks[{k}] lacks {', '.join(miss)}")
            if extra:
                errs.append(f"blocks[{k}] has unknown key(s) {', '.join(extra[:8])}")
            for f in _BLOCK_FIELDS:
                if f in b and not _type_ok(b[f], (str,) if f == "mode" else (int,)):
                    errs.append(f"blocks[{k}].{f} must be "
                                f"{'a string' if f == 'mode' else 'an integer'}, got {_short(b[f])}")
            if len(errs) > 12:
                break
    return errs


def _short(v) -> str:
    text = json.dumps(v) if not isinstance(v, float) or v == v else "NaN"
    return text if len(text) <= 40 else text[:37] + "..."


def _block_key(b):
    if isinstance(b, PlanBlock):
        return b.first_layer, b.last_layer, b.mode, b.tile
    return tuple(b)


def validate_blocks(net, blocks, io: str = "arena") -> list:
    """Check that ``blocks`` (PlanBlocks or (first, last, mode, tile) tuples) execute ``net``:
    they cover layers 0..n-1 in order without gaps or overlaps, each mode is known and each
    block is one the schedules can run with exactly that tile (a fused block is a chain of
    window ops whose intermediates nobody outside the block reads, so never across an add).
    Raises InputError naming every problem; returns the blocks' schedules."""
    from .modes import FUSED_MODES, schedule_of
    from .schedule import IO_MODES, Liveness
    if io not in IO_MODES:
        raise InputError(f"plan io {io!r} is not one of {', '.join(IO_MODES)}")
    n = net.n_layers
    modes = ("unfused",) + tuple(FUSED_MODES)
    errs: list[str] = []
    keys = []
    for k, b in enumerate(blocks):
        try:
            first, last, mode, tile = _block_key(b)
        except (TypeError, ValueError):
            errs.append(f"block {k} is not (first, last, mode, tile)")
            continue
        bad = [what for what, v in (("first_layer", first), ("last_layer", last), ("tile", tile))
               if isinstance(v, bool) or not isinstance(v, int)]
        if bad or not isinstance(mode, str):
            errs.append(f"block {k}: {', '.join(bad + ([] if isinstance(mode, str) else ['mode']))}"
                        f" of the wrong type")
            continue
        keys.append((k, first, last, mode, tile))
    if not blocks:
        errs.append("the plan has no blocks")
    expect = 0
    for k, first, last, mode, tile in keys:
        where = f"block {k} ({first}-{last}, {mode})"
        if first < 0 or last >= n or first > last:
            errs.append(f"{where}: layers out of range (the model has layers 0..{n - 1})")
        elif first > expect:
            errs.append(f"{where}: gap, layers {expect}..{first - 1} are in no block")
        elif first < expect:
            errs.append(f"{where}: overlaps the previous block (which ends at layer {expect - 1})")
        if mode not in modes:
            errs.append(f"{where}: unknown mode {mode!r} (choose from {', '.join(modes)})")
        if tile < 0:
            errs.append(f"{where}: tile {tile} is negative")
        expect = max(expect, min(last, n - 1) + 1) if last >= first else expect
    if keys and not errs and expect < n:
        errs.append(f"layers {expect}..{n - 1} are in no block")
    if errs:
        raise InputError("invalid plan: " + "; ".join(errs[:8])
                         + (f"; and {len(errs) - 8} more" if len(errs) > 8 else ""))
    live = Liveness(net, io)
    scheds = []
    for k, first, last, mode, tile in keys:
        where = f"block {k} ({first}-{last}, {mode}, tile {tile})"
        if mode in ("hcache", "hcache-ip", "hcache-gap", "recompute") and not 1 <= tile <= TILE_MAX:
            errs.append(f"{where}: tile must be 1..{TILE_MAX}")
            continue
        try:
            s = schedule_of(net, live, first, last, mode, tile)
        except (ValueError, IndexError, ZeroDivisionError, OverflowError) as exc:
            errs.append(f"{where}: {' '.join(str(exc).split()) or type(exc).__name__}")
            continue
        if s.tile != tile:
            errs.append(f"{where}: this block runs with tile {s.tile}, not {tile}")
            continue
        scheds.append(s)
    if errs:
        raise InputError("invalid plan: " + "; ".join(errs[:8])
                         + (f"; and {len(errs) - 8} more" if len(errs) > 8 else ""))
    return scheds


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
