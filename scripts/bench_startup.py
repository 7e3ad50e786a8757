"""Whole-process time of a paper-model query, ``msfopt solve``, start-up included.

    .venv/bin/python scripts/bench_startup.py [--repeat 10] [-- solve ARGS...]

Runs ``python -m msfopt.cli solve mcunet-320k --cost-model msfcnn --ram 320k`` (or the given
arguments) ``--repeat`` times and prints the median and min wall time and the median user+sys CPU
time of the child (the figure that does not depend on other processes' load on a shared machine),
then the modules a heavy dependency would bring in that the query imported, and the largest
imports (``-X importtime``, cumulative, top level).

The children run with Python's bytecode cache written, as an installed package has it: a
``PYTHONDONTWRITEBYTECODE`` in the environment (this project's sandbox sets it) is dropped for
them, otherwise a fresh checkout recompiles msfopt's sources in every process (0.05-0.1 s).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

DEFAULT = ["solve", "mcunet-320k", "--cost-model", "msfcnn", "--ram", "320k"]
HEAVY = ("ortools", "pulp", "highspy", "pyscipopt", "pandas", "onnx", "onnxruntime", "rich",
         "matplotlib", "hypothesis", "tflite", "tensorflow", "scipy")
PROBE = ("import sys, io, contextlib\n"
         "from msfopt.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    rc = main(sys.argv[2:])\n"
         "heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(',')))\n"
         "print(rc, ' '.join(heavy) or '-')\n")


ENV = dict(os.environ)


def run_once(cmd) -> tuple[float, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return wall, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("args", nargs="*", help="msfopt arguments (default: %(default)s)")
    a = ap.parse_args()
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    args = a.args or DEFAULT
    cmd = [sys.executable, "-m", "msfopt.cli", *args]
    run_once(cmd)                                     # warm the file cache
    runs = [run_once(cmd) for _ in range(a.repeat)]
    walls = [w for w, _ in runs]
    cpus = [c for _, c in runs]
    print(f"msfopt {' '.join(args)}")
    print(f"  wall     median {statistics.median(walls):.3f} s   min {min(walls):.3f} s "
          f"({a.repeat} runs)")
    print(f"  user+sys median {statistics.median(cpus):.3f} s   min {min(cpus):.3f} s")
    bare = [run_once([sys.executable, "-c", "import numpy"]) for _ in range(3)]
    print(f"  for scale: python -c 'import numpy' wall {min(w for w, _ in bare):.3f} s, "
          f"user+sys {min(c for _, c in bare):.3f} s")
    out = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *args],
                         capture_output=True, text=True, env=ENV).stdout.split()
    print(f"  heavy packages imported: {' '.join(out[1:]) if len(out) > 1 else '?'}")
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "msfopt.cli", *args],
                       capture_output=True, text=True, env=ENV)
    rows = []
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2]
            if len(name) - len(name.lstrip()) == 1:    # top-level imports only
                rows.append((int(parts[1]), name.strip()))
    rows.sort(reverse=True)
    print("  largest top-level imports (cumulative ms): "
          + ", ".join(f"{n} {us / 1000:.0f}" for us, n in rows[:10]))


if __name__ == "__main__":
    main()
