"""Execution order jointly with fusion: the fusion DAG over executed-op states (downsets).

On a branched network the order in which ops run decides which tensors are alive together.
:func:`build_order_dag` generalises the fusion DAG of :mod:`msfopt.dag`: a node is a *state* --
a set ``S`` of executed ops closed under predecessors (a downset of the op graph), together with
the most recently produced tensor when a fused block could still start from it -- and an edge is
a candidate block (one op unfused, or a fusable chain in any execution variant) whose inputs the
state has produced.  A path from the empty state to the full one is a complete plan: an order and
its fusion.  Nodes are numbered by ``|S|``, so edges go forward and graph search, the path ILPs and
every backend solve it unchanged.  For a chain there is one order and the order DAG is the chain
DAG (the CLI keeps the chain fast path).

Edge costs are the chain model's, exactly (:mod:`msfopt.modes`), split into what depends on the
state and what is intrinsic to the block:

* RAM = the counted bytes of ``L(S)`` -- every tensor produced in ``S`` (or the network input)
  that a later op still reads or that is a graph output -- plus the block's output (unless the
  variant writes it over its dying input) plus the block's scratch (rings, patch buffers);
* a variant that overwrites its input (an unfused elementwise op or reshape, the ``inplace`` mode)
  is legal only where that input dies: every other reader is in ``S``;
* a fused variant (every mode but ``unfused``) reads the most recently produced tensor, as the
  chain model's blocks read the previous layer's output; the state keeps that tensor when an
  unexecuted fusable op reads it;
* MACs, cycles and scratch are intrinsic: they come from the chain model's schedule of the same
  layers on a network made of the block's maximal fusable chain alone.

``tests/test_order.py`` checks every edge against the chain model on the re-numbered network of
every topological order, and the optimum against brute force over orders x block partitions.

:func:`reorder` re-numbers a network in a chosen order; the rest of msfopt (chain DAG, layout,
code generation, oracles) then runs the reordered network unchanged.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .cycles import CycleModel
from .dag import FusionDAG
from .errors import InputError
from .ir import ELEMENTWISE_OPS, GAP, PIPELINE_OPS, RESHAPE, Network
from .modes import DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES, block_schedules, unfused_schedule
from .schedule import IO_MODES, Liveness, without_slices

#: order DAGs with more states than this are not built (the CLI then keeps the file's order)
MAX_STATES = 200_000
ORDER_METHODS = ("auto", "exact", "compact", "fixed")


class TooManyStates(InputError):
    """The network's op graph has more execution states than the order search takes."""


# -- re-numbering a network in another order ----------------------------------------------------

def is_topological(net: Network, order) -> bool:
    pos = {o: k for k, o in enumerate(order)}
    if sorted(pos) != list(range(net.n_layers)) or len(order) != net.n_layers:
        return False
    return all(t == 0 or pos[t - 1] < pos[l] for l in range(net.n_layers)
               for t in net.layers[l].srcs)


def reorder(net: Network, order) -> Network:
    """``net`` with its layers executed (and numbered) in ``order`` (a topological order of its
    op indices): tensor ``o + 1`` of the old numbering becomes ``k + 1`` where ``order[k] == o``.
    The graph outputs keep their model order; layers are shallow copies (weights shared)."""
    order = [int(o) for o in order]
    if not is_topological(net, order):
        raise InputError("the execution order is not a topological order of the model's ops")
    if list(order) == list(range(net.n_layers)):
        return net
    outs = net.output_ids
    if net.tail_softmax is not None and order[-1] != net.n_layers - 1:
        raise InputError("a model with a tail softmax must end with its last op")
    newt = [0] * (net.n_layers + 1)
    for k, o in enumerate(order):
        newt[o + 1] = k + 1
    layers = []
    for o in order:
        L = copy.copy(net.layers[o])
        L.srcs = tuple(newt[t] for t in net.layers[o].srcs)
        layers.append(L)
    tq = [net.tensor_quant[0]] + [net.tensor_quant[o + 1] for o in order] \
        if net.tensor_quant else []
    prov = net.provenance
    if prov is not None:
        perm = lambda xs: tuple(xs[o] for o in order) if len(xs) == net.n_layers else xs  # noqa
        names = prov.tensor_names
        if len(names) == net.n_layers + 1:   # tensor k + 1 is the old tensor order[k] + 1
            names = (names[0], *(names[o + 1] for o in order))
        prov = replace(prov, layer_ops=perm(prov.layer_ops),
                       layer_op_index=perm(prov.layer_op_index), tensor_names=names)
    r = replace(net, layers=layers, tensor_quant=tq, provenance=prov,
                outputs=tuple(newt[t] for t in outs))
    if r.n_layers not in r.output_ids:
        raise InputError("the execution order must end with an op producing a graph output")
    return r


