"""Execution order x fusion as one compact CP-SAT model (no state enumeration), for wide graphs.

The downset search of :mod:`msfopt.order` enumerates every executed-op set; on graphs with many
parallel branches (Inception-like blocks) their number explodes.  This module states the same
problem as a constraint program over *positions*, in the spirit of MODeL (Steiner et al., ICML'23),
extended to the choice of fused blocks:

* ``x[o, k]``: op ``o`` runs at position ``k`` (an assignment: one op per position, one position
  per op, restricted to the op's ASAP/ALAP window); precedences in cumulative form
  (``o`` at or before ``k`` implies each predecessor before ``k``);
* ``y[v]``: block variant ``v`` is used -- one op unfused (an elementwise op or reshape may also
  run over a dying input), or a fused variant of a maximal fusable chain (every variant of
  :func:`msfopt.order.fused_variants`, dominated ones dropped); each op is covered by exactly one
  chosen variant; a fused variant's ops occupy consecutive positions and it starts right after the
  producer of its input (the "fused blocks read the newest tensor" rule), or at position 0 when it
  reads the network input;
* in-place legality is a conditional precedence: every other reader of the overwritten tensor runs
  earlier;
* ``live[t, k]`` >= "t produced before k" and ("t is a graph output" or "a reader of t runs at or
  after k"): only lower bounds are needed, as liveness only ever raises a RAM row;
* at a position ``k`` where a block starts: ``sum_t bytes(t) live[t, k] + extra(block) <= peak``,
  extra = the block's output (unless it overwrites its input) + its scratch -- exactly the
  downset model's edge RAM (``L(S)`` with ``S`` = the ops at positions ``< k``);
* MACs and cycles are the variants' intrinsic figures, summed.

Objectives are lexicographic like :attr:`msfopt.solver.Answer.key`, solved in stages (each stage
fixes the previous optimum and is hinted with the previous solution): min RAM = (peak, metric,
tertiary), min latency under a RAM cap = (metric, peak, tertiary).  The first stage is hinted with
the best starting plan: the file's order and two greedy list-scheduling orders, each fused
optimally (chain fusion DAG, exact graph search); the answer is never worse than that plan, so
never worse than ``--order fixed``: when CP-SAT stops early without beating it, it is returned,
with the gap to CP-SAT's bound (or to a static bound: every op's cheapest block).  The decoded
plan is re-evaluated by direct simulation of the cost model (:func:`evaluate`); a plan worse than
the program's value is an error.

``tests/test_order_compact.py`` checks the optimum against the downset search
(:func:`msfopt.order.best_order`) on random DAG CNNs and shared models.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .cycles import CycleModel
from .errors import InputError, SolverError
from .ir import ELEMENTWISE_OPS, RESHAPE, Network
from .modes import DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES, unfused_schedule
from .order import fused_variants
from .schedule import IO_MODES, Liveness, without_slices

OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN = "optimal", "feasible", "infeasible", "unknown"


@dataclass(frozen=True)
class BlockVariant:
    """One candidate block: its ops (original indices, in execution order), mode, tile, the RAM
    it adds on top of the live set (``extra``), intrinsic MACs / cycles, and its in-place
    condition: ``dies`` = the tensor it overwrites (every other reader must run earlier)."""
    ops: tuple[int, ...]
    mode: str
    tile: int
    extra: int
    macs: int
    cycles: int
    dies: int | None = None


@dataclass
class CompactAnswer:
    """``order``: the original op index run at each position; ``blocks``: (first, last, mode, tile)
    on the network reordered by ``order``; ``key``: (primary, secondary, tertiary) as
    :attr:`msfopt.solver.Answer.key`; ``gap``: the primary objective's relative gap (0 when
    proven); ``gap_of`` "primary" / "tiebreak" when a stage stopped early."""
    status: str
    order: list[int] = field(default_factory=list)
    blocks: list[tuple[int, int, str, int]] = field(default_factory=list)
    key: tuple = (None, None, None)
    gap: float | None = None
    seconds: float = 0.0
    gap_of: str | None = None
    bound: int | None = None
    variants: int = 0
    source: str = "cpsat"          # "cpsat", or "start": a starting plan CP-SAT did not beat
    stage_seconds: list[float] = field(default_factory=list)


# -- the candidate blocks and the liveness facts ------------------------------------------------

@dataclass
class _Facts:
    n: int
    cons: list[list[int]]          # readers of each tensor (deduplicated, ascending)
    outs: set[int]
    cbytes: list[int]              # counted bytes of each tensor (0 when not in the arena)
    preds: list[list[int]]         # predecessor ops of each op
    variants: list[BlockVariant]


@without_slices
def block_variants(net: Network, io: str = "arena", cycle_model: CycleModel | None = None,
                   modes=FUSED_MODES, tiles=DEFAULT_TILES, patches=DEFAULT_PATCHES,
                   max_depth: int | None = None) -> _Facts:
    """Every block variant of the order DAG's cost model with its state-independent costs, and
    the liveness facts the RAM rows need.  Dominated variants (same ops and in-place condition,
    no better in extra RAM, MACs and cycles) are dropped: they never improve a plan."""
    if io not in IO_MODES:
        raise InputError(f"io must be one of {', '.join(IO_MODES)}")
    cm = cycle_model or CycleModel()
    n = net.n_layers
    live = Liveness(net, io)
    cons = [sorted(set(c)) for c in live.consumers]
    outs = set(net.output_ids)
    counted, tb = live.counted, live.tbytes
    cbytes = [tb[t] if counted[t] else 0 for t in range(n + 1)]
    preds = [sorted({t - 1 for t in L.srcs if t > 0}) for L in net.layers]
    vs: list[BlockVariant] = []
    for o, L in enumerate(net.layers):
        s = unfused_schedule(net, live, o)
        cyc = cm.cycles(net, s)
        out_t = o + 1
        vs.append(BlockVariant((o,), "unfused", 0, cbytes[out_t], L.macs, cyc))
        if L.op == RESHAPE or L.op in ELEMENTWISE_OPS:
            for t in dict.fromkeys(L.srcs):
                if t not in outs and counted[t] == counted[out_t] and (
                        L.op == RESHAPE or net.tensor_shape(t) == tuple(L.out_shape)):
                    vs.append(BlockVariant((o,), "unfused", 0, 0, L.macs, cyc, dies=t))
    for first, fv in fused_variants(net, cm, modes, tiles, patches, max_depth).items():
        for v in fv:
            t_in = net.layers[first].srcs[0]
            dies = None
            if v.overwrites_input == "dies":
                if t_in in outs or not counted[t_in] or not counted[v.ops[-1] + 1]:
                    continue
                dies = t_in
            elif v.overwrites_input == "sole":
                if cons[t_in] != [first] or not counted[t_in] or not counted[v.ops[-1] + 1]:
                    continue
            extra = v.scratch + (0 if v.overwrites_input else cbytes[v.ops[-1] + 1])
            vs.append(BlockVariant(tuple(v.ops), v.mode, int(v.tile), int(extra), int(v.macs),
                                   int(v.cycles), dies=dies))
    return _Facts(n, cons, outs, cbytes, preds, _undominated(vs))


def _undominated(vs: list[BlockVariant]) -> list[BlockVariant]:
    groups: dict[tuple, list[BlockVariant]] = {}
    for v in vs:
        groups.setdefault(v.ops, []).append(v)
    kept = []
    for grp in groups.values():
        grp.sort(key=lambda v: (v.extra, v.macs, v.cycles, v.dies is not None))
        front: list[BlockVariant] = []
        for v in grp:
            # a dominates v when no worse everywhere and no more constrained
            if any(a.extra <= v.extra and a.macs <= v.macs and a.cycles <= v.cycles
                   and (a.dies is None or a.dies == v.dies) for a in front):
                continue
            front.append(v)
        kept.extend(front)
    return kept


# -- direct evaluation of a plan (the cost model, state by state) --------------------------------

def evaluate(net: Network, facts: _Facts, order, chosen) -> tuple[int, int, int]:
    """(peak, MACs, cycles) of the plan that runs ``chosen`` (variants, in execution order) with
    ops in ``order``; raises SolverError when the plan breaks a rule of the cost model."""
    n = facts.n
    pos = {o: k for k, o in enumerate(order)}
    done: set[int] = set()
    peak = macs = cyc = 0
    k = 0
    prev_last = None
    for v in chosen:
        if list(v.ops) != list(order[k:k + len(v.ops)]):
            raise SolverError("compact model: a block's ops are not consecutive in the order")
        for i, o in enumerate(v.ops):
            if any(p not in done and p not in v.ops[:i] for p in facts.preds[o]):
                raise SolverError("compact model: the order is not topological")
        if v.mode != "unfused":
            t_in = net.layers[v.ops[0]].srcs[0]
            if not ((t_in == 0 and k == 0) or (t_in > 0 and prev_last == t_in - 1)):
                raise SolverError("compact model: a fused block does not read the newest tensor")
        if v.dies is not None and any(c not in done and c != v.ops[0]
                                      for c in facts.cons[v.dies]):
            raise SolverError("compact model: an in-place block overwrites a tensor still read")
        base = sum(facts.cbytes[t] for t in range(n + 1)
                   if (t == 0 or (t - 1) in done)
                   and (t in facts.outs or any(c not in done for c in facts.cons[t])))
        peak = max(peak, base + v.extra)
        macs += v.macs
        cyc += v.cycles
        done.update(v.ops)
        prev_last = v.ops[-1]
        k += len(v.ops)
    if k != n or len(pos) != n:
        raise SolverError("compact model: the plan does not run every op once")
    return peak, macs, cyc


# -- the CP-SAT model ---------------------------------------------------------------------------

def _windows(net: Network, facts: _Facts):
    """ASAP / ALAP position of each op: its ancestors run before it, its descendants after."""
    n = facts.n
    succ = [[] for _ in range(n)]
    for o in range(n):
        for p in facts.preds[o]:
            succ[p].append(o)
    anc = [0] * n
    anc_sets: list[set[int]] = [set() for _ in range(n)]
    for o in range(n):            # ops are numbered topologically
        for p in facts.preds[o]:
            anc_sets[o] |= anc_sets[p] | {p}
        anc[o] = len(anc_sets[o])
    desc_sets: list[set[int]] = [set() for _ in range(n)]
    for o in reversed(range(n)):
        for s in succ[o]:
            desc_sets[o] |= desc_sets[s] | {s}
    lo = anc
    hi = [n - 1 - len(desc_sets[o]) for o in range(n)]
    if net.tail_softmax is not None:
        lo[n - 1] = hi[n - 1] = n - 1
        for o in range(n - 1):
            hi[o] = min(hi[o], n - 2)
    return lo, hi


class _Model:
    def __init__(self, net: Network, facts: _Facts, q):
        from ortools.sat.python import cp_model
        self.cp = cp_model
        m = self.m = cp_model.CpModel()
        self.net, self.f, self.q = net, facts, q
        n = facts.n
        lo, hi = self.lo, self.hi = _windows(net, facts)
        x = self.x = [{k: m.NewBoolVar(f"x{o}_{k}") for k in range(lo[o], hi[o] + 1)}
                      for o in range(n)]
        for o in range(n):
            m.AddExactlyOne(x[o].values())
        for k in range(n):
            m.AddExactlyOne(x[o][k] for o in range(n) if k in x[o])
        self.pos = [sum(k * b for k, b in x[o].items()) for o in range(n)]

        def before(o, k):            # "op o runs at a position < k" (linear, 0/1)
            return sum(b for j, b in x[o].items() if j < k)

        def at_or_after(o, k):
            return sum(b for j, b in x[o].items() if j >= k)
        self.before, self.at_or_after = before, at_or_after
        # precedences, cumulative form: o at <= k  =>  p before k
        for o in range(n):
            for p in facts.preds[o]:
                for k in range(lo[o], hi[o] + 1):
                    m.Add(sum(b for j, b in x[o].items() if j <= k) <= before(p, k))
        # block variants
        V = self.V = facts.variants
        y = self.y = [m.NewBoolVar(f"y{i}") for i in range(len(V))]
        cover = [[] for _ in range(n)]
        starts = [[] for _ in range(n)]
        for i, v in enumerate(V):
            for o in v.ops:
                cover[o].append(y[i])
            starts[v.ops[0]].append(i)
            for a, b in zip(v.ops, v.ops[1:]):
                m.Add(self.pos[b] == self.pos[a] + 1).OnlyEnforceIf(y[i])
            if v.mode != "unfused":
                t_in = net.layers[v.ops[0]].srcs[0]
                if t_in == 0 and 0 in x[v.ops[0]]:
                    m.AddImplication(y[i], x[v.ops[0]][0])
                elif t_in == 0:
                    m.Add(y[i] == 0)
                else:
                    m.Add(self.pos[v.ops[0]] == self.pos[t_in - 1] + 1).OnlyEnforceIf(y[i])
            if v.dies is not None:
                for c in facts.cons[v.dies]:
                    if c != v.ops[0]:
                        m.Add(self.pos[c] + 1 <= self.pos[v.ops[0]]).OnlyEnforceIf(y[i])
        for o in range(n):
            m.AddExactlyOne(cover[o])
        self.start = [sum(y[i] for i in starts[o]) for o in range(n)]
        # which fused variants keep tensor t inside a block (t never materialises then)
        inner = [[] for _ in range(n + 1)]
        for i, v in enumerate(V):
            for a in v.ops[:-1]:
                inner[a + 1].append(y[i])
        # liveness lower bounds: live[t, k] >= produced-before-k and (graph output or read at or
        # after k), minus "t is a fused block's intermediate"
        live_terms = [[] for _ in range(n)]
        for t in range(n + 1):
            if facts.cbytes[t] == 0 or (t not in facts.outs and not facts.cons[t]):
                continue
            fused_t = sum(inner[t])
            for k in range(n):
                if t > 0 and k <= lo[t - 1]:
                    continue               # not produced yet at k
                prod = 1 if t == 0 else before(t - 1, k)
                if t in facts.outs:
                    rows = [prod - fused_t]
                else:
                    rows = [prod + at_or_after(c, k) - 1 - fused_t
                            for c in facts.cons[t] if hi[c] >= k]
                if not rows:
                    continue
                lv = m.NewBoolVar(f"l{t}_{k}")
                for r in rows:
                    m.Add(lv >= r)
                live_terms[k].append(facts.cbytes[t] * lv)
        # z[v, k]: variant v starts at position k; its extra RAM is added to row k.  The row holds
        # at every position: inside a fused block the live set is a subset of the block start's
        # (the block's intermediates are excluded above), so it never binds there.
        extra_terms = [[] for _ in range(n)]
        for i, v in enumerate(V):
            xs = x[v.ops[0]]
            if v.extra == 0:
                continue
            zs = []
            for k, b in xs.items():
                z = m.NewBoolVar(f"z{i}_{k}")
                m.Add(z >= b + y[i] - 1)
                zs.append(z)
                extra_terms[k].append(v.extra * z)
            m.Add(sum(zs) <= y[i])
        ub = sum(facts.cbytes) + max(v.extra for v in V)
        self.peak_lb = self._static_bound(net, facts)
        self.peak = m.NewIntVar(self.peak_lb, ub, "peak")
        for k in range(n):
            m.Add(sum(live_terms[k]) + sum(extra_terms[k]) <= self.peak)
        self.macs = sum(v.macs * y[i] for i, v in enumerate(V))
        self.cycles = sum(v.cycles * y[i] for i, v in enumerate(V))
        if not math.isinf(q.ram_cap):
            m.Add(self.peak <= int(q.ram_cap))
        if q.budget_int is not None:
            m.Add(self.metric(q.metric) <= q.budget_int)

    @staticmethod
    def _static_bound(net, facts) -> int:
        """A valid lower bound on the peak: every op runs in some block, whose row holds at least
        its first op's inputs and its extra RAM."""
        best: dict[int, int] = {}
        for v in facts.variants:
            lb = v.extra + sum(facts.cbytes[t] for t in set(net.layers[v.ops[0]].srcs))
            for o in v.ops:
                best[o] = min(best.get(o, lb), lb)
        return max(best.values())

    def metric(self, name):
        return {"macs": self.macs, "cycles": self.cycles, "peak": self.peak}[name]

    def hint(self, order, chosen_idx):
        m = self.m
        m.ClearHints()
        pos = {o: k for k, o in enumerate(order)}
        for o in range(self.f.n):
            for k, b in self.x[o].items():
                m.AddHint(b, int(pos[o] == k))
        chosen = set(chosen_idx)
        for i, b in enumerate(self.y):
            m.AddHint(b, int(i in chosen))

    def solve(self, time_limit, threads):
        s = self.cp.CpSolver()
        s.parameters.max_time_in_seconds = max(0.01, float(time_limit))
        s.parameters.num_workers = max(1, int(threads))
        st = s.Solve(self.m)
        return s, st

    def decode(self, s):
        n = self.f.n
        order = [0] * n
        for o in range(n):
            order[next(k for k, b in self.x[o].items() if s.BooleanValue(b))] = o
        idx = [i for i, b in enumerate(self.y) if s.BooleanValue(b)]
        first = {self.V[i].ops[0]: i for i in idx}
        chosen = [first[o] for o in order if o in first]
        return order, chosen


