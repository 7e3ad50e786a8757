"""Generated C bit-exact with TensorFlow Lite Micro (the PyPI ``tflite-micro`` interpreter is the
oracle), for the real MLPerf Tiny / MCUNet models and for small models written here with the
``tflite`` flatbuffer builders.

The oracle runs in a child process (:mod:`msfopt.oracles`), all inputs of a model in one call.

* Real models (``../shared/models`` beside the checkout; skipped when absent, failed under
  MSFOPT_REQUIRE_TOOLCHAINS=1): 20 random int8
  inputs x {unfused, zero-recompute, minimum-RAM} plans, io = arena, output after the tail
  SOFTMAX (run by the generated code with TFLM's integer softmax).
* Small models (always run): conv / depthwise / residual add / average pool (windowed and
  whole-input) / max pool / MEAN / fully connected /
  softmax combinations, fused plans, io = arena and external (MEAN with and without keep_dims,
  with equal and with different input/output quantisation).
* The C softmax kernel alone against TFLM's SOFTMAX on random logits.
"""
from __future__ import annotations

import ctypes as C

import numpy as np
import pytest

from conftest import SHARED_MODELS, require

require("tflite", "tflite-micro")
import tflite  # noqa: E402

from msfopt import oracle_engines, oracles  # noqa: E402
from msfopt.dag import build_dag  # noqa: E402
from msfopt.importers.tflite_import import load_tflite  # noqa: E402
from msfopt.mcu_runtime import hostlib, requant  # noqa: E402
from kernel_refs import softmax_s8_ref  # noqa: E402
from msfopt.mcu_runtime.codegen import generate  # noqa: E402
from msfopt.mcu_runtime.hostrun import build_host, run_host  # noqa: E402
from msfopt.solver import solve  # noqa: E402

from test_tflite_import import (BO, OP, SAME, VALID, ModelWriter, _conv_weights,  # noqa: E402
                                add_opts, conv_opts, dw_opts, fc_opts, mean_opts, pad_opts,
                                pool_opts, reshape_opts)

MODELS = SHARED_MODELS

REAL = {
    "vww": "mlperf_tiny_vww_96_int8.tflite",
    "resnet8": "mlperf_tiny_resnet8_int8.tflite",
    "kws": "mlperf_tiny_dscnn_kws_int8.tflite",
    "mcunet": "mcunet_320kb_1mb_imagenet_int8.tflite",
}
N_INPUTS = 20


def unfused_blocks(net, io="arena"):
    dag = build_dag(net, io=io)
    return [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e])
            for e in dag.vanilla_path()]


def acceptance_plans(net, io="arena"):
    """The three plans of the acceptance criterion (solver defaults otherwise)."""
    return {
        "unfused": unfused_blocks(net, io),
        "zero-recompute": solve(net, objective="ram", max_overhead=1.0, io=io,
                                check=False).blocks,
        "min-ram": solve(net, objective="ram", io=io, check=False).blocks,
    }


def check_plans(net, path, plans, xs, tmp_path, io="arena"):
    """Every plan's generated C gives TFLM's output on every input; returns TFLM's outputs."""
    ref = oracles.reference(net, xs, path)
    assert ref.oracle == oracles.TFLM and ref.kind == "external"
    want = ref.ys
    n = 0
    for tag, blocks in plans.items():
        gen = generate(net, blocks, tmp_path / f"{tag}-{io}", io=io)
        exe = build_host(gen, guard=16)
        for k, (x, w) in enumerate(zip(xs, want)):
            y = run_host(gen, exe, x)
            assert np.array_equal(y, w), (f"{net.name} {tag} io={io} input {k}: "
                                          f"{int(np.sum(y != w))} of {w.size} outputs differ")
            n += 1
    return want


