"""Concat slices (issue 12, planning item 4): a concat input produced right before its channel
concat, read by nothing else, is written by its producer straight into its channel slice of
the concat output (through a small staging buffer), so it has no buffer of its own and the
concat copies only the other inputs.

Checked against oracles the planner did not produce:

* :func:`slice_liveness_check` replays a plan with its own derivation of the slices and of every
  block's live bytes and staging buffer: the schedules' counted bytes must equal the replay's
  exactly (the existing replay, ``test_residual.independent_liveness_check``, only bounds them
  from below and knows no slices);
* the generated C of random float32 ONNX graphs built from concat patterns (fire modules, fused
  branches, standalone activations, resizes, squeeze-excite products, global pools feeding a
  concat; every plan kind, every io placement) against onnxruntime on the written file, with the
  linked arena equal to the predicted one;
* an int8 TFLite model whose CONCATENATION inputs come from an unfused conv, a fusable conv
  chain, a standalone LOGISTIC, a nearest resize and a max pool, bit-exact with tflite-micro for
  the unfused, minimum-RAM and random DAG-path plans;
* the shared concat models: slices never raise the minimum RAM (the planner's rule), SqueezeNet's
  fire modules drop it below 0.6x.
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from conftest import SHARED_MODELS, examples, require
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from random_nets import path_blocks, random_path

from msfopt import ir, oracle_engines, oracles, schedule
from msfopt.dag import build_dag
from msfopt.errors import InputError
from msfopt.importers.onnx_import import load_onnx
from msfopt.layout import aligned_arena
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host
from msfopt.models import load_model
from msfopt.plan import Plan
from msfopt.solver import solve

GUARD = 16


# -- the independent replay -------------------------------------------------------------------

def _readers(net):
    r = {t: [] for t in range(net.n_layers + 1)}
    for i, L in enumerate(net.layers):
        for t in L.srcs:
            r[t].append(i)
    return r


def _quant_key(q):
    if q is None:
        return None
    return (tuple(np.asarray(q.scale, dtype=np.float64).ravel().tolist()),
            tuple(np.asarray(q.zero_point).ravel().tolist()))


#: the stress test's rule: every candidate a slice (no RAM comparison), to reach every producer
#: path of the executor
EVERY_CANDIDATE = False


def replay_slices(net, io: str) -> dict[int, tuple[int, int]]:
    """The slices by the rule, derived here from the network alone: for each channel concat
    (its output in the arena), the inputs produced by the layers right before it (going back
    while each one is an input it alone reads once, not the network input or a graph output,
    not made by a concat or reshape, on the concat output's grid), as many of them as keep
    those layers' layer-by-layer RAM least: input -> (concat output, first channel)."""
    readers = _readers(net)
    outs = set(net.output_ids)
    out = {}
    for c, L in enumerate(net.layers):
        if L.op != ir.CONCAT or L.axis != 2 or (io == "external" and c + 1 in outs):
            continue
        first, pos = {}, 0
        for t in L.srcs:
            first.setdefault(t, pos)
            pos += net.tensor_shape(t)[2]
        cand = []
        a = c
        while (a >= 1 and a in first and readers[a] == [c] and a not in outs
               and net.layers[a - 1].op not in (ir.CONCAT, ir.RESHAPE)
               and _quant_key(net.quant_of(a)) == _quant_key(net.quant_of(c + 1))):
            cand.append(a)
            a -= 1
        # of those, the longest run (latest first) whose layer-by-layer RAM from the earliest
        # candidate's producer to the concat is least
        costs = [_window_peak(net, io, readers, c, cand, set(cand[:k]))
                 for k in range(len(cand) + 1)]
        k = max(k for k in range(len(cand) + 1) if costs[k] == min(costs))
        if EVERY_CANDIDATE:
            k = len(cand)
        for a in cand[:k]:
            out[a] = (c + 1, first[a])
    return out


def _window_peak(net, io, readers, c, cand, S) -> int:
    """Layer-by-layer RAM of layers (earliest candidate's producer) .. c when the inputs S of
    concat c are slices: each layer holds every buffer that exists and is read by it or later
    (a slice's buffer is the concat output, which exists from the first slice on), its output's
    buffer and, writing a slice, one staging row."""
    if not cand:
        return 0
    outs = set(net.output_ids)
    C = c + 1

    def counted(t):
        return not ((t == 0 and io != "arena") or (t in outs and io == "external"))

    peak = 0
    for l in range(min(cand) - 1, c + 1):
        bufs = set()
        for t in range(l + 1):
            if any(r >= l for r in readers[t]) or t in outs:
                bufs.add(C if t in S else t)
        if S and min(S) <= l:
            bufs.add(C)
        bufs.add(C if l + 1 in S else l + 1)
        b = sum(net.tensor_bytes(t) for t in bufs if counted(t))
        if l + 1 in S:
            _, w, ch = net.layers[l].out_shape
            b += w * ch * net.elem_bytes
        peak = max(peak, b)
    return peak


def _stage_bytes(net, s) -> int:
    """The staging buffer the C executor uses for a block writing a concat slice: one output
    row (unfused), one column of a tile row (column pipelines), one patch (recompute), the
    1 x 1 result (a streaming GAP tail)."""
    h, w, c = net.tensor_shape(s.last + 1)
    rows, cols = {"unfused": (1, w), "hcache": (min(s.tile, h), 1),
                  "linebuffer": (h, 1), "hcache-gap": (1, 1),
                  "recompute": (min(s.tile, h), min(s.tile, w))}[s.mode]
    return rows * cols * c * net.elem_bytes


def slice_liveness_check(net, schedules, io: str) -> dict:
    """Replay a plan with concat slices: every block reads only tensors that exist (the
    network input, an earlier block's output, its own intermediates -- which nobody outside
    reads); while it runs it holds the buffer of every tensor that exists and is read by it or
    later (or is a graph output) and of its output, an aliased tensor's buffer being its concat
    output's; uncounted io buffers aside, an in-place output not twice.  The schedule's counted
    bytes must be exactly those, its RAM those plus its scratch, and a block writing a slice
    must have exactly the staging buffer the executor uses.  Returns the slices."""
    slices = replay_slices(net, io)
    assert schedule.Liveness(net, io).alias_of == slices
    readers = _readers(net)
    outs = set(net.output_ids)
    uncounted = set()
    if io in ("external", "input-external"):
        uncounted.add(0)
    if io == "external":
        uncounted |= outs

    def buf(t):
        return slices[t][0] if t in slices else t

    exists = {0}
    for s in schedules:
        inside = set(range(s.first, s.last + 1))
        for i in inside:
            for t in net.layers[i].srcs:
                assert t in exists or s.first < t <= s.last, f"block {s.label} reads {t}"
        for t in range(s.first + 1, s.last + 1):
            assert all(r in inside for r in readers[t]) and t not in slices
        for t in slices:
            if t in exists or t == s.last + 1:
                assert all(r == slices[t][0] - 1 for r in readers[t])
        held = {buf(t) for t in exists if any(r >= s.first for r in readers[t]) or t in outs}
        held.add(buf(s.last + 1))
        need = sum(net.tensor_bytes(b) for b in held if b not in uncounted)
        if s.inplace is not None:
            need -= net.tensor_bytes(s.last + 1)
        assert s.tensor_bytes == need, f"block {s.label}: counts {s.tensor_bytes}, holds {need}"
        assert s.ram_bytes == s.tensor_bytes + s.scratch_bytes
        stage = [r.bytes for r in s.rings if r.layer == -1]
        assert stage == ([_stage_bytes(net, s)] if s.last + 1 in slices else []), s.label
        if s.last + 1 in slices:
            assert s.inplace is None and not s.inplace_options
        exists.add(s.last + 1)
    assert outs <= exists
    return slices


# -- random float32 ONNX graphs of concat patterns --------------------------------------------

def _graph(rng, c, h, w):
    """test_graph_ops_onnx's graph builder (imported here: that module imports this one's
    replay)."""
    g = _ops._G(rng, c, h, w)
    g.in_shape = (c, h, w)
    g.cur = g.conv("x", c, c, 1)     # the network input feeds one conv
    return g


def _cat_step(g, kind: str):
    """One concat pattern (g.cur / g.shape updated); other kinds: test_graph_ops_onnx's."""
    _step = _ops._step
    c, h, w = g.shape
    x = g.cur
    rng = g.rng
    if kind == "fire":               # squeeze 1x1 -> expand 1x1 and 3x3 (relu) -> concat
        s = g.node("Relu", [g.conv(x, c, 2, 1)])
        parts = [(g.node("Relu", [g.conv(s, 2, 3, 1)]), 3),
                 (g.node("Relu", [g.conv(s, 2, 2, 3, p=1)]), 2)]
    elif kind == "chain":            # a fusable 3x3 -> 3x3 chain beside a 1x1, either order
        a = lambda: (g.conv(x, c, 2, 1), 2)                                  # noqa: E731
        b = lambda: (g.conv(g.node("Relu", [g.conv(x, c, 3, 3, p=1)]), 3, 2, 3, p=1), 2)  # noqa
        parts = [a(), b()] if rng.integers(2) else [b(), a()]
    elif kind == "actcat":           # a standalone activation and a conv of x beside x itself
        parts = [(x, c), (g.node("Sigmoid", [g.conv(x, c, 2, 3, p=1)]), 2),
                 (g.node("HardSwish", [g.conv(x, c, 2, 1)]), 2)]
    elif kind == "upcat" and h % 2 == 0 and w % 2 == 0:   # U-Net: pool, conv, x2 up, concat
        d = g.conv(g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]), c, 3, 3, p=1)
        up = g.node("Resize", [d, "", g.const(np.array([1, 1, 2, 2], np.float32))],
                    mode="nearest", coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor")
        parts = [(up, 3), (x, c)] if rng.integers(2) else [(x, c), (up, 3)]
    elif kind == "secat":            # a squeeze-excite product beside a conv
        p = g.node("GlobalAveragePool", [x])
        gate = g.node("Sigmoid", [g.conv(p, c, c, 1)])
        parts = [(g.conv(x, c, 2, 1), 2), (g.node("Mul", [x, gate]), c)]
    elif kind == "poolcat" and h >= 3 and w >= 3:   # max pool and two convs, three slices
        parts = [(g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4), c),
                 (g.conv(x, c, 2, 1), 2), (g.conv(x, c, 1, 3, p=1), 1)]
    elif kind == "gapcat":           # two global pools (one a fusable conv -> GAP tail)
        b = g.node("GlobalAveragePool", [x])
        a = g.node("GlobalAveragePool",    # last, after two convs: a GAP tail's slice
                   [g.conv(g.node("Relu", [g.conv(x, c, 3, 3, p=1)]), 3, 3, 3, p=1)])
        g.cur, g.shape = g.node("Concat", [a, b], axis=1), (3 + c, 1, 1)
        return
    else:
        _step(g, kind if kind in ("conv", "pool", "residual", "split", "concat") else "conv")
        return
    g.cur = g.node("Concat", [p for p, _ in parts], axis=1)
    g.shape = (sum(k for _, k in parts), h, w)