# -- the order DAG ------------------------------------------------------------------------------

@dataclass
class OrderDAG(FusionDAG):
    """A :class:`~msfopt.dag.FusionDAG` whose nodes are execution states (node 0: nothing run,
    the last node: every op run).  ``ops[e]`` are the (original) op indices edge ``e`` runs,
    ``schedules[e]`` the intrinsic schedule of its block (on its chain network, ``None`` for
    unfused ops) -- not a schedule of the planned network: :func:`plan_order` re-plans the
    chosen order on the reordered network, which has them."""
    ops: list[tuple[int, ...]] = field(default_factory=list)
    states: int = 0
    state_masks: list[int] = field(default_factory=list, repr=False)

    @property
    def n_nodes(self) -> int:
        return self.states

    def vanilla_path(self) -> list[int]:
        """The file's order, every op unfused."""
        path, v = [], 0
        out = self.out_edges()
        for o in range(self.net.n_layers):
            e = next((e for e in out[v] if self.ops[e] == (o,) and self.mode[e] == "unfused"),
                     None)
            if e is None:
                raise ValueError("the file's order is not a path of the order DAG")
            path.append(e)
            v = int(self.dst[e])
        return path

    def order_of(self, path) -> list[int]:
        """The op order a path executes."""
        return [o for e in path for o in self.ops[e]]

    def blocks_of(self, path) -> list[tuple[int, int, str, int]]:
        """The path's blocks as (first, last, mode, tile) of the network reordered by
        :meth:`order_of`."""
        out, k = [], 0
        for e in path:
            n = len(self.ops[e])
            out.append((k, k + n - 1, self.mode[e], int(self.tile[e])))
            k += n
        return out

    def without(self, drop) -> "OrderDAG":
        drop = set(int(e) for e in drop)
        keep = [e for e in range(self.n_edges) if e not in drop]
        k = np.asarray(keep, dtype=np.int64)
        return replace(self, src=self.src[k], dst=self.dst[k], ram=self.ram[k],
                       macs=self.macs[k], cycles=self.cycles[k],
                       mode=[self.mode[e] for e in keep], tile=[self.tile[e] for e in keep],
                       schedules=[self.schedules[e] for e in keep],
                       ops=[self.ops[e] for e in keep], _out=None)


@dataclass(frozen=True)
class _Variant:
    """A fused block variant on a maximal chain: ops, mode, tile, intrinsic costs."""
    ops: tuple[int, ...]
    mode: str
    tile: int
    scratch: int
    macs: int
    cycles: int
    overwrites_input: str | None   # None, "dies" (inplace mode), "sole" (hcache-ip)
    schedule: object


