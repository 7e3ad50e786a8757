"""The C fused-block executor (msf_run_block) against unfused execution.

Random small chains of window layers (conv / grouped conv / dw / maxpool / avgpool, int8 and
float32) are split at random into fused blocks (H-cache with tile height p = 1, 2 or 3, line
buffer, recompute with 1..3-pixel patches) and single-layer blocks, followed by unfused GAP,
DENSE and ADD blocks.  The kernel parameters are built by hand here; every block's geometry
(row / column ranges, buffer sizes) comes from the code generator's descriptors
(msfopt.mcu_runtime.descriptor.block_descriptor, i.e. from the block schedule), with each buffer
placed in its own canary-guarded region.  The library is built with -DMSF_CHECK_BOUNDS.
Checked:
* fused output == unfused output, byte for byte;
* MACs counted by the C kernels (MSF_COUNT_MACS) == the closed-form count of the H-cache cost
  model derived here (and == the schedule's count for every mode);
* ring sizes of the schedule == the closed form derived here; no bounds-check failure; nothing
  is written outside the regions (canaries);
* a ring smaller than its ranges need makes the bounds check fire (and msf_block_validate fail).
"""
from __future__ import annotations

import ctypes as C

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from msfopt.ir import AVGPOOL, CONV, DW, MAXPOOL, Network, window_layer
from msfopt.mcu_runtime import hostlib, requant, runtime_files
from msfopt.mcu_runtime.descriptor import block_descriptor
from msfopt.modes import LINEBUFFER_TILE, schedule_of
from msfopt.schedule import Liveness

GUARD = 16
BOUNDS_MESSAGES: list[str] = []


@hostlib.BOUNDS_HOOK
def _record_bounds_failure(what):
    BOUNDS_MESSAGES.append(what.decode())


@pytest.fixture(scope="module")
def lib():
    lib = hostlib.load(hostlib.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all",
                                             "-DMSF_CHECK_BOUNDS"]))
    lib.msf_set_bounds_hook(_record_bounds_failure)
    return lib


# -- model description -------------------------------------------------------------------------------

def out_extent(size, k, s, p0, p1):
    return (size + p0 + p1 - k) // s + 1


@st.composite
def chains(draw):
    dtype = draw(st.sampled_from(["int8", "float32"]))
    h, w, c = draw(st.integers(3, 12)), draw(st.integers(3, 12)), draw(st.integers(1, 4))
    layers = []
    for _ in range(draw(st.integers(2, 6))):
        op = draw(st.sampled_from(["conv", "conv", "dw", "maxpool", "avgpool"]))
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        pad = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
        ho, wo = out_extent(h, kh, sh, pad[0], pad[2]), out_extent(w, kw, sw, pad[1], pad[3])
        if ho < 1 or wo < 1:
            continue
        groups, cout = 1, c
        if op == "conv":
            groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0]))
            cout = groups * draw(st.integers(1, 3))
        elif op == "dw":
            groups = c
        layers.append(dict(op=op, kernel=(kh, kw), stride=(sh, sw), pad=pad, groups=groups,
                           in_shape=(h, w, c), out_shape=(ho, wo, cout),
                           cip=draw(st.integers(0, 1)), act=draw(st.sampled_from(["none", "relu"]))))
        h, w, c = ho, wo, cout
    if len(layers) < 2:
        layers = []
    # partition into segments: (start, length, tile_h or patch, mode)
    segs, i = [], 0
    while i < len(layers):
        n = draw(st.integers(1, len(layers) - i))
        segs.append((i, n, draw(st.integers(1, 3)),
                     draw(st.sampled_from(["hcache", "hcache", "linebuffer", "recompute"]))))
        i += n
    seed = draw(st.integers(0, 2 ** 31 - 1))
    return dict(dtype=dtype, layers=layers, segs=segs, seed=seed,
                in_shape=layers[0]["in_shape"] if layers else (1, 1, 1))


def macs_per_output(l):
    kh, kw = l["kernel"]
    if l["op"] == "conv":
        return kh * kw * l["in_shape"][2] // l["groups"]
    return kh * kw