# ------------------------------------------------------------------------------------------------
# the four real models: the acceptance criterion
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(REAL))
def test_real_model_bit_exact_with_tflm(key, tmp_path):
    require("../shared/models")
    path = MODELS / REAL[key]
    net = load_tflite(path)
    rng = np.random.default_rng({"vww": 1, "resnet8": 2, "kws": 3, "mcunet": 4}[key])
    xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(N_INPUTS)]
    want = check_plans(net, path, acceptance_plans(net), xs, tmp_path)
    # the oracle's outputs are not degenerate (softmax / logits vary with the input)
    assert len({w.tobytes() for w in want}) >= 3


# ------------------------------------------------------------------------------------------------
# small models written with the flatbuffer builders
# ------------------------------------------------------------------------------------------------

def softmax_opts(beta):
    def f(b):
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, beta)
        return tflite.SoftmaxOptionsEnd(b)
    return BO.SoftmaxOptions, f


def _tail(w, rng, src, shape4, gap, c_out, scale_logits=0.15, beta=1.0, softmax=True):
    """gap ('avgpool' | 'mean_keep' | 'mean_same' | 'mean_requant') -> RESHAPE -> FC -> SOFTMAX."""
    _, h, wd, c = shape4
    sx, zx = w.tensors[src]["scale"][0], int(w.tensors[src]["zp"][0])
    if gap == "avgpool":
        g = w.act([1, 1, 1, c], sx, zx)
        w.op(OP["AVERAGE_POOL_2D"], [src], [g], *pool_opts(VALID, (1, 1), (h, wd)))
    else:
        axes = w.tensor([2], w.INT32, data=np.array([1, 2], np.int32))
        keep = gap == "mean_keep"
        if gap == "mean_requant":
            sx, zx = sx * 0.61, zx + 9
        g = w.act([1, 1, 1, c] if keep else [1, c], sx, zx)
        w.op(OP["MEAN"], [src, axes], [g], *mean_opts(keep))
    flat = g
    if w.tensors[g]["shape"] != [1, c]:
        shp = w.tensor([2], w.INT32, data=np.array([1, c], np.int32))
        flat = w.act([1, c], w.tensors[g]["scale"][0], int(w.tensors[g]["zp"][0]))
        w.op(OP["RESHAPE"], [g, shp], [flat], *reshape_opts([1, c]))
    fW = w.tensor([c_out, c], w.INT8, 0.01, 0,
                  data=rng.integers(-127, 128, (c_out, c), dtype=np.int8))
    fB = w.tensor([c_out], w.INT32, 0.0005, 0,
                  data=rng.integers(-3000, 3000, c_out, dtype=np.int32))
    logits = w.act([1, c_out], scale_logits, 3)
    w.op(OP["FULLY_CONNECTED"], [flat, fW, fB], [logits], *fc_opts())
    if not softmax:
        return logits
    out = w.act([1, c_out], 1.0 / 256, -128)
    w.op(OP["SOFTMAX"], [logits], [out], *softmax_opts(beta))
    return out


def build_mbv2_like(rng, gap="avgpool", beta=1.0) -> bytes:
    """12x11x3 -> CONV3x3/2 SAME relu6 -> DW3x3 SAME relu -> CONV1x1 -> ADD(skip, relu)
    -> DW3x3/2 SAME relu6 (per channel) -> CONV1x1 relu -> AVGPOOL 3x3/1 SAME -> gap -> FC
    -> SOFTMAX."""
    w = ModelWriter()
    x = w.act([1, 12, 11, 3], 0.04, -5)
    cW, cB = _conv_weights(w, rng, [8, 3, 3, 3], 0)
    a1 = w.act([1, 6, 6, 8], 0.12, -128)
    w.op(OP["CONV_2D"], [x, cW, cB], [a1], *conv_opts(SAME, (2, 2), "relu6"))
    dW, dB = _conv_weights(w, rng, [1, 3, 3, 8], 3)
    a2 = w.act([1, 6, 6, 8], 0.09, -128)
    w.op(OP["DEPTHWISE_CONV_2D"], [a1, dW, dB], [a2], *dw_opts(SAME, (1, 1), "relu"))
    pW, pB = _conv_weights(w, rng, [8, 1, 1, 8], 0)
    a3 = w.act([1, 6, 6, 8], 0.15, 4)
    w.op(OP["CONV_2D"], [a2, pW, pB], [a3], *conv_opts(SAME, (1, 1), "none"))
    a4 = w.act([1, 6, 6, 8], 0.2, -128)
    w.op(OP["ADD"], [a3, a1], [a4], *add_opts("relu"))
    d2W, d2B = _conv_weights(w, rng, [1, 3, 3, 8], 3)
    a5 = w.act([1, 3, 3, 8], 0.1, -128)
    w.op(OP["DEPTHWISE_CONV_2D"], [a4, d2W, d2B], [a5], *dw_opts(SAME, (2, 2), "relu6"))
    p2W, p2B = _conv_weights(w, rng, [12, 1, 1, 8], 0)
    a6 = w.act([1, 3, 3, 12], 0.11, -128)
    w.op(OP["CONV_2D"], [a5, p2W, p2B], [a6], *conv_opts(VALID, (1, 1), "relu"))
    a7 = w.act([1, 3, 3, 12], 0.11, -128)
    w.op(OP["AVERAGE_POOL_2D"], [a6], [a7], *pool_opts(SAME, (1, 1), (3, 3)))
    out = _tail(w, rng, a7, (1, 3, 3, 12), gap, 5, beta=beta)
    return w.build([x], [out])


