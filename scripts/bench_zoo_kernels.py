#!/usr/bin/env python3
"""Instructions per MAC of the zoo models (mbv2-w0.35, mcunetv2-vww5, mcunet-320k), unfused,
with the fast int8 kernels and with the reference loops ("today": MSF_FAST_KERNELS 0).

Each cell generates the model (``msfopt.codegen``, its seeded weights), cross-builds it for the
target and runs it under QEMU with the project's counting plugin (instructions inside
msf_model_run, as scripts/bench_kernels.py counts them); every run's output is checked
bit-exact against the reference by the image itself, a mismatch aborts the benchmark.  The
reference-loop build is the same generated code with ``#define MSF_FAST_KERNELS 0`` appended to
the model's msf_config.h.  Targets (cortex-m4: <= 3.0 instr/MAC; cortex-m0 / rv32imac: >= 2.5x
fewer than the reference loops) are printed next to the figures; a model whose weights do not
fit the target's flash is reported as such.

Usage: python scripts/bench_zoo_kernels.py [--models mbv2-w0.35,...] [--targets cortex-m4,...]
       [--no-ref]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msfopt.errors import MsfoptError  # noqa: E402

ZOO = ["mbv2-w0.35", "mcunetv2-vww5", "mcunet-320k"]


def run_cell(net, target: str, work: Path, fast: bool, rq: str | None = None):
    """Instructions of one unfused run (None: the build does not fit the target)."""
    from msfopt.mcu_runtime.codegen import generate
    from msfopt.mcu_runtime.mcurun import (default_rq, deterministic_input,
                                           expected_reference, run_target)
    blocks = [(i, i, "unfused", 0) for i in range(net.n_layers)]
    gen = generate(net, blocks, work, io="external", rq=rq or default_rq(target))
    if not fast:
        cfg = Path(gen.out_dir) / "msf_config.h"
        cfg.write_text(cfg.read_text() + "\n#define MSF_FAST_KERNELS 0\n")
    x = deterministic_input(net, 1)
    r = run_target(gen, target, x, expected_reference(gen, net, x, None), timeout_s=1200)
    if not r.bit_exact:
        raise SystemExit(f"{target} {net.name} fast={fast}: {r.mismatches} mismatches")
    return r.instructions


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--targets", default="cortex-m4,cortex-m0,rv32imac")
    ap.add_argument("--no-ref", action="store_true", help="fast kernels only")
    ap.add_argument("--rq", choices=["float", "fixed"],
                    help="requantisation to generate (default: the model's, fixed on "
                         "integer-only cores)")
    a = ap.parse_args(argv)
    from msfopt.models import network_with_weights
    rows = []
    print(f"{'model':15s} {'target':10s} {'MACs':>12s} {'fast instr':>14s} {'instr/MAC':>9s} "
          f"{'ref instr':>14s} {'ref/MAC':>8s} {'speed-up':>8s}  target")
    for model in a.models.split(","):
        net = network_with_weights(model, seed=0)
        macs = sum(L.macs for L in net.layers)
        for target in a.targets.split(","):
            with tempfile.TemporaryDirectory() as td:
                res = {}
                for fast in ([True] if a.no_ref else [True, False]):
                    try:
                        res[fast] = run_cell(net, target, Path(td) / f"g{int(fast)}", fast, a.rq)
                    except MsfoptError as exc:
                        res[fast] = None
                        print(f"  {model} {target}: {str(exc).splitlines()[0][:140]}")
            f, r = res.get(True), res.get(False)
            goal = "<= 3.0 instr/MAC" if target == "cortex-m4" else ">= 2.5x vs ref"
            fs = f"{f:14,}" if f else f"{'does not fit':>14s}"
            rs = f"{r:14,}" if r else f"{'-':>14s}"
            sp = f"{r / f:7.2f}x" if f and r else f"{'-':>8s}"
            print(f"{model:15s} {target:10s} {macs:12,} {fs} "
                  f"{(f / macs if f else 0):9.2f} {rs} {(r / macs if r else 0):8.2f} {sp}  {goal}",
                  flush=True)
            rows.append((model, target, macs, f, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
