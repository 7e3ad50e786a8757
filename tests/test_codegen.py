"""Generated C vs onnxruntime (and vs the unfused generation of the same model), arena size
equal to the plan's prediction, canary-guarded arena, ASan/UBSan host builds.

References come from :mod:`msfopt.oracles`: ONNX models written here are saved and imported from
the file, and compared with onnxruntime on that ORIGINAL file; zoo models have no original file,
so onnxruntime on msfopt's re-export is their only reference (asserted: ``kind == "re-export"``).
"""
import re

import numpy as np
import onnx
import pytest
from conftest import examples
from hypothesis import given, settings, strategies as st

from msfopt import oracles

from msfopt.dag import build_dag
from msfopt.importers.onnx_import import load_onnx
from msfopt.export_onnx import to_onnx
from msfopt.ir import ADD, CONV, DENSE, DW, GAP, MAXPOOL, Layer, Network, window_layer
from msfopt.models import network_with_weights
from msfopt.solver import solve
from msfopt.weights import init_weights
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host

from random_nets import chains, draw_path
from msfopt.layout import aligned_arena, plan_layout

ZOO = ["mbv2-w0.35", "mcunetv2-vww5", "mcunet-320k"]


def header_arena(gen) -> int:
    m = re.search(r"#define MSF_ARENA_BYTES (\d+)u", (gen.out_dir / "msf_model.h").read_text())
    return int(m.group(1))


def run_plan(net, blocks, tmp_path, tag, io, x, sanitize=False):
    gen = generate(net, blocks, tmp_path / tag, io=io)
    exe = build_host(gen, sanitize=sanitize, guard=32)
    return gen, run_host(gen, exe, x)


def zoo_reference(net, x):
    """A zoo model has no original file: the re-export is its only reference, labelled so."""
    ref = oracles.reference(net, [x])
    assert ref.kind == "re-export" and ref.oracle == oracles.ORT_REEXPORT
    return ref.y


def original_file_net(built, path, mode):
    """Export ``built`` to an ONNX file: that file is the original, the IR under test is what
    the importer reads from it."""
    onnx.save(to_onnx(built, mode=mode), str(path))
    net = load_onnx(str(path))
    assert net.source == str(path)
    return net


def original_reference(net, x):
    ref = oracles.reference(net, [x])
    assert ref.kind == "external" and ref.oracle == oracles.ORT
    return ref.y


def rand_input(net, seed=1):
    rng = np.random.default_rng(seed)
    if net.dtype == "float32":
        return rng.standard_normal(net.input_shape).astype(np.float32)
    return rng.integers(-128, 128, size=net.input_shape, dtype=np.int8)


def zoo_plans(net, io):
    """The unfused plan, the minimum-RAM plan, the zero-recompute plan, a mid-budget latency plan
    and a p = 2 H-cache plan."""
    plans = {}
    dag = build_dag(net, io=io)
    plans["unfused"] = [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e])
                        for e in dag.vanilla_path()]
    p_min = solve(net, objective="ram", io=io, check=False, dag=dag)
    plans["min-ram"] = p_min
    plans["zero-recompute"] = solve(net, objective="ram", max_overhead=1.0, io=io, check=False,
                                    dag=dag)
    mid = (p_min.peak_ram_bytes + plans["zero-recompute"].peak_ram_bytes) // 2
    plans["latency-mid"] = solve(net, objective="latency", ram=mid, io=io, check=False, dag=dag)
    plans["hcache-p2"] = solve(net, objective="ram", io=io, check=False, modes=("hcache",),
                               tiles=(2,))
    plans["linebuffer"] = solve(net, objective="ram", io=io, check=False, modes=("linebuffer",))
    plans["recompute"] = solve(net, objective="ram", io=io, check=False, modes=("recompute",),
                               patches=(8,))
    plans["inplace"] = solve(net, objective="ram", io=io, check=False, modes=("inplace",))
    plans["hcache-ip"] = solve(net, objective="ram", io=io, check=False, modes=("hcache-ip",))
    assert any(b.mode == "hcache-ip" for b in plans["hcache-ip"].blocks)
    assert any(b.mode == "inplace" for b in plans["inplace"].blocks) or io == "external"
    return plans


