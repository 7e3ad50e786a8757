"""OR-Tools CP-SAT adapter (integer coefficients only, which every msfopt program has).

The model is handed to the solver as one ``CpModelProto`` in protobuf text format, built from the
MIP's rows in a single string join, and solved through ``cp_model_helper.SolveWrapper`` -- the C++
layer under ``ortools.sat.python.cp_model``.  That module is not imported: it pulls in pandas
(0.3 s of start-up) only for its pandas-indexed helpers, and its per-term Python expression
objects cost more than the solve on the zoo's DAGs.  Presolve is off (see ``solve``).
"""
from __future__ import annotations

import time

from ortools.sat.python import cp_model_helper as cmh

from msfopt.formulations.model import (EQ, ERROR, FEASIBLE, GE, INFEASIBLE, LE, MIP, OPTIMAL,
                                       TIMEOUT, Solution)

from .base import Backend

_INT64_MIN = -(2 ** 63)
_INT64_MAX = 2 ** 63 - 1


def model_text(mip: MIP) -> str:
    """The CP-SAT ``CpModelProto`` of ``mip`` in protobuf text format."""
    parts = [f"variables {{ domain: [{v.lb}, {v.ub}] }}" for v in mip.vars]
    for c in mip.constraints:
        lo, hi = {LE: (_INT64_MIN, c.rhs), GE: (c.rhs, _INT64_MAX), EQ: (c.rhs, c.rhs)}[c.sense]
        ks = ", ".join(map(str, c.coeffs.keys()))
        cs = ", ".join(map(str, c.coeffs.values()))
        parts.append(f"constraints {{ linear {{ vars: [{ks}] coeffs: [{cs}] "
                     f"domain: [{lo}, {hi}] }} }}")
    if mip.objective:
        ks = ", ".join(map(str, mip.objective.keys()))
        cs = ", ".join(map(str, mip.objective.values()))
        parts.append(f"objective {{ vars: [{ks}] coeffs: [{cs}] }}")
    return "\n".join(parts)


class CPSATBackend(Backend):
    name = "cpsat"
    description = "OR-Tools CP-SAT"

    def solve(self, mip: MIP, time_limit: float = 60.0, threads: int = 1) -> Solution:
        t0 = time.perf_counter()
        proto = cmh.CpModelProto()
        if not proto.parse_text_format(model_text(mip)):   # pragma: no cover - our own text
            return Solution(ERROR, None, None, None, time.perf_counter() - t0,
                            "CP-SAT rejected the model text")
        params = cmh.SatParameters()
        params.max_time_in_seconds = float(time_limit)
        params.num_workers = max(1, int(threads))
        # CP-SAT's presolve (probing above all) costs more than it saves on path programs: on
        # the zoo's runtime DAGs and the long synthetic chains most queries run 1.5-4x faster
        # without it (the LP relaxation of a path program is already tight)
        params.cp_model_presolve = False
        # all rows in the LP from the start: a path program has few rows (one per node) and its
        # LP relaxation is what proves the bound; added lazily, CP-SAT first searches without
        # them (measured with scripts/bench_solve.py --cost-model runtime: median per query
        # mbv2-w0.35 1.46 -> 0.90 s, mcunetv2-vww5 0.46 -> 0.29 s; a 3,100-edge order DAG's
        # shortest-path tie-break 1.6 -> 0.12 s)
        params.add_lp_constraints_lazily = False
        # no probing either: with presolve off CP-SAT still probes every Boolean when the search
        # starts (on a 1,000-edge shortest-path tie-break: 0.14 s of a 0.17 s solve, 188k binary
        # clauses learned, none needed); measured on dumped stage models of mbv2-w0.35 and an
        # order DAG: 0.13-2.7 s -> 0.01-0.06 s per stage
        params.cp_model_probing_level = 0
        wrapper = cmh.SolveWrapper()
        wrapper.set_parameters(params)
        resp = wrapper.solve(proto)
        secs = time.perf_counter() - t0
        st = resp.status
        S = cmh.CpSolverStatus
        if st == S.OPTIMAL:
            status = OPTIMAL
        elif st == S.FEASIBLE:
            status = FEASIBLE
        elif st == S.INFEASIBLE:
            return Solution(INFEASIBLE, None, None, None, secs)
        elif st == S.UNKNOWN:
            return Solution(TIMEOUT, None, None, None, secs, "time limit reached without a solution")
        else:
            return Solution(ERROR, None, None, None, secs, str(st))
        vals = [float(v) for v in resp.solution]
        if mip.objective:
            obj, bound = float(resp.objective_value), float(resp.best_objective_bound)
        else:
            obj = bound = 0.0
        return Solution(status, vals, obj, bound, secs)
