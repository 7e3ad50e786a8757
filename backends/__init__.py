"""Solver adapters and the exact graph-search referee; the table of the adapters.

``ILP_ADAPTERS`` is the one list of the integer-programming backends: name -> (module of this
package, adapter class).  :func:`get_backend` imports only the adapter it is asked for, so a query
loads one solver library, and importing this package loads none.
"""
from __future__ import annotations

import os
from importlib import import_module

#: ILP backend name -> (module in msfopt.backends, its Backend subclass), in the order shown
ILP_ADAPTERS = {
    "cpsat": ("cpsat", "CPSATBackend"),
    "cbc": ("cbc", "CBCBackend"),
    "scip": ("scip", "SCIPBackend"),
    "highs": ("highs", "HiGHSBackend"),
}
#: the ILP backends by name
ILP_BACKENDS = tuple(ILP_ADAPTERS)
#: every backend a query can name: the ILP adapters and exact graph search
BACKENDS = ILP_BACKENDS + ("graph",)
#: solver threads by default are the machine's cores, at most this many
MAX_DEFAULT_THREADS = 8


def get_backend(name: str):
    """A new :class:`~msfopt.backends.base.Backend` for the ILP backend ``name``."""
    if name not in ILP_ADAPTERS:
        raise ValueError(f"unknown backend {name!r} (choose from {', '.join(ILP_BACKENDS)})")
    module, cls = ILP_ADAPTERS[name]
    return getattr(import_module(f".{module}", __name__), cls)()


def default_threads() -> int:
    """Solver threads when none are given: the machine's cores, 1..MAX_DEFAULT_THREADS."""
    return max(1, min(MAX_DEFAULT_THREADS, os.cpu_count() or 1))
