"""The plan report's data: one dict of every figure the page shows (:func:`gather`), computed from
the plan, its block schedules, the fusion DAG and the arena layout the code generator uses.

The HTML page (:mod:`msfopt.report_html`), the ``solve --plot`` memory timeline
(:func:`msfopt.plots.plot_timeline`) and the tests all read this dict, so what the page says and
what the tests check come from one place.  The arena layout is :func:`msfopt.layout.plan_layout`
of the schedules :func:`mcu_runtime.codegen`'s ``chain_schedules`` builds: the exact offsets the
generated C uses.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

from .errors import InputError
from .schedule import Liveness

#: the parts of a block's RAM, in stacking order (bottom first), as the timeline names them
ROLES = ("input", "held", "output", "ring")
ROLE_NAMES = {"input": "block input", "held": "held tensor (skip / graph output)",
              "output": "block output", "ring": "ring / patch buffer"}


def block_schedules(net, plan):
    """The plan's block schedules, built exactly as the code generator builds them (checked to
    chain over every layer)."""
    from .mcu_runtime.codegen import chain_schedules
    from .mcu_runtime.ctext import CodegenError
    try:
        return chain_schedules(net, plan.blocks, plan.io)
    except (CodegenError, ValueError) as exc:
        raise InputError(f"invalid plan: {exc}") from None


def _shape(net, t: int) -> list[int]:
    return [int(v) for v in net.tensor_shape(t)]


def tensor_name(net, t: int) -> str:
    """A tensor's name as the page shows it: the network input or the layer producing it."""
    if t == 0:
        return "input"
    name = net.layers[t - 1].name
    return f"t{t} ({name})" if name else f"t{t}"


def timeline(net, plan, scheds) -> list[dict]:
    """Per block (execution order): its figures from the plan, its x extent in cumulative
    est. cycles, and the bytes of every live tensor and ring stacked into its RAM (runtime cost
    model: the segments sum to the block's RAM; msfcnn: one segment, the paper model's RAM)."""
    live = Liveness(net, plan.io)
    out = []
    x = 0
    peak = plan.peak_ram_bytes
    peak_k = next(k for k, b in enumerate(plan.blocks) if b.ram_bytes == peak)
    for k, (b, s) in enumerate(zip(plan.blocks, scheds)):
        ins = set(net.layers[s.first].srcs)
        segs = []
        if plan.cost_model == "runtime":
            for t in sorted(s.resident, key=lambda t: (t == s.last + 1, t not in ins, t)):
                if not live.counted[t]:
                    continue
                role = "output" if t == s.last + 1 else "input" if t in ins else "held"
                if role == "input" and s.inplace == t:
                    role_note = "the output overwrites it in place"
                else:
                    role_note = ""
                segs.append({"role": role, "tensor": t, "name": tensor_name(net, t),
                             "shape": _shape(net, t), "bytes": live.tbytes[t], "note": role_note})
            if s.rings:
                segs.append({"role": "ring", "tensor": None, "name": _scratch_name(s),
                             "bytes": int(s.scratch_bytes), "shape": [], "note": _ring_note(s)})
            if sum(g["bytes"] for g in segs) != b.ram_bytes:
                raise InputError(f"plan block {k} ({b.label}) claims {b.ram_bytes:,} B of RAM but "
                                 f"its schedule holds {sum(g['bytes'] for g in segs):,} B")
        else:
            segs.append({"role": "held", "tensor": None, "name": "block RAM (paper's model)",
                         "shape": [], "bytes": int(b.ram_bytes), "note": ""})
        ops = [net.layers[l].op for l in range(b.first_layer, b.last_layer + 1)]
        lmacs = sum(net.layers[l].macs for l in range(b.first_layer, b.last_layer + 1))
        out.append({
            "index": k, "first": b.first_layer, "last": b.last_layer, "label": b.label,
            "ops": ops, "mode": b.mode, "tile": b.tile, "ram_bytes": b.ram_bytes,
            "ring_bytes": sum(g["bytes"] for g in segs if g["role"] == "ring"),
            "macs": b.macs, "layer_macs": lmacs, "recompute_macs": b.macs - lmacs,
            "est_cycles": b.est_cycles, "x0": x, "x1": x + b.est_cycles,
            "inplace": s.inplace is not None, "peak": k == peak_k, "segments": segs})
        x += b.est_cycles
    return out


def _scratch_name(s) -> str:
    what = "patch buffers" if s.mode == "recompute" else "rings"
    return f"scratch region ({len(s.rings)} {what})"


def _ring_note(s) -> str:
    """The rings of a block's scratch region: layer, rows x cols x channels, bytes, offset."""
    parts = [f"layer {r.layer}: {r.rows}x{r.cols}x{r.channels} = {r.bytes:,} B @+{r.offset:,}"
             for r in s.rings[:12]]
    more = f"; and {len(s.rings) - 12} more" if len(s.rings) > 12 else ""
    return "; ".join(parts) + more


