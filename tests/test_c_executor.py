"""The C fused-block executor (msf_run_block) against unfused execution.

Random small chains of window layers (conv / grouped conv / dw / maxpool / avgpool, int8 and
float32) are split at random into fused blocks (tile height p = 1, 2 or 3) and single-layer
blocks, followed by unfused GAP, DENSE and ADD blocks.  The descriptors are built by hand here,
exactly as the Python code generator must build them.  Checked:
* fused output == unfused output, byte for byte;
* MACs counted by the C kernels (MSF_COUNT_MACS) == the closed-form count of the cost model;
* ring sizes == msf_block_ring_bytes, and nothing is written outside the arena or into the
  guard bytes placed around every tensor and ring (canaries).
"""
from __future__ import annotations

import ctypes as C

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from msfopt.mcu_runtime import cbuild

GUARD = 16


@pytest.fixture(scope="module")
def lib():
    return cbuild.load(cbuild.build_shared(["-fsanitize=undefined", "-fno-sanitize-recover=all"]))


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
    # partition into segments: (start, length, tile_h)
    segs, i = [], 0
    while i < len(layers):
        n = draw(st.integers(1, len(layers) - i))
        segs.append((i, n, draw(st.integers(1, 3))))
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
        return (-cbuild.F32_MAX, cbuild.F32_MAX) if act == "none" else (0.0, cbuild.F32_MAX)

    def params(self, l):
        rng, op = self.rng, l["op"]
        win = cbuild.window(l["kernel"], l["stride"], l["pad"])
        lo, hi = self.act(l["act"])
        cin, cout = l["in_shape"][2], l["out_shape"][2]
        if op in ("conv", "dw"):
            kh, kw = l["kernel"]
            wshape = (cout, kh, kw, cin // l["groups"])
            if self.s8:
                wt = self.k(rng.integers(-127, 128, wshape).astype(np.int8))
                bias = self.k(rng.integers(-500, 500, cout).astype(np.int32))
                fm = self.k((rng.uniform(0.3, 2.0, cout) / (wt[0].size * 40)).astype(np.float32))
                rq = cbuild.Requant(cbuild.MSF_RQ_FLOAT, 1, cbuild.ptr(fm, C.c_float), None, None)
                return self.k(cbuild.ConvS8(win, l["groups"], int(rng.integers(-128, 128)), 0,
                                            int(rng.integers(-128, 128)), lo, hi,
                                            cbuild.ptr(wt, C.c_int8), cbuild.ptr(bias, C.c_int32),
                                            rq))
            wt = self.k(rng.uniform(-1, 1, wshape).astype(np.float32))
            bias = self.k(rng.uniform(-1, 1, cout).astype(np.float32))
            return self.k(cbuild.ConvF32(win, l["groups"], lo, hi, cbuild.ptr(wt, C.c_float),
                                         cbuild.ptr(bias, C.c_float)))
        if self.s8:
            zp = int(rng.integers(-128, 128))
            return self.k(cbuild.PoolS8(win, l["cip"], cbuild.MSF_RQ_FLOAT,
                                        float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.01, 0.1)),
                                        zp, int(rng.integers(-128, 128)), lo, hi))
        return self.k(cbuild.PoolF32(win, l["cip"], lo, hi))

    def layer(self, op, params, in_shape, out_shape, ring_off=0):
        return cbuild.Layer(cbuild.OP_CODES[op], C.cast(C.pointer(params), C.c_void_p),
                            *in_shape, *out_shape, ring_off)

    def block(self, layers, tile_h, in_off, out_off, in2_off=0):
        arr = self.k((cbuild.Layer * len(layers))(*layers))
        return cbuild.Block(cbuild.MSF_DT_S8 if self.s8 else cbuild.MSF_DT_F32, tile_h,
                            len(layers), C.cast(arr, C.POINTER(cbuild.Layer)), in_off, in2_off,
                            out_off)

    def tail_params(self, n_out, k_in):
        """GAP, DENSE and ADD params."""
        rng = self.rng
        if self.s8:
            fm = self.k(np.array([rng.uniform(0.01, 0.1)], np.float32))
            gap = self.k(cbuild.GapS8(int(rng.integers(-128, 128)), int(rng.integers(-128, 128)),
                                      -128, 127, cbuild.Requant(0, 0, cbuild.ptr(fm, C.c_float),
                                                                None, None)))
            wt = self.k(rng.integers(-127, 128, (n_out, k_in)).astype(np.int8))
            dm = self.k(np.full(n_out, 1.0 / (40 * k_in), np.float32))
            dense = self.k(cbuild.DenseS8(int(rng.integers(-128, 128)), 0, 0, -128, 127,
                                          cbuild.ptr(wt, C.c_int8), None,
                                          cbuild.Requant(0, 1, cbuild.ptr(dm, C.c_float), None,
                                                         None)))
            m1, m2, fb = cbuild.add_float_params(0.05, 3, 0.07, -2, 0.1, 1)
            add = self.k(cbuild.AddS8(0, 3, -2, 1, -128, 127, m1, m2, fb, 0, 0, 0, 0, 0, 0, 0))
        else:
            gap = self.k(cbuild.ActF32(-cbuild.F32_MAX, cbuild.F32_MAX))
            wt = self.k(rng.uniform(-1, 1, (n_out, k_in)).astype(np.float32))
            dense = self.k(cbuild.DenseF32(-cbuild.F32_MAX, cbuild.F32_MAX,
                                           cbuild.ptr(wt, C.c_float), None))
            add = self.k(cbuild.ActF32(-cbuild.F32_MAX, cbuild.F32_MAX))
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

