"""msfopt: multi-stage patch-based fusion planning for CNNs on microcontrollers.

Library API::

    import msfopt
    plan = msfopt.solve("mbv2-w0.35", objective="latency", ram="64k")
    print(plan.peak_ram_bytes, plan.setting)
"""
__version__ = "0.1.0"

from .errors import (CrossCheckError, InfeasibleError, InputError,  # noqa: E402
                     MsfoptError, SolverError)


def solve(*args, **kwargs):
    """See :func:`msfopt.solver.solve`."""
    from .solver import solve as _solve
    return _solve(*args, **kwargs)


def solve_many(models_or_dags, queries, processes=1, **common):
    """See :func:`msfopt.batch.solve_many`: every query on every model, DAGs built once."""
    from .batch import solve_many as _many
    return _many(models_or_dags, queries, processes=processes, **common)


def load_model(spec, dtype="int8"):
    """Zoo name, .onnx or .tflite path -> :class:`msfopt.ir.Network`."""
    from .models import load_model as _load
    return _load(spec, dtype)


def build_dag(net, **kwargs):
    """See :func:`msfopt.dag.build_dag`."""
    from .dag import build_dag as _build
    return _build(net, **kwargs)


__all__ = ["solve", "solve_many", "load_model", "build_dag", "MsfoptError", "InputError", "InfeasibleError",
           "CrossCheckError", "SolverError", "__version__"]
