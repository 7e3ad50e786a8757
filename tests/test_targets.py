"""Per-target build/run harness (msfopt.mcu_runtime.crossbuild, .qemu, .toolchain) and the MCU
profiles it reads (msfopt.mcu).

For each core the same portable C program (an int8 3x3 convolution with an FNV-1a checksum,
mcu_runtime/harness/conv_test.c) is cross-built, run under QEMU and checked against the
host build. Tests for a target whose toolchain is missing are skipped with the reason
(set MSFOPT_REQUIRE_TOOLCHAINS=1 to make that a failure instead, as CI should).
"""

from __future__ import annotations

import dataclasses
import re
import time

import pytest
from conftest import require_tools

from msfopt.errors import InputError
from msfopt.mcu import get_profile, list_profiles
from msfopt.mcu_runtime.crossbuild import build
from msfopt.mcu_runtime.qemu import RC_FAULT, RC_STACK_OVERFLOW, RunTimeout, plugin_path, run
from msfopt.mcu_runtime.selftest import harness_dir, main as selftest_main
from msfopt.mcu_runtime.toolchain import (BuildError, ToolchainMissing, missing_tools,
                                          tool_available)

TARGETS = ["cortex-m0", "cortex-m4", "rv32imac", "sifive_e", "xtensa-lx106", "host"]
MCU_TARGETS = [t for t in TARGETS if t != "host"]
HARNESS = harness_dir()
CONV = HARNESS / "conv_test.c"


def need(target: str) -> None:
    miss = missing_tools(target)
    if target == "host" and not miss and not _has("valgrind"):
        miss = ["valgrind"]
    require_tools(miss, f"toolchain for {target}")