CAT_KINDS = ["fire", "chain", "actcat", "upcat", "secat", "poolcat", "gapcat", "conv", "pool",
             "residual", "split"]


def _cat_case(tmp_path_factory, tag, rng, kinds, c, h, w):
    """A random concat graph (``kinds`` steps, then a 1x1 conv so that the concat output is no
    graph output) written to a file: (net, path, two inputs, onnxruntime's reference)."""
    g = _graph(rng, c, h, w)
    for kind in kinds:
        _cat_step(g, kind)
    g.cur = g.conv(g.cur, g.shape[0], 2, 1)
    g.shape = (2,) + g.shape[1:]
    path = tmp_path_factory.mktemp(tag) / "g.onnx"
    onnx.save(g.model(), path)
    net = load_onnx(path)
    xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(2)]
    return net, path, xs, oracles.reference(net, xs, path)


@pytest.fixture(scope="module")
def kept_oracle():
    with oracle_engines.kept_workers():
        yield


@pytest.fixture
def every_candidate(monkeypatch):
    """Every candidate input a slice, in the planner (its RAM comparison off) and the replay."""
    monkeypatch.setattr(schedule, "_best_prefix", lambda net, c, cand, *a: len(cand))
    monkeypatch.setattr(sys.modules[__name__], "EVERY_CANDIDATE", True)


