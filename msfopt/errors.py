"""Errors with documented exit codes (see README, "Exit codes")."""
from __future__ import annotations


class MsfoptError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""
    exit_code = 1


class InputError(MsfoptError):
    """Bad input: unreadable/unsupported model, bad option value, unknown name."""
    exit_code = 2


class InfeasibleError(MsfoptError):
    """No plan satisfies the constraints."""
    exit_code = 3

    def __init__(self, message: str, min_ram: int | None = None, min_latency: int | None = None):
        super().__init__(message)
        self.min_ram = min_ram
        self.min_latency = min_latency


class CrossCheckError(MsfoptError):
    """A solver's claimed optimum disagrees with exact graph search."""
    exit_code = 4


class SolverError(MsfoptError):
    """The solver failed or hit its time limit without any feasible plan."""
    exit_code = 5


class BuildError(MsfoptError):
    """Compiling or running generated code failed."""
    exit_code = 6
