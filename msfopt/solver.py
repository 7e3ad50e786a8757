"""``msfopt.solve``: build the fusion DAG, solve a path-selection program with a backend, cross-check
the answer against exact graph search, and return a :class:`~msfopt.plan.Plan`."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .dag import FusionDAG, build_dag
from .errors import CrossCheckError, InfeasibleError, InputError, SolverError
from .ir import Network
from .models import load_model
from .plan import Plan, PlanBlock
from .schedule import plan_layout
from .formulations.model import FEASIBLE, INFEASIBLE, OPTIMAL
from .formulations.path import latency_program, minmax_ram_program
from .backends import graph

OBJECTIVES = ("latency", "macs", "ram")
BACKENDS = ("cpsat", "cbc", "scip", "highs", "graph")


@dataclass
class Query:
    """What to optimise: ``kind`` "latency" (P2: min metric s.t. peak <= ram_cap) or "ram"
    (P1: min peak s.t. metric <= budget)."""
    kind: str
    metric: str
    ram_cap: float = math.inf
    budget: float = math.inf

    @property
    def budget_int(self) -> int | None:
        return None if math.isinf(self.budget) else int(math.floor(self.budget))


@dataclass
class Answer:
    status: str
    path: list[int]
    primary: int | None
    secondary: int | None
    seconds: float
    gap: float | None = None
    message: str = ""


def make_query(dag: FusionDAG, objective: str, ram: int | None = None,
               max_overhead: float | None = None, latency_budget: int | None = None) -> Query:
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})")
    lat_metric = "macs" if dag.cost_model == "msfcnn" else "cycles"
    if objective in ("latency", "macs"):
        if max_overhead is not None or latency_budget is not None:
            raise InputError("--max-overhead/--latency-budget go with --objective ram")
        metric = "macs" if objective == "macs" else lat_metric
        return Query("latency", metric, ram_cap=math.inf if ram is None else int(ram))
    if max_overhead is not None and latency_budget is not None:
        raise InputError("give either --max-overhead or --latency-budget, not both")
    if latency_budget is not None:
        return Query("ram", lat_metric, budget=float(latency_budget))
    f = math.inf if max_overhead is None else float(max_overhead)
    # the paper's comparison: MACs <= F * MAC_vanilla (floating-point product)
    budget = math.inf if math.isinf(f) else f * dag.vanilla_macs
    q = Query("ram", "macs", budget=budget)
    if ram is not None:
        q.ram_cap = int(ram)
    return q


def graph_answer(dag: FusionDAG, q: Query) -> Answer:
    if q.kind == "latency":
        r = graph.min_latency(dag, q.metric, q.ram_cap)
        return Answer("optimal" if r.feasible else INFEASIBLE, r.path, r.total, r.peak, r.seconds)
    r = graph.min_peak(dag, q.metric, q.budget)
    if r.feasible and r.peak > q.ram_cap:
        return Answer(INFEASIBLE, [], None, None, r.seconds)
    return Answer("optimal" if r.feasible else INFEASIBLE, r.path, r.peak, r.total, r.seconds)


def ilp_answer(dag: FusionDAG, q: Query, backend_name: str, time_limit: float = 60.0,
               threads: int = 1) -> Answer:
    from .backends.base import get_backend
    backend = get_backend(backend_name)
    if not backend.available():
        raise SolverError(f"backend {backend_name} is not available on this machine")
    if q.kind == "latency":
        prog = latency_program(dag, q.metric, q.ram_cap)
    else:
        prog = minmax_ram_program(dag, q.metric, q.budget_int)
        if not math.isinf(q.ram_cap):
            for e, k in prog.x.items():
                if dag.ram[e] > q.ram_cap:
                    prog.mip.vars[k].ub = 0
    t0 = time.perf_counter()
    s1 = backend.solve(prog.mip, time_limit=time_limit, threads=threads)
    if s1.status == INFEASIBLE:
        return Answer(INFEASIBLE, [], None, None, time.perf_counter() - t0)
    if not s1.has_solution:
        raise SolverError(f"{backend_name}: {s1.status} {s1.message}".strip())
    first = prog.mip.evaluate(prog.first_objective, s1.values)
    values, status, gap = s1.values, s1.status, s1.gap
    if s1.status == OPTIMAL:
        remaining = max(1.0, time_limit - (time.perf_counter() - t0))
        s2 = backend.solve(prog.second_stage(first), time_limit=remaining, threads=threads)
        if s2.has_solution:
            values = s2.values
            if s2.status != OPTIMAL:
                status, gap = FEASIBLE, s2.gap
        else:
            status = FEASIBLE
    path = prog.decode(dag, values)
    tot = dag.totals(path)
    lat = tot[q.metric]
    if q.kind == "latency":
        prim, sec = lat, tot["peak"]
    else:
        prim, sec = tot["peak"], lat
    return Answer(status, path, prim, sec, time.perf_counter() - t0, gap)


def answer(dag: FusionDAG, q: Query, backend: str, time_limit: float = 60.0,
           threads: int = 1) -> Answer:
    if backend == "graph":
        return graph_answer(dag, q)
    return ilp_answer(dag, q, backend, time_limit, threads)


def _infeasible(dag: FusionDAG, q: Query) -> InfeasibleError:
    min_ram = graph.min_feasible_ram(dag)
    if q.kind == "latency":
        return InfeasibleError(
            f"no plan fits in {int(q.ram_cap):,} B of RAM; the smallest feasible peak for "
            f"{dag.net.name} is {min_ram:,} B ({dag.cost_model} cost model, io={dag.io})",
            min_ram=min_ram)
    fastest = graph.min_latency(dag, q.metric)
    best = fastest.total
    what = f"{q.metric} <= {q.budget:,.0f}"
    msg = (f"no plan satisfies {what}; the least {q.metric} possible is {best:,} "
           f"(F = {best / dag.vanilla_macs:.6f})" if q.metric == "macs" else
           f"no plan satisfies {what}; the least {q.metric} possible is {best:,}")
    if not math.isinf(q.ram_cap):
        msg += f" and the smallest feasible peak is {min_ram:,} B"
    return InfeasibleError(msg, min_ram=min_ram, min_latency=best)


def prepare(model, cost_model: str = "runtime", io: str = "arena", mcu: str | None = None,
            ram=None, modes=None, tiles=None, patches=None, max_depth: int | None = None,
            dag: FusionDAG | None = None):
    """Load the model and build its DAG for a query: (network, DAG, RAM cap in bytes or None).
    ``--mcu`` supplies the cycle model and, without ``ram``, the RAM the plan may use."""
    from .units import parse_ram
    from .schedule import DEFAULT_MODES, DEFAULT_PATCHES, DEFAULT_TILES
    cycle_model = None
    if mcu is not None:
        from .mcu import get_profile
        prof = get_profile(mcu)
        cycle_model = prof.cycle_model()
        if ram is None:
            ram = prof.ram_bytes
    ram_b = None if ram is None else parse_ram(ram)
    net = dag.net if dag is not None else load_model(model)
    if dag is None:
        try:
            dag = build_dag(net, cost_model=cost_model, io=io, cycle_model=cycle_model,
                            modes=DEFAULT_MODES if modes is None else tuple(modes),
                            tiles=DEFAULT_TILES if tiles is None else tuple(tiles),
                            patches=DEFAULT_PATCHES if patches is None else tuple(patches),
                            max_depth=max_depth)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return net, dag, ram_b


def solve(model: "str | Network", objective: str = "latency", ram: "int | str | None" = None,
          max_overhead: float | None = None, latency_budget: int | None = None,
          backend: str = "cpsat", cost_model: str = "runtime", io: str = "arena",
          mcu: str | None = None, check: bool = True, time_limit: float = 60.0,
          threads: int | None = None, modes=None, tiles=None, patches=None,
          max_depth: int | None = None, dag: FusionDAG | None = None) -> Plan:
    """Plan the fusion of ``model`` (zoo name, .onnx/.tflite path or Network).

    Raises InputError (bad arguments), InfeasibleError, SolverError, CrossCheckError."""
    import os
    if threads is None:
        threads = max(1, min(8, os.cpu_count() or 1))
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    net, dag, ram_b = prepare(model, cost_model=cost_model, io=io, mcu=mcu, ram=ram, modes=modes,
                              tiles=tiles, patches=patches, max_depth=max_depth, dag=dag)
    q = make_query(dag, objective, ram_b, max_overhead, latency_budget)
    ans = answer(dag, q, backend, time_limit, threads)
    if ans.status == INFEASIBLE:
        raise _infeasible(dag, q)
    # The arena must hold the plan in exactly its peak: if in-place blocks leave the free space
    # too fragmented to pack, drop those variants and re-plan (rare; reported in the plan).
    excluded = 0
    for _ in range(MAX_REPLANS):
        if dag.cost_model != "runtime" or not _layout_overflows(dag, ans.path):
            break
        bad = [e for e in ans.path if dag.schedules[e].inplace_options]
        if not bad:
            break
        excluded += len(bad)
        dag = dag.without(bad)
        ans = answer(dag, q, backend, time_limit, threads)
        if ans.status == INFEASIBLE:
            raise _infeasible(dag, q)
    if dag.cost_model == "runtime" and _layout_overflows(dag, ans.path):
        bad = [e for e in range(dag.n_edges) if dag.schedules[e].inplace_options]
        excluded += len(bad)
        dag = dag.without(bad)
        ans = answer(dag, q, backend, time_limit, threads)
        if ans.status == INFEASIBLE:
            raise _infeasible(dag, q)
    cross = None
    if check:
        ref_backend = "cpsat" if backend == "graph" else "graph"
        ref = answer(dag, q, ref_backend, time_limit, threads)
        agree = (ref.status != INFEASIBLE and ref.primary == ans.primary
                 and ref.secondary == ans.secondary)
        cross = {"backend": ref_backend, "objective": ref.primary, "tiebreak": ref.secondary,
                 "agree": bool(agree), "seconds": round(ref.seconds, 6)}
        if not agree and ans.status == OPTIMAL and ref.status == OPTIMAL:
            raise CrossCheckError(
                f"{backend} claims optimum ({ans.primary}, {ans.secondary}) but {ref_backend} "
                f"finds ({ref.primary}, {ref.secondary}) for {net.name}")
    plan = make_plan(dag, ans, q, objective, backend, cross, mcu=mcu,
                     constraints={"ram_bytes": None if ram_b is None else ram_b,
                                  "max_overhead": max_overhead, "latency_budget": latency_budget,
                                  "metric": q.metric})
    plan.excluded_variants = excluded
    return plan


MAX_REPLANS = 8


def _layout_overflows(dag: FusionDAG, path: list[int]) -> bool:
    scheds = [dag.schedules[e] for e in path]
    return plan_layout(dag.net, scheds, dag.io).fallback



def make_plan(dag: FusionDAG, ans: Answer, q: Query, objective: str, backend: str,
              cross: dict | None, mcu: str | None = None, constraints: dict | None = None) -> Plan:
    net = dag.net
    blocks = [PlanBlock(first_layer=int(dag.src[e]), last_layer=int(dag.dst[e]) - 1,
                        mode=dag.mode[e], tile=int(dag.tile[e]), ram_bytes=int(dag.ram[e]),
                        macs=int(dag.macs[e]), est_cycles=int(dag.cycles[e])) for e in ans.path]
    tot = dag.totals(ans.path)
    van = dag.vanilla_path()
    vt = dag.totals(van)
    arena = None
    if dag.cost_model == "runtime":
        arena = plan_layout(net, [dag.schedules[e] for e in ans.path], dag.io).arena_bytes
    return Plan(
        model=net.name, status=ans.status, objective=objective, cost_model=dag.cost_model,
        io=dag.io, peak_ram_bytes=tot["peak"], macs=tot["macs"], vanilla_macs=net.vanilla_macs,
        mac_overhead=round(tot["macs"] / net.vanilla_macs, 6), est_cycles=tot["cycles"],
        blocks=blocks, backend=backend, solve_seconds=round(ans.seconds, 6), cross_check=cross,
        constraints=constraints or {}, arena_bytes=arena, vanilla_peak_bytes=vt["peak"],
        vanilla_cycles=vt["cycles"], gap=ans.gap, mcu=mcu, dtype=net.dtype,
        dag={"nodes": dag.n_nodes, "edges": dag.n_edges,
             "build_seconds": round(dag.build_seconds, 6)})