def _run_plans(net, path, plans, io, xs, want, tmp, sanitize=False):
    _elf_arena = _models._elf_arena
    for tag, blocks in plans.items():
        gen = generate(net, blocks, tmp / tag, io=io)
        slice_liveness_check(net, gen.schedules, io)
        assert not set(replay_slices(net, io)) & set(gen.tensor_offsets)
        exe = build_host(gen, guard=GUARD, sanitize=sanitize)
        assert _elf_arena(exe) == gen.arena_bytes + 2 * GUARD
        if not gen.extra["fallback_layout"]:   # (some graphs pack only above their peak)
            assert gen.arena_bytes == aligned_arena(max(s.ram_bytes for s in gen.schedules))
        for x, y in zip(xs, want):
            ok, fig = oracles.compare(run_host(gen, exe, x), y, net.dtype)
            assert ok, f"{tag} {io} {blocks}: {fig}"


# ~0.6 s an example (one host build each)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(CAT_KINDS), min_size=1, max_size=4),
       c=st.integers(2, 4), h=st.integers(4, 8), w=st.integers(4, 8), seed=st.integers(0, 999),
       plan=st.sampled_from(("unfused", "min-ram", "random", "random")),
       io=st.sampled_from(("arena", "external", "input-external")))
@example(kinds=["fire", "chain"], c=3, h=6, w=7, seed=1, plan="random", io="external")
@example(kinds=["gapcat", "conv"], c=2, h=5, w=5, seed=2, plan="random", io="arena")
@example(kinds=["upcat", "secat"], c=2, h=6, w=4, seed=3, plan="min-ram", io="input-external")
@example(kinds=["poolcat", "actcat"], c=3, h=5, w=6, seed=4, plan="unfused", io="arena")
def test_random_concat_graphs_run_like_onnxruntime(tmp_path_factory, kept_oracle, kinds, c, h,
                                                   w, seed, plan, io):
    """A random graph of concat patterns, one plan of it (unfused, minimum RAM, or a random DAG
    path) with one io placement, as C: equal to onnxruntime on the written file on two inputs;
    the schedules pass the slice replay, a DAG path's predicted peak is the generated
    schedules', the linked arena the predicted one."""
    rng = np.random.default_rng(seed)
    net, path, xs, ref = _cat_case(tmp_path_factory, "cat", rng, kinds, c, h, w)
    assert ref.oracle == oracles.ORT
    dag = build_dag(net, io=io)
    if plan == "min-ram":
        blocks = solve(net, objective="ram", io=io, dag=dag).blocks
    else:
        p = dag.vanilla_path() if plan == "unfused" else random_path(dag, rng)
        blocks = path_blocks(dag, p)
        peak = dag.totals(p)["peak"]
        from msfopt.mcu_runtime.codegen import chain_schedules
        assert max(s.ram_bytes for s in chain_schedules(net, blocks, io)) == peak
    _run_plans(net, path, {plan: blocks}, io, xs, ref.ys, path.parent)


