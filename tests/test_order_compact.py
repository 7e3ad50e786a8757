"""The compact CP-SAT model of execution order x fusion (msfopt.order_compact) against the downset
search (msfopt.order, itself checked against brute force over orders x partitions in
test_order.py).

* random DAG CNNs of test_order's strategy: the same optimum key for minimum RAM and for minimum
  latency under a RAM cap (drawn among the order DAG's edge RAMs, so infeasible caps happen too);
  the returned order and blocks are a path of the chain model's fusion DAG of the network
  re-numbered in that order (msfopt.dag, unpruned) with exactly the returned key;
* branched shared models: the same minimum RAM;
* a synthetic Inception-like graph with more states than the downset search is allowed: it raises
  TooManyStates there, the compact model still answers, and its answer equals the downset optimum
  computed without the limit.
"""
from __future__ import annotations

import itertools

import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_order import dag_nets

from msfopt import order as morder
from msfopt.dag import build_dag
from msfopt.order_compact import compact_order, solve_compact
from msfopt.solver import answer, make_query
from msfopt.synthetic_graphs import densenet_like, inception_like


@pytest.fixture(autouse=True)
def _no_concat_slices(monkeypatch):
    """The order search models no concat slices (msfopt.schedule.without_slices: which inputs
    are slices depends on the order); the chain DAGs it is compared with here must not either."""
    from msfopt import schedule
    monkeypatch.setattr(schedule, "ALIAS_CONCAT", False)


def _chain_totals(net, io, order, blocks, stages):
    """Every key the returned blocks can have on the chain model's DAG of the reordered network
    (a block may match several edges: in-place or not, same mode and tile)."""
    r = morder.reorder(net, order)
    dag = build_dag(r, io=io, prune=False)
    options = []
    for first, last, mode, tile in blocks:
        es = [e for e in range(dag.n_edges) if int(dag.src[e]) == first
              and int(dag.dst[e]) == last + 1 and dag.mode[e] == mode and int(dag.tile[e]) == tile]
        assert es, f"block {(first, last, mode, tile)} is not an edge of the chain DAG"
        options.append(es)
    keys = set()
    for path in itertools.product(*options):
        t = dag.totals(list(path))
        keys.add(tuple(t[s] for s in stages))
    return keys


@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(net=dag_nets(), io=st.sampled_from(["arena", "external"]), data=st.data())
def test_compact_equals_downset_search(net, io, data):
    dag = morder.build_order_dag(net, io=io)
    q = make_query(dag, "ram")
    want = answer(dag, q, "graph")
    got = solve_compact(net, q, io=io, time_limit=20)
    assert got.status == "optimal" and got.gap == 0.0
    assert got.key == want.key, f"min RAM: compact {got.key} != downset {want.key}"
    assert got.key in _chain_totals(net, io, got.order, got.blocks, ("peak", "macs", "cycles"))
    cap = data.draw(st.sampled_from(sorted({int(r) for r in dag.ram} | {want.key[0] - 1})))
    q2 = make_query(dag, "latency", cap)
    want2 = answer(dag, q2, "graph")
    got2 = solve_compact(net, q2, io=io, time_limit=20)
    if want2.status == "infeasible":
        assert got2.status == "infeasible"
        return
    assert got2.status == "optimal"
    assert got2.key == want2.key, f"latency under {cap}: compact {got2.key} != {want2.key}"
    assert got2.key[1] <= q2.ram_cap
    assert got2.key in _chain_totals(net, io, got2.order, got2.blocks,
                                     ("cycles", "peak", "macs"))


SHARED = ["mlperf_tiny_resnet8_int8.tflite", "tv_squeezenet1_1_r128.onnx",
          "keras_unet_r96_int8.tflite", "torch_unet_lrelu_r64.onnx",
          "tv_shufflenet_v2_x0_5_r128.onnx"]


