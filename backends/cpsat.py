"""OR-Tools CP-SAT adapter (integer coefficients only, which every msfopt program has)."""
from __future__ import annotations

import time

from ortools.sat.python import cp_model

from msfopt.formulations.model import (ERROR, FEASIBLE, GE, INFEASIBLE, LE, MIP, OPTIMAL,
                                       TIMEOUT, Solution)

from .base import Backend


class CPSATBackend(Backend):
    name = "cpsat"
    description = "OR-Tools CP-SAT"

    def solve(self, mip: MIP, time_limit: float = 60.0, threads: int = 1) -> Solution:
        t0 = time.perf_counter()
        m = cp_model.CpModel()
        xs = [m.new_int_var(v.lb, v.ub, v.name) if (v.lb, v.ub) != (0, 1) else m.new_bool_var(v.name)
              for v in mip.vars]
        for c in mip.constraints:
            expr = sum(coef * xs[k] for k, coef in c.coeffs.items())
            if c.sense == LE:
                m.add(expr <= c.rhs)
            elif c.sense == GE:
                m.add(expr >= c.rhs)
            else:
                m.add(expr == c.rhs)
        m.minimize(sum(coef * xs[k] for k, coef in mip.objective.items()))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = float(time_limit)
        solver.parameters.num_workers = max(1, int(threads))
        st = solver.solve(m)
        secs = time.perf_counter() - t0
        if st == cp_model.OPTIMAL:
            status = OPTIMAL
        elif st == cp_model.FEASIBLE:
            status = FEASIBLE
        elif st == cp_model.INFEASIBLE:
            return Solution(INFEASIBLE, None, None, None, secs)
        elif st == cp_model.UNKNOWN:
            return Solution(TIMEOUT, None, None, None, secs, "time limit reached without a solution")
        else:
            return Solution(ERROR, None, None, None, secs, solver.status_name(st))
        vals = [float(solver.value(x)) for x in xs]
        return Solution(status, vals, float(solver.objective_value),
                        float(solver.best_objective_bound), secs)
