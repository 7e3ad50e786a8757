"""Execution order jointly with fusion (msfopt.order), against brute force written here.

The oracle: every topological order of a random small DAG CNN, the network re-numbered in that
order (by this file's own code), the chain model's fusion DAG of it (msfopt.dag, unpruned) and
every path of that DAG (every block partition in every variant).  The order DAG must have exactly
the edges those chain DAGs have (same executed set, ops, variant, RAM, MACs, cycles), and its
optimum -- by graph search, CP-SAT and CBC -- must equal the brute-force optimum over orders x
partitions, for minimum RAM and for minimum latency under a RAM cap.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples
from random_nets import all_paths

from msfopt import order as morder
from msfopt.dag import build_dag
from msfopt.ir import ACT, ADD, AVGPOOL, CONCAT, CONV, DW, MAXPOOL, Layer, Network, window_layer
from msfopt.solver import answer, make_query


@pytest.fixture(autouse=True)
def _no_concat_slices(monkeypatch):
    """The order search models no concat slices (msfopt.schedule.without_slices: which inputs
    are slices depends on the order); the chain DAGs it is compared with here must not either."""
    from msfopt import schedule
    monkeypatch.setattr(schedule, "ALIAS_CONCAT", False)

KINDS = ("conv", "conv1", "dw", "pool", "act", "add", "concat")
#: every execution mode, with two H-cache tiles and two recompute patches (the brute force builds
#: one chain DAG per topological order: fewer variants keep 300 examples within the suite's time)
VARIANTS = dict(tiles=(1, 2), patches=(2, 4))
#: MSFOPT_ORDER_FULL=1 (scripts/nightly.sh): nets of up to 9 ops, every backend -- graph search,
#: CP-SAT, CBC and the compact CP-SAT model -- on both queries of every example
FULL = __import__("os").environ.get("MSFOPT_ORDER_FULL", "") not in ("", "0")
MAX_OPS = 9 if FULL else 7


@st.composite
def dag_nets(draw, max_ops=MAX_OPS):
    """A random DAG CNN: each op reads recent tensors (branches), adds and concats join them;
    every tensor nobody reads is a graph output (several outputs happen)."""
    h = draw(st.integers(3, 7))
    w = draw(st.integers(3, 7))
    shapes = [(h, w, draw(st.integers(1, 3)))]
    layers = []
    n = draw(st.integers(2, max_ops))
    for _ in range(n):
        kind = draw(st.sampled_from(KINDS))
        k = len(shapes)
        a = draw(st.integers(max(0, k - 3), k - 1))
        sa = shapes[a]
        L = None
        if kind in ("add", "concat"):
            same = [t for t in range(k) if t != a and (shapes[t] == sa if kind == "add"
                                                       else shapes[t][:2] == sa[:2])]
            if same:
                b = draw(st.sampled_from(same))
                if kind == "add":
                    L = Layer(op=ADD, in_shape=sa, out_shape=sa, srcs=(a, b))
                else:
                    L = Layer(op=CONCAT, in_shape=sa, out_shape=(sa[0], sa[1],
                                                                 sa[2] + shapes[b][2]),
                              srcs=(a, b), axis=2)
        elif kind == "act":
            L = Layer(op=ACT, in_shape=sa, out_shape=sa, fn="relu", srcs=(a,))
        elif kind == "dw":
            L = window_layer(DW, sa, None, 3, 1, 1)
        elif kind == "pool":
            op = draw(st.sampled_from([MAXPOOL, AVGPOOL]))
            L = window_layer(op, sa, None, 3, 1, 1) if min(sa[:2]) < 4 or draw(st.booleans()) \
                else window_layer(op, sa, None, 2, 2, 0)
        if L is None:   # conv (also when a join found no partner)
            kk = 1 if kind == "conv1" else 3
            s = 2 if kk == 3 and min(sa[:2]) >= 4 and draw(st.booleans()) else 1
            L = window_layer(CONV, sa, draw(st.integers(1, 4)), kk, s, kk // 2)
        if L.op != ADD and L.op != CONCAT:
            L.srcs = (a,)
        layers.append(L)
        shapes.append(L.out_shape)
    read = {t for L in layers for t in L.srcs}
    outs = tuple(t for t in range(1, len(shapes)) if t not in read)
    return Network(name="random-dag", input_shape=shapes[0], layers=layers, dtype="float32",
                   outputs=outs).validate()


# -- the brute force (independent of msfopt.order) -------------------------------------------------

def topological_orders(net):
    n = net.n_layers
    preds = [{t - 1 for t in L.srcs if t > 0} for L in net.layers]
    out = []

    def walk(done, acc):
        if len(acc) == n:
            out.append(list(acc))
            return
        for o in range(n):
            if o not in done and preds[o] <= done:
                done.add(o)
                acc.append(o)
                walk(done, acc)
                acc.pop()
                done.discard(o)
    walk(set(), [])
    return out


def renumber(net, order):
    """The network executed in ``order``: tensor o + 1 becomes position(o) + 1."""
    newt = {0: 0}
    for k, o in enumerate(order):
        newt[o + 1] = k + 1
    layers = []
    for o in order:
        L = copy.copy(net.layers[o])
        L.srcs = tuple(newt[t] for t in net.layers[o].srcs)
        layers.append(L)
    return replace(net, layers=layers, outputs=tuple(newt[t] for t in net.output_ids))


def brute_force(net, io):
    """(executed-set, ops, mode, tile) -> (ram, macs, cycles) of every chain-model edge over every
    order, and every complete plan's (peak, cycles, macs, order, blocks)."""
    edges, plans = {}, []
    for order in topological_orders(net):
        r = renumber(net, order)
        if r.n_layers not in r.output_ids:
            continue   # the chain model needs the last op to produce an output
        dag = build_dag(r, io=io, prune=False, **VARIANTS)
        for e in range(dag.n_edges):
            i, j = int(dag.src[e]), int(dag.dst[e])
            key = (frozenset(order[:i]), tuple(order[i:j]), dag.mode[e], int(dag.tile[e]))
            val = (int(dag.ram[e]), int(dag.macs[e]), int(dag.cycles[e]))
            assert edges.setdefault(key, val) == val, f"chain edge {key} differs across orders"
        for p in all_paths(dag):
            t = dag.totals(p)
            plans.append((t["peak"], t["cycles"], t["macs"]))
    return edges, plans


