"""Epsilon-constraint confirmation of an exact Pareto front through the solve driver.

The front itself is computed by graph search (:mod:`msfopt.backends.pareto`); here every point
(p, l) is checked with two integer programs solved by any backend through
:func:`msfopt.solver.answer`: min latency s.t. peak <= p must give (l, p), and min peak s.t.
latency <= l must give (p, l).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .backends.pareto import Front, ParetoPoint
from .solver import Query, answer


@dataclass
class Confirmation:
    peak: int
    latency: int
    p2: tuple            # (status, latency, peak) of min latency s.t. peak <= point's peak
    p1: tuple            # (status, peak, latency) of min peak s.t. latency <= point's latency
    ok: bool
    seconds: float
    message: str = ""


def confirm_point(dag, point: ParetoPoint, metric: str, backend: str = "cpsat",
                  time_limit: float = 60.0, threads: int = 1) -> Confirmation:
    """Epsilon-constraint confirmation of one front point with a backend."""
    t0 = time.perf_counter()
    a2 = answer(dag, Query("latency", metric, ram_cap=point.peak), backend, time_limit, threads)
    a1 = answer(dag, Query("ram", metric, budget=float(point.latency)), backend, time_limit,
                threads)
    ok = ((a2.status, a2.primary, a2.secondary) == ("optimal", point.latency, point.peak)
          and (a1.status, a1.primary, a1.secondary) == ("optimal", point.peak, point.latency))
    return Confirmation(point.peak, point.latency, (a2.status, a2.primary, a2.secondary),
                        (a1.status, a1.primary, a1.secondary), ok, time.perf_counter() - t0)


def confirm(dag, fr: Front, backend: str = "cpsat", time_limit: float = 60.0, threads: int = 1,
            progress=None) -> list[Confirmation]:
    """:func:`confirm_point` for every point of ``fr``; ``progress()`` is called after each."""
    res = []
    for p in fr.points:
        res.append(confirm_point(dag, p, fr.metric, backend, time_limit, threads))
        if progress is not None:
            progress()
    return res