def _order_plan(net, facts, q, order, io, cycle_model, modes, tiles, patches, max_depth):
    """The best plan of one fixed ``order`` (the chain fusion DAG of the reordered network, exact
    graph search) as (order, variant indices), or None when it does not satisfy the query."""
    from .dag import build_dag
    from .order import reorder
    from .solver import INFEASIBLE as S_INF, graph_answer
    try:
        dag = build_dag(reorder(net, order), io=io, cycle_model=cycle_model, modes=modes,
                        tiles=tiles, patches=patches, max_depth=max_depth)
    except (ValueError, InputError):
        return None
    a = graph_answer(dag, q)
    if a.status == S_INF:
        return None
    by_key: dict[tuple, list[int]] = {}
    for i, v in enumerate(facts.variants):
        by_key.setdefault((v.ops, v.mode, v.tile), []).append(i)
    chosen, done = [], set()
    for e in a.path:
        ops = tuple(order[int(dag.src[e]):int(dag.dst[e])])
        cands = by_key.get((ops, dag.mode[e], int(dag.tile[e])), [])
        ok = [i for i in cands if facts.variants[i].dies is None
              or all(c in done or c == ops[0] for c in facts.cons[facts.variants[i].dies])]
        if not ok:   # pruned as dominated: an unconditional variant of the same ops
            ok = [i for i, v in enumerate(facts.variants) if v.ops == ops and v.dies is None
                  and (v.mode == "unfused" or v.mode == dag.mode[e])]
        if not ok:
            return None
        chosen.append(min(ok, key=lambda i: (facts.variants[i].extra, facts.variants[i].cycles)))
        done.update(ops)
    return list(order), chosen