# ~0.6 s an example
@settings(max_examples=examples(20), deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(CAT_KINDS[:7]), min_size=1, max_size=3),
       c=st.integers(2, 4), h=st.integers(4, 7), w=st.integers(4, 7), seed=st.integers(0, 999),
       io=st.sampled_from(("arena", "external")))
@example(kinds=["gapcat"], c=3, h=6, w=6, seed=0, io="arena")
def test_every_candidate_a_slice_runs_like_onnxruntime(tmp_path_factory, kept_oracle,
                                                       every_candidate, kinds, c, h, w, seed,
                                                       io):
    """With every candidate input a slice (even where that costs RAM), a random DAG path of a
    random concat graph -- every producer kind and fused mode, the GAP tail too -- as C, equal
    to onnxruntime; the schedules pass the (equally patched) slice replay."""
    rng = np.random.default_rng(seed)
    net, path, xs, ref = _cat_case(tmp_path_factory, "all", rng, kinds, c, h, w)
    dag = build_dag(net, io=io)
    live = schedule.Liveness(net, io)
    # a path whose blocks write slices where they can: a fused block ending at a slice if any
    van = {int(dag.src[e]): e for e in dag.vanilla_path()}
    ends = [e for e in range(dag.n_edges)
            if int(dag.dst[e]) in live.alias_of and dag.mode[e] != "unfused"]
    if ends:
        e = ends[int(rng.integers(len(ends)))]
        p = [van[v] for v in range(int(dag.src[e]))] + [e] + \
            [van[v] for v in range(int(dag.dst[e]), dag.n_nodes - 1)]
    else:
        p = random_path(dag, rng)
    _run_plans(net, path, {"path": path_blocks(dag, p)}, io, xs, ref.ys, path.parent)


