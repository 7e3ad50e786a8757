"""Build a generated model for an MCU target (GCC) and run it under QEMU: output checked against
the host reference, arena / static RAM / painted stack / instructions reported.

Reference ("expected") outputs come from :mod:`msfopt.oracles`, computed once on the host and
embedded in the image: TFLite models are checked against tflite-micro (LiteRT ``BUILTIN_REF``
where tflite-micro cannot run the model) on the original file, in either requantisation; ONNX
files against onnxruntime on the original file (``rq="float"``); zoo models against onnxruntime
on msfopt's re-export. Integer-only targets (``int_only`` in the profile, e.g. xtensa-lx106)
need ``rq="fixed"``, which for a non-TFLite model has no external oracle: the reference is the
same generated C built and run natively on the host ("host-consistent", never "bit-exact").
:func:`expected_reference` picks the oracle; ``TargetRun.oracle`` names it.

The arena reported is measured from the ELF (``nm -S`` size of ``msf_arena_u``), not the
``MSF_ARENA_BYTES`` macro the image echoes back (``arena_reported``).

Instruction counts are *executed guest instructions* inside ``msf_model_run`` (QEMU TCG plugin),
not cycles."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msfopt.errors import BuildError
from msfopt.mcu import get_profile

from . import crossbuild, qemu, toolchain
from .codegen import Generated
from .ctext import c_array as _c_array
from .runtime_files import SOURCES as RUNTIME_SOURCES

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class TargetRun:
    target: str
    bit_exact: bool
    mismatches: int
    arena_bytes: int         # the linked arena object's size (nm -S of msf_arena_u in the ELF)
    static_ram: int          # .data + .bss (includes the arena)
    stack_hwm: int           # painted-stack high-water mark: the stack the run really needed
    stack_reserved: int      # the .stack region the link reserved (profile stack_size)
    total_ram: int           # static + painted stack high-water mark
    ram_size: int            # the target's RAM (the link's RAM region)
    flash: int
    instructions: int | None  # executed instructions inside msf_model_run
    exit_code: int
    build: object
    run: object
    bss: int = 0             # .bss of the ELF (includes the arena)
    arena_reported: int = -1  # MSF_ARENA_BYTES as echoed back by the running image
    oracle: str = ""         # what the embedded expected output came from (msfopt.oracles)
    oracle_kind: str = ""    # "external" | "re-export" | "host-consistent"
    tolerance_steps: int = 0  # >0: the oracle agrees within that many steps (QDQ originals)
    block_instructions: list | None = None  # executed instructions of each block (QEMU marks)
    via_host: bool = False   # float32: checked against the host build, within tolerance of oracle

    @property
    def verdict(self) -> str:
        """'bit-exact' only against an external oracle or the re-export; an rq=fixed ONNX/zoo
        model is 'host-consistent' at best."""
        if not self.bit_exact:
            return f"{self.mismatches} mismatches"
        if self.tolerance_steps:
            return f"within {self.tolerance_steps} step (bit-exact with the host build)"
        if self.via_host:
            return "within float tolerance (bit-exact with the host build)"
        return "host-consistent" if self.oracle_kind == "host-consistent" else "bit-exact"

    @property
    def fits(self) -> bool:
        """Measured RAM (static + painted stack) within the target's RAM."""
        return self.total_ram <= self.ram_size

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "target", "bit_exact", "mismatches", "arena_bytes", "static_ram", "stack_hwm",
            "stack_reserved", "total_ram", "ram_size", "flash", "instructions", "exit_code",
            "bss", "arena_reported", "oracle", "oracle_kind", "tolerance_steps", "verdict",
            "block_instructions")}


def default_rq(target: str) -> str | None:
    """Requantisation to generate for ``target``: integer-only cores need ``"fixed"``; ``None``
    (the model's default) elsewhere."""
    return "fixed" if get_profile(target).int_only else None


