"""The one backend interface: translate a :class:`~msfopt.formulations.model.MIP`, solve it with a
time limit and a thread count, and report status, objective, bound and seconds."""
from __future__ import annotations

from msfopt.formulations.model import MIP, Solution


class Backend:
    name = "base"
    description = ""

    def available(self) -> bool:
        return True

    def solve(self, mip: MIP, time_limit: float = 60.0, threads: int = 1) -> Solution:
        raise NotImplementedError