def test_fire_module_slices_every_producer_mode(tmp_path, kept_oracle):
    """A fire module whose expand branches are a 1x1 conv and a fusable 3x3 -> 3x3 chain: the
    plans that run the chain as each fused mode (H-cache tiles, line buffer, recompute) write
    their slice through the staging buffer, equal to onnxruntime (ASan / UBSan builds with the
    executor's bounds checks)."""
    rng = np.random.default_rng(5)
    g = _graph(rng, 3, 8, 8)
    _cat_step(g, "fire")
    x, c = g.cur, g.shape[0]
    # a fusable 3x3 -> 3x3 chain, then a 1x1, both expanding: the concat (16 channels) would
    # be the peak without slices
    b = g.conv(g.node("Relu", [g.conv(x, c, 1, 3, p=1)]), 1, 8, 3, p=1)
    a = g.conv(x, c, 8, 1)
    g.cur = g.conv(g.node("Concat", [a, b], axis=1), 16, 2, 1)
    g.shape = (2, 8, 8)
    path = tmp_path / "fire.onnx"
    onnx.save(g.model(), path)
    net = load_onnx(path)
    live = schedule.Liveness(net)
    assert len(live.alias_of) == 4
    xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(2)]
    ref = oracles.reference(net, xs, path)
    dag = build_dag(net, prune=False)
    van = {int(dag.src[e]): e for e in dag.vanilla_path()}
    plans = {}
    for e in range(dag.n_edges):    # every fused block writing a slice, unfused elsewhere
        if int(dag.dst[e]) in live.alias_of and dag.mode[e] != "unfused":
            p = [van[v] for v in range(int(dag.src[e]))] + [e] + \
                [van[v] for v in range(int(dag.dst[e]), dag.n_nodes - 1)]
            plans.setdefault(f"{dag.mode[e]}{dag.tile[e]}", path_blocks(dag, p))
    assert {"hcache", "linebuffer", "recompute"} <= {k.rstrip("0123456789") for k in plans}
    _run_plans(net, path, plans, "arena", xs, ref.ys, tmp_path, sanitize=True)


def test_unfused_slice_writer_counts_a_kernel_call_per_output_row():
    """The executor runs an unfused layer that writes a concat slice one output row at a time
    (msf_executor.c: stage a row, copy it into the slice), so its schedule -- which the cycle
    model prices -- counts one kernel call per output row; other unfused layers one call."""
    from msfopt.modes import unfused_schedule
    rng = np.random.default_rng(5)
    g = _graph(rng, 3, 8, 8)
    x, c = g.cur, g.shape[0]
    a, b = g.conv(x, c, 8, 1), g.conv(x, c, 8, 3, p=1)
    g.cur = g.conv(g.node("Concat", [a, b], axis=1), 16, 2, 1)
    g.shape = (2, 8, 8)
    net = ir_from(g)
    live = schedule.Liveness(net)
    writers = {t - 1 for t in live.alias_of}
    assert writers
    for l in range(net.n_layers):
        s = unfused_schedule(net, live, l)
        assert s.calls == (net.layers[l].out_shape[0] if l in writers else 1), l


def ir_from(g):
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "g.onnx"
        onnx.save(g.model(), path)
        return load_onnx(path)


# -- int8: tflite-micro -------------------------------------------------------------------------

