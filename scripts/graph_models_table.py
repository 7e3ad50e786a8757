#!/usr/bin/env python3
"""The graph-model table: for every model in ../shared/models (or the files given), its ops by
type, the layer-by-layer live peak, msfopt's RAM at zero recompute (F = 1.0) and at the minimum
(network input counted and not), the MACs and F of the minimum, the minimum at F <= 1.3 (f13)
and how many times below TFLite Micro's arena head (TFLite) or the layer-by-layer peak (ONNX)
it is (gain13), the fused blocks it chooses and the time to build the DAG and solve it (graph
search + CP-SAT).

    .venv/bin/python scripts/graph_models_table.py [--markdown] [--no-concat-slices] [MODEL ...]

``vanilla`` is the layer-by-layer live peak of an ordinary runtime: every tensor its own buffer
(no concat input written into its slice of the concat output).  ``--no-concat-slices`` plans
without concat slices too (the figures before issue 12's slices); ``slices`` counts the concat
inputs aliased into their concat's output.

Models that do not import are listed with the importer's one-line reason.  TFLite files also
show TFLite Micro's arena (total / head) from the shared models' README figures measured with
the tflite-micro interpreter (pass --tflm to measure them here instead).
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msfopt.dag import build_dag  # noqa: E402
from msfopt.errors import MsfoptError  # noqa: E402
from msfopt.models import load_model  # noqa: E402
from msfopt.solver import solve  # noqa: E402
from msfopt import schedule  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
#: TFLM arena total (head) of the shared models, from ../shared/models/README.md
TFLM = {"mlperf_tiny_vww_96_int8.tflite": (103_680, 73_728),
        "mlperf_tiny_resnet8_int8.tflite": (55_984, 49_152),
        "mlperf_tiny_dscnn_kws_int8.tflite": (24_272, 16_000),
        "mcunet_320kb_1mb_imagenet_int8.tflite": (512_064, 416_832),
        "keras_mobilenet_v3_small_r96_int8.tflite": (183_488, 73_728),
        "keras_efficientnet_b0_r96_int8.tflite": (955_408, 663_552),
        "keras_unet_r96_int8.tflite": (487_440, 479_232),
        "keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite": (341_584, 245_760)}


def row(path: Path, tflm: bool) -> dict:
    r = {"model": path.name}
    try:
        net = load_model(str(path))
    except (MsfoptError, ValueError) as e:
        r["error"] = str(e).splitlines()[0][:160]
        return r
    ops = collections.Counter(l.op if l.op != "act" else f"act:{l.fn}" for l in net.layers)
    r["ops"] = ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))
    slicing = schedule.ALIAS_CONCAT
    schedule.ALIAS_CONCAT = False     # the ordinary runtime's layer-by-layer peak
    try:
        plain = build_dag(net)
        vanilla = plain.totals(plain.vanilla_path())["peak"]
    finally:
        schedule.ALIAS_CONCAT = slicing
    t0 = time.perf_counter()
    dag = build_dag(net)
    t_dag = time.perf_counter() - t0
    t0 = time.perf_counter()
    best = solve(net, objective="ram", dag=dag, backend="graph", check=False)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    cp = solve(net, objective="ram", dag=dag, backend="cpsat", check=False)
    t_cp = time.perf_counter() - t0
    assert cp.peak_ram_bytes == best.peak_ram_bytes
    f1 = solve(net, objective="ram", max_overhead=1.0, dag=dag, check=False)
    f13 = solve(net, objective="ram", max_overhead=1.3, dag=dag, check=False)
    ext = solve(net, objective="ram", io="input-external", check=False)
    ext1 = solve(net, objective="ram", io="input-external", max_overhead=1.0, check=False)
    fused = [b for b in best.blocks if b.first_layer != b.last_layer]
    r.update(layers=net.n_layers, dtype=net.dtype, outputs=len(net.output_ids),
             vanilla=vanilla, slices=len(schedule.Liveness(net).alias_of),
             f1=f1.peak_ram_bytes, min=best.peak_ram_bytes,
             f1_noin=ext1.peak_ram_bytes, min_noin=ext.peak_ram_bytes, macs=best.macs,
             F=best.mac_overhead, f13=f13.peak_ram_bytes, fused=len(fused),
             modes=", ".join(sorted({b.mode for b in fused})) or "-",
             solve_s=t_dag + t_graph + t_cp, dag_s=t_dag, graph_s=t_graph, cpsat_s=t_cp)
    if path.suffix == ".tflite":
        if tflm:
            from msfopt.tflm_ref import tflm_allocations
            a = tflm_allocations(path)
            r["tflm"] = (a.get("total"), a.get("head"))
        else:
            r["tflm"] = TFLM.get(path.name)
    # how far below the usual runtime at F <= 1.3: TFLite Micro's head (TFLite files) or the
    # layer-by-layer live peak (ONNX files)
    base = r["tflm"][1] if r.get("tflm") else r["vanilla"]
    r["gain13"] = f"{base / r['f13']:.2f}x" if r["f13"] else "-"
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="model files (default: every file in "
                                              "../shared/models)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--tflm", action="store_true", help="measure TFLM arenas with tflite-micro")
    ap.add_argument("--no-concat-slices", action="store_true",
                    help="plan without writing concat inputs into their slices (the figures "
                         "before concat slices)")
    a = ap.parse_args()
    if a.no_concat_slices:
        schedule.ALIAS_CONCAT = False
    paths = [Path(m) for m in a.models] or sorted(p for p in SHARED.glob("*")
                                                   if p.suffix in (".onnx", ".tflite"))
    cols = ("model", "dtype", "layers", "outputs", "vanilla", "f1", "min", "f1_noin", "min_noin",
            "macs", "F", "f13", "gain13", "fused", "modes", "slices", "tflm", "solve_s")
    rows = []
    for p in paths:
        r = row(p, a.tflm)
        rows.append(r)
        if "error" in r:
            print(f"{r['model']}: does not import: {r['error']}", file=sys.stderr, flush=True)
        else:
            print(f"{r['model']}: ops {r['ops']}", file=sys.stderr, flush=True)

    def fmt(r, c):
        v = r.get(c, "")
        if c == "tflm" and v:
            return f"{v[0]:,} ({v[1]:,})"
        if isinstance(v, float):
            return f"{v:.3f}" if c == "F" else f"{v:.2f}"
        if isinstance(v, int) and c not in ("layers", "outputs", "fused"):
            return f"{v:,}"
        return str(v if v is not None else "")
    ok = [r for r in rows if "error" not in r]
    if a.markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in ok:
            print("| " + " | ".join(fmt(r, c) for c in cols) + " |")
    else:
        for r in ok:
            print("  ".join(f"{c}={fmt(r, c)}" for c in cols))
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | does not import: {r['error']} |" if a.markdown
                  else f"{r['model']}: {r['error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
