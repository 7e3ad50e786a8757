"""Runtime cost model: closed-form schedule costs vs an independent tile-by-tile simulation of the
executor, liveness and arena layout invariants."""
from hypothesis import given, settings, strategies as st

from msfopt import zoo
from msfopt.dag import build_dag
from msfopt.ir import ADD, CONV, Layer, Network, window_layer
from msfopt.layout import aligned_arena, plan_layout
from msfopt.modes import LINEBUFFER_TILE, block_schedules, hcache_schedules, recompute_schedules
from msfopt.schedule import Liveness

from random_nets import chains, draw_path


def simulate_hcache(net, i, j, p):
    """Walk the executor's loops literally: per tile row, pull columns through the layers on
    demand and record every computed output pixel; return (macs, ring rows per layer)."""
    L = net.layers
    H_out, W_out, _ = L[j].out_shape
    macs = 0
    ring_rows = {l: 0 for l in range(i + 1, j + 1)}
    for r0 in range(0, H_out, p):
        rows = {j + 1: (r0, min(r0 + p, H_out))}
        for l in range(j, i - 1, -1):
            lo, hi = rows[l + 1]
            a = max(0, lo * L[l].sh - L[l].pad[0])
            b = min(L[l].in_shape[0], (hi - 1) * L[l].sh - L[l].pad[0] + L[l].kh)
            rows[l] = (a, b)
            if l > i:
                ring_rows[l] = max(ring_rows[l], b - a)
        produced = {l: 0 for l in range(i, j + 1)}   # output columns produced by layer l

        def need(l, x):  # make output column x of layer l available
            if l > i:
                last_in = min(L[l].in_shape[1], x * L[l].sw - L[l].pad[1] + L[l].kw) - 1
                while produced[l - 1] <= last_in:
                    need(l - 1, produced[l - 1])
            lo, hi = rows[l + 1]
            nonlocal_macs[0] += (hi - lo) * L[l].out_shape[2] * L[l].macs_per_output()
            produced[l] += 1

        nonlocal_macs = [0]
        for x in range(W_out):
            need(j, x)
        macs += nonlocal_macs[0]
    return macs, ring_rows


@settings(max_examples=80)
@given(net=chains(max_layers=6), p=st.sampled_from([1, 2, 3]))
def test_closed_form_equals_simulation(net, p):
    live = Liveness(net)
    for j in range(net.n_layers):
        for s in hcache_schedules(net, live, j, p):
            macs, ring_rows = simulate_hcache(net, s.first, s.last, s.tile)
            assert s.macs == macs
            assert {r.layer: r.rows for r in s.rings} == ring_rows
            for r in s.rings:
                lay = net.layers[r.layer]
                assert r.cols == min(lay.kw, lay.in_shape[1])
                assert r.bytes == r.rows * r.cols * r.channels * net.elem_bytes


def simulate_recompute(net, i, j, p):
    """Literal patch loops: per output patch, walk backwards to every layer's input window and
    count the pixels each layer computes; return (macs, {layer: (max rows, max cols)})."""
    L = net.layers
    H_out, W_out, _ = L[j].out_shape
    macs = 0
    bufs = {l: (0, 0) for l in range(i + 1, j + 1)}
    for r0 in range(0, H_out, p):
        for c0 in range(0, W_out, p):
            ys, xs = (r0, min(r0 + p, H_out)), (c0, min(c0 + p, W_out))
            for l in range(j, i - 1, -1):
                macs += (ys[1] - ys[0]) * (xs[1] - xs[0]) * L[l].out_shape[2] * L[l].macs_per_output()
                ys = (max(0, ys[0] * L[l].sh - L[l].pad[0]),
                      min(L[l].in_shape[0], (ys[1] - 1) * L[l].sh - L[l].pad[0] + L[l].kh))
                xs = (max(0, xs[0] * L[l].sw - L[l].pad[1]),
                      min(L[l].in_shape[1], (xs[1] - 1) * L[l].sw - L[l].pad[1] + L[l].kw))
                if l > i:
                    r, c = bufs[l]
                    bufs[l] = (max(r, ys[1] - ys[0]), max(c, xs[1] - xs[0]))
    return macs, bufs


