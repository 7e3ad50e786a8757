#!/usr/bin/env python3
"""How often the fast arena placement packs a plan at its peak, how often CP-SAT is needed, how
long it takes, and how often a plan still falls back to first-fit -- over every layout the solver
asks for (its acceptance check of each candidate plan and the final plan) on min-RAM and
min-latency queries of the zoo and the shared models.  With ``--compare`` every query also runs
with the CP-SAT stage off (the layout of before issue 13): plans rejected for their layout and
solve seconds, before -> after.

``--random N`` adds N seeded random small chains (conv / depthwise / pools on 5..10 px maps,
the nets where in-place blocks fragment the arena and the fast search misses most often).

Usage: python scripts/bench_layout.py [--models zoo,shared|NAMES] [--io arena,external]
       [--backend graph] [--compare] [--time-limit 3] [--random N]
"""
import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msfopt import layout, solver, zoo  # noqa: E402
from msfopt.backends import graph  # noqa: E402
from msfopt.errors import MsfoptError  # noqa: E402
from msfopt.ir import Network  # noqa: E402
from msfopt.synthetic import random_window_chain  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"

_calls: list = []
_real = layout.plan_layout


def _recording(net, scheds, io="arena", *a, **kw):
    t0 = time.perf_counter()
    lay = _real(net, scheds, io, *a, **kw)
    _calls.append((lay.method, lay.cpsat_seconds, lay.cpsat_status, time.perf_counter() - t0))
    return lay


def _models(spec: str) -> list[str]:
    out = []
    for part in spec.split(","):
        if part == "zoo":
            out += zoo.names()
        elif part == "shared":
            out += sorted(str(p) for p in SHARED.glob("*.onnx")) + \
                sorted(str(p) for p in SHARED.glob("*.tflite"))
        elif part:
            out.append(part)
    return out


def _random_chain(rng, k):
    return random_window_chain(rng, name=f"random{k}")


def _queries(dag):
    lo = graph.min_feasible_ram(dag)
    yield "ram", {}
    yield "ram F=1.0", {"max_overhead": 1.0}
    for f in (1.0, 1.25, 1.5):
        # a RAM cap is compared with the aligned arena: round the budget up to the alignment
        yield f"latency ram<={f}x", {"objective": "latency",
                                     "ram": layout.aligned_arena(int(lo * f))}


def _run(model, dag, kw, backend, time_limit):
    kw = dict(kw)
    obj = kw.pop("objective", "ram")
    t0 = time.perf_counter()
    try:
        p = solver.solve(model, objective=obj, backend=backend, dag=dag, io=dag.io,
                         check=False, **kw)
    except MsfoptError as exc:
        return {"status": type(exc).__name__, "rejected": None,
                "seconds": time.perf_counter() - t0}
    return {"status": p.status, "rejected": p.layout_rejected, "arena": p.arena_bytes,
            "peak": p.peak_ram_bytes, "seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="zoo,shared")
    ap.add_argument("--io", default="arena,external")
    ap.add_argument("--backend", default="graph")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--random", type=int, default=0)
    args = ap.parse_args()
    solver.plan_layout = _recording
    if args.time_limit is not None:
        layout.layout_exact.DEFAULT_TIME_LIMIT = args.time_limit
    rows = []
    rng = random.Random(0)
    models = _models(args.models) + [_random_chain(rng, k) for k in range(args.random)]
    for model in models:
        label = model.name if isinstance(model, Network) else Path(model).name
        for io in args.io.split(","):
            try:
                _, dag, _ = solver.prepare(model, io=io)
            except MsfoptError as exc:
                print(f"{label} io={io}: {exc}")
                continue
            for name, kw in _queries(dag):
                before = None
                if args.compare:
                    layout.USE_CPSAT = False
                    layout.layout_exact._cache.clear()
                    n0 = len(_calls)
                    before = _run(model, dag, kw, args.backend, args.time_limit)
                    del _calls[n0:]          # the figures count the new layout only
                    layout.USE_CPSAT = True
                after = _run(model, dag, kw, args.backend, args.time_limit)
                rows.append((label, io, name, before, after))
                line = f"{label:48s} io={io:8s} {name:18s} "
                if before is not None:
                    line += (f"rejected {before['rejected']} -> {after['rejected']}, "
                             f"{before['seconds']:.2f} -> {after['seconds']:.2f} s")
                else:
                    line += f"rejected {after['rejected']}, {after['seconds']:.2f} s"
                if after.get("arena") is not None:
                    line += f", arena {after['arena']:,} B (peak {after['peak']:,} B)"
                else:
                    line += f", {after['status']}"
                print(line, flush=True)
    n = len(_calls)
    fast = sum(1 for c in _calls if c[0] == "fast")
    cps = [c for c in _calls if c[0] == "cpsat"]
    ff = [c for c in _calls if c[0] == "first-fit"]
    secs = [c[1] for c in _calls if c[1] > 0]
    print()
    print(f"layouts asked for: {n}")
    if n:
        print(f"  fast search packed at the peak: {fast} ({fast / n:.1%})")
        print(f"  CP-SAT needed and packed:       {len(cps)} ({len(cps) / n:.1%})")
        print(f"  first-fit fallback:             {len(ff)} ({len(ff) / n:.1%}; CP-SAT proved "
              f"infeasible {sum(c[2] == 'infeasible' for c in ff)}, timed out "
              f"{sum(c[2] == 'timeout' for c in ff)})")
    if secs:
        print(f"  CP-SAT solves: {len(secs)} (cache hits not counted), median "
              f"{statistics.median(secs) * 1e3:.1f} ms, max {max(secs) * 1e3:.1f} ms")
    if args.compare:
        rb = sum(r[3]["rejected"] or 0 for r in rows)
        ra = sum(r[4]["rejected"] or 0 for r in rows)
        tb = sum(r[3]["seconds"] for r in rows)
        ta = sum(r[4]["seconds"] for r in rows)
        print(f"plans rejected for their layout over {len(rows)} queries: {rb} -> {ra}; "
              f"solve seconds {tb:.1f} -> {ta:.1f}")


if __name__ == "__main__":
    main()