def run_model(lib, model, fused: bool):
    rng = np.random.default_rng(model["seed"])
    layers = model["layers"]
    b = Builder(model["dtype"], rng)
    params = [b.params(l) for l in layers]  # same RNG draws for both runs
    gap, dense, add = b.tail_params(5, layers[-1]["out_shape"][2])
    ar = Arena()
    esize = b.esize
    shapes = [layers[0]["in_shape"]] + [l["out_shape"] for l in layers]
    nbytes = [int(np.prod(s)) * esize for s in shapes]
    blocks, expect_macs, rings = [], 0, []
    t_off = {0: ar.alloc(nbytes[0])}
    segs = model["segs"] if fused else [(i, 1, 1) for i in range(len(layers))]
    for start, n, p in segs:
        seg = layers[start:start + n]
        end = start + n
        t_off[end] = ar.alloc(nbytes[end])
        lays = []
        for k, l in enumerate(seg):
            ring_off = 0
            if n > 1 and k > 0:
                sz = ring_bytes(seg, k, p, esize)
                ring_off = ar.alloc(sz)
                rings.append((start + k, p, sz))
            lays.append(b.layer(l["op"], params[start + k], l["in_shape"], l["out_shape"],
                                ring_off))
        blk = b.block(lays, p, t_off[start], t_off[end])
        assert lib.msf_block_validate(C.byref(blk)) == 0
        for k in range(1, n):
            assert lib.msf_block_ring_bytes(C.byref(blk), k) == ring_bytes(seg, k, p, esize)
        blocks.append(blk)
        expect_macs += fused_macs(seg, p) if n > 1 else \
            int(np.prod(seg[0]["out_shape"])) * macs_per_output(seg[0])
    # tail: GAP -> (1,1,C), DENSE -> (1,1,5), ADD(dense, dense) in place
    last = len(layers)
    hl, wl, cl = shapes[-1]
    g_off, d_off = ar.alloc(cl * esize), ar.alloc(5 * esize)
    lg = b.layer("gap", gap, (hl, wl, cl), (1, 1, cl))
    ld = b.layer("dense", dense, (1, 1, cl), (1, 1, 5))
    la = b.layer("add", add, (1, 1, 5), (1, 1, 5))
    blocks += [b.block([lg], 0, t_off[last], g_off), b.block([ld], 0, g_off, d_off),
               b.block([la], 0, d_off, d_off, in2_off=d_off)]
    expect_macs += hl * wl * cl + cl * 5
    arena = ar.make(lib, 99)
    x = rng.integers(0, 256, nbytes[0]).astype(np.uint8) if esize == 1 else \
        rng.uniform(-2, 2, nbytes[0] // 4).astype(np.float32).view(np.uint8)
    arena[t_off[0]:t_off[0] + nbytes[0]] = x
    blk_arr = (cbuild.Block * len(blocks))(*blocks)
    lib.msf_macs_reset()
    lib.msf_model_run_blocks(blk_arr, len(blocks), arena.ctypes.data)
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


def test_whole_chain_fused_p1_p2_mac_overhead(lib):
    """A fixed 4-layer chain fused whole with p = 1 and 2: identical bytes, MACs of the formula
    (recomputation overhead > 0 with p = 1, smaller with p = 2)."""
    layers = []
    h, w, c = 16, 16, 3
    for op, k, s, pad, cout in (("conv", (3, 3), (1, 1), (1, 1, 1, 1), 8),
                                ("dw", (3, 3), (2, 2), (1, 1, 1, 1), 8),
                                ("conv", (1, 1), (1, 1), (0, 0, 0, 0), 6),
                                ("avgpool", (2, 2), (2, 2), (0, 0, 0, 0), 6)):
        ho, wo = out_extent(h, k[0], s[0], pad[0], pad[2]), out_extent(w, k[1], s[1], pad[1], pad[3])
        layers.append(dict(op=op, kernel=k, stride=s, pad=pad, groups=8 if op == "dw" else 1,
                           in_shape=(h, w, c), out_shape=(ho, wo, cout), cip=0, act="relu"))
        h, w, c = ho, wo, cout
    vanilla = sum(int(np.prod(l["out_shape"])) * macs_per_output(l) for l in layers)
    overhead = []
    for dtype in ("int8", "float32"):
        ref = run_model(lib, dict(dtype=dtype, layers=layers, segs=[(i, 1, 1) for i in range(4)],
                                  seed=5), fused=True)[0]
        for p in (1, 2):
            model = dict(dtype=dtype, layers=layers, segs=[(0, 4, p)], seed=5)
            got = run_model(lib, model, fused=True)[0]
            assert got.tobytes() == ref.tobytes()
            overhead.append(fused_macs(layers, p) / vanilla)
    assert overhead[0] > overhead[1] > 1.0