def fusable_chains(net: Network) -> list[list[int]]:
    """The maximal chains of ops that fused blocks may span, as the chain model's
    ``Liveness.fused_legal`` defines them: consecutive pipeline ops (window ops, standalone
    activations) where each reads only its predecessor's output and is its only reader, that
    output not being a graph output; a global average pool may end one (the streaming GAP
    tail)."""
    cons = net.consumers()
    outs = set(net.output_ids)
    nxt = {}
    for b, L in enumerate(net.layers):
        if len(L.srcs) != 1 or L.srcs[0] == 0 or L.op not in PIPELINE_OPS + (GAP,):
            continue
        a = L.srcs[0] - 1
        if net.layers[a].op in PIPELINE_OPS and cons[a + 1] == [b] and a + 1 not in outs:
            nxt[a] = b
    heads = sorted(set(range(net.n_layers)) - set(nxt.values()))
    chains = []
    for h in heads:
        c = [h]
        while c[-1] in nxt:
            c.append(nxt[c[-1]])
        chains.append(c)
    return chains


def _chain_network(net: Network, chain: list[int]) -> Network:
    """The ops of ``chain`` alone, as a chain network (the intrinsic costs of its blocks)."""
    layers = []
    for k, o in enumerate(chain):
        L = copy.copy(net.layers[o])
        L.srcs = (k,)
        layers.append(L)
    return Network(name=f"{net.name}-chain{chain[0]}", input_shape=net.tensor_shape(
        net.layers[chain[0]].srcs[0]), layers=layers, dtype=net.dtype)


def fused_variants(net: Network, cm: CycleModel, modes, tiles, patches, max_depth):
    """Every fused variant of every block inside a maximal chain, keyed by its first op."""
    by_first: dict[int, list[_Variant]] = {}
    fused_modes = tuple(m for m in modes if m != "unfused")
    for chain in fusable_chains(net):
        sub = _chain_network(net, chain)
        for s in block_schedules(sub, "arena", modes=fused_modes, tiles=tiles, patches=patches,
                                 max_depth=max_depth):
            if s.mode == "unfused":
                continue
            assert s.ram_bytes - s.tensor_bytes == s.scratch_bytes, s.key
            ow = None
            if s.inplace is not None:
                ow = "dies" if s.mode == "inplace" else "sole"
            v = _Variant(ops=tuple(chain[s.first:s.last + 1]), mode=s.mode, tile=s.tile,
                         scratch=s.scratch_bytes, macs=s.macs, cycles=cm.cycles(sub, s),
                         overwrites_input=ow, schedule=s)
            by_first.setdefault(v.ops[0], []).append(v)
    return by_first


