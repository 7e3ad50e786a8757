"""The plan report as ONE self-contained HTML page (inline CSS and SVG, no script, no external
reference), rendered from :func:`msfopt.report.gather`'s dict.

Every figure of the header carries ``data-key`` / ``data-value`` attributes with the raw number,
and the whole dict is embedded as JSON (``<script type="application/json" id="msfopt-report">``,
inert data), so tools and tests read the same numbers a person sees.  Every string from the model
is escaped with :func:`html.escape`.
"""
from __future__ import annotations

import json

from .report_svg import (esc, fmt_bytes, graph_svg, layout_svg, pareto_svg, role_legend,
                         timeline_svg)

SECTIONS = ("summary", "timeline", "layout", "blocks", "pareto", "graph")

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, 'DejaVu Sans', Arial, sans-serif; color: #111; background: #fff;
       margin: 0 auto; padding: 12px 20px 40px; max-width: 1240px; line-height: 1.35; }
h1 { font-size: 1.45rem; margin: 0.2em 0 0.1em; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 1.4em 0 0.4em; border-bottom: 2px solid #333; }
p.sub, p.note { margin: 0.2em 0; color: #333; font-size: 0.92rem; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { border: 1px solid #999; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #e8e8e8; }
td.l, th.l { text-align: left; }
td.nw { white-space: nowrap; }
tr.peak td { font-weight: bold; background: #f0f0f0; }
table.blocks { width: 100%; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
.card { border: 1px solid #777; padding: 5px 10px; min-width: 120px; }
.card b { display: block; font-size: 1.15rem; }
.card span { font-size: 0.8rem; color: #333; }
.key { display: inline-block; margin-right: 14px; font-size: 0.85rem; }
.key svg { display: inline-block; vertical-align: middle; margin: 0; }
svg { display: block; height: auto; margin: 4px 0; }
.ok { font-weight: bold; }
.bad { font-weight: bold; text-decoration: underline; }
@media print { body { max-width: none; padding: 0; } section { break-inside: avoid; }
               h2 { break-after: avoid; } }
"""


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if key.endswith("bytes"):
        return f"{v:,} B"
    if key == "mac_overhead":
        return f"{v:.6f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _cell(scope: str, key: str, v, cls: str = "") -> str:
    raw = "" if v is None else str(v)
    return (f'<td class="{cls}" data-key="{esc(scope)}.{esc(key)}" data-value="{esc(raw)}">'
            f'{esc(_fmt(key, v))}</td>')


def _summary(d: dict) -> str:
    p, v, q = d["plan"], d["vanilla"], d["query"]
    tf = d.get("tflm")
    cc = p.get("cross_check")
    parts = []
    qtxt = [f"objective {q['objective']} (metric {q['metric']})", f"cost model {q['cost_model']}",
            f"io {q['io']}"]
    if q.get("ram_bytes") is not None:
        qtxt.append(f"RAM cap {q['ram_bytes']:,} B")
    if q.get("max_overhead") is not None:
        qtxt.append(f"max overhead F <= {q['max_overhead']}")
    if q.get("latency_budget") is not None:
        qtxt.append(f"latency budget {q['latency_budget']:,} cycles")
    parts.append(f'<p class="sub">MCU profile: <b data-key="mcu">{esc(d.get("mcu") or "none")}</b>'
                 f' &middot; query: {esc("; ".join(qtxt))}</p>')
    parts.append(f'<p class="sub">source: {esc(d["source"])} &middot; {esc(d["dtype"])}, '
                 f'{d["n_layers"]} layers, input {esc("x".join(map(str, d["input_shape"])))} '
                 f'(H x W x C) &middot; setting <code data-key="plan.setting">'
                 f'{esc(p["setting"])}</code></p>')
    cards = [("peak RAM", fmt_bytes(p["peak_ram_bytes"]), "peak_ram_bytes"),
             ("arena", fmt_bytes(p["arena_bytes"]) if p["arena_bytes"] is not None else "-",
              "arena_bytes"),
             ("MACs", f"{p['macs']:,}", "macs"), ("F (MAC overhead)", f"{p['mac_overhead']:.4f}",
                                                  "mac_overhead"),
             ("est. cycles", f"{p['est_cycles']:,}", "est_cycles")]
    parts.append('<div class="cards">' + "".join(
        f'<div class="card"><span>{esc(n)}</span><b>{esc(val)}</b></div>' for n, val, _k in cards)
        + "</div>")
    rows = [("peak RAM", "peak_ram_bytes"), ("arena (linked object)", "arena_bytes"),
            ("MACs", "macs"), ("F = MACs / layer-by-layer MACs", "mac_overhead"),
            ("est. cycles", "est_cycles"), ("blocks", "blocks")]
    t = ['<table class="summary"><tr><th class="l">figure</th><th>this plan</th>'
         '<th>layer by layer</th>' + ('<th>TFLite Micro</th>' if tf else "") + "</tr>"]
    for name, key in rows:
        tcell = ""
        if tf:
            if key == "arena_bytes" and "total" in tf:
                tcell = _cell("tflm", "total_bytes", tf["total"])
            elif key == "peak_ram_bytes" and "head" in tf:
                tcell = _cell("tflm", "head_bytes", tf["head"])
            else:
                tcell = "<td>-</td>"
        t.append(f'<tr><td class="l">{esc(name)}</td>{_cell("plan", key, p.get(key))}'
                 f'{_cell("vanilla", key, v.get(key))}{tcell}</tr>')
    t.append("</table>")
    parts.append("".join(t))
    if tf:
        if "error" in tf:
            parts.append(f'<p class="note">TFLite Micro: {esc(tf["error"])}</p>')
        else:
            parts.append('<p class="note">TFLite Micro column: measured by the tflite-micro '
                         'interpreter (<code>print_allocations()</code>): peak row = arena head '
                         '(activations + scratch), arena row = arena total (head + persistent '
                         'tail).</p>')
    solver = (f'solver <b data-key="plan.backend">{esc(p["backend"])}</b>, status '
              f'<b data-key="plan.status">{esc(p["status"])}</b>, {p["solve_seconds"] * 1000:.1f} ms')
    if cc:
        agree = "agree" if cc.get("agree") else "DISAGREE"
        solver += (f'; cross-check {esc(cc.get("backend"))}: <span data-key="cross_check.agree" '
                   f'data-value="{str(bool(cc.get("agree"))).lower()}" class="'
                   f'{"ok" if cc.get("agree") else "bad"}">{agree}</span> (objective '
                   f'{esc(_fmt("objective", cc.get("objective")))})')
    else:
        solver += "; cross-check skipped"
    parts.append(f'<p class="sub">{solver}</p>')
    if p.get("note"):
        parts.append(f'<p class="note">note: {esc(p["note"])}</p>')
    m = d.get("measured")
    if m:
        bits = []
        for key, name in (("target", "target"), ("instructions", "instructions in msf_model_run"),
                          ("stack_hwm", "stack high-water mark (B)"), ("total_ram", "total RAM (B)"),
                          ("arena_bytes", "linked arena (B)"), ("verdict", "output")):
            if m.get(key) is not None:
                val = m[key]
                bits.append(f'{esc(name)} <b data-key="measured.{key}">'
                            f'{esc(f"{val:,}" if isinstance(val, int) else val)}</b>')
        parts.append('<p class="sub">measured run (<code>msfopt run --json</code>, whole model): '
                     + " &middot; ".join(bits) + "</p>")
    return "".join(parts)


def _blocks_table(d: dict) -> str:
    head = ["#", "layers", "ops", "mode", "tile", "RAM (B)", "of which rings (B)", "MACs",
            "recomputed MACs", "est. cycles", "share of cycles"]
    per = (d.get("measured") or {}).get("block_instructions")
    if per is not None and len(per) != len(d["blocks"]):
        per = None     # a run of another plan: not comparable block by block
    if per is not None:
        head += ["measured instructions", "est. vs measured"]
    total = max(1, d["plan"]["est_cycles"])
    out = ['<table class="blocks"><tr>' + "".join(
        f'<th class="{"l" if h in ("layers", "ops", "mode") else ""}">{esc(h)}</th>'
        for h in head) + "</tr>"]
    for b in d["blocks"]:
        ops = ", ".join(b["ops"]) if len(b["ops"]) <= 6 else \
            f'{", ".join(b["ops"][:5])}, ... ({len(b["ops"])} ops)'
        mode = b["mode"] + (" (in place)" if b["inplace"] and b["mode"] == "unfused" else "")
        rec = b["recompute_macs"]
        rec_txt = f'{rec:,} (+{rec / b["layer_macs"]:.1%})' if rec and b["layer_macs"] else "0"
        out.append(
            f'<tr class="{"peak" if b["peak"] else ""}" data-block="{b["index"]}">'
            f'<td>{b["index"]}{" (peak)" if b["peak"] else ""}</td><td class="l">{esc(b["label"])}</td>'
            f'<td class="l">{esc(ops)}</td><td class="l nw">{esc(mode)}</td>'
            f'<td>{b["tile"] if b["mode"] != "unfused" else "-"}</td>'
            f'<td data-value="{b["ram_bytes"]}">{b["ram_bytes"]:,}</td>'
            f'<td>{b["ring_bytes"]:,}</td><td data-value="{b["macs"]}">{b["macs"]:,}</td>'
            f'<td>{rec_txt}</td><td data-value="{b["est_cycles"]}">{b["est_cycles"]:,}</td>'
            f'<td>{b["est_cycles"] / total:.1%}</td>'
            + (f'<td data-key="measured.block.{b["index"]}" data-value="{per[b["index"]]}">'
               f'{per[b["index"]]:,}</td><td>'
               + (f'{(b["est_cycles"] - per[b["index"]]) / per[b["index"]]:+.1%}'
                  if per[b["index"]] else "-") + '</td>' if per is not None else "")
            + '</tr>')
    out.append("</table>")
    if per is not None:
        out.append('<p class="note">Measured instructions per block: QEMU&#39;s instruction '
                   'count between the runtime&#39;s block boundaries '
                   '(<code>msf_block_boundary</code>), from the <code>--run-json</code> result; '
                   'the stack is measured for the whole run only.</p>')
    elif not d.get("measured"):
        out.append('<p class="note">No measurement shown: pass the result of <code>msfopt run '
                   'DIR --target T --json RUN.json</code> for this plan with <code>--run-json '
                   'RUN.json</code> to add the measured instructions of every block (QEMU) and '
                   'the run&#39;s stack and RAM.</p>')
    return "".join(out)


def _pareto(d: dict) -> str:
    pa = d.get("pareto")
    if not pa:
        return '<p class="note">Pareto front skipped (--no-pareto).</p>'
    unit = "B" if pa["cost_model"] == "runtime" else "elements"
    paper = pa.get("paper") or {}
    out = [pareto_svg(pa["points"], pa["metric"], chosen=pa["chosen"], unfused=pa["unfused"],
                      budget=d.get("budget_bytes"), paper=paper.get("points"),
                      published=paper.get("published"),
                      title="exact Pareto front of peak RAM and latency", unit=unit)]
    out.append(f'<p class="note">Exact front of ({unit} peak RAM, {esc(pa["metric"])}) by '
               f'label-setting search on the plan&#39;s fusion DAG ({len(pa["points"])} points, '
               f'{pa["seconds"] * 1000:.0f} ms). Every point is a plan; no plan lies below and '
               f'to the left of the staircase.</p>')
    pm = pa.get("paper_model")
    if pm:
        out.append("<h3>The paper&#39;s cost model (msf-CNN &sect;5.2)</h3>")
        out.append(pareto_svg(pm["front"], "macs", paper=pm["points"], published=pm["published"],
                              title="front under the paper's analytic model with its points",
                              unit="elements", height=340))
        out.append('<p class="note">msfopt&#39;s exact front under the paper&#39;s analytic '
                   '(msfcnn) cost model, peak in elements, latency in MACs, with the paper&#39;s '
                   'front and published P1/P2 results: the paper&#39;s points are in its own '
                   'units, so they are shown here and not on the runtime front above.</p>')
    return "".join(out)


def _graph_legend(d: dict) -> str:
    return ('<p class="note">One box per op, x = depth from the input (longest path in ops, '
            'wrapped into rows; d<i>N</i> = depth of the row&#39;s first column), fill '
            '= the block running it (four lightness steps, repeating); thick outline = a fused '
            'block, dashed outline = a graph output. Hover a box for its layer, shape and '
            'block.</p>')


def render(d: dict) -> str:
    """The report page for ``d`` (:func:`msfopt.report.gather`)."""
    title = f"msfopt plan report: {d['model']}"
    data = json.dumps(d, separators=(",", ":"), default=str)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    pk = d["blocks"][d["peak_block"]]
    lay = d.get("layout")
    sec = []
    sec.append(f'<section id="summary" data-section="summary"><h1>{esc(title)}</h1>'
               f'{_summary(d)}</section>')
    sec.append('<section id="timeline" data-section="timeline"><h2>Memory timeline</h2>'
               f'<p class="note">RAM held while each block runs, stacked by buffer; the peak '
               f'block {pk["index"]} (layers {esc(pk["label"])}, {esc(pk["mode"])}) holds '
               f'{pk["ram_bytes"]:,} B.</p>'
               + timeline_svg(d) + f'<p>{role_legend()}</p></section>')
    if lay:
        bz = lay["busiest"]
        fb = (" Nothing packs at the peak: the smallest larger arena found (CP-SAT, or first-fit)."
              if lay["fallback"] else "")
        sec.append('<section id="layout" data-section="layout"><h2>Arena layout</h2>'
                   f'<p class="note">Every arena tensor and ring buffer at the offset the code '
                   f'generator gives it (<code>plan_layout</code>), over the blocks it is '
                   f'allocated in; arena {lay["arena_bytes"]:,} B. Busiest block: '
                   f'{bz["block"]} ({bz["bytes"]:,} B allocated, highest address '
                   f'{bz["top"]:,}).{fb}</p>' + layout_svg(d)
                   + '<p><span class="key">fills: successive tensors in four lightness steps; '
                   'hatched: scratch regions (rings / patch buffers); dashed outline: the busiest block</span></p>'
                   + "</section>")
    else:
        sec.append('<section id="layout" data-section="layout"><h2>Arena layout</h2>'
                   '<p class="note">No arena layout: the plan uses the paper&#39;s analytic cost '
                   'model (--cost-model msfcnn), which has no generated arena.</p></section>')
    sec.append('<section id="blocks" data-section="blocks"><h2>Blocks</h2>'
               + _blocks_table(d) + "</section>")
    sec.append('<section id="pareto" data-section="pareto"><h2>Pareto front</h2>'
               + _pareto(d) + "</section>")
    sec.append('<section id="graph" data-section="graph"><h2>Op graph</h2>'
               + _graph_legend(d) + graph_svg(d) + "</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            + "".join(sec)
            + f'<script type="application/json" id="msfopt-report">{data}</script>'
            + "</body></html>\n")
