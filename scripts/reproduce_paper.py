#!/usr/bin/env python3
"""Paper vs msfopt, side by side: every P1 / P2 query of the msf-CNN paper's tables, answered by
msfopt's runtime cost model (exact bytes of the generated C runtime; the network input/output
left out as in the paper, --io external) over all execution modes, next to the paper's figures;
plus a Pareto plot per model with both fronts (RAM vs MACs).

Usage: python scripts/reproduce_paper.py [--out DIR] [--no-plot]
"""
import argparse
import math
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from msfopt import zoo
from msfopt.backends import graph, pareto
from msfopt.dag import build_dag
from msfopt.paper_points import PARETO, QUERIES as ROWS



def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="out/reproduce_paper", help="where to write the table and PNGs")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    con = Console()
    md = ["| model | problem | constraint | paper peak | paper MACs | msfopt peak | msfopt MACs | "
          "RAM | MACs | msfopt modes |", "|---|---|---|---:|---:|---:|---:|---|---|---|"]
    worse = 0
    for model, rows in ROWS.items():
        net = zoo.load(model)
        t0 = time.perf_counter()
        dag = build_dag(net, io="external")
        build = time.perf_counter() - t0
        t = Table(title=f"{model}: paper (msf-CNN, analytic) vs msfopt (runtime model, all modes, "
                        f"io external); DAG {dag.n_edges} edges built in {build:.2f} s",
                  title_justify="left")
        for c in ("problem", "paper peak", "paper MACs", "msfopt peak", "msfopt MACs", "modes"):
            t.add_column(c, justify="left" if c in ("problem", "modes") else "right")
        for prob, cons, ppeak, pmacs in rows:
            if prob == "P1":
                r = graph.min_peak(dag, "macs", cons * net.vanilla_macs)
                label = f"P1 F<={'inf' if math.isinf(cons) else cons}"
            else:
                r = graph.min_latency(dag, "macs", cons)
                label = f"P2 P<={cons // 1000}k"
            if r.feasible:
                modes = sorted({dag.mode[e] for e in r.path if dag.mode[e] != "unfused"})
                mpk, mmc = f"{r.peak:,}", f"{r.total:,}"
            else:
                modes, mpk, mmc = [], "infeasible", "-"
            better_ram = ppeak is None or (r.feasible and r.peak <= ppeak)
            better_mac = pmacs is None or (r.feasible and r.total <= pmacs)
            if prob == "P2" and not better_mac:
                worse += 1
            if prob == "P1" and not better_ram:
                worse += 1
            t.add_row(label, f"{ppeak:,}" if ppeak else "infeasible", f"{pmacs:,}" if pmacs else "-",
                      mpk, mmc, ",".join(modes) or "-")
            md.append(f"| {model} | {prob} | {label[3:]} | {ppeak or 'infeasible'} | {pmacs or '-'} | "
                      f"{mpk} | {mmc} | {'≤' if better_ram else '>'} | {'≤' if better_mac else '>'} | "
                      f"{','.join(modes) or '-'} |")
        con.print(t)
        if not args.no_plot:
            from msfopt.plots import plot_front
            fr = pareto.front(dag, "macs")
            van = dag.totals(dag.vanilla_path())
            png = out / f"{model}_fronts.png"
            plot_front(png, fr.pairs(), "macs",
                       f"{model}: msfopt runtime front vs msf-CNN paper front (I/O excluded)",
                       vanilla=(van["peak"], van["macs"]), paper=PARETO[model])
            con.print(f"front: {len(fr.points)} points in {fr.seconds:.2f} s -> {png}")
    (out / "paper_vs_msfopt.md").write_text("\n".join(md) + "\n")
    con.print(f"markdown table: {out / 'paper_vs_msfopt.md'}; queries where msfopt is worse "
              f"than the paper on the optimised quantity: {worse}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
