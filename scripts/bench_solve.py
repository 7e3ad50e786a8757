#!/usr/bin/env python3
"""Per zoo model: DAG construction time and solve time per backend (median over queries).

Queries: the paper's P1 (F = 1.1 ... inf) and P2 (16 K ... 512 K) rows, under the chosen cost model.
Usage: python scripts/bench_solve.py [--cost-model msfcnn|runtime] [--backends cpsat,cbc,graph]
"""
import argparse
import math
import statistics
import time

from rich.console import Console
from rich.table import Table

from msfopt import zoo
from msfopt.dag import build_dag
from msfopt.solver import answer, make_query

F_VALUES = [1.1, 1.2, 1.3, 1.4, 1.5, 1.6, math.inf]
P_VALUES = [16_000, 32_000, 64_000, 128_000, 256_000, 512_000]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cost-model", default="msfcnn", choices=["msfcnn", "runtime"])
    ap.add_argument("--backends", default="graph,cpsat,cbc")
    ap.add_argument("--repeat", type=int, default=3, help="DAG builds to time (median)")
    args = ap.parse_args()
    backends = args.backends.split(",")
    con = Console()
    t = Table(title=f"solve times, cost model {args.cost_model} (median / max per query)")
    t.add_column("model")
    t.add_column("edges", justify="right")
    t.add_column("DAG build", justify="right")
    for b in backends:
        t.add_column(b, justify="right")
    for name in zoo.names():
        net = zoo.load(name)
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
                    answer(dag, q, b)
                except Exception as exc:  # noqa: BLE001 - report and go on
                    con.print(f"[red]{name} {b}: {exc}[/red]")
                times.append(time.perf_counter() - t0)
            cells.append(f"{statistics.median(times) * 1000:.1f} / {max(times) * 1000:.1f} ms")
        t.add_row(name, str(dag.n_edges), f"{statistics.median(builds) * 1000:.1f} ms", *cells)
    con.print(t)
    con.print(f"{len(F_VALUES) + len(P_VALUES)} queries per model; targets: graph < 50 ms, ILP < 1 s")


if __name__ == "__main__":
    main()
