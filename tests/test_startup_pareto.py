"""Start-up (what a paper-model query imports), the epsilon-constraint confirmation of Pareto
fronts against brute force, and the paper cost model's growth bound against the unbounded DAG."""
import functools
import subprocess
import sys
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from msfopt import msfcnn_model, pareto_confirm
from msfopt.backends import pareto
from msfopt.dag import build_dag
from msfopt.ir import CONV, DW, chain

from random_nets import all_paths, chains

HEAVY = ("ortools", "pulp", "highspy", "pyscipopt", "pandas", "onnx", "onnxruntime", "rich",
         "matplotlib", "hypothesis", "tflite_runtime", "tensorflow")
PROBE = ("import sys, io, contextlib\n"
         "import msfopt\n"
         "bare = sorted(m for m in sys.modules if m.split('.')[0] in sys.argv[1].split(','))\n"
         "from msfopt.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
         "    rc = main(sys.argv[2:])\n"
         "used = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(',')))\n"
         "print(rc, 'peak RAM' in out.getvalue(), ','.join(bare) or '-', ','.join(used) or '-')\n")


def _imports(*args):
    p = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rc, printed, bare, used = p.stdout.split()
    return int(rc), printed == "True", bare, set() if used == "-" else set(used.split(","))


def test_paper_query_imports_only_the_solver_it_uses():
    # graph search, no cross-check: no solver library, no table library, no importer
    rc, printed, bare, used = _imports("solve", "mcunet-320k", "--cost-model", "msfcnn",
                                       "--ram", "320k", "--backend", "graph", "--no-check")
    assert (rc, printed, bare, used) == (0, True, "-", set())
    # the default backend (CP-SAT) loads OR-Tools' solver and nothing else heavy (its
    # cp_model module would pull in pandas)
    rc, printed, bare, used = _imports("solve", "mcunet-320k", "--cost-model", "msfcnn",
                                       "--ram", "320k")
    assert (rc, printed, bare, used) == (0, True, "-", {"ortools"})


def test_extension_table_names_each_modules_commands():
    """``cli.EXTENSIONS`` lets a command import only its module: the names must be exact."""
    import argparse
    import importlib
    from msfopt import cli
    for mod, cmds in cli.EXTENSIONS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        assert tuple(importlib.import_module(mod).add_parsers(sub)) == cmds, mod
    assert not set(cli.CORE_COMMANDS) & {c for cs in cli.EXTENSIONS.values() for c in cs}
    # a parser built for one command still parses that command, and rejects others cleanly
    ap = cli.build_parser("pareto")
    assert ap.parse_args(["pareto", "mcunet-320k", "--metric", "macs"]).metric == "macs"
    with pytest.raises(SystemExit) as exc:
        cli.build_parser("solve").parse_args(["pareto", "mcunet-320k"])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------------------------
def _brute(dag, metric):
    """(peak, latency) of every plan, and the non-dominated ones, by enumerating all paths."""
    pairs = {(t["peak"], t[metric]) for t in map(dag.totals, all_paths(dag))}
    front = sorted(p for p in pairs if not any(q != p and q[0] <= p[0] and q[1] <= p[1]
                                               for q in pairs))
    return pairs, front


def _front(metric, pairs):
    return pareto.Front(metric, [pareto.ParetoPoint(p, l, 0, 0, []) for p, l in pairs], 0.0)


@settings(max_examples=30, deadline=None)
@given(net=chains(max_layers=6), cost_model=st.sampled_from(["runtime", "msfcnn"]),
       metric=st.sampled_from(["cycles", "macs"]), backend=st.sampled_from(["highs", "cpsat"]),
       data=st.data())
