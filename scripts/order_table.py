#!/usr/bin/env python3
"""Execution order jointly with fusion on the branched shared models (issue 13): per model, the
order DAG's size and build time, and the minimum peak RAM at F = 1.0 (no recomputation) and
overall -- in the file's order (the chain DAG of the imported order) and over every order (the
order DAG) -- with the solve times of both.

Usage: python scripts/order_table.py [--models a.tflite,b.onnx] [--markdown]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from msfopt import order as morder
from msfopt.dag import build_dag
from msfopt.models import load_model
from msfopt.solver import graph_answer, make_query

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "models"
BRANCHED = ["mlperf_tiny_resnet8_int8.tflite", "mcunet_320kb_1mb_imagenet_int8.tflite",
            "tv_squeezenet1_1_r128.onnx", "tv_shufflenet_v2_x0_5_r128.onnx",
            "keras_unet_r96_int8.tflite", "torch_unet_lrelu_r64.onnx",
            "keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite",
            "tv_mobilenet_v3_small_r128.onnx", "keras_mobilenet_v3_small_r96_int8.tflite",
            "keras_efficientnet_b0_r96_int8.tflite", "tv_mobilenet_v2_w0.5_prelu_r96.onnx"]


def _min_ram(dag, overhead):
    t = time.perf_counter()
    a = graph_answer(dag, make_query(dag, "ram", max_overhead=overhead))
    return a.primary, time.perf_counter() - t


def count_orders(net) -> int:
    """Topological orders of the op graph (paths of the downset lattice, by dynamic programming
    over executed-op sets)."""
    preds = [sum(1 << (t - 1) for t in L.srcs if t > 0) for L in net.layers]
    ways = {0: 1}
    for _ in range(net.n_layers):
        nxt: dict[int, int] = {}
        for done, w in ways.items():
            for o, pm in enumerate(preds):
                if not (done >> o) & 1 and pm & ~done == 0:
                    nxt[done | 1 << o] = nxt.get(done | 1 << o, 0) + w
        ways = nxt
    return sum(ways.values())


def row(path: Path) -> dict:
    net = load_model(str(path))
    t = time.perf_counter()
    chain = build_dag(net)
    chain_s = time.perf_counter() - t
    od = morder.build_order_dag(net)
    r = {"model": path.name, "ops": net.n_layers, "orders": count_orders(net), "states": od.states, "edges": od.n_edges,
         "chain_build": chain_s, "order_build": od.build_seconds}
    for tag, mo in (("f1", 1.0), ("any", None)):
        r[f"file_{tag}"], r[f"file_{tag}_s"] = _min_ram(chain, mo)
        r[f"ord_{tag}"], r[f"ord_{tag}_s"] = _min_ram(od, mo)
    # the optimal order re-planned on the reordered network gives the same optimum
    res = morder.best_order(net, objective="ram", check=False)
    re_dag = build_dag(res.net)
    r["replanned"] = graph_answer(re_dag, make_query(re_dag, "ram")).primary
    r["moved"] = sum(1 for k, o in enumerate(res.order) if o != k)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(BRANCHED))
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        p = Path(name) if Path(name).exists() else SHARED / name
        if not p.exists():
            print(f"order_table: {name}: not found", file=sys.stderr)
            return 2
        rows.append(row(p))
    cols = ["model", "ops", "orders", "states", "edges", "order DAG build s", "F=1 file order B",
            "F=1 best order B", "min RAM file order B", "min RAM best order B", "gain",
            "order solve s", "ops moved"]

    def cells(r):
        gain = 1 - r["ord_any"] / r["file_any"]
        orders = f"{r['orders']:,}" if r["orders"] < 10**9 else f"{r['orders']:.2e}"
        return [r["model"], str(r["ops"]), orders, f"{r['states']:,}", f"{r['edges']:,}",
                f"{r['order_build']:.2f}", f"{r['file_f1']:,}", f"{r['ord_f1']:,}",
                f"{r['file_any']:,}", f"{r['ord_any']:,}", f"{gain:.1%}",
                f"{r['ord_f1_s'] + r['ord_any_s']:.2f}", str(r["moved"])]
    if args.markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(cells(r)) + " |")
    else:
        t = Table(title="minimum RAM: the file's order vs every order (order DAG)")
        for c in cols:
            t.add_column(c, justify="left" if c == "model" else "right")
        for r in rows:
            t.add_row(*cells(r))
        Console().print(t)
    bad = [r["model"] for r in rows if r["replanned"] != r["ord_any"]]
    if bad:
        print(f"order_table: re-planned optimum differs for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