def _int8_concat_model(chain_last: bool = False):
    """x [8,8,3] -> five branches on x's grid -> CONCATENATION -> conv 1x1.  The ops that make
    the concat's inputs come last, in this order: a fusable conv 3x3 -> conv 3x3 chain's second
    conv, a QUANTIZE requantising a LOGISTIC onto the grid, a conv 1x1, a 3x3 max pool and a
    nearest x2 resize of an average pool.  The last four are slices; the chain's is not (its
    producer would hold the chain's input, the concat output and a staging row: more than the
    concat without it).  ``chain_last``: the chain reads the resize's output and comes last
    (a fused block's first layer reads the tensor made right before it), so a fused block can
    write the chain's slice."""
    from test_tflite_graph_ops import OPS, concat_opts, resize_opts
    from test_tflite_import import _conv_weights, conv_opts, pool_opts
    from tflite_builder import SAME, VALID, ModelWriter
    rng = np.random.default_rng(11)
    w = ModelWriter()
    Q = (0.05, -4)
    x = w.act([1, 8, 8, 3], *Q)

    def conv(src, cin, cout, k, q=Q, act="none"):
        cw, cb = _conv_weights(w, rng, [cout, k, k, cin], 0)
        o = w.act([1, 8, 8, cout], *q)
        w.op(OPS["CONV_2D"], [src, cw, cb], [o], *conv_opts(SAME, (1, 1), act))
        return o
    pool_in = w.act([1, 4, 4, 3], *Q)
    w.op(OPS["AVERAGE_POOL_2D"], [x], [pool_in], *pool_opts(VALID, (2, 2), (2, 2)))
    sg = w.act([1, 8, 8, 2], 1 / 256, -128)
    w.op(OPS["LOGISTIC"], [conv(x, 3, 2, 1, q=(0.08, 3))], [sg])
    if not chain_last:
        chain = conv(conv(x, 3, 3, 3, q=(0.07, 1), act="relu"), 3, 2, 3)
    rq = w.act([1, 8, 8, 2], *Q)
    w.op(OPS["QUANTIZE"], [sg], [rq])
    pw = conv(x, 3, 4, 1)
    mp = w.act([1, 8, 8, 3], *Q)
    w.op(OPS["MAX_POOL_2D"], [x], [mp], *pool_opts(SAME, (1, 1), (3, 3)))
    size = w.tensor([2], w.INT32, data=np.array([8, 8], np.int32))
    up = w.act([1, 8, 8, 3], *Q)
    w.op(OPS["RESIZE_NEAREST_NEIGHBOR"], [pool_in, size], [up], *resize_opts(True))
    if chain_last:
        chain = conv(conv(up, 3, 3, 3, q=(0.07, 1), act="relu"), 3, 2, 3)
    cat = w.act([1, 8, 8, 14], *Q)
    w.op(OPS["CONCATENATION"], [up, mp, rq, pw, chain], [cat], *concat_opts(3))
    return w.build([x], [conv(cat, 14, 3, 1, q=(0.1, 0))])


@pytest.mark.parametrize("every", [False, True])
def test_int8_concat_slices_bit_exact_with_tflm(every, tmp_path, request):
    """The planner's slices (and, ``every``, the model whose conv chain comes last with its
    slice taken whatever it costs: fused blocks writing it),
    unfused / zero-recompute / minimum-RAM and random DAG-path plans: bit-exact with
    tflite-micro on five inputs, the linked arena the predicted one."""
    from test_tflite_graph_ops import all_values_inputs, check_bit_exact, plans_of
    from msfopt.importers.tflite_import import load_tflite
    path = tmp_path / "cat8.tflite"
    path.write_bytes(_int8_concat_model(chain_last=every))
    if every:
        request.getfixturevalue("every_candidate")
    net = load_tflite(path)
    slices = replay_slices(net, "arena")
    (cat,) = [i for i, L in enumerate(net.layers) if L.op == ir.CONCAT]
    producers = {net.layers[a - 1].op for a in slices}
    if every:      # the chain's conv, then (not read by the concat alone) its input's
        assert len(slices) == 1 and producers == {ir.CONV}, slices
    else:
        assert len(slices) == 4 and {ir.CONV, ir.ACT, ir.MAXPOOL, ir.RESIZE} <= producers, \
            (slices, producers)
    plans = plans_of(net)
    dag = build_dag(net)
    rng = np.random.default_rng(2)
    for k in range(3):
        plans[f"random{k}"] = path_blocks(dag, random_path(dag, rng))
    if every:      # the chain fused (each mode) into its slice
        dag = build_dag(net, prune=False)
        van = {int(dag.src[e]): e for e in dag.vanilla_path()}
        for e in range(dag.n_edges):
            if int(dag.dst[e]) in slices and dag.mode[e] != "unfused":
                p = [van[v] for v in range(int(dag.src[e]))] + [e] + \
                    [van[v] for v in range(int(dag.dst[e]), dag.n_nodes - 1)]
                plans.setdefault(f"{dag.mode[e]}{dag.tile[e]}", path_blocks(dag, p))
        assert any(k.startswith("hcache") for k in plans), list(plans)
    for blocks in plans.values():
        from msfopt.mcu_runtime.codegen import chain_schedules
        slice_liveness_check(net, chain_schedules(net, blocks, "arena"), "arena")
    xs = all_values_inputs(net.input_shape, 5, np.random.default_rng(9))
    ys = check_bit_exact(net, path, xs, plans, tmp_path)
    assert len({y.tobytes() for y in ys}) == 5


