"""Exact graph search on the fusion DAG: the referee every solver answer is checked against.

P2 (``min_latency``): minimum total weight (cycles or MACs) over 0 -> N paths whose every edge has
RAM <= cap; ties broken by the smaller peak, then by the smaller *tertiary* weight (the other
latency metric: MACs when the metric is cycles, cycles when it is MACs), so every backend returns
the same (latency, peak, tertiary) triple.  Because nodes are topologically ordered (edges go
forward), one dynamic-programming pass over the edges solves (sum, peak): keeping the
lexicographically smallest (sum, peak) label per node is exact, since a larger prefix sum can never
win and, at equal sums, a smaller prefix peak is never worse.  The tertiary tie-break is a second
pass restricted to edges with RAM <= the optimal peak P*: every path there with the optimal sum has
peak exactly P* (P* is the least peak among optimal-sum paths), so (sum, tertiary) labels are exact.

P1 (``min_peak``): minimum peak RAM subject to total weight <= budget; ties broken by the smaller
total, then the smaller tertiary weight.  The feasible set only grows with the RAM threshold, so a
binary search over the distinct edge RAM values, with one P2 pass per probe, finds the smallest
feasible threshold T*; the P2 answer at T* is the tie-broken optimum (its peak is exactly T*).

Both take an optional boolean edge mask ``allowed``.  :func:`best_accepted` uses it for Lawler's
partition scheme: the best path that an external test (e.g. "its arena layout packs") accepts,
enumerating paths in objective order until one passes — the exact counterpart of the no-good cuts
the ILP backends receive.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

INF = float("inf")


@dataclass
class SearchResult:
    feasible: bool
    path: list[int]
    total: int | None       # sum of the latency weight
    peak: int | None        # max edge RAM
    seconds: float
    tertiary: int | None = None   # sum of the other latency weight (the last tie-break)


def tertiary_metric(metric: str) -> str:
    """The last tie-break of every query: the latency metric the query does not optimise."""
    return "cycles" if metric == "macs" else "macs"


def _lists(dag, metric):
    return (dag.out_edges(), dag.dst.tolist(), dag.weight(metric).tolist(), dag.ram.tolist())


def min_latency(dag, metric: str = "cycles", ram_cap: float = INF, allowed=None) -> SearchResult:
    t0 = time.perf_counter()
    out, dst, w, ram = _lists(dag, metric)
    ok = None if allowed is None else np.asarray(allowed, dtype=bool).tolist()
    path = _shortest(dag, out, dst, w, ram, ram_cap, ok)
    path = _tiebreak(dag, out, dst, w, ram, path, metric, ok)
    return _result(dag, metric, path, t0)


def min_peak(dag, metric: str = "cycles", budget: float = INF, allowed=None) -> SearchResult:
    t0 = time.perf_counter()
    out, dst, w, ram = _lists(dag, metric)
    ok = None if allowed is None else np.asarray(allowed, dtype=bool).tolist()
    r = dag.ram if ok is None else dag.ram[np.asarray(ok, dtype=bool)]
    levels = np.unique(r)
    lo, hi = 0, len(levels) - 1
    full = _shortest(dag, out, dst, w, ram, INF, ok)
    if full is None or sum(w[e] for e in full) > budget:
        return _result(dag, metric, None, t0)
    best = full
    while lo <= hi:
        mid = (lo + hi) // 2
        path = _shortest(dag, out, dst, w, ram, int(levels[mid]), ok)
        if path is not None and sum(w[e] for e in path) <= budget:
            best = path
            hi = mid - 1
        else:
            lo = mid + 1
    best = _tiebreak(dag, out, dst, w, ram, best, metric, ok)
    return _result(dag, metric, best, t0)


def _tiebreak(dag, out, dst, w, ram, path, metric, ok):
    """Among paths with ``path``'s sum and peak, the one with the least tertiary weight."""
    if path is None:
        return None
    peak = max(ram[e] for e in path)
    w3 = dag.weight(tertiary_metric(metric)).tolist()
    return _shortest(dag, out, dst, w, ram, peak, ok, second=w3)


def _shortest(dag, out, dst, w, ram, cap, ok=None, second=None):
    """Lexicographic shortest 0 -> N path over edges with RAM <= cap (and ``ok``): minimise the
    sum of ``w``, then the peak RAM (``second`` None) or the sum of ``second``."""
    n_nodes = dag.n_nodes
    best_sum = [INF] * n_nodes
    best_two = [INF] * n_nodes
    pred = [-1] * n_nodes
    best_sum[0] = 0
    best_two[0] = 0
    for v in range(n_nodes - 1):
        bs = best_sum[v]
        if bs == INF:
            continue
        bp = best_two[v]
        for e in out[v]:
            r = ram[e]
            if r > cap or (ok is not None and not ok[e]):
                continue
            u = dst[e]
            s = bs + w[e]
            if second is None:
                p = bp if bp >= r else r
            else:
                p = bp + second[e]
            cs = best_sum[u]
            if s < cs or (s == cs and p < best_two[u]):
                best_sum[u] = s
                best_two[u] = p
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
    return SearchResult(True, path, tot[metric], tot["peak"], secs, tot[tertiary_metric(metric)])


def min_feasible_ram(dag) -> int:
    """The smallest peak RAM of any 0 -> N path (the bottleneck shortest path)."""
    r = min_peak(dag, "macs", INF)
    return int(r.peak)


def best_accepted(dag, search: Callable[[np.ndarray], SearchResult],
                  key: Callable[[SearchResult], tuple], accept: Callable[[list[int]], bool],
                  max_paths: int = 10_000) -> tuple[SearchResult | None, int]:
    """The best path (by ``key`` of ``search``'s answer) that ``accept`` accepts, exactly.

    ``search(mask)`` solves the query on the edges where ``mask`` is True.  Lawler's scheme: when
    the best path p of a region is rejected, the region minus p is split into disjoint regions
    "follows p's first i edges, avoids p's edge i" (i = 0 .. len(p) - 1), each solved by
    ``search``; regions are explored best first.  Every path outside the rejected ones lies in
    exactly one region, so the first accepted path popped is optimal among accepted paths.
    Returns (result or None when no accepted path exists, number of rejected paths)."""
    n = dag.n_edges
    out = dag.out_edges()
    root = np.ones(n, dtype=bool)
    heap: list = []
    tick = 0

    def push(mask):
        nonlocal tick
        r = search(mask)
        if r.feasible:
            heapq.heappush(heap, (key(r), tick, r, mask))
            tick += 1

    push(root)
    rejected = 0
    while heap:
        _, _, r, mask = heapq.heappop(heap)
        if accept(r.path):
            return r, rejected
        rejected += 1
        if rejected >= max_paths:
            break
        prefix = mask.copy()
        for e in r.path:
            child = prefix.copy()
            child[e] = False
            push(child)
            # the next regions follow e: no other edge out of its source node
            others = out[int(dag.src[e])]
            prefix[others] = False
            prefix[e] = True
    return None, rejected
