"""The path programs' exact restrictions (formulations/path.py: ``_dominated_edges``,
``_off_shortest_paths``, the peak rows dropped from tie-break stages) against brute force over
every 0 -> N path of small random DAGs with many ties and parallel edges.

The oracle here is an enumeration written in this file: every path, its (peak, latency,
tertiary) triple, the constraints checked directly.  The ILP answers go through the production
driver (``solver.ilp_answer``: restricted first stage, tie-break stages, no-good rounds)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msfopt.dag import FusionDAG
from msfopt.formulations import path as fpath
from msfopt.solver import Query, ilp_answer

TERT = {"cycles": "macs", "macs": "cycles"}


@st.composite
def random_dags(draw):
    """A DAG over nodes 0..n-1 (topologically numbered, as every fusion/order DAG is): the
    unfused chain edge (u, u+1) always, plus up to two parallel variants per node pair up to 3
    apart.  Small integer weights, so ties in every metric are common."""
    n = draw(st.integers(3, 7))
    src, dst, ram, macs, cyc, mode = [], [], [], [], [], []
    for u in range(n - 1):
        for v in range(u + 1, min(n, u + 4)):
            k = draw(st.integers(1 if v == u + 1 else 0, 2))
            for j in range(k):
                src.append(u)
                dst.append(v)
                ram.append(4 * draw(st.integers(1, 6)))
                macs.append(draw(st.integers(1, 6)))
                cyc.append(draw(st.integers(1, 6)))
                mode.append("unfused" if (v == u + 1 and j == 0) else "hcache")
    net = SimpleNamespace(n_layers=n - 1, vanilla_macs=0)
    return FusionDAG(net=net, cost_model="runtime", io="arena",
                     src=np.array(src, dtype=np.int64), dst=np.array(dst, dtype=np.int64),
                     ram=np.array(ram, dtype=np.int64), macs=np.array(macs, dtype=np.int64),
                     cycles=np.array(cyc, dtype=np.int64), mode=mode, tile=[1] * len(src),
                     schedules=[None] * len(src))


def all_paths(dag):
    out = dag.out_edges()
    paths, stack = [], [(0, [])]
    while stack:
        v, p = stack.pop()
        if v == dag.n_nodes - 1:
            paths.append(p)
            continue
        for e in out[v]:
            stack.append((int(dag.dst[e]), p + [e]))
    return paths


def triple(dag, p, metric):
    t = dag.totals(p)
    return t["peak"], t[metric], t[TERT[metric]]


def brute(dag, q):
    """The lexicographic optimum of query ``q`` over every path (None: infeasible)."""
    best = None
    for p in all_paths(dag):
        peak, lat, tert = triple(dag, p, q.metric)
        if peak > q.ram_cap or lat > q.budget:
            continue
        key = (lat, peak, tert) if q.kind == "latency" else (peak, lat, tert)
        best = key if best is None or key < best else best
    return best


def queries(dag):
    peaks = sorted({triple(dag, p, "cycles")[0] for p in all_paths(dag)})
    caps = [math.inf, peaks[0], peaks[len(peaks) // 2]]
    out = []
    for metric in ("cycles", "macs"):
        lats = sorted({triple(dag, p, metric)[1] for p in all_paths(dag)})
        for cap in caps:
            out.append(Query("latency", metric, ram_cap=cap))
        for budget in (math.inf, lats[0], lats[len(lats) // 2]):
            for cap in (math.inf, peaks[len(peaks) // 2]):
                out.append(Query("ram", metric, budget=budget, ram_cap=cap))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=random_dags())
def test_dominated_edges_keep_the_least_peak(dag):
    """P1's first-stage restriction: the least peak over the kept edges (within the budget) is
    the least peak over all edges, with and without a latency budget."""
    paths = all_paths(dag)
    allowed = [True] * dag.n_edges
    for metric in ("cycles", "macs"):
        lats = sorted({triple(dag, p, metric)[1] for p in paths})
        for budget in (None, lats[0], lats[len(lats) // 2], lats[-1]):
            drop = set(fpath._dominated_edges(dag, metric, allowed, budget))
            b = math.inf if budget is None else budget

            def least(ps):
                vals = [triple(dag, p, metric)[0] for p in ps if triple(dag, p, metric)[1] <= b]
                return min(vals) if vals else None
            kept = [p for p in paths if not drop & set(p)]
            assert least(kept) == least(paths), (metric, budget, sorted(drop))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=random_dags(), cap_pick=st.integers(0, 2))
def test_off_shortest_path_edges_are_on_no_least_latency_plan(dag, cap_pick):
    paths = all_paths(dag)
    peaks = sorted({triple(dag, p, "cycles")[0] for p in paths})
    cap = [math.inf, peaks[0], peaks[-1] // 2][cap_pick]
    allowed = [int(r) <= cap for r in dag.ram]
    for metric in ("cycles", "macs"):
        ok = [p for p in paths if all(allowed[e] for e in p)]
        if not ok:
            continue
        drop = set(fpath._off_shortest_paths(dag, metric, allowed))
        best = min(triple(dag, p, metric)[1] for p in ok)
        least = [p for p in ok if triple(dag, p, metric)[1] == best]
        assert all(not drop & set(p) for p in least)
        # and it is not vacuous: every dropped edge is allowed and on no least-latency plan
        assert all(allowed[e] for e in drop)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=random_dags())
def test_ilp_answers_equal_brute_force(dag):
    """Every stage with its restriction, through the production driver, CP-SAT and HiGHS: the
    (primary, secondary, tertiary) triple equals the enumeration's lexicographic optimum."""
    for q in queries(dag):
        want = brute(dag, q)
        for backend in ("cpsat", "highs"):
            a = ilp_answer(dag, q, backend)
            if want is None:
                assert a.status == "infeasible", (q, backend)
                continue
            assert a.status == "optimal", (q, backend)
            assert dag.is_path(a.path)
            assert a.key == want, (q, backend, a.key, want)
            assert triple(dag, a.path, q.metric)[0] <= q.ram_cap


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=random_dags(), data=st.data())
def test_no_good_rounds_use_the_full_program(dag, data):
    """After a plan is rejected (its layout does not pack) the next-best plan may use an edge the
    restriction drops: the driver then solves the full program.  The accept rule here rejects
    the ``k`` best plans (by brute force); the answer must be the best of the others."""
    q = data.draw(st.sampled_from(queries(dag)))
    feasible = []
    for p in all_paths(dag):
        peak, lat, tert = triple(dag, p, q.metric)
        if peak <= q.ram_cap and lat <= q.budget:
            key = (lat, peak, tert) if q.kind == "latency" else (peak, lat, tert)
            feasible.append((key, tuple(p)))
    if not feasible:
        return
    feasible.sort()
    k = data.draw(st.integers(1, 3))
    rejected = {p for _key, p in feasible[:k]}
    a = ilp_answer(dag, q, "cpsat", accept=lambda path: tuple(path) not in rejected)
    rest = [key for key, p in feasible if p not in rejected]
    if not rest:          # every feasible plan was rejected: the driver falls back to the best
        assert a.layout_fallback and a.key == feasible[0][0]
        return
    assert not a.layout_fallback
    assert a.key == rest[0], (q, rejected, a.key, rest[0])
