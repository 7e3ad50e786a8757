"""Path-selection integer programs over the fusion DAG.

One binary x_e per candidate block variant.  Flow conservation makes the chosen edges a single
0 -> N path (out - in = 1 at node 0, -1 at node N, 0 elsewhere).  The peak RAM is a variable P with
``P >= sum_{e out of v} ram_e x_e`` for every node v (a path leaves each node at most once, so this
is the max over chosen edges, and tighter than one row per edge).

* ``latency_program`` (P2): minimise sum w_e x_e subject to the RAM capacity R: every edge with
  ram_e > R fixed to 0 (that is the whole constraint: a path leaves each node by one edge).
  Ties: second stage minimises P with the latency fixed at its optimum.
* ``minmax_ram_program`` (P1): minimise P subject to ``sum w_e x_e <= B``, and optionally a RAM
  capacity R (edges with ram_e > R are fixed to 0).  Ties: second stage minimises the latency with
  P fixed at its optimum.

Both are lexicographic programs (exact, no big-M weighting); a third stage minimises the
*tertiary* weight (the latency metric the query does not optimise: MACs for cycles, cycles for
MACs) with both earlier objectives fixed, so every backend returns the same (latency, peak,
tertiary) triple as graph search.

``add_no_good(path)`` excludes one complete plan (sum of its x_e <= len - 1): the driver uses it
when a path's arena layout does not pack, so every backend answers the optimum among plans that
pack, exactly like graph search's Lawler enumeration.

Exact restrictions (every backend gets the same programs; the referee's answer is never used):

* a stage that only chooses least-latency plans (P2's stages; P1's second and third) drops the
  edges on no least-latency path (``_off_shortest_paths``: w_e > dist(u, v));
* P1's first stage drops the edges whose removal keeps the least peak (``_dominated_edges``);
* tie-break stages in which every edge above the optimal peak is fixed drop the peak rows
  (``_drop_peak_rows``);

all while no plan has been excluded by a no-good cut (the next-best plan may need a dropped
edge); fixed variables are then substituted out before a backend sees the program
(``model.reduce_fixed``).  On mbv2-w0.35's runtime DAG (7,371 edges) P1's first stage shrinks
from 7,191 to 114 free variables (CP-SAT 3.9 s -> 12 ms).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .model import EQ, GE, LE, MIP, Var


@dataclass
class PathProgram:
    kind: str                  # "latency" (P2) or "ram" (P1)
    mip: MIP                   # first stage
    x: dict[int, int]          # DAG edge id -> variable index
    peak: int                  # variable index of P
    latency: dict[int, int]    # latency expression (var -> coeff)
    first_objective: dict[int, int]
    second_objective: dict[int, int]
    through: list[float] | None = None   # per DAG edge: least latency of a 0 -> N path via it
    tertiary: dict[int, int] | None = None   # the last tie-break (var -> coeff)
    ram: np.ndarray | None = None            # per DAG edge RAM (for the tie-break stages)
    second_bound: int | None = None          # upper bound of the second objective on any plan
    no_goods: int = 0                        # plans excluded by add_no_good so far
    budget: int | None = None                # P1's latency budget (None: no budget row)
    budget_row: str | None = None            # that row's name
    #: exact restriction of the first stage (var indices fixed to 0): the first objective's
    #: optimal value is unchanged (see _dominated_edges); None = none
    first_restriction: list[int] | None = None
    #: (DAG, metric, allowed edges) for the tie-break stages' restriction (_restrict_later)
    _context: tuple | None = None

    def combined(self, limit: int = 2 ** 62) -> tuple[MIP, int] | None:
        """The first two stages as one program: minimise ``c * first + second`` with
        ``c = second_bound + 1``.  Every plan has 0 <= second <= second_bound < c, so the combined
        optimum has the least first objective and, among those, the least second -- exactly the
        two-stage answer.  Returns (program, c), or None when some term of the objective could
        leave int64 (the sum of |coefficient| x |bound| over the variables exceeds ``limit``): the
        solver then runs the stages one by one.  Only for exact integer solvers (CP-SAT); an LP-based
        solver's tolerances do not resolve the second objective under such a scale."""
        if self.second_bound is None:
            return None
        c = int(self.second_bound) + 1
        obj: dict[int, int] = {}
        for k, v in self.first_objective.items():
            obj[k] = obj.get(k, 0) + c * int(v)
        for k, v in self.second_objective.items():
            obj[k] = obj.get(k, 0) + int(v)
        vars_ = self.mip.vars
        if sum(abs(v) * max(abs(vars_[k].lb), abs(vars_[k].ub)) for k, v in obj.items()) > limit:
            return None
        # P2's restriction keeps every least-latency plan, so both stages' optima; P1's keeps
        # only the peak's optimum, not the latency among the least-peak plans
        m = (self.first_stage() if self.kind == "latency" else self.mip).copy()
        m.name = self.mip.name + "/lexicographic"
        m.minimize(obj)
        return m, c

    def add_no_good(self, path: list[int]) -> None:
        """Exclude exactly the plan ``path`` (DAG edge ids) from this program and its stages."""
        ks = [self.x[e] for e in path if e in self.x]
        if len(ks) == len(path):      # a plan using a removed edge is excluded already
            self.mip.add({k: 1 for k in ks}, LE, len(ks) - 1, f"no_good_{len(self.mip.constraints)}")
            self.no_goods += 1

    def first_stage(self) -> MIP:
        """The program of the first stage: ``mip`` with the exact dominance restriction
        (:func:`_dominated_edges`) while no plan has been excluded -- a no-good cut asks for the
        next-best plan, which may use a dominated edge, so from then on the full program."""
        if self.no_goods or not self.first_restriction:
            return self.mip
        return _fixed_to_zero(self.mip, self.first_restriction, "/restricted")

    def _restrict_later(self, m: MIP, peak_value: int) -> None:
        """Fix, in a tie-break stage of a latency-first order (P2's stages, P1's second and third
        stage), every edge that lies on no least-latency path among the edges the stage allows
        (at most ``peak_value`` RAM): those stages only ever choose least-latency plans."""
        if self.no_goods or self._context is None:
            return
        dag, metric, allowed = self._context
        drop = _off_shortest_paths(dag, metric, np.asarray(allowed) & (dag.ram <= peak_value))
        if drop is None:
            return
        x = self.x
        m.fix_zero([x[e] for e in drop if e in x])

    def _fix_above(self, m: MIP, peak_value: int) -> None:
        """Fix every edge with more RAM than ``peak_value`` to 0."""
        x = self.x
        m.fix_zero([x[e] for e in np.flatnonzero(self.ram > peak_value).tolist() if e in x])

    def third_stage(self, latency_value: int, peak_value: int) -> MIP:
        """The last tie-break: latency <= its optimum, no edge above the optimal peak, minimise the
        tertiary weight."""
        m = self.mip.copy()
        m.name = self.mip.name + "/tiebreak2"
        self._fix_above(m, peak_value)
        _drop_peak_rows(m, self.peak)
        least = self._fix_through(m, peak_value, latency_value)
        if least != latency_value:
            # (when the bound is the least latency itself, every edge left is tight and every
            # path of them has exactly that latency: the row is implied, see _fix_through)
            m.add(self.latency, LE, int(latency_value), "lexicographic_latency")
        m.minimize(self.tertiary)
        return m

    def _fix_through(self, m: MIP, peak_value: int, latency_value: int) -> float | None:
        """Fix every edge through which no plan of at most ``peak_value`` RAM reaches a latency
        of at most ``latency_value`` (the least latency of a 0 -> N path via the edge, over the
        edges within the peak, exceeds it).  Exact whenever the stage's plans are bounded so.

        Returns the least latency of any plan within the peak (None if unknown).  When it equals
        ``latency_value`` every edge left is *tight*: with pre/suf the least latencies from 0 and
        to N, pre(u) + w_e + suf(v) = pre(N) forces pre(v) = pre(u) + w_e, so the latency of any
        0 -> N path of such edges telescopes to pre(N): a latency bound row is then implied."""
        if self._context is None:
            if self.through is not None:
                _fix_by_latency(m, self.x, self.through, latency_value)
            return None
        dag, metric, allowed = self._context
        thr = _through_bounds(dag, metric, np.asarray(allowed) & (dag.ram <= peak_value))
        _fix_by_latency(m, self.x, thr, latency_value)
        return float(thr.min()) if len(thr) else None

    def second_stage(self, first_value: int, incumbent: int | None = None) -> MIP:
        """The tie-break program: the first objective bounded by its optimum.  ``incumbent``
        (P1): the latency of a plan this stage may choose (the first stage's own solution): an
        upper bound of the stage's optimum, so edges no plan within it can use are fixed."""
        m = self.mip.copy()
        m.name = self.mip.name + "/tiebreak"
        if self.kind == "latency" and not (self.through is not None and len(self.through)
                                           and self.through.min() == first_value):
            # (a bound at the least latency itself is implied once the edges off every least-
            # latency plan are fixed just below: see _fix_through)
            m.add(self.first_objective, LE, int(first_value), "lexicographic_bound")
        m.minimize(self.second_objective)
        if self.kind == "latency" and self.through is not None:
            _fix_by_latency(m, self.x, self.through, first_value)
        if self.kind == "ram":
            # the peak is bounded by its optimum: no edge above it can be on the path (that is
            # the whole bound: the peak rows are implied, see _drop_peak_rows)
            self._fix_above(m, first_value)
            _drop_peak_rows(m, self.peak)
            self._restrict_later(m, first_value)
            if incumbent is not None:
                least = self._fix_through(m, first_value, incumbent)
                if least is not None and self.budget is not None and least <= self.budget:
                    # the stage minimises the latency and its optimum (a least-latency plan
                    # within the peak) meets the budget: the budget row cuts off no optimum
                    m.constraints = [c for c in m.constraints if c.name != self.budget_row]
        elif not self.no_goods and self.first_restriction:
            m.fix_zero(self.first_restriction)   # P2's restriction keeps every least-latency plan
        return m

    def decode(self, dag, values) -> list[int]:
        chosen = {e for e, k in self.x.items() if values[k] > 0.5}
        path = []
        v = 0
        out = dag.out_edges()
        while v != dag.n_nodes - 1:
            nxt = [e for e in out[v] if e in chosen]
            if len(nxt) != 1:
                raise ValueError(f"solution is not a path at node {v}")
            path.append(nxt[0])
            v = int(dag.dst[nxt[0]])
        if len(path) != len(chosen):
            raise ValueError("solution has edges off the path (cycle-free DAG: cannot happen)")
        return path