def expected_reference(gen: Generated, net, x: np.ndarray, source: str | None = None):
    """The :class:`msfopt.oracles.Reference` the target must reproduce bit for bit (see the
    module docstring), computed once on the host."""
    from msfopt import oracles
    ref = oracles.reference(net, [x], source, rq=gen.rq, gen=gen)
    if oracles.needs_arbitration(net, ref, source):
        # uint8 ONNX model: onnxruntime's u8s8 kernels may saturate; where they differ from the
        # host build of the same C, onnx.reference on the original file decides
        from .hostrun import build_host, run_host
        ref = oracles.arbitrate(net, [x], [run_host(gen, build_host(gen), x)], ref, source)
    if ref.tolerance_steps and ref.kind == "external":
        # QDQ original: the C may round a near-tie 1 step away from onnxruntime's float ops.
        # The image then checks the host build of the same C, itself checked here against the
        # oracle within the tolerance (the run's verdict says "within N step").
        from .hostrun import build_host, run_host
        y = run_host(gen, build_host(gen), x)
        ok, detail = oracles.compare(y, ref, net.dtype)
        if ok and not np.array_equal(y, ref.y):
            ref = oracles.Reference([y], ref.oracle, ref.kind, ref.raw, ref.notes + [
                f"the image checks the host build of the same C, {detail} of {ref.oracle}"],
                tolerance_steps=ref.tolerance_steps)
        else:
            ref.tolerance_steps = 0  # bit-exact (or a real mismatch): compared exactly
    elif net.dtype == "float32" and ref.kind in ("external", "re-export"):
        # float32: the oracle's arithmetic differs from the C in the last bits, so the image
        # checks the host build of the same C exactly (IEEE single precision, no contraction:
        # every target reproduces it), itself checked here within tolerance of the oracle
        from .hostrun import build_host, run_host
        y = run_host(gen, build_host(gen), x)
        ok, detail = oracles.compare(y, ref.y, net.dtype)
        if ok and not np.array_equal(y, ref.y):
            ref = oracles.Reference([y], ref.oracle, ref.kind, ref.raw, ref.notes + [
                f"the image checks the host build of the same C bit for bit; the host build "
                f"is within tolerance of {ref.oracle} ({detail})"], via_host=True)
    return ref


def expected_output(gen: Generated, net, x: np.ndarray, source: str | None = None) -> np.ndarray:
    """The expected output array of :func:`expected_reference`."""
    return expected_reference(gen, net, x, source).y


def write_testdata(gen: Generated, x: np.ndarray, expected: np.ndarray) -> Path:
    ctype = "float" if gen.dtype == "float32" else "int8_t"
    path = gen.out_dir / "msf_testdata.h"
    text = ("/* generated test vectors (const: they live in flash) */\n"
            "#ifndef MSF_TESTDATA_H\n#define MSF_TESTDATA_H\n"
            '#include "msf_model.h"\n'
            + _c_array(ctype, "msf_test_input", np.asarray(x).ravel())
            + _c_array(ctype, "msf_test_expected", np.asarray(expected).ravel())
            + "#endif\n")
    path.write_text(text)
    return path


def build_target(gen: Generated, target: str, x: np.ndarray, expected: np.ndarray,
                 opt: str = "-O2", stack_size: int | None = None):
    """Cross-build the generated model with the test driver for ``target``. ``stack_size``
    overrides the profile's stack reserve (the planner uses the profile's value)."""
    write_testdata(gen, x, expected)
    prof = get_profile(target)
    if prof.family == "host":
        raise BuildError("use msfopt.mcu_runtime.hostrun for the host target")
    if gen.dtype == "float32" and prof.int_only:
        raise BuildError(f"{prof.name} is integer-only: generate an int8 model")
    if gen.rq == "float" and prof.int_only:
        raise BuildError(f"{prof.name} is integer-only (no soft-float in its libgcc): generate "
                         f"with --rq fixed (TFLite Micro integer requantisation)")
    srcs = [gen.out_dir / "msf_model.c", *(gen.out_dir / s for s in RUNTIME_SOURCES),
            TEMPLATES / "mcu_main.c"]
    if prof.int_only and prof.family == "xtensa":
        # the kernels' float branches are linked (run-time rq switch) but unreachable with
        # rq="fixed": link-only stand-ins that trap if ever called
        srcs.append(crossbuild.startup_dir() / "xtensa" / "softfloat_trap.c")
    stack = prof.stack_size if stack_size is None else int(stack_size)
    try:
        return crossbuild.build(prof, srcs, include_dirs=[gen.out_dir],
                                out_dir=gen.out_dir / f"build-{prof.name}", opt=opt,
                                stack_size=stack,
                                extra_cflags=["-std=c99", "-Wall", "-Wextra", "-Werror",
                                              "-Wvla"],
                                name="msf_model")
    except toolchain.ToolchainMissing as exc:
        raise BuildError(f"{prof.name}: {exc}") from None
    except toolchain.BuildError as exc:
        msg = str(exc)
        if "overflowed" in msg or "will not fit" in msg:
            msg = (f"the plan does not fit {prof.name}: {msg} (RAM {prof.ram_size:,} B = stack "
                   f"reserve {stack:,} B + .data/.bss; the arena alone is {gen.arena_bytes:,} B"
                   + (f", the external output buffer {_out_bytes(gen):,} B" if gen.io == "external"
                      else "") + ")")
        raise BuildError(f"{prof.name}: {msg}") from None