def build_pad_pool(rng, gap="mean_keep", beta=0.5) -> bytes:
    """13x13x2 -> PAD(1,1,0,1) + CONV3x3 VALID relu -> MAXPOOL 2x2/2 -> DW3x3 SAME
    -> PAD + AVGPOOL 2x2/2 VALID (count_include_pad) -> CONV1x1 relu6 -> gap -> FC -> SOFTMAX."""
    w = ModelWriter()
    x = w.act([1, 13, 13, 2], 0.05, 10)
    pads = w.tensor([4, 2], w.INT32, data=np.array([[0, 0], [1, 0], [1, 1], [0, 0]], np.int32))
    xp = w.act([1, 14, 15, 2], 0.05, 10)
    w.op(OP["PAD"], [x, pads], [xp], *pad_opts())
    cW, cB = _conv_weights(w, rng, [6, 3, 3, 2], 0)
    a1 = w.act([1, 12, 13, 6], 0.07, -128)
    w.op(OP["CONV_2D"], [xp, cW, cB], [a1], *conv_opts(VALID, (1, 1), "relu"))
    a2 = w.act([1, 6, 6, 6], 0.07, -128)
    w.op(OP["MAX_POOL_2D"], [a1], [a2], *pool_opts(VALID, (2, 2), (2, 2)))
    dW, dB = _conv_weights(w, rng, [1, 3, 3, 6], 3)
    a3 = w.act([1, 6, 6, 6], 0.06, -7)
    w.op(OP["DEPTHWISE_CONV_2D"], [a2, dW, dB], [a3], *dw_opts(SAME, (1, 1), "none"))
    pads2 = w.tensor([4, 2], w.INT32, data=np.array([[0, 0], [1, 1], [0, 1], [0, 0]], np.int32))
    a3p = w.act([1, 8, 7, 6], 0.06, -7)
    w.op(OP["PAD"], [a3, pads2], [a3p], *pad_opts())
    a4 = w.act([1, 4, 3, 6], 0.06, -7)
    w.op(OP["AVERAGE_POOL_2D"], [a3p], [a4], *pool_opts(VALID, (2, 2), (2, 2)))
    pW, pB = _conv_weights(w, rng, [10, 1, 1, 6], 0)
    a5 = w.act([1, 4, 3, 10], 0.13, -100)
    w.op(OP["CONV_2D"], [a4, pW, pB], [a5], *conv_opts(SAME, (1, 1), "relu6"))
    out = _tail(w, rng, a5, (1, 4, 3, 10), gap, 7, scale_logits=0.2, beta=beta)
    return w.build([x], [out])