def _base(dag, name: str, drop=None) -> tuple[MIP, dict[int, int], int]:
    """The path program's common part: one binary x_e per DAG edge, the flow rows and the peak
    rows, with the edges where the boolean array ``drop`` is True fixed to 0.  The rows and
    variables are built once per DAG and shared (read-only) by every program of it: a query
    copies the two lists and fixes its variables, so a batch of queries on one DAG pays the
    construction once."""
    base = dag.__dict__.get("_path_base")
    if base is None:
        base = _build_base(dag)
        dag.__dict__["_path_base"] = base
    vars_, rows, x, peak, twins = base
    m = MIP(name, list(vars_), list(rows), zero_twins=twins)
    ram = dag.ram
    if drop is not None and np.any(drop):
        m.fix_zero([x[e] for e in np.flatnonzero(drop).tolist()])
        kept = ram[~np.asarray(drop, dtype=bool)]
    else:
        kept = ram
    m.vars[peak] = Var("P", 0, int(kept.max()) if len(kept) else 0)
    return m, dict(x), peak


def _build_base(dag):
    m = MIP("base")
    src, dst, tile, mode = dag.src.tolist(), dag.dst.tolist(), dag.tile, dag.mode
    m.vars = [Var(f"x_{src[e]}_{dst[e]}_{mode[e]}{tile[e]}_{e}", 0, 1)
              for e in range(dag.n_edges)]
    x = {e: e for e in range(dag.n_edges)}
    ram = dag.ram.tolist()
    peak = m.add_var("P", 0, max(ram) if ram else 0)
    n = dag.n_nodes
    flow = [dict() for _ in range(n)]
    prow = [{peak: 1} for _ in range(n)]
    for e in range(dag.n_edges):
        flow[src[e]][e] = 1
        flow[dst[e]][e] = -1
        prow[src[e]][e] = -ram[e]
    for v in range(n):
        rhs = 1 if v == 0 else (-1 if v == n - 1 else 0)
        m.add(flow[v], EQ, rhs, f"flow_{v}")
    for v in range(n - 1):
        if len(prow[v]) > 1:
            m.add(prow[v], GE, 0, f"peak_{v}")
    twins = [Var(v.name, 0, 0, v.integer) for v in m.vars]
    return m.vars, m.constraints, x, peak, twins


