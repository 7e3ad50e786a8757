"""A tiny backend-neutral mixed-integer linear program.

Formulations build a :class:`MIP`; a backend (``msfopt.backends``) only translates it to its
solver's API and returns a :class:`Solution`.  All coefficients are integers, so every backend,
including CP-SAT, can take every program exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LE, GE, EQ = "<=", ">=", "=="


@dataclass
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


@dataclass
class MIP:
    name: str
    vars: list[Var] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    objective: dict[int, int] = field(default_factory=dict)   # minimised

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

    def copy(self) -> "MIP":
        return MIP(self.name, list(self.vars), list(self.constraints), dict(self.objective))

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
