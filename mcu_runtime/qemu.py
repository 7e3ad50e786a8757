"""Run a cross-built ELF for an MCU profile and read back what it reported.

MCU profiles run under QEMU with semihosting and our instruction-count TCG plugin
(``mcu_runtime/plugin/icount.c``, built with the host gcc into the cache dir on first use);
the host profile runs natively, under callgrind when counting.  The guest's ``plat_report``
lines (``label=value``) become ``RunResult.reports``; the exit status is classified (ok,
nonzero, stack overflow, fault, emulator abort, signal).  Instruction counts are *executed
guest instructions*, not cycles.  Never hangs: after the timeout the emulator's process group
is killed and :class:`RunTimeout` raised.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from msfopt.mcu import MCUProfile, get_profile

from .crossbuild import BuildResult, symbols
from .toolchain import INSTALL_HINT, BuildError, ToolchainMissing, require_tools, summarise

__all__ = ["RC_EXCEPTION", "RC_FAULT", "RC_QEMU_ABORT", "RC_STACK_OVERFLOW", "RunError",
           "RunResult", "RunTimeout", "plugin_path", "plugin_source", "run"]

# Exit-code conventions (see startup/common/plat.h).
RC_STACK_OVERFLOW = 125
RC_EXCEPTION = 126
RC_FAULT = 127
RC_QEMU_ABORT = 134


class RunError(RuntimeError):
    """The emulator could not run the program (bad option, missing machine, ...)."""


class RunTimeout(RunError):
    """The program did not finish within the timeout; the emulator was killed."""


# --------------------------------------------------------------------------- plugin
def _cache_dir() -> Path:
    d = os.environ.get("MSFOPT_CACHE_DIR")
    base = Path(d) if d else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "msfopt"
    base.mkdir(parents=True, exist_ok=True)
    return base


def plugin_source() -> Path:
    return Path(__file__).resolve().parent / "plugin" / "icount.c"


def plugin_path() -> Path:
    """Path of the compiled QEMU instruction-count plugin, building it (host gcc) into
    the cache dir (``$MSFOPT_CACHE_DIR`` or ``~/.cache/msfopt``) when missing or stale."""
    src = plugin_source()
    code = src.read_bytes()
    tag = hashlib.sha256(code).hexdigest()[:12]
    so = _cache_dir() / f"libmsf_icount-{tag}.so"
    if so.exists():
        return so
    if shutil.which("gcc") is None:
        raise ToolchainMissing(f"host gcc not found (needed for the QEMU plugin); {INSTALL_HINT}")
    tmp = so.with_name(f".{so.name}.{os.getpid()}.tmp")
    cmd = ["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(src)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        raise BuildError("plugin: " + summarise(cp.stderr), cp.stderr, cmd)
    os.replace(tmp, so)  # atomic: safe with parallel builders
    return so


# --------------------------------------------------------------------------- run
@dataclass
class RunResult:
    target: str
    exit_code: int
    stdout: str  # guest output (semihosting console / host stdout)
    reports: dict[str, int]  # plat_report labels (trailing '=' stripped) -> value
    instructions: int | None  # executed instructions, whole program
    instructions_window: int | None  # between plat_count_begin/_end (or count_window)
    instructions_range: int | None  # PC inside count_function / count_range
    windows: int  # completed count windows
    stack_hwm: int | None  # painted-stack high-water mark, bytes
    wall_seconds: float
    status: str  # ok | nonzero | stack_overflow | fault | emulator_abort | signal
    command: list[str]
    stderr: str = ""
    #: instructions from each call of the ``count_marks`` symbol to the next (for the generated
    #: runtime's msf_block_boundary: one entry per block), None when not recorded
    mark_deltas: list[int] | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


_REPORT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)=(-?\d+)\s*$")


def _parse_reports(text: str) -> dict[str, int]:
    out = {}
    for ln in text.splitlines():
        m = _REPORT_RE.match(ln.strip())
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def _status(rc: int) -> str:
    if rc == 0:
        return "ok"
    if rc == RC_STACK_OVERFLOW:
        return "stack_overflow"
    if rc in (RC_EXCEPTION, RC_FAULT):
        return "fault"
    if rc == RC_QEMU_ABORT:
        return "emulator_abort"
    if rc < 0:
        return "signal"
    return "nonzero"


def _communicate(cmd: list[str], timeout_s: float, cwd: str | None = None):
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, cwd=cwd)
    except FileNotFoundError:
        raise ToolchainMissing(f"{cmd[0]} not found; {INSTALL_HINT}", "", cmd) from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        raise RunTimeout(
            f"{Path(cmd[0]).name} did not finish within {timeout_s:g} s (killed)") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), \
        time.perf_counter() - t0


def _is_sanitized(p: MCUProfile, elf: Path) -> bool:
    syms = symbols(p, elf)
    return any(s.startswith("__asan_") or s.startswith("__ubsan_") for s in syms) or \
        b"__asan_init" in elf.read_bytes()


def _run_host(p: MCUProfile, elf: Path, timeout_s: float, count_instructions: bool) -> RunResult:
    cmd = [str(elf)]
    counting = count_instructions and shutil.which("valgrind") is not None and \
        not _is_sanitized(p, elf)
    if counting:
        cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=main",
               "--callgrind-out-file=/dev/null", str(elf)]
    rc, out, err, wall = _communicate(cmd, timeout_s)
    instructions = None
    if counting:
        m = re.search(r"Collected\s*:\s*(\d+)", err)
        instructions = int(m.group(1)) if m else None
    reports = _parse_reports(out)
    return RunResult(target=p.name, exit_code=rc, stdout=out, reports=reports,
                     instructions=instructions, instructions_window=None,
                     instructions_range=None, windows=0,
                     stack_hwm=reports.get("stack_hwm_bytes"), wall_seconds=wall,
                     status=_status(rc), command=cmd, stderr=err)


def _plugin_args(p: MCUProfile, elf: Path, out: Path, count_window, count_function,
                 count_range, count_marks=None) -> list[str]:
    """The plugin's ``out=``/``start=``/``stop=``/``lo=``/``hi=``/``mark=`` arguments (symbol
    addresses)."""
    args = [f"out={out}"]
    syms = symbols(p, elf)
    if count_marks and count_marks in syms:
        args.append(f"mark={syms[count_marks][0]:#x}")
    if count_window and count_window[0] in syms and count_window[1] in syms:
        args += [f"start={syms[count_window[0]][0]:#x}",
                 f"stop={syms[count_window[1]][0]:#x}"]
    elif count_window and count_window != ("plat_count_begin", "plat_count_end"):
        raise RunError(f"count_window symbols {count_window} not found in {elf.name}")
    if count_function:
        if count_function not in syms:
            raise RunError(f"symbol {count_function!r} not found in {elf.name}")
        lo, size = syms[count_function]
        args += [f"lo={lo:#x}", f"hi={lo + size:#x}"]
    elif count_range:
        try:
            lo, hi = syms[count_range[0]][0], syms[count_range[1]][0]
        except KeyError as e:
            raise RunError(f"symbol {e.args[0]!r} not found in {elf.name}") from None
        args += [f"lo={lo:#x}", f"hi={hi:#x}"]
    return args


def run(
    target: str | MCUProfile,
    elf: Path | str | BuildResult,
    timeout_s: float = 60,
    count_instructions: bool = True,
    *,
    count_window: tuple[str, str] | None = ("plat_count_begin", "plat_count_end"),
    count_function: str | None = None,
    count_range: tuple[str, str] | None = None,
    count_marks: str | None = "msf_block_boundary",
) -> RunResult:
    """Run ``elf`` for ``target``: under QEMU (semihosting) for MCU targets, natively for
    ``host`` (under callgrind when counting, unless built with sanitizers).

    Instruction counting (QEMU plugin; host: callgrind ``--toggle-collect=main``):
    ``instructions`` is the whole program; ``instructions_window`` sums the instructions
    from each call of ``count_window[0]`` to the next call of ``count_window[1]``
    (callees included; defaults to ``plat_count_begin``/``plat_count_end`` when the
    program calls them); ``instructions_range`` counts instructions whose PC lies inside
    ``count_function`` (static extent, callees excluded) or between the two symbols of
    ``count_range`` (e.g. ``("__rt_start", "__rt_end")`` for code in section ``.text.rt``);
    ``mark_deltas`` the instructions between consecutive calls of ``count_marks`` (when the
    program has that symbol: the generated runtime's block boundaries, one delta per block).

    Never hangs: after ``timeout_s`` the emulator's process group is killed and
    ``RunTimeout`` raised."""
    p = get_profile(target)
    if isinstance(elf, BuildResult):
        elf = elf.elf
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise RunError(f"no such ELF: {elf}")
    fam = p.family_spec
    assert fam is not None

    if p.is_host:
        return _run_host(p, elf, timeout_s, count_instructions)

    require_tools(p, run=True)
    with tempfile.TemporaryDirectory(prefix="msf-run-") as td:
        guest_out = Path(td) / "guest.txt"
        plug_out = Path(td) / "icount.txt"
        cmd = [p.qemu, "-M", p.machine, *p.qemu_args, "-nographic", "-monitor", "none",
               "-serial", "none"]
        if fam.semihosting == "chardev":
            cmd += ["-chardev", f"file,id=sh0,path={guest_out}",
                    "-semihosting-config", "enable=on,target=native,chardev=sh0"]
        else:
            cmd += ["-semihosting"]
        if count_instructions:
            args = _plugin_args(p, elf, plug_out, count_window, count_function, count_range,
                                count_marks)
            cmd += ["-plugin", ",".join([str(plugin_path()), *args])]
        cmd += ["-kernel", str(elf)]
        rc, out, err, wall = _communicate(cmd, timeout_s, cwd=td)
        if rc < 0:  # killed by a signal (SIGABRT on a QEMU lockup): shell convention
            rc = 128 - rc
        guest = guest_out.read_text(errors="replace") if guest_out.exists() else ""
        if fam.semihosting != "chardev":
            guest = out
        plug = plug_out.read_text() if plug_out.exists() else ""
    if rc not in (0, RC_QEMU_ABORT) and not guest and not plug and err.strip():
        first = err.strip().splitlines()[0]
        raise RunError(f"{p.qemu} failed (rc {rc}): {first}")
    mk = re.search(r"^marks=([\d,]*)$", plug, re.M)
    plug = re.sub(r"^marks=.*$", "", plug, flags=re.M)
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", plug)}
    deltas = None
    if mk is not None:
        totals = [int(v) for v in mk.group(1).split(",") if v]
        deltas = [b - a for a, b in zip(totals, totals[1:])]
    reports = _parse_reports(guest)
    windows = counts.get("windows", 0)
    return RunResult(
        target=p.name,
        exit_code=rc,
        stdout=guest,
        reports=reports,
        instructions=counts.get("insns_total") if count_instructions else None,
        instructions_window=counts.get("insns_window") if windows else None,
        instructions_range=counts.get("insns_in_range") if (count_function or count_range) else None,
        windows=windows,
        stack_hwm=reports.get("stack_hwm_bytes"),
        wall_seconds=wall,
        status=_status(rc),
        command=cmd,
        stderr=err,
        mark_deltas=deltas,
    )