def _drop_peak_rows(m: MIP, peak: int) -> None:
    """Remove the rows that only define the peak (``peak_v``) from a
    tie-break stage in which every edge above the peak's optimum is fixed to 0, and fix P at 0.

    Exact: an integer solution is one 0 -> N path (flow rows, acyclic DAG), so it leaves each node
    by at most one edge, and every open edge has ram_e <= the optimum (<= the capacity), so those
    rows hold for every path the stage can choose.  P occurs in no other row and in no objective
    of these stages.  Without them the stage is a (budget-constrained) shortest path, which LP-based
    solvers and CP-SAT's LP relaxation solve at once (CP-SAT took 1.6 s on a 3,100-edge order
    DAG's tie-break with the rows, 0.1 s without)."""
    m.constraints = [c for c in m.constraints if not c.name.startswith("peak_")]
    m.vars[peak] = replace(m.vars[peak], lb=0, ub=0)


def _fixed_to_zero(mip: MIP, ks, suffix: str) -> MIP:
    m = mip.copy()
    m.name = mip.name + suffix
    m.fix_zero(ks)
    return m


#: all-pairs tables (nodes x nodes int64) are built up to this many DAG nodes; beyond it the
#: restrictions are skipped (exactness never depends on them)
ALL_PAIRS_MAX_NODES = 3000
_INF = 2 ** 62


