"""The fast int8 kernels (mcu_runtime/src/msf_s8_convfast.c, msf_s8_dwfast.c, the inlined
requantisation of msf_s8_requant.h) equal the reference loops (msf_conv2d_s8_ref,
msf_dwconv2d_s8_ref, msf_requant_s8) byte for byte on the MCU cores themselves: the differential
harness mcu_runtime/tests_c/fast_diff.c (random shapes, strides, pads, dilations, groups, zero
points, per-channel fixed / float requantisation, output regions, ring views; every output byte
and the untouched bytes around the region compared) cross-built and run under QEMU on
cortex-m4 (the SXTB16/SMLAD path, __ARM_FEATURE_DSP) and on cortex-m0 / rv32imac (the portable
path).  The host build of the same cases (ASan + UBSan) runs as tests_c/test_fast_kernels.c with
the other C unit tests (tests/test_c_kernels.py).  The float requantisation alone
(tests_c/rq_diff.c: its integer emulation on cores without an FPU against ORT's float
expression) runs on rv32imac, cortex-m0, cortex-m3 and cortex-m4 here and on the host as
tests_c/test_rq_int*.c.  End-to-end bit-exactness against
tflite-micro / onnxruntime is tests/test_mcu_runs.py and tests/test_c_kernels.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_tools

from msfopt.mcu_runtime.crossbuild import build
from msfopt.mcu_runtime.qemu import run
from msfopt.mcu_runtime.runtime_files import SOURCES, SRC_DIR
from msfopt.mcu_runtime.toolchain import missing_tools

TESTS_C = Path(__file__).resolve().parents[1] / "mcu_runtime" / "tests_c"
CASES = 120


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0", "rv32imac"])
@pytest.mark.parametrize("harness", ["fast_diff", "fast_diff2"])
def test_fast_kernels_equal_reference_on_target(target, harness, tmp_path):
    """fast_diff: conv and depthwise over random shapes (one-pixel and short-column calls,
    clamps outside int8 included); fast_diff2: the single-pixel 1 x 1 conv path (1 pixel x 4
    channels on DSP / RV32, channel pairs on M0) and the depthwise short calls (one pixel or
    up to 4 rows of one column, up to 60 channels: several channel chunks, wrapping rings)."""
    require_tools(missing_tools(target), f"toolchain for {target}")
    cases = CASES if harness == "fast_diff" else 300
    srcs = [TESTS_C / f"{harness}_mcu.c", *(SRC_DIR / s for s in SOURCES)]
    b = build(target, srcs, [SRC_DIR, TESTS_C], tmp_path / target,
              defines={"FD_CASES" if harness == "fast_diff" else "FD2_CASES": cases},
              extra_cflags=["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wvla"],
              name=harness.replace("_", ""))
    r = run(target, b, timeout_s=240, count_instructions=False)
    assert r.reports.get("cases") == cases, r.stdout
    assert r.reports.get("failures") == 0, r.stdout
    assert r.exit_code == 0, r.stdout


@pytest.mark.parametrize("target,emulated", [("rv32imac", 1), ("cortex-m0", 1), ("cortex-m3", 1),
                                             ("cortex-m4", 0)])
def test_float_requant_equals_float_expression_on_target(target, emulated, tmp_path):
    """The inlined MSF_RQ_FLOAT requantisation (mcu_runtime/tests_c/rq_diff.c: random
    (acc, fmul) pairs over the quantisers' exponents, ties of the float multiply and of the
    integer rounding, both at once, double roundings, |acc| around 2^24, zero points at the
    ends, special multipliers) equals ORT's float expression and msf_requant_s8 on the cores:
    the integer emulation on rv32imac (bit-length tree, 64-bit product), cortex-m0 (tree, 16-bit
    partial products) and cortex-m3 (CLZ, UMULL); the FPU path on cortex-m4."""
    require_tools(missing_tools(target), f"toolchain for {target}")
    cases = 100000
    srcs = [TESTS_C / "rq_diff_mcu.c", *(SRC_DIR / s for s in SOURCES)]
    b = build(target, srcs, [SRC_DIR, TESTS_C], tmp_path / target, defines={"RQD_CASES": cases},
              extra_cflags=["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wvla"], name="rqdiff")
    r = run(target, b, timeout_s=240, count_instructions=False)
    assert r.reports.get("cases") == cases, r.stdout
    assert r.reports.get("intrq") == emulated, r.stdout
    assert r.reports.get("failures") == 0, r.stdout
    # the corner classes ran (the same generator as the host test, fewer cases)
    assert r.reports.get("both_ties", 0) >= 5000, r.stdout
    assert r.reports.get("double_round", 0) >= 1000, r.stdout
    assert r.exit_code == 0, r.stdout


@pytest.mark.parametrize("target,dsp", [("cortex-m4", 1), ("cortex-m33", 1), ("cortex-m0", 0)])
def test_lean_fixed_requant_dsp_form_equals_reference_on_target(target, dsp, tmp_path):
    """The lean MSF_RQ_FIXED requantisation's DSP variant (mcu_runtime/tests_c/rqf_diff.c:
    QADD + SMMULR, as msf_rqf_load / msf_rqf_apply_c / msf_rqf_apply_s reach it on cores with
    the DSP extension, and its portable transcription msf_rqf_model; random accumulators, the
    rounding division's and SRDHM's ties, |acc| around 2^30 where QADD saturates, the int32
    ends, narrowed clamps) equals msf_requant_s8 + the clamp on the cores; cortex-m0 runs the
    transcription only."""
    require_tools(missing_tools(target), f"toolchain for {target}")
    cases = 60000
    srcs = [TESTS_C / "rqf_diff_mcu.c", *(SRC_DIR / s for s in SOURCES)]
    b = build(target, srcs, [SRC_DIR, TESTS_C], tmp_path / target, defines={"RQFD_CASES": cases},
              extra_cflags=["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wvla"], name="rqfdiff")
    r = run(target, b, timeout_s=240, count_instructions=False)
    assert r.reports.get("cases") == cases, r.stdout
    assert r.reports.get("dsp") == dsp, r.stdout
    assert r.reports.get("failures") == 0, r.stdout
    assert r.reports.get("div_ties", 0) >= cases // 8, r.stdout
    assert r.reports.get("sat", 0) >= cases // 8, r.stdout
    assert r.exit_code == 0, r.stdout
