"""Arena layout (issue 13, part 3): the fast placement search first, CP-SAT when it misses the
plan's peak, first-fit only when neither packs.

Oracles written here, independently of msfopt.layout / msfopt.layout_exact:
- a brute-force optimum of small placement problems (every alias choice x every order of
  lowest-fit placement: a packing pushed down in offset order never grows, so some order's
  lowest-fit placement is optimal);
- a validity checker of a plan's layout that reads only the block schedules' own buffers (each
  block's resident tensors, its output, its ring region) and the network's shapes.
"""
import itertools
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings, strategies as st

from msfopt import layout, layout_exact, solver
from msfopt.dag import build_dag
from msfopt.ir import AVGPOOL, CONV, DW, Network, window_layer
from msfopt.layout import aligned_arena, plan_layout
from msfopt.layout_exact import Alias, LayoutProblem, Rect, solve_layout
from msfopt.synthetic import random_window_chain

sys.path.insert(0, str(Path(__file__).parent))
from random_nets import all_paths  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


# -- brute force over small placement problems ---------------------------------------------------

def _brute_min_arena(rects, aliases, unit):
    """Smallest arena of any valid placement (aliases: out at a chosen source's offset, alive
    from the next block; or fresh when allowed)."""
    choice_sets = [list(a.sources) + (["fresh"] if a.may_fresh else []) for a in aliases]
    best = None
    for choice in itertools.product(*choice_sets):
        parent = list(range(len(rects)))
        span = {i: (r.start, r.end) for i, r in enumerate(rects)}
        for a, c in zip(aliases, choice):
            if c != "fresh":
                parent[a.out] = c
                span[a.out] = (rects[a.out].start + 1, rects[a.out].end)

        def root(i):
            while parent[i] != i:
                i = parent[i]
            return i
        groups: dict[int, list[int]] = {}
        for i in range(len(rects)):
            groups.setdefault(root(i), []).append(i)
        members = list(groups.values())
        for order in itertools.permutations(range(len(members))):
            placed = []      # (lo, hi, t0, t1)
            top = 0
            for g in order:
                cands = sorted({0} | {-(-hi // unit) * unit for _, hi, _, _ in placed})
                for o in cands:
                    ok = True
                    for i in members[g]:
                        t0, t1 = span[i]
                        if t0 > t1 or rects[i].size == 0:
                            continue
                        for lo, hi, u0, u1 in placed:
                            if u0 <= t1 and t0 <= u1 and o < hi and lo < o + rects[i].size:
                                ok = False
                    if ok:
                        break
                for i in members[g]:
                    t0, t1 = span[i]
                    if t0 <= t1 and rects[i].size:
                        placed.append((o, o + rects[i].size, t0, t1))
                        top = max(top, o + rects[i].size)
            best = top if best is None else min(best, top)
    return best


def _valid_rects(prob, offs):
    """Every packed buffer inside the target, on the unit grid, aliases honoured, and no two
    buffers alive in a common block sharing a byte."""
    spans = {i: (r.start, r.end) for i, r in enumerate(prob.rects)}
    for a in prob.aliases:
        if offs[a.out] in [offs[s] for s in a.sources]:
            spans[a.out] = (prob.rects[a.out].start + 1, prob.rects[a.out].end)
        else:
            assert a.may_fresh, "a forced in-place output was placed fresh"
    for i, r in enumerate(prob.rects):
        assert offs[i] % prob.unit == 0 and 0 <= offs[i] and offs[i] + r.size <= prob.target
    for i, j in itertools.combinations(range(len(prob.rects)), 2):
        (a0, a1), (b0, b1) = spans[i], spans[j]
        if a0 <= b1 and b0 <= a1 and a0 <= a1 and b0 <= b1:
            ri, rj = prob.rects[i], prob.rects[j]
            assert offs[i] + ri.size <= offs[j] or offs[j] + rj.size <= offs[i], (i, j)


@st.composite
def placement_problems(draw):
    n_blocks = draw(st.integers(1, 5))
    unit = draw(st.sampled_from([1, 1, 2]))
    n = draw(st.integers(1, 6))
    rects = []
    for _ in range(n):
        a = draw(st.integers(0, n_blocks - 1))
        b = draw(st.integers(a, n_blocks - 1))
        rects.append(Rect(unit * draw(st.integers(1, 5)), a, b))
    aliases, used = [], set()
    for i, r in enumerate(rects):
        srcs = tuple(j for j, q in enumerate(rects) if j != i and q.end == r.start
                     and q.size >= r.size and j not in used)
        if srcs and r.start not in {rects[a.out].start for a in aliases} and draw(st.booleans()):
            pick = tuple(draw(st.lists(st.sampled_from(srcs), min_size=1, max_size=2,
                                       unique=True)))
            # no alias cycles: a source never aliases (directly or not) this output
            if any(a.out in pick and i in a.sources for a in aliases):
                continue
            used.update(pick)
            aliases.append(Alias(i, pick, draw(st.booleans())))
    return rects, aliases, unit


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=placement_problems())
def test_cpsat_packs_at_the_brute_force_optimum(problem):
    """CP-SAT packs exactly at the brute-force minimum arena (a valid placement) and proves that
    one unit less does not pack."""
    rects, aliases, unit = problem
    best = _brute_min_arena(rects, aliases, unit)
    prob = LayoutProblem(tuple(rects), tuple(aliases), best, unit)
    got = solve_layout(prob, time_limit=5.0)
    assert got.status == "packed"
    _valid_rects(prob, got.offsets)
    below = LayoutProblem(tuple(rects), tuple(aliases), best - 1, unit)
    assert solve_layout(below, time_limit=5.0).status == "infeasible"


def test_cpsat_layout_is_deterministic():
    rng = random.Random(7)
    rects = tuple(Rect(rng.randint(1, 40), a, a + rng.randint(0, 3))
                  for a in [rng.randint(0, 8) for _ in range(30)])
    per_block = max(sum(r.size for r in rects if r.start <= k <= r.end) for k in range(12))
    prob = LayoutProblem(rects, (), per_block + 8, 1)
    a = layout_exact._solve(prob, 3.0)
    b = layout_exact._solve(prob, 3.0)
    assert a.status == "packed" and a.offsets == b.offsets
    _valid_rects(prob, a.offsets)


# -- a plan's layout, checked from the schedules' own buffers ----------------------------------

def check_plan_layout(net: Network, scheds, io: str, lay) -> None:
    """Independent validity of ``lay`` for the plan ``scheds``: in every block, the full tensors
    it keeps (``resident``), its output and its ring region are pairwise disjoint in the arena,
    except an in-place output that overwrites one of its dying inputs at that input's offset;
    every buffer lies in the arena; float32 offsets are 4-byte aligned; an arena tensor keeps its
    one offset (a dict) for its whole life."""
    from test_concat_slices import replay_slices
    n = net.n_layers
    outs = set(net.output_ids)
    # concat slices (test_concat_slices' replay): an aliased tensor lives in its concat output
    slices = replay_slices(net, io)

    def in_arena(t):
        if t == 0 and io in ("external", "input-external"):
            return False
        return not (t in outs and io == "external") and t not in slices

    def nbytes(t):
        return net.tensor_bytes(t)

    for s, rings in zip(scheds, lay.ring_offsets):
        held = {t for t in s.resident if in_arena(t) and t != s.last + 1}
        held |= {slices[t][0] for t in s.resident if t in slices}
        out = s.last + 1
        if out in slices or out in held:   # its buffer: the concat output, placed already
            held.add(slices[out][0] if out in slices else out)
            out = None
        spans = [(lay.tensor_offset[t], nbytes(t), t) for t in sorted(held)]
        if out is not None and in_arena(out):
            o = lay.tensor_offset[out]
            srcs = [t for t in s.inplace_options if in_arena(t) and lay.tensor_offset[t] == o]
            if srcs:
                assert nbytes(out) <= nbytes(srcs[0])
            else:
                # only an unfused block may write its in-place-capable output fresh
                assert s.mode == "unfused" or not any(in_arena(t) for t in s.inplace_options)
                spans.append((o, nbytes(out), out))
        if s.rings:
            assert len(rings) == len(s.rings)
            base = rings[0] - s.rings[0].offset
            assert all(ro - r.offset == base for ro, r in zip(rings, s.rings))
            assert all(r.offset + r.bytes <= s.scratch_bytes for r in s.rings)
            spans.append((base, s.scratch_bytes, "scratch"))
        spans = sorted((o, o + b, w) for o, b, w in spans if b)
        for (a0, a1, wa), (b0, b1, wb) in zip(spans, spans[1:]):
            assert a1 <= b0, f"block {s.label}: {wa} [{a0},{a1}) overlaps {wb} [{b0},{b1})"
        assert all(0 <= a and b <= lay.arena_bytes for a, b, _ in spans)
    if net.elem_bytes == 4:
        offs = list(lay.tensor_offset.values()) + [x for r in lay.ring_offsets for x in r]
        assert all(o % 4 == 0 for o in offs)
    assert lay.arena_bytes % layout.ARENA_ALIGN == 0
    peak = aligned_arena(max(s.ram_bytes for s in scheds))
    if lay.method in ("first-fit", "cpsat-min"):
        assert lay.fallback and lay.arena_bytes > peak
    else:
        assert not lay.fallback and lay.arena_bytes == peak
    assert n >= 1


def _miss_net():
    """A 6x6x1 chain where the fast search misses the peak: dw 1x1, avgpool 3x1 (in place),
    avgpool 3x3 pad 1 -> conv 1x1 (recompute).  The fast search pins the input at offset 0 and
    the dw output at the far end; the in-place pool's output then leaves 36 + 12 free bytes
    where the recompute block needs 24 + 16.  With the dw output low (input high) it packs."""
    s = (6, 6, 1)
    l0 = window_layer(DW, s, 1, 1, 1, 0)
    l1 = window_layer(AVGPOOL, l0.out_shape, None, (3, 1), 1, 0)
    l2 = window_layer(AVGPOOL, l1.out_shape, None, 3, 1, 1)
    l3 = window_layer(CONV, l2.out_shape, 1, 1, 1, 0)
    return Network(name="miss", input_shape=s, layers=[l0, l1, l2, l3]).validate()


def test_fast_search_miss_is_packed_by_cpsat():
    net = _miss_net()
    dag = build_dag(net, io="arena", tiles=(1, 2), patches=(2, 4))
    want = ["0", "1 inplace(p=1)", "2-3 recompute(p=4)"]
    path = [p for p in all_paths(dag) if [dag.schedules[e].label for e in p] == want][0]
    scheds = [dag.schedules[e] for e in path]
    peak = aligned_arena(max(s.ram_bytes for s in scheds))
    for prefer in ("far", "low"):     # the fast search really misses it
        assert layout._search_layout(net, scheds, "arena", peak, 20000, prefer) is None
    lay = plan_layout(net, scheds, "arena")
    assert lay.method == "cpsat" and lay.cpsat_status == "packed" and not lay.fallback
    check_plan_layout(net, scheds, "arena", lay)
    # without CP-SAT it is first-fit in a larger arena, and the solver would reject the plan
    layout.USE_CPSAT = False
    try:
        old = plan_layout(net, scheds, "arena")
    finally:
        layout.USE_CPSAT = True
    assert old.fallback and old.method == "first-fit" and old.arena_bytes > peak
    # a plan that needed CP-SAT is accepted by the solver now
    assert solver.layout_acceptor(dag)(path)


def test_every_path_of_the_miss_net_is_valid():
    """Every plan of the miss net's DAG: a valid layout at exactly its peak (the fast search or,
    where it misses, CP-SAT)."""
    net = _miss_net()
    for io in ("arena", "external", "input-external"):
        dag = build_dag(net, io=io, tiles=(1, 2), patches=(2, 4))
        methods = set()
        for p in all_paths(dag):
            scheds = [dag.schedules[e] for e in p]
            lay = plan_layout(net, scheds, io)
            check_plan_layout(net, scheds, io, lay)
            methods.add(lay.method)
        assert "first-fit" not in methods
        if io == "arena":
            assert methods == {"fast", "cpsat"}


def _infeasible_net():
    """avgpool 2x3 -> dw 1x1 -> avgpool 2x2 -> dw 3x3 on 9x9x7, found by a random search: run
    as in-place pool, dw, in-place pool, dw it has peak 784 B (blocks 1 and 3: two 392 B / 343 +
    441 B tensors), but no layout packs there: block 1 forces the in-place output low and the dw
    output at 392, the second in-place output then sits at [392, 735) and block 3's 441 B output
    finds 392 + 49 free bytes."""
    l0 = window_layer(AVGPOOL, (9, 9, 7), None, (2, 3), 1, 0)
    l1 = window_layer(DW, l0.out_shape, None, 1, 1, 0)
    l2 = window_layer(AVGPOOL, l1.out_shape, None, 2, 1, (0, 1, 0, 0))
    l3 = window_layer(DW, l2.out_shape, None, 3, 1, (1, 2, 1, 2))
    return Network(name="nopack", input_shape=(9, 9, 7), layers=[l0, l1, l2, l3]).validate()


def test_cpsat_infeasible_gets_the_smallest_larger_arena():
    """A plan CP-SAT proves cannot pack at its peak (the brute force agrees): ``fallback`` set,
    still valid, larger than the peak -- and exactly the smallest arena that exists (the brute
    force's minimum over every placement), which CP-SAT proves; the solver rejects the plan."""
    net = _infeasible_net()
    dag = build_dag(net, io="arena", tiles=(1, 2), patches=(2, 4))
    want = ["0 inplace(p=1)", "1", "2 inplace(p=1)", "3"]
    path = [p for p in all_paths(dag) if [dag.schedules[e].label for e in p] == want][0]
    scheds = [dag.schedules[e] for e in path]
    peak = aligned_arena(max(s.ram_bytes for s in scheds))
    assert peak == 784
    lay = plan_layout(net, scheds, "arena")
    assert lay.fallback and lay.arena_bytes > peak
    check_plan_layout(net, scheds, "arena", lay)
    prob, _, _ = layout.layout_problem(net, scheds, "arena", peak)
    best = _brute_min_arena(prob.rects, prob.aliases, prob.unit)
    assert best > peak
    assert lay.arena_bytes == aligned_arena(best), (lay.method, lay.arena_bytes, best)
    assert lay.cpsat_status in ("optimal", "infeasible; first-fit optimal")
    # without the minimisation it was first-fit's arena (the old fallback)
    layout.USE_CPSAT = False
    try:
        old = plan_layout(net, scheds, "arena")
    finally:
        layout.USE_CPSAT = True
    print("first-fit", old.arena_bytes, "minimum", lay.arena_bytes)
    assert not solver.layout_acceptor(dag)(path)


def test_checker_catches_overlaps():
    """The validity checker is not vacuous: a live tensor moved onto another, a patch buffer
    over its block's input, a fused output over its input are caught."""
    net = _miss_net()
    dag = build_dag(net, io="arena", tiles=(1, 2), patches=(2, 4))
    want = ["0", "1 inplace(p=1)", "2-3 recompute(p=4)"]
    path = [p for p in all_paths(dag) if [dag.schedules[e].label for e in p] == want][0]
    scheds = [dag.schedules[e] for e in path]
    lay = plan_layout(net, scheds, "arena")
    check_plan_layout(net, scheds, "arena", lay)
    bad = replace(lay, tensor_offset={**lay.tensor_offset, 1: lay.tensor_offset[0]})
    with pytest.raises(AssertionError):
        check_plan_layout(net, scheds, "arena", bad)
    rings = list(lay.ring_offsets)
    rings[2] = (lay.tensor_offset[2] + 4,)     # the patch buffer over the block's input
    with pytest.raises(AssertionError):
        check_plan_layout(net, scheds, "arena", replace(lay, ring_offsets=rings))
    out = lay.tensor_offset[4]
    with pytest.raises(AssertionError):   # the recompute output onto its input
        check_plan_layout(net, scheds, "arena", replace(
            lay, tensor_offset={**lay.tensor_offset, 4: lay.tensor_offset[2]}))
    assert out != lay.tensor_offset[2]


def _random_chain(rng):
    return random_window_chain(rng, hw=(5, 9), channels=(1, 3), layers=(2, 5), max_out=4,
                               name="r")


def test_every_layout_of_small_random_chains_is_valid_and_exact():
    """Every path (up to 80 per DAG) of small random chains: the layout is valid and at exactly
    the plan's peak; a first-fit fallback only where the brute force confirms that nothing
    packs at the peak."""
    rng = random.Random(13)
    methods = {"fast": 0, "cpsat": 0, "cpsat-min": 0, "first-fit": 0}
    for _ in range(30):
        net = _random_chain(rng)
        for io in ("arena", "external"):
            dag = build_dag(net, io=io, tiles=(1, 2), patches=(2, 4))
            for p in all_paths(dag)[:80]:
                scheds = [dag.schedules[e] for e in p]
                lay = plan_layout(net, scheds, io)
                check_plan_layout(net, scheds, io, lay)
                methods[lay.method] += 1
                if lay.fallback:
                    prob, _, _ = layout.layout_problem(net, scheds, io, 0)
                    if len(prob.rects) <= 7:
                        best = _brute_min_arena(prob.rects, prob.aliases, prob.unit)
                        assert best > aligned_arena(max(s.ram_bytes for s in scheds))
                        if lay.cpsat_status in ("optimal", "infeasible; first-fit optimal"):
                            assert lay.arena_bytes == aligned_arena(best)
    assert methods["fast"] > 0


# -- real plans ------------------------------------------------------------------------------

def _plan_scheds(dag, plan):
    keys = {(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], int(dag.tile[e])): e
            for e in range(dag.n_edges)}
    return [dag.schedules[keys[(b.first_layer, b.last_layer, b.mode, b.tile)]]
            for b in plan.blocks]


REAL = ["mbv2-w0.35", "mcunetv2-vww5-res", "mcunet-320k-res",
        str(SHARED / "mlperf_tiny_resnet8_int8.tflite"),
        str(SHARED / "kws_cnn_49x10_int8_qop.onnx"),
        str(SHARED / "tv_squeezenet1_1_r128.onnx")]


@pytest.mark.parametrize("model", REAL, ids=lambda m: Path(m).name)
def test_real_plans_layouts_valid_and_at_peak(model):
    """Min-RAM (free and at F = 1.0) and min-latency plans of zoo and shared models, plus a sample
    of other paths of their DAGs: every layout valid and == the plan's peak unless first-fit."""
    for io in ("arena", "external"):
        net, dag, _ = solver.prepare(model, io=io)
        lo = solver.graph.min_feasible_ram(dag)
        plans = [solver.solve(model, objective="ram", backend="graph", dag=dag, io=io,
                              check=False),
                 solver.solve(model, objective="ram", backend="graph", dag=dag, io=io,
                              max_overhead=1.0, check=False),
                 solver.solve(model, objective="latency", backend="graph", dag=dag, io=io,
                              ram=int(lo * 1.25), check=False)]
        for p in plans:
            scheds = _plan_scheds(dag, p)
            lay = plan_layout(net, scheds, io)
            check_plan_layout(net, scheds, io, lay)
            assert p.arena_bytes == lay.arena_bytes == aligned_arena(p.peak_ram_bytes)
        rng = random.Random(3)
        out = dag.out_edges()
        for _ in range(4):           # random complete plans, not only optimal ones
            v, path = 0, []
            while v != dag.n_nodes - 1:
                e = rng.choice(out[v])
                path.append(e)
                v = int(dag.dst[e])
            scheds = [dag.schedules[e] for e in path]
            check_plan_layout(net, scheds, io, plan_layout(net, scheds, io))


def _reject_net():
    """A 7-layer chain (found by scripts/bench_layout.py --random) whose smallest-RAM plans at
    F = 1.0 the fast search cannot lay out at their peak: before CP-SAT the solver rejected 132
    plans and returned 1,134 B; now the first plan packs, at 1,080 B."""
    s = (10, 9, 5)
    specs = [(CONV, 7, 1, 0), (DW, None, 1, 0), (AVGPOOL, None, 3, (0, 1, 0, 1)),
             (DW, None, 1, 0), (AVGPOOL, None, (2, 1), (1, 0, 1, 0)), (CONV, 8, 1, 0),
             (CONV, 7, 1, 0)]
    layers = []
    for op, c, k, pad in specs:
        layers.append(window_layer(op, s, c, k, 1, pad))
        s = layers[-1].out_shape
    return Network(name="rejects", input_shape=(10, 9, 5), layers=layers).validate()


@pytest.mark.parametrize("backend", ["graph", "cpsat"])
def test_solver_no_longer_rejects_plans_cpsat_packs(backend):
    """Min RAM at F = 1.0: no plan rejected, and the answer is the smallest peak over every
    complete plan without MAC overhead (enumerated here), laid out exactly at that peak."""
    net = _reject_net()
    _, dag, _ = solver.prepare(net, io="arena")
    best = min(dag.totals(p)["peak"] for p in all_paths(dag)
               if dag.totals(p)["macs"] <= net.vanilla_macs)
    plan = solver.solve(net, objective="ram", max_overhead=1.0, backend=backend, dag=dag)
    assert plan.layout_rejected == 0
    assert plan.peak_ram_bytes == best == 1080 and plan.arena_bytes == aligned_arena(best)
    scheds = _plan_scheds(dag, plan)
    lay = plan_layout(net, scheds, "arena")
    assert lay.method == "cpsat"
    check_plan_layout(net, scheds, "arena", lay)


@pytest.mark.parametrize("which", ["miss", "rejects", "min"])
def test_cpsat_layout_runs_bit_exact_in_c(which, tmp_path):
    """A plan laid out by CP-SAT -- at its peak, or ("min") in the smallest larger arena when
    nothing packs at the peak -- generated as C (sanitised host build with guard zones) and run:
    bit-exact with onnxruntime on the original ONNX file, arena as laid out."""
    from msfopt.weights import init_weights
    from test_codegen import header_arena, original_file_net, original_reference, rand_input, \
        run_plan
    built = init_weights({"miss": _miss_net, "rejects": _reject_net,
                          "min": _infeasible_net}[which](), seed=5)
    net = original_file_net(built, tmp_path / "net.onnx", "int8")
    dag = build_dag(net, io="arena", tiles=(1, 2), patches=(2, 4))
    if which != "rejects":
        want = (["0", "1 inplace(p=1)", "2-3 recompute(p=4)"] if which == "miss" else
                ["0 inplace(p=1)", "1", "2 inplace(p=1)", "3"])
        path = [p for p in all_paths(dag) if [dag.schedules[e].label for e in p] == want][0]
    else:
        plan = solver.solve(net, objective="ram", max_overhead=1.0, backend="graph", dag=dag)
        path = [e for e in range(dag.n_edges) for b in plan.blocks
                if (int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], int(dag.tile[e]))
                == (b.first_layer, b.last_layer, b.mode, b.tile)]
    scheds = [dag.schedules[e] for e in path]
    lay = plan_layout(net, scheds, "arena")
    assert lay.method == ("cpsat-min" if which == "min" else "cpsat")
    blocks = [(s.first, s.last, s.mode, s.tile) for s in scheds]
    x = rand_input(net, 3)
    gen, y = run_plan(net, blocks, tmp_path, "g", "arena", x, sanitize=True)
    assert gen.tensor_offsets == lay.tensor_offset
    assert header_arena(gen) == gen.arena_bytes == lay.arena_bytes
    assert np.array_equal(y, original_reference(net, x))
    if which == "rejects":
        # on the MCU too: the linked arena object (nm -S) is the CP-SAT layout's, bit-exact
        from conftest import require_tools
        from msfopt.mcu_runtime.mcurun import run_target
        from msfopt.mcu_runtime.toolchain import missing_tools
        require_tools(missing_tools("cortex-m4"), "toolchain")
        r = run_target(gen, "cortex-m4", x, original_reference(net, x))
        assert r.exit_code == 0 and r.bit_exact, r.verdict
        assert r.arena_bytes == lay.arena_bytes == plan.arena_bytes


