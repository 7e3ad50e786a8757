"""Command line check of the build/run harness on each MCU profile.

    python -m msfopt.mcu_runtime.selftest list            # profiles and tool availability
    python -m msfopt.mcu_runtime.selftest run [TARGET...]  # build + run the conv self-test

``run`` cross-builds ``mcu_runtime/harness/conv_test.c`` (an int8 3x3 convolution with a
checksum) for each target (default: every emulated target), runs it and prints the checksum,
instruction counts, stack high-water mark and static RAM; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Sequence

from msfopt.mcu import list_profiles

from .crossbuild import build
from .qemu import RunError, run
from .toolchain import BuildError, missing_tools

__all__ = ["harness_dir", "main"]


def harness_dir() -> Path:
    """The harness's own C test programs (conv_test.c, big_static.c, forever.c, stack_hog.c)."""
    return Path(__file__).resolve().parent / "harness"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m msfopt.mcu_runtime.selftest",
                                 description="msfopt MCU target harness")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list profiles and tool availability")
    st = sub.add_parser("run", help="build+run the conv self-test on targets")
    st.add_argument("targets", nargs="*")
    st.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    profiles = {p.name: p for p in list_profiles()}
    if a.cmd == "list":
        for n, p in sorted(profiles.items()):
            miss = missing_tools(p)
            print(f"{n:14s} {p.kind:6s} -> {p.target:13s} ram={p.ram_size:>8d} "
                  f"clock={p.clock_hz:>10d} {'ok' if not miss else 'missing: ' + ','.join(miss)}")
        return 0
    names = a.targets or [n for n, p in profiles.items() if p.kind == "target"]
    out = Path(a.out or tempfile.mkdtemp(prefix="msf-selftest-"))
    rc = 0
    for n in names:
        try:
            b = build(n, [harness_dir() / "conv_test.c"], [], out / n)
            r = run(n, b.elf)
            print(f"{n:14s} rc={r.exit_code} checksum={r.reports.get('checksum')} "
                  f"insns={r.instructions} window={r.instructions_window} "
                  f"stack_hwm={r.stack_hwm} ram_static={b.ram_used_static} "
                  f"build={b.seconds:.2f}s run={r.wall_seconds:.2f}s")
            rc |= r.exit_code != 0
        except (BuildError, RunError) as e:
            print(f"{n:14s} FAILED: {e}")
            rc = 1
    return rc


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