def _out_bytes(gen: Generated) -> int:
    shapes = gen.output_shapes or (gen.output_shape,)
    return sum(int(np.prod(s)) for s in shapes) * (4 if gen.dtype == "float32" else 1)


def run_target(gen: Generated, target: str, x: np.ndarray, expected,
               timeout_s: float = 300.0, opt: str = "-O2", stack_size: int | None = None) -> TargetRun:
    """``expected``: a :class:`msfopt.oracles.Reference` (its oracle is recorded in the result)
    or a plain array (oracle recorded as "given")."""
    oracle, kind, tol, via_host = "given", "", 0, False
    if hasattr(expected, "oracle"):
        oracle, kind, tol = expected.oracle, expected.kind, expected.tolerance_steps
        via_host = expected.via_host
        expected = expected.y
    b = build_target(gen, target, x, expected, opt=opt, stack_size=stack_size)
    try:
        r = qemu.run(target, b, timeout_s=timeout_s, count_instructions=True)
    except qemu.RunError as exc:
        raise BuildError(f"{target}: {exc}") from None
    rep = r.reports
    static = int(b.data + b.bss)
    hwm = int(r.stack_hwm or 0)
    arena = crossbuild.symbol_size(target, b.elf, "msf_arena_u")
    return TargetRun(target=get_profile(target).name,
                     bit_exact=(r.exit_code == 0 and rep.get("mismatches") == 0),
                     mismatches=int(rep.get("mismatches", -1)),
                     arena_bytes=-1 if arena is None else int(arena), static_ram=static,
                     stack_hwm=hwm, stack_reserved=int(b.stack_reserved), total_ram=static + hwm,
                     ram_size=int(b.ram_size), flash=int(b.flash_used),
                     instructions=r.instructions_window if r.instructions_window is not None else r.instructions,
                     exit_code=r.exit_code, build=b, run=r, bss=int(b.bss),
                     arena_reported=int(rep.get("arena_bytes", -1)), oracle=oracle,
                     oracle_kind=kind, tolerance_steps=tol, via_host=via_host,
                     block_instructions=_per_block(r.mark_deltas, len(gen.schedules)))


def _per_block(deltas, n_blocks: int):
    """Per-block instructions from the block-boundary marks: the run calls the model once, so
    exactly n_blocks deltas (anything else -- e.g. a harness running it twice -- is not split)."""
    if deltas is None or len(deltas) != n_blocks:
        return None
    return [int(d) for d in deltas]


def run_model(net, blocks, target: str, out_dir, io: str = "external", x: np.ndarray | None = None,
              seed: int = 1, rq: str | None = None, source: str | None = None,
              stack_size: int | None = None, timeout_s: float = 300.0,
              copy_runtime: bool = True) -> tuple[Generated, TargetRun]:
    """Generate ``net`` (with weights) as ``blocks``, build it for ``target`` with a
    deterministic input (``seed``), run it under QEMU and compare with the reference."""
    from .codegen import generate
    rq = rq or default_rq(target)
    gen = generate(net, blocks, out_dir, io=io, rq=rq, copy_runtime=copy_runtime)
    if x is None:
        x = deterministic_input(net, seed)
    exp = expected_reference(gen, net, x, source)
    return gen, run_target(gen, target, x, exp, timeout_s=timeout_s, stack_size=stack_size)


def deterministic_input(net, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if net.dtype == "float32":
        return rng.standard_normal(net.input_shape).astype(np.float32)
    return rng.integers(-128, 128, size=net.input_shape, dtype=np.int8)