SMALL = {
    "mbv2-avgpool": lambda rng: build_mbv2_like(rng, "avgpool"),
    "mbv2-mean-requant": lambda rng: build_mbv2_like(rng, "mean_requant", beta=1.5),
    "padpool-mean-keep": lambda rng: build_pad_pool(rng, "mean_keep"),
    "padpool-mean-same": lambda rng: build_pad_pool(rng, "mean_same", beta=1.0),
}


def small_plans(net, io):
    plans = acceptance_plans(net, io)
    plans["latency"] = solve(net, objective="latency", io=io, check=False).blocks
    plans["hcache-p2"] = solve(net, objective="ram", io=io, check=False, tiles=(2,),
                               modes=("hcache",)).blocks
    return plans


@pytest.mark.parametrize("io", ["arena", "external"])
@pytest.mark.parametrize("kind", list(SMALL))
def test_small_model_bit_exact_with_tflm(kind, io, tmp_path):
    rng = np.random.default_rng(sum(kind.encode()))
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(SMALL[kind](np.random.default_rng(11)))
    net = load_tflite(path)
    assert net.tail_softmax
    if "mean" in kind:
        assert "MEAN" in net.provenance.layer_ops
    else:
        assert net.provenance.layer_ops.count("AVERAGE_POOL_2D") == 2
    plans = small_plans(net, io)
    assert any(b[0] != b[1] if isinstance(b, tuple) else b.first_layer != b.last_layer
               for blocks in plans.values() for b in blocks), "no fused block in any plan"
    xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(6)]
    xs[0][:] = -128
    xs[1][:] = 127
    want = check_plans(net, path, plans, xs, tmp_path, io=io)
    assert len({w.tobytes() for w in want}) >= 3


def test_generated_header_has_softmax_quant(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(build_mbv2_like(np.random.default_rng(11)))
    net = load_tflite(path)
    gen = generate(net, unfused_blocks(net), tmp_path / "g")
    h = (gen.out_dir / "msf_model.h").read_text()
    assert "#define MSF_TAIL_SOFTMAX 1" in h and "#define MSF_OUTPUT_ZERO_POINT (-128)" in h
    assert "#define MSF_OUTPUT_SCALE 0.00390625f" in h


# ------------------------------------------------------------------------------------------------
# the softmax kernel alone
# ------------------------------------------------------------------------------------------------

def test_softmax_kernel_matches_tflm(tmp_path):
    lib = hostlib.load()
    rng = np.random.default_rng(5)
    n = 0
    for trial in range(12):
        depth = int(rng.choice([2, 3, 10, 12, 37, 100]))
        scale = float(np.float32(10 ** rng.uniform(-2.5, 0.5)))
        beta = float(np.float32(rng.choice([1.0, 0.5, 2.0, 1.7])))
        w = ModelWriter()
        x = w.act([1, depth], scale, int(rng.integers(-128, 128)))
        y = w.act([1, depth], 1 / 256, -128)
        w.op(OP["SOFTMAX"], [x], [y], *softmax_opts(beta))
        path = tmp_path / f"sm{trial}.tflite"
        path.write_bytes(w.build([x], [y]))
        qm, ls, dmin = requant.softmax_params(beta, scale)
        p = hostlib.SoftmaxS8(qm, ls, dmin)
        xins = []
        for k in range(4):
            xin = rng.integers(-128, 128, (1, depth), dtype=np.int8)
            if k == 1:
                xin[:] = rng.integers(110, 128, (1, depth))  # near-uniform logits
            if k == 2:
                xin[:] = -128
                xin[0, depth // 2] = 127  # one dominant logit, the rest below diff_min
            xins.append(xin)
        wants = oracle_engines.run_engine("tflite-micro", path, [[xin] for xin in xins])
        for k, (xin, (want,)) in enumerate(zip(xins, wants)):
            buf = np.ascontiguousarray(xin.copy())
            lib.msf_softmax_s8(C.byref(p), buf.ctypes.data, buf.ctypes.data, 1, depth)  # in place
            assert np.array_equal(buf, want), (depth, scale, beta, k)
            assert np.array_equal(softmax_s8_ref(xin, beta, scale), want)
            n += 1
    assert n == 48
