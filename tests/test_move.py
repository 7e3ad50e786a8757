"""Channel data-movement kernels of the C runtime (mcu_runtime/src/msf_move.{h,c}), int8 and
float32, against onnxruntime one-op models: Concat, Split, Slice, Reshape -> Transpose -> Reshape
(ShuffleNet channel shuffle) and Pad (constant, channel axis), on random shapes, through full
views, sub-regions and ring-buffer views (y0 > 0, xcap < W).  Oracle: onnxruntime (CPU EP,
DEFAULT graph optimisations and ORT_DISABLE_ALL); results must be identical bits."""
from __future__ import annotations

import ctypes as C

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from msfopt.mcu_runtime import hostlib


# -- ctypes mirror of msf_move.h -------------------------------------------------------------------

class MoveParams(C.Structure):
    _fields_ = [("esize", C.c_int32), ("c_off", C.c_int32), ("groups", C.c_int32),
                ("pad_bits", C.c_uint32), ("x_off", C.c_int32)]


_REGION = [C.c_int32] * 4
FUNCS = ("msf_copy_to_channels", "msf_copy_from_channels", "msf_channel_shuffle",
         "msf_pad_channels")
DTYPES = (np.int8, np.float32)


def _load(flags):
    lib = hostlib.load(hostlib.build_shared(flags))
    for name in FUNCS:
        fn = getattr(lib, name)
        fn.argtypes = [C.POINTER(MoveParams), C.POINTER(hostlib.View), C.POINTER(hostlib.View),
                       *_REGION]
        fn.restype = None
    msgs = []
    lib._hook = hostlib.BOUNDS_HOOK(lambda m: msgs.append(m.decode()))
    lib.msf_set_bounds_hook(lib._hook)
    lib._msgs = msgs
    return lib


@pytest.fixture(scope="module")
def lib():
    """The runtime with UBSan and -DMSF_CHECK_BOUNDS: every view access is checked against the
    view's cap (ring views are sized exactly); a failure fails the test (no_bounds_failures)."""
    return _load(["-fsanitize=undefined", "-fno-sanitize-recover=all", "-DMSF_CHECK_BOUNDS"])


@pytest.fixture(scope="module")
def lib_checked():
    """A second build (-DMSF_CHECK_BOUNDS without UBSan: its own library file, its own failure
    counter) for the test that provokes bounds failures on purpose."""
    return _load(["-DMSF_CHECK_BOUNDS"])


def esize(dt) -> int:
    return np.dtype(dt).itemsize


def pad_bits(value, dt) -> int:
    if dt == np.int8:
        return int(np.int8(value).view(np.uint8))
    return int(np.float32(value).view(np.uint32))


# -- onnxruntime -----------------------------------------------------------------------------------

def _ort(nodes, inputs: dict, outputs: list[str], inits: list, opt: bool):
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    dt = helper.np_dtype_to_tensor_dtype(next(iter(inputs.values())).dtype)
    vout = [helper.make_tensor_value_info(o, dt, None) for o in outputs]
    g = helper.make_graph(nodes, "g", vin, vout, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not opt:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, inputs)


def _nchw(x):
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _hwc(y):
    return np.ascontiguousarray(y[0].transpose(1, 2, 0))


def _t(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def rand_tensor(rng, h, w, c, dt):
    if dt == np.int8:
        return rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    x = (rng.standard_normal((h, w, c)) * 10).astype(np.float32)
    x.reshape(-1)[:: 7] = np.float32(-0.0)  # sign bits must survive the move
    return x


def garbage(dt):
    return np.int8(-77) if dt == np.int8 else np.float32(np.nan)


# -- view helpers ----------------------------------------------------------------------------------

def ring_run(call, x: np.ndarray, out_c: int, rng, fill_out=None):
    """A same-pixel kernel band by band through ring views: output rows [r0, r1) and chunks of k
    columns; the input ring (y0 = r0, xcap = kin >= k) holds only those pixels (other slots are
    garbage), the output ring (y0 = r0, xcap = kout) starts as fill_out(rows) or garbage.
    call(in_view, out_view, oy0, oy1, ox0, ox1); returns the assembled full output."""
    h, w, c = x.shape
    y = np.empty((h, w, out_c), x.dtype)
    r0 = 0
    while r0 < h:
        r1 = min(h, r0 + int(rng.integers(1, 4)))
        k = int(rng.integers(1, w + 1))
        kin = int(rng.integers(k, w + 1))
        kout = int(rng.integers(k, w + 1))
        rows = np.arange(r0, r1) - r0
        for c0 in range(0, w, k):
            c1 = min(w, c0 + k)
            rin = np.full(((r1 - r0) * kin, c), garbage(x.dtype), x.dtype)
            rout = np.full(((r1 - r0) * kout, out_c), garbage(x.dtype), x.dtype)
            for xx in range(c0, c1):
                rin[rows * kin + xx % kin] = x[r0:r1, xx]
                if fill_out is not None:
                    rout[rows * kout + xx % kout] = fill_out[r0:r1, xx]
            vin = hostlib.View(rin.ctypes.data, h, w, c, r0, kin, rin.size)
            vout = hostlib.View(rout.ctypes.data, h, w, out_c, r0, kout, rout.size)
            call(vin, vout, r0, r1, c0, c1)
            for xx in range(c0, c1):
                y[r0:r1, xx] = rout[rows * kout + xx % kout]
        r0 = r1
    return y


def split_regions(h, w, rng):
    """A random tiling of the h x w output into rectangles."""
    regs, r0 = [], 0
    while r0 < h:
        r1 = min(h, r0 + int(rng.integers(1, 4)))
        c0 = 0
        while c0 < w:
            c1 = min(w, c0 + int(rng.integers(1, 4)))
            regs.append((r0, r1, c0, c1))
            c0 = c1
        r0 = r1
    return regs


def run_all_ways(lib, fname, p, x, out_c, rng, out_init=None):
    """(full-view result, region-by-region result, ring-view result) of one kernel call."""
    fn = getattr(lib, fname)
    h, w, _ = x.shape
    res = []
    for mode in ("full", "regions"):
        y = (np.full((h, w, out_c), garbage(x.dtype), x.dtype) if out_init is None
             else out_init.copy())
        vi, vo = hostlib.full_view(x), hostlib.full_view(y)
        for r in ([(0, h, 0, w)] if mode == "full" else split_regions(h, w, rng)):
            fn(C.byref(p), C.byref(vi), C.byref(vo), *r)
        res.append(y)
    res.append(ring_run(lambda vi, vo, *r: fn(C.byref(p), C.byref(vi), C.byref(vo), *r),
                        x, out_c, rng, fill_out=out_init))
    return res


def assert_same_bits(got, ref):
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(ref).view(np.uint8))


