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


_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    _REGISTRY[cls.name] = cls
    return cls


def get_backend(name: str) -> Backend:
    from . import cpsat, cbc, scip, highs  # noqa: F401  (registration side effects)
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown backend {name!r} (choose from {', '.join(backend_names())})")


def backend_names() -> list[str]:
    from . import cpsat, cbc, scip, highs  # noqa: F401
    return list(_REGISTRY)
