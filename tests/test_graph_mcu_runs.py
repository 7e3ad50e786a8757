"""The real-world graph models under QEMU on cortex-m4 and rv32imac (acceptance of the graph
issue): one ONNX model of each structure (squeeze-excite, concat, channel shuffle, U-Net, PReLU,
dilated int8 convolutions) and two int8 TFLite ones (hard-swish squeeze-excite; a detector with
two outputs), imported from the ORIGINAL file, planned as a fused minimum-RAM plan
(``solve(net, objective="ram", io="external")``), generated, cross-built and run on one
deterministic input (the host tests in test_graph_models.py cover several inputs per model).

Checked per (model, target):

* output: int8 bit for bit with onnxruntime (tflite-micro for the TFLite files) on the original
  file (embedded in the image, which compares every byte; every output of the detector); float32 within 1e-4 of onnxruntime on the original file
  (``oracles.compare``): the image embeds the output of the host build of the same C, which is
  compared with onnxruntime here, and must reproduce it exactly (no mismatching element, and
  its FNV-1a checksum of the output bytes equals the host output's).  The image cannot embed
  onnxruntime's float output itself: it compares exactly and onnxruntime's float arithmetic
  differs in the last bits (e.g. 98 of 100 logits of the MobileNetV2);
* the arena object linked in the ELF (``nm -S msf_arena_u``) == the plan's predicted arena ==
  what the generator and the running image report;
* the painted stack within the reserve, static RAM + stack within the target's RAM.

Memory maps (scripts/run_graph_models.py): the stock profiles where the plan fits (the link
enforces their RAM and flash); the float weights of MobileNetV3 (6.1 MB), SqueezeNet (4.9 MB)
and ShuffleNetV2 (5.5 MB) exceed the 4 MiB code regions of both stock profiles and most
min-RAM arenas exceed rv32imac's 256 KiB, so those run on the same QEMU machine with a larger
map (cortex-m4: mps2-an386's 16 MiB PSRAM for code + weights; rv32imac: 16 MiB of virt's
DRAM for code + weights, 4 MiB RAM).  A test asserts, with the numbers, that the stock
profile really cannot hold each such plan.

Time: the models are prepared one after another while two target builds/QEMU runs proceed in
parallel (module fixture).  Measured on 2 shared cores: about 3-4 minutes, dominated by
compiling the generated weights (up to 35 MB of C per model) for three compilers and by the
soft-float rv32imac runs (SqueezeNet 16.1 G instructions, about 25-35 s of QEMU).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_MODELS, require, require_tools

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import run_graph_models as rgm  # noqa: E402

from msfopt import oracles  # noqa: E402
from msfopt.layout import aligned_arena  # noqa: E402
from msfopt.mcu import get_profile  # noqa: E402
from msfopt.mcu_runtime.toolchain import missing_tools  # noqa: E402

TARGETS = rgm.TARGETS
#: the U-Net's skip Concats stand for the concat structure here: SqueezeNet (its 4.9 MB of float
#: weights compile and run for about a minute on the soft-float rv32imac) runs in
#: scripts/run_graph_models.py only, to keep the suite's time budget
FILES = [f for s, f in rgm.MODELS.items() if s != "concat"]
#: and the int8 TFLite graph models that hold structures no ONNX file has here (int8 hard-swish /
#: squeeze-excite tables; two outputs), compared with tflite-micro; EfficientNet and the Keras
#: U-Net run in scripts/run_graph_models.py only (suite time: 5.9 MB of weights; the U-Net's
#: arena needs the larger rv32imac map)
TFLITE_FILES = [rgm.TFLITE_MODELS["squeeze-excite int8"], rgm.TFLITE_MODELS["two outputs int8"]]
#: the TFLite files' graph ops (op or "act:fn" -> minimum count) and graph outputs
TFLITE_OPS = {"keras_mobilenet_v3_small_r96_int8.tflite": ({"act:hardswish": 19, "mul": 19,
                                                            "gap": 9}, 1),
              "keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite": ({"concat": 2, "add": 1}, 2)}
FILES = FILES + TFLITE_FILES
GUARD = 128                  # plat_common.c's stack guard band (as test_mcu_runs.py)


def _structure_ops():
    """The graph ops each model's import must show (op -> minimum count): the host tests'."""
    from test_graph_models import ONNX_MODELS
    return ONNX_MODELS


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require("../shared/models", "onnxruntime")
    require_tools(sorted({m for t in TARGETS for m in missing_tools(t)}), "toolchain")
    t0 = time.perf_counter()
    preps, rows = rgm.run_all(FILES, TARGETS, tmp_path_factory.mktemp("graph_mcu"), jobs=2)
    wall = time.perf_counter() - t0
    good = [w for w in rows.values() if isinstance(w, rgm.Row)]
    print("\n" + rgm.table(good) + f"\n(all runs: {wall:.0f} s wall)")
    return preps, rows


def _prep(runs, file):
    p = runs[0][file]
    if isinstance(p, Exception):
        raise p
    return p


def _row(runs, file, target):
    w = runs[1][(file, target)]
    if isinstance(w, Exception):
        raise w
    return w


def test_each_structure_has_one_model():
    assert set(rgm.MODELS) == {"squeeze-excite", "concat", "shuffle", "U-Net", "PReLU",
                               "dilation"}
    assert len(set(FILES)) == len(FILES)


@pytest.mark.parametrize("file", FILES)
def test_model_imports_its_structure_and_plans_fused(file, runs):
    """The ORIGINAL file imports with the structure's graph ops; the plan is the minimum-RAM
    plan and fuses layers (at least one block of several layers)."""
    p = _prep(runs, file)
    assert Path(p.net.source).resolve() == (SHARED_MODELS / file).resolve()   # the original
    ops = [l.op for l in p.net.layers] + ["dilated"] * sum(l.dilation != (1, 1)
                                                             for l in p.net.layers)
    ops += [f"act:{l.fn}" for l in p.net.layers if l.op == "act"]
    want, n_out = TFLITE_OPS.get(file, (None, None))
    if want is not None:
        assert len(p.net.output_ids) == n_out
    for op, k in (want or _structure_ops()[file]).items():
        assert ops.count(op) >= k, f"{file}: {ops.count(op)} {op} layers, expected >= {k}"
    fused = [b for b in p.plan.blocks if b.last_layer > b.first_layer]
    assert fused, f"{file}: the minimum-RAM plan fuses nothing"
    assert p.gen.arena_bytes == p.plan.arena_bytes == aligned_arena(p.plan.peak_ram_bytes)
    assert p.gen.arena_bytes == aligned_arena(max(s.ram_bytes for s in p.gen.schedules))


@pytest.mark.parametrize("file", [f for f in FILES if not f.endswith("_int8_qop.onnx")
                                  and f not in TFLITE_FILES])
def test_float_host_build_matches_onnxruntime(file, runs):
    """First link of the float32 check: the host build of the generated C (whose output every
    image must reproduce bit for bit) is within 1e-4 of onnxruntime on the original file."""
    p = _prep(runs, file)
    assert p.net.dtype == "float32"
    assert p.ref.oracle == oracles.ORT and p.ref.kind == "external"
    ok, fig = oracles.compare(p.host_y, p.ref, "float32")
    assert ok, f"{file}: host build vs onnxruntime: {fig}"
    assert p.host_y.shape == p.ref.y.shape
    assert np.array_equal(p.expected, p.host_y)        # what the images embed
    assert np.std(p.ref.y) > 0                          # not a degenerate output


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("file", FILES)
def test_graph_model_runs_on_target(file, target, runs):
    p = _prep(runs, file)
    w = _row(runs, file, target)
    r = w.run
    prof = get_profile(target) if w.profile == target else rgm.big_profile(target)
    assert r.target == prof.name
    # output
    assert r.exit_code == 0 and r.mismatches == 0 and r.bit_exact, \
        f"{file} on {w.profile}: {r.mismatches} mismatching outputs (exit {r.exit_code})"
    want = p.host_y if p.net.dtype == "float32" else p.ref.y
    assert r.run.reports["checksum"] == rgm.fnv1a(np.ascontiguousarray(want).tobytes())
    if p.net.dtype == "int8":
        assert r.oracle == (oracles.TFLM if file.endswith(".tflite") else oracles.ORT)
        assert r.oracle_kind == "external"
        assert r.tolerance_steps == 0 and r.verdict == "bit-exact"
    else:
        assert oracles.compare(p.host_y, p.ref, "float32")[0]
    # arena: the linked object == the plan's prediction == what the image was generated with
    assert r.arena_bytes == p.plan.arena_bytes == p.gen.arena_bytes == r.arena_reported, (
        f"{file} on {w.profile}: linked arena {r.arena_bytes} B != predicted "
        f"{p.plan.arena_bytes} B")
    assert r.arena_bytes <= r.bss <= r.static_ram
    # RAM and stack
    assert r.stack_reserved == prof.stack_size
    assert 0 < r.stack_hwm <= r.stack_reserved - GUARD
    assert r.total_ram <= r.ram_size == prof.ram_size
    # weights are in the image (flash), instructions were counted
    assert r.flash >= p.gen.weight_bytes
    assert r.instructions and r.instructions > 0


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("file", FILES)
def test_larger_map_only_where_the_stock_profile_cannot_hold_the_plan(file, target, runs):
    """A run on the larger memory map is justified by hard numbers: the plan's arena plus the
    output buffer exceed the RAM the stock profile gives the plan, or the weights alone exceed
    its flash region.  A plan on the stock profile linked within its RAM and flash."""
    p = _prep(runs, file)
    w = _row(runs, file, target)
    stock = get_profile(target)
    ram_short = p.plan.arena_bytes + p.out_bytes > stock.ram_bytes
    flash_short = p.gen.weight_bytes > stock.flash_size
    if w.profile == stock.name:
        assert not w.why_not_stock
        assert w.run.total_ram <= stock.ram_size and w.flash <= stock.flash_size
    else:
        big = rgm.big_profile(target)
        assert w.profile == big.name and big.machine == stock.machine
        assert (big.core, big.gcc, big.cflags, big.stack_size) == \
            (stock.core, stock.gcc, stock.cflags, stock.stack_size)
        assert ram_short or flash_short, (
            f"{file} ran on {big.name} although the stock {target} holds it: arena "
            f"{p.plan.arena_bytes} + output {p.out_bytes} <= {stock.ram_bytes} B, weights "
            f"{p.gen.weight_bytes} <= {stock.flash_size} B")
        assert w.flash > stock.flash_size or w.run.total_ram > stock.ram_size


def test_the_big_float_models_need_the_larger_maps(runs):
    """The numbers behind the larger maps: the big float models' weights alone do not fit either
    stock code region (4 MiB; rv32imac 4 MiB - 4 KiB)."""
    m4, rv = get_profile("cortex-m4"), get_profile("rv32imac")
    assert (m4.flash_size, rv.flash_size, rv.ram_size) == (4 << 20, (4 << 20) - 4096, 256 << 10)
    for f in ("tv_mobilenet_v3_small_r128.onnx", "tv_shufflenet_v2_x0_5_r128.onnx"):
        wb = _prep(runs, f).gen.weight_bytes
        assert wb > m4.flash_size and wb > rv.flash_size, (f, wb)
        assert _row(runs, f, "cortex-m4").profile == "cortex-m4-psram"
        assert _row(runs, f, "rv32imac").profile == "rv32imac-16m"
    # the small ones run on the stock profiles
    for f in ("kws_cnn_49x10_int8_qop.onnx",):
        assert {_row(runs, f, t).profile for t in TARGETS} == set(TARGETS)
    assert _row(runs, "tv_mobilenet_v2_w0.5_prelu_r96.onnx", "cortex-m4").profile == "cortex-m4"
    assert _row(runs, "torch_unet_lrelu_r64.onnx", "cortex-m4").profile == "cortex-m4"