def layout_data(net, plan, scheds) -> dict | None:
    """The arena as the code generator lays it out: one rectangle per arena tensor (offset,
    bytes, first and last block it is allocated in) and per ring region (its block only), and
    the busiest block (most bytes allocated)."""
    if plan.cost_model != "runtime":
        return None
    from .layout import plan_layout
    lay = plan_layout(net, scheds, plan.io)
    live = Liveness(net, plan.io)
    n = net.n_layers
    nb = len(scheds)
    block_of = {}
    for k, s in enumerate(scheds):
        for l in range(s.first, s.last + 1):
            block_of[l] = k
    rects = []
    for t, off in sorted(lay.tensor_offset.items()):
        if not live.counted[t]:
            continue
        # a concat output written through slices is alive from its first slice's producer on
        born = live.born.get(t, t)
        first = 0 if born == 0 else block_of[born - 1]
        lu = live.last_use[t]
        last = nb - 1 if (t == n or lu >= n) else max(first, block_of.get(lu, first))
        rects.append({"kind": "tensor", "tensor": t, "name": tensor_name(net, t),
                      "shape": _shape(net, t), "offset": int(off), "bytes": live.tbytes[t],
                      "first_block": first, "last_block": last})
    for k, (s, offs) in enumerate(zip(scheds, lay.ring_offsets)):
        if s.rings and offs:
            # the block's scratch region: its rings at their offsets inside it
            base = int(offs[0]) - int(s.rings[0].offset)
            rects.append({"kind": "ring", "tensor": None, "name": f"{_scratch_name(s)}, block {k}",
                          "shape": [], "offset": base, "bytes": int(s.scratch_bytes),
                          "first_block": k, "last_block": k, "note": _ring_note(s)})
    used = []
    for k in range(nb):
        now = [r for r in rects if r["first_block"] <= k <= r["last_block"]]
        # an in-place output shares its input's bytes: count every byte once
        spans = sorted((r["offset"], r["offset"] + r["bytes"]) for r in now)
        tot, end = 0, 0
        for a, b in spans:
            if b > end:
                tot += b - max(a, end)
                end = b
        top = max((b for _a, b in spans), default=0)
        used.append({"block": k, "bytes": tot, "top": top})
    busiest = max(used, key=lambda u: (u["bytes"], -u["block"])) if used else None
    return {"arena_bytes": lay.arena_bytes, "fallback": lay.fallback, "rects": rects,
            "per_block": used, "busiest": busiest}


def _vanilla(net, dag, plan) -> dict:
    """The layer-by-layer plan's figures (its arena: the same layout search)."""
    path = dag.vanilla_path()
    tot = dag.totals(path)
    arena = None
    if dag.cost_model == "runtime":
        from .layout import plan_layout
        arena = plan_layout(net, [dag.schedules[e] for e in path], dag.io).arena_bytes
    return {"peak_ram_bytes": tot["peak"], "arena_bytes": arena, "macs": tot["macs"],
            "mac_overhead": 1.0, "est_cycles": tot["cycles"], "blocks": len(path)}


def pareto_data(net, dag, plan, metric: str, status=None) -> dict:
    """The exact front of the query's metric (label-setting search on the plan's DAG) with the
    chosen plan and the unfused point; for the zoo models, the paper's front and published
    P1/P2 points beside msfopt's front under the paper's own cost model."""
    from .backends import pareto
    from . import paper_points
    fr = pareto.front(dag, metric)
    lat = "est_cycles" if metric == "cycles" else "macs"
    van = _vanilla(net, dag, plan)
    out = {"metric": metric, "cost_model": dag.cost_model,
           "points": [[p.peak, p.latency] for p in fr.points],
           "chosen": [plan.peak_ram_bytes, getattr(plan, lat)],
           "unfused": [van["peak_ram_bytes"], van[lat]], "seconds": round(fr.seconds, 4),
           "paper": None}
    key = net.name if str(net.source).startswith("zoo:") else None
    if key in paper_points.PARETO:
        paper = {"points": [list(p) for p in paper_points.PARETO[key]],
                 "published": [[p, m, lbl] for p, m, lbl in paper_points.PUBLISHED[key]]}
        if dag.cost_model == "msfcnn" and metric == "macs":
            out["paper"] = paper
        else:
            from .dag import build_dag
            if status:
                status("building the paper-model DAG for the paper's points")
            pdag = build_dag(net, cost_model="msfcnn")
            pf = pareto.front(pdag, "macs")
            paper["front"] = [[p.peak, p.latency] for p in pf.points]
            out["paper_model"] = paper
    return out


