"""HiGHS adapter (highspy): the MIP is passed in one call as a row-wise sparse matrix."""
from __future__ import annotations

import os
import threading
import time

import numpy as np

from msfopt.formulations.model import (ERROR, FEASIBLE, GE, INFEASIBLE, LE, MIP, OPTIMAL,
                                       TIMEOUT, Solution)

from .base import Backend

_LOCK = threading.Lock()
_STATE = {"threads": None, "banner": False}


def _new_highs():
    """A silent Highs instance.  The first construction in a process prints a copyright banner on
    the C-level stdout before options can be set; swallow it."""
    import highspy
    if _STATE["banner"]:
        return highspy.Highs()
    import sys
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _STATE["banner"] = True
    return h


class HiGHSBackend(Backend):
    name = "highs"
    description = "HiGHS via highspy"

    def available(self) -> bool:
        try:
            import highspy  # noqa: F401
        except ImportError:
            return False
        return True

    def solve(self, mip: MIP, time_limit: float = 60.0, threads: int = 1) -> Solution:
        import highspy
        t0 = time.perf_counter()
        inf = highspy.kHighsInf
        n = mip.n_vars
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = mip.n_constraints
        cost = np.zeros(n)
        for k, c in mip.objective.items():
            cost[k] = c
        lp.col_cost_ = cost
        lp.col_lower_ = np.array([v.lb for v in mip.vars], dtype=float)
        lp.col_upper_ = np.array([v.ub for v in mip.vars], dtype=float)
        lo = np.empty(mip.n_constraints)
        hi = np.empty(mip.n_constraints)
        start = [0]
        index: list[int] = []
        value: list[float] = []
        for i, c in enumerate(mip.constraints):
            lo[i] = -inf if c.sense == LE else c.rhs
            hi[i] = inf if c.sense == GE else c.rhs
            index.extend(c.coeffs.keys())
            value.extend(c.coeffs.values())
            start.append(len(index))
        lp.row_lower_ = lo
        lp.row_upper_ = hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.array(start, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value, dtype=float)
        lp.integrality_ = [highspy.HighsVarType.kInteger if v.integer
                           else highspy.HighsVarType.kContinuous for v in mip.vars]
        threads = max(1, int(threads))
        with _LOCK:
            # HiGHS has one process-wide thread scheduler: a different thread count needs a reset
            if _STATE["threads"] not in (None, threads):
                highspy.Highs.resetGlobalScheduler(True)
            _STATE["threads"] = threads
            h = _new_highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("threads", threads)
            h.setOptionValue("time_limit", float(time_limit))
            # integral data: an absolute gap below 1 proves optimality
            h.setOptionValue("mip_rel_gap", 0.0)
            h.setOptionValue("mip_abs_gap", 0.5)
            # presolve off: on the path programs' tie-break stages (shortest paths over 1-2k
            # edges) HiGHS's presolve took 0.15-0.36 s of a 0.18-0.36 s solve, 0.03 s without
            h.setOptionValue("presolve", "off")
            h.passModel(lp)
            h.run()
            ms = h.getModelStatus()
            info = h.getInfo()
            has = info.primal_solution_status == 2  # kSolutionStatusFeasible
            vals = list(h.getSolution().col_value) if has else None
            bound = info.mip_dual_bound
        secs = time.perf_counter() - t0
        MS = highspy.HighsModelStatus
        if ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):  # every variable is bounded
            return Solution(INFEASIBLE, None, None, None, secs)
        if ms == MS.kOptimal and has:
            objective = float(mip.evaluate(mip.objective, vals))
            return Solution(OPTIMAL, vals, objective, objective, secs)
        if ms in (MS.kTimeLimit, MS.kInterrupt, MS.kIterationLimit, MS.kSolutionLimit,
                  MS.kObjectiveBound, MS.kObjectiveTarget, MS.kUnknown):
            if has:
                objective = float(mip.evaluate(mip.objective, vals))
                b = None if bound is None or abs(bound) == inf else float(bound)
                return Solution(FEASIBLE, vals, objective, b, secs, "time limit reached")
            return Solution(TIMEOUT, None, None, None, secs, "time limit reached without a solution")
        return Solution(ERROR, None, None, None, secs, h.modelStatusToString(ms))
