"""Behaviour of the solver-speed machinery: the exact growth bound on long fused blocks, the
one-solve lexicographic CP-SAT program, and the batch API.

Oracles: the unbounded DAG (``build_dag(prune=False)``: every candidate block, no pruning of any
kind) solved by exact graph search and by its exact Pareto front; stage-by-stage lexicographic
solves; single ``msfopt.solve`` calls.
"""
from __future__ import annotations

import dataclasses

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


# -- the bulk DAG build equals the per-block construction ------------------------------------------

def _bulk_used(monkeypatch):
    """Make a silent fallback of the bulk cycle costing visible (the test must exercise it)."""
    import msfopt.dag as dag_mod
    used = []
    orig = dag_mod._bulk_cycles

    def spy(*a, **k):
        r = orig(*a, **k)
        used.append(r is not None)
        return r
    monkeypatch.setattr(dag_mod, "_bulk_cycles", spy)
    return used


def _same_dag(new, ref):
    """Edge for edge: layers, RAM, MACs, cycles, mode, tile, and the schedule each edge reads."""
    import numpy as np
    assert new.n_edges == ref.n_edges
    for f in ("src", "dst", "ram", "macs", "cycles"):
        assert np.array_equal(getattr(new, f), getattr(ref, f)), f
    assert new.mode == ref.mode and new.tile == ref.tile
    step = max(1, new.n_edges // 60)
    for e in list(range(0, new.n_edges, step)) + [new.n_edges - 1]:
        assert new.schedules[e] == ref.schedules[e], e


CALIBRATED = CycleModel(name="calib", cpm=dict(FRACTIONAL.cpm), per_call=41.25, fused_out=2.7,
                        unclamped_out=0.35, conv_tap=1.1, cpo={"conv": 0.75, "pointwise": 1.25},
                        add_per_elem=9.5, copy_per_byte=1.75)
#: every term of the fast kernels' cycle model too (kernel runs, border and fused MACs)
FAST_TERMS = dataclasses.replace(CALIBRATED, name="fast", conv_border=1.7, dw_border=11.1,
                                 run_ch=32.57, fused_conv_mac=0.05, fused_dw_mac=3.66)


@pytest.mark.parametrize("name", ["mbv2-w0.35", "mcunetv2-vww5", "mcunet-320k",
                                  "mcunet-320k-res"])
def test_bulk_dag_equals_per_block_construction_on_the_zoo(name, monkeypatch):
    from msfopt.dag import _build_dag_reference
    from msfopt.models import load_model
    used = _bulk_used(monkeypatch)
    net = load_model(name)
    _same_dag(build_dag(net), _build_dag_reference(net))
    _same_dag(build_dag(net, io="external", cycle_model=CALIBRATED, prune=False),
              _build_dag_reference(net, io="external", cycle_model=CALIBRATED, prune=False))
    assert used and all(used)


@pytest.mark.parametrize("mcu", ["cortex-m4", "rv32imac"])
def test_bulk_dag_equals_per_block_construction_with_calibrated_profiles(mcu, monkeypatch):
    """The shipped calibrated tables (every fast-kernel term, run_ch included): the cycle model's
    vectorised form (CycleModel.cycles_bulk) is used and equals the per-block construction."""
    from msfopt.dag import _build_dag_reference
    from msfopt.mcu import get_profile
    from msfopt.models import load_model
    used = _bulk_used(monkeypatch)
    cm = get_profile(mcu).cycle_model()
    assert cm.run_ch > 0 and cm.dw_border > 0
    net = load_model("mcunetv2-vww5")
    _same_dag(build_dag(net, cycle_model=cm), _build_dag_reference(net, cycle_model=cm))
    assert used and all(used)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=chains(max_layers=8, max_hw=20, tail=True),
       io=st.sampled_from(["arena", "external", "input-external"]),
       model=st.sampled_from([None, FRACTIONAL, CALIBRATED, FAST_TERMS]), prune=st.booleans(),
       depth=st.sampled_from([None, 2, 3]))
def test_bulk_dag_equals_per_block_construction_on_random_chains(net, io, model, prune, depth):
    from msfopt.dag import _build_dag_reference
    kw = dict(io=io, cycle_model=model, prune=prune, max_depth=depth)
    _same_dag(build_dag(net, **kw), _build_dag_reference(net, **kw))


def test_bulk_dag_equals_per_block_construction_on_same_chains_and_mode_subsets():
    from msfopt.dag import _build_dag_reference
    net = conv_chain(24, hw=8, channels=4)
    for modes in (("hcache", "recompute"), ("hcache-ip", "linebuffer", "inplace")):
        for model in (None, FRACTIONAL):
            kw = dict(modes=modes, cycle_model=model, tiles=(1, 3, 16), patches=(2, 5))
            _same_dag(build_dag(net, **kw), _build_dag_reference(net, **kw))


def test_out_delay_closed_form_equals_the_search():
    """The in-place delay in closed form against the defining search (every D tried in turn)."""
    import random

    import numpy as np

    from msfopt.modes import _out_delay, out_delay_closed
    rng = random.Random(7)
    for _ in range(3000):
        n = rng.randint(1, 12)
        lo = sorted(rng.randint(0, 50) for _ in range(n - 1))
        args = (rng.randint(1, 5), rng.randint(1, 40), rng.randint(1, 30), rng.randint(1, 30))
        assert out_delay_closed(lo, *args) == _out_delay(np.array(lo, dtype=np.int64), *args)
