#!/usr/bin/env python3
"""Scaling benchmark on synthetic chains (msfopt.synthetic).

First, the acceptance run: ``msfopt.solve`` with DEFAULT options (runtime cost model, every
mode, unlimited depth, CP-SAT, cross-check by graph search) on float chains of 3x3 convs
(``synthetic.conv_chain``: 8 channels, 16x16, every tenth depthwise) of ``--layers`` layers
(100 / 300 / 1000 / 2000), each in its own process: DAG size and build time, solve and
cross-check time, whole wall time and the process's peak RSS.

Then the per-backend detail on the inverted-bottleneck chains (``synthetic.synthetic_chain``,
``--detail-layers``, skip with ``--detail-layers ''``).  For each chain: DAG size, variables / constraints / non-zeros of each formulation (P2: min latency
s.t. peak <= 1.25 x the smallest feasible peak; P1: min peak s.t. latency <= 1.10 x the least
latency), and the solve time of graph search and of every ILP backend on both (two-stage
lexicographic solves, each with --time-limit).  Reports how time grows (log-log slope between
consecutive sizes) and the largest chain each backend solves interactively (<= 1 s).

Usage: python scripts/bench_scale.py [--layers 100,300,1000,2000] [--detail-layers 100,300,1000]
                                     [--max-depth 16] [--time-limit 30]
                                     [--cost-model msfcnn|runtime] [--out-dir results] [--plot]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from msfopt.backends import ILP_BACKENDS, graph, pareto
from msfopt.cli_solvers import agrees, run_backend
from msfopt.dag import build_dag
from msfopt.formulations.path import latency_program, minmax_ram_program
from msfopt.solver import Query
from msfopt.synthetic import synthetic_chain


def nnz(mip) -> int:
    return sum(len(c.coeffs) for c in mip.constraints)


#: one default-options solve of a conv chain, in a fresh process (its own peak RSS)
_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import msfopt
from msfopt.synthetic import conv_chain
net = conv_chain(int(sys.argv[1]))
plan = msfopt.solve(net)
wall = time.perf_counter() - t0
print(json.dumps({"layers": int(sys.argv[1]), "edges": plan.dag["edges"],
                  "build_s": plan.dag["build_seconds"], "solve_s": plan.solve_seconds,
                  "check_s": plan.cross_check["seconds"], "wall_s": wall,
                  "status": plan.status, "agree": plan.cross_check["agree"],
                  "backend": plan.backend, "peak": plan.peak_ram_bytes,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def default_solves(sizes, con) -> list[str]:
    """The acceptance table: default ``msfopt.solve`` on conv chains; returns its markdown."""
    t = Table(title="msfopt.solve, default options, float 3x3 conv chains (8 ch, 16x16, every "
                    "tenth depthwise)", title_justify="left")
    cols = ("layers", "edges", "DAG build", "solve (cpsat)", "cross-check (graph)", "whole",
            "peak RSS", "status")
    for c in cols:
        t.add_column(c, justify="right")
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for n in sizes:
        p = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True, text=True)
        if p.returncode != 0:
            cells = [str(n), "-", "-", "-", "-", "-", "-", p.stderr.strip().splitlines()[-1][:60]]
        else:
            r = json.loads(p.stdout.strip().splitlines()[-1])
            status = r["status"] + (", agree" if r["agree"] else f", DISAGREE ({r['backend']})")
            cells = [str(n), f"{r['edges']:,}", f"{r['build_s']:.2f} s", f"{r['solve_s']:.2f} s",
                     f"{r['check_s']:.2f} s", f"{r['wall_s']:.1f} s",
                     f"{r['rss_mb'] / 1024:.2f} GiB", status]
        t.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
        con.print(t) if n == sizes[-1] else None
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", default="100,300,1000,2000",
                    help="conv-chain lengths of the default-options run ('' to skip)")
    ap.add_argument("--detail-layers", default="100,300,1000",
                    help="bottleneck-chain lengths of the per-backend detail ('' to skip)")
    ap.add_argument("--max-depth", type=int, default=16,
                    help="longest fused block (layers); 0 = unlimited")
    ap.add_argument("--cost-model", default="msfcnn", choices=["msfcnn", "runtime"])
    ap.add_argument("--backends", default=",".join(ILP_BACKENDS))
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hw", type=int, default=32, help="spatial size of the synthetic chain")
    ap.add_argument("--out-dir", default="results")
    ap.add_argument("--plot", action="store_true", help="write bench_scale.png")
    args = ap.parse_args(argv)
    con = Console(highlight=False)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md0 = default_solves([int(x) for x in args.layers.split(",") if x], con) if args.layers else []
    if md0:
        (out / "bench_scale_default.md").write_text("\n".join(md0) + "\n")
        con.print(f"wrote {out / 'bench_scale_default.md'}")
    sizes = [int(x) for x in args.detail_layers.split(",") if x]
    if not sizes:
        return 0
    backends = [b for b in args.backends.split(",") if b]
    depth = None if args.max_depth == 0 else args.max_depth
    metric = "macs" if args.cost_model == "msfcnn" else "cycles"

    size_rows, solve_rows = [], []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=con) as prog:
        task = prog.add_task("bench", total=len(sizes) * 2 * (len(backends) + 1))
        for n in sizes:
            t0 = time.perf_counter()
            dag = build_dag(synthetic_chain(n, hw=args.hw), cost_model=args.cost_model,
                            max_depth=depth)
            build = time.perf_counter() - t0
            min_ram = graph.min_feasible_ram(dag)
            fastest = graph.min_latency(dag, metric).total
            cap = int(math.ceil(1.25 * min_ram))
            budget = int(1.10 * fastest)
            fr = pareto.front(dag, metric)
            p2 = latency_program(dag, metric, cap).mip
            p1 = minmax_ram_program(dag, metric, budget).mip
            size_rows.append({"layers": n, "nodes": dag.n_nodes, "edges": dag.n_edges,
                              "build_s": round(build, 3),
                              "P2_vars": p2.n_vars, "P2_cons": p2.n_constraints, "P2_nnz": nnz(p2),
                              "P1_vars": p1.n_vars, "P1_cons": p1.n_constraints, "P1_nnz": nnz(p1),
                              "pareto_points": len(fr.points), "pareto_s": round(fr.seconds, 3)})
            for kind, q in (("P2", Query("latency", metric, ram_cap=cap)),
                            ("P1", Query("ram", metric, budget=float(budget)))):
                ref = None
                for b in ["graph"] + backends:
                    prog.update(task, description=f"{n} layers {kind} {b}".ljust(24))
                    a = run_backend(dag, q, b, args.time_limit, args.threads)
                    if ref is None:
                        ref = a
                    solve_rows.append({"layers": n, "edges": dag.n_edges, "query": kind,
                                       "backend": b, "status": a.status,
                                       "seconds": round(a.seconds, 4), "gap": a.gap,
                                       "agrees": True if b == "graph" else agrees(a, ref)})
                    prog.advance(task)

    t = Table(title=f"synthetic chains ({args.cost_model}, max depth "
                    f"{depth or 'unlimited'}, {args.hw}x{args.hw})", title_justify="left")
    for c in ("layers", "edges", "DAG build", "P2 vars / cons / nnz", "P1 vars / cons / nnz",
              "Pareto front"):
        t.add_column(c, justify="right")
    md = ["| layers | edges | DAG build | P2 vars / cons / nnz | P1 vars / cons / nnz | "
          "Pareto front (points, time) |", "|---|---|---|---|---|---|"]
    for r in size_rows:
        cells = [str(r["layers"]), f"{r['edges']:,}", f"{r['build_s']:.2f} s",
                 f"{r['P2_vars']:,} / {r['P2_cons']:,} / {r['P2_nnz']:,}",
                 f"{r['P1_vars']:,} / {r['P1_cons']:,} / {r['P1_nnz']:,}",
                 f"{r['pareto_points']} pts, {r['pareto_s']:.2f} s"]
        t.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    con.print(t)

    t2 = Table(title=f"solve time (lexicographic, limit {args.time_limit:g} s per query)",
               title_justify="left")
    t2.add_column("backend")
    for n in sizes:
        t2.add_column(f"{n}: P2", justify="right")
        t2.add_column(f"{n}: P1", justify="right")
    t2.add_column("growth (slope)", justify="right")
    t2.add_column("interactive up to", justify="right")
    md += ["", "| backend | " + " | ".join(f"{n}: P2 | {n}: P1" for n in sizes)
           + " | growth (log-log slope) | interactive (<= 1 s) up to |",
           "|---|" + "---|---|" * len(sizes) + "---|---|"]
    for b in ["graph"] + backends:
        cells, worst = [], {}
        for n in sizes:
            for kind in ("P2", "P1"):
                r = next(x for x in solve_rows if x["layers"] == n and x["query"] == kind
                         and x["backend"] == b)
                s = f"{r['seconds']:.3f} s"
                if r["status"] != "optimal":
                    s += f" {r['status']}" + (f" gap {r['gap']:.1%}" if r["gap"] else "")
                elif not r["agrees"]:
                    s += " WRONG"
                cells.append(s)
                ok = r["status"] == "optimal" and r["agrees"]
                worst[n] = max(worst.get(n, 0.0), r["seconds"] if ok else math.inf)
        slopes = []
        for n1, n2 in zip(sizes, sizes[1:]):
            if math.isfinite(worst[n1]) and math.isfinite(worst[n2]) and worst[n1] > 0:
                slopes.append(f"{math.log(worst[n2] / worst[n1]) / math.log(n2 / n1):.1f}")
            else:
                slopes.append("-")
        inter = [n for n in sizes if worst[n] <= 1.0]
        upto = f"{max(inter)} layers" if inter else f"< {sizes[0]} layers"
        if inter and max(inter) != sizes[-1]:
            upto += f" (>1 s at {min(n for n in sizes if n > max(inter))})"
        t2.add_row(b, *cells, ", ".join(slopes), upto)
        md.append(f"| {b} | " + " | ".join(cells) + f" | {', '.join(slopes)} | {upto} |")
    con.print(t2)
    with open(out / "bench_scale.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(solve_rows[0]))
        w.writeheader()
        w.writerows(solve_rows)
    (out / "bench_scale.md").write_text("\n".join(md) + "\n")
    con.print(f"wrote {out / 'bench_scale.csv'} and {out / 'bench_scale.md'}")
    if args.plot:
        from msfopt.plots import plot_scaling
        rows = []
        for b in ["graph"] + backends:
            for n in sizes:
                rs = [x for x in solve_rows if x["layers"] == n and x["backend"] == b]
                rows.append({"backend": b, "layers": n, "seconds": max(x["seconds"] for x in rs),
                             "optimal": all(x["status"] == "optimal" for x in rs)})
        plot_scaling(out / "bench_scale.png", rows,
                     f"synthetic chains: slower of P1/P2 per backend ({args.cost_model}, depth "
                     f"{depth or 'unlimited'})")
        con.print(f"wrote {out / 'bench_scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