def _groups(node_of: np.ndarray, ok: np.ndarray, n: int) -> list[np.ndarray]:
    """The ``ok`` edges grouped by ``node_of`` (the DAG's ``dst`` or ``src``): entry v holds the
    ids of the edges into (or out of) node v, in edge order -- what every sweep over the
    topologically numbered nodes reads."""
    e_ok = np.flatnonzero(ok)
    order = e_ok[np.argsort(node_of[e_ok], kind="stable")]
    bounds = np.searchsorted(node_of[order], np.arange(n + 1))
    return [order[bounds[v]:bounds[v + 1]] for v in range(n)]


def _all_pairs(dag, w, allowed, bottleneck: bool = False):
    """Per node pair (u, v): the least total ``w`` (``bottleneck``: the least largest ``w``) over
    u -> v paths of ``allowed`` edges (u == v: 0; no path: _INF).  The DAG's nodes are numbered
    in topological order (every edge goes from a lower to a higher node), so one sweep over the
    destinations in order settles every column.  None beyond ALL_PAIRS_MAX_NODES nodes."""
    n = dag.n_nodes
    if n > ALL_PAIRS_MAX_NODES:
        return None
    src = dag.src
    d = np.full((n, n), _INF, dtype=np.int64)
    np.fill_diagonal(d, 0)
    wv = np.asarray(w, dtype=np.int64)
    for v, es in enumerate(_groups(dag.dst, np.asarray(allowed, dtype=bool), n)):
        if not len(es):
            continue
        prev = d[:, src[es]]
        cand = np.maximum(prev, wv[es]) if bottleneck else np.minimum(prev + wv[es], _INF)
        cand[prev >= _INF] = _INF
        col = cand.min(axis=1)
        d[:, v] = np.minimum(d[:, v], col)
    return d


def _off_shortest_paths(dag, metric: str, allowed) -> list[int] | None:
    """The allowed edges e = (u, v) on no least-``metric`` path: w_e > dist(u, v).  Exact for every
    stage that only chooses least-latency plans: an edge of such a plan with w_e > dist(u, v)
    could be swapped for the shortest u -> v subpath (same RAM bound: it uses allowed edges
    only), a strictly shorter plan.  None when the DAG is too large for the table."""
    w = dag.weight(metric)
    d = _all_pairs(dag, w, allowed)
    if d is None:
        return None
    src, dst = dag.src, dag.dst
    ok = np.asarray(allowed, dtype=bool)
    return np.flatnonzero(ok & (w > d[src, dst])).tolist()