@pytest.mark.parametrize("file", SHARED)
def test_compact_min_ram_on_shared_models(file):
    from conftest import SHARED_MODELS, require
    from msfopt.models import load_model
    require("../shared/models")
    net = load_model(str(SHARED_MODELS / file))
    ref = morder.best_order(net, objective="ram", check=False)
    res = compact_order(net, objective="ram", time_limit=60)
    assert res.key == ref.key
    assert morder.is_topological(net, res.order)


def test_wide_graph_beyond_the_state_limit():
    """Three 4-branch Inception blocks: 270 states; with a limit of 100 the downset search
    refuses, the compact model answers with a proven optimum equal to the unlimited search's."""
    net = inception_like(blocks=3, branches=4, depth=3)
    with pytest.raises(morder.TooManyStates):
        morder.build_order_dag(net, max_states=100)
    dag = morder.build_order_dag(net)
    q = make_query(dag, "ram")
    want = answer(dag, q, "graph")
    got = solve_compact(net, q, time_limit=60)
    assert got.status == "optimal" and got.gap == 0.0
    assert got.key == want.key
    assert got.key in _chain_totals(net, "arena", got.order, got.blocks,
                                    ("peak", "macs", "cycles"))
    # reordering matters here: the file's order is strictly worse
    fixed = answer(build_dag(net), make_query(build_dag(net), "ram"), "graph")
    assert fixed.key[0] > got.key[0]


def test_time_limit_returns_a_plan_with_a_gap():
    """A tiny time limit on a wide graph: a valid plan (never worse than the file's order's best
    plan) and a gap against CP-SAT's bound, or a proof."""
    net = inception_like(blocks=2, branches=8, depth=3)
    chain = build_dag(net)
    fixed = answer(chain, make_query(chain, "ram"), "graph")
    got = solve_compact(net, make_query(chain, "ram"), time_limit=0.5)
    assert got.status in ("optimal", "feasible")
    assert got.key <= fixed.key
    assert got.gap is not None and 0.0 <= got.gap < 1.0
    assert got.bound is not None and got.bound <= got.key[0]
    assert got.key in _chain_totals(net, "arena", got.order, got.blocks,
                                    ("peak", "macs", "cycles"))


def test_synthetic_graphs_are_wide_and_valid():
    d = densenet_like(blocks=2, layers=3)
    # every dense layer reads the concat of all earlier outputs of its block
    concats = [L for L in d.layers if L.op == "concat"]
    assert max(len(L.srcs) for L in concats) == 4
    w = inception_like(blocks=1, branches=4, depth=3)
    assert len(w.layers[-2].srcs) == 4 and w.layers[-2].op == "concat"
    # one block of branches of 1, 2, 3 and 2 ops: (2 * 3 * 4 * 3) downsets inside it, plus the
    # stem before and the concat and final conv after (no fused-state splits counted here)
    masks = set(morder.build_order_dag(w).state_masks)
    assert len(masks) == 2 * 3 * 4 * 3 + 3


def test_compact_order_is_a_drop_in_for_best_order():
    """``compact_order`` takes best_order's arguments and answers the same, for latency under a
    RAM cap too; an impossible cap is an InfeasibleError (exit 3), like the downset search."""
    from conftest import SHARED_MODELS, require
    from msfopt.errors import InfeasibleError
    from msfopt.models import load_model
    require("../shared/models")
    net = load_model(str(SHARED_MODELS / "mlperf_tiny_resnet8_int8.tflite"))
    for ram in ("40000", 33000):
        ref = morder.best_order(net, objective="latency", ram=ram, check=False)
        res = compact_order(net, objective="latency", ram=ram, max_states=10, backend="cpsat",
                            check=True)
        assert res.key == ref.key and res.key[1] <= int(ram)
    with pytest.raises(InfeasibleError):
        morder.best_order(net, objective="latency", ram=1000, check=False)
    with pytest.raises(InfeasibleError):
        compact_order(net, objective="latency", ram=1000)
