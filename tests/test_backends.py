"""The four ILP backends (CP-SAT, CBC, SCIP, HiGHS) behind the one interface: agreement with exact
graph search, infeasibility, time limits and thread counts."""
import math
import time

import pytest
from hypothesis import given, settings, strategies as st

from msfopt import zoo
from msfopt.backends import graph
from msfopt.backends import ILP_BACKENDS, get_backend
from msfopt.dag import build_dag
from msfopt.errors import SolverError
from msfopt.formulations.model import FEASIBLE, INFEASIBLE, OPTIMAL, TIMEOUT
from msfopt.formulations.path import latency_program, minmax_ram_program
from msfopt.solver import Query, answer, make_query
from msfopt.synthetic import synthetic_chain

from paper_reference import PAPER_ROWS
from random_nets import chains

ILP = ["cpsat", "cbc", "scip", "highs"]


@pytest.fixture(scope="module")
def dags():
    return {m: build_dag(zoo.load(m), cost_model="msfcnn") for m in zoo.names()}


def test_all_backends_in_the_table_and_available():
    assert set(ILP) <= set(ILP_BACKENDS)
    for b in ILP:
        be = get_backend(b)
        assert be.name == b and be.available()
    with pytest.raises(ValueError):
        get_backend("gurobi")


def test_a_backend_imports_only_its_own_solver():
    """The adapter table imports an adapter on first use: the package loads no solver library,
    and asking for CP-SAT loads OR-Tools only."""
    import subprocess
    import sys
    code = ("import sys, msfopt.backends as b; loaded = lambda: sorted(m for m in "
            "('ortools', 'pulp', 'highspy') if m in sys.modules); print(loaded()); "
            "b.get_backend('cpsat'); print(loaded())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:2] == ["[]", "['ortools']"]


# cpsat and cbc run every paper row in test_paper.py; here the two newer adapters do
@pytest.mark.parametrize("backend", ["scip", "highs"])
@pytest.mark.parametrize("row", PAPER_ROWS, ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}")
def test_paper_rows(dags, row, backend):
    model, prob, cons, peak, macs, _ = row
    dag = dags[model]
    if prob == "P1":
        q = make_query(dag, "ram", max_overhead=math.inf if cons == "inf" else float(cons))
    else:
        q = make_query(dag, "macs", ram=cons)
    a = answer(dag, q, backend)
    if peak is None:
        assert a.status == INFEASIBLE
        return
    assert a.status == OPTIMAL
    tot = dag.totals(a.path)
    assert (tot["peak"], tot["macs"]) == (peak, macs)


def _agree_all(dag, q, backends=ILP):
    ref = answer(dag, q, "graph")
    for b in backends:
        a = answer(dag, q, b)
        if ref.status == INFEASIBLE:
            assert a.status == INFEASIBLE, b
            continue
        assert a.status == OPTIMAL, b
        assert (a.primary, a.secondary) == (ref.primary, ref.secondary), b
        assert dag.is_path(a.path), b
    return ref


@settings(max_examples=20)
@given(net=chains(max_layers=8), cost_model=st.sampled_from(["runtime", "msfcnn"]),
       frac=st.floats(0.0, 1.2), f=st.sampled_from([1.0, 1.1, 1.5, math.inf]),
       which=st.sampled_from(["latency", "macs", "ram"]))
def test_backends_agree_on_random_chains(net, cost_model, frac, f, which):
    dag = build_dag(net, cost_model=cost_model)
    if which == "ram":
        q = make_query(dag, "ram", max_overhead=f)
    else:
        lo = graph.min_feasible_ram(dag)
        hi = int(dag.ram.max())
        q = make_query(dag, which, ram=max(1, int(lo * 0.9 + frac * (hi - lo * 0.9))))
    # cpsat and cbc get 200 such examples in test_solvers_agree.py
    _agree_all(dag, q, ["scip", "highs"])


@pytest.mark.parametrize("backend", ILP)
def test_infeasible_detection(dags, backend):
    dag = dags["mcunet-320k"]
    # RAM below the smallest feasible peak (42,643)
    assert answer(dag, make_query(dag, "macs", ram=32000), backend).status == INFEASIBLE
    # a MAC budget below the least MACs possible
    least = graph.min_latency(dag, "macs").total
    assert answer(dag, Query("ram", "macs", budget=least - 1), backend).status == INFEASIBLE
    # both constraints satisfiable alone, not together: zero overhead needs 247,808
    q = make_query(dag, "ram", max_overhead=1.0)
    q.ram_cap = 200_000
    assert answer(dag, q, backend).status == INFEASIBLE


@pytest.mark.parametrize("backend", ILP)
def test_threads(dags, backend):
    dag = dags["mcunetv2-vww5"]
    q = make_query(dag, "ram", max_overhead=1.3)
    ref = answer(dag, q, "graph")
    for threads in (2, 1):
        a = answer(dag, q, backend, threads=threads)
        assert (a.status, a.primary, a.secondary) == ("optimal", ref.primary, ref.secondary)


def _big(n):
    dag = build_dag(synthetic_chain(n), cost_model="msfcnn", max_depth=16)
    cap = int(1.3 * graph.min_feasible_ram(dag))
    ref = graph.min_latency(dag, "macs", cap)
    return dag, cap, ref


@pytest.fixture(scope="module")
def big():
    """500-layer synthetic chain: no backend proves P1 optimal within a fraction of a second
    (P1 takes 1.5-11 s on 300 layers, see scripts/bench_scale.py)."""
    return _big(500)


def test_graph_search_solves_1000_layers_fast():
    t0 = time.perf_counter()
    dag, cap, ref = _big(1000)
    r = graph.min_latency(dag, "macs", cap)
    r1 = graph.min_peak(dag, "macs", int(ref.total * 1.02))
    assert r.feasible and r1.feasible
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("backend", ILP)
def test_time_limit_returns_incumbent_or_timeout(big, backend):
    dag, cap, ref = big
    limit = 0.3
    for prog, best in ((minmax_ram_program(dag, "macs", int(ref.total * 1.02)), None),
                       (latency_program(dag, "macs", cap), ref.total)):
        t0 = time.perf_counter()
        s = get_backend(backend).solve(prog.mip, time_limit=limit, threads=1)
        wall = time.perf_counter() - t0
        # model building and (for CBC) writing/reading files add a few seconds at most
        assert wall < limit + 8, (backend, wall)
        assert s.status in (OPTIMAL, FEASIBLE, TIMEOUT), (backend, s.status, s.message)
        if s.status == TIMEOUT:
            assert s.values is None and s.objective is None
            continue
        path = prog.decode(dag, s.values)
        assert dag.is_path(path)
        if best is not None:
            assert s.objective >= best
            if s.status == OPTIMAL:
                assert s.objective == best
        if s.status == FEASIBLE and s.bound is not None:
            assert s.gap is not None and s.gap >= 0
            if best is not None:
                assert s.bound <= best + 1e-6


@pytest.mark.parametrize("backend", ILP)
def test_answer_reports_time_out(big, backend):
    """Through solver.answer: a time-limited solve either yields a plan marked optimal/feasible
    (with its gap) or raises SolverError (CLI exit 5); nothing hangs."""
    dag, cap, ref = big
    q = Query("ram", "macs", budget=float(int(ref.total * 1.02)))
    t0 = time.perf_counter()
    try:
        a = answer(dag, q, backend, time_limit=0.3)
    except SolverError as exc:
        assert "timeout" in str(exc)
    else:
        assert a.status in (OPTIMAL, FEASIBLE)
        assert dag.is_path(a.path)
        r = graph.min_peak(dag, "macs", q.budget)
        assert a.primary >= r.peak
    assert time.perf_counter() - t0 < 20