@pytest.mark.parametrize("model", ZOO)
def test_zoo_int8_bit_exact_with_onnxruntime(model, tmp_path):
    io = "external" if model != "mcunetv2-vww5" else "arena"
    net = network_with_weights(model, "int8", seed=0)
    x = rand_input(net)
    ref = zoo_reference(net, x)
    outputs = {}
    for tag, plan in zoo_plans(net, io).items():
        blocks = plan if isinstance(plan, list) else plan.blocks
        gen, y = run_plan(net, blocks, tmp_path, tag, io, x)
        assert np.array_equal(y, ref), f"{model} {tag}: {np.sum(y != ref)} bytes differ"
        if not isinstance(plan, list):
            assert header_arena(gen) == plan.arena_bytes == gen.arena_bytes
            assert plan.arena_bytes == aligned_arena(plan.peak_ram_bytes)  # chains pack exactly
        outputs[tag] = y
    assert all(np.array_equal(outputs["unfused"], y) for y in outputs.values())


@pytest.mark.parametrize("model", ZOO)
def test_zoo_float32_close_to_onnxruntime(model, tmp_path):
    net = network_with_weights(model, "float32", seed=0)
    x = rand_input(net)
    ref = zoo_reference(net, x)
    plan = solve(net, objective="ram", io="external", check=False)
    gen, y = run_plan(net, plan.blocks, tmp_path, "f32", "external", x)
    assert header_arena(gen) == plan.arena_bytes
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))


@pytest.mark.parametrize("model", ["mbv2-w0.35", "mcunetv2-vww5"])
def test_zoo_sanitized_build_runs_clean(model, tmp_path):
    net = network_with_weights(model, "int8", seed=0)
    x = rand_input(net, 3)
    plan = solve(net, objective="ram", io="arena", check=False)
    gen, y = run_plan(net, plan.blocks, tmp_path, "asan", "arena", x, sanitize=True)
    assert np.array_equal(y, zoo_reference(net, x))


# -- ONNX models built here: residual adds, GAP + dense tail, asymmetric padding --------------

def _residual_tail_net(dtype):
    l0 = window_layer(CONV, (20, 18, 3), 8, 3, 2, (1, 0, 1, 1), act="relu")      # asymmetric pad
    l1 = window_layer(CONV, l0.out_shape, 16, 1, 1, 0, act="relu6")
    l2 = window_layer(DW, l1.out_shape, 16, (3, 5), 1, (1, 2, 1, 2), act="relu6")
    l3 = window_layer(CONV, l2.out_shape, 8, 1, 1, 0)
    l4 = Layer(op=ADD, in_shape=l3.out_shape, out_shape=l3.out_shape, srcs=(4, 1))  # MBv2 skip
    l5 = window_layer(MAXPOOL, l4.out_shape, None, 2, 2, (0, 0, 1, 1))
    l6 = window_layer(CONV, l5.out_shape, 12, 3, 1, 1, act="relu")
    l7 = Layer(op=GAP, in_shape=l6.out_shape, out_shape=(1, 1, 12))
    l8 = Layer(op=DENSE, in_shape=(1, 1, 12), out_shape=(1, 1, 10))
    net = Network("restail", (20, 18, 3), [l0, l1, l2, l3, l4, l5, l6, l7, l8]).validate()
    return init_weights(net, seed=4, dtype=dtype)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("io", ["arena", "external"])
def test_onnx_residual_gap_dense_model(dtype, io, tmp_path):
    built = _residual_tail_net(dtype)
    net = original_file_net(built, tmp_path / "restail.onnx",
                            "float" if dtype == "float32" else "int8")
    assert [l.op for l in net.layers] == [l.op for l in built.layers]
    x = rand_input(net, 7)
    ref = original_reference(net, x)
    dag = build_dag(net, io=io)
    for objective, kw in (("ram", {}), ("ram", {"max_overhead": 1.0}), ("latency", {})):
        plan = solve(net, objective=objective, io=io, dag=dag, **kw)
        gen, y = run_plan(net, plan.blocks, tmp_path, f"{objective}{len(kw)}", io, x,
                          sanitize=(objective == "ram" and not kw))
        assert header_arena(gen) == plan.arena_bytes
        if dtype == "int8":
            assert np.array_equal(y, ref)
        else:
            np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    # a streaming-GAP tail (the optimizer picks one only when it wins; at this size the peak is
    # elsewhere and the unfused tail is faster), the rest of the network unfused
    gdag = build_dag(net, io=io, modes=("hcache-gap",))
    gap = [e for e in range(gdag.n_edges) if gdag.mode[e] == "hcache-gap"]
    assert gap
    e = gap[0]     # every variant and mode also runs sanitized in tests/test_executor_modes.py
    a, b = int(gdag.src[e]), int(gdag.dst[e]) - 1
    path = [v for v in gdag.vanilla_path() if int(gdag.dst[v]) <= a or int(gdag.src[v]) > b]
    path = sorted(path + [e], key=lambda k: int(gdag.src[k]))
    assert gdag.is_path(path)
    blocks = [(int(gdag.src[k]), int(gdag.dst[k]) - 1, gdag.mode[k], int(gdag.tile[k]))
              for k in path]
    lay = plan_layout(net, [gdag.schedules[k] for k in path], io)
    gen, y = run_plan(net, blocks, tmp_path, f"gap{e}", io, x)
    assert header_arena(gen) == lay.arena_bytes == gen.arena_bytes
    if dtype == "int8":
        assert np.array_equal(y, ref)
    else:
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


