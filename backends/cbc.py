"""PuLP adapter with PuLP's bundled COIN-OR CBC."""
from __future__ import annotations

import time
import warnings

import pulp

from msfopt.formulations.model import (ERROR, FEASIBLE, GE, INFEASIBLE, LE, MIP, OPTIMAL,
                                       TIMEOUT, Solution)

from .base import Backend


def _cbc_cmd(**kw):
    """PuLP's bundled CBC binary (PuLP 3.x; Python 3.11 cannot install PuLP 4)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(**kw)


class CBCBackend(Backend):
    name = "cbc"
    description = "COIN-OR CBC via PuLP"

    def available(self) -> bool:
        return bool(_cbc_cmd(msg=False).available())

    def solve(self, mip: MIP, time_limit: float = 60.0, threads: int = 1) -> Solution:
        t0 = time.perf_counter()
        prob = pulp.LpProblem(mip.name.replace("/", "_") or "msfopt", pulp.LpMinimize)
        xs = [prob.add_variable(f"v{k}", lowBound=v.lb, upBound=v.ub,
                                cat=pulp.LpInteger if v.integer else pulp.LpContinuous)
              for k, v in enumerate(mip.vars)]
        prob += pulp.lpSum(coef * xs[k] for k, coef in mip.objective.items())
        for i, c in enumerate(mip.constraints):
            expr = pulp.lpSum(coef * xs[k] for k, coef in c.coeffs.items())
            if c.sense == LE:
                prob += expr <= c.rhs, f"c{i}"
            elif c.sense == GE:
                prob += expr >= c.rhs, f"c{i}"
            else:
                prob += expr == c.rhs, f"c{i}"
        # integral data: an absolute gap below 1 proves optimality
        def run(options):
            solver = _cbc_cmd(msg=False, timeLimit=float(time_limit), threads=max(1, int(threads)),
                              gapRel=0.0, gapAbs=0.5, options=options)
            prob.solve(solver)
            return prob.status

        try:
            # preprocessing (Cgl) off: CBC 2.10.3's can wrongly call a feasible path program
            # infeasible ("Pre-processing says infeasible", seen on a 4-op order DAG whose edges
            # all have the same RAM), and without it the zoo's queries run faster
            # (scripts/bench_solve.py --backends cbc: median mbv2-w0.35 runtime 305 -> 263 ms,
            # msfcnn 85 -> 69 ms over the models)
            st = run(["preprocess off"])
        except pulp.PulpSolverError as exc:  # pragma: no cover - solver binary problems
            return Solution(ERROR, None, None, None, time.perf_counter() - t0, str(exc))
        secs = time.perf_counter() - t0
        sol_status = getattr(prob, "sol_status", None)
        if st == pulp.LpStatusInfeasible:
            if secs >= 0.9 * float(time_limit):
                # CBC sometimes writes "Integer infeasible" when its clock runs out mid-search
                # (seen on 1000-layer chains with a 1 s limit): not a proof of infeasibility
                return Solution(TIMEOUT, None, None, None, secs,
                                "time limit reached without a solution")
            return Solution(INFEASIBLE, None, None, None, secs)
        vals = [x.value() for x in xs]
        have = all(v is not None for v in vals)
        if st == pulp.LpStatusOptimal and sol_status == pulp.LpSolutionOptimal and have:
            status = OPTIMAL
        elif have and sol_status in (pulp.LpSolutionIntegerFeasible, pulp.LpSolutionOptimal):
            status = FEASIBLE
        elif st == pulp.LpStatusNotSolved or not have:
            return Solution(TIMEOUT, None, None, None, secs, "time limit reached without a solution")
        else:
            return Solution(ERROR, None, None, None, secs, pulp.LpStatus.get(st, str(st)))
        vals = [float(v) for v in vals]
        obj = float(sum(c * round(vals[k]) for k, c in mip.objective.items()))
        bound = obj if status == OPTIMAL else None
        return Solution(status, vals, obj, bound, secs)
