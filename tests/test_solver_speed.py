"""Behaviour of the solver-speed machinery: the exact growth bound on long fused blocks, the
one-solve lexicographic CP-SAT program, and the batch API.

Oracles: the unbounded DAG (``build_dag(prune=False)``: every candidate block, no pruning of any
kind) solved by exact graph search and by its exact Pareto front; stage-by-stage lexicographic
solves; single ``msfopt.solve`` calls.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msfopt
from msfopt.backends import get_backend, graph, pareto
from msfopt.cycles import CycleModel
from msfopt.dag import build_dag
from msfopt.formulations.path import latency_program, minmax_ram_program
from msfopt.ir import CONV, DW, MAXPOOL, chain
from msfopt.synthetic import conv_chain

from random_nets import chains

#: a cycle model with fractional coefficients and conv taps (rounding matters for the bound)
FRACTIONAL = CycleModel(name="frac", cpm={"conv": 5.3, "pointwise": 4.7, "dw": 7.9,
                                          "maxpool": 3.1, "avgpool": 3.6, "gap": 2.2,
                                          "dense": 3.9},
                        per_call=37.5, fused_out=0.6, unclamped_out=1.5, conv_tap=2.25,
                        cpo={"conv": 1.5, "dw": 0.5})


def _answers(dag, peaks):
    """Every (objective value, peak, tertiary) graph search gives on a grid of queries (RAM caps
    from ``peaks``), and the exact Pareto fronts."""
    out = []
    caps = [peaks[0], peaks[len(peaks) // 3], peaks[2 * len(peaks) // 3], math.inf]
    for metric in ("cycles", "macs"):
        for cap in caps:
            r = graph.min_latency(dag, metric, cap)
            out.append(("lat", metric, cap, r.feasible, r.total, r.peak, r.tertiary))
        fastest = graph.min_latency(dag, metric).total
        for f in (1.0, 1.05, 1.3, math.inf):
            r = graph.min_peak(dag, metric, f * fastest)
            out.append(("ram", metric, f, r.feasible, r.peak, r.total, r.tertiary))
        out.append(("front", metric, tuple(pareto.front(dag, metric).pairs())))
    return out


def _same_answers(net, io="arena", cycle_model=None):
    bounded = build_dag(net, io=io, cycle_model=cycle_model)
    full = build_dag(net, io=io, cycle_model=cycle_model, prune=False)
    assert bounded.n_edges <= full.n_edges
    peaks = sorted(set(full.ram.tolist()))
    assert _answers(bounded, peaks) == _answers(full, peaks)
    return bounded, full


@pytest.mark.parametrize("cycle_model", [None, FRACTIONAL], ids=["generic", "fractional"])
def test_growth_bound_keeps_every_optimum_on_a_long_chain(cycle_model):
    net = conv_chain(24, hw=8, channels=4)
    bounded, full = _same_answers(net, cycle_model=cycle_model)
    # the bound is not vacuous: most long blocks are gone (with fractional cycle coefficients
    # a one-patch recompute block may tie the unfused layers after rounding, so it stays)
    assert bounded.n_edges < full.n_edges / 2
    if cycle_model is None:
        assert int((bounded.dst - bounded.src).max()) < 24


@st.composite
def same_chains(draw):
    """Stride-1 'same' chains with varying widths (the case the bound prunes), some pooling."""
    h = draw(st.integers(4, 12))
    c = draw(st.integers(1, 6))
    specs = []
    for _ in range(draw(st.integers(3, 12))):
        op = draw(st.sampled_from([CONV, CONV, DW, MAXPOOL]))
        k = draw(st.sampled_from([1, 3]))
        if op == MAXPOOL:
            specs.append((MAXPOOL, 0, 3, 1, 1))
        else:
            specs.append((op, draw(st.integers(1, 10)) if op == CONV else 0, k, 1, k // 2))
    return chain("same", (h, h, c), specs, dtype=draw(st.sampled_from(["int8", "float32"])))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=same_chains(), io=st.sampled_from(["arena", "external"]),
       frac=st.booleans())
def test_growth_bound_exact_on_random_same_chains(net, io, frac):
    _same_answers(net, io=io, cycle_model=FRACTIONAL if frac else None)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=chains(max_layers=8, max_hw=20, tail=True), io=st.sampled_from(["arena", "external"]))
def test_growth_bound_exact_on_random_chains(net, io):
    _same_answers(net, io=io)


def _two_stage(prog, backend):
    s1 = backend.solve(prog.mip)
    first = prog.mip.evaluate(prog.first_objective, s1.values)
    s2 = backend.solve(prog.second_stage(first))
    return first, prog.mip.evaluate(prog.second_objective, s2.values)


def test_lexicographic_one_solve_equals_two_stages():
    net = conv_chain(12, hw=8, channels=4)
    dag = build_dag(net, io="external")
    cpsat = get_backend("cpsat")
    min_ram = graph.min_feasible_ram(dag)
    fastest = graph.min_latency(dag, "cycles").total
    progs = [latency_program(dag, "cycles", min_ram * 3 // 2),
             latency_program(dag, "macs", math.inf),
             minmax_ram_program(dag, "cycles", int(1.02 * fastest)),
             minmax_ram_program(dag, "macs", None)]
    for prog in progs:
        m, c = prog.combined()
        s = cpsat.solve(m)
        assert s.status == "optimal"
        one = (prog.mip.evaluate(prog.first_objective, s.values),
               prog.mip.evaluate(prog.second_objective, s.values))
        assert one == _two_stage(prog, cpsat)
        # and the combined objective's value splits back into the two stages
        assert int(round(s.objective)) == one[0] * c + one[1]
    # a program whose combined objective would leave int64 falls back to stages
    assert progs[0].combined(limit=10) is None


def test_solve_many_equals_single_solves():
    models = ["mbv2-w0.35-res", conv_chain(10, hw=8, channels=4)]
    queries = [dict(objective="latency", ram="12k"), dict(objective="ram", max_overhead=1.2),
               dict(objective="latency", ram="64", backend="graph"),
               dict(objective="ram", io="external", backend="graph")]
    got = msfopt.solve_many(models, queries, backend="cpsat", check=False)
    assert len(got) == 2 and all(len(row) == len(queries) for row in got)
    for model, row in zip(models, got):
        for q, plan in zip(queries, row):
            args = {"backend": "cpsat", "check": False, **q}
            try:
                ref = msfopt.solve(model, **args)
            except msfopt.MsfoptError as exc:
                assert type(plan) is type(exc) and str(plan) == str(exc)
                continue
            assert (plan.peak_ram_bytes, plan.macs, plan.est_cycles, plan.io) == (
                ref.peak_ram_bytes, ref.macs, ref.est_cycles, ref.io)
            assert plan.setting == ref.setting