def test_confirmation_equals_brute_force_front(net, cost_model, metric, backend, data):
    """The ILP confirmation accepts exactly the brute-force front: the search's front equals it
    and is confirmed; a front missing a point, with a dominated point added, or with a point
    moved is refuted; under a RAM cap / latency limit the truncated front is confirmed."""
    dag = build_dag(net, cost_model=cost_model)
    pairs, brute = _brute(dag, metric)
    fr = pareto.front(dag, metric)
    assert fr.pairs() == brute
    conf = pareto_confirm.confirm(dag, fr, backend=backend)
    assert [c.ok for c in conf] == [True] * len(brute)
    assert [(c.at[2], c.at[1]) for c in conf] == brute     # each g(peak) is the point itself
    if len(brute) > 1:
        k = data.draw(st.integers(0, len(brute) - 1))
        missing = brute[:k] + brute[k + 1:]
        assert not all(c.ok for c in pareto_confirm.confirm(dag, _front(metric, missing),
                                                            backend=backend))
        p, l = brute[k]
        moved = brute[:k] + [(p + 1, l)] + brute[k + 1:]
        if k == len(brute) - 1 or p + 1 < brute[k + 1][0]:
            assert not all(c.ok for c in pareto_confirm.confirm(dag, _front(metric, moved),
                                                                backend=backend))
        cap = brute[k][0]
        conf = pareto_confirm.confirm(dag, _front(metric, brute[:k + 1]), backend=backend,
                                      ram_cap=cap)
        assert all(c.ok for c in conf)
        limit = brute[k][1]
        conf = pareto_confirm.confirm(dag, _front(metric, brute[k:]), backend=backend,
                                      latency_limit=limit)
        assert all(c.ok for c in conf)
    dominated = sorted(pairs - set(brute))
    if dominated:
        extra = sorted(brute + [dominated[0]])
        assert not all(c.ok for c in pareto_confirm.confirm(dag, _front(metric, extra),
                                                            backend=backend))
    # one point alone: Pareto-optimal iff it is on the brute-force front
    for p, l in ([brute[0]] + dominated[:1]):
        one = pareto_confirm.confirm_point(dag, pareto.ParetoPoint(p, l, 0, 0, []), metric,
                                           backend=backend)
        assert one.ok == ((p, l) in brute)


# ---------------------------------------------------------------------------------------------
def _dag(net, bound):
    with mock.patch.object(msfcnn_model, "edges",
                           functools.partial(msfcnn_model.edges, bound=bound)):
        return build_dag(net, cost_model="msfcnn")


def _edge_set(dag):
    return {(int(a), int(b), int(r), int(c)) for a, b, r, c in
            zip(dag.src, dag.dst, dag.ram, dag.macs)}


@settings(max_examples=40, deadline=None)
@given(net=chains(max_layers=8, ops=(CONV, DW)))
def test_growth_bound_keeps_every_optimum(net):
    """The bounded paper-model DAG is a subset of the unbounded one with the same Pareto front
    (every P1 / P2 optimum, any cap or budget), brute force on the unbounded DAG as the oracle."""
    full, dag = _dag(net, False), _dag(net, True)
    assert _edge_set(dag) <= _edge_set(full)
    assert pareto.front(dag, "macs").pairs() == _brute(full, "macs")[1]


def test_growth_bound_caps_a_run_of_1x1_layers():
    """1x1 layers never grow the tile, so only the bound stops their blocks: 40 of them keep
    O(n) blocks instead of n(n+1)/2 once their rings (C elements per layer) outgrow the largest
    unfused layer (here 2 x 2 x (6 + 6)), and the front is unchanged."""
    net = chain("ones", (2, 2, 4), [(CONV, 4 + (k % 3), 1, 1, 0) for k in range(40)])
    full, dag = _dag(net, False), _dag(net, True)
    assert full.n_edges == 40 * 41 // 2
    assert dag.n_edges < 4 * 40
    assert _edge_set(dag) <= _edge_set(full)
    assert pareto.front(dag, "macs").pairs() == pareto.front(full, "macs").pairs()
    # by default the paper's enumeration up to BOUND_ABOVE_LAYERS layers, the bound beyond
    assert build_dag(net, cost_model="msfcnn").n_edges == full.n_edges
    n = msfcnn_model.BOUND_ABOVE_LAYERS + 1
    long = chain("ones", (2, 2, 4), [(CONV, 4 + (k % 3), 1, 1, 0) for k in range(n)])
    assert build_dag(long, cost_model="msfcnn").n_edges < 4 * n
