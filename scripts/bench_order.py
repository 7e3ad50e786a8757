"""Execution-order search: the downset method (msfopt.order) versus the compact CP-SAT model
(msfopt.order_compact), minimum RAM (then MACs, then cycles), io=arena.

Per branched shared model (../shared/models) and per synthetic wide graph
(msfopt.synthetic_graphs.WIDE_GRAPHS): ops, block variants, execution states (or "too many"
beyond --max-states), downset time (order DAG build + exact graph search), compact model
time / status / primary gap / stage times, and whether the two optima agree.

    .venv/bin/python scripts/bench_order.py [--time-limit 60] [--max-states 200000]
        [--threads 1] [--only shared|synthetic] [--models NAME_SUBSTRING ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msfopt import order as morder  # noqa: E402
from msfopt.order_compact import _query, solve_compact  # noqa: E402
from msfopt.solver import answer, make_query  # noqa: E402
from msfopt.synthetic_graphs import WIDE_GRAPHS  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"


def shared_nets(subs):
    from msfopt.models import load_model
    for p in sorted(SHARED.glob("*")):
        if p.suffix not in (".onnx", ".tflite") or (subs and not any(s in p.name for s in subs)):
            continue
        net = load_model(str(p))
        if net.is_chain:
            continue
        yield p.stem, net


def synthetic_nets(subs):
    for name, make in WIDE_GRAPHS.items():
        if subs and not any(s in name for s in subs):
            continue
        yield name, make()


def row(name, net, args):
    t0 = time.perf_counter()
    try:
        dag = morder.build_order_dag(net, max_states=args.max_states)
        q = make_query(dag, "ram")
        ref = answer(dag, q, "graph")
        states, ref_key = f"{dag.states:,}", ref.key
    except morder.TooManyStates:
        states, ref_key = "too many", None
    t_down = time.perf_counter() - t0
    a = solve_compact(net, _query(net, "ram", None, None, None), time_limit=args.time_limit,
                      threads=args.threads)
    agree = "-" if ref_key is None or a.status not in ("optimal", "feasible") else (
        "yes" if a.key == ref_key else "same peak" if a.key[0] == ref_key[0] else
        "worse" if a.key > ref_key else "BETTER?!")
    gap = "-" if a.gap is None else f"{a.gap:.1%}"
    stages = "/".join(f"{s:.1f}" for s in a.stage_seconds)
    return (name, net.n_layers, a.variants, states, f"{t_down:.2f}", f"{a.seconds:.2f}",
            a.status + ("" if a.source == "cpsat" else "*"), gap, stages,
            "-" if a.key[0] is None else f"{a.key[0]:,}",
            "-" if ref_key is None else f"{ref_key[0]:,}", agree)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--max-states", type=int, default=morder.MAX_STATES)
    ap.add_argument("--threads", type=int, default=1, help="CP-SAT workers (default 1)")
    ap.add_argument("--only", choices=("shared", "synthetic"))
    ap.add_argument("--models", nargs="*", default=[])
    args = ap.parse_args(argv)
    head = ("network", "ops", "variants", "states", "downset s", "compact s", "status", "gap",
            "stage s", "compact peak", "downset peak", "agree")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    sources = []
    if args.only != "synthetic":
        sources.append(shared_nets(args.models))
    if args.only != "shared":
        sources.append(synthetic_nets(args.models))
    for src in sources:
        for name, net in src:
            print(" | ".join(str(c) for c in row(name, net, args)), flush=True)
    print("status*: CP-SAT did not beat its starting plan (the file's order or a greedy order, "
          "fused optimally) in time")


if __name__ == "__main__":
    main()
