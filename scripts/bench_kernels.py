#!/usr/bin/env python3
"""Executed guest instructions of the generated C runtime under QEMU (the project's counting
plugin), per layer type and for the whole network, side by side with ARM CMSIS-NN's figures of
../shared/reference/kernel_speed.md (MLPerf Tiny VWW, Cortex-M4, same build and counting).

Per layer type: one QEMU run per kernel function with the plugin's static PC range on that
function (callees excluded -- requantisation is inlined, so a kernel's own range is its whole
cost; out-of-line helpers are listed separately).  Whole network: the instructions inside
msf_model_run (plat_count_begin .. plat_count_end).  Every run's output is checked bit-exact
against the oracle (tflite-micro) by the image itself; a mismatch aborts the benchmark.

Usage: python scripts/bench_kernels.py [--model PATH] [--targets cortex-m4,cortex-m0,rv32imac]
       [--plans unfused,fastest] [--no-functions] [--function-plans unfused,min-ram]
"""
import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msfopt.errors import MsfoptError  # noqa: E402
from msfopt.ir import AVGPOOL, CONV, DENSE, DW, GAP  # noqa: E402
from msfopt.modes import FUSED_MODES  # noqa: E402
from msfopt.mcu_runtime import qemu  # noqa: E402
from msfopt.mcu_runtime.crossbuild import symbols  # noqa: E402
from msfopt.mcu import get_profile  # noqa: E402
from msfopt.mcu_runtime.mcurun import run_model  # noqa: E402
from msfopt.solver import solve  # noqa: E402

VWW = ROOT.parent / "shared" / "models" / "mlperf_tiny_vww_96_int8.tflite"

# kernel_speed.md, CMSIS-NN column (instructions, MACs) per layer type of VWW on cortex-m4
CMSIS = {
    "conv (stem 3x3 s2)": (3_042_971, 497_664),
    "depthwise": (5_174_166 + 1_280_304, 642_816 + 155_520),
    "pointwise 1x1": (14_574_120, 6_193_152),
    "average pool": (17_535, 2_304),
    "dense": (1_255, 512),
    "whole network": (24_091_584, 7_491_968),
}
# kernel functions (static PC ranges) attributed to each layer type
FUNCS = {
    "conv (stem 3x3 s2)": ["msf_convk_s8_run", "msf_conv2d_s8_ref", "stem_rqd"],
    # msf_conv2d_s8's own splitting into runs, for every conv layer (pointwise included): the
    # per-call cost of the fused modes' column calls shows here
    "conv dispatch (all convs)": ["msf_conv2d_s8", "conv_run_at", "conv_row_fast"],
    "depthwise": ["msf_dwconv2d_s8", "dw_flush", "msf_dwconv2d_s8_ref", "dw_run1_fixed",
                  "dw_run1_float", "dw_run4_fixed", "dw_run4_float", "dw33_vf", "dw32_vf",
                  "dw23_vf", "dw22_vf", "dw33_lean", "dw32_lean", "dw23_lean", "dw22_lean",
                  "dw_short_runs",
                  "dw_px33_fixed", "dw_px33_float", "dw_pxt_fixed", "dw_pxt_float"],
    # (DSP cores: the generated layers' short column / one-pixel calls out of line)
    "pointwise 1x1": ["msf_conv1x1_s8_run", "col_rqd_8", "col_rqd_16", "col_rqd_32",
                      "col_rqd_any", "dot14k_64", "dot14k_128", "dot14k_256", "dot14k_any"],
    "average pool": ["msf_avgpool_s8", "msf_gap_core_s8"],
    "dense": ["msf_dense_s8"],
    "requant out of line": ["msf_requant_s8", "msf_mbqm", "msf_srdhm", "msf_rdbpot"],
    "executor (fused flow, copies)": ["run_fused", "run_patches", "run_inplace", "run_region",
                                      "msf_run_block_mem", "copy_bytes", "flush_tile_row",
                                      "memcpy", "memset"],
}


def linked_copies(syms, fn: str) -> list[str]:
    """The ELF symbols of function ``fn``: itself and GCC's clones of it (``fn.isra.0``,
    ``fn.part.0``, ``fn.constprop.0``, ...), each counted over its own PC range."""
    return [s for s in syms if s == fn or s.startswith(fn + ".")]


