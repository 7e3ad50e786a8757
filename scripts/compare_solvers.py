#!/usr/bin/env python3
"""Solver agreement grid: every ILP backend against exact graph search.

Grid: models (the zoo, plus any .onnx/.tflite paths given) x cost models x queries, where the
queries are the two objectives of the paper:
  * latency (P2): min latency (cycles under runtime, MACs under msfcnn) s.t. peak <= R, for every
    RAM budget R in --ram-budgets (default 16k ... 512k);
  * ram (P1): min peak RAM s.t. MACs <= F x vanilla MACs, for every F in --overheads.
Each query runs under every --io mode (arena, external, input-external for the runtime model).
A backend agrees when its (objective, tie-break, tie-break 2) triple equals graph search's, or
both say infeasible; every backend and the referee apply the same layout rule (plans whose arena
does not pack are excluded), as ``msfopt solve`` does.  Writes a CSV (one row per query x backend) and a markdown table, prints the agreement
count and median/max solve time per backend; --plot writes a PNG of solve time per backend.

Usage: python scripts/compare_solvers.py [MODEL.onnx ...] [--out-dir results] [--plot]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from msfopt import zoo
from msfopt.backends import ILP_BACKENDS
from msfopt.cli_solvers import agrees, run_backend
from msfopt.dag import build_dag
from msfopt.models import load_model
from msfopt.schedule import IO_MODES
from msfopt.solver import layout_acceptor, make_query
from msfopt.units import parse_overhead, parse_ram

RAM_BUDGETS = "16k,32k,64k,128k,256k,512k"
OVERHEADS = "1.1,1.2,1.3,1.4,1.5,1.6,inf"


def queries(dag, ram_budgets, overheads, objectives):
    out = []
    for obj in objectives:
        if obj in ("latency", "macs"):
            for r in ram_budgets:
                out.append((obj, f"peak<={r}", make_query(dag, obj, ram=r)))
        else:
            for f in overheads:
                out.append((obj, f"F<={f:g}", make_query(dag, "ram", max_overhead=f)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="extra .onnx/.tflite models (the zoo always runs)")
    ap.add_argument("--no-zoo", action="store_true", help="only the models given")
    ap.add_argument("--cost-models", default="msfcnn,runtime")
    ap.add_argument("--backends", default=",".join(ILP_BACKENDS))
    ap.add_argument("--objectives", default="latency,ram", help="latency, macs, ram")
    ap.add_argument("--io", default="arena", help="io modes (runtime model), comma-separated: "
                    + ", ".join(IO_MODES))
    ap.add_argument("--ram-budgets", default=RAM_BUDGETS)
    ap.add_argument("--overheads", default=OVERHEADS)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default="results", help="where the CSV/markdown/PNG go")
    ap.add_argument("--plot", action="store_true", help="write solve_times.png")
    args = ap.parse_args(argv)
    con = Console(highlight=False)
    backends = [b for b in args.backends.split(",") if b]
    models = ([] if args.no_zoo else zoo.names()) + list(args.models)
    ram_budgets = [parse_ram(r) for r in args.ram_budgets.split(",")]
    overheads = [parse_overhead(f) for f in args.overheads.split(",")]
    objectives = [o for o in args.objectives.split(",") if o]
    cms = [c for c in args.cost_models.split(",") if c]
    ios = [i for i in args.io.split(",") if i]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    jobs = []
    for m in models:
        net = load_model(m)
        for cm in cms:
            for io in (ios if cm == "runtime" else ["external"]):
                dag = build_dag(net, cost_model=cm, io=io)
                name = net.name if cm == "msfcnn" else f"{net.name} io={io}"
                for obj, label, q in queries(dag, ram_budgets, overheads, objectives):
                    if cm == "msfcnn" and obj == "macs" and "latency" in objectives:
                        continue  # the same query as latency under msfcnn
                    jobs.append((name, cm, dag, obj, label, q))

    rows = []
    per_query = []
    times = {b: [] for b in ["graph"] + backends}
    agree = {b: 0 for b in backends}
    t_start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=con) as prog:
        task = prog.add_task("grid", total=len(jobs) * len(backends))
        for name, cm, dag, obj, label, q in jobs:
            accept = layout_acceptor(dag)
            ref = run_backend(dag, q, "graph", args.time_limit, args.threads, accept)
            times["graph"].append(ref.seconds)
            cells = {}
            for b in backends:
                prog.update(task, description=f"{name} {cm} {obj} {label} {b}".ljust(48))
                a = run_backend(dag, q, b, args.time_limit, args.threads, accept)
                ok = agrees(a, ref)
                agree[b] += ok
                times[b].append(a.seconds)
                cells[b] = (ok, a)
                tot = dag.totals(a.path) if a.path else None
                rows.append({"model": name, "cost_model": cm, "objective": obj,
                             "constraint": label, "backend": b, "status": a.status,
                             "value": a.primary, "tiebreak": a.secondary,
                             "peak": tot and tot["peak"], "macs": tot and tot["macs"],
                             "cycles": tot and tot["cycles"], "seconds": round(a.seconds, 6),
                             "gap": a.gap, "graph_status": ref.status,
                             "graph_value": ref.primary, "graph_tiebreak": ref.secondary,
                             "graph_seconds": round(ref.seconds, 6), "agrees": ok})
                prog.advance(task)
            per_query.append((name, cm, obj, label, ref, cells))
    wall = time.perf_counter() - t_start

    csv_path = out / "compare_solvers.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    n = len(jobs)
    md = ["| model | cost model | objective | constraint | graph search (value, tie-break) | "
          + " | ".join(backends) + " |",
          "|---|---|---|---|---|" + "---|" * len(backends)]
    for name, cm, obj, label, ref, cells in per_query:
        g = "infeasible" if ref.status == "infeasible" else f"{ref.primary:,}, {ref.secondary:,}"
        cs = [f"{'✓' if ok else '✗ ' + a.status} {a.seconds * 1000:.0f} ms"
              for ok, a in (cells[b] for b in backends)]
        md.append(f"| {name} | {cm} | {obj} | {label} | {g} | " + " | ".join(cs) + " |")
    md += ["", "| backend | agrees | median time | max time |", "|---|---|---|---|"]
    summary = Table(title=f"{n} queries ({len(models)} models x {len(cms)} cost models); "
                          f"wall {wall:.1f} s", title_justify="left")
    for c in ("backend", "agrees with graph search", "median", "max"):
        summary.add_column(c, justify="left" if c == "backend" else "right")
    for b in ["graph"] + backends:
        med = statistics.median(times[b]) * 1000
        mx = max(times[b]) * 1000
        ag = "referee" if b == "graph" else f"{agree[b]}/{n}"
        summary.add_row(b, ag, f"{med:.1f} ms", f"{mx:.1f} ms")
        md.append(f"| {b} | {ag} | {med:.1f} ms | {mx:.1f} ms |")
    total_agree = sum(agree.values())
    md += ["", f"All backends: {total_agree}/{n * len(backends)} answers agree with graph search."]
    md_path = out / "compare_solvers.md"
    md_path.write_text("\n".join(md) + "\n")
    con.print(summary)
    con.print(f"agreement: {total_agree}/{n * len(backends)} answers "
              f"({100.0 * total_agree / max(1, n * len(backends)):.1f}%)")
    con.print(f"wrote {csv_path} and {md_path}")
    if args.plot:
        from msfopt.plots import plot_solver_times
        png = out / "solve_times.png"
        plot_solver_times(png, times, f"solve time per query ({n} queries: {len(models)} "
                                      f"models x {'/'.join(cms)} cost models)")
        con.print(f"wrote {png}")
    return 0 if total_agree == n * len(backends) else 4


if __name__ == "__main__":
    sys.exit(main())