# -- the shared models --------------------------------------------------------------------------

#: shared concat model -> its slices (SqueezeNet: both expand convs of its 8 fire modules;
#: the U-Nets: each decoder's upsampled input; ShuffleNetV2: none -- the branch conv writing
#: a slice would hold its input, the passed-through half, the whole concat output and a row)
CONCAT_MODELS = {"tv_squeezenet1_1_r128.onnx": 16, "tv_shufflenet_v2_x0_5_r128.onnx": 0,
                 "torch_unet_lrelu_r64.onnx": 3, "keras_unet_r96_int8.tflite": 3}


@pytest.mark.parametrize("file", CONCAT_MODELS)
def test_shared_models_slices_never_cost_ram(file, monkeypatch):
    """Minimum RAM and minimum RAM at zero recompute with slices are never above the plans
    without them; the plans pass the slice replay.  SqueezeNet: below 0.6x (its fire modules'
    concats were its peak)."""
    require("../shared/models")
    net = load_model(str(SHARED_MODELS / file))
    got = {}
    for on in (True, False):
        monkeypatch.setattr(schedule, "ALIAS_CONCAT", on)
        dag = build_dag(net)
        for f in (None, 1.0):
            p = solve(net, objective="ram", max_overhead=f, dag=dag, check=False)
            got[on, f] = p.peak_ram_bytes
            if on:
                slices = slice_liveness_check(
                    net, [dag.schedules[e] for e in _edges(dag, p)], "arena")
                assert len(slices) == CONCAT_MODELS[file]
    for f in (None, 1.0):
        assert got[True, f] <= got[False, f], (file, f, got)
    if file.startswith("tv_squeezenet"):
        assert got[True, None] < 0.6 * got[False, None], got


def _edges(dag, plan):
    idx = {(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e]): e
           for e in range(dag.n_edges)}
    return [idx[(b.first_layer, b.last_layer, b.mode, b.tile)] for b in plan.blocks]


def test_plan_json_records_the_slices(tmp_path):
    """``msfopt.order.solve`` (the CLI's solve) records the slices in the plan JSON; a plan
    whose recorded slices are not the model's is refused (exit 2's InputError)."""
    require("../shared/models")
    from msfopt.order import solve as order_solve
    net = load_model(str(SHARED_MODELS / "tv_squeezenet1_1_r128.onnx"))
    plan = order_solve(net, objective="ram", check=False)
    want = [{"tensor": a, "concat": c, "channel": o}
            for a, (c, o) in sorted(replay_slices(plan.network(net), plan.io).items())]
    assert plan.concat_slices == want and len(want) == 16
    plan.save(tmp_path / "p.json")
    back = Plan.load(tmp_path / "p.json")
    back.validate(plan.network(net))
    back.concat_slices = want[:-1]
    with pytest.raises(InputError, match="concat slices"):
        back.validate(plan.network(net))


# last: these modules import this one's replay (bound as modules, read when a test runs)
import test_graph_models as _models  # noqa: E402
import test_graph_ops_onnx as _ops  # noqa: E402
