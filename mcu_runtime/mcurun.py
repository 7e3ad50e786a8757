"""Build a generated model for an MCU target (GCC) and run it under QEMU: output checked against
the host reference, arena / static RAM / painted stack / instructions reported."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msfopt.errors import BuildError

from . import targets
from .codegen import Generated, RUNTIME_SOURCES, _c_array

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class TargetRun:
    target: str
    bit_exact: bool
    mismatches: int
    arena_bytes: int
    static_ram: int          # .data + .bss (includes the arena)
    stack_hwm: int
    stack_reserved: int
    total_ram: int           # static + painted stack high-water mark
    ram_size: int
    flash: int
    instructions: int | None
    exit_code: int
    build: object
    run: object


def write_testdata(gen: Generated, x: np.ndarray, expected: np.ndarray) -> Path:
    ctype = "float" if gen.dtype == "float32" else "int8_t"
    path = gen.out_dir / "msf_testdata.h"
    text = ("/* generated test vectors */\n#ifndef MSF_TESTDATA_H\n#define MSF_TESTDATA_H\n"
            '#include "msf_model.h"\n'
            + _c_array(ctype, "msf_test_input", np.asarray(x).ravel()).replace("static const", "static const")
            + _c_array(ctype, "msf_test_expected", np.asarray(expected).ravel())
            + "#endif\n")
    path.write_text(text)
    return path


def build_target(gen: Generated, target: str, x: np.ndarray, expected: np.ndarray,
                 opt: str = "-O2", stack_size: int | None = None):
    write_testdata(gen, x, expected)
    prof = targets.resolve(target)
    if prof.family == "host":
        raise BuildError("use msfopt.mcu_runtime.hostrun for the host target")
    if gen.dtype == "float32" and prof.int_only:
        raise BuildError(f"{prof.name} is integer-only: generate an int8 model")
    srcs = [gen.out_dir / "msf_model.c", *(gen.out_dir / s for s in RUNTIME_SOURCES),
            TEMPLATES / "mcu_main.c"]
    try:
        return targets.build(prof, srcs, include_dirs=[gen.out_dir], out_dir=gen.out_dir / f"build-{prof.name}",
                             opt=opt, stack_size=stack_size,
                             extra_cflags=["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wvla"],
                             name="msf_model")
    except targets.BuildError as exc:
        raise BuildError(f"{prof.name}: {exc}") from None


def run_target(gen: Generated, target: str, x: np.ndarray, expected: np.ndarray,
               timeout_s: float = 300.0, opt: str = "-O2", stack_size: int | None = None) -> TargetRun:
    b = build_target(gen, target, x, expected, opt=opt, stack_size=stack_size)
    try:
        r = targets.run(target, b, timeout_s=timeout_s, count_instructions=True)
    except targets.RunError as exc:
        raise BuildError(f"{target}: {exc}") from None
    rep = r.reports
    static = int(b.data + b.bss)
    hwm = int(r.stack_hwm or 0)
    return TargetRun(target=target, bit_exact=(r.exit_code == 0 and rep.get("mismatches") == 0),
                     mismatches=int(rep.get("mismatches", -1)),
                     arena_bytes=int(rep.get("arena_bytes", -1)), static_ram=static,
                     stack_hwm=hwm, stack_reserved=int(b.stack_reserved), total_ram=static + hwm,
                     ram_size=int(b.ram_size), flash=int(b.flash_used),
                     instructions=r.instructions_window if r.instructions_window is not None else r.instructions,
                     exit_code=r.exit_code, build=b, run=r)