@settings(max_examples=80)
@given(net=chains(max_layers=6), p=st.sampled_from([1, 2, 3, 5, 64]))
def test_recompute_closed_form_equals_simulation(net, p):
    live = Liveness(net)
    for j in range(net.n_layers):
        for s in recompute_schedules(net, live, j, p):
            macs, bufs = simulate_recompute(net, s.first, s.last, p)
            assert s.macs == macs
            assert {r.layer: (r.rows, r.cols) for r in s.rings} == bufs
            # consecutive layers' buffers never overlap inside the scratch region
            spans = {r.layer: (r.offset, r.offset + r.bytes) for r in s.rings}
            for l in range(s.first + 1, s.last):
                a, b = spans[l], spans[l + 1]
                assert a[1] <= b[0] or b[1] <= a[0]
            assert all(0 <= a and b <= s.scratch_bytes for a, b in spans.values())


@settings(max_examples=40)
@given(net=chains(max_layers=6))
def test_linebuffer_never_recomputes(net):
    """The line buffer (one full-height tile row) computes each needed pixel exactly once:
    never more MACs than the unfused layers."""
    live = Liveness(net)
    for j in range(net.n_layers):
        for s in hcache_schedules(net, live, j, LINEBUFFER_TILE, mode="linebuffer"):
            unf = sum(net.layers[l].macs for l in range(s.first, s.last + 1))
            assert s.macs <= unf
            assert s.tile_rows == 1
            macs, _ = simulate_hcache(net, s.first, s.last, s.tile)
            assert macs == s.macs


@settings(max_examples=80)
@given(net=chains(max_layers=6))
def test_fused_block_last_layer_computes_its_output_once(net):
    """The last layer of a block produces each output pixel exactly once (only inner layers
    recompute; they may also skip rows/columns no one needs, so a block can be cheaper)."""
    scheds = block_schedules(net, tiles=(1, 2), patches=(2, 5))
    unf = {s.first: s.macs for s in scheds if s.mode == "unfused"}
    for s in scheds:
        assert s.layer_macs[-1] == unf[s.last]
        assert s.macs == sum(s.layer_macs)
        # the block's full tensors: its input and output (chain)
        if s.mode in ("inplace", "hcache-ip"):    # the output overwrites the input
            assert s.resident == (s.first,) and s.inplace == s.first
        else:
            assert s.resident == (s.first, s.last + 1)


@settings(max_examples=60)
@given(net=chains(max_layers=7), io=st.sampled_from(["arena", "external"]), data=st.data())
def test_chain_layout_fits_in_peak(net, io, data):
    """For chains the arena is exactly the largest block's RAM (aligned), and live buffers never
    overlap.  Plans with in-place blocks may fragment the free space (e.g. conv 1x1 -> in-place
    dw 1x3 -> maxpool on 6x6x1: the maxpool's output finds 60 free bytes in two pieces); those fall
    back to a larger arena, and the solver rejects them (tests/test_exact_answers.py)."""
    dag = build_dag(net, io=io, tiles=(1, 2), patches=(2, 4))
    path = draw_path(dag, data)
    scheds = [dag.schedules[e] for e in path]
    lay = plan_layout(net, scheds, io)
    peak = max(s.ram_bytes for s in scheds)
    if lay.fallback:
        assert any(s.mode in ("inplace", "hcache-ip") for s in scheds)
        assert lay.arena_bytes > peak
    else:
        assert lay.arena_bytes == aligned_arena(peak)
    for s, rings in zip(scheds, lay.ring_offsets):
        spans = [(lay.tensor_offset[t], net.tensor_bytes(t)) for t in s.resident
                 if not (io == "external" and t in (0, net.n_layers))]
        if s.mode == "recompute":   # patch buffers share one scratch region (two-ended)
            spans += [(min(rings) - min(r.offset for r in s.rings), s.scratch_bytes)] if rings else []
        else:
            spans += [(o, r.bytes) for o, r in zip(rings, s.rings)]
        spans = sorted((o, o + b) for o, b in spans if b)
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert a1 <= b0, "overlapping buffers"
        assert all(0 <= a and b <= lay.arena_bytes for a, b in spans)


