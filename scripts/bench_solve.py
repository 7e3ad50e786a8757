#!/usr/bin/env python3
"""Solve-engine speed per model: DAG build, each backend's solve (median / max over queries),
the batch API's time per query, and the whole ``msfopt solve`` process.

Queries: the paper's P1 (F = 1.1 ... inf) and P2 (16 K ... 512 K) rows, under the chosen cost
model.  Each backend runs through ``solver.answer`` (the graph column is the cross-check's cost).
"batch" is ``msfopt.solve_many`` over the same queries with CP-SAT and cross-check on, DAG built
once (total / queries).  "process" is the wall time of ``python -m msfopt.cli solve MODEL
--cost-model C --ram 64k`` (median of ``--repeat`` runs), start-up included.

Usage: python scripts/bench_solve.py [--cost-model msfcnn|runtime] [--backends graph,cpsat,cbc]
                                     [--models zoo|NAME,PATH,...] [--repeat 3]
"""
import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import msfopt
from msfopt import zoo
from msfopt.dag import build_dag
from msfopt.models import load_model
from msfopt.solver import answer, make_query

F_VALUES = [1.1, 1.2, 1.3, 1.4, 1.5, 1.6, math.inf]
P_VALUES = [16_000, 32_000, 64_000, 128_000, 256_000, 512_000]


SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def _ms(xs) -> str:
    return f"{statistics.median(xs) * 1000:.0f} / {max(xs) * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cost-model", default="msfcnn", choices=["msfcnn", "runtime"])
    ap.add_argument("--backends", default="graph,cpsat,cbc")
    ap.add_argument("--models", default="zoo",
                    help="'zoo', 'shared' (every model file of ../shared/models), 'all' (both) "
                         "or comma-separated names / paths")
    ap.add_argument("--repeat", type=int, default=3, help="DAG builds / processes to time")
    ap.add_argument("--no-batch", action="store_true", help="skip the batch column")
    ap.add_argument("--no-process", action="store_true", help="skip the whole-process column")
    args = ap.parse_args()
    backends = args.backends.split(",")
    shared = sorted(str(p) for p in SHARED.glob("*") if p.suffix in (".onnx", ".tflite"))
    models = {"zoo": zoo.names(), "shared": shared, "all": zoo.names() + shared}.get(
        args.models, [m for m in args.models.split(",") if m])
    con = Console()
    t = Table(title=f"solve times, cost model {args.cost_model} (median / max per query)")
    for c in ["model", "edges", "DAG build"] + backends + ["batch / query", "process"]:
        t.add_column(c, justify="left" if c == "model" else "right")
    medians: dict[str, list[float]] = {b: [] for b in backends}
    for name in models:
        net = load_model(name)
        builds = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            dag = build_dag(net, cost_model=args.cost_model)
            builds.append(time.perf_counter() - t0)
        queries = [make_query(dag, "ram", max_overhead=f) for f in F_VALUES]
        queries += [make_query(dag, "macs" if args.cost_model == "msfcnn" else "latency", ram=p)
                    for p in P_VALUES]
        cells = []
        for b in backends:
            times = []
            for q in queries:
                t0 = time.perf_counter()
                try:
                    answer(dag, q, b, threads=1)
                except Exception as exc:  # noqa: BLE001 - report and go on
                    con.print(f"[red]{name} {b}: {exc}[/red]")
                times.append(time.perf_counter() - t0)
            medians[b].append(statistics.median(times))
            cells.append(_ms(times))
        batch = "-"
        if not args.no_batch:
            qs = [dict(objective="ram", max_overhead=f) for f in F_VALUES]
            qs += [dict(objective="macs" if args.cost_model == "msfcnn" else "latency", ram=p)
                   for p in P_VALUES]
            t0 = time.perf_counter()
            msfopt.solve_many([dag], qs, threads=1)
            batch = f"{(time.perf_counter() - t0) / len(qs) * 1000:.0f} ms"
        proc = "-"
        if not args.no_process:
            walls = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "msfopt.cli", "solve", name, "--cost-model",
                                args.cost_model, "--ram", "64k"], capture_output=True)
                walls.append(time.perf_counter() - t0)
            proc = f"{statistics.median(walls):.2f} s"
        t.add_row(Path(name).name[:40], f"{dag.n_edges:,}",
                  f"{statistics.median(builds) * 1000:.0f} ms", *cells, batch, proc)
    con.print(t)
    con.print(f"{len(F_VALUES) + len(P_VALUES)} queries per model, 1 solver thread; median over "
              "models of the per-model medians: "
              + ", ".join(f"{b} {statistics.median(v) * 1000:.0f} ms" for b, v in medians.items()))
    con.print("targets (issue 15): DAG build <= 100 ms (runtime), CP-SAT <= 100 ms, every backend "
              "<= 300 ms median, process <= 0.35 s (msfcnn)")


if __name__ == "__main__":
    main()