def _has(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("targets")


@pytest.fixture(scope="module")
def host_checksum(build_root):
    need("host")
    b = build("host", [CONV], [], build_root / "host-ref")
    r = run("host", b, count_instructions=False)
    assert r.exit_code == 0, r.stdout
    return r.reports["checksum"]


# --------------------------------------------------------------------------- profiles
def test_profiles_load_and_boards_resolve():
    profs = {p.name: p for p in list_profiles()}
    for name in ["cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "rv32imac",
                 "sifive_e", "rv32imc", "xtensa-lx106", "host"]:
        p = profs[name]
        assert p.kind == "target" and p.target == name
        assert set(p.cycles) >= {"conv", "dw", "pointwise", "pool", "gap", "dense",
                                 "add_per_elem", "overhead_per_call"}
    assert profs["cortex-m0"].ram_size == 16 * 1024
    assert profs["sifive_e"].ram_size == 16 * 1024
    assert profs["xtensa-lx106"].int_only and not profs["xtensa-lx106"].fpu
    boards = {
        "stm32f767zi": ("cortex-m7", 512, 216_000_000),
        "stm32f412": ("cortex-m4", 256, 100_000_000),
        "nrf52840": ("cortex-m4", 256, 64_000_000),
        "esp32c3": ("rv32imc", 400, 160_000_000),
        "hifive1b": ("sifive_e", 16, 320_000_000),
        "esp8266": ("xtensa-lx106", 80, 80_000_000),
    }
    for b, (tgt, kib, hz) in boards.items():
        p = get_profile(b)
        assert (p.kind, p.target, p.ram_size, p.clock_hz) == ("board", tgt, kib * 1024, hz)
        assert p.family == profs[tgt].family and p.gcc == profs[tgt].gcc
    assert get_profile("ESP32C3").name == "esp32c3"
    assert get_profile("sifive-e").name == "sifive_e"
    with pytest.raises(InputError, match="unknown MCU target/board 'z80'; known: "):
        get_profile("z80")


def test_missing_toolchain_is_reported_clearly(tmp_path):
    fake = dataclasses.replace(get_profile("cortex-m4"), name="fake", gcc="no-such-arm-gcc")
    assert not tool_available(fake)
    with pytest.raises(ToolchainMissing, match="install_toolchains.sh"):
        build(fake, [CONV], [], tmp_path)


# --------------------------------------------------------------------------- per target
@pytest.mark.parametrize("target", TARGETS)
def test_conv_checksum_counts_and_stack(target, build_root, host_checksum):
    need(target)
    p = get_profile(target)
    b = build(target, [CONV], [], build_root / target)
    assert b.elf.is_file() and b.text > 0 and b.flash_used >= b.text
    assert b.commands and all(isinstance(c, list) for c in b.commands)
    if not p.is_host:
        assert b.stack_reserved == p.stack_size
        assert b.ram_used_static == b.data + b.bss + b.stack_reserved <= p.ram_size
        assert "conv3x3" in b.stack_frames
    r1 = run(target, b)
    r2 = run(target, b.elf)
    for r in (r1, r2):
        assert r.exit_code == 0 and r.status == "ok", (r.stdout, r.stderr)
        assert r.reports["checksum"] == host_checksum
        assert r.reports["macs"] == 10 * 10 * 8 * 9 * 4
        assert "done" in r.stdout
        assert r.instructions is not None and r.instructions > 0
        limit = p.ram_size if not p.is_host else 8 * 1024 * 1024
        assert r.stack_hwm is not None and 0 < r.stack_hwm < limit
    assert r1.instructions == r2.instructions  # exact and deterministic
    assert r1.stack_hwm == r2.stack_hwm
    if not p.is_host:
        assert r1.stack_hwm < p.stack_size
        # window = conv3x3 + callees, between plat_count_begin/_end
        assert r1.windows == 1
        assert 0 < r1.instructions_window < r1.instructions
        assert r1.instructions_window == r2.instructions_window


@pytest.mark.parametrize("target", TARGETS)
def test_exit_code_is_propagated(target, build_root):
    need(target)
    out = build_root / f"{target}-rc"
    b = build(target, [CONV], [], out, defines={"CONV_EXIT_CODE": 3}, name="ret3")
    r = run(target, b, count_instructions=False)
    assert r.exit_code == 3 and r.status == "nonzero"
    assert "checksum" in r.reports and "stack_hwm_bytes" in r.reports
    b = build(target, [CONV], [], out, defines=["CONV_EXIT_CODE=3", "CONV_USE_PLAT_EXIT"],
                name="exit3")
    assert run(target, b, count_instructions=False).exit_code == 3


@pytest.mark.parametrize("target", MCU_TARGETS)
def test_static_ram_overflow_fails_to_link(target, build_root):
    need(target)
    p = get_profile(target)
    out = build_root / f"{target}-big"
    # fits: a quarter of RAM
    ok = build(target, [HARNESS / "big_static.c"], [], out,
                 defines={"BIG_BYTES": p.ram_size // 4}, name="fits")
    assert ok.ram_used_static <= p.ram_size
    with pytest.raises(BuildError) as ei:
        build(target, [HARNESS / "big_static.c"], [], out,
                defines={"BIG_BYTES": p.ram_size + 100}, name="big")
    assert re.search(r"region .?D?RAM.? overflowed by \d+ bytes", str(ei.value)), str(ei.value)
    assert "overflowed" in ei.value.output


@pytest.mark.parametrize("target", TARGETS)
def test_infinite_loop_times_out(target, build_root):
    need(target)
    b = build(target, [HARNESS / "forever.c"], [], build_root / f"{target}-loop", name="loop")
    t0 = time.perf_counter()
    with pytest.raises(RunTimeout, match="did not finish"):
        run(target, b, timeout_s=1.5)
    assert time.perf_counter() - t0 < 1.5 + 5


@pytest.mark.parametrize("target", MCU_TARGETS)
def test_stack_overflow_is_detected(target, build_root):
    need(target)
    out = build_root / f"{target}-hog"
    small = build(target, [HARNESS / "stack_hog.c"], [], out, defines={"DEPTH": 4},
                    stack_size=2048, name="small")
    r = run(target, small, count_instructions=False)
    assert r.exit_code == 0 and 0 < r.stack_hwm < 2048
    deep = build(target, [HARNESS / "stack_hog.c"], [], out, defines={"DEPTH": 200},
                   stack_size=2048, name="deep")
    r = run(target, deep, count_instructions=False, timeout_s=20)
    assert r.exit_code in (RC_STACK_OVERFLOW, RC_FAULT), (r.exit_code, r.stdout, r.stderr)
    assert r.status in ("stack_overflow", "fault")


def test_float_matches_host_and_lx106_is_integer_only(build_root):
    need("host")
    fl = {"CONV_FLOAT": 1}
    ref = run("host", build("host", [CONV], [], build_root / "host-f", defines=fl),
                count_instructions=False).reports["float_bits"]
    for target in ("cortex-m4", "cortex-m0", "rv32imac"):  # hard float, soft float, soft float
        need(target)
        b = build(target, [CONV], [], build_root / f"{target}-f", defines=fl)
        r = run(target, b, count_instructions=False)
        assert r.exit_code == 0 and r.reports["float_bits"] == ref, target
    need("xtensa-lx106")
    with pytest.raises(BuildError, match="undefined reference"):
        build("xtensa-lx106", [CONV], [], build_root / "xt-f", defines=fl)


# --------------------------------------------------------------------------- extras
def test_count_function_range_and_board_ram(build_root):
    need("cortex-m4")
    b = build("cortex-m4", [CONV], [], build_root / "m4-range")
    r = run("cortex-m4", b, count_function="conv3x3")
    # conv3x3 is a leaf on M4: its static range is the window minus the marker overhead
    assert 0 < r.instructions_range <= r.instructions_window < r.instructions
    assert r.instructions_window - r.instructions_range < 64
    # a board links against its own RAM size: 300 KiB fits the emulated M4 but not nRF52840
    big = {"BIG_BYTES": 300 * 1024}
    build("cortex-m4", [HARNESS / "big_static.c"], [], build_root / "m4-300k", defines=big)
    with pytest.raises(BuildError, match="overflowed by"):
        build("nrf52840", [HARNESS / "big_static.c"], [], build_root / "nrf-300k", defines=big)


def test_host_sanitized_build(build_root, host_checksum):
    need("host")
    b = build("host", [CONV], [], build_root / "host-asan", sanitize=True)
    assert b.sanitize
    r = run("host", b)
    assert r.exit_code == 0 and r.reports["checksum"] == host_checksum
    assert r.instructions is None  # callgrind cannot run ASan binaries


def test_plugin_is_cached(build_root):
    need("host")  # host gcc builds the plugin
    p1 = plugin_path()
    assert p1.is_file() and p1.suffix == ".so"
    assert plugin_path() == p1


def test_selftest_lists_every_profile(capsys):
    assert selftest_main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(ln.split()[0] for ln in lines) == sorted(p.name for p in list_profiles())
