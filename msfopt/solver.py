"""``msfopt.solve``: build the fusion DAG, solve a path-selection program with a backend, cross-check
the answer against exact graph search, and return a :class:`~msfopt.plan.Plan`."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .dag import FusionDAG, build_dag
from .errors import CrossCheckError, InfeasibleError, InputError, SolverError
from .ir import Network
from .models import load_model
from .plan import Plan, PlanBlock, mac_overhead, plan_concat_slices
from .layout import ARENA_ALIGN, plan_layout
from .formulations.model import FEASIBLE, INFEASIBLE, OPTIMAL, Solution, reduce_fixed
from .formulations.path import latency_program, minmax_ram_program
from . import backends
from .backends import BACKENDS, graph

OBJECTIVES = ("latency", "macs", "ram")


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
        # clamped to int64: the solvers' integer bound (a float budget may round past it)
        return None if math.isinf(self.budget) else min(int(math.floor(self.budget)), 2 ** 63 - 1)


@dataclass
class Answer:
    status: str
    path: list[int]
    primary: int | None
    secondary: int | None
    seconds: float
    gap: float | None = None
    message: str = ""
    tertiary: int | None = None
    rejected: int = 0              # complete plans rejected because their layout does not pack
    gap_of: str | None = None      # which objective ``gap`` measures: "primary" or "tiebreak"
    # no plan among the MAX_LAYOUT_REJECTS best packs at its peak: this is the best plan, laid
    # out in the smallest larger arena plan_layout finds
    layout_fallback: bool = False

    @property
    def key(self) -> tuple:
        """The lexicographic objective value (primary, secondary, tertiary)."""
        return (self.primary, self.secondary, self.tertiary)


#: complete plans rejected (layout does not pack) before a query gives up (exit 5)
MAX_LAYOUT_REJECTS = 200

def make_query(dag: FusionDAG, objective: str, ram: int | None = None,
               max_overhead: float | None = None, latency_budget: int | None = None) -> Query:
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})")
    lat_metric = "macs" if dag.cost_model == "msfcnn" else "cycles"
    cap = math.inf if ram is None else _arena_cap(dag, int(ram))
    if objective in ("latency", "macs"):
        if max_overhead is not None or latency_budget is not None:
            raise InputError("--max-overhead/--latency-budget go with --objective ram")
        metric = "macs" if objective == "macs" else lat_metric
        return Query("latency", metric, ram_cap=cap)
    if max_overhead is not None and latency_budget is not None:
        raise InputError("give either --max-overhead or --latency-budget, not both")
    if latency_budget is not None:
        return Query("ram", lat_metric, budget=float(latency_budget), ram_cap=cap)
    f = math.inf if max_overhead is None else float(max_overhead)
    # the paper's comparison: MACs <= F * MAC_vanilla (floating-point product)
    budget = math.inf if math.isinf(f) else f * dag.vanilla_macs
    return Query("ram", "macs", budget=budget, ram_cap=cap)


def _arena_cap(dag: FusionDAG, ram: int) -> int:
    """The largest block peak whose generated arena fits in ``ram`` bytes.  The runtime model's
    arena is the peak rounded up to ARENA_ALIGN (the linked object's size), so peak <= cap is
    exactly "arena <= ram" when the cap is rounded down to that alignment."""
    if dag.cost_model != "runtime":
        return ram
    return ram - ram % ARENA_ALIGN


def _key_of(q: Query):
    if q.kind == "latency":
        return lambda r: (r.total, r.peak, r.tertiary)
    return lambda r: (r.peak, r.total, r.tertiary)


def graph_answer(dag: FusionDAG, q: Query, accept=None) -> Answer:
    """Exact graph search; with ``accept``, the best plan that ``accept`` takes (Lawler)."""
    t0 = time.perf_counter()

    def search(mask=None):
        if q.kind == "latency":
            return graph.min_latency(dag, q.metric, q.ram_cap, allowed=mask)
        r = graph.min_peak(dag, q.metric, q.budget, allowed=mask)
        if r.feasible and r.peak > q.ram_cap:
            return graph.SearchResult(False, [], None, None, r.seconds)
        return r

    rejected = 0
    if accept is None:
        r = search()
    else:
        r, rejected = graph.best_accepted(dag, search, _key_of(q), accept,
                                          max_paths=MAX_LAYOUT_REJECTS)
        # none of the best MAX_LAYOUT_REJECTS plans -- or no plan at all, when there are fewer --
        # packs at its peak: the best one, laid out larger
        fallback = r is None and rejected > 0
        if fallback:
            r = search()
    secs = time.perf_counter() - t0
    if r is None or not r.feasible:
        return Answer(INFEASIBLE, [], None, None, secs, rejected=rejected)
    prim, sec = (r.total, r.peak) if q.kind == "latency" else (r.peak, r.total)
    return Answer(OPTIMAL, r.path, prim, sec, secs, tertiary=r.tertiary, rejected=rejected,
                  layout_fallback=accept is not None and fallback)


def _program(dag: FusionDAG, q: Query, accept=None):
    upper = _known_plan(dag, q, accept)
    if q.kind == "latency":
        return latency_program(dag, q.metric, q.ram_cap, upper)
    return minmax_ram_program(dag, q.metric, q.budget_int, q.ram_cap, upper)


def _known_plan(dag: FusionDAG, q: Query, accept=None) -> tuple[int, int] | None:
    """(latency, peak) of the unfused plan when it satisfies the query (and ``accept`` takes it):
    an upper bound the formulations fix variables against (exact presolve; the plan is the
    trivial one, not the referee's answer)."""
    van = dag.vanilla_path()
    if not dag.is_path(van):
        return None
    tot = dag.totals(van)
    if tot["peak"] > q.ram_cap or tot[q.metric] > q.budget:
        return None
    if accept is not None and not accept(van):
        return None
    return tot[q.metric], tot["peak"]


def ilp_answer(dag: FusionDAG, q: Query, backend_name: str, time_limit: float = 60.0,
               threads: int = 1, accept=None) -> Answer:
    """Lexicographic solve (:func:`_ilp_rounds`) with ``backend_name``; with ``accept``, a plan it rejects
    is excluded by a no-good cut and the program re-solved, until a plan is accepted.  The time
    limit and the reported seconds cover every stage and every round."""
    backend = backends.get_backend(backend_name)
    if not backend.available():
        raise SolverError(f"backend {backend_name} is not available on this machine")
    t0 = time.perf_counter()
    prog = _program(dag, q, accept)
    rejected = 0
    best = None     # the first (best) answer, kept for the layout fallback
    while True:
        left = time_limit - (time.perf_counter() - t0)
        if rejected and left <= 0:
            raise SolverError(f"{backend_name}: time limit reached after {rejected} plans were "
                              f"rejected for their layout, without an accepted plan")
        left = max(left, 0.01 * time_limit)
        ans = _ilp_rounds(dag, q, prog, backend, backend_name, left, threads)
        if ans.status == INFEASIBLE and best is not None:
            # every plan was cut: none packs at its peak -- the best one, laid out larger
            ans = best
            ans.layout_fallback = True
            break
        if ans.status == INFEASIBLE or accept is None or accept(ans.path):
            break
        best = best or ans
        rejected += 1
        if rejected >= MAX_LAYOUT_REJECTS:
            # none of the best plans packs at its peak: the best one, laid out larger
            ans = best
            ans.layout_fallback = True
            break
        prog.add_no_good(ans.path)
    ans.seconds = time.perf_counter() - t0
    ans.rejected = rejected
    return ans


def _ilp_rounds(dag, q, prog, backend, backend_name, time_limit, threads) -> Answer:
    """One lexicographic solve of ``prog``: (first objective, second objective, tertiary).

    With CP-SAT (exact integer arithmetic) the first two stages of P2 become one program with the
    objective ``c * latency + peak`` (:meth:`PathProgram.combined`, exact when it fits in int64),
    then the tertiary stage.  P1, every other backend, and CP-SAT when the combination does not
    fit solve the three stages one after the other.  (Measured on the zoo: combining P1's peak
    with its latency, or its latency with the tertiary, makes CP-SAT slower, up to its time limit
    when a latency budget row is present: the scaled objective weakens its LP bound.)"""
    t0 = time.perf_counter()
    exact = backend_name in EXACT_INTEGER_BACKENDS
    tert = graph.tertiary_metric(q.metric)
    comb = prog.combined() if exact and prog.kind == "latency" else None
    s1 = _solve(backend, comb[0] if comb is not None else prog.first_stage(), time_limit, threads)
    if s1.status == INFEASIBLE:
        return Answer(INFEASIBLE, [], None, None, time.perf_counter() - t0)
    if not s1.has_solution:
        raise SolverError(f"{backend_name}: {s1.status} {s1.message}".strip())
    values, status, gap, gap_of = s1.values, s1.status, None, None

    def third():                    # latency and peak fixed at their optimum
        tot = dag.totals(prog.decode(dag, values))
        return prog.third_stage(tot[q.metric], tot["peak"])

    # the tertiary weight equals the latency weight on every edge (the paper's cost model, where
    # cycles are MACs): fixing the latency fixes it, so its stage is skipped
    tail = [] if np.array_equal(dag.weight(tert), dag.weight(q.metric)) else [third]
    if s1.status != OPTIMAL:
        gap, gap_of = s1.gap, "primary"
        if comb is not None:
            gap = _primary_gap(prog.mip.evaluate(prog.first_objective, values), s1.bound, comb[1])
        stages = []
    elif comb is not None:
        stages = tail
    else:
        first = prog.mip.evaluate(prog.first_objective, s1.values)
        # the first stage's own plan bounds the second objective (never the referee's answer)
        inc = prog.mip.evaluate(prog.second_objective, s1.values) if prog.kind == "ram" else None
        stages = [lambda: prog.second_stage(first, inc)] + tail
    for stage in stages:
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0:
            status, gap, gap_of = FEASIBLE, None, "tiebreak"
            break
        s = _solve(backend, stage(), left, threads)
        if s.has_solution:
            values = s.values
        if s.status != OPTIMAL:
            # the primary objective is proven optimal; a tie-break stage stopped early
            status, gap_of = FEASIBLE, "tiebreak"
            gap = s.gap if s.has_solution else None
            break
    path = prog.decode(dag, values)
    tot = dag.totals(path)
    lat = tot[q.metric]
    prim, sec = (lat, tot["peak"]) if q.kind == "latency" else (tot["peak"], lat)
    return Answer(status, path, prim, sec, time.perf_counter() - t0, gap,
                  tertiary=tot[tert], gap_of=gap_of)


def _solve(backend, mip, time_limit: float, threads: int) -> Solution:
    """``backend.solve`` on ``mip`` with its fixed variables substituted out (exact; the answer
    is mapped back to ``mip``'s variables).  Every backend gets the same reduced program."""
    t0 = time.perf_counter()
    red = reduce_fixed(mip)
    if red.infeasible:
        return Solution(INFEASIBLE, None, None, None, time.perf_counter() - t0)
    return red.expand(backend.solve(red.mip, time_limit=time_limit, threads=threads))


#: backends whose arithmetic is exact on integers: they take the first two lexicographic stages
#: as one combined objective
EXACT_INTEGER_BACKENDS = ("cpsat",)


def _primary_gap(value: int, bound: float | None, c: int) -> float | None:
    """The primary objective's relative gap from a combined solve's bound ``c * first + second``
    (0 <= second < c, so the least first objective is at least floor(bound / c))."""
    if bound is None or not math.isfinite(bound):
        return None
    lb = math.floor(bound / c)
    if value == 0:
        return 0.0
    return max(0.0, (value - lb) / abs(value))


def answer(dag: FusionDAG, q: Query, backend: str, time_limit: float = 60.0,
           threads: int = 1, accept=None) -> Answer:
    if backend == "graph":
        return graph_answer(dag, q, accept)
    return ilp_answer(dag, q, backend, time_limit, threads, accept)


def layout_acceptor(dag: FusionDAG):
    """``accept(path)``: True when the plan's arena layout packs at exactly its peak (runtime
    cost model; None for the paper's model, which has no layout).  Results are cached, so the
    solver and its referee pay for each distinct plan's layout search once."""
    if dag.cost_model != "runtime":
        return None
    cache: dict[tuple, bool] = {}

    def accept(path: list[int]) -> bool:
        k = tuple(path)
        if k not in cache:
            cache[k] = not _layout_overflows(dag, path)
        return cache[k]
    return accept


def _infeasible(dag: FusionDAG, q: Query, rejected: int = 0) -> InfeasibleError:
    if rejected:
        return InfeasibleError(
            f"no plan satisfies the query with an arena layout that packs ({rejected} plans "
            f"rejected for their layout)", min_ram=graph.min_feasible_ram(dag))
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
           f"(F = {mac_overhead(best, dag.vanilla_macs):.6f})" if q.metric == "macs" else
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
    from .modes import DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES
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
                            modes=FUSED_MODES if modes is None else tuple(modes),
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
    if threads is None:
        threads = backends.default_threads()
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    net, dag, ram_b = prepare(model, cost_model=cost_model, io=io, mcu=mcu, ram=ram, modes=modes,
                              tiles=tiles, patches=patches, max_depth=max_depth, dag=dag)
    q = make_query(dag, objective, ram_b, max_overhead, latency_budget)
    # The arena must hold the plan in exactly its peak: a plan whose layout does not pack (in-place
    # blocks can fragment the free space) is excluded and the next best taken -- by no-good cuts in
    # the ILP, by Lawler's enumeration in graph search -- so every backend answers the optimum among
    # plans that pack, on the same DAG.
    accept = layout_acceptor(dag)
    ans = answer(dag, q, backend, time_limit, threads, accept)
    if ans.status == INFEASIBLE:
        raise _infeasible(dag, q, ans.rejected)
    cross = None
    note = ""
    used = backend
    if check:
        ref_backend = "cpsat" if backend == "graph" else "graph"
        ref = answer(dag, q, ref_backend, time_limit, threads, accept)
        agree = ref.status != INFEASIBLE and ref.key == ans.key
        cross = {"backend": ref_backend, "objective": ref.primary, "tiebreak": ref.secondary,
                 "tiebreak2": ref.tertiary, "agree": bool(agree), "status": ref.status,
                 "seconds": round(ref.seconds, 6)}
        if not agree and ans.status == OPTIMAL and ref.status == OPTIMAL:
            raise CrossCheckError(
                f"{backend} claims optimum {_fmt_key(ans)} but {ref_backend} finds "
                f"{_fmt_key(ref)} for {net.name}")
        if (not agree and ans.status == FEASIBLE and ref.status == OPTIMAL
                and ref.key < ans.key):
            # the backend stopped early with a worse plan: return the referee's proven optimum
            note = (f"{backend} stopped at its time limit with {_fmt_key(ans)} "
                    f"({_fmt_gap(ans)}); returned {ref_backend}'s proven optimum {_fmt_key(ref)}")
            ref.seconds += ans.seconds
            ans, used = ref, ref_backend
            cross["agree"] = False
        elif agree and ans.status == FEASIBLE and ref.status == OPTIMAL:
            note = f"{backend} stopped at its time limit; {ref_backend} proves the plan optimal"
            ans.status, ans.gap, ans.gap_of = OPTIMAL, None, None
    plan = make_plan(dag, ans, q, objective, used, cross, mcu=mcu,
                     constraints={"ram_bytes": None if ram_b is None else ram_b,
                                  "max_overhead": max_overhead, "latency_budget": latency_budget,
                                  "metric": q.metric})
    plan.layout_rejected = ans.rejected
    if ans.layout_fallback:
        if ram_b is not None and plan.arena_bytes > ram_b:
            raise InfeasibleError(
                f"no arena layout packs at the peak of the {MAX_LAYOUT_REJECTS} best plans, and "
                f"the best one's smallest layout found needs {plan.arena_bytes:,} B > {ram_b:,} B",
                min_ram=graph.min_feasible_ram(dag))
        note = (note + "; " if note else "") + (
            f"no arena layout packs at the peak of the {MAX_LAYOUT_REJECTS} best plans (the "
            f"live tensors fragment the arena): the plan's arena is {plan.arena_bytes:,} B, "
            f"the smallest layout found, {plan.arena_bytes - plan.peak_ram_bytes:,} B above its peak")
    plan.note = note
    return plan


def _fmt_key(a: Answer) -> str:
    return "(" + ", ".join(f"{v:,}" for v in a.key if v is not None) + ")"


def _fmt_gap(a: Answer) -> str:
    if a.gap is None:
        return f"{a.gap_of or 'primary'} gap not known"
    return f"{a.gap_of or 'primary'} gap {a.gap:.2%}"


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
        mac_overhead=mac_overhead(tot["macs"], net.vanilla_macs), est_cycles=tot["cycles"],
        blocks=blocks, backend=backend, solve_seconds=round(ans.seconds, 6), cross_check=cross,
        constraints=constraints or {}, arena_bytes=arena, vanilla_peak_bytes=vt["peak"],
        vanilla_cycles=vt["cycles"], gap=ans.gap, gap_of=ans.gap_of, mcu=mcu, dtype=net.dtype,
        dag={"nodes": dag.n_nodes, "edges": dag.n_edges,
             "build_seconds": round(dag.build_seconds, 6)},
        outputs=[{"tensor": t, "shape": list(net.tensor_shape(t))} for t in net.output_ids],
        concat_slices=plan_concat_slices(net, dag.io) if dag.cost_model == "runtime" else [])