# -- differential fuzz: random chains, random plans ----------------------------------------------

@settings(max_examples=examples(25), deadline=None)
@given(net=chains(max_layers=6, max_hw=24, tail=True), dtype=st.sampled_from(["int8", "float32"]),
       io=st.sampled_from(["arena", "external"]), seed=st.integers(0, 1000), data=st.data())
def test_random_chain_random_plan_matches_onnxruntime(net, dtype, io, seed, data, tmp_path_factory):
    built = init_weights(net, seed=seed, dtype=dtype)
    d = tmp_path_factory.mktemp("fz")
    net = original_file_net(built, d / "chain.onnx", "float" if dtype == "float32" else "int8")
    dag = build_dag(net, io=io, tiles=(1, 2, 3), patches=(2, 3, 64), prune=False)
    path = draw_path(dag, data)
    blocks = [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e]) for e in path]
    x = rand_input(net, seed)
    ref = original_reference(net, x)
    gen, y = run_plan(net, blocks, d, "g", io, x)
    assert gen.arena_bytes == aligned_arena(max(int(dag.ram[e]) for e in path))
    if dtype == "int8":
        assert np.array_equal(y, ref)
    else:
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


# -- designated initialisers: a reordered msf_runtime.h field cannot change the values -----------

_REORDERED = [  # field declarations of msf_runtime.h's structs, and the same fields reordered
    ("    int32_t in_zp, w_zp, out_zp;", "    int32_t out_zp, w_zp, in_zp;"),
    ("    int32_t in1_zp, in2_zp, out_zp;", "    int32_t out_zp, in2_zp, in1_zp;"),
    ("    int32_t in1_mul, in1_shift, in2_mul, in2_shift, out_mul, out_shift;",
     "    int32_t out_shift, out_mul, in2_shift, in2_mul, in1_shift, in1_mul;"),
    ("    float in_scale, out_scale;", "    float out_scale, in_scale;"),
    ("    int32_t act_min, act_max;", "    int32_t act_max, act_min;"),
    ("    int16_t step, lo_sub, hi_add, hi_max;", "    int16_t hi_max, hi_add, lo_sub, step;"),
    ("    int32_t in_h, in_w, in_c;", "    int32_t in_c, in_w, in_h;"),
]


def test_reordered_runtime_struct_fields_change_nothing(tmp_path):
    """Every parameter struct, layer row and block descriptor is a C99 designated initialiser: the
    same plan built against an msf_runtime.h whose struct fields are declared in another order
    computes the same bytes."""
    net = _residual_tail_net("int8")
    plan = solve(net, objective="ram", io="arena", check=False)
    x = rand_input(net, 5)
    gen, y = run_plan(net, plan.blocks, tmp_path, "orig", "arena", x)
    src = (gen.out_dir / "msf_model.c").read_text()
    assert len(re.findall(r"static const msf_\w+_params L\d+_p = \{\n    \.", src)) == net.n_layers
    assert src.count("{\n        .op = ") == net.n_layers
    assert src.count("{\n        .dtype = ") == len(plan.blocks)
    hdr = gen.out_dir / "msf_runtime.h"
    text = hdr.read_text()
    for old, new in _REORDERED:
        assert old in text
        text = text.replace(old, new)
    hdr.write_text(text)
    exe = build_host(gen, exe=gen.out_dir / "msf_host_reordered")
    assert np.array_equal(run_host(gen, exe, x), y)