def test_io_external_drops_network_input_and_output():
    net = zoo.load("mcunetv2-vww5")
    a = build_dag(net, io="arena")
    e = build_dag(net, io="external")
    s_a = [s for s in a.schedules if s.first == 0 and s.last == 0][0]
    s_e = [s for s in e.schedules if s.first == 0 and s.last == 0][0]
    assert s_a.ram_bytes - s_e.ram_bytes == 80 * 80 * 3
    last = net.n_layers - 1
    s_a = [s for s in a.schedules if s.first == last and s.last == last][0]
    s_e = [s for s in e.schedules if s.first == last and s.last == last][0]
    assert s_a.ram_bytes - s_e.ram_bytes == 3 * 3 * 160


def _residual_net():
    """conv -> [dw -> pw] -> add(skip from the conv output) -> conv."""
    l0 = window_layer(CONV, (16, 16, 3), 8, 3, 2, 1)
    l1 = window_layer("dw", l0.out_shape, 8, 3, 1, 1)
    l2 = window_layer(CONV, l1.out_shape, 8, 1, 1, 0)
    l3 = Layer(op=ADD, in_shape=l2.out_shape, out_shape=l2.out_shape, srcs=(3, 1))
    l4 = window_layer(CONV, l3.out_shape, 4, 1, 1, 0)
    return Network("res", (16, 16, 3), [l0, l1, l2, l3, l4]).validate()


def test_skip_tensor_counted_while_alive():
    net = _residual_net()
    scheds = {s.key: s for s in block_schedules(net, io="arena")}
    t1 = net.tensor_bytes(1)
    # layer 2 runs while the skip tensor 1 (8x8x8) waits for the add
    s = scheds[(2, 2, "unfused", 0)]
    assert s.resident == (1, 2, 3)
    assert s.ram_bytes == t1 + net.tensor_bytes(2) + net.tensor_bytes(3)
    # the add writes in place over its input 3
    s = scheds[(3, 3, "unfused", 0)]
    assert s.inplace == 3 and s.ram_bytes == 2 * t1
    # fused block 1-2 keeps its input (also the skip) and output
    s = scheds[(1, 2, "hcache", 1)]
    assert s.resident == (1, 3)
    # no fused block may swallow the add or end inside the skip's lifetime illegally
    assert all(s.mode == "unfused" for s in scheds.values() if s.first <= 3 <= s.last)


@settings(max_examples=150)
@given(h=st.integers(2, 30), w=st.integers(2, 30), c=st.integers(1, 4),
       k=st.sampled_from([1, 2, 3, 5]), s=st.sampled_from([1, 2, 3]), data=st.data(),
       op=st.sampled_from(["dw", "maxpool", "avgpool"]))
def test_inplace_delay_never_clobbers_a_needed_input_row(h, w, c, k, s, data, op):
    """Replay the in-place executor byte range by byte range: when output row y is computed, every
    input row it reads must still be intact; rows are flushed D - 1 rows late."""
    pt = data.draw(st.integers(0, k - 1))
    pl = data.draw(st.integers(0, k - 1))
    from msfopt.ir import conv_out
    if conv_out(h, k, s, pt, pt) < 1 or conv_out(w, k, s, pl, pl) < 1:
        return
    layer = window_layer(op, (h, w, c), c, k, s, (pt, pl, pt, pl))
    net = Network("one", (h, w, c), [layer]).validate()
    live = Liveness(net, "arena")
    from msfopt.modes import inplace_delay, inplace_schedule
    d = inplace_delay(layer)
    sched = inplace_schedule(net, live, 0)
    H_out, W_out, _ = layer.out_shape
    if d is None:
        assert sched is None
        return
    clobbered = 0     # bytes at the start of the buffer already overwritten by output rows
    row_in = w * c
    row_out = W_out * c
    for y in range(H_out):
        first = max(0, y * s - pt)
        # every input row read by output row y lies above the clobbered prefix
        assert first * row_in >= clobbered
        if y - d + 1 >= 0:
            clobbered = (y - d + 2) * row_out
    if sched is not None:
        assert sched.ram_bytes == h * w * c + d * W_out * c
        assert sched.ram_bytes < h * w * c + H_out * W_out * c