def order_dag_edges(od):
    out = {}
    for e in range(od.n_edges):
        done = od.state_masks[int(od.src[e])]
        key = (frozenset(o for o in range(od.net.n_layers) if (done >> o) & 1), od.ops[e],
               od.mode[e], int(od.tile[e]))
        val = (int(od.ram[e]), int(od.macs[e]), int(od.cycles[e]))
        assert out.setdefault(key, val) == val
    return out


@settings(max_examples=examples(300), deadline=None, suppress_health_check=list(HealthCheck))
@given(net=dag_nets(), io=st.sampled_from(["arena", "external"]), data=st.data())
def test_order_dag_equals_brute_force_over_orders_and_partitions(net, io, data):
    edges, plans = brute_force(net, io)
    od = morder.build_order_dag(net, io=io, prune=False, **VARIANTS)
    assert order_dag_edges(od) == edges
    min_peak = min(p[0] for p in plans)
    want_ram = min((p[0], p[2], p[1]) for p in plans)          # peak, then MACs, then cycles
    cap = data.draw(st.sampled_from(sorted({p[0] for p in plans})))
    want_lat = min((p[1], p[0], p[2]) for p in plans if p[0] <= cap)
    dag = morder.build_order_dag(net, io=io, **VARIANTS)       # pruned: the same optimum
    # graph search answers both queries; CP-SAT one of them (drawn) and CBC (a process per
    # solve) one of them in about half the examples, to keep the suite's time: over the
    # examples every backend meets both objectives
    for b in ("graph", "cpsat", "cbc"):
        if b == "cbc" and not FULL and not data.draw(st.booleans(), label="cbc runs"):
            continue
        which = ("ram", "latency") if b == "graph" or FULL else (data.draw(
            st.sampled_from(["ram", "latency"]), label=f"{b} query"),)
        if "ram" in which:
            a = answer(dag, make_query(dag, "ram"), b)
            assert a.key == want_ram, f"{b}: min RAM {a.key} != brute force {want_ram}"
        if "latency" in which:
            a = answer(dag, make_query(dag, "latency", cap), b)
            assert a.key == want_lat, f"{b}: min latency under {cap} {a.key} != {want_lat}"
    assert want_ram[0] == min_peak
    if FULL:   # the compact CP-SAT order model on the same example (no state enumeration)
        from msfopt.order_compact import solve_compact
        for q, want in ((make_query(dag, "ram"), want_ram),
                        (make_query(dag, "latency", cap), want_lat)):
            c = solve_compact(net, q, io=io, **VARIANTS)
            assert c.status == "optimal" and c.key == want, f"compact: {c.key} != {want}"
    # the chosen order, re-planned by the chain model, reaches the same optimum
    res = morder.best_order(net, objective="ram", io=io, check=False, **VARIANTS)
    chain = build_dag(res.net, io=io, **VARIANTS)
    from msfopt.solver import graph_answer
    assert graph_answer(chain, make_query(chain, "ram")).key == want_ram


