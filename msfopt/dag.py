"""The fusion DAG: nodes are tensor boundaries 0..N, an edge per candidate block variant.

Edge ``e`` runs layers ``src[e] .. dst[e] - 1`` and carries its RAM bytes, MACs (with
recomputation) and estimated cycles.  Several variants (execution modes, tile sizes) of the same
layer range are parallel edges.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import msfcnn_model
from .ir import Network
from .cycles import CycleModel
from .modes import (DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES, FastLiveness, block_costs,
                    block_schedules, inplace_schedule, schedule_of, unfused_schedule)
from .schedule import BlockSchedule, IO_MODES

COST_MODELS = ("runtime", "msfcnn")
METRICS = ("cycles", "macs")


@dataclass
class FusionDAG:
    net: Network
    cost_model: str
    io: str
    src: np.ndarray
    dst: np.ndarray
    ram: np.ndarray
    macs: np.ndarray
    cycles: np.ndarray
    mode: list[str]
    tile: list[int]
    schedules: Sequence[BlockSchedule | None]   # a list, or LazySchedules (runtime model)
    cycle_model: CycleModel | None = None
    build_seconds: float = 0.0
    _out: list[list[int]] | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        return self.net.n_layers + 1

    @property
    def n_edges(self) -> int:
        return len(self.src)

    def weight(self, metric: str) -> np.ndarray:
        if metric == "macs":
            return self.macs
        if metric == "cycles":
            return self.cycles
        raise ValueError(f"unknown metric {metric!r}")

    def out_edges(self) -> list[list[int]]:
        if self._out is None:
            out: list[list[int]] = [[] for _ in range(self.n_nodes)]
            for e, s in enumerate(self.src.tolist()):
                out[s].append(e)
            self._out = out
        return self._out

    def vanilla_path(self) -> list[int]:
        """The unfused, layer-by-layer path."""
        path = []
        for v, edges in enumerate(self.out_edges()):
            for e in edges:
                if self.dst[e] == v + 1 and self.mode[e] == "unfused":
                    path.append(e)
                    break
        return path

    def totals(self, path: list[int]) -> dict:
        p = np.asarray(path, dtype=np.int64)
        return {"peak": int(self.ram[p].max()), "macs": int(self.macs[p].sum()),
                "cycles": int(self.cycles[p].sum())}

    def is_path(self, path: list[int]) -> bool:
        v = 0
        for e in path:
            if self.src[e] != v:
                return False
            v = int(self.dst[e])
        return v == self.n_nodes - 1

    @property
    def vanilla_macs(self) -> int:
        return self.net.vanilla_macs

    def without(self, drop) -> "FusionDAG":
        """A copy without the edges in ``drop`` (edge ids of this DAG)."""
        drop = set(int(e) for e in drop)
        keep = [e for e in range(self.n_edges) if e not in drop]
        k = np.asarray(keep, dtype=np.int64)
        return FusionDAG(net=self.net, cost_model=self.cost_model, io=self.io, src=self.src[k],
                         dst=self.dst[k], ram=self.ram[k], macs=self.macs[k],
                         cycles=self.cycles[k], mode=[self.mode[e] for e in keep],
                         tile=[self.tile[e] for e in keep],
                         schedules=(self.schedules.subset(keep)
                                    if isinstance(self.schedules, LazySchedules)
                                    else [self.schedules[e] for e in keep]),
                         cycle_model=self.cycle_model, build_seconds=self.build_seconds)


def build_dag(net: Network, cost_model: str = "runtime", io: str = "arena",
              cycle_model: CycleModel | None = None, modes=FUSED_MODES, tiles=DEFAULT_TILES,
              patches=DEFAULT_PATCHES, max_depth: int | None = None,
              prune: bool = True) -> FusionDAG:
    """Build the DAG.  ``prune`` drops a fused variant when a parallel edge (same layers) is no
    worse in RAM, MACs and cycles, and does not generate fused blocks that the unfused layers
    beat in all three (:class:`msfopt.modes.GrowthBound`, which keeps a long chain's DAG linear
    in its depth); both are exact for every objective and tie-break msfopt solves.
    ``prune=False`` builds every candidate (the reference the tests compare with).

    The runtime cost model's fused variants are costed in bulk (:func:`msfopt.modes.block_costs`,
    cycles by :func:`_bulk_cycles`, pruning by :func:`_prune_arrays`); their schedules are built
    only when read (:class:`LazySchedules`).  The result is identical, edge for edge, to the
    per-block construction (:func:`_build_dag_reference`, what the tests compare with)."""
    import time
    t0 = time.perf_counter()
    if cost_model not in COST_MODELS:
        raise ValueError(f"unknown cost model {cost_model!r} (choose from {', '.join(COST_MODELS)})")
    if io not in IO_MODES:
        raise ValueError(f"io must be one of {', '.join(IO_MODES)}")
    if cost_model == "msfcnn":
        dag = _build_dag_reference(net, cost_model, io, cycle_model, modes, tiles, patches,
                                   max_depth, prune)
        dag.build_seconds = time.perf_counter() - t0
        return dag
    cm = cycle_model or CycleModel()
    table = cm.layer_table(net)
    live = FastLiveness(net, io)
    singles = [unfused_schedule(net, live, l) for l in range(net.n_layers)]
    fused, seq = block_costs(net, io, modes=modes, tiles=tiles, patches=patches,
                             max_depth=max_depth, cycle_model=cm if prune else None, live=live,
                             unfused=singles)
    if "inplace" in modes:
        singles += [s for s in (inplace_schedule(net, live, l) for l in range(net.n_layers))
                    if s is not None]
    s_cycles = [cm.cycles(net, s, table) for s in singles]
    f_cycles = _bulk_cycles(cm, net, table, fused, seq)
    if f_cycles is None:       # the cycle model is not the formula _bulk_cycles mirrors
        try:
            f_cycles = np.array([cm.cycles(net, s, table) for s in
                                 _costed(fused, seq, range(len(fused["first"])))],
                                dtype=np.int64)
        except (AttributeError, TypeError):
            f_cycles = None
    if f_cycles is None:       # the cycle model reads more of a schedule than _Costed has
        dag = _build_dag_reference(net, cost_model, io, cycle_model, modes, tiles, patches,
                                   max_depth, prune)
        dag.build_seconds = time.perf_counter() - t0
        return dag
    ns = len(singles)
    names = ("unfused",) + tuple(FUSED_MODES)
    mode_id = np.concatenate([
        np.array([0 if s.mode == "unfused" else 1 + FUSED_MODES.index(s.mode) for s in singles],
                 dtype=np.int64), fused["mode"] + 1])
    first = np.concatenate([np.array([s.first for s in singles], dtype=np.int64), fused["first"]])
    last = np.concatenate([np.array([s.last for s in singles], dtype=np.int64), fused["last"]])
    ram = np.concatenate([np.array([s.ram_bytes for s in singles], dtype=np.int64), fused["ram"]])
    macs = np.concatenate([np.array([s.macs for s in singles], dtype=np.int64), fused["macs"]])
    cyc = np.concatenate([np.array(s_cycles, dtype=np.int64), f_cycles])
    tile = np.concatenate([np.array([s.tile for s in singles], dtype=np.int64), fused["tile"]])
    inpl = np.concatenate([np.array([bool(s.inplace_options) for s in singles], dtype=bool),
                           fused["inplace"].astype(bool)])
    rank = np.concatenate([np.array([0 if s.mode == "unfused" else 1 for s in singles],
                                    dtype=np.int64), fused["rank"]])
    keep = _prune_arrays(first, last, ram, macs, cyc, inpl, rank) if prune else \
        np.arange(len(first), dtype=np.int64)
    # the edge order of the reference: by (src, dst, mode name, tile)
    alpha = np.argsort(np.argsort(np.array(names)))       # mode id -> rank of its name
    order = keep[np.lexsort((tile[keep], alpha[mode_id[keep]], last[keep], first[keep]))]
    single_of = {(s.first, s.mode, s.tile): s for s in singles}
    modes_l = [names[k] for k in mode_id[order].tolist()]
    tiles_l = tile[order].tolist()
    firsts, lasts = first[order].tolist(), last[order].tolist()
    known = [single_of.get((f, m, t)) if f == l_ else None
             for f, l_, m, t in zip(firsts, lasts, modes_l, tiles_l)]
    dag = FusionDAG(
        net=net, cost_model=cost_model, io=io, src=first[order], dst=last[order] + 1,
        ram=ram[order], macs=macs[order], cycles=cyc[order], mode=modes_l, tile=tiles_l,
        schedules=LazySchedules(net, live, firsts, lasts, modes_l, tiles_l, known),
        cycle_model=cm)
    dag.build_seconds = time.perf_counter() - t0
    return dag


class LazySchedules(Sequence):
    """The DAG's per-edge :class:`~msfopt.schedule.BlockSchedule` list, each built on first read
    by :func:`msfopt.modes.schedule_of` (the same generator, so the same object the per-block
    construction keeps); a plan reads a handful of them, a DAG has thousands of edges."""

    def __init__(self, net, live, first, last, mode, tile, known=None):
        self._net, self._live = net, live
        self._cols = (first, last, mode, tile)
        self._s = list(known) if known is not None else [None] * len(first)

    def __len__(self) -> int:
        return len(self._s)

    def __getitem__(self, e):
        if isinstance(e, slice):
            return [self[k] for k in range(*e.indices(len(self)))]
        s = self._s[e]
        if s is None:
            f, l_, m, t = (c[e] for c in self._cols)
            s = self._s[e] = schedule_of(self._net, self._live, f, l_, m, t)
        return s

    def subset(self, keep) -> "LazySchedules":
        """The schedules of edges ``keep`` (a new DAG's edge order), still lazy."""
        return LazySchedules(self._net, self._live,
                             *([c[e] for e in keep] for c in self._cols),
                             known=[self._s[e] for e in keep])


class _Costed:
    """The fields :meth:`CycleModel.cycles` reads, for a bulk-costed fused row."""
    __slots__ = ("first", "last", "mode", "tile", "layer_macs", "calls", "copy_bytes",
                 "tile_rows")

    def __init__(self, first, last, mode, tile, layer_macs, calls, copy_bytes, tile_rows):
        self.first, self.last, self.mode, self.tile = first, last, mode, tile
        self.layer_macs, self.calls, self.copy_bytes = layer_macs, calls, copy_bytes
        self.tile_rows = tile_rows


def _costed(fused, seq, rows):
    lm = seq["macs"]
    for k in rows:
        a, n = int(fused["seq"][k]), int(fused["seqlen"][k])
        yield _Costed(int(fused["first"][k]), int(fused["last"][k]),
                      FUSED_MODES[int(fused["mode"][k])], int(fused["tile"][k]),
                      tuple(lm[a:a + n].tolist()), int(fused["calls"][k]),
                      int(fused["copy"][k]), int(fused["tile_rows"][k]))


def _bulk_cycles(cm: CycleModel, net, table, fused, seq) -> np.ndarray | None:
    """:meth:`CycleModel.cycles_bulk` of every bulk-costed (pipelined) row -- the cycle model's
    own vectorised formula, bit for bit its per-schedule :meth:`~CycleModel.cycles` -- checked
    against ``cm.cycles`` on a sample of rows.  None when the model has no bulk form or any
    sampled row differs: the caller then costs the rows one by one with ``cm.cycles``."""
    nrow = len(fused["first"])
    bulk = getattr(cm, "cycles_bulk", None)
    if bulk is None:
        return None
    out = bulk(net, table, {**fused, "modes": FUSED_MODES}, seq)
    if out is None or nrow == 0:
        return out
    sample = np.unique(np.linspace(0, nrow - 1, min(nrow, 48)).astype(np.int64)).tolist()
    try:
        ok = all(cm.cycles(net, s, table) == int(out[k])
                 for k, s in zip(sample, _costed(fused, seq, sample)))
    except (AttributeError, TypeError, IndexError, ValueError):
        ok = False
    return out if ok else None


def _prune_arrays(first, last, ram, macs, cyc, inplace, rank) -> np.ndarray:
    """:func:`_prune` on arrays: the indices of the rows no other row of the same layer range
    dominates, where row f dominates row r when f sorts before r by (RAM, MACs, cycles, emission
    rank) and is no worse in all three, and f is not in-place unless r is.  (Checking every earlier
    row instead of only the kept ones gives the same front: the relation is transitive.)"""
    order = np.lexsort((rank, cyc, macs, ram, last, first))
    f, l_ = first[order], last[order]
    r, m, c, ip = ram[order], macs[order], cyc[order], inplace[order]
    n = len(order)
    dominated = np.zeros(n, dtype=bool)
    newgrp = np.ones(n, dtype=bool)
    newgrp[1:] = (f[1:] != f[:-1]) | (l_[1:] != l_[:-1])
    gid = np.cumsum(newgrp) - 1
    gstart = np.flatnonzero(newgrp)
    gsize = np.diff(np.append(gstart, n))
    for k in range(1, int(gsize.max()) if n else 0):
        a = np.arange(k, n)
        b = a - k
        same = gid[a] == gid[b]
        dom = same & (r[b] <= r[a]) & (m[b] <= m[a]) & (c[b] <= c[a]) & (ip[a] | ~ip[b])
        dominated[a[dom]] = True
    return order[~dominated]


def _build_dag_reference(net: Network, cost_model: str = "runtime", io: str = "arena",
                         cycle_model: CycleModel | None = None, modes=FUSED_MODES,
                         tiles=DEFAULT_TILES, patches=DEFAULT_PATCHES,
                         max_depth: int | None = None, prune: bool = True) -> FusionDAG:
    """The per-block construction: a :class:`~msfopt.schedule.BlockSchedule` per candidate,
    costed one by one (the reference :func:`build_dag` must equal; the paper's cost model's
    only path)."""
    import time
    t0 = time.perf_counter()
    if cost_model not in COST_MODELS:
        raise ValueError(f"unknown cost model {cost_model!r} (choose from {', '.join(COST_MODELS)})")
    if io not in IO_MODES:
        raise ValueError(f"io must be one of {', '.join(IO_MODES)}")
    rows = []
    if cost_model == "msfcnn":
        # the paper's convention: network input and output never counted; latency proxy = MACs
        io = "external"
        for i, j, mode, ram, macs in msfcnn_model.edges(net, max_depth):
            rows.append((i, j + 1, ram, macs, macs, mode, 1 if mode != "unfused" else 0, None))
        cm = None
    else:
        cm = cycle_model or CycleModel()
        table = cm.layer_table(net)
        for s in block_schedules(net, io, modes=modes, tiles=tiles, patches=patches,
                                 max_depth=max_depth, cycle_model=cm if prune else None):
            rows.append((s.first, s.last + 1, s.ram_bytes, s.macs, cm.cycles(net, s, table),
                         s.mode, s.tile, s))
        if prune:
            rows = _prune(rows)
    rows.sort(key=lambda r: (r[0], r[1], r[5], r[6]))
    dag = FusionDAG(
        net=net, cost_model=cost_model, io=io,
        src=np.array([r[0] for r in rows], dtype=np.int64),
        dst=np.array([r[1] for r in rows], dtype=np.int64),
        ram=np.array([r[2] for r in rows], dtype=np.int64),
        macs=np.array([r[3] for r in rows], dtype=np.int64),
        cycles=np.array([r[4] for r in rows], dtype=np.int64),
        mode=[r[5] for r in rows], tile=[r[6] for r in rows],
        schedules=[r[7] for r in rows], cycle_model=cm)
    dag.build_seconds = time.perf_counter() - t0
    return dag


def _prune(rows):
    """Keep, per layer range, only variants not dominated in (RAM, MACs, cycles).

    An in-place variant (output over a dying input) never prunes a variant that is not in-place:
    a plan using it may fail to pack (the driver then rejects that plan), and the dominated
    variant must still be there for the next best plan -- so the optimum among plans whose
    layout packs is never lost."""
    groups: dict[tuple[int, int], list] = {}
    for r in rows:
        groups.setdefault((r[0], r[1]), []).append(r)
    kept = []

    def inplace(r):
        return bool(r[7] is not None and r[7].inplace_options)

    for grp in groups.values():
        grp.sort(key=lambda r: (r[2], r[3], r[4]))
        front = []
        for r in grp:
            if any(f[2] <= r[2] and f[3] <= r[3] and f[4] <= r[4]
                   and (inplace(r) or not inplace(f)) for f in front):
                continue
            front.append(r)
        kept.extend(front)
    return kept


def path_for_setting(dag: FusionDAG, blocks, mode: str = "hcache", tile: int = 1) -> list[int]:
    """Edge ids realising a fusion setting (inclusive layer ranges); fused blocks use ``mode`` /
    ``tile``.  Raises ValueError if a block is not an edge of the DAG."""
    index = {}
    for e in range(dag.n_edges):
        index[(int(dag.src[e]), int(dag.dst[e]), dag.mode[e], int(dag.tile[e]))] = e
    path = []
    for a, b in blocks:
        key = (a, b + 1, "unfused", 0) if a == b else (a, b + 1, mode, tile)
        if key not in index:
            raise ValueError(f"block {a}-{b} ({key[2]}) is not an edge of the DAG")
        path.append(index[key])
    if not dag.is_path(path):
        raise ValueError("setting does not cover the network as one chain of blocks")
    return path