@settings(max_examples=100)
@given(net=chains(max_layers=6), p=st.sampled_from([1, 2, 3]))
def test_inplace_block_same_compute_and_never_clobbers(net, p):
    """An H-cache block writing over its input computes exactly what the plain block computes;
    replaying its tile rows, no input row still to be read is ever overwritten."""
    live = Liveness(net)
    for j in range(net.n_layers):
        plain = {s.first: s for s in hcache_schedules(net, live, j, p)}
        for s in hcache_schedules(net, live, j, p, mode="hcache-ip"):
            q = plain[s.first]
            assert (s.macs, s.layer_macs, s.calls) == (q.macs, q.layer_macs, q.calls)
            assert s.ram_bytes == q.ram_bytes - net.tensor_bytes(j + 1) + s.rings[-1].bytes
            L0, Lj = net.layers[s.first], net.layers[j]
            d, H = s.tile_w, Lj.out_shape[0]
            in_row = L0.in_shape[1] * L0.in_shape[2]
            out_row = Lj.out_shape[1] * Lj.out_shape[2]
            clobbered = 0
            for r in range(s.tile_rows):
                # input rows tile row r reads, going backwards through the block
                lo = r * s.tile
                for l in range(j, s.first - 1, -1):
                    lo = max(0, lo * net.layers[l].sh - net.layers[l].pad[0])
                assert lo * in_row >= clobbered
                if r - d + 1 >= 0:
                    clobbered = min((r - d + 2) * s.tile, H) * out_row


@settings(max_examples=60)
@given(net=chains(max_layers=5, tail=True), p=st.sampled_from([1, 2, 3]))
def test_gap_tail_streams_the_last_map(net, p):
    """A streaming GAP tail computes its pipeline exactly like the plain H-cache block, adds each
    input element once, and holds sums + one staging column instead of the last feature map."""
    from msfopt.ir import GAP
    from msfopt.modes import gap_tail_schedules
    live = Liveness(net)
    for j, L in enumerate(net.layers):
        if L.op != GAP:
            continue
        base = {s.first: s for s in hcache_schedules(net, live, j - 1, p, emit_single=True)}
        got = gap_tail_schedules(net, live, j, p)
        assert {s.first for s in got} == set(base)
        for s in got:
            b = base[s.first]
            assert s.layer_macs == b.layer_macs + (L.macs,)
            H, W, C = L.in_shape
            assert s.rings[-1].bytes == 4 * C + min(p, H) * C * net.elem_bytes
            assert s.ram_bytes == (b.ram_bytes - net.tensor_bytes(j) + net.tensor_bytes(j + 1)
                                   + s.rings[-1].bytes)


def test_graph_output_read_by_one_op_is_never_fused_over_or_overwritten(tmp_path):
    """A tensor that is a graph output AND the only input of the next conv: no fused block may
    keep it as a block-internal ring (it would never be written), and no in-place block may
    write over it.  Every plan of the DAG, generated and run, equals onnxruntime on the original
    file in both outputs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from random_nets import all_paths
    from msfopt import oracles
    from msfopt.dag import build_dag
    from msfopt.importers.onnx_import import load_onnx
    from msfopt.mcu_runtime.codegen import generate
    from msfopt.mcu_runtime.hostrun import build_host, run_host
    rng = np.random.default_rng(4)

    def conv(name, x, y, cin, cout, k):
        w = numpy_helper.from_array(rng.standard_normal((cout, cin, k, k)).astype(np.float32),
                                    name + "_w")
        return w, helper.make_node("Conv", [x, name + "_w"], [y], pads=[k // 2] * 4)
    inits, nodes = zip(conv("c1", "x", "a", 2, 3, 3), conv("c2", "a", "b", 3, 3, 3),
                       conv("c3", "b", "c", 3, 2, 3))
    g = helper.make_graph(
        list(nodes), "outfuse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 2, 8, 8])],
        initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "outfuse.onnx"
    onnx.save(m, str(path))
    net = load_onnx(str(path))
    assert net.output_ids == (1, 3)
    dag = build_dag(net, io="arena", tiles=(1, 2), patches=(4,))
    for e in range(dag.n_edges):
        s = dag.schedules[e]
        assert not (s.first < 1 <= s.last), f"{s.label} keeps the graph output 1 in a ring"
        assert s.inplace != 1, f"{s.label} overwrites the graph output 1"
    x = rng.standard_normal(net.input_shape).astype(np.float32)
    want = oracles.reference(net, [x], path).y
    for k, p in enumerate(all_paths(dag)):
        blocks = [dag.schedules[e].key for e in p]
        gen = generate(net, blocks, tmp_path / f"p{k}")
        y = run_host(gen, build_host(gen), x)
        ok, fig = oracles.compare(y, want, "float32")
        assert ok, f"{[dag.schedules[e].label for e in p]}: {fig}"