def _rqd_dsp(acc: int, mul: int, e: int, n: int) -> int:
    """msf_rqf_apply_dsp before the zero point (Python's >> is the arithmetic shift); asserts
    that the C's int32 sums cannot overflow for this case."""
    a2 = min(max(2 * acc, -2**31), 2**31 - 1)
    q = (a2 * mul + 2**31) >> 32
    t = q + (-1 if q < 0 else 0) + n
    assert -2**31 <= t < 2**31
    return t >> e


def test_rqd_records_equal_tflm_requantisation_over_each_channels_accumulator_range():
    """The code generator's DSP requantisation records (msf_conv_s8_params.rqd,
    codegen.rqd_records): every record, read as msf_rqf_apply_dsp reads it, equals TFLite's
    MultiplyByQuantizedMultiplier at the ends of the channel's accumulator range and at random
    accumulators inside it -- the normalised multipliers with shifts -1..-20 (any accumulator),
    tiny multipliers with shifts down to -31 on bounded accumulators, and the pruned channels
    (multiplier 0, or a tiny multiplier on a bias near +-2^30) as constant records -- and a
    channel no form covers (a shift -25 on an unbounded accumulator range, a left shift) leaves
    the layer without records; MSF_RQF_MAX_E in msf_s8_requant.h equals codegen.RQD_MAX_E."""
    from msfopt.mcu_runtime import codegen as cg
    from msfopt.mcu_runtime import runtime_files
    src = (runtime_files.SRC_DIR / "msf_s8_requant.h").read_text()
    assert int(re.search(r"#define MSF_RQF_MAX_E (\d+)", src).group(1)) == cg.RQD_MAX_E
    rng = np.random.default_rng(11)
    kinds = {"wide": 0, "bounded": 0, "const": 0}
    for trial in range(60):
        cout, k = int(rng.integers(1, 12)), int(rng.integers(1, 40))
        xz = int(rng.integers(-128, 128))
        w = rng.integers(-127, 128, size=(cout, k))
        bias = rng.integers(-5000, 5000, size=cout)
        qm = rng.integers(2**30, 2**31, size=cout)
        qs = -rng.integers(1, 21, size=cout)
        for c in range(cout):
            r = rng.integers(0, 4)
            if r == 1:          # pruned: tiny weights, bias near +-2^30, large shift
                w[c] = rng.integers(-1, 2, size=k)
                bias[c] = int(rng.choice([-1, 1])) * (2**30 + int(rng.integers(-100, 100)))
                qs[c] = -int(rng.integers(24, 32))
            elif r == 2:        # zero multiplier
                qm[c], qs[c] = 0, 0
            elif r == 3:        # bounded accumulators, shift down to -31
                qs[c] = -int(rng.integers(1, 32))
                qm[c] = int(rng.integers(1, 2**31))
        rec = cg.rqd_records(qm, qs, xz, w, bias, -128, 127)
        assert rec is not None, trial
        xmax = max(127 - xz, xz + 128)
        for c in range(cout):
            mul, e, n = rec[3 * c:3 * c + 3]
            kinds["const" if mul == 0 else ("wide" if e <= 20 and mul >= 2**30 else "bounded")] += 1
            d = int(np.abs(w[c]).sum()) * xmax
            lo, hi = int(bias[c]) - d, int(bias[c]) + d
            accs = [lo, hi, int(bias[c])] + [int(a) for a in rng.integers(lo, hi + 1, size=50)]
            for a in accs:
                assert _rqd_dsp(a, mul, e, n) == cg._tflm_rq(a, int(qm[c]), -int(qs[c])), \
                    (trial, c, a, mul, e, n, int(qm[c]), int(qs[c]))
    assert min(kinds.values()) > 20, kinds
    w = np.full((2, 8), 100)
    # shift -25 on accumulators around 2^30 + 2^24, a rounding point of the output
    assert cg.rqd_records([2**30, 2**31 - 1], [-5, -25], 0, w, [0, 2**30 + 2**24], -128,
                          127) is None
    assert cg.rqd_records([2**30, 2**30], [-5, 1], 0, w, [0, 0], -128, 127) is None
    assert cg.rqd_records([2**30], [-5], 0, w[:1], None, -129, 127) is None
    assert cg.rqd_records([2**30], [-5], 0, w[:1], None, -128, 127) == [2**30, 5, 16]
