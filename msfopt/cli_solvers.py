"""Solver-suite sub-commands (``compare``, ``pareto``)."""


def add_parsers(sub, add_solve_args) -> dict:
    return {}