def _greedy_orders(net, facts) -> list[list[int]]:
    """Two list-scheduling orders (every op unfused): at each step the ready op whose run needs
    the least RAM (then leaves the least live), and the one that leaves the least live (then
    needs the least RAM).  Starting points only; the chain DAG then fuses each of them."""
    n = facts.n
    last = n - 1 if net.tail_softmax is not None else None

    def live(done):
        return sum(facts.cbytes[t] for t in range(n + 1) if (t == 0 or (t - 1) in done)
                   and (t in facts.outs or any(c not in done for c in facts.cons[t])))
    orders = []
    for crit in (0, 1):
        done: set[int] = set()
        order = []
        while len(order) < n:
            base = live(done)
            best = None
            for o in range(n):
                if o in done or any(p not in done for p in facts.preds[o]) or (
                        o == last and len(done) < n - 1):
                    continue
                ram = base + facts.cbytes[o + 1]
                after = live(done | {o})
                score = (ram, after, o) if crit == 0 else (after, ram, o)
                best = score if best is None or score < best else best
            order.append(best[2])
            done.add(best[2])
        orders.append(order)
    return orders


@without_slices
def solve_compact(net: Network, query, time_limit: float = 60.0, io: str = "arena",
                  cycle_model: CycleModel | None = None, modes=FUSED_MODES, tiles=DEFAULT_TILES,
                  patches=DEFAULT_PATCHES, max_depth: int | None = None,
                  threads: int = 1) -> CompactAnswer:
    """An optimal (order, fusion) plan of ``net`` for ``query`` (a :class:`msfopt.solver.Query`,
    e.g. from :func:`msfopt.solver.make_query` on any DAG of ``net`` with the same cost model)
    by the compact CP-SAT model, within ``time_limit`` seconds over all stages."""
    t0 = time.perf_counter()
    from .backends.graph import tertiary_metric
    facts = block_variants(net, io, cycle_model, modes, tiles, patches, max_depth)
    model = _Model(net, facts, query)
    tert = tertiary_metric(query.metric)
    if query.kind == "latency":
        stages = [query.metric, "peak", tert]
    else:
        stages = ["peak", query.metric, tert]
    # starting plans: the file's order and two greedy orders, each with its best fusion
    starts = []
    for order in [list(range(net.n_layers))] + _greedy_orders(net, facts):
        p = _order_plan(net, facts, query, order, io, cycle_model, modes, tiles, patches,
                        max_depth)
        if p is not None:
            starts.append(p)
    fixed = min(starts, key=lambda p: tuple(_evaluate_plan(net, facts, p)[s] for s in stages),
                default=None)
    if fixed is not None:
        model.hint(*fixed)
    cp = model.cp
    status, gap, gap_of, bound = OPTIMAL, None, None, None
    sol = None
    stage_seconds: list[float] = []
    for si, name in enumerate(stages):
        left = time_limit - (time.perf_counter() - t0)
        if si > 0 and left <= 0:
            status, gap_of = FEASIBLE, "tiebreak"
            break
        model.m.Minimize(model.metric(name))
        ts = time.perf_counter()
        s, st = model.solve(left, threads)
        stage_seconds.append(time.perf_counter() - ts)
        if st == cp.INFEASIBLE or st == cp.MODEL_INVALID:
            if si == 0:
                if st == cp.MODEL_INVALID:
                    raise SolverError("compact model: CP-SAT rejected the model")
                return CompactAnswer(INFEASIBLE, seconds=time.perf_counter() - t0,
                                     variants=len(facts.variants))
            raise SolverError("compact model: a tie-break stage became infeasible")
        if st not in (cp.OPTIMAL, cp.FEASIBLE):
            if si == 0:
                status, gap_of = UNKNOWN, "primary"
                bound = _bound(s, model, name)
            else:
                status, gap_of = FEASIBLE, "tiebreak"
            break
        sol = model.decode(s)
        val = int(round(s.ObjectiveValue()))
        if _evaluate_plan(net, facts, sol)[name] > val:
            raise SolverError(f"compact model: the plan's {name} exceeds the program's value")
        if st != cp.OPTIMAL:
            if si == 0:
                bound = _bound(s, model, name)
                gap = _gap(val, bound)
                status, gap_of = FEASIBLE, "primary"
            else:
                status, gap_of = FEASIBLE, "tiebreak"
            break
        if si == 0:
            bound, gap = val, 0.0
        model.m.Add(model.metric(name) <= val)
        model.hint(*sol)
    source = "cpsat"

    def key_of(plan):
        vals = _evaluate_plan(net, facts, plan)
        return tuple(vals[s] for s in stages)
    if sol is None and fixed is None:
        return CompactAnswer(UNKNOWN, seconds=time.perf_counter() - t0, gap_of="primary",
                             bound=bound, variants=len(facts.variants),
                             stage_seconds=stage_seconds)
    key = key_of(sol) if sol is not None else None
    if fixed is not None and (sol is None or (status != OPTIMAL and key_of(fixed) < key)):
        # CP-SAT stopped early with nothing better than the file's order's best plan
        sol, source, key = fixed, "start", key_of(fixed)
        status = FEASIBLE
        gap_of = gap_of or "primary"
    order, chosen_idx = sol
    chosen = [facts.variants[i] for i in chosen_idx]
    if source == "start" or status != OPTIMAL or gap_of == "tiebreak":
        gap = _gap(key[0], bound) if gap_of == "primary" or source == "start" else gap
    blocks, k = [], 0
    for v in chosen:
        blocks.append((k, k + len(v.ops) - 1, v.mode, v.tile))
        k += len(v.ops)
    return CompactAnswer(status, order, blocks, key, gap, time.perf_counter() - t0, gap_of,
                         bound, len(facts.variants), source, stage_seconds)


