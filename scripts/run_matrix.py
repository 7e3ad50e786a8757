#!/usr/bin/env python3
"""Run matrix: models x MCU targets x RAM budgets -> predicted vs measured RAM and latency.

For every (model, target, budget) the planner makes a plan with the target's profile
(``--mcu``: its RAM minus stack reserve, its calibrated cycle model), the code generator
writes it, the harness cross-builds it and QEMU runs it on a deterministic input.  Each row
records: bit-exactness against the reference, predicted vs measured arena (must be equal),
.data+.bss, painted stack high-water mark, total measured RAM vs the target's RAM, and the
predicted instructions ("cycles" of the calibrated model) vs the instructions QEMU counted in
``msf_model_run``.

    python scripts/run_matrix.py                  # full matrix -> build/matrix/{matrix.md,json,png}
    python scripts/run_matrix.py --quick          # CI subset
    python scripts/run_matrix.py --targets cortex-m4,rv32imac --models mcunetv2-vww5

Budgets: ``min`` (the minimum-RAM plan), ``2x`` (fastest plan within 2x the minimum RAM) and
``max`` (fastest plan within everything the target offers).  Zoo models run where their
weights fit in flash (cortex-m0 has 256 KiB of flash; xtensa-lx106 copies .rodata to its 80 KiB
DRAM), small models built here (through ONNX) run everywhere.  MLPerf Tiny VWW ("vww", from
``../shared/models`` when the folder is there; compared with tflite-micro on its file) runs on
the zoo's targets, so every execution mode of a real network's plans is in the matrix.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from msfopt.ir import ADD, AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, Layer, Network, window_layer  # noqa: E402

from msfopt.modes import DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES  # noqa: E402

#: execution modes searched (default: every mode the optimizer chooses from; --modes narrows)
MODES = FUSED_MODES
ZOO = ["mcunetv2-vww5", "mbv2-w0.35", "mcunet-320k"]
SMALL = ["tiny-mbnet", "tiny-convpool"]
#: real models from ../shared/models (run where the folder exists, on the zoo's targets), with
#: their original file as the reference's source (tflite-micro for .tflite)
SHARED_DIR = ROOT.parent / "shared" / "models"
SHARED = {"vww": SHARED_DIR / "mlperf_tiny_vww_96_int8.tflite"}
TARGETS = ["cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "rv32imac", "sifive_e",
           "xtensa-lx106"]
BUDGETS = ["min", "2x", "max"]
# where the zoo's weights (0.4-1.1 MB) fit in flash
ZOO_TARGETS = {"cortex-m3", "cortex-m4", "cortex-m7", "rv32imac", "sifive_e"}
# expensive soft-float cores: zoo subset only
ZOO_LIMITED = {"cortex-m3": ["mcunetv2-vww5"], "cortex-m7": ["mcunetv2-vww5"],
               "sifive_e": ["mcunetv2-vww5", "mbv2-w0.35"]}
QUICK = [("mcunetv2-vww5", "cortex-m4", "min"), ("mcunetv2-vww5", "rv32imac", "max"),
         ("mcunetv2-vww5", "sifive_e", "min"), ("tiny-mbnet", "cortex-m0", "max"),
         ("tiny-mbnet", "xtensa-lx106", "min"), ("tiny-convpool", "cortex-m0", "min"),
         ("tiny-convpool", "xtensa-lx106", "max")]


# --------------------------------------------------------------------------- small models
def _onnx_roundtrip(net: Network, seed: int) -> Network:
    """IR -> weights -> ONNX -> importer: the network a user would get from an .onnx file."""
    from msfopt.export_onnx import to_onnx
    from msfopt.importers.onnx_import import load_onnx
    from msfopt.weights import init_weights
    return load_onnx(to_onnx(init_weights(net, seed=seed), mode="int8"), name=net.name)


def small_model(name: str) -> Network:
    W = window_layer
    if name == "tiny-mbnet":       # 32x32x3 MBConv net: stem, residual MBConv, GAP, dense
        l = [W(CONV, (32, 32, 3), 8, 3, 2, 1, act="relu6")]                 # 16x16x8
        l.append(W(DW, l[-1].out_shape, None, 3, 1, 1, act="relu6"))
        l.append(W(CONV, l[-1].out_shape, 8, 1, 1, 0))                      # t3 16x16x8
        l.append(W(CONV, l[-1].out_shape, 24, 1, 1, 0, act="relu6"))
        l.append(W(DW, l[-1].out_shape, None, 3, 1, 1, act="relu6"))
        l.append(W(CONV, l[-1].out_shape, 8, 1, 1, 0))                      # t6
        l.append(Layer(op=ADD, in_shape=(16, 16, 8), out_shape=(16, 16, 8), srcs=(6, 3)))
        l.append(W(CONV, l[-1].out_shape, 32, 1, 1, 0, act="relu6"))
        l.append(W(DW, l[-1].out_shape, None, 5, 2, 2, act="relu6"))       # 8x8x32
        l.append(W(CONV, l[-1].out_shape, 16, 1, 1, 0))
        l.append(W(CONV, l[-1].out_shape, 48, 1, 1, 0, act="relu6"))
        l.append(W(DW, l[-1].out_shape, None, 3, 2, 1, act="relu6"))        # 4x4x48
        l.append(W(CONV, l[-1].out_shape, 24, 1, 1, 0))
        l.append(Layer(op=GAP, in_shape=(4, 4, 24), out_shape=(1, 1, 24)))
        l.append(Layer(op=DENSE, in_shape=(1, 1, 24), out_shape=(1, 1, 10)))
        return _onnx_roundtrip(Network(name, (32, 32, 3), l).validate(), seed=11)
    if name == "tiny-convpool":    # 28x28x1 VGG-ish: conv3x3 + maxpool stages, GAP, dense
        l = [W(CONV, (28, 28, 1), 8, 3, 1, 1, act="relu")]
        l.append(W(CONV, l[-1].out_shape, 8, 3, 1, 1, act="relu"))
        l.append(W(MAXPOOL, l[-1].out_shape, None, 2, 2, 0))                 # 14x14x8
        l.append(W(CONV, l[-1].out_shape, 16, 3, 1, 1, act="relu"))
        l.append(W(AVGPOOL, l[-1].out_shape, None, 2, 2, 0))                 # 7x7x16
        l.append(W(CONV, l[-1].out_shape, 24, 3, 1, 1, act="relu"))
        l.append(Layer(op=GAP, in_shape=(7, 7, 24), out_shape=(1, 1, 24)))
        l.append(Layer(op=DENSE, in_shape=(1, 1, 24), out_shape=(1, 1, 10)))
        return _onnx_roundtrip(Network(name, (28, 28, 1), l).validate(), seed=12)
    raise KeyError(name)


def load(name: str) -> Network:
    from msfopt.models import load_model, network_with_weights
    if name in SMALL:
        return small_model(name)
    if name in SHARED:
        return load_model(str(SHARED[name]))
    return network_with_weights(name, seed=0)


# --------------------------------------------------------------------------- one cell
def plan_for(net: Network, target: str, budget: str, io: str = "external", modes=None):
    """The plan of one matrix cell (None: no plan within the target's RAM)."""
    from msfopt.errors import InfeasibleError
    from msfopt.mcu import get_profile
    from msfopt.solver import solve
    prof = get_profile(target)
    kw = dict(io=io, mcu=target, check=False, modes=MODES if modes is None else modes,
              tiles=DEFAULT_TILES, patches=DEFAULT_PATCHES)
    try:
        pmin = solve(net, objective="ram", **kw)
    except InfeasibleError:
        return None
    if budget == "min":
        return pmin
    cap = prof.ram_bytes
    if budget == "2x":
        cap = min(cap, 2 * pmin.arena_bytes) if cap else 2 * pmin.arena_bytes
    return solve(net, objective="latency", ram=cap, **kw)


def predicted_cycles(net, gen, target: str) -> int:
    """The calibrated model's instructions of the generated plan (every term of the target's
    [targets.*.cycles] table, msfopt.cycles.CycleModel.from_table)."""
    from msfopt.mcu import get_profile
    cm = get_profile(target).cycle_model(gen.rq)
    return int(sum(cm.cycles(net, s) for s in gen.schedules))


def run_cell(model: str, target: str, budget: str, work: Path, nets: dict,
             modes=None) -> dict:
    from msfopt.errors import BuildError
    from msfopt.mcu import get_profile
    from msfopt.mcu_runtime.mcurun import run_model
    t0 = time.perf_counter()
    net = nets[model]
    prof = get_profile(target)
    row = {"model": model, "target": target, "budget": budget,
           "family": prof.cycles.get("family", target), "ram_size": prof.ram_size}
    plan = plan_for(net, target, budget, modes=modes)
    if plan is None:
        row.update(status="no plan", note=f"no plan within {prof.ram_bytes:,} B")
        return row
    blocks = [(b.first_layer, b.last_layer, b.mode, b.tile) for b in plan.blocks]
    row["arena_pred"] = int(plan.arena_bytes)
    row["blocks"] = len(blocks)
    row["modes"] = sorted({b.mode for b in plan.blocks})
    try:
        gen, r = run_model(net, blocks, target, work / f"{model}-{target}-{budget}",
                           io="external", seed=1,
                           source=str(SHARED[model]) if model in SHARED else None)
    except BuildError as exc:
        msg = str(exc)
        row.update(status="does not fit" if "does not fit" in msg else "build error", note=msg,
                   seconds=time.perf_counter() - t0)
        return row
    pred = predicted_cycles(net, gen, target)
    row.update(status="ok" if r.bit_exact else "MISMATCH", bit_exact=r.bit_exact,
               arena=r.arena_bytes, static=r.static_ram, stack_hwm=r.stack_hwm,
               stack_reserved=r.stack_reserved, total_ram=r.total_ram, flash=r.flash,
               weights=gen.weight_bytes, pred_cycles=pred, instructions=r.instructions,
               err=(pred - r.instructions) / r.instructions if r.instructions else None,
               seconds=round(time.perf_counter() - t0, 1))
    return row


# --------------------------------------------------------------------------- report
def cells(targets, models, budgets, quick: bool):
    if quick:
        return [c for c in QUICK if c[1] in targets and c[0] in models and c[2] in budgets]
    out = []
    for t in targets:
        for m in models:
            big = m in ZOO or m in SHARED
            if m in ZOO and (t not in ZOO_TARGETS or m not in ZOO_LIMITED.get(t, ZOO)):
                continue
            if m in SHARED and (t not in ZOO_TARGETS or t in ZOO_LIMITED):
                continue
            for b in budgets:
                if t == "sifive_e" and big and b != "min":
                    continue   # 16 KiB: only the minimum-RAM plan can fit
                out.append((m, t, b))
    return out


def markdown(rows: list[dict]) -> str:
    hdr = ("| model | target | budget | modes | bit-exact | arena pred / meas (B) | .data+.bss "
           "| stack HWM | total RAM / target RAM | pred. insns | meas. insns | err |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        if r["status"] in ("no plan", "does not fit", "build error"):
            lines.append(f"| {r['model']} | {r['target']} | {r['budget']} | "
                         f"{','.join(r.get('modes', []))} | {r['status']} "
                         f"| {r.get('arena_pred', '-')} | | | | | | {r['note'][:140]} |")
            continue
        lines.append(
            f"| {r['model']} | {r['target']} | {r['budget']} | {','.join(r.get('modes', []))} "
            f"| {'yes' if r['bit_exact'] else 'NO'} "
            f"| {r['arena_pred']:,} / {r['arena']:,} | {r['static']:,} | {r['stack_hwm']:,} "
            f"| {r['total_ram']:,} / {r['ram_size']:,} | {r['pred_cycles']:,} "
            f"| {r['instructions']:,} | {r['err']:+.1%} |")
    fam: dict[str, list[float]] = {}
    for r in rows:
        if r.get("err") is not None:
            fam.setdefault(r["family"], []).append(abs(r["err"]))
    summ = ["| family | runs | median abs err | max abs err |", "|---|---|---|---|"]
    for f, e in sorted(fam.items()):
        summ.append(f"| {f} | {len(e)} | {np.median(e):.1%} | {max(e):.1%} |")
    return hdr + "\n".join(lines) + "\n\n" + "\n".join(summ) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r.get("instructions")]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    fams = sorted({r["family"] for r in ok})
    for f in fams:
        rr = [r for r in ok if r["family"] == f]
        a1.scatter([r["instructions"] for r in rr], [r["pred_cycles"] for r in rr], label=f, s=18)
        a2.scatter([r["total_ram"] for r in rr], [r["arena_pred"] for r in rr], label=f, s=18)
    lo = min(r["instructions"] for r in ok) / 2
    hi = max(r["instructions"] for r in ok) * 2
    a1.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    a1.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15)
    a1.set(xscale="log", yscale="log", xlabel="measured instructions (QEMU)",
           ylabel="predicted (calibrated model)", title="latency: predicted vs measured (±10%)")
    a1.legend(fontsize=8)
    lo2 = min(r["arena_pred"] for r in ok) / 2
    hi2 = max(r["total_ram"] for r in ok) * 2
    a2.plot([lo2, hi2], [lo2, hi2], "k--", lw=0.8)
    a2.set(xscale="log", yscale="log", xlabel="measured RAM: .data+.bss + painted stack (B)",
           ylabel="predicted arena (B)", title="RAM: plan's arena vs measured total")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--models", default=",".join(
        ZOO + SMALL + [m for m, f in SHARED.items() if f.exists()]))
    ap.add_argument("--budgets", default=",".join(BUDGETS))
    ap.add_argument("--quick", action="store_true", help="the CI subset")
    ap.add_argument("--modes", default=",".join(MODES),
                    help="execution modes the plans may use (default: all)")
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "build" / "matrix"))
    ap.add_argument("--work", help="build directory (default: a temporary one)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work or tempfile.mkdtemp(prefix="msf-matrix-"))
    todo = cells(a.targets.split(","), a.models.split(","), a.budgets.split(","), a.quick)
    t0 = time.perf_counter()
    nets = {m: load(m) for m in sorted({c[0] for c in todo})}
    print(f"{len(todo)} runs")

    def one(c):
        r = run_cell(*c, work, nets, modes=tuple(m for m in a.modes.split(",") if m))
        e = f"{r['err']:+.1%}" if r.get("err") is not None else r["status"]
        print(f"  {c[0]:14s} {c[1]:13s} {c[2]:4s} {e:>8s}  {r.get('seconds', 0):.0f}s", flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        rows = list(ex.map(one, todo))
    (out / "matrix.json").write_text(json.dumps(rows, indent=1))
    md = markdown(rows)
    (out / "matrix.md").write_text(md)
    try:
        plot(rows, out / "matrix.png")
    except Exception as exc:  # plotting is optional
        print(f"plot skipped: {exc}")
    print(md)
    print(f"wrote {out}/matrix.md, matrix.json, matrix.png in {time.perf_counter() - t0:.0f} s")
    bad = [r for r in rows if r["status"] in ("MISMATCH", "build error") or
           (r.get("arena") is not None and r["arena"] != r["arena_pred"]) or
           (r.get("total_ram") is not None and r["ram_size"] and r["total_ram"] > r["ram_size"])]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
