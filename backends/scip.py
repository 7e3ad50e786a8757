"""OR-Tools linear-solver (pywraplp) adapter with the SCIP that ships inside the ortools wheel."""
from __future__ import annotations

import time

from msfopt.formulations.model import (EQ, ERROR, FEASIBLE, GE, INFEASIBLE, LE, MIP, OPTIMAL,
                                       TIMEOUT, Solution)

from .base import Backend


def _solver():
    from ortools.linear_solver import pywraplp
    return pywraplp.Solver.CreateSolver("SCIP")


class SCIPBackend(Backend):
    name = "scip"
    description = "SCIP via OR-Tools pywraplp"

    def available(self) -> bool:
        try:
            return _solver() is not None
        except Exception:  # noqa: BLE001 - broken install: simply unavailable
            return False

    def solve(self, mip: MIP, time_limit: float = 60.0, threads: int = 1) -> Solution:
        from ortools.linear_solver import pywraplp
        t0 = time.perf_counter()
        s = _solver()
        if s is None:
            return Solution(ERROR, None, None, None, time.perf_counter() - t0, "SCIP unavailable")
        inf = s.infinity()
        xs = [s.IntVar(v.lb, v.ub, f"v{k}") if v.integer else s.NumVar(v.lb, v.ub, f"v{k}")
              for k, v in enumerate(mip.vars)]
        for c in mip.constraints:
            lo, hi = {LE: (-inf, c.rhs), GE: (c.rhs, inf), EQ: (c.rhs, c.rhs)}[c.sense]
            row = s.Constraint(float(lo), float(hi))
            for k, coef in c.coeffs.items():
                row.SetCoefficient(xs[k], float(coef))
        obj = s.Objective()
        for k, coef in mip.objective.items():
            obj.SetCoefficient(xs[k], float(coef))
        obj.SetMinimization()
        s.SetTimeLimit(max(1, int(round(float(time_limit) * 1000))))
        # SCIP is single-threaded in this build; the call is harmless (returns False) otherwise
        s.SetNumThreads(max(1, int(threads)))
        # integral data: prove optimality exactly (pywraplp's default relative gap is 1e-4,
        # i.e. thousands of MACs on the zoo models)
        params = pywraplp.MPSolverParameters()
        params.SetDoubleParam(params.RELATIVE_MIP_GAP, 0.0)
        s.SetSolverSpecificParametersAsString("limits/absgap = 0.5\n")
        st = s.Solve(params)
        secs = time.perf_counter() - t0
        if st == s.INFEASIBLE:
            return Solution(INFEASIBLE, None, None, None, secs)
        if st in (s.OPTIMAL, s.FEASIBLE):
            vals = [x.solution_value() for x in xs]
            objective = float(mip.evaluate(mip.objective, vals))
            bound = obj.BestBound()
            if st == s.OPTIMAL:
                return Solution(OPTIMAL, vals, objective, objective, secs)
            return Solution(FEASIBLE, vals, objective, float(bound), secs, "time limit reached")
        if st == s.NOT_SOLVED:
            return Solution(TIMEOUT, None, None, None, secs, "time limit reached without a solution")
        return Solution(ERROR, None, None, None, secs, f"SCIP status {st}")