def layer_type(layer) -> str | None:
    if layer.op == CONV:
        return "pointwise 1x1" if layer.kh == layer.kw == 1 and layer.groups == 1 else \
            "conv (stem 3x3 s2)"
    if layer.op == DW:
        return "depthwise"
    if layer.op in (AVGPOOL, GAP):
        return "average pool"
    if layer.op == DENSE:
        return "dense"
    return None


def plan_blocks(net, name: str):
    if name == "unfused":
        return [(i, i, "unfused", 0) for i in range(len(net.layers))]
    objective = {"fastest": "latency", "min-ram-zero-recompute": "ram", "min-ram": "ram"}[name]
    kw = {"max_overhead": 1.0} if name == "min-ram-zero-recompute" else {}
    p = solve(net, objective=objective, io="external", modes=FUSED_MODES, check=False, **kw)
    return [(b.first_layer, b.last_layer, b.mode, b.tile) for b in p.blocks]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(VWW))
    ap.add_argument("--targets", default="cortex-m4,cortex-m0,rv32imac")
    ap.add_argument("--plans", default="unfused,fastest")
    ap.add_argument("--no-functions", action="store_true",
                    help="whole-network totals only (no per-function runs)")
    ap.add_argument("--function-plans", default="unfused",
                    help="plans that get the per-layer-type (per kernel function) table")
    args = ap.parse_args()
    from msfopt.importers.tflite_import import load_tflite
    con = Console()
    try:
        net = load_tflite(args.model)
    except (MsfoptError, OSError) as exc:
        con.print(f"error: {exc}")
        return 2
    macs = {}
    for layer in net.layers:
        t = layer_type(layer)
        if t:
            macs[t] = macs.get(t, 0) + layer.macs
    total_macs = sum(layer.macs for layer in net.layers)
    totals = Table(title=f"{Path(args.model).name}: instructions inside msf_model_run")
    for c in ("target", "plan", "instructions", "instr/MAC", "vs CMSIS-NN (m4)"):
        totals.add_column(c, justify="left" if c in ("target", "plan") else "right")
    for target in args.targets.split(","):
        for plan in args.plans.split(","):
            with tempfile.TemporaryDirectory() as td:
                try:
                    gen, r = run_model(net, plan_blocks(net, plan), target, Path(td) / "g",
                                       io="external")
                except MsfoptError as exc:
                    con.print(f"{target} {plan}: {exc}")
                    totals.add_row(target, plan, "does not fit / fails", "-", "-")
                    continue
                if not r.bit_exact:
                    con.print(f"[red]{target} {plan}: {r.mismatches} mismatches vs {r.oracle}")
                    return 1
                n = r.instructions
                totals.add_row(target, plan, f"{n:,}", f"{n / total_macs:.2f}",
                               f"{n / CMSIS['whole network'][0]:.2f}x")
                con.print(f"{target} {plan}: {n:,} instructions ({n / total_macs:.2f}/MAC)")
                if args.no_functions or plan not in args.function_plans.split(","):
                    continue
                per = Table(title=f"{target}, {plan}: instructions per layer type "
                                  f"(kernel functions' own PC ranges)")
                for c in ("layer type", "MACs", "msfopt instr", "instr/MAC",
                          "CMSIS-NN instr/MAC (m4)", "ratio"):
                    per.add_column(c, justify="left" if c == "layer type" else "right")
                syms = symbols(get_profile(target), r.build.elf)
                for ltype, fns in FUNCS.items():
                    cnt = 0
                    for fn in fns:
                        for sym in linked_copies(syms, fn):   # none: not linked in this build
                            rr = qemu.run(target, r.build, timeout_s=600, count_function=sym)
                            cnt += rr.instructions_range or 0
                    m = macs.get(ltype, 0)
                    ref = CMSIS.get(ltype)
                    ipm = cnt / m if m else 0.0
                    per.add_row(ltype, f"{m:,}", f"{cnt:,}", f"{ipm:.2f}" if m else "-",
                                f"{ref[0] / ref[1]:.2f}" if ref else "-",
                                f"{ipm / (ref[0] / ref[1]):.2f}x" if ref and m else "-")
                con.print(per)
    con.print(totals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