def _evaluate_plan(net, facts, plan) -> dict:
    peak, macs, cyc = evaluate(net, facts, plan[0], [facts.variants[i] for i in plan[1]])
    return {"peak": peak, "macs": macs, "cycles": cyc}


def _bound(s, model, name) -> int | None:
    """CP-SAT's bound on the stage objective (the static peak bound when it has none better)."""
    b = s.BestObjectiveBound()
    b = None if b is None or not math.isfinite(b) else int(math.ceil(b - 1e-9))
    if name == "peak":
        b = max(b or 0, model.peak_lb)
    return b


def _gap(value, bound) -> float | None:
    if bound is None or value is None:
        return None
    if value == 0:
        return 0.0
    return max(0.0, (value - bound) / abs(value))


@without_slices
def compact_order(net: Network, objective: str = "latency", ram=None, max_overhead=None,
                  latency_budget=None, io: str = "arena", cycle_model=None, modes=FUSED_MODES,
                  tiles=DEFAULT_TILES, patches=DEFAULT_PATCHES, max_depth=None,
                  max_states=None, backend=None, check=None, time_limit: float = 60.0,
                  threads: int = 1):
    """:func:`msfopt.order.best_order`'s signature and answer (an OrderResult: ``states`` 0,
    ``edges`` = the number of block variants), by the compact model: a drop-in for
    ``--order compact``.  ``max_states``, ``backend`` and ``check`` are accepted and ignored
    (the model has no states and is always CP-SAT).  Raises InfeasibleError when no plan fits,
    SolverError when CP-SAT finds nothing in time and no starting plan fits."""
    from .errors import InfeasibleError
    from .order import OrderResult, reorder
    from .units import parse_ram
    t0 = time.perf_counter()
    q = _query(net, objective, None if ram is None else parse_ram(ram), max_overhead,
               latency_budget)
    a = solve_compact(net, q, time_limit=time_limit, io=io, cycle_model=cycle_model,
                      modes=modes, tiles=tiles, patches=patches, max_depth=max_depth,
                      threads=threads)
    if a.status == INFEASIBLE:
        raise InfeasibleError(f"{net.name}: no execution order and fusion satisfy the query "
                              f"(compact order model)")
    if a.status == UNKNOWN:
        raise SolverError(f"compact order model: no plan found in {time_limit:g} s")
    return OrderResult(order=a.order, net=reorder(net, a.order), key=a.key, blocks=a.blocks,
                       states=0, edges=a.variants, dag_seconds=0.0,
                       seconds=time.perf_counter() - t0, method="compact", status=a.status,
                       gap=a.gap)


def _query(net: Network, objective, ram, max_overhead, latency_budget):
    """:func:`msfopt.solver.make_query` for the runtime cost model without building a DAG."""
    from .solver import make_query

    class _D:                 # the two attributes make_query reads
        cost_model = "runtime"
        vanilla_macs = net.vanilla_macs
    return make_query(_D(), objective, ram, max_overhead, latency_budget)
