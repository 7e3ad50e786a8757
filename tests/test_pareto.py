"""Exact Pareto front (peak RAM vs latency): completeness against brute force, the paper's §5.2
fronts, consistency with P1/P2 answers, epsilon-constraint confirmation and the CLI."""
import csv
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from msfopt import paper_points, pareto_confirm, zoo
from msfopt.backends import graph, pareto
from msfopt.dag import build_dag

from paper_reference import PARETO, PAPER_ROWS
from random_nets import all_paths, chains


def _brute_front(pairs):
    pairs = set(pairs)
    return sorted(p for p in pairs
                  if not any(q != p and q[0] <= p[0] and q[1] <= p[1] for q in pairs))


@settings(max_examples=60)
@given(net=chains(max_layers=7), cost_model=st.sampled_from(["runtime", "msfcnn"]),
       io=st.sampled_from(["arena", "external"]), metric=st.sampled_from(["cycles", "macs"]))
def test_front_equals_brute_force(net, cost_model, io, metric):
    dag = build_dag(net, cost_model=cost_model, io=io)
    paths = all_paths(dag)
    tots = [dag.totals(p) for p in paths]
    expect = _brute_front((t["peak"], t[metric]) for t in tots)
    fr = pareto.front(dag, metric)
    assert fr.pairs() == expect
    assert pareto.front_by_sweep(dag, metric).pairs() == expect
    for p in fr.points:
        assert dag.is_path(p.path)
        tot = dag.totals(p.path)
        assert (tot["peak"], tot[metric], tot["macs"], tot["cycles"]) == \
            (p.peak, p.latency, p.macs, p.cycles)
    # strictly increasing peak, strictly decreasing latency
    for a, b in zip(fr.points, fr.points[1:]):
        assert a.peak < b.peak and a.latency > b.latency
    # with a RAM cap: the front of the capped plans is the front truncated at the cap
    cap = expect[len(expect) // 2][0]
    assert pareto.front(dag, metric, ram_cap=cap).pairs() == [p for p in expect if p[0] <= cap]


@pytest.fixture(scope="module")
def msfcnn_dags():
    return {m: build_dag(zoo.load(m), cost_model="msfcnn") for m in PARETO}


@pytest.mark.parametrize("model", list(PARETO))
def test_zoo_front_equals_paper(msfcnn_dags, model):
    """The paper lists every Pareto-optimal (peak, MACs) pair: the exact front equals the list."""
    dag = msfcnn_dags[model]
    t0 = time.perf_counter()
    fr = pareto.front(dag, "macs")
    assert time.perf_counter() - t0 < 2.0
    assert fr.pairs() == PARETO[model]
    assert pareto.front_by_sweep(dag, "macs").pairs() == PARETO[model]


def test_package_copy_of_paper_points():
    assert paper_points.PARETO == PARETO
    published = {}
    for model, prob, cons, peak, macs, _ in PAPER_ROWS:
        if peak is not None:
            published.setdefault(model, set()).add((peak, macs))
    queries = {(m, prob, str(c) if prob == "P1" else c, peak, macs)
               for m, rows in paper_points.QUERIES.items() for prob, c, peak, macs in rows}
    for model, prob, cons, peak, macs, _ in PAPER_ROWS:
        c = "inf" if cons == "inf" else cons
        key = (model, prob, ("inf" if c == "inf" else str(float(c))) if prob == "P1" else c, peak, macs)
        assert key in queries, key
    for model, pts in paper_points.PUBLISHED.items():
        assert {(a, b) for a, b, _ in pts} == published[model]
        # every published P1/P2 result is Pareto-optimal
        assert published[model] <= set(PARETO[model])


@pytest.mark.parametrize("cost_model", ["msfcnn", "runtime"])
@pytest.mark.parametrize("model", list(PARETO))
def test_points_equal_p1_p2_answers(model, cost_model, msfcnn_dags):
    """At each point's own budgets, P2 (peak <= point's peak) and P1 (latency <= point's
    latency) return exactly the point; between points P2 returns the point on the left."""
    dag = msfcnn_dags[model] if cost_model == "msfcnn" else build_dag(zoo.load(model))
    metric = "macs" if cost_model == "msfcnn" else "cycles"
    fr = pareto.front(dag, metric)
    conf = pareto_confirm.confirm(dag, fr, backend="graph")
    assert all(c.ok for c in conf), [c for c in conf if not c.ok]
    for a, b in zip(fr.points, fr.points[1:]):
        r = graph.min_latency(dag, metric, b.peak - 1)
        assert (r.total, r.peak) == (a.latency, a.peak)
        r = graph.min_peak(dag, metric, a.latency - 1)
        assert (r.peak, r.total) == (b.peak, b.latency)
    # below the first point: infeasible
    assert not graph.min_latency(dag, metric, fr.points[0].peak - 1).feasible


def test_paper_rows_lie_on_front(msfcnn_dags):
    fronts = {m: set(pareto.front(d, "macs").pairs()) for m, d in msfcnn_dags.items()}
    assert set(fronts) == {r[0] for r in PAPER_ROWS}
    for model, prob, cons, peak, macs, _ in PAPER_ROWS:
        if peak is not None:
            assert (peak, macs) in fronts[model]


@pytest.mark.parametrize("backend", ["highs", "cpsat"])
def test_ilp_confirmation(msfcnn_dags, backend):
    dag = msfcnn_dags["mcunetv2-vww5"]
    fr = pareto.front(dag, "macs")
    conf = pareto_confirm.confirm(dag, fr, backend=backend)
    assert len(conf) == 11 and all(c.ok for c in conf)


def test_confirmation_detects_a_wrong_point(msfcnn_dags):
    dag = msfcnn_dags["mcunetv2-vww5"]
    fr = pareto.front(dag, "macs")
    p = fr.points[3]
    fake = pareto.ParetoPoint(p.peak + 1, p.latency, p.macs, p.cycles, p.path)
    assert not pareto_confirm.confirm_point(dag, fake, "macs", backend="graph").ok


# ---------------------------------------------------------------------------------------------
def run(*args):
    """The CLI in a subprocess (as a user runs it)."""
    p = subprocess.run([sys.executable, "-m", "msfopt.cli", *args], capture_output=True,
                       text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def run_here(*args):
    """The CLI in this process (cheaper: no interpreter start-up and imports)."""
    import contextlib
    import io
    from msfopt.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def test_cli_pareto_csv_and_png(tmp_path):
    out_csv, out_png = tmp_path / "front.csv", tmp_path / "front.png"
    rc, out, err = run("pareto", "mcunetv2-vww5", "--cost-model", "msfcnn", "--csv",
                       str(out_csv), "--plot", str(out_png), "--backend", "highs")
    assert rc == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    assert [(int(r["peak"]), int(r["latency"])) for r in rows] == PARETO["mcunetv2-vww5"]
    assert all(r["confirmed"] == "True" and r["in_paper"] == "True" for r in rows)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "11/11 of its Pareto points" in " ".join(out.split())


def test_cli_pareto_runtime_and_errors(tmp_path):
    out_csv = tmp_path / "f.csv"
    rc, out, err = run_here("pareto", "mcunet-320k", "--no-check", "--csv", str(out_csv))
    assert rc == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    pts = [(int(r["peak"]), int(r["latency"])) for r in rows]
    assert len(pts) >= 2 and all(r["metric"] == "cycles" for r in rows)
    assert all(a[0] < b[0] and a[1] > b[1] for a, b in zip(pts, pts[1:]))
    # the ends of the front are the unconstrained P1 and P2 optima of 'msfopt solve'
    import json
    rc, out, err = run_here("solve", "mcunet-320k", "--backend", "graph", "--no-check",
                            "--json", "-")
    assert rc == 0, err
    assert json.loads(out)["est_cycles"] == pts[-1][1]
    rc, out, err = run_here("solve", "mcunet-320k", "--objective", "ram", "--backend", "graph",
                            "--no-check", "--json", "-")
    assert rc == 0, err
    assert json.loads(out)["peak_ram_bytes"] == pts[0][0]
    # bad input -> 2
    assert run_here("pareto", "no-such-model", "--no-check")[0] == 2
    assert run_here("pareto", "mcunet-320k", "--no-check", "--max-overhead", "1.2")[0] == 2
    assert run_here("pareto", "mcunet-320k", "--metric", "cycles", "--backend", "nope")[0] == 2
    # infeasible -> 3
    rc, out, err = run_here("pareto", "mcunet-320k", "--cost-model", "msfcnn", "--ram", "16k")
    assert rc == 3 and "42,643" in err


def test_cli_compare(tmp_path):
    out_csv = tmp_path / "c.csv"
    rc, out, err = run_here("compare", "mcunetv2-vww5", "--cost-model", "msfcnn", "--ram",
                            "32kB", "--csv", str(out_csv))
    assert rc == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["backend"] for r in rows] == ["graph", "cpsat", "cbc", "scip", "highs"]
    assert {(r["objective"], r["peak"]) for r in rows} == {("12888576", "26128")}
    assert all(r["agrees"] in ("True", "referee") for r in rows)
    assert "4/4 backends agree" in out
    rc, out, err = run_here("compare", "mcunet-320k", "--cost-model", "msfcnn", "--ram",
                            "32kB", "--backends", "highs,scip")
    assert rc == 3 and out.count("infeasible") >= 3
    assert run_here("compare", "mcunet-320k", "--backends", "gurobi")[0] == 2


def test_cli_compare_disagreement_exit_code(monkeypatch, capsys):
    import msfopt.solver as solver
    from msfopt.cli import main
    real = solver.answer

    def wrong(dag, q, backend, *a, **kw):
        ans = real(dag, q, backend, *a, **kw)
        if backend == "highs":
            ans.primary += 1
        return ans

    monkeypatch.setattr(solver, "answer", wrong)
    rc = main(["compare", "mcunetv2-vww5", "--cost-model", "msfcnn", "--ram", "64kB",
               "--backends", "cpsat,highs"])
    assert rc == 4
    rc = main(["compare", "mcunetv2-vww5", "--cost-model", "msfcnn", "--ram", "64kB",
               "--backends", "cpsat,highs", "--no-check"])
    assert rc == 0
    assert "NO" in capsys.readouterr().out