def _dominated_edges(dag, metric: str, allowed, budget) -> list[int] | None:
    """Edges the min-max RAM first stage (P1) can do without: the least peak over the remaining
    edges equals the least peak over all ``allowed`` ones.

    * no latency budget: e = (u, v) with ram_e > B(u, v), the least largest RAM of any u -> v
      path.  Each such edge of a plan can be replaced by that path, whose edges all have less RAM
      than e: the plan's peak does not grow, and as every replacement swaps one RAM value for
      strictly smaller ones, replacing repeatedly ends (multiset order) at a plan of remaining
      edges with no larger peak.
    * with a budget on the latency: e with (D(u, v), M(u, v)) <= (w_e, ram_e) in both and < in
      one, where D is the least latency of a u -> v path and M the least largest RAM among the
      least-latency ones (lexicographic (latency, bottleneck) is a monotone path order, so one
      sweep finds it).  A replacement keeps the latency within the budget and the peak from
      growing; each one lowers (plan latency, multiset of RAM values) lexicographically, so it
      ends.
    None when nothing can be said (table too large, or the combined key could overflow)."""
    ram = dag.ram.astype(np.int64)
    src, dst = dag.src, dag.dst
    ok = np.asarray(allowed, dtype=bool)
    if budget is None:
        b = _all_pairs(dag, ram, ok, bottleneck=True)
        if b is None:
            return None
        return np.flatnonzero(ok & (ram > b[src, dst])).tolist()
    w = dag.weight(metric).astype(np.int64)
    scale = int(ram.max()) + 1 if len(ram) else 1
    total = int(w[ok].sum()) if ok.any() else 0
    if (total + 1) * scale >= _INF:
        return None
    # lexicographic (latency, bottleneck) as one key: latency * scale + bottleneck; the sweep on
    # keys adds latencies and maxes bottlenecks, so it is done on the two parts
    n = dag.n_nodes
    if n > ALL_PAIRS_MAX_NODES:
        return None
    lat = np.full((n, n), _INF, dtype=np.int64)
    bot = np.zeros((n, n), dtype=np.int64)
    np.fill_diagonal(lat, 0)
    for v, es in enumerate(_groups(dst, ok, n)):
        if not len(es):
            continue
        pl, pb = lat[:, src[es]], bot[:, src[es]]
        reach = pl < _INF
        cl = np.where(reach, pl + w[es], _INF)
        cb = np.where(reach, np.maximum(pb, ram[es]), 0)
        key = np.where(reach, cl * scale + cb, _INF)
        j = key.argmin(axis=1)
        rows = np.arange(n)
        bl, bb = cl[rows, j], cb[rows, j]
        better = (bl < lat[:, v]) | ((bl == lat[:, v]) & (bb < bot[:, v]) & (bl < _INF))
        lat[better, v] = bl[better]
        bot[better, v] = bb[better]
    dl, db = lat[src, dst], bot[src, dst]
    dom = ok & (dl <= w) & (db <= ram) & ((dl < w) | (db < ram))
    return np.flatnonzero(dom).tolist()


def _through_bounds(dag, metric: str, keep) -> np.ndarray:
    """Per edge e = (u, v): shortest 0 -> u + w_e + shortest v -> N over the kept edges (``keep``:
    a boolean per edge), a lower bound on the latency of every plan using e (inf when e is not
    kept or on no 0 -> N path).  float64: exact for the integer latencies (every sum stays far
    below 2**53)."""
    ok = np.asarray(keep, dtype=bool)
    w = dag.weight(metric).astype(np.float64)
    src, dst = dag.src, dag.dst
    n = dag.n_nodes
    inf = float("inf")
    pre = np.full(n, inf)
    suf = np.full(n, inf)
    pre[0], suf[n - 1] = 0.0, 0.0
    into = _groups(dst, ok, n)
    for v in range(1, n):                 # edges into v start at earlier nodes: settled
        es = into[v]
        if len(es):
            pre[v] = (pre[src[es]] + w[es]).min()
    out = _groups(src, ok, n)
    for v in range(n - 2, -1, -1):        # edges out of v end at later nodes: settled
        es = out[v]
        if len(es):
            suf[v] = (w[es] + suf[dst[es]]).min()
    thr = pre[src] + w + suf[dst]
    thr[~ok] = inf
    return thr


def _longest(dag, metric: str, allowed=None) -> int:
    """The largest total ``metric`` weight of any 0 -> N path (over the edges ``allowed`` says
    True for, default all; 0 when there is none): an upper bound of that weight on every plan."""
    w = dag.weight(metric).tolist()
    src, dst = dag.src.tolist(), dag.dst.tolist()
    best = [-1] * dag.n_nodes
    best[0] = 0
    for e in sorted(range(dag.n_edges), key=lambda e: src[e]):
        if allowed is not None and not allowed(e):
            continue
        if best[src[e]] >= 0 and best[src[e]] + w[e] > best[dst[e]]:
            best[dst[e]] = best[src[e]] + w[e]
    return max(best[-1], 0)


