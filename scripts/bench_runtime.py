#!/usr/bin/env python3
"""Host instructions per MAC of the generated C runtime (valgrind callgrind, counted inside
msf_model_run only) for the unfused, zero-recompute and minimum-RAM plans of the zoo models.

Usage: python scripts/bench_runtime.py [--models mcunetv2-vww5,...] [--io external]
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from msfopt import zoo
from msfopt.dag import build_dag
from msfopt.models import network_with_weights
from msfopt.solver import solve
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host


def callgrind_ir(exe: Path, x: np.ndarray, work: Path) -> int:
    fin, fout, cg = work / "in.bin", work / "out.bin", work / "cg.out"
    fin.write_bytes(x.tobytes())
    subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=msf_model_run",
                    f"--callgrind-out-file={cg}", str(exe), str(fin), str(fout)],
                   check=True, capture_output=True, timeout=3600)
    m = re.search(r"^(?:summary|totals):\s+(\d+)", cg.read_text(), re.M)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=",".join(zoo.names()[:3]))
    ap.add_argument("--io", default="external", choices=["arena", "external"])
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found (apt-get install valgrind, or scripts/install_toolchains.sh)")
    con = Console()
    t = Table(title=f"host (x86-64, gcc -O2) instructions inside msf_model_run, io={args.io}")
    for c in ("model", "plan", "peak RAM", "MACs", "F", "instructions", "instr/MAC", "vs unfused"):
        t.add_column(c, justify="left" if c in ("model", "plan") else "right")
    for model in args.models.split(","):
        net = network_with_weights(model, "int8", seed=0)
        dag = build_dag(net, io=args.io)
        van = [(int(dag.src[e]), int(dag.dst[e]) - 1, "unfused", 0) for e in dag.vanilla_path()]
        plans = {"unfused": (van, dag.totals(dag.vanilla_path())["peak"], net.vanilla_macs)}
        for name, kw in (("zero-recompute", {"max_overhead": 1.0}), ("min-RAM", {})):
            p = solve(net, objective="ram", io=args.io, dag=dag, check=False, **kw)
            plans[name] = (p.blocks, p.peak_ram_bytes, p.macs)
        x = np.random.default_rng(1).integers(-128, 128, size=net.input_shape, dtype=np.int8)
        base = None
        for name, (blocks, peak, macs) in plans.items():
            with tempfile.TemporaryDirectory() as td:
                gen = generate(net, blocks, Path(td) / "g", io=args.io)
                ir = callgrind_ir(build_host(gen), x, Path(td))
            base = base or ir
            t.add_row(model, name, f"{peak:,}", f"{macs:,}", f"{macs / net.vanilla_macs:.3f}",
                      f"{ir:,}", f"{ir / macs:.2f}", f"{ir / base:.2f}x")
            con.print(f"{model} {name}: {ir:,} instructions, {ir / macs:.2f} per MAC")
    con.print(t)


if __name__ == "__main__":
    main()
