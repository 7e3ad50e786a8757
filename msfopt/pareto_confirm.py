"""Epsilon-constraint confirmation of an exact Pareto front by an integer-programming backend.

The front itself is computed by graph search (:mod:`msfopt.backends.pareto`).  Here a backend
re-derives it from the DAG alone, through one function of the RAM capacity ``c``:

    g(c) = min latency over the plans whose peak is <= c      (the epsilon-constraint program)

solved as one path program (a binary x_e per DAG edge, flow conservation from node 0 to node N,
objective sum w_e x_e).  The epsilon constraint ``peak <= c`` is exact as variable bounds: the
peak of a plan is the largest RAM of its edges, so it is <= c iff every edge with RAM > c is
unused (x_e = 0); those columns, and parallel columns of higher latency, are left out of the
program (:meth:`EpsilonProgram.program`).  ``g`` is cached per set of usable edges (capacities
between two consecutive edge-RAM values give the same program).  The program is a shortest path,
whose LP relaxation is integral, so every backend proves each optimum at its root; HiGHS keeps
one model over all capacities, changes only the bounds and solves that relaxation (checked 0/1;
:meth:`EpsilonProgram._highs_solve`), the other backends get the reduced integer program per
capacity.

Why these values prove the front, with points (p_0, l_0), ..., (p_{m-1}, l_{m-1}) (peak strictly
ascending, latency strictly descending):

* a point (p, l) is Pareto-optimal iff g(p) == l and g(p - 1) > l (or infeasible): g(p) == l
  gives a plan of latency l with peak <= p and no plan with peak <= p is faster; g(p - 1) > l
  says every plan of peak < p is slower, so that plan's peak is exactly p and nothing dominates
  it (:func:`confirm_point`);
* the front is complete iff no plan lies in the region no point dominates.  That region is the
  union of {peak <= p_0 - 1}, {peak <= p_{k+1} - 1, latency <= l_k - 1} (k < m - 1) and
  {latency <= l_{m-1} - 1}; it is empty iff g(p_0 - 1) is infeasible, g(p_{k+1} - 1) == l_k and
  g(inf) == l_{m-1} (:func:`confirm`, 2m + 1 values of g at most).  Under a RAM capacity R
  and a latency limit B (the front of the constrained plans) the region is cut at peak <= R and
  latency <= B: g(inf) becomes g(R), and below the first point every plan may be slower than B.
  When the plan solved for g(p_{k+1} - 1) is point k itself, g(p_k) equals it (g is monotone):
  m + 1 solves then suffice.

Nothing is taken from graph search's plans: only the (peak, latency) numbers being confirmed
set the capacities, and no solver is warm-started from them (HiGHS re-solves from its own basis
of the previous capacity).  A front whose latencies do not strictly fall is refuted.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .backends.pareto import Front, ParetoPoint
from .errors import SolverError


@dataclass
class Confirmation:
    """The checks of one front point; each value is (status, min latency, that plan's peak)."""
    peak: int
    latency: int
    at: tuple            # g(point's peak): must be (optimal, latency, peak)
    below: tuple         # g(point's peak - 1): slower (alone), the previous point (in a front)
    ok: bool
    seconds: float
    message: str = ""
    beyond: tuple | None = None   # last point of a front: g(inf) must be its latency

    @property
    def unanswered(self) -> bool:
        """A check without an answer (solver time-out or failure): neither confirmed nor refuted."""
        return any(c is not None and c[0] in ("timeout", "error")
                   for c in (self.at, self.below, self.beyond))


class EpsilonProgram:
    """g(c) for one DAG and latency metric with one backend ("graph": exact graph search, the
    same values without an integer program)."""

    def __init__(self, dag, metric: str, backend: str = "cpsat", time_limit: float = 60.0,
                 threads: int = 1):
        self.dag, self.metric, self.backend_name = dag, metric, backend
        self.time_limit, self.threads = time_limit, threads
        self.ram = np.asarray(dag.ram, dtype=np.int64)
        self.w = np.asarray(dag.weight(metric), dtype=np.int64)
        self.levels = np.unique(self.ram)          # the capacities that change the program
        self._cache: dict[int, tuple] = {}
        self.solves = 0
        self._highs = None
        if backend != "graph":
            from .backends import get_backend
            self.backend = get_backend(backend)
            if not self.backend.available():
                raise SolverError(f"backend {backend} is not available on this machine")

    def program(self, cap: float):
        """The path program of ``peak <= cap``: (MIP, DAG edge of each variable) or None when no
        edge is usable.  Columns are the usable edges (RAM <= cap), and of parallel usable edges
        (same first and last node) only one of least latency: a plan through a slower parallel
        edge is never faster than the same plan through the fastest one, so the minimum is
        unchanged (dominated columns removed before the solver sees them; on the runtime DAGs
        the block variants of one layer range are most of the edges)."""
        from .formulations.model import EQ, MIP
        dag = self.dag
        usable = np.flatnonzero(self.ram <= cap)
        if len(usable) == 0:
            return None
        src, dst, w = dag.src[usable], dag.dst[usable], self.w[usable]
        order = np.lexsort((w, dst, src))
        s_o, d_o = src[order], dst[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (s_o[1:] != s_o[:-1]) | (d_o[1:] != d_o[:-1])
        cols = usable[order[first]]
        n = dag.n_nodes
        mip = MIP(f"{dag.net.name}/epsilon<={cap}")
        for k in range(len(cols)):
            mip.add_var(f"x{int(cols[k])}", 0, 1)
        rows: list[dict[int, int]] = [{} for _ in range(n)]
        for k, (a, b) in enumerate(zip(dag.src[cols].tolist(), dag.dst[cols].tolist())):
            rows[a][k] = 1
            rows[b][k] = -1
        for v in range(n):
            rhs = 1 if v == 0 else (-1 if v == n - 1 else 0)
            if rows[v] or rhs:
                mip.add(rows[v], EQ, rhs, f"flow_{v}")
        mip.minimize({k: int(c) for k, c in enumerate(self.w[cols].tolist())})
        return mip, cols

    def _highs_solve(self, cap: int):
        """HiGHS on one model kept across capacities: the columns are every DAG edge, a
        capacity changes only their upper bounds, and each solve is the LP relaxation
        hot-started from the previous basis.  A shortest-path LP (flow conservation, a network
        matrix) has integral vertices, and with integral costs a vertex optimal within the
        solver's reduced-cost tolerance (1e-7 per column, far below 1 in total) is exactly
        optimal; the vertex is checked to be 0/1, and None (solve the integer program instead)
        is returned otherwise."""
        import highspy
        from .backends import highs as hb
        dag = self.dag
        E = dag.n_edges
        with hb._LOCK:
            if self._highs is None:
                threads = max(1, int(self.threads))
                if hb._STATE["threads"] not in (None, threads):
                    highspy.Highs.resetGlobalScheduler(True)
                hb._STATE["threads"] = threads
                h = hb._new_highs()
                h.setOptionValue("output_flag", False)
                h.setOptionValue("threads", threads)
                h.setOptionValue("time_limit", float(self.time_limit))
                n = dag.n_nodes
                lp = highspy.HighsLp()
                lp.num_col_, lp.num_row_ = E, n
                lp.col_cost_ = self.w.astype(float)
                lp.col_lower_ = np.zeros(E)
                lp.col_upper_ = np.ones(E)
                rhs = np.zeros(n)
                rhs[0], rhs[n - 1] = 1.0, -1.0
                lp.row_lower_ = rhs
                lp.row_upper_ = rhs.copy()
                lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
                lp.a_matrix_.start_ = np.arange(0, 2 * E + 1, 2, dtype=np.int32)
                idx = np.empty(2 * E, dtype=np.int32)
                idx[0::2], idx[1::2] = dag.src, dag.dst
                lp.a_matrix_.index_ = idx
                val = np.empty(2 * E)
                val[0::2], val[1::2] = 1.0, -1.0
                lp.a_matrix_.value_ = val
                h.passModel(lp)
                self._highs = h
            h = self._highs
            h.changeColsBounds(E, np.arange(E, dtype=np.int32), np.zeros(E),
                               (self.ram <= cap).astype(float))
            h.run()
            ms = h.getModelStatus()
            MS = highspy.HighsModelStatus
            if ms == MS.kInfeasible:
                return ("infeasible", None, None)
            if ms != MS.kOptimal:
                return None
            x = np.asarray(h.getSolution().col_value)
        if np.abs(x - np.round(x)).max(initial=0.0) > 1e-6:
            return None
        used = np.flatnonzero(x > 0.5)
        used = used[np.argsort(dag.src[used])]
        if not dag.is_path(used.tolist()):       # a 0/1 flow without cycles is one path
            return None
        return ("optimal", int(self.w[used].sum()), int(self.ram[used].max()) if len(used) else 0)

    def _level(self, cap: float) -> int:
        """Index of the largest edge RAM <= cap (-1: no edge usable)."""
        return int(np.searchsorted(self.levels, cap, side="right")) - 1

    def g(self, cap: float) -> tuple:
        """(status, min latency, that plan's peak) under ``peak <= cap``; status is optimal,
        infeasible, timeout or error (latency and peak None unless optimal)."""
        k = self._level(cap)
        if k not in self._cache:
            self._cache[k] = self._solve(k)
        return self._cache[k]

    def _solve(self, k: int) -> tuple:
        if k < 0:
            return ("infeasible", None, None)
        c = int(self.levels[k])
        self.solves += 1
        if self.backend_name == "graph":
            from .backends import graph
            r = graph.min_latency(self.dag, self.metric, c)
            return ("optimal", int(r.total), int(r.peak)) if r.feasible else \
                ("infeasible", None, None)
        if self.backend_name == "highs":
            r = self._highs_solve(c)
            if r is not None:
                return r
        built = self.program(c)
        if built is None:
            return ("infeasible", None, None)
        mip, cols = built
        s = self.backend.solve(mip, time_limit=self.time_limit, threads=self.threads)
        if s.status == "infeasible":
            return ("infeasible", None, None)
        if s.status != "optimal" or s.values is None:
            return ("timeout" if s.status in ("timeout", "feasible") else "error", None, None)
        used = cols[np.flatnonzero(np.asarray(s.values) > 0.5)]
        return ("optimal", int(self.w[used].sum()), int(self.ram[used].max()) if len(used) else 0)


def _point(prog: EpsilonProgram, point: ParetoPoint, prev_latency, beyond_cap=None,
           above: tuple | None = None) -> Confirmation:
    """Checks of one point.  ``prev_latency``: None for a point alone (every plan below its peak
    must be slower), ``("first", limit)`` for the first point of a front (no plan below its peak
    within the latency limit, None = no limit), else the previous point's latency (exactly that
    point below).  ``beyond_cap``: for the last point of a front, the capacity up to which no
    faster plan may exist.  ``above``: g at a capacity >= the point's peak, already solved; when
    its plan is the point itself, g(peak) equals it (g is non-increasing in the capacity, and the
    plan has peak <= the point's peak), so g(peak) is not solved again."""
    t0 = time.perf_counter()
    beyond = None
    if beyond_cap is not None:
        beyond = above = prog.g(beyond_cap)
    if above is not None and above[0] == "optimal" and above[1:] == (point.latency, point.peak):
        at = above
    else:
        at = prog.g(point.peak)
    below = prog.g(point.peak - 1)
    ok = at[0] == "optimal" and at[1] == point.latency and at[2] <= point.peak
    if prev_latency is None:
        ok = ok and (below[0] == "infeasible" or (below[0] == "optimal"
                                                  and below[1] > point.latency))
    elif isinstance(prev_latency, tuple):
        limit = prev_latency[1]
        ok = ok and (below[0] == "infeasible" or (limit is not None and below[0] == "optimal"
                                                  and below[1] > limit))
    else:       # (with latencies strictly falling, g's monotonicity orders the peaks too)
        ok = (ok and point.latency < prev_latency and below[0] == "optimal"
              and below[1] == prev_latency)
    if beyond is not None:
        ok = ok and beyond[0] == "optimal" and beyond[1] == point.latency
    return Confirmation(point.peak, point.latency, at, below, ok, time.perf_counter() - t0,
                        beyond=beyond)


def confirm_point(dag, point: ParetoPoint, metric: str, backend: str = "cpsat",
                  time_limit: float = 60.0, threads: int = 1) -> Confirmation:
    """Epsilon-constraint check that one point is Pareto-optimal: g(p) == l, g(p - 1) > l."""
    return _point(EpsilonProgram(dag, metric, backend, time_limit, threads), point, None)


def confirm(dag, fr: Front, backend: str = "cpsat", time_limit: float = 60.0, threads: int = 1,
            progress=None, ram_cap: float = math.inf,
            latency_limit: float | None = None) -> list[Confirmation]:
    """Every point of ``fr`` confirmed and the front proven complete (module docstring) with one
    program for all points: the front of the plans with peak <= ``ram_cap`` and latency <=
    ``latency_limit`` (the constraints ``fr`` was computed under).  ``progress()`` is called
    after each point.  ``time_limit`` applies to each solve."""
    prog = EpsilonProgram(dag, fr.metric, backend, time_limit, threads)
    pts = fr.points
    res: list[Confirmation] = []
    # from the last point down: g(p_{k+1} - 1) is solved first and usually returns point k's
    # own plan, which then settles g(p_k) without another solve (see _point)
    for k in range(len(pts) - 1, -1, -1):
        prev = ("first", latency_limit) if k == 0 else pts[k - 1].latency
        above = None if k == len(pts) - 1 else prog.g(pts[k + 1].peak - 1)
        res.append(_point(prog, pts[k], prev, ram_cap if k == len(pts) - 1 else None, above))
        if progress is not None:
            progress()
    res.reverse()
    return res