def test_cbc_answers_a_program_its_preprocessing_called_infeasible():
    """Found by the brute force above (CI): two convs off the input, two dw off the first, three
    outputs, io external -- every order DAG edge needs 112 B, and CBC 2.10.3's preprocessing called
    the min-RAM program infeasible (the CBC backend runs with it off).  The minimum here is
    written down by hand: the input and
    every output are external, so the arena holds one 4x7x1 float tensor (112 B) at most."""
    s = (4, 7, 1)
    layers = [window_layer(CONV, s, 1, 3, 1, 1), window_layer(CONV, s, 1, 3, 1, 1),
              window_layer(DW, s, None, 3, 1, 1), window_layer(DW, s, None, 3, 1, 1)]
    for L, src in zip(layers, (0, 0, 1, 1)):
        L.srcs = (src,)
    net = Network(name="cbc-preprocess", input_shape=s, layers=layers, dtype="float32",
                  outputs=(2, 3, 4)).validate()
    dag = morder.build_order_dag(net, io="external", **VARIANTS)
    for b in ("graph", "cbc"):
        a = answer(dag, make_query(dag, "ram"), b)
        assert a.status == "optimal" and a.key[0] == 112, (b, a.status, a.key)


def test_reorder_keeps_outputs_and_rejects_bad_orders():
    net = _two_branch()
    r = morder.reorder(net, [1, 0, 2])
    assert r.layers[0].srcs == (0,) and r.layers[1].srcs == (0,)
    assert r.layers[2].srcs == (2, 1)      # old tensors 1, 2 are now 2, 1
    with pytest.raises(morder.InputError):
        morder.reorder(net, [2, 0, 1])
    with pytest.raises(morder.InputError):
        morder.reorder(net, [0, 0, 2])


def _two_branch():
    a = window_layer(CONV, (6, 6, 2), 3, 3, 1, 1)
    b = window_layer(CONV, (6, 6, 2), 3, 1, 1, 0)
    a.srcs, b.srcs = (0,), (0,)
    add = Layer(op=ADD, in_shape=(6, 6, 3), out_shape=(6, 6, 3), srcs=(1, 2))
    return Network(name="two", input_shape=(6, 6, 2), layers=[a, b, add],
                   dtype="float32").validate()


def test_chain_has_one_state_per_boundary():
    """A chain's order DAG is its chain DAG: N + 1 states, the same optimum."""
    from msfopt.ir import chain
    net = chain("c", (12, 12, 3), [(CONV, 4, 3, 1, 1), (DW, 4, 3, 1, 1), (CONV, 6, 1, 1, 0),
                                   (MAXPOOL, 6, 2, 2, 0)], dtype="float32")
    od = morder.build_order_dag(net)
    assert od.states == net.n_layers + 1
    dag = build_dag(net)
    for obj in ("ram", "latency"):
        assert answer(od, make_query(od, obj), "graph").key == \
            answer(dag, make_query(dag, obj), "graph").key
    assert len(topological_orders(net)) == 1
    assert list(itertools.chain.from_iterable(od.ops[e] for e in od.vanilla_path())) == \
        list(range(net.n_layers))
    assert np.all(od.dst > od.src)


# -- the chosen orders run: host and cortex-m4, against the oracle on the ORIGINAL file ----------

#: shared models whose minimum-RAM order differs from the file's (scripts/order_table.py)
REORDERED = {"keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite": "cortex-m4",
             "tv_shufflenet_v2_x0_5_r128.onnx": "cortex-m4-psram"}


