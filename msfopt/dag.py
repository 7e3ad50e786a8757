"""The fusion DAG: nodes are tensor boundaries 0..N, an edge per candidate block variant.

Edge ``e`` runs layers ``src[e] .. dst[e] - 1`` and carries its RAM bytes, MACs (with
recomputation) and estimated cycles.  Several variants (execution modes, tile sizes) of the same
layer range are parallel edges.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import msfcnn_model
from .ir import Network
from .cycles import CycleModel
from .modes import DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES, block_schedules
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
    schedules: list[BlockSchedule | None]
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
                         schedules=[self.schedules[e] for e in keep],
                         cycle_model=self.cycle_model, build_seconds=self.build_seconds)


def build_dag(net: Network, cost_model: str = "runtime", io: str = "arena",
              cycle_model: CycleModel | None = None, modes=FUSED_MODES, tiles=DEFAULT_TILES,
              patches=DEFAULT_PATCHES, max_depth: int | None = None,
              prune: bool = True) -> FusionDAG:
    """Build the DAG.  ``prune`` drops a fused variant when a parallel edge (same layers) is no
    worse in RAM, MACs and cycles, and does not generate fused blocks that the unfused layers
    beat in all three (:class:`msfopt.modes.GrowthBound`, which keeps a long chain's DAG linear
    in its depth); both are exact for every objective and tie-break msfopt solves.
    ``prune=False`` builds every candidate (the reference the tests compare with)."""
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
