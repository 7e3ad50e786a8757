#!/usr/bin/env python3
"""msfopt RAM vs TensorFlow Lite Micro's arena, as a markdown table.

For each model (every .tflite in ../shared/models beside the checkout, plus any given on the
command line):

* TFLM arena, from ``print_allocations()`` of the PyPI tflite-micro interpreter: its *head*
  (the non-persistent part: activations including the input and output tensors, and kernel
  scratch -- the part a plan can shrink, so the headline ratio uses it) and its *total* (head +
  TFLM's persistent bookkeeping, second);
* msfopt RAM at F = 1.0 (the minimum-RAM plan without recomputation) and at the minimum-RAM
  plan: the generated code's one static arena with the input image in it (``io="arena"``) and
  without it (``io="external"``: input and output live in the caller's buffers);
* reduction factors TFLM head / msfopt arena (input included; the headline) and TFLM total /
  msfopt arena, MACs and overhead factor F;
* msfopt's side measured, not only predicted: the io=arena plans built with GCC and run under
  QEMU (``--qemu TARGET``, default cortex-m4 when arm-none-eabi-gcc is on PATH; ``--qemu none``
  skips) on one random input, checked bit-exact against tflite-micro, with the measured RAM
  (.data + .bss, i.e. arena and runtime statics, plus the painted stack high-water mark).

Models that msfopt cannot import are listed with the reason instead of a row; a plan whose
weights or arena do not fit the QEMU target's memory map runs on its larger map
(``msfopt.mcu.larger_map``: the same code), named in its cell.

Usage: python scripts/vs_tflm.py [MODEL.tflite ...] [--qemu cortex-m4|none] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from msfopt.importers import UnsupportedModelError
from msfopt.ir import IRError

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"


def _plans(net, io):
    from msfopt.solver import solve
    zero = solve(net, objective="ram", max_overhead=1.0, io=io, check=False)
    low = solve(net, objective="ram", io=io, check=False)
    return zero, low


def measure(path: Path, qemu: str | None, workdir: Path) -> dict:
    from msfopt.importers.tflite_import import load_tflite
    from msfopt.tflm_ref import tflm_allocations
    net = load_tflite(path)
    alloc = tflm_allocations(path)
    row = {"model": path.stem, "tflm_arena": alloc["total"], "tflm_head": alloc["head"],
           "input_bytes": net.tensor_bytes(0), "vanilla_macs": net.vanilla_macs}
    for io in ("arena", "external"):
        zero, low = _plans(net, io)
        for tag, plan in (("f1", zero), ("min", low)):
            row[f"{tag}_{io}"] = plan.arena_bytes
            if io == "arena":
                row[f"{tag}_macs"] = plan.macs
                row[f"{tag}_F"] = plan.mac_overhead
                row[f"{tag}_blocks"] = [(b.first_layer, b.last_layer, b.mode, b.tile)
                                        for b in plan.blocks]
    if qemu:
        from msfopt.errors import BuildError, InputError
        from msfopt.mcu import larger_map
        from msfopt.mcu_runtime.codegen import generate
        from msfopt.mcu_runtime.mcurun import expected_reference, run_target
        from msfopt.mcu_runtime.mcurun import deterministic_input
        x = deterministic_input(net, seed=0)
        for tag in ("f1", "min"):
            gen = generate(net, row[f"{tag}_blocks"], workdir / f"{path.stem}-{tag}", io="arena")
            want = expected_reference(gen, net, x, str(path))   # tflite-micro, every output
            t0 = time.perf_counter()
            try:
                r, where = run_target(gen, qemu, x, want), qemu
            except BuildError as exc:
                if "does not fit" not in str(exc):
                    raise
                try:   # the same code on the target's QEMU machine with a larger memory map
                    big = larger_map(qemu)
                except InputError:
                    row[f"{tag}_qemu"] = {"error": f"does not fit {qemu}"}
                    continue
                r, where = run_target(gen, big, x, want), big.name
            row[f"{tag}_qemu"] = {"bit_exact": r.bit_exact, "static_ram": r.static_ram,
                                  "stack_hwm": r.stack_hwm, "total_ram": r.total_ram,
                                  "instructions": r.instructions, "target": where,
                                  "seconds": round(time.perf_counter() - t0, 1)}
    return row


def _kb(n) -> str:
    return f"{n:,}"


def table(rows: list[dict], qemu: str | None) -> str:
    head = ("| model | TFLM head / total | msfopt F=1.0 (in / ex input) | × vs TFLM head (total) | "
            "msfopt min-RAM (in / ex input) | × vs TFLM head (total) | MACs unfused | MACs min-RAM "
            "| F min-RAM |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    if qemu:
        head += f" measured on {qemu} F=1.0 / min-RAM (static + stack) |"
        sep += "---:|"
    out = [head, sep]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | not imported: {r['error']} |" + " |" * 7)
            continue
        t, h = r["tflm_arena"], r["tflm_head"]
        line = (f"| {r['model']} | {_kb(h)} / {_kb(t)} | {_kb(r['f1_arena'])} / "
                f"{_kb(r['f1_external'])} | {h / r['f1_arena']:.2f} ({t / r['f1_arena']:.2f}) | "
                f"{_kb(r['min_arena'])} / {_kb(r['min_external'])} | {h / r['min_arena']:.2f} "
                f"({t / r['min_arena']:.2f}) | {_kb(r['vanilla_macs'])} | {_kb(r['min_macs'])} | "
                f"{r['min_F']:.3f} |")
        if qemu:
            cells = []
            for tag in ("f1", "min"):
                q = r.get(f"{tag}_qemu")
                if q is None:
                    cells.append("-")
                elif "error" in q:
                    cells.append(q["error"])
                else:
                    ok = "" if q["bit_exact"] else " (NOT bit-exact)"
                    where = "" if q["target"] == qemu else f" on {q['target']}"
                    cells.append(f"{_kb(q['total_ram'])} ({_kb(q['static_ram'])} + "
                                 f"{_kb(q['stack_hwm'])}){ok}{where}")
            line += " " + " / ".join(cells) + " |"
        out.append(line)
    out.append("")
    out.append("Bytes. \"in\": io=arena, the input image lives in msfopt's arena (as in TFLM's); "
               "\"ex\": io=external, input and output in the caller's buffers. × = TFLM head (its "
               "activations + scratch, input and output included) / msfopt arena with the input "
               "included; in brackets TFLM's total (head + persistent bookkeeping) / the same. MACs as msfopt counts them (pool taps "
               "included). F = MACs of the plan / MACs of the "
               "unfused network (F=1.0 plans have F = 1 by construction).")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="extra .tflite files")
    ap.add_argument("--qemu", metavar="TARGET", default=None,
                    help="build + run the plans on this QEMU target and report measured RAM "
                    "(default cortex-m4 when arm-none-eabi-gcc is on PATH; 'none' skips)")
    ap.add_argument("--json", type=Path, help="write the raw figures here")
    ap.add_argument("--no-shared", action="store_true",
                    help="do not include the models of ../shared/models")
    args = ap.parse_args(argv)
    if args.qemu is None:
        import shutil
        args.qemu = "cortex-m4" if shutil.which("arm-none-eabi-gcc") else None
    elif args.qemu == "none":
        args.qemu = None
    paths = [] if args.no_shared else sorted(MODELS.glob("*.tflite")) if MODELS.exists() else []
    paths += list(args.models)
    if not paths:
        print(f"no models: {MODELS} is absent and none given", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs_tflm_") as td:
        for p in paths:
            t0 = time.perf_counter()
            try:
                rows.append(measure(p, args.qemu, Path(td)))
            except (UnsupportedModelError, IRError) as exc:   # not importable yet: say why
                rows.append({"model": p.stem, "error": str(exc).splitlines()[0][:160]})
            print(f"# {p.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(table(rows, args.qemu))
    print(f"(msfopt side measured on {args.qemu})" if args.qemu
          else "(msfopt side predicted; no QEMU run)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