@without_slices
def build_order_dag(net: Network, io: str = "arena", cycle_model: CycleModel | None = None,
                    modes=FUSED_MODES, tiles=DEFAULT_TILES, patches=DEFAULT_PATCHES,
                    max_depth: int | None = None, max_states: int = MAX_STATES,
                    prune: bool = True) -> OrderDAG:
    """The fusion DAG over execution states (runtime cost model).  Raises
    :class:`TooManyStates` beyond ``max_states`` states."""
    t0 = time.perf_counter()
    if io not in IO_MODES:
        raise ValueError(f"io must be one of {', '.join(IO_MODES)}")
    cm = cycle_model or CycleModel()
    n = net.n_layers
    live = Liveness(net, io)
    cons = live.consumers
    outs = set(net.output_ids)
    counted, tb = live.counted, live.tbytes
    cbytes = [tb[t] if counted[t] else 0 for t in range(n + 1)]
    cons_mask = [sum(1 << c for c in cons[t]) for t in range(n + 1)]
    pred_mask = [sum(1 << (t - 1) for t in L.srcs if t > 0) for L in net.layers]
    full = (1 << n) - 1
    last_op = n - 1 if net.tail_softmax is not None else None
    fused = fused_variants(net, cm, modes, tiles, patches, max_depth)
    # a fused variant may start at op c only from a state whose newest tensor is c's input
    fusable_reader = [any(L2.srcs == (t,) and c in fused for c, L2 in
                          ((c, net.layers[c]) for c in cons[t])) for t in range(n + 1)]
    unf = [unfused_schedule(net, live, l) for l in range(n)]
    unf_cycles = [cm.cycles(net, s) for s in unf]

    def alive(t: int, done: int) -> bool:
        return t in outs or (cons_mask[t] & ~done) != 0

    def newest(t: int, done: int) -> int:
        """The state's newest tensor when an unexecuted fused block could read it, else -1."""
        return t if fusable_reader[t] and (cons_mask[t] & ~done) else -1

    # states: (done mask, newest tensor or -1) -> index; BFS by level |S|
    start = (0, newest(0, 0))
    index = {start: 0}
    live_bytes = {0: cbytes[0] if alive(0, 0) else 0}
    levels: list[list[tuple[int, int]]] = [[] for _ in range(n + 1)]
    levels[0].append(start)
    rows = []   # (src key, dst key, ram, macs, cycles, mode, tile, ops, schedule)

    def live_after(done: int, new_done: int, ops) -> int:
        """Counted bytes of L(new_done), from L(done)."""
        b = live_bytes[done]
        # tensors dying: produced before, read by these ops, no reader left
        for o in ops:
            for t in set(net.layers[o].srcs):
                if (t == 0 or (done >> (t - 1)) & 1) and not alive(t, new_done) \
                        and alive(t, done):
                    b -= cbytes[t]
        t = ops[-1] + 1
        if alive(t, new_done):
            b += cbytes[t]
        return b

    for size in range(n + 1):
        for key in levels[size]:
            done, newest_t = key
            if done == full:
                continue
            base = live_bytes[done]
            ready = [o for o in range(n) if not (done >> o) & 1
                     and (pred_mask[o] & ~done) == 0
                     and (last_op is None or o != last_op or done == full ^ (1 << o))]
            for o in ready:
                L = net.layers[o]
                out_t = o + 1
                # unfused, possibly over a dying input
                nd = done | (1 << o)
                opts = ()
                if L.op == RESHAPE or L.op in ELEMENTWISE_OPS:
                    opts = tuple(t for t in dict.fromkeys(L.srcs)
                                 if t not in outs and (cons_mask[t] & ~nd) == 0
                                 and counted[t] == counted[out_t]
                                 and (L.op == RESHAPE or net.tensor_shape(t) == tuple(L.out_shape)))
                ram = base + (0 if opts else cbytes[out_t])
                cand = [(ram, L.macs, unf_cycles[o], "unfused", 0, (o,), unf[o])]
                if L.srcs == (newest_t,) or (done == 0 and L.srcs == (0,)):
                    for v in fused.get(o, ()):
                        t_in = L.srcs[0]
                        if v.overwrites_input == "dies":
                            if t_in in outs or (cons_mask[t_in] & ~nd) != 0 \
                                    or not counted[t_in] or not counted[v.ops[-1] + 1]:
                                continue
                        elif v.overwrites_input == "sole":
                            if cons[t_in] != [o] or t_in in outs or not counted[t_in] \
                                    or not counted[v.ops[-1] + 1]:
                                continue
                        r = base + v.scratch + (0 if v.overwrites_input
                                                else cbytes[v.ops[-1] + 1])
                        cand.append((r, v.macs, v.cycles, v.mode, v.tile, v.ops, v.schedule))
                for (r, m, c, mode, tile, ops, sch) in cand:
                    nd2 = done
                    for q in ops:
                        nd2 |= 1 << q
                    if last_op is not None and last_op in ops and nd2 != full:
                        continue    # a tail softmax follows the model's last op: it runs last
                    if nd2 not in live_bytes:
                        live_bytes[nd2] = live_after(done, nd2, ops)
                    dkey = (nd2, newest(ops[-1] + 1, nd2))
                    if dkey not in index:
                        index[dkey] = -1
                        levels[bin(nd2).count("1")].append(dkey)
                        if len(index) > max_states:
                            raise TooManyStates(
                                f"{net.name}: more than {max_states:,} execution states "
                                f"(use --order compact, or --order fixed for the file's order)")
                    rows.append((key, dkey, r, m, c, mode, tile, ops, sch))
    # number the states level by level (edges go from |S| to a larger |S|)
    k = 0
    masks = []
    for lv in levels:
        for key in lv:
            index[key] = k
            masks.append(key[0])
            k += 1
    sinks = [key for key in levels[n]]
    assert len(sinks) == 1, "the full state is not unique"
    rows = [(index[a], index[b], *rest) for a, b, *rest in rows]
    if prune:
        rows = _prune(rows)
    rows.sort(key=lambda r: (r[0], r[1], r[5], r[6], r[7]))
    dag = OrderDAG(
        net=net, cost_model="runtime", io=io,
        src=np.array([r[0] for r in rows], dtype=np.int64),
        dst=np.array([r[1] for r in rows], dtype=np.int64),
        ram=np.array([r[2] for r in rows], dtype=np.int64),
        macs=np.array([r[3] for r in rows], dtype=np.int64),
        cycles=np.array([r[4] for r in rows], dtype=np.int64),
        mode=[r[5] for r in rows], tile=[r[6] for r in rows],
        schedules=[r[8] for r in rows], cycle_model=cm,
        ops=[r[7] for r in rows], states=k, state_masks=masks)
    dag.build_seconds = time.perf_counter() - t0
    return dag