def test_every_plan_rejected_returns_the_best_laid_out_larger():
    """A graph whose every plan (here: its only one) cannot be laid out at its peak: the solver
    returns the best plan with its larger first-fit arena (noted), not "infeasible" -- on every
    backend -- and a RAM budget below that arena is infeasible."""
    from msfopt.errors import InfeasibleError
    from msfopt.ir import CONCAT, SHUFFLE, SLICE, Layer
    s = (5, 5, 2)
    half = (5, 5, 1)
    layers = [window_layer(CONV, s, 2, 1, 1, 0)]

    def shuffle_block(t):      # split, conv on one half, concat, channel shuffle
        return [Layer(op=SLICE, in_shape=s, out_shape=half, srcs=(t,), chan=(0, 1)),
                Layer(op=SLICE, in_shape=s, out_shape=half, srcs=(t,), chan=(1, 2)),
                window_layer(CONV, half, 1, 1, 1, 0),
                Layer(op=CONCAT, in_shape=half, out_shape=s, axis=2),
                Layer(op=SHUFFLE, in_shape=s, out_shape=s, groups=2)]
    for base in (1, 6):
        blk = shuffle_block(base)
        blk[2].srcs = (base + 2,)
        blk[3].srcs = (base + 1, base + 3)
        blk[4].srcs = (base + 4,)
        layers += blk
    net = Network(name="allrejected", input_shape=s, layers=layers,
                  dtype="float32").validate()
    _, dag, _ = solver.prepare(net, io="arena")
    assert len(all_paths(dag)) == 1
    for backend in ("graph", "cpsat", "cbc"):
        plan = solver.solve(net, objective="ram", backend=backend, dag=dag)
        assert plan.peak_ram_bytes == 400 and plan.arena_bytes > 400, backend
        assert plan.layout_rejected == 1 and "layout" in plan.note
    with pytest.raises(InfeasibleError):
        solver.solve(net, objective="ram", ram=plan.arena_bytes - 4, dag=dag)
