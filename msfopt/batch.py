"""``msfopt.solve_many``: many queries over many models, for NAS loops and sweeps.

Each model's fusion DAG is built once per distinct DAG setting (cost model, io, MCU, modes, tiles,
patches, max depth) and reused by every query that shares it; each query is then exactly
``msfopt.solve(model, dag=that DAG, **query)``, so a batch answer is the single answer.  With
``processes`` > 1 the models are spread over worker processes (one model's queries stay in one
process, next to its DAG).  A query that fails with an msfopt error (infeasible, bad input,
cross-check) yields that exception object in its slot instead of stopping the batch.
"""
from __future__ import annotations

from .errors import MsfoptError

#: solve() arguments that change the DAG (the rest only change the query)
DAG_KEYS = ("cost_model", "io", "mcu", "modes", "tiles", "patches", "max_depth")


def _dag_key(q: dict) -> tuple:
    out = []
    for k in DAG_KEYS:
        v = q.get(k)
        out.append(tuple(v) if isinstance(v, (list, tuple)) else v)
    return tuple(out)


def _solve_model(model, queries: list[dict], common: dict) -> list:
    from .dag import FusionDAG
    from .solver import prepare, solve
    dags: dict[tuple, FusionDAG] = {}
    given = model if isinstance(model, FusionDAG) else None
    results = []
    for q in queries:
        q = {**common, **q}
        if given is not None:
            dag = given
        else:
            key = _dag_key(q)
            if key not in dags:
                _, dags[key], _ = prepare(model, cost_model=q.get("cost_model", "runtime"),
                                          io=q.get("io", "arena"), mcu=q.get("mcu"),
                                          modes=q.get("modes"), tiles=q.get("tiles"),
                                          patches=q.get("patches"),
                                          max_depth=q.get("max_depth"))
            dag = dags[key]
        args = {k: v for k, v in q.items() if k not in DAG_KEYS or k == "mcu"}
        try:
            results.append(solve(dag.net, dag=dag, **args))
        except MsfoptError as exc:
            results.append(exc)
    return results


def _worker(job):
    model, queries, common = job
    return _solve_model(model, queries, common)


def solve_many(models_or_dags, queries: list[dict], processes: int | None = 1,
               **common) -> list[list]:
    """Answer every query on every model: ``result[i][k]`` is the
    :class:`~msfopt.plan.Plan` (or the :class:`~msfopt.errors.MsfoptError`) of
    ``msfopt.solve(models_or_dags[i], **common, **queries[k])``.

    ``models_or_dags``: zoo names, model paths, :class:`~msfopt.ir.Network` objects or prebuilt
    :class:`~msfopt.dag.FusionDAG` objects (a DAG fixes its cost model and io; DAG-setting keys
    in its queries are then ignored).  ``queries``: dicts of ``solve`` keyword arguments
    (objective, ram, max_overhead, latency_budget, backend, check, ...).  ``processes``: worker
    processes over the models (1 or None: this process)."""
    models = list(models_or_dags)
    queries = [dict(q) for q in queries]
    jobs = [(m, queries, common) for m in models]
    if not processes or processes <= 1 or len(models) <= 1:
        return [_worker(j) for j in jobs]
    import multiprocessing as mp
    with mp.get_context("spawn").Pool(min(processes, len(models))) as pool:
        return pool.map(_worker, jobs)
