"""Exact arena placement with OR-Tools CP-SAT, for the plans the fast search of
:mod:`msfopt.layout` does not pack at their peak.

The problem is dynamic storage allocation with known lifetimes: every arena buffer (a full tensor,
or a block's scratch region) is a rectangle, its lifetime in block order (fixed) times its address
range (the unknown offset, ``size`` bytes).  Two buffers alive in a common block must not share a
byte (``NoOverlap2D``), and every buffer must end within the target arena.  The plan's peak (the
largest block's live bytes) is a lower bound on the arena, so the model is a pure feasibility
question at exactly that target: it either packs (then the arena is optimal) or CP-SAT proves it
cannot, or its time limit stops it first.

In-place writes (:class:`Alias`): an output that may overwrite a dying input sits at that input's
offset and occupies its own bytes only from the next block on (during its block the input's
rectangle covers it); an unfused block may instead write a fresh buffer, alive from its block on.
The solve is deterministic (one worker, a fixed seed and a *deterministic* time limit), so the same
plan always gets the same offsets: the solver's acceptance check, ``make_plan`` and the code
generator see one layout.  Results are cached by problem.

When nothing packs at the peak, :func:`minimize_layout` solves the same model as an optimisation:
the smallest arena (highest byte used) between the peak and a known packing (first-fit's), so a
plan whose buffers fragment still gets the smallest arena that exists, proven when CP-SAT
finishes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from math import gcd

#: a deterministic-time budget of this many CP-SAT units (about seconds) per placement problem
DEFAULT_TIME_LIMIT = 3.0
_CACHE_MAX = 4096
_cache: dict = {}


@dataclass(frozen=True)
class Rect:
    """One arena buffer: ``size`` bytes, alive during blocks ``start..end`` (inclusive)."""
    size: int
    start: int
    end: int


@dataclass(frozen=True)
class Alias:
    """Buffer ``out`` (produced in block ``rects[out].start``) may sit at the offset of one of
    ``sources`` (buffers whose life ends in that block, each at least as large as ``out``); it then
    occupies its bytes from the next block on.  With ``may_fresh`` it may also be placed on its
    own, alive from its block on; without, one of the sources must be chosen."""
    out: int
    sources: tuple[int, ...]
    may_fresh: bool


@dataclass(frozen=True)
class LayoutProblem:
    """Place every rect at an offset that is a multiple of ``unit`` so that no two buffers alive in
    a common block overlap and every buffer ends at or below ``target`` bytes."""
    rects: tuple[Rect, ...]
    aliases: tuple[Alias, ...]
    target: int
    unit: int = 1


@dataclass(frozen=True)
class ExactResult:
    status: str                       # "packed" | "infeasible" | "timeout"
    offsets: tuple[int, ...] | None   # byte offset per rect when packed
    seconds: float                    # wall time of the CP-SAT solve (0 when cached)


def solve_layout(prob: LayoutProblem, time_limit: float = DEFAULT_TIME_LIMIT) -> ExactResult:
    """Pack ``prob`` at its target with CP-SAT (cached: the same problem is solved once)."""
    key = (prob, float(time_limit))
    hit = _cache.get(key)
    if hit is not None:
        return ExactResult(hit.status, hit.offsets, 0.0)
    res = _solve(prob, time_limit)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = res
    return res


def minimize_layout(prob: LayoutProblem, upper: int,
                    time_limit: float = DEFAULT_TIME_LIMIT) -> ExactResult:
    """The smallest arena for ``prob``'s buffers: at least ``prob.target`` (a lower bound, e.g.
    the plan's peak), at most ``upper`` (an arena a packing is known to fit).  ``status`` is
    "optimal" (proven smallest), "packed" (a packing below ``upper``, not proven smallest),
    "timeout" (none better than ``upper`` found) or "infeasible" (not even ``upper`` packs);
    ``arena`` is the highest byte used.  Cached like :func:`solve_layout`."""
    key = ("min", prob, int(upper), float(time_limit))
    hit = _cache.get(key)
    if hit is not None:
        return MinResult(hit.status, hit.offsets, hit.arena, 0.0)
    res = _solve(prob, time_limit, upper=int(upper))
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = res
    return res


@dataclass(frozen=True)
class MinResult:
    status: str                       # "optimal" | "packed" | "timeout" | "infeasible"
    offsets: tuple[int, ...] | None   # byte offset per rect when a packing was found
    arena: int | None                 # its highest byte used
    seconds: float


def _solve(prob: LayoutProblem, time_limit: float, upper: int | None = None):
    """Feasibility at ``prob.target`` (``upper`` None: an :class:`ExactResult`) or the smallest
    extent between ``prob.target`` and ``upper`` (a :class:`MinResult`)."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    rects = prob.rects
    # work in units of the common divisor of every size and the alignment: a packing pushed down
    # as far as it goes has every offset a sum of sizes, so nothing is lost
    g = prob.unit
    for r in rects:
        g = gcd(g, r.size) if r.size else g
    g = max(g, 1)
    if any(r.size % prob.unit for r in rects):
        raise ValueError("every buffer size must be a multiple of the alignment unit")
    cap = (prob.target if upper is None else upper) // g
    if any(r.size // g > cap for r in rects):
        if upper is not None:
            return MinResult("infeasible", None, None, time.perf_counter() - t0)
        return ExactResult("infeasible", None, time.perf_counter() - t0)

    m = cp_model.CpModel()
    x = []
    for i, r in enumerate(rects):
        x.append(m.NewIntVar(0, cap - r.size // g, f"x{i}"))
    aliased = {a.out: a for a in prob.aliases}
    xs, ts = [], []     # address and time intervals of the boxes

    def box(i, start, present=None):
        r = rects[i]
        if r.size == 0 or start > r.end:
            return
        if present is None:
            xs.append(m.NewFixedSizeIntervalVar(x[i], r.size // g, f"a{i}_{start}"))
            ts.append(m.NewFixedSizeIntervalVar(start, r.end - start + 1, f"t{i}_{start}"))
        else:
            xs.append(m.NewOptionalFixedSizeIntervalVar(x[i], r.size // g, present,
                                                        f"a{i}_{start}"))
            ts.append(m.NewOptionalFixedSizeIntervalVar(start, r.end - start + 1, present,
                                                        f"t{i}_{start}"))

    for i, r in enumerate(rects):
        a = aliased.get(i)
        if a is None:
            box(i, r.start)
            continue
        lits = []
        for s in a.sources:
            b = m.NewBoolVar(f"alias{i}_{s}")
            m.Add(x[i] == x[s]).OnlyEnforceIf(b)
            lits.append(b)
        if a.may_fresh:
            fresh = m.NewBoolVar(f"fresh{i}")
            lits.append(fresh)
            box(i, r.start, fresh)
            box(i, r.start + 1, fresh.Not())
        else:
            box(i, r.start + 1)
        m.AddExactlyOne(lits)
    m.AddNoOverlap2D(ts, xs)
    if upper is not None:     # minimise the highest byte used, from the peak up
        top = m.NewIntVar(-(-prob.target // g), cap, "top")
        for i, r in enumerate(rects):
            if r.size:
                m.Add(top >= x[i] + r.size // g)
        m.Minimize(top)

    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = 1
    p.random_seed = 0
    p.max_deterministic_time = float(time_limit)
    p.max_time_in_seconds = 4.0 * float(time_limit) + 1.0   # a safety net only
    st = solver.Solve(m)
    secs = time.perf_counter() - t0
    if upper is not None:
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            offs = tuple(int(solver.Value(v)) * g for v in x)
            top_b = max([o + r.size for o, r in zip(offs, rects)] + [0])
            return MinResult("optimal" if st == cp_model.OPTIMAL else "packed", offs, top_b,
                             secs)
        return MinResult("infeasible" if st == cp_model.INFEASIBLE else "timeout", None, None,
                         secs)
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ExactResult("packed", tuple(int(solver.Value(v)) * g for v in x), secs)
    if st == cp_model.INFEASIBLE:
        return ExactResult("infeasible", None, secs)
    return ExactResult("timeout", None, secs)
