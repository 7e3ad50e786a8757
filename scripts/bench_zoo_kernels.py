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
fit the target's flash is reported as such.  On cores without an FPU (cortex-m0/m3, rv32imac)
the fast kernels' float requantisation (ORT semantics, the zoo's default) is msf_s8_requant.h's
exact integer emulation, the reference loops keep libgcc's soft-float; ``--rq fixed`` compares
both sides on TFLM's fixed-point arithmetic instead.

``--functions`` adds, for the fast build, the instructions inside each kernel function (the
plugin's static PC range on that function, callees excluded, one QEMU run per function) and
the MACs of the layers each family serves: where a model's time goes.

``--larger-map`` runs each target's unchanged build on the larger QEMU memory map of
:func:`msfopt.mcu.larger_map` (cortex-m0: its ARMv6-M code on mps2-an386 with 4 MiB of code
and RAM, executing the same instructions as on the micro:bit), so the zoo's 0.4-1.1 MB of
weights fit where the stock profile's flash does not.

Usage: python scripts/bench_zoo_kernels.py [--models mbv2-w0.35,...] [--targets cortex-m4,...]
       [--no-ref] [--rq float|fixed] [--functions] [--larger-map]
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
# kernel functions per family (static PC ranges; a function not linked is skipped)
FUNCS = {
    "pointwise 1x1": ["msf_conv1x1_s8_run"],
    "conv kxk": ["msf_conv2d_s8", "conv_run_at", "conv_row_fast", "msf_convk_s8_run",
                 "msf_conv2d_s8_ref"],
    "depthwise": ["msf_dwconv2d_s8", "dw_flush", "dw_flush.part.0", "dw_run4_fixed",
                  "dw_run4_float", "dw33_vf", "dw32_vf", "dw23_vf", "dw22_vf", "dw33_lean",
                  "dw32_lean", "dw23_lean", "dw22_lean", "dw_run1_fixed", "dw_run1_float",
                  "msf_dwconv2d_s8_ref"],
    "requant out of line": ["msf_requant_s8", "msf_mbqm", "msf_srdhm", "msf_rdbpot"],
    "other ops": ["msf_avgpool_s8", "msf_gap_core_s8", "msf_dense_s8", "msf_add_s8"],
    "executor / copies": ["msf_run_block_mem", "run_region", "copy_bytes", "memcpy", "memset"],
}


def layer_family(layer) -> str:
    """The FUNCS family whose kernels run this layer (for the MACs column)."""
    from msfopt.ir import CONV, DW
    if layer.op == CONV:
        return "pointwise 1x1" if layer.kh == layer.kw == 1 and layer.groups == 1 else "conv kxk"
    return "depthwise" if layer.op == DW else "other ops"


def function_counts(target: str, build) -> dict[str, dict[str, int]]:
    """Instructions inside each FUNCS function of a finished build (one QEMU run each)."""
    from msfopt.mcu_runtime import qemu
    out: dict[str, dict[str, int]] = {}
    for fam, fns in FUNCS.items():
        for fn in fns:
            try:
                rr = qemu.run(target, build, timeout_s=1200, count_function=fn)
            except qemu.RunError:
                continue  # not linked in this build
            if rr.instructions_range:
                out.setdefault(fam, {})[fn] = rr.instructions_range
    return out


def run_cell(net, target: str, work: Path, fast: bool, rq: str | None = None,
             functions: bool = False):
    """Instructions of one unfused run (and, with ``functions``, the per-function counts)."""
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
        raise SystemExit(f"{getattr(target, 'name', target)} {net.name} fast={fast}: "
                         f"{r.mismatches} mismatches")
    if functions:
        return r.instructions, function_counts(target, r.build)
    return r.instructions


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--targets", default="cortex-m4,cortex-m0,rv32imac")
    ap.add_argument("--no-ref", action="store_true", help="fast kernels only")
    ap.add_argument("--rq", choices=["float", "fixed"],
                    help="requantisation to generate (default: the model's, fixed on "
                         "integer-only cores)")
    ap.add_argument("--functions", action="store_true",
                    help="per kernel function instructions of the fast build")
    ap.add_argument("--larger-map", action="store_true",
                    help="run on the targets' larger QEMU memory maps (msfopt.mcu.larger_map)")
    a = ap.parse_args(argv)
    from msfopt.models import network_with_weights
    rows = []
    print(f"{'model':15s} {'target':10s} {'MACs':>12s} {'fast instr':>14s} {'instr/MAC':>9s} "
          f"{'ref instr':>14s} {'ref/MAC':>8s} {'speed-up':>8s}  target")
    for model in a.models.split(","):
        net = network_with_weights(model, seed=0)
        macs = sum(L.macs for L in net.layers)
        for target in a.targets.split(","):
            if a.larger_map:
                from msfopt.mcu import larger_map
                target = larger_map(target)
            tname = target if isinstance(target, str) else target.name
            with tempfile.TemporaryDirectory() as td:
                res = {}
                why = "failed"
                for fast in ([True] if a.no_ref else [True, False]):
                    try:
                        res[fast] = run_cell(net, target, Path(td) / f"g{int(fast)}", fast, a.rq,
                                             a.functions and fast)
                    except MsfoptError as exc:
                        res[fast] = None
                        why = "does not fit" if "does not fit" in str(exc) else "failed"
                        print(f"  {model} {tname}: {str(exc).splitlines()[0][:140]}")
            f, r = res.get(True), res.get(False)
            per = None
            if isinstance(f, tuple):
                f, per = f
            goal = "<= 3.0 instr/MAC" if tname.startswith("cortex-m4") else ">= 2.5x vs ref"
            fs = f"{f:14,}" if f else f"{why:>14s}"
            rs = f"{r:14,}" if r else f"{'-':>14s}"
            sp = f"{r / f:7.2f}x" if f and r else f"{'-':>8s}"
            print(f"{model:15s} {tname:10s} {macs:12,} {fs} "
                  f"{(f / macs if f else 0):9.2f} {rs} {(r / macs if r else 0):8.2f} {sp}  {goal}",
                  flush=True)
            rows.append((model, tname, macs, f, r))
            if per is not None:
                fam_macs: dict[str, int] = {}
                for L in net.layers:
                    fam_macs[layer_family(L)] = fam_macs.get(layer_family(L), 0) + L.macs
                for fam, fns in per.items():
                    tot = sum(fns.values())
                    m = fam_macs.get(fam, 0)
                    ipm = f"{tot / m:6.2f}/MAC" if m and fam != "other ops" else " " * 10
                    print(f"    {fam:22s} {tot:14,} {100 * tot / f:5.1f}% {ipm}  " +
                          ", ".join(f"{k} {v:,}" for k, v in fns.items()), flush=True)
    from msfopt.mcu import get_profile
    emu = [t for t in a.targets.split(",") if not get_profile(t).fpu]
    if emu and (a.rq or "float") == "float":
        print(f"float requantisation on {', '.join(emu)} (no FPU): the integer emulation of "
              "msf_s8_requant.h in the fast kernels, libgcc soft-float in the reference loops")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