def rand_hw(rng):
    return int(rng.integers(1, 7)), int(rng.integers(1, 8))


# -- tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_concat(lib, dt, seed):
    rng = np.random.default_rng(seed)
    h, w = rand_hw(rng)
    parts = [rand_tensor(rng, h, w, int(rng.integers(1, 7)), dt)
             for _ in range(int(rng.integers(1, 5)))]
    names = [f"x{i}" for i in range(len(parts))]
    nodes = [helper.make_node("Concat", names, ["y"], axis=1)]
    inputs = {n: _nchw(x) for n, x in zip(names, parts)}
    cy = sum(x.shape[2] for x in parts)
    for opt in (True, False):
        ref = _hwc(_ort(nodes, inputs, ["y"], [], opt)[0])
        ys = []
        for mode in range(3):  # full views, regions, rings: all parts into the same output
            y = np.full((h, w, cy), garbage(dt), dt)
            if mode < 2:
                off = 0
                for x in parts:
                    p = MoveParams(esize(dt), off, 0, 0)
                    regs = [(0, h, 0, w)] if mode == 0 else split_regions(h, w, rng)
                    for r in regs:
                        lib.msf_copy_to_channels(C.byref(p), C.byref(hostlib.full_view(x)),
                                                 C.byref(hostlib.full_view(y)), *r)
                    off += x.shape[2]
            else:
                cat = np.concatenate(parts, axis=2)  # transport only: split again per ring
                sizes = [x.shape[2] for x in parts]

                def call(vi, vo, *r):
                    ring = np.ctypeslib.as_array(C.cast(vi.data, C.POINTER(C.c_int8)),
                                                 (vi.cap * esize(dt),)).view(dt)
                    ring = ring.reshape(-1, cy)
                    off = 0
                    for s in sizes:
                        part = np.ascontiguousarray(ring[:, off:off + s])
                        v = hostlib.View(part.ctypes.data, h, w, s, vi.y0, vi.xcap, part.size)
                        p = MoveParams(esize(dt), off, 0, 0)
                        lib.msf_copy_to_channels(C.byref(p), C.byref(v), C.byref(vo), *r)
                        off += s
                y = ring_run(call, cat, cy, rng)
            ys.append(y)
        for y in ys:
            assert_same_bits(y, ref)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_split_and_slice(lib, dt, seed):
    rng = np.random.default_rng(100 + seed)
    h, w = rand_hw(rng)
    n = int(rng.integers(1, 5))
    sizes = [int(v) for v in rng.integers(1, 6, n)]
    cx = sum(sizes)
    x = rand_tensor(rng, h, w, cx, dt)
    outs = [f"y{i}" for i in range(n)]
    split = [helper.make_node("Split", ["x", "s"], outs, axis=1)]
    s0 = int(rng.integers(0, cx))
    s1 = int(rng.integers(s0 + 1, cx + 1))
    slice_ = [helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])]
    sl_inits = [_t("st", np.array([s0], np.int64)), _t("en", np.array([s1], np.int64)),
                _t("ax", np.array([1], np.int64))]
    for opt in (True, False):
        refs = [_hwc(r) for r in _ort(split, {"x": _nchw(x)}, outs,
                                      [_t("s", np.array(sizes, np.int64))], opt)]
        off = 0
        for s, ref in zip(sizes, refs):
            p = MoveParams(esize(dt), off, 0, 0)
            for y in run_all_ways(lib, "msf_copy_from_channels", p, x, s, rng):
                assert_same_bits(y, ref)
            off += s
        ref = _hwc(_ort(slice_, {"x": _nchw(x)}, ["y"], sl_inits, opt)[0])
        p = MoveParams(esize(dt), s0, 0, 0)
        for y in run_all_ways(lib, "msf_copy_from_channels", p, x, s1 - s0, rng):
            assert_same_bits(y, ref)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_channel_shuffle(lib, dt, seed):
    rng = np.random.default_rng(200 + seed)
    h, w = rand_hw(rng)
    g = int(rng.integers(1, 5))
    cg = int(rng.integers(1, 6))
    c = g * cg
    x = rand_tensor(rng, h, w, c, dt)
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "s2"], ["y"])]
    inits = [_t("s1", np.array([1, g, cg, h, w], np.int64)),
             _t("s2", np.array([1, c, h, w], np.int64))]
    p = MoveParams(esize(dt), 0, g, 0)
    for opt in (True, False):
        ref = _hwc(_ort(nodes, {"x": _nchw(x)}, ["y"], inits, opt)[0])
        for y in run_all_ways(lib, "msf_channel_shuffle", p, x, c, rng):
            assert_same_bits(y, ref)
    # the documented formula, and C / g groups invert it
    idx = np.array([(cc % g) * cg + cc // g for cc in range(c)])
    assert_same_bits(ref, np.ascontiguousarray(x[:, :, idx]))
    back = run_all_ways(lib, "msf_channel_shuffle", MoveParams(esize(dt), 0, cg, 0), ref, c, rng)
    assert_same_bits(back[0], x)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_pad_channels(lib, dt, seed):
    rng = np.random.default_rng(300 + seed)
    h, w = rand_hw(rng)
    c = int(rng.integers(1, 6))
    before, after = int(rng.integers(0, 5)), int(rng.integers(0, 5))
    x = rand_tensor(rng, h, w, c, dt)
    value = (np.int8(rng.integers(-128, 128)) if dt == np.int8
             else np.float32(rng.choice([0.0, -0.0, 1.5, -3.25, np.inf])))
    nodes = [helper.make_node("Pad", ["x", "pads", "v"], ["y"], mode="constant")]
    inits = [_t("pads", np.array([0, before, 0, 0, 0, after, 0, 0], np.int64)),
             _t("v", np.array(value, dt))]
    p = MoveParams(esize(dt), before, 0, pad_bits(value, dt))
    for opt in (True, False):
        ref = _hwc(_ort(nodes, {"x": _nchw(x)}, ["y"], inits, opt)[0])
        for y in run_all_ways(lib, "msf_pad_channels", p, x, before + c + after, rng):
            assert_same_bits(y, ref)


def test_copy_to_channels_leaves_other_channels(lib):
    """Only channels [c_off, c_off + in.C) of the region are written, in every view layout."""
    rng = np.random.default_rng(5)
    for dt in DTYPES:
        x = rand_tensor(rng, 4, 6, 3, dt)
        base = rand_tensor(rng, 4, 6, 8, dt)
        p = MoveParams(esize(dt), 2, 0, 0)
        want = base.copy()
        want[:, :, 2:5] = x
        for y in run_all_ways(lib, "msf_copy_to_channels", p, x, 8, rng, out_init=base):
            assert_same_bits(y, want)


def test_bad_channel_ranges_are_reported(lib_checked):
    """-DMSF_CHECK_BOUNDS: channel ranges outside the tensors and groups not dividing C are
    reported and nothing is written."""
    lib = lib_checked
    x = np.arange(2 * 2 * 4, dtype=np.int8).reshape(2, 2, 4)
    y = np.zeros((2, 2, 5), np.int8)
    cases = [("msf_copy_to_channels", MoveParams(1, 2, 0, 0), x, y),      # 2 + 4 > 5
             ("msf_copy_to_channels", MoveParams(1, -1, 0, 0), x, y),
             ("msf_copy_from_channels", MoveParams(1, 1, 0, 0), x, y),    # 1 + 5 > 4
             ("msf_pad_channels", MoveParams(1, 2, 0, 0), x, y),
             ("msf_channel_shuffle", MoveParams(1, 0, 3, 0), x, np.zeros_like(x))]
    for name, p, a, b in cases:
        del lib._msgs[:]
        before = lib.msf_bounds_failures()
        b0 = b.copy()
        getattr(lib, name)(C.byref(p), C.byref(hostlib.full_view(a)),
                           C.byref(hostlib.full_view(b)), 0, 2, 0, 2)
        assert lib.msf_bounds_failures() == before + 1 and lib._msgs, name
        assert_same_bits(b, b0)
    # a good call reports nothing
    before = lib.msf_bounds_failures()
    lib.msf_copy_to_channels(C.byref(MoveParams(1, 1, 0, 0)), C.byref(hostlib.full_view(x)),
                             C.byref(hostlib.full_view(y)), 0, 2, 0, 2)
    assert lib.msf_bounds_failures() == before
