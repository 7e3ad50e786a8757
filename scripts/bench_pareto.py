"""Seconds to confirm each zoo model's exact Pareto front with an ILP backend.

    .venv/bin/python scripts/bench_pareto.py [--backends highs,cpsat] [--cost-model msfcnn]
                                             [--before] [--threads 1]

"after": :func:`msfopt.pareto_confirm.confirm` (one epsilon-constraint path program per distinct
capacity, m + 1 .. 2m + 1 solves for m points, the completeness of the front proven too).
"before" (``--before``, slow): the previous method, two lexicographic solves through
:func:`msfopt.solver.answer` per point (min latency s.t. peak <= p, min peak s.t. latency <= l).
Prints one row per (model, backend): points, solves, seconds, all confirmed.
"""
from __future__ import annotations

import argparse
import time

from msfopt import pareto_confirm, zoo
from msfopt.backends import pareto
from msfopt.dag import build_dag

MODELS = ("mbv2-w0.35", "mcunetv2-vww5", "mcunet-320k")


def before(dag, fr, backend: str, threads: int) -> tuple[bool, int]:
    """The previous confirmation: P2 at the point's peak and P1 at its latency, per point."""
    from msfopt.solver import Query, answer
    ok = True
    for p in fr.points:
        a2 = answer(dag, Query("latency", fr.metric, ram_cap=p.peak), backend, 60.0, threads)
        a1 = answer(dag, Query("ram", fr.metric, budget=float(p.latency)), backend, 60.0, threads)
        ok &= (a2.primary, a2.secondary) == (p.latency, p.peak)
        ok &= (a1.primary, a1.secondary) == (p.peak, p.latency)
    return ok, 2 * len(fr.points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="highs,cpsat")
    ap.add_argument("--cost-model", default="msfcnn", choices=["msfcnn", "runtime"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before", action="store_true", help="also time the previous method")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    metric = "macs" if args.cost_model == "msfcnn" else "cycles"
    print(f"{'model':16s} {'backend':8s} {'method':7s} {'points':>6s} {'solves':>6s} "
          f"{'seconds':>8s}  confirmed")
    for m in args.models.split(","):
        dag = build_dag(zoo.load(m), cost_model=args.cost_model)
        fr = pareto.front(dag, metric)
        for b in args.backends.split(","):
            runs = [("after", None)] + ([("before", None)] if args.before else [])
            for method, _ in runs:
                t0 = time.perf_counter()
                if method == "after":
                    prog_solves = []
                    orig = pareto_confirm.EpsilonProgram._solve

                    def counted(self, k, _orig=orig):
                        prog_solves.append(k)
                        return _orig(self, k)
                    pareto_confirm.EpsilonProgram._solve = counted
                    try:
                        conf = pareto_confirm.confirm(dag, fr, backend=b, threads=args.threads)
                    finally:
                        pareto_confirm.EpsilonProgram._solve = orig
                    ok, solves = all(c.ok for c in conf), len(prog_solves)
                else:
                    ok, solves = before(dag, fr, b, args.threads)
                secs = time.perf_counter() - t0
                print(f"{m:16s} {b:8s} {method:7s} {len(fr.points):6d} {solves:6d} "
                      f"{secs:8.2f}  {ok}", flush=True)


if __name__ == "__main__":
    main()