def _prune(rows):
    """Per (state, next state, ops), keep the variants not dominated in (RAM, MACs, cycles)."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r[0], r[1], r[7]), []).append(r)
    kept = []
    for grp in groups.values():
        grp.sort(key=lambda r: (r[2], r[3], r[4]))
        front = []
        for r in grp:
            if any(f[2] <= r[2] and f[3] <= r[3] and f[4] <= r[4] for f in front):
                continue
            front.append(r)
        kept.extend(front)
    return kept


# -- planning with the order --------------------------------------------------------------------

@dataclass
class OrderResult:
    """The order search's answer: the chosen op order, the reordered network, the optimum
    (objective key) and its blocks on the reordered network, the search's size and time."""
    order: list[int]
    net: Network
    key: tuple
    blocks: list
    states: int
    edges: int
    dag_seconds: float
    seconds: float
    method: str = "exact"          # "exact" (the order DAG) or "compact" (msfopt.order_compact)
    status: str = "optimal"        # compact: "feasible" when its time limit stopped it
    gap: float | None = None       # compact: relative gap of the objective when not optimal


@without_slices
def best_order(net: Network, objective: str = "latency", ram=None, max_overhead=None,
               latency_budget=None, io: str = "arena", cycle_model=None, modes=FUSED_MODES,
               tiles=DEFAULT_TILES, patches=DEFAULT_PATCHES, max_depth=None,
               max_states: int = MAX_STATES, backend: str = "graph", check: bool = True,
               time_limit: float = 60.0) -> OrderResult:
    """The execution order of an optimal (order, fusion) plan for the query: exact search over
    the order DAG by ``backend`` (graph search or any ILP backend), cross-checked by the other
    one when ``check``.  Raises InfeasibleError as the solver does when no order fits,
    CrossCheckError when the two disagree on a proven optimum."""
    from .errors import CrossCheckError
    from .solver import INFEASIBLE, OPTIMAL, _infeasible, answer, make_query
    from .units import parse_ram
    t0 = time.perf_counter()
    dag = build_order_dag(net, io=io, cycle_model=cycle_model, modes=modes, tiles=tiles,
                          patches=patches, max_depth=max_depth, max_states=max_states)
    q = make_query(dag, objective, None if ram is None else parse_ram(ram), max_overhead,
                   latency_budget)
    a = answer(dag, q, backend, time_limit)
    if a.status == INFEASIBLE:
        raise _infeasible(dag, q)
    if check:
        ref_backend = "cpsat" if backend == "graph" else "graph"
        ref = answer(dag, q, ref_backend, time_limit)
        if ref.key != a.key and a.status == OPTIMAL and ref.status == OPTIMAL:
            raise CrossCheckError(f"order search: {backend} {a.key} != {ref_backend} {ref.key}")
    order = dag.order_of(a.path)
    return OrderResult(order=order, net=reorder(net, order), key=a.key,
                       blocks=dag.blocks_of(a.path), states=dag.states, edges=dag.n_edges,
                       dag_seconds=dag.build_seconds, seconds=time.perf_counter() - t0)