def _fix_by_latency(m: MIP, x: dict[int, int], through: list[float], budget) -> None:
    """Exact presolve: an edge on no plan within the latency budget is fixed to 0 (LP-based
    solvers otherwise struggle with a latency row at its exact optimum: HiGHS > 60 s on the 320K
    tie-break with ~6k edges)."""
    m.fix_zero([x[e] for e in np.flatnonzero(np.asarray(through) > budget).tolist() if e in x])


def latency_program(dag, metric: str, ram_cap: float, upper=None) -> PathProgram:
    """P2; ``ram_cap`` may be math.inf (no capacity).  ``upper``: (latency, peak) of
    a plan known to satisfy the query (e.g. the unfused one): every edge whose least latency
    through it exceeds that latency is fixed to 0 (exact bound fixing: no plan using it can tie
    the known one)."""
    ram = dag.ram.tolist()
    w = dag.weight(metric).tolist()
    # the capacity is the edges above it fixed to 0: rows sum_{e out of v} ram_e x_e <= R are
    # then implied (a unit flow in a DAG leaves every node at most once, also in the LP)
    m, x, peak = _base(dag, f"P2_min_{metric}",
                       None if math.isinf(ram_cap) else dag.ram > ram_cap)
    lat = {k: w[e] for e, k in x.items()}
    m.minimize(lat)
    through = _through_bounds(dag, metric, dag.ram <= ram_cap)
    if upper is not None:
        _fix_by_latency(m, x, through, upper[0])
    prog = PathProgram("latency", m, x, peak, lat, lat, {peak: 1}, through,
                       _tertiary(dag, metric, x), dag.ram, second_bound=m.vars[peak].ub)
    allowed = np.array([m.vars[x[e]].ub > 0 for e in range(dag.n_edges)], dtype=bool)
    drop = _off_shortest_paths(dag, metric, allowed)
    prog.first_restriction = None if drop is None else [x[e] for e in drop]
    prog._context = (dag, metric, allowed)
    return prog


def minmax_ram_program(dag, metric: str, budget: int | None,
                       ram_cap: float = math.inf, upper=None) -> PathProgram:
    """P1; ``budget`` None means no latency row, ``ram_cap`` math.inf no RAM capacity.
    ``upper``: (latency, peak) of a plan known to satisfy the query: every edge with more RAM
    than that peak is fixed to 0 (no plan using it can tie the known one)."""
    w = dag.weight(metric).tolist()
    m, x, peak = _base(dag, f"P1_minmax_ram_{metric}")
    lat = {k: w[e] for e, k in x.items()}
    through = None
    if budget is not None:
        m.add(lat, LE, int(budget), f"{metric}_budget")
        through = _through_bounds(dag, metric, np.ones(dag.n_edges, dtype=bool))
        _fix_by_latency(m, x, through, int(budget))
    m.minimize({peak: 1})
    if through is None:
        through = _through_bounds(dag, metric, np.ones(dag.n_edges, dtype=bool))
    cap = ram_cap if upper is None else min(ram_cap, upper[1])
    if not math.isinf(cap):
        m.fix_zero([x[e] for e in np.flatnonzero(dag.ram > cap).tolist()])
    prog = PathProgram("ram", m, x, peak, lat, {peak: 1}, lat, through,
                       _tertiary(dag, metric, x), dag.ram,
                       second_bound=_longest(dag, metric))
    prog.budget, prog.budget_row = budget, f"{metric}_budget"
    allowed = np.array([m.vars[x[e]].ub > 0 for e in range(dag.n_edges)], dtype=bool)
    drop = _dominated_edges(dag, metric, allowed, budget)
    prog.first_restriction = None if drop is None else [x[e] for e in drop]
    prog._context = (dag, metric, allowed)
    return prog


def _tertiary(dag, metric: str, x: dict[int, int]) -> dict[int, int]:
    w3 = dag.weight("cycles" if metric == "macs" else "macs").tolist()
    return {k: w3[e] for e, k in x.items()}
