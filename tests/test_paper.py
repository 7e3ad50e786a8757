"""The msf-CNN paper's analytic numbers, reproduced digit for digit under --cost-model msfcnn."""
import math

import pytest

from msfopt import zoo
from msfopt.backends import graph
from msfopt.dag import build_dag, path_for_setting
from msfopt.plan import parse_setting
from msfopt.solver import solve

from paper_reference import EDGE_COUNTS, PAPER_ROWS, VANILLA

MODELS = list(VANILLA)


@pytest.fixture(scope="module")
def dags():
    return {m: build_dag(zoo.load(m), cost_model="msfcnn") for m in MODELS}


@pytest.mark.parametrize("model", MODELS)
def test_zoo_matches_paper_tables(model):
    n_layers, macs, peak = VANILLA[model]
    net = zoo.load(model)
    assert net.n_layers == n_layers
    assert net.vanilla_macs == macs
    from msfopt.msfcnn_model import vanilla_peak
    assert vanilla_peak(net) == peak
    assert net.is_chain


@pytest.mark.parametrize("model", MODELS)
def test_edge_counts(dags, model):
    assert dags[model].n_edges == EDGE_COUNTS[model]


def test_worked_examples(dags):
    d = dags["mbv2-w0.35"]
    # section 2.7 table: edge RAM / MACs of the P2 64 K setting
    expect = {(0, 1): (57062, 2166912), (2, 12): (63741, 8941248), (13, 13): (24948, 235224),
              (14, 16): (43516, 662904), (20, 22): (32758, 400950), (23, 25): (22880, 566676),
              (32, 34): (28248, 978318), (35, 37): (34320, 1202850), (41, 43): (26474, 792150),
              (44, 46): (20608, 1016400), (50, 52): (12320, 2270800), (13, 15): (7887, 1054944)}
    for (a, b), (ram, macs) in expect.items():
        e = path_for_setting(d, [(k, k) for k in range(a)] + [(a, b)]
                             + [(k, k) for k in range(b + 1, 53)])[a]
        assert (int(d.ram[e]), int(d.macs[e])) == (ram, macs), (a, b)
    v = dags["mcunetv2-vww5"]
    e = path_for_setting(v, [(0, 0), (1, 2)] + [(k, k) for k in range(3, 45)])[1]
    assert int(v.ram[e]) == 38576


def _query(row):
    model, prob, cons, peak, macs, setting = row
    return model, prob, cons


@pytest.mark.parametrize("row", PAPER_ROWS, ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}")
def test_reference_row_graph_search(dags, row):
    model, prob, cons, peak, macs, setting = row
    dag = dags[model]
    if prob == "P1":
        f = math.inf if cons == "inf" else float(cons)
        r = graph.min_peak(dag, "macs", f * dag.vanilla_macs)
    else:
        r = graph.min_latency(dag, "macs", cons)
    if peak is None:
        assert not r.feasible
        return
    assert (r.peak, r.total) == (peak, macs)
    # the published setting evaluates to the published figures under our edge costs
    path = path_for_setting(dag, parse_setting(setting))
    tot = dag.totals(path)
    assert (tot["peak"], tot["macs"]) == (peak, macs)


@pytest.mark.parametrize("backend", ["cpsat", "cbc"])
@pytest.mark.parametrize("row", PAPER_ROWS, ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}")
def test_reference_row_ilp(dags, row, backend):
    model, prob, cons, peak, macs, setting = row
    kw = dict(cost_model="msfcnn", backend=backend, dag=dags[model])
    if peak is None:
        from msfopt.errors import InfeasibleError
        with pytest.raises(InfeasibleError) as exc:
            solve(model, objective="macs", ram=cons, **kw)
        assert exc.value.min_ram == 42643
        return
    if prob == "P1":
        plan = solve(model, objective="ram", max_overhead=float(cons), **kw)
    else:
        plan = solve(model, objective="macs", ram=cons, **kw)
    assert (plan.peak_ram_bytes, plan.macs) == (peak, macs)
    assert plan.status == "optimal"
    assert plan.cross_check["agree"] is True


@pytest.mark.parametrize("model,peak", [("mbv2-w0.35", 181440), ("mcunetv2-vww5", 89600),
                                        ("mcunet-320k", 247808)])
def test_zero_overhead_rows(dags, model, peak):
    """P1 with F <= 1.0 and P2 at 320 K give the last frontier point."""
    dag = dags[model]
    r = graph.min_peak(dag, "macs", 1.0 * dag.vanilla_macs)
    assert (r.peak, r.total) == (peak, dag.vanilla_macs)
    r = graph.min_latency(dag, "macs", 320_000)
    assert (r.peak, r.total) == (peak, dag.vanilla_macs)


def test_budget_equal_to_peak_is_feasible(dags):
    """msfopt uses peak <= P_max (the published code's strict < is a bug we do not copy)."""
    dag = dags["mcunetv2-vww5"]
    assert graph.min_latency(dag, "macs", 12_000).peak == 12_000
    assert not graph.min_latency(dag, "macs", 11_999).feasible
    assert graph.min_latency(dag, "macs", 18_000).peak == 18_000   # frontier point the paper skips


@pytest.mark.parametrize("model", MODELS)
def test_swept_fused_edges_equal_the_per_block_formula(model):
    """``msfcnn_model.edges`` costs a fused block from its backward sweep (MACs as the running
    sum, the cache from the sweep's tile sizes); each one equals the per-block formulas
    (``fused_edge``: tile recursion, cache heights, MACs) with the network-boundary terms."""
    from msfopt.msfcnn_model import edges, fused_edge
    net = zoo.load(model)
    n = net.n_layers
    fused = [e for e in edges(net, bound=False) if e[2] == "hcache"]
    assert fused
    for i, j, _, ram, macs in fused:
        want_ram, want_macs = fused_edge(net, i, j)
        want_ram -= (net.tensor_elems(0) if i == 0 else 0) + \
            (net.tensor_elems(n) if j == n - 1 else 0)
        assert (ram, macs) == (want_ram, want_macs), (model, i, j)