@pytest.mark.parametrize("file", list(REORDERED))
def test_chosen_order_runs_like_the_oracle(file, tmp_path):
    """The minimum-RAM plan over every order: its order differs from the file's, the generated
    C of the reordered network is bit-exact (int8) / within 1e-4 (float32) with tflite-micro /
    onnxruntime on the original file on the host, the linked arena is the plan's, and the int8
    plans also run on cortex-m4 under QEMU with the predicted arena: the int8 detector bit-exact
    with tflite-micro, the float ShuffleNet bit-exact with the host build (itself within float
    tolerance of onnxruntime); its 5.5 MB of weights take the larger memory map of
    scripts/run_graph_models.py (mps2-an386's PSRAM)."""
    from conftest import SHARED_MODELS, require, require_tools
    from test_graph_models import _elf_arena
    from msfopt import oracles
    from msfopt.models import load_model
    from msfopt.mcu_runtime.codegen import generate
    from msfopt.mcu_runtime.hostrun import build_host, run_host
    require("../shared/models")
    path = SHARED_MODELS / file
    net = load_model(str(path))
    plan = morder.solve(net, objective="ram", order="exact", backend="graph", check=False)
    assert plan.order is not None and plan.order != list(range(net.n_layers))
    run_net = plan.network(net)
    assert morder.is_topological(net, plan.order)
    # the reordered plan is strictly better than the file's order for ShuffleNet
    fixed = morder.solve(net, objective="ram", order="fixed", backend="graph", check=False)
    assert plan.peak_ram_bytes <= fixed.peak_ram_bytes
    rng = np.random.default_rng(3)
    if net.dtype == "int8":
        xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(2)]
    else:
        xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(2)]
    ref = oracles.reference(run_net, xs, path)
    assert ref.kind == "external"
    gen = generate(run_net, plan.blocks, tmp_path / "g")
    assert gen.arena_bytes == plan.arena_bytes
    exe = build_host(gen, guard=16)
    assert _elf_arena(exe) == gen.arena_bytes + 32
    for x, want in zip(xs, ref.ys):
        ok, fig = oracles.compare(run_host(gen, exe, x), want, net.dtype)
        assert ok, f"{file}: {fig}"
    target = REORDERED[file]
    from msfopt.mcu_runtime.mcurun import expected_reference, run_target
    from msfopt.mcu_runtime.toolchain import missing_tools
    require_tools(missing_tools("cortex-m4"), "toolchain")
    prof = target
    if target == "cortex-m4-psram":
        import sys
        from pathlib import Path as _P
        sys.path.insert(0, str(_P(__file__).resolve().parent.parent / "scripts"))
        import run_graph_models as rgm
        prof = rgm.big_profile("cortex-m4")
    r = run_target(gen, prof, xs[0], expected_reference(gen, run_net, xs[0], str(path)))
    assert r.exit_code == 0 and r.bit_exact, r.verdict
    assert r.arena_bytes == plan.arena_bytes


def test_cli_order_end_to_end(tmp_path):
    """The CLI: ``solve --order exact --json`` records the order, ``--order fixed`` does not;
    ``inspect --plan`` lists the layers in the plan's order with their blocks; ``codegen --plan``
    + ``run`` execute the reordered plan against onnxruntime on the original file (exit 0)."""
    import json
    import subprocess
    import sys
    from conftest import SHARED_MODELS, require
    require("../shared/models")
    model = SHARED_MODELS / "tv_shufflenet_v2_x0_5_r128.onnx"

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "msfopt.cli", *map(str, args)],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path,
                           env={**__import__("os").environ, "COLUMNS": "200"})
        assert p.returncode == 0, p.stderr
        return p.stdout
    out = cli("solve", model, "--objective", "ram", "--json", tmp_path / "p.json")
    assert "searched jointly" in out
    plan = json.loads((tmp_path / "p.json").read_text())
    assert plan["order"] and plan["dag"]["order_method"] == "exact"
    fixed = json.loads(cli("solve", model, "--objective", "ram", "--order", "fixed", "--json", "-"))
    assert fixed["order"] is None and fixed["peak_ram_bytes"] > plan["peak_ram_bytes"]
    text = cli("inspect", model, "--plan", tmp_path / "p.json")
    assert "plan order" in text and "file op #" in text
    rows = [ln.split("│") for ln in text.splitlines() if ln.startswith("│")]
    assert [int(r[2]) for r in rows] == plan["order"]
    cli("codegen", model, "--plan", tmp_path / "p.json", "-o", tmp_path / "gen")
    assert "output matches the reference" in cli("run", tmp_path / "gen")


def test_auto_takes_the_compact_model_when_states_are_too_many():
    """``order="auto"``: the order DAG when its states fit, the compact CP-SAT model beyond
    ``max_states`` -- with the same optimum where both prove one; "exact" refuses instead."""
    from msfopt.synthetic_graphs import inception_like
    net = inception_like(blocks=2, branches=4, depth=3)
    exact = morder.solve(net, objective="ram", order="auto", backend="graph", check=False)
    assert exact.dag["order_method"] == "exact" and exact.dag["order_states"] > 100
    compact = morder.solve(net, objective="ram", order="auto", max_states=100, backend="graph",
                           check=False, time_limit=30)
    assert compact.dag["order_method"] == "compact"
    if compact.dag["order_status"] == "optimal":
        assert compact.peak_ram_bytes == exact.peak_ram_bytes
    assert compact.peak_ram_bytes >= exact.peak_ram_bytes
    with pytest.raises(morder.TooManyStates):
        morder.solve(net, objective="ram", order="exact", max_states=100, check=False)