def graph_data(net, plan) -> dict:
    """The op graph as a layered drawing: each layer's rank (1 + the deepest rank of the layers
    it reads), its lane within the rank, and the block that runs it."""
    block_of = {}
    for k, b in enumerate(plan.blocks):
        for l in range(b.first_layer, b.last_layer + 1):
            block_of[l] = k
    rank = {0: 0}     # tensor id -> rank of its producer (input: 0)
    nodes, lanes = [], {}
    for l, L in enumerate(net.layers):
        r = 1 + max(rank[t] for t in L.srcs)
        rank[l + 1] = r
        lane = lanes.get(r, 0)
        lanes[r] = lane + 1
        nodes.append({"layer": l, "op": L.op, "name": L.name, "rank": r, "lane": lane,
                      "block": block_of[l], "out": [int(v) for v in L.out_shape],
                      "macs": int(L.macs)})
    edges = [[t - 1, l] for l, L in enumerate(net.layers) for t in dict.fromkeys(L.srcs)]
    return {"nodes": nodes, "edges": edges, "ranks": max(rank.values()),
            "lanes": max(lanes.values()) if lanes else 1,
            "outputs": [t - 1 for t in net.output_ids]}


def tflm_figures(source) -> dict | None:
    """TFLM's arena (head = activations + scratch, total) for a .tflite model, measured by the
    tflite-micro interpreter in a child process (it can abort the process on some models);
    None when the model is not TFLite, ``{"error": ...}`` when tflite-micro is absent or fails."""
    src = str(source or "")
    if not src.lower().endswith(".tflite") or not os.path.isfile(src):
        return None
    code = ("import sys, json\nfrom msfopt.tflm_ref import tflm_allocations\n"
            "a = tflm_allocations(sys.argv[1])\n"
            "print(json.dumps({'head': a.get('head'), 'total': a['total'], 'tail': a.get('tail')}))")
    try:
        r = subprocess.run([sys.executable, "-c", code, src], capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"tflite-micro did not run: {type(exc).__name__}"}
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
        if "tflite-micro" in tail or "ImportError" in tail or "ModuleNotFound" in tail:
            return {"error": "tflite-micro is not installed (pip install tflite-micro)"}
        return {"error": f"tflite-micro failed: {tail[:200]}"}
    import json
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "tflite-micro printed no allocation report"}


def gather(net, dag, plan, budget: int | None = None, pareto: bool = True, tflm: bool = True,
           measured: dict | None = None, status=None) -> dict:
    """Everything the report page shows, as plain JSON-able data.

    ``dag``: the DAG of the plan's query (cost model, io, modes, cycle model), for the
    layer-by-layer figures and the Pareto front; ``budget``: the query's RAM cap in bytes;
    ``measured``: a ``msfopt run --json`` result of this plan (totals only); ``status``: a
    callable taking a progress message."""
    say = status or (lambda _m: None)
    say("laying out the arena")
    scheds = block_schedules(net, plan)
    blocks = timeline(net, plan, scheds)
    lay = layout_data(net, plan, scheds)
    if lay is not None and plan.arena_bytes is not None and lay["arena_bytes"] != plan.arena_bytes:
        raise InputError(f"plan arena_bytes {plan.arena_bytes:,} does not match the layout of its "
                         f"blocks ({lay['arena_bytes']:,} B)")
    metric = (plan.constraints or {}).get("metric") or (
        "macs" if plan.cost_model == "msfcnn" or plan.objective == "macs" else "cycles")
    cons = dict(plan.constraints or {})
    peak_k = next(b["index"] for b in blocks if b["peak"])
    d = {
        "schema": 1,
        "model": net.name, "source": str(net.source or ""), "dtype": net.dtype,
        "n_layers": net.n_layers, "input_shape": [int(v) for v in net.input_shape],
        "framework": net.provenance.framework if net.provenance is not None else "zoo",
        "mcu": plan.mcu,
        "query": {"objective": plan.objective, "metric": metric, "io": plan.io,
                  "cost_model": plan.cost_model, "ram_bytes": cons.get("ram_bytes"),
                  "max_overhead": _num(cons.get("max_overhead")),
                  "latency_budget": cons.get("latency_budget")},
        "plan": {"peak_ram_bytes": plan.peak_ram_bytes, "arena_bytes": plan.arena_bytes,
                 "macs": plan.macs, "mac_overhead": plan.mac_overhead,
                 "est_cycles": plan.est_cycles, "backend": plan.backend, "status": plan.status,
                 "solve_seconds": plan.solve_seconds, "setting": plan.setting,
                 "blocks": len(plan.blocks), "cross_check": plan.cross_check, "note": plan.note,
                 "gap": plan.gap},
        "vanilla": _vanilla(net, dag, plan),
        "budget_bytes": budget,
        "blocks": blocks, "peak_block": peak_k,
        "layout": lay,
        "graph": graph_data(net, plan),
        "tflm": None, "pareto": None, "measured": measured,
    }
    if tflm:
        say("measuring TFLM's arena")
        d["tflm"] = tflm_figures(net.source)
    if pareto:
        say(f"computing the exact Pareto front ({metric})")
        d["pareto"] = pareto_data(net, dag, plan, metric, status=say)
    return d


def _num(v):
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return v
