"""Exact bi-criteria search on the fusion DAG: the Pareto front of (peak RAM, latency) plans.

A plan is a 0 -> N path; its peak is the max edge RAM and its latency the sum of edge weights
(cycles or MACs).  ``front`` is a label-setting search: nodes are processed in topological order
(0..N, every edge goes forward) and each node keeps the non-dominated (peak, latency) labels of
its prefixes, with a back-pointer per label.  A label is extended along an edge with RAM r as
(max(peak, r), latency + w); all labels of a node whose peak is <= r collapse to peak r, so only
the cheapest of those survives, and the extension of a front stays a front.  Merging the incoming
label sets of a node is one sort and one running minimum (numpy).  Labels at node N are exactly the
Pareto-optimal plans (a dominated prefix can never complete to a non-dominated plan, since both
criteria are monotone along a path).

``front_by_sweep`` computes the same front a second, independent way: the epsilon-constraint
method with one exact P2 dynamic program per front point (cap below the previous point's peak).
(:mod:`msfopt.pareto_confirm` proves the points, and that none is missing, with epsilon-constraint
path programs solved by an ILP backend.)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from . import graph


@dataclass
class ParetoPoint:
    peak: int
    latency: int                 # the front's metric (cycles or MACs)
    macs: int
    cycles: int
    path: list[int]


@dataclass
class Front:
    metric: str
    points: list[ParetoPoint]
    seconds: float
    labels: int = 0              # labels created (search effort)
    method: str = "labels"

    def pairs(self) -> list[tuple[int, int]]:
        return [(p.peak, p.latency) for p in self.points]


def _pareto_filter(peak: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated (peak, latency) pairs (duplicates kept once), sorted by peak."""
    order = np.lexsort((lat, peak))          # peak ascending, then latency ascending
    ls = lat[order]
    prev_min = np.minimum.accumulate(ls)
    keep = np.ones(len(ls), dtype=bool)
    keep[1:] = ls[1:] < prev_min[:-1]        # strictly better latency than every smaller peak
    return order[keep]


def front(dag, metric: str = "cycles", ram_cap: float = math.inf) -> Front:
    """The exact Pareto front (peak ascending, latency descending), one path per point.

    ``ram_cap`` optionally drops edges above a RAM capacity first."""
    t0 = time.perf_counter()
    n = dag.n_nodes
    ram = dag.ram.astype(np.int64)
    w = dag.weight(metric).astype(np.int64)
    out = dag.out_edges()
    # per node: peak, latency, pred edge, pred label index
    labels: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None] = [None] * n
    z = np.zeros(1, dtype=np.int64)
    labels[0] = (z, z.copy(), np.full(1, -1, np.int64), np.full(1, -1, np.int64))
    pending: list[list] = [[] for _ in range(n)]
    created = 1
    dst = dag.dst.tolist()
    ram_l = ram.tolist()
    w_l = w.tolist()
    for v in range(n):
        if v > 0:
            chunks = pending[v]
            pending[v] = []
            if not chunks:
                continue
            if len(chunks) == 1:
                P, L, E, I = chunks[0]
            else:
                P = np.concatenate([c[0] for c in chunks])
                L = np.concatenate([c[1] for c in chunks])
                E = np.concatenate([c[2] for c in chunks])
                I = np.concatenate([c[3] for c in chunks])
            keep = _pareto_filter(P, L)
            labels[v] = (P[keep], L[keep], E[keep], I[keep])
        if v == n - 1:
            break
        P, L, _, _ = labels[v]
        m = len(P)
        for e in out[v]:
            r = ram_l[e]
            if r > ram_cap:
                continue
            k0 = int(np.searchsorted(P, r, side="right")) - 1   # last label with peak <= r
            if k0 < 0:
                newP = P.copy()
                idx = np.arange(m, dtype=np.int64)
            else:
                newP = np.empty(m - k0, dtype=np.int64)
                newP[0] = r
                newP[1:] = P[k0 + 1:]
                idx = np.arange(k0, m, dtype=np.int64)
            created += len(idx)
            pending[dst[e]].append((newP, L[idx] + w_l[e], np.full(len(idx), e, np.int64), idx))
    points = []
    final = labels[n - 1]
    if final is not None:
        src = dag.src
        for k in range(len(final[0])):
            path = []
            v, i = n - 1, k
            while v != 0:
                P, L, E, I = labels[v]
                e = int(E[i])
                path.append(e)
                i = int(I[i])
                v = int(src[e])
            path.reverse()
            tot = dag.totals(path)
            points.append(ParetoPoint(int(final[0][k]), int(final[1][k]), tot["macs"],
                                      tot["cycles"], path))
    return Front(metric, points, time.perf_counter() - t0, created, "labels")


def front_by_sweep(dag, metric: str = "cycles") -> Front:
    """The same front by the epsilon-constraint method on exact P2 passes (one per point).

    The min latency under a RAM cap is a non-increasing step function of the cap.  The P2 answer
    at cap c (ties to the smaller peak) has some peak p <= c, and no plan of that latency has a
    smaller peak: (p, latency) is a front point, and the next one lies strictly below p."""
    t0 = time.perf_counter()
    points = []
    cap = math.inf
    probes = 0
    while True:
        r = graph.min_latency(dag, metric, cap)
        probes += 1
        if not r.feasible:
            break
        tot = dag.totals(r.path)
        points.append(ParetoPoint(int(r.peak), int(r.total), tot["macs"], tot["cycles"], r.path))
        cap = r.peak - 1
    points.reverse()
    return Front(metric, points, time.perf_counter() - t0, probes, "sweep")
