"""Differential test: CP-SAT, CBC and exact graph search give the same optimum on random chains."""
import math

from conftest import examples
from hypothesis import given, settings, strategies as st

from msfopt.backends import graph
from msfopt.dag import build_dag
from msfopt.solver import answer, make_query

from random_nets import all_paths, chains


def _check(dag, q):
    ref = answer(dag, q, "graph")
    for b in ("cpsat", "cbc"):
        a = answer(dag, q, b)
        assert a.status == ref.status or (a.status == "optimal" and ref.status == "optimal")
        if ref.status == "infeasible":
            assert a.status == "infeasible", b
            continue
        assert (a.primary, a.secondary) == (ref.primary, ref.secondary), b
        assert dag.is_path(a.path)
    return ref


@settings(max_examples=examples(200))
@given(net=chains(), cost_model=st.sampled_from(["runtime", "msfcnn"]),
       io=st.sampled_from(["arena", "external"]), frac=st.floats(0.0, 1.2),
       f=st.sampled_from([1.0, 1.05, 1.2, 1.5, 2.0, math.inf]),
       which=st.sampled_from(["latency", "macs", "ram"]))
def test_backends_agree_with_graph_search(net, cost_model, io, frac, f, which):
    dag = build_dag(net, cost_model=cost_model, io=io)
    lo = graph.min_feasible_ram(dag)
    hi = int(dag.ram.max())
    if which == "ram":
        q = make_query(dag, "ram", max_overhead=f)
    else:
        cap = int(lo * 0.9 + frac * (hi - lo * 0.9))
        q = make_query(dag, which, ram=max(1, cap))
    ref = _check(dag, q)
    if ref.status == "optimal":
        # the answer respects its constraint and is a path
        tot = dag.totals(ref.path)
        if q.kind == "latency":
            assert tot["peak"] <= q.ram_cap
        else:
            assert tot[q.metric] <= q.budget


@settings(max_examples=60)
@given(net=chains(max_layers=7))
def test_graph_search_matches_brute_force(net):
    """Exhaustive enumeration of all paths on small DAGs: P2 and P1 optima equal graph search."""
    dag = build_dag(net, cost_model="runtime", io="arena")
    paths = all_paths(dag)
    tots = [dag.totals(p) for p in paths]
    peaks = sorted({t["peak"] for t in tots})
    cap = peaks[len(peaks) // 2]
    best = min((t["cycles"], t["peak"]) for t in tots if t["peak"] <= cap)
    r = graph.min_latency(dag, "cycles", cap)
    assert (r.total, r.peak) == best
    budget = sorted(t["macs"] for t in tots)[len(tots) // 2]
    best = min((t["peak"], t["macs"]) for t in tots if t["macs"] <= budget)
    r = graph.min_peak(dag, "macs", budget)
    assert (r.peak, r.total) == best