def resolve_method(net: Network, method: str, cost_model: str = "runtime") -> str:
    """``auto``: the exact order search for branched networks under the runtime cost model (the
    compact CP-SAT model when the states exceed ``max_states``), the file's order for chains
    (they have one order) and for the paper's cost model (chains)."""
    if method not in ORDER_METHODS:
        raise InputError(f"--order must be one of {', '.join(ORDER_METHODS)}")
    if method in ("exact", "compact") and cost_model != "runtime":
        raise InputError(f"--order {method} needs the runtime cost model (the paper's model is "
                         f"for chains)")
    if method == "auto":
        return "fixed" if net.is_chain or cost_model != "runtime" else "exact"
    return method


def solve(model, order: str = "auto", max_states: int = MAX_STATES, **kw):
    """:func:`msfopt.solver.solve` over execution orders too: with ``order`` "exact" (or "auto"
    on a branched network) the order search picks the order, the reordered network is planned by
    the solver as usual (layout acceptance, cross-check) and the plan records the order
    (``Plan.order``: the model's op index executed at each position; null = the file's order).
    On more than ``max_states`` states "auto" keeps the file's order and says so in the note."""
    from . import solver
    from .models import load_model
    net = model if isinstance(model, Network) else load_model(model)
    method = resolve_method(net, order, kw.get("cost_model", "runtime"))
    if method == "fixed":
        plan = solver.solve(net, **kw)
        plan.dag["order_method"] = "fixed"
        return plan
    kw.pop("dag", None)   # the order search builds its own DAGs
    cm = None
    if kw.get("mcu") is not None:
        from .mcu import get_profile
        cm = get_profile(kw["mcu"]).cycle_model()
    ram = kw.get("ram")
    if ram is None and kw.get("mcu") is not None:
        from .mcu import get_profile
        ram = get_profile(kw["mcu"]).ram_bytes
    from .order_compact import compact_order
    args = dict(objective=kw.get("objective", "latency"), ram=ram,
                max_overhead=kw.get("max_overhead"), latency_budget=kw.get("latency_budget"),
                io=kw.get("io", "arena"), cycle_model=cm, modes=kw.get("modes") or FUSED_MODES,
                tiles=kw.get("tiles") or DEFAULT_TILES,
                patches=kw.get("patches") or DEFAULT_PATCHES, max_depth=kw.get("max_depth"),
                max_states=max_states, backend=kw.get("backend", "cpsat"),
                check=kw.get("check", True), time_limit=kw.get("time_limit", 60.0))
    try:
        res = (compact_order if method == "compact" else best_order)(net, **args)
    except TooManyStates:
        if order == "exact":
            raise
        res = compact_order(net, **args)    # auto: too many states for the exact search
    plan = solver.solve(res.net, **kw)   # records res.net's concat slices (make_plan)
    ident = res.order == list(range(net.n_layers))
    plan.order = None if ident else list(res.order)
    plan.model = net.name
    plan.dag.update(order_method=res.method, order_states=res.states, order_edges=res.edges,
                    order_seconds=round(res.seconds, 6), order_status=res.status,
                    order_gap=res.gap)
    if sorted(res.key) != sorted((plan.peak_ram_bytes, plan.macs, plan.est_cycles)) and \
            not plan.concat_slices:
        # (with concat slices the chain solve counts less RAM than the order search, which
        # does not model them: its key differs without any layout failing)
        # the order search does not see arena layouts: the chosen order's best plan whose
        # layout packs is worse than its optimum (another order's might pack better)
        plan.note = (plan.note + " " if plan.note else "") + (
            "order: the order search's optimum did not pack its arena layout; this is the best "
            "plan of that order that packs")
    return plan
