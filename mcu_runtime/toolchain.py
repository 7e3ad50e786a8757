"""Toolchain discovery and invocation for an MCU profile (:class:`msfopt.mcu.MCUProfile`).

Which executables a profile needs (its GCC, the matching binutils, its QEMU, the host gcc that
builds the instruction-count plugin), whether they are on PATH, and one way to run a tool:
``run_tool`` raises :class:`ToolchainMissing` when the executable is absent and
:class:`BuildError` with the tool's one-line summary (e.g. "region `RAM' overflowed by 4968
bytes") when it fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from msfopt.mcu import MCUProfile, get_profile

__all__ = ["BuildError", "INSTALL_HINT", "ToolchainMissing", "binutil", "missing_tools",
           "require_tools", "run_tool", "summarise", "tool_available"]

INSTALL_HINT = "run scripts/install_toolchains.sh (as root) to install the toolchains"


class BuildError(RuntimeError):
    """Compilation or link failed. ``str(e)`` is a one-line summary; ``.output`` is the
    full compiler/linker output and ``.command`` the failing command."""

    def __init__(self, summary: str, output: str = "", command: Sequence[str] | None = None):
        super().__init__(summary)
        self.summary = summary
        self.output = output
        self.command = list(command) if command else []


class ToolchainMissing(BuildError):
    """A compiler, binutils or QEMU binary needed for the target is not installed."""


def binutil(p: MCUProfile, tool: str) -> str:
    """``size``/``nm``/``objdump`` matching the profile's compiler (``arm-none-eabi-size``...)."""
    if p.gcc.endswith("gcc"):
        return p.gcc[: -len("gcc")] + tool
    return tool


def missing_tools(target: str | MCUProfile, *, run: bool = True) -> list[str]:
    """Executables needed for ``target`` that are not on PATH (build tools, and with
    ``run=True`` the emulator; the host target needs valgrind only for counting)."""
    p = get_profile(target)
    need = [p.gcc, binutil(p, "size"), binutil(p, "nm")]
    if run and not p.is_host:
        need.append(p.qemu)
        need.append("gcc")  # to build the instruction-count plugin
    return [t for t in need if t and shutil.which(t) is None]


def tool_available(target: str | MCUProfile) -> bool:
    """True when everything needed to build *and run* for ``target`` is installed."""
    return not missing_tools(target)


def require_tools(p: MCUProfile, run: bool) -> None:
    """Raise :class:`ToolchainMissing` naming what is missing and how to install it."""
    miss = missing_tools(p, run=run)
    if miss:
        raise ToolchainMissing(f"{p.name}: missing {', '.join(miss)}; {INSTALL_HINT}")


_ERR_PATTERNS = (
    re.compile(r"region [`'\"]?\w+['\"]? overflowed by \d+ bytes"),
    re.compile(r"section [`'\"]?[\w.]+['\"]? will not fit in region [`'\"]?\w+['\"]?"),
    re.compile(r"undefined reference to [`'\"]?[\w.$]+['\"]?"),
    re.compile(r"\berror: .*"),
    re.compile(r"\bfatal error: .*"),
)


def summarise(output: str) -> str:
    """The one line of a compiler/linker output that says what went wrong."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pat in _ERR_PATTERNS:
        for ln in lines:
            m = pat.search(ln)
            if m:
                if pat is _ERR_PATTERNS[0]:
                    return m.group(0)
                return ln if "error" in m.group(0) else m.group(0)
    return lines[-1] if lines else "build failed (no output)"


def run_tool(cmd: list[str], commands: list[list[str]], timeout: float = 300.0, cwd=None) -> str:
    """Run one build tool (recorded in ``commands``); its stdout + stderr."""
    commands.append(cmd)
    try:
        cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, cwd=cwd)
    except FileNotFoundError as e:
        raise ToolchainMissing(f"{cmd[0]} not found; {INSTALL_HINT}", str(e), cmd) from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s", "", cmd) from None
    out = (cp.stdout or "") + (cp.stderr or "")
    if cp.returncode != 0:
        raise BuildError(summarise(out), out, cmd)
    return out
