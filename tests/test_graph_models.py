"""Real-world graph models (``../shared/models``' "Real-world graph set"): imported from the user's
ORIGINAL file, planned, generated as C, built for the host and run; every output is compared with
the oracle on the original file (onnxruntime for ONNX), the linked arena with the predicted one,
and every solver backend with graph search.

The models exercise branches that merge and split (Concat, Split/Slice, channel shuffle), standalone
activations (PRelu, HardSwish, HardSigmoid), squeeze-excite multiplies and ceil-mode pooling.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import SHARED_MODELS, require
from test_concat_slices import slice_liveness_check as independent_liveness_check

from msfopt import oracles
from msfopt.backends import ILP_BACKENDS
from msfopt.dag import build_dag
from msfopt.importers.onnx_import import load_onnx
from msfopt.ir import ACT, CONCAT, CONVT, MUL, RESIZE, SHUFFLE, SLICE
from msfopt.layout import aligned_arena
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host
from msfopt.solver import solve

#: float32 ONNX models of the set -> the graph ops their import must produce (op -> minimum count)
FLOAT_ONNX = {
    "tv_mobilenet_v2_w0.5_prelu_r96.onnx": {ACT: 35},
    "tv_squeezenet1_1_r128.onnx": {CONCAT: 8},
    "tv_shufflenet_v2_x0_5_r128.onnx": {CONCAT: 16, SHUFFLE: 16, SLICE: 26},
    "tv_mobilenet_v3_small_r128.onnx": {ACT: 28, MUL: 9},
    "torch_unet_lrelu_r64.onnx": {ACT: 14, CONCAT: 3, CONVT: 1, RESIZE: 2},
}
#: int8 ONNX models (QOperator) -> what their import must show
INT8_ONNX = {
    "kws_cnn_49x10_int8_qop.onnx": {"dilated": 1},
}
#: the int8 QDQ MobileNetV3 (onnxruntime runs part of it in float32): tests/test_qdq_models.py
ONNX_MODELS = {**FLOAT_ONNX, **INT8_ONNX}
N_INPUTS = 5
GUARD = 16   # canary bytes on each side of the host build's arena


def _plans(net):
    dag = build_dag(net)
    return dag, {
        "unfused": [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e])
                    for e in dag.vanilla_path()],
        "zero-recompute": solve(net, objective="ram", max_overhead=1.0, dag=dag).blocks,
        "min-ram": solve(net, objective="ram", dag=dag).blocks,
    }


def _elf_arena(exe) -> int:
    """Size of the linked arena object (``nm -S``), as the MCU runs report it."""
    out = subprocess.run(["nm", "-S", str(exe)], capture_output=True, text=True, check=True).stdout
    sizes = [int(f[1], 16) for f in (ln.split() for ln in out.splitlines())
             if len(f) == 4 and f[3].split(".")[0] == "msf_arena_u"]
    assert len(sizes) == 1, "msf_arena_u not found once in the host executable"
    return sizes[0]


@pytest.mark.parametrize("file", list(ONNX_MODELS))
def test_graph_model_runs_like_onnxruntime(file, tmp_path):
    """Unfused, zero-recompute minimum-RAM and minimum-RAM plans: float32 within 1e-4 of
    onnxruntime on the original file, int8 bit-exact; the linked arena is the predicted one."""
    require("../shared/models")
    path = SHARED_MODELS / file
    net = load_onnx(path)
    ops = [l.op for l in net.layers] + ["dilated"] * sum(l.dilation != (1, 1) for l in net.layers)
    for op, k in ONNX_MODELS[file].items():
        assert ops.count(op) >= k, f"{file}: {ops.count(op)} {op} layers, expected >= {k}"
    rng = np.random.default_rng(len(file))
    if net.dtype == "int8":
        xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(N_INPUTS)]
    else:
        xs = [rng.standard_normal(net.input_shape).astype(np.float32) for _ in range(N_INPUTS)]
    ref = oracles.reference(net, xs, path)
    assert ref.oracle == oracles.ORT
    dag, plans = _plans(net)
    built = set()
    for tag, blocks in plans.items():
        key = tuple((b.first_layer, b.last_layer, b.mode, b.tile) if not isinstance(b, tuple)
                    else b for b in blocks)
        if key in built:    # the same plan as an earlier one: its C is already checked
            continue
        built.add(key)
        gen = generate(net, blocks, tmp_path / tag)
        exe = build_host(gen, guard=GUARD)
        assert _elf_arena(exe) == gen.arena_bytes + 2 * GUARD, \
            f"{file} {tag}: linked arena != predicted {gen.arena_bytes} B"
        assert gen.arena_bytes == aligned_arena(max(s.ram_bytes for s in gen.schedules))
        independent_liveness_check(net, gen.schedules, "arena")
        for k, (x, want) in enumerate(zip(xs, ref.ys)):
            ok, fig = oracles.compare(run_host(gen, exe, x), want, net.dtype)
            assert ok, f"{file} {tag} input {k}: {fig}"
    # the outputs are not degenerate
    assert len({np.round(y, 3).tobytes() for y in ref.ys}) == N_INPUTS


#: every model of ../shared/models (the four older TFLite models and the eleven of the graph set)
ALL_SHARED = [*ONNX_MODELS, "tv_mobilenet_v3_small_r128_int8_qdq.onnx",
              "keras_efficientnet_b0_r96_int8.tflite", "keras_mobilenet_v3_small_r96_int8.tflite",
              "keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite", "keras_unet_r96_int8.tflite",
              "mcunet_320kb_1mb_imagenet_int8.tflite", "mlperf_tiny_dscnn_kws_int8.tflite",
              "mlperf_tiny_resnet8_int8.tflite", "mlperf_tiny_vww_96_int8.tflite"]


def test_every_shared_model_is_listed():
    require("../shared/models")
    on_disk = {p.name for p in SHARED_MODELS.iterdir() if p.suffix in (".onnx", ".tflite")}
    assert on_disk == set(ALL_SHARED)


@pytest.mark.parametrize("file", ALL_SHARED)
def test_graph_model_backends_agree(file):
    """Minimum RAM and minimum RAM at zero recompute: every ILP backend answers graph search's
    optimum on the model's DAG (every model of ../shared/models)."""
    from msfopt.models import load_model
    require("../shared/models")
    net = load_model(str(SHARED_MODELS / file))
    dag = build_dag(net)
    for overhead in (None, 1.0):
        want = solve(net, objective="ram", max_overhead=overhead, backend="graph", check=False,
                     dag=dag).peak_ram_bytes
        for b in ILP_BACKENDS:
            got = solve(net, objective="ram", max_overhead=overhead, backend=b, check=False,
                        dag=dag).peak_ram_bytes
            assert got == want, f"{file} {b} overhead {overhead}: {got} != graph {want}"


