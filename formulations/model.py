"""A tiny backend-neutral mixed-integer linear program.

Formulations build a :class:`MIP`; a backend (``msfopt.backends``) only translates it to its
solver's API and returns a :class:`Solution`.  All coefficients are integers, so every backend,
including CP-SAT, can take every program exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LE, GE, EQ = "<=", ">=", "=="


@dataclass(slots=True)
class Var:
    name: str
    lb: int
    ub: int
    integer: bool = True


@dataclass
class Constraint:
    coeffs: dict[int, int]   # var index -> coefficient
    sense: str
    rhs: int
    name: str = ""
    _arrays: tuple | None = field(default=None, repr=False, compare=False)

    def arrays(self):
        """``coeffs`` as two int64 arrays (indices, coefficients), made once: rows shared by
        many programs (the path programs' flow and peak rows) are reduced with array ops."""
        if self._arrays is None:
            import numpy as np
            self._arrays = (np.fromiter(self.coeffs.keys(), dtype=np.int64, count=len(self.coeffs)),
                            np.fromiter(self.coeffs.values(), dtype=np.int64,
                                        count=len(self.coeffs)))
        return self._arrays


@dataclass
class MIP:
    name: str
    vars: list[Var] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    objective: dict[int, int] = field(default_factory=dict)   # minimised
    #: optional cache for :meth:`fix_zero`: per variable index, a Var equal to it fixed at 0
    #: (shared read-only by the copies of a program; built once per DAG by the path programs)
    zero_twins: list | None = None

    def add_var(self, name: str, lb: int, ub: int, integer: bool = True) -> int:
        self.vars.append(Var(name, int(lb), int(ub), integer))
        return len(self.vars) - 1

    def add(self, coeffs: dict[int, int], sense: str, rhs: int, name: str = "") -> None:
        if sense not in (LE, GE, EQ):
            raise ValueError(sense)
        self.constraints.append(Constraint({k: int(v) for k, v in coeffs.items() if v},
                                           sense, int(rhs), name))

    def minimize(self, coeffs: dict[int, int]) -> None:
        self.objective = {k: int(v) for k, v in coeffs.items() if v}

    def fix_zero(self, ks) -> None:
        """Fix the variables ``ks`` (indices) to 0.  New :class:`Var` objects: copies of a
        program share theirs."""
        vs = self.vars
        tw = self.zero_twins
        for k in ks:
            v = vs[k]
            if v.lb or v.ub:
                z = tw[k] if tw is not None and k < len(tw) else None
                vs[k] = z if z is not None and z.name == v.name else Var(v.name, 0, 0,
                                                                          v.integer)

    def copy(self) -> "MIP":
        return MIP(self.name, list(self.vars), list(self.constraints), dict(self.objective),
                   self.zero_twins)

    @property
    def n_vars(self) -> int:
        return len(self.vars)

    @property
    def n_constraints(self) -> int:
        return len(self.constraints)

    def evaluate(self, coeffs: dict[int, int], values: list[float]) -> int:
        return int(sum(c * round(values[k]) for k, c in coeffs.items()))


# solver statuses
OPTIMAL = "optimal"
FEASIBLE = "feasible"        # time limit hit with an incumbent; gap reported
INFEASIBLE = "infeasible"
TIMEOUT = "timeout"          # time limit hit without any incumbent
ERROR = "error"


@dataclass
class Solution:
    status: str
    values: list[float] | None
    objective: float | None
    bound: float | None
    seconds: float
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.status in (OPTIMAL, FEASIBLE) and self.values is not None

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        if self.objective == 0:
            return 0.0
        return abs(self.objective - self.bound) / max(1e-9, abs(self.objective))


@dataclass
class Reduced:
    """A program with its fixed variables (lb == ub) substituted out: ``mip`` over the free
    variables ``keep`` (original indices, in order), ``offset`` the objective's constant.  Exact:
    a fixed variable has one value in every feasible point.  ``infeasible`` when a row left with
    no free variable is violated by the fixed values."""
    mip: MIP
    keep: list[int]
    values: list[int]          # per original variable: its fixed value (free ones: 0)
    offset: int
    infeasible: bool = False

    def expand(self, sol: Solution) -> Solution:
        """``sol`` (of the reduced program) as a solution of the original program."""
        if sol.values is None:
            return sol
        vals = [float(v) for v in self.values]
        for i, k in enumerate(self.keep):
            vals[k] = sol.values[i]
        obj = None if sol.objective is None else sol.objective + self.offset
        bound = None if sol.bound is None else sol.bound + self.offset
        return Solution(sol.status, vals, obj, bound, sol.seconds, sol.message)


def reduce_fixed(mip: MIP) -> Reduced:
    """Substitute every fixed variable out of ``mip`` (see :class:`Reduced`).  The path programs
    fix most edge variables to 0 by exact bound arguments; without this, solvers with their
    presolve off (CP-SAT here) still carry them: on mbv2-w0.35's runtime DAG a tie-break stage
    has ~1k free of 7.4k variables."""
    fixed = [v.lb if v.lb == v.ub else None for v in mip.vars]
    keep = [k for k, f in enumerate(fixed) if f is None]
    new = [-1] * len(fixed)          # per original variable: its index among the free ones
    for i, k in enumerate(keep):
        new[k] = i
    nonzero = any(f for f in fixed if f is not None)
    m = MIP(mip.name, [mip.vars[k] for k in keep])
    bad = False
    append = m.constraints.append
    new_np = None
    for c in mip.constraints:
        rhs = c.rhs
        if nonzero:
            for k, a in c.coeffs.items():
                f = fixed[k]
                if f:
                    rhs -= a * f
        if len(c.coeffs) > 64:
            if new_np is None:
                import numpy as np
                new_np = np.asarray(new, dtype=np.int64)
            idx, val = c.arrays()
            ni = new_np[idx]
            sel = ni >= 0
            coeffs = dict(zip(ni[sel].tolist(), val[sel].tolist()))
        else:
            coeffs = {i: a for k, a in c.coeffs.items() if (i := new[k]) >= 0}
        if coeffs:
            append(Constraint(coeffs, c.sense, rhs, c.name))
        elif not ((c.sense == LE and 0 <= rhs) or (c.sense == GE and 0 >= rhs)
                  or (c.sense == EQ and rhs == 0)):
            bad = True
    offset = 0
    for k, a in mip.objective.items():
        f = fixed[k]
        if f is None:
            m.objective[new[k]] = a
        else:
            offset += a * f
    return Reduced(m, keep, [0 if f is None else f for f in fixed], offset, bad)