def fused_rows(layers, r, p):
    """[lo_k, hi_k) of the block's tensors k = 0..n for tile row r."""
    n = len(layers)
    lo, hi = [0] * (n + 1), [0] * (n + 1)
    lo[n], hi[n] = r * p, min(r * p + p, layers[-1]["out_shape"][0])
    for k in range(n - 1, -1, -1):
        (kh, _), (sh, _), pt = layers[k]["kernel"], layers[k]["stride"], layers[k]["pad"][0]
        lo[k] = max(0, lo[k + 1] * sh - pt)
        hi[k] = min(layers[k]["in_shape"][0], (hi[k + 1] - 1) * sh - pt + kh)
    return lo, hi


def fused_macs(layers, p):
    """The cost model's MAC count of a fused block (tile height p)."""
    n = len(layers)
    ncols = [0] * (n + 1)
    ncols[n] = layers[-1]["out_shape"][1]
    for k in range(n - 1, 0, -1):
        (_, kw), (_, sw), pl = layers[k]["kernel"], layers[k]["stride"], layers[k]["pad"][1]
        ncols[k] = min(layers[k]["in_shape"][1], (ncols[k + 1] - 1) * sw - pl + kw)
    total = 0
    n_tiles = -(-layers[-1]["out_shape"][0] // p)
    for r in range(n_tiles):
        lo, hi = fused_rows(layers, r, p)
        for k in range(n):
            total += (hi[k + 1] - lo[k + 1]) * ncols[k + 1] * layers[k]["out_shape"][2] \
                * macs_per_output(layers[k])
    return total


def ring_bytes(layers, k, p, esize):
    n_tiles = -(-layers[-1]["out_shape"][0] // p)
    rows = max(fused_rows(layers, r, p)[1][k] - fused_rows(layers, r, p)[0][k]
               for r in range(n_tiles))
    h, w, c = layers[k]["in_shape"]
    return rows * min(layers[k]["kernel"][1], w) * c * esize


# -- descriptors ------------------------------------------------------------------------------------------

class Builder:
    """Builds ctypes params / layers / blocks and keeps every buffer alive."""

    def __init__(self, dtype, rng):
        self.dtype, self.rng, self.keep = dtype, rng, []
        self.s8 = dtype == "int8"
        self.esize = 1 if self.s8 else 4

    def k(self, obj):
        self.keep.append(obj)
        return obj

    def act(self, act):
        if self.s8:
            return (-128, 127) if act == "none" else (int(self.rng.integers(-128, 0)), 127)
        return (-hostlib.F32_MAX, hostlib.F32_MAX) if act == "none" else (0.0, hostlib.F32_MAX)

    def params(self, l):
        rng, op = self.rng, l["op"]
        win = hostlib.window(l["kernel"], l["stride"], l["pad"])
        lo, hi = self.act(l["act"])
        cin, cout = l["in_shape"][2], l["out_shape"][2]
        if op in ("conv", "dw"):
            kh, kw = l["kernel"]
            wshape = (cout, kh, kw, cin // l["groups"])
            if self.s8:
                wt = self.k(rng.integers(-127, 128, wshape).astype(np.int8))
                bias = self.k(rng.integers(-500, 500, cout).astype(np.int32))
                fm = self.k((rng.uniform(0.3, 2.0, cout) / (wt[0].size * 40)).astype(np.float32))
                rq = hostlib.Requant(hostlib.MSF_RQ_FLOAT, 1, hostlib.ptr(fm, C.c_float), None,
                                     None)
                return self.k(hostlib.ConvS8(win, l["groups"], int(rng.integers(-128, 128)), 0,
                                             int(rng.integers(-128, 128)), lo, hi,
                                             hostlib.ptr(wt, C.c_int8),
                                             hostlib.ptr(bias, C.c_int32), rq))
            wt = self.k(rng.uniform(-1, 1, wshape).astype(np.float32))
            bias = self.k(rng.uniform(-1, 1, cout).astype(np.float32))
            return self.k(hostlib.ConvF32(win, l["groups"], lo, hi, hostlib.ptr(wt, C.c_float),
                                          hostlib.ptr(bias, C.c_float)))
        if self.s8:
            zp = int(rng.integers(-128, 128))
            return self.k(hostlib.PoolS8(win, l["cip"], hostlib.MSF_RQ_FLOAT,
                                         float(rng.uniform(0.01, 0.1)),
                                         float(rng.uniform(0.01, 0.1)),
                                         zp, int(rng.integers(-128, 128)), lo, hi))
        return self.k(hostlib.PoolF32(win, l["cip"], lo, hi))

    def layer(self, op, params, in_shape, out_shape, dl=None):
        """One msf_layer; dl: its row of a codegen block descriptor (None: unfused)."""
        buf = dl["buf"] if dl else (0, 0, 0, 0)
        zero = (0, 0, 0, 0)
        return hostlib.Layer(hostlib.OP_CODES[op], C.cast(C.pointer(params), C.c_void_p),
                             *in_shape, *out_shape, *buf,
                             hostlib.Range(*(dl["out_rows"] if dl else zero)),
                             hostlib.Range(*(dl["out_cols"] if dl else zero)),
                             hostlib.Range(*(dl["need_cols"] if dl else zero)))

    def block(self, layers, in_off, out_off, in2_off=0, desc=None):
        arr = self.k((hostlib.Layer * len(layers))(*layers))
        mode, th, tw, nt, ntc = (hostlib.MSF_MODE[desc.mode], desc.tile_h, desc.tile_w,
                                 desc.n_tiles, desc.n_tile_cols) if desc else (0, 0, 0, 1, 1)
        return hostlib.Block(hostlib.MSF_DT_S8 if self.s8 else hostlib.MSF_DT_F32, th,
                             len(layers), C.cast(arr, C.POINTER(hostlib.Layer)), in_off, in2_off,
                             out_off, mode, tw, nt, ntc)

    def tail_params(self, n_out, k_in):
        """GAP, DENSE and ADD params."""
        rng = self.rng
        if self.s8:
            fm = self.k(np.array([rng.uniform(0.01, 0.1)], np.float32))
            gap = self.k(hostlib.GapS8(int(rng.integers(-128, 128)), int(rng.integers(-128, 128)),
                                       -128, 127, hostlib.Requant(0, 0, hostlib.ptr(fm, C.c_float),
                                                                None, None)))
            wt = self.k(rng.integers(-127, 128, (n_out, k_in)).astype(np.int8))
            dm = self.k(np.full(n_out, 1.0 / (40 * k_in), np.float32))
            dense = self.k(hostlib.DenseS8(int(rng.integers(-128, 128)), 0, 0, -128, 127,
                                           hostlib.ptr(wt, C.c_int8), None,
                                           hostlib.Requant(0, 1, hostlib.ptr(dm, C.c_float), None,
                                                         None)))
            m1, m2, fb = requant.add_float_params(0.05, 3, 0.07, -2, 0.1, 1)
            add = self.k(hostlib.AddS8(0, 3, -2, 1, -128, 127, m1, m2, fb, 0, 0, 0, 0, 0, 0, 0))
        else:
            gap = self.k(hostlib.ActF32(-hostlib.F32_MAX, hostlib.F32_MAX))
            wt = self.k(rng.uniform(-1, 1, (n_out, k_in)).astype(np.float32))
            dense = self.k(hostlib.DenseF32(-hostlib.F32_MAX, hostlib.F32_MAX,
                                            hostlib.ptr(wt, C.c_float), None))
            add = self.k(hostlib.ActF32(-hostlib.F32_MAX, hostlib.F32_MAX))
        return gap, dense, add


class Arena:
    """Sequential regions separated by guard bytes (canary pattern)."""

    def __init__(self):
        self.regions, self.pos = [], GUARD

    def alloc(self, nbytes):
        off = self.pos
        self.regions.append((off, nbytes))
        self.pos += nbytes + GUARD
        return off

    def make(self, lib, seed):
        buf = np.zeros(self.pos + 64, np.uint8)  # + outer canary
        lib.msf_canary_fill(buf.ctypes.data, buf.size, seed)
        return buf

    def check_guards(self, lib, buf, seed):
        pat = np.zeros_like(buf)
        lib.msf_canary_fill(pat.ctypes.data, pat.size, seed)
        mask = np.ones(buf.size, bool)
        for off, n in self.regions:
            mask[off:off + n] = False
        bad = np.nonzero((buf != pat) & mask)[0]
        assert bad.size == 0, f"write outside the regions at arena bytes {bad[:10]}"


# -- the test ------------------------------------------------------------------------------------------------

_IR_OP = {"conv": CONV, "dw": DW, "maxpool": MAXPOOL, "avgpool": AVGPOOL}


def chain_net(model) -> Network:
    """The chain as an IR network (geometry only: the schedules and descriptors need no
    weights)."""
    layers = []
    for l in model["layers"]:
        layers.append(window_layer(_IR_OP[l["op"]], l["in_shape"], l["out_shape"][2], l["kernel"],
                                   l["stride"], l["pad"], groups=l["groups"],
                                   count_include_pad=bool(l["cip"])))
        assert layers[-1].out_shape == tuple(l["out_shape"])
    return Network("chain", tuple(model["in_shape"]), layers,
                   dtype="int8" if model["dtype"] == "int8" else "float32").validate()


def run_model(lib, model, fused: bool, shrink: int | None = None):
    """Runs the chain as its segments (fused) or layer by layer; ``shrink``: the byte capacity
    of the first fused block's first ring is cut to that fraction (bounds-check test)."""
    rng = np.random.default_rng(model["seed"])
    layers = model["layers"]
    net = chain_net(model)
    live = Liveness(net, "arena")
    b = Builder(model["dtype"], rng)
    params = [b.params(l) for l in layers]  # same RNG draws for both runs
    gap, dense, add = b.tail_params(5, layers[-1]["out_shape"][2])
    ar = Arena()
    esize = b.esize
    shapes = [layers[0]["in_shape"]] + [l["out_shape"] for l in layers]
    nbytes = [int(np.prod(s)) * esize for s in shapes]
    blocks, expect_macs, rings = [], 0, []
    shrunk, assert_valid = False, True
    t_off = {0: ar.alloc(nbytes[0])}
    segs = model["segs"] if fused else [(i, 1, 1, "unfused") for i in range(len(layers))]
    for start, n, p, mode in segs:
        seg = layers[start:start + n]
        end = start + n
        t_off[end] = ar.alloc(nbytes[end])
        if n == 1:
            lays = [b.layer(seg[0]["op"], params[start], seg[0]["in_shape"], seg[0]["out_shape"])]
            blk = b.block(lays, t_off[start], t_off[end])
            expect_macs += int(np.prod(seg[0]["out_shape"])) * macs_per_output(seg[0])
        else:
            sched = schedule_of(net, live, start, end - 1, mode,
                                LINEBUFFER_TILE if mode == "linebuffer" else p)
            offs = [ar.alloc(r.bytes) for r in sched.rings]  # every buffer in its own region
            desc = block_descriptor(net, sched, offs)
            if shrink is not None and not shrunk:
                off0, nb, rr, cc = desc.layers[1]["buf"]
                desc.layers[1]["buf"] = (off0, nb // shrink, rr, cc)
                shrunk = True
                assert_valid = False
            for r in sched.rings:
                rings.append((r.layer, mode, p, r.bytes))
            if mode != "recompute":
                tile = p if mode == "hcache" else seg[-1]["out_shape"][0]
                for k in range(1, n):
                    assert sched.rings[k - 1].bytes == ring_bytes(seg, k, tile, esize)
                assert sched.macs == fused_macs(seg, tile)
            lays = [b.layer(l["op"], params[start + k], l["in_shape"], l["out_shape"], dl)
                    for k, (l, dl) in enumerate(zip(seg, desc.layers))]
            blk = b.block(lays, t_off[start], t_off[end], desc=desc)
            expect_macs += sched.macs
        assert (lib.msf_block_validate(C.byref(blk)) == 0) == assert_valid
        assert_valid = True
        blocks.append(blk)
    # tail: GAP -> (1,1,C), DENSE -> (1,1,5), ADD(dense, dense) in place
    last = len(layers)
    hl, wl, cl = shapes[-1]
    g_off, d_off = ar.alloc(cl * esize), ar.alloc(5 * esize)
    lg = b.layer("gap", gap, (hl, wl, cl), (1, 1, cl))
    ld = b.layer("dense", dense, (1, 1, cl), (1, 1, 5))
    la = b.layer("add", add, (1, 1, 5), (1, 1, 5))
    blocks += [b.block([lg], t_off[last], g_off), b.block([ld], g_off, d_off),
               b.block([la], d_off, d_off, in2_off=d_off)]
    expect_macs += hl * wl * cl + cl * 5
    arena = ar.make(lib, 99)
    x = rng.integers(0, 256, nbytes[0]).astype(np.uint8) if esize == 1 else \
        rng.uniform(-2, 2, nbytes[0] // 4).astype(np.float32).view(np.uint8)
    arena[t_off[0]:t_off[0] + nbytes[0]] = x
    blk_arr = (hostlib.Block * len(blocks))(*blocks)
    BOUNDS_MESSAGES.clear()
    failures = lib.msf_bounds_failures()
    lib.msf_macs_reset()
    lib.msf_model_run_blocks(blk_arr, len(blocks), arena.ctypes.data)
    if shrink is not None:
        return lib.msf_bounds_failures() - failures, list(BOUNDS_MESSAGES)
    assert BOUNDS_MESSAGES == [] and lib.msf_bounds_failures() == failures
    assert lib.msf_macs_get() == expect_macs
    ar.check_guards(lib, arena, 99)
    assert np.array_equal(arena[t_off[0]:t_off[0] + nbytes[0]], x)  # input untouched
    out = arena[t_off[last]:t_off[last] + nbytes[last]].copy()
    tail = arena[d_off:d_off + 5 * esize].copy()
    return out, tail, rings, b


@settings(max_examples=300, deadline=None)
@given(chains())
def test_fused_equals_unfused(lib, model):
    if not model["layers"]:
        return
    ref, ref_tail, _, _ = run_model(lib, model, fused=False)
    got, got_tail, _, _ = run_model(lib, model, fused=True)
    assert got.tobytes() == ref.tobytes()
    assert got_tail.tobytes() == ref_tail.tobytes()


def _chain_layers(in_shape, specs, act):
    """Layer dicts of a chain from (op, kernel, stride, pad, c_out) tuples (depthwise: groups =
    channels)."""
    layers = []
    h, w, c = in_shape
    for op, k, s, pad, cout in specs:
        ho, wo = out_extent(h, k[0], s[0], pad[0], pad[2]), out_extent(w, k[1], s[1], pad[1], pad[3])
        layers.append(dict(op=op, kernel=k, stride=s, pad=pad, groups=c if op == "dw" else 1,
                           in_shape=(h, w, c), out_shape=(ho, wo, cout), cip=0, act=act))
        h, w, c = ho, wo, cout
    return layers


def test_whole_chain_fused_p1_p2_mac_overhead(lib):
    """A fixed 4-layer chain fused whole with p = 1 and 2: identical bytes, MACs of the formula
    (recomputation overhead > 0 with p = 1, smaller with p = 2)."""
    layers = _chain_layers((16, 16, 3), (("conv", (3, 3), (1, 1), (1, 1, 1, 1), 8),
                                         ("dw", (3, 3), (2, 2), (1, 1, 1, 1), 8),
                                         ("conv", (1, 1), (1, 1), (0, 0, 0, 0), 6),
                                         ("avgpool", (2, 2), (2, 2), (0, 0, 0, 0), 6)), "relu")
    vanilla = sum(int(np.prod(l["out_shape"])) * macs_per_output(l) for l in layers)
    overhead = []
    for dtype in ("int8", "float32"):
        ref = run_model(lib, dict(dtype=dtype, layers=layers, in_shape=(16, 16, 3),
                                  segs=[(i, 1, 1, "unfused") for i in range(4)], seed=5),
                        fused=True)[0]
        for p in (1, 2):
            model = dict(dtype=dtype, layers=layers, in_shape=(16, 16, 3),
                         segs=[(0, 4, p, "hcache")], seed=5)
            got = run_model(lib, model, fused=True)[0]
            assert got.tobytes() == ref.tobytes()
            overhead.append(fused_macs(layers, p) / vanilla)
        for mode, p in (("linebuffer", 1), ("recompute", 1), ("recompute", 3)):
            model = dict(dtype=dtype, layers=layers, in_shape=(16, 16, 3),
                         segs=[(0, 4, p, mode)], seed=5)
            assert run_model(lib, model, fused=True)[0].tobytes() == ref.tobytes()
    assert overhead[0] > overhead[1] > 1.0


@pytest.mark.parametrize("mode", ["hcache", "linebuffer", "recompute"])
def test_too_small_ring_trips_the_bounds_check(lib, mode):
    """A descriptor whose first ring holds half the bytes its ranges need: msf_block_validate
    rejects it and running it reports bounds-check failures (no byte outside the region is
    touched: the checked accesses are redirected)."""
    layers = _chain_layers((12, 10, 3), (("conv", (3, 3), (1, 1), (1, 1, 1, 1), 4),
                                         ("dw", (3, 3), (1, 1), (1, 1, 1, 1), 4),
                                         ("maxpool", (2, 2), (2, 2), (0, 0, 0, 0), 4)), "none")
    model = dict(dtype="int8", layers=layers, in_shape=(12, 10, 3), segs=[(0, 3, 2, mode)],
                 seed=3)
    n_fail, msgs = run_model(lib, model, fused=True, shrink=2)
    # every failure is an access outside its buffer, or the depthwise fast path noticing that
    # such a (redirected) access no longer matches its precomputed tap offsets
    assert n_fail > 0 and any("outside its buffer" in m for m in msgs), set(msgs)
    assert all("outside its buffer" in m or m == "dw fast tap offset" for m in msgs), set(msgs)
    ok = run_model(lib, model, fused=True)   # the schedule's own sizes: clean
    assert ok[0].size == int(np.prod(layers[-1]["out_shape"]))


def test_c_unit_executor_bounds_checked(tmp_path):
    """mcu_runtime/tests_c/test_executor.c built as its Makefile builds it: ASan + UBSan and
    -DMSF_CHECK_BOUNDS (its shrunk-ring check only exists in that build)."""
    import subprocess
    src = runtime_files.SRC_DIR.parent / "tests_c" / "test_executor.c"
    exe = hostlib.build_exe(src, tmp_path / "test_executor",
                            ["-DMSF_CHECK_BOUNDS", "-fsanitize=address,undefined",
                            "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"])
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr
    assert "OK" in r.stdout


@settings(max_examples=60, deadline=None)
@given(model=chains())
def test_every_candidate_descriptor_validates(lib, model):
    """msf_block_validate accepts the code generator's descriptor of every candidate block the
    schedules produce for the chain (all seven modes: H-cache p = 1..3, in place, line buffer,
    recompute patches, single layers) and rejects it once a buffer is one byte short."""
    from msfopt.modes import FUSED_MODES, block_schedules
    if not model["layers"]:
        return
    net = chain_net(model)
    b = Builder(model["dtype"], np.random.default_rng(0))
    params = [b.params(l) for l in model["layers"]]
    for s in block_schedules(net, "arena", modes=FUSED_MODES, tiles=(1, 2, 3), patches=(1, 2, 3)):
        desc = block_descriptor(net, s, [r.offset for r in s.rings])
        seg = model["layers"][s.first:s.last + 1]

        def make(d):
            lays = [b.layer(l["op"], params[s.first + k], l["in_shape"], l["out_shape"], dl)
                    for k, (l, dl) in enumerate(zip(seg, d.layers))]
            return b.block(lays, 0, 0, desc=d if s.mode != "unfused" else None)

        assert lib.msf_block_validate(C.byref(make(desc))) == 0, s.label
        for k, dl in enumerate(desc.layers):
            off, nb, rows, cols = dl["buf"]
            if nb:
                dl["buf"] = (off, nb - 1, rows, cols)
                assert lib.msf_block_validate(C.byref(make(desc))) < 0, (s.label, k)
                dl["buf"] = (off, nb, rows, cols)


def _gap_tail_run(lib, dtype, cout, p, align, fused):
    """conv -> dw -> maxpool -> streaming GAP, fused as one hcache-gap block (tile height p)
    whose GAP buffer starts ``align`` bytes past a 4-byte boundary, or run layer by layer."""
    from msfopt.ir import GAP, Layer
    layers, (h, w, c) = [], (11, 9, 3)
    for op, k, s, pad, co in (("conv", (3, 3), (1, 1), (1, 1, 1, 1), cout),
                              ("dw", (3, 3), (2, 2), (1, 1, 1, 1), cout),
                              ("maxpool", (2, 2), (1, 1), (0, 0, 1, 1), cout)):
        ho, wo = out_extent(h, k[0], s[0], pad[0], pad[2]), out_extent(w, k[1], s[1], pad[1], pad[3])
        layers.append(dict(op=op, kernel=k, stride=s, pad=pad, groups=co if op == "dw" else 1,
                           in_shape=(h, w, c), out_shape=(ho, wo, co), cip=0, act="none"))
        h, w, c = ho, wo, co
    model = dict(dtype=dtype, layers=layers, in_shape=(11, 9, 3), seed=17)
    chain = chain_net(model)
    net = Network("gaptail", chain.input_shape,
                  chain.layers + [Layer(op=GAP, in_shape=(h, w, c), out_shape=(1, 1, c))],
                  dtype=chain.dtype).validate()
    rng = np.random.default_rng(17)
    b = Builder(dtype, rng)
    params = [b.params(l) for l in layers]
    gap = b.tail_params(5, c)[0]
    ar = Arena()
    esize = b.esize
    in_bytes = 11 * 9 * 3 * esize
    t_in = ar.alloc(in_bytes)
    out_off = ar.alloc(c * esize)
    x = rng.integers(0, 256, in_bytes).astype(np.uint8) if esize == 1 else \
        rng.uniform(-2, 2, in_bytes // 4).astype(np.float32).view(np.uint8)
    if fused:
        s = schedule_of(net, Liveness(net, "arena"), 0, 3, "hcache-gap", p)
        offs = []
        for r in s.rings:
            if r.layer == 3:
                ar.pos += (align - ar.pos) % 4
            offs.append(ar.alloc(r.bytes))
        assert offs[-1] % 4 == align
        desc = block_descriptor(net, s, offs)
        lays = [b.layer(l["op"], params[k], l["in_shape"], l["out_shape"], dl)
                for k, (l, dl) in enumerate(zip(layers, desc.layers[:3]))]
        lays.append(b.layer("gap", gap, (h, w, c), (1, 1, c), desc.layers[3]))
        blocks = [b.block(lays, t_in, out_off, desc=desc)]
        assert lib.msf_block_validate(C.byref(blocks[0])) == 0
        macs = s.macs
    else:
        offs = [t_in] + [ar.alloc(int(np.prod(l["out_shape"])) * esize) for l in layers]
        blocks = [b.block([b.layer(l["op"], params[k], l["in_shape"], l["out_shape"])],
                          offs[k], offs[k + 1]) for k, l in enumerate(layers)]
        blocks.append(b.block([b.layer("gap", gap, (h, w, c), (1, 1, c))], offs[-1], out_off))
        macs = sum(int(np.prod(l["out_shape"])) * macs_per_output(l) for l in layers) + h * w * c
    arena = ar.make(lib, 7)
    assert arena.ctypes.data % 16 == 0
    arena[t_in:t_in + in_bytes] = x
    blk_arr = (hostlib.Block * len(blocks))(*blocks)
    BOUNDS_MESSAGES.clear()
    lib.msf_macs_reset()
    lib.msf_model_run_blocks(blk_arr, len(blocks), arena.ctypes.data)
    assert BOUNDS_MESSAGES == []
    assert lib.msf_macs_get() == macs
    ar.check_guards(lib, arena, 7)
    return arena[out_off:out_off + c * esize].copy()


@pytest.mark.parametrize("cout", [1, 4])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dtype,align", [("int8", 0), ("int8", 1), ("int8", 2), ("int8", 3),
                                         ("float32", 0)])
def test_streaming_gap_tail_at_any_alignment(lib, dtype, align, p, cout):
    """The int8 GAP tail's int32 sums work wherever the layout puts the block's scratch (the
    arena of an int8 network is byte-granular): same bytes as the unfused GAP, same MACs as
    the schedule, no bounds failure, nothing written outside the buffers."""
    ref = _gap_tail_run(lib, dtype, cout, p, align, fused=False)
    got = _gap_tail_run(lib, dtype, cout, p, align, fused=True)
    if dtype == "int8":
        assert got.tobytes() == ref.tobytes()
    else:   # float sums are added in another order (column by column)
        np.testing.assert_allclose(got.view(np.float32), ref.view(np.float32), rtol=1e-5,
                                   atol=1e-6)