def test_ssdlite_two_outputs_bit_exact_with_tflm(tmp_path):
    """The SSD-lite detector: heads on two scales, RESHAPE [1, H, W, A k] -> [1, H W A, k],
    CONCATENATION of the scales (the IR's width axis), LOGISTIC, and two model outputs (scores =
    output 0, boxes = output 1).  Both outputs bit-exact with tflite-micro for the three plans,
    with the outputs in the arena and (minimum RAM) written straight to the caller's buffer."""
    require("../shared/models", "tflite-micro")
    from msfopt.importers.tflite_import import load_tflite
    from msfopt.ir import RESHAPE
    from msfopt.mcu_runtime.hostrun import split_outputs
    path = SHARED_MODELS / "keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite"
    net = load_tflite(path)
    ops = [l.op for l in net.layers]
    assert ops.count(RESHAPE) == 4 and sum(1 for l in net.layers if l.op == CONCAT and
                                           l.axis == 1) == 2
    assert [net.tensor_shape(t) for t in net.output_ids] == [(1, 240, 3), (1, 240, 4)]
    assert net.output_ids[0] == net.n_layers
    rng = np.random.default_rng(11)
    xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(N_INPUTS)]
    ref = oracles.reference(net, xs, path)
    assert ref.oracle == oracles.TFLM
    _, plans = _plans(net)
    runs = [(tag, b, "arena") for tag, b in plans.items()]
    runs.append(("min-ram-external", solve(net, objective="ram", io="external").blocks,
                 "external"))
    for tag, blocks, io in runs:
        gen = generate(net, blocks, tmp_path / tag, io=io)
        independent_liveness_check(net, gen.schedules, io)
        exe = build_host(gen, guard=GUARD)
        assert _elf_arena(exe) == gen.arena_bytes + 2 * GUARD
        for k, (x, want) in enumerate(zip(xs, ref.ys)):
            y = run_host(gen, exe, x)
            scores, boxes = split_outputs(gen, y)
            assert np.array_equal(y, want), f"{tag} input {k}: " + ", ".join(
                f"{name} {int(np.sum(a != b))} differ" for name, a, b in
                (("scores", scores, split_outputs(gen, want)[0]),
                 ("boxes", boxes, split_outputs(gen, want)[1])))
    assert len({w.tobytes() for w in ref.ys}) == N_INPUTS
