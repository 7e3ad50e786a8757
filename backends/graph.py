"""Exact graph search on the fusion DAG: the referee every solver answer is checked against.

P2 (``min_latency``): minimum total weight (cycles or MACs) over 0 -> N paths whose every edge has
RAM <= cap; ties broken by the smaller peak.  Because nodes are topologically ordered (edges go
forward), one dynamic-programming pass over the edges solves it; keeping the lexicographically
smallest (sum, peak) label per node is exact, since a larger prefix sum can never win.

P1 (``min_peak``): minimum peak RAM subject to total weight <= budget; ties broken by the smaller
total.  The feasible set only grows with the RAM threshold, so a binary search over the distinct
edge RAM values, with one P2 pass per probe, finds the smallest feasible threshold T*; the P2
answer at T* is the tie-broken optimum (its peak is exactly T*).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

INF = float("inf")


@dataclass
class SearchResult:
    feasible: bool
    path: list[int]
    total: int | None       # sum of the latency weight
    peak: int | None        # max edge RAM
    seconds: float


def _lists(dag, metric):
    return (dag.out_edges(), dag.dst.tolist(), dag.weight(metric).tolist(), dag.ram.tolist())


def min_latency(dag, metric: str = "cycles", ram_cap: float = INF) -> SearchResult:
    t0 = time.perf_counter()
    out, dst, w, ram = _lists(dag, metric)
    path = _shortest(dag, out, dst, w, ram, ram_cap)
    return _result(dag, metric, path, t0)


def min_peak(dag, metric: str = "cycles", budget: float = INF) -> SearchResult:
    t0 = time.perf_counter()
    out, dst, w, ram = _lists(dag, metric)
    levels = np.unique(dag.ram)
    lo, hi = 0, len(levels) - 1
    full = _shortest(dag, out, dst, w, ram, INF)
    if full is None or sum(w[e] for e in full) > budget:
        return _result(dag, metric, None, t0)
    best = full
    while lo <= hi:
        mid = (lo + hi) // 2
        path = _shortest(dag, out, dst, w, ram, int(levels[mid]))
        if path is not None and sum(w[e] for e in path) <= budget:
            best = path
            hi = mid - 1
        else:
            lo = mid + 1
    return _result(dag, metric, best, t0)


def _shortest(dag, out, dst, w, ram, cap):
    n_nodes = dag.n_nodes
    best_sum = [INF] * n_nodes
    best_peak = [INF] * n_nodes
    pred = [-1] * n_nodes
    best_sum[0] = 0
    best_peak[0] = 0
    for v in range(n_nodes - 1):
        bs = best_sum[v]
        if bs == INF:
            continue
        bp = best_peak[v]
        for e in out[v]:
            r = ram[e]
            if r > cap:
                continue
            u = dst[e]
            s = bs + w[e]
            p = bp if bp >= r else r
            cs = best_sum[u]
            if s < cs or (s == cs and p < best_peak[u]):
                best_sum[u] = s
                best_peak[u] = p
                pred[u] = e
    v = n_nodes - 1
    if best_sum[v] == INF:
        return None
    path = []
    src = dag.src
    while v != 0:
        e = pred[v]
        path.append(e)
        v = int(src[e])
    path.reverse()
    return path


def _result(dag, metric, path, t0) -> SearchResult:
    secs = time.perf_counter() - t0
    if path is None:
        return SearchResult(False, [], None, None, secs)
    tot = dag.totals(path)
    return SearchResult(True, path, tot[metric], tot["peak"], secs)


def min_feasible_ram(dag) -> int:
    """The smallest peak RAM of any 0 -> N path (the bottleneck shortest path)."""
    r = min_peak(dag, "macs", INF)
    return int(r.peak)
