"""Inline SVG figures of the plan report, drawn from :func:`msfopt.report.gather`'s dict: the
memory timeline, the arena layout, the Pareto front and the op graph.

Plain SVG text (no scripts, no external references); every string that comes from the model goes
through :func:`esc`.  Colours are steps of lightness of one hue plus hatching for ring buffers and
fused blocks, so the figures read in greyscale and in print.
"""
from __future__ import annotations

import html
import math

#: fills of the RAM roles, dark to light (the ring role is hatched)
ROLE_FILL = {"input": "#1d3f6e", "held": "#6f93c0", "output": "#c4d7ee", "ring": "url(#hatch)"}
#: block colours, alternating lightness steps (text colour for each)
BLOCK_FILLS = [("#173a66", "#ffffff"), ("#9dbfe3", "#000000"), ("#4f79ad", "#ffffff"),
               ("#e3edf8", "#000000")]
FONT = "font-family:system-ui,'DejaVu Sans',Arial,sans-serif"


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def fmt_int(v) -> str:
    return f"{int(v):,}"


def fmt_bytes(v) -> str:
    v = int(v)
    if v >= 10 * 1024:
        return f"{v / 1024:.1f} KiB"
    return f"{v:,} B"


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + step * 1e-9:
        out.append(t)
        t += step
    return out


def byte_axis(vmax: float):
    """(divisor, unit label) for a byte axis."""
    return (1024, "KiB") if vmax >= 4096 else (1, "B")


def metric_axis(metric: str, vmax: float):
    unit = "est. cycles" if metric == "cycles" else "MACs"
    if vmax >= 5e6:
        return 1e6, f"{unit} (millions)"
    if vmax >= 5e3:
        return 1e3, f"{unit} (thousands)"
    return 1, unit


def _num(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:,.0f}"


DEFS = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#222222" stroke-width="2.2"/></pattern>'
        '<pattern id="dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<circle cx="2.5" cy="2.5" r="1" fill="#000000" fill-opacity="0.55"/></pattern></defs>')


def _svg_open(w: int, h: int, label: str, cls: str) -> str:
    return (f'<svg class="{cls}" viewBox="0 0 {w} {h}" '
            f'width="100%" role="img" aria-label="{esc(label)}" style="{FONT};max-width:{w}px">'
            + DEFS)


def _text(x, y, s, size=11, anchor="start", extra="") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
            f'{extra}>{esc(s)}</text>')


def _label(x, y, s, size=12, anchor="middle") -> str:
    """Bold text with a white halo, readable over bars and lines."""
    return _text(x, y, s, size, anchor, ' font-weight="bold" stroke="#ffffff" stroke-width="4" '
                 'paint-order="stroke" stroke-linejoin="round"')


def _yaxis(x0, y_of, ticks, div, label, top, bottom, width) -> list[str]:
    out = [f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{bottom}" stroke="#000"/>']
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0 + width}" y2="{y:.1f}" '
                   f'stroke="#000" stroke-opacity="0.12"/>')
        out.append(_text(x0 - 6, y + 4, _num(t / div), 11, "end"))
    mid = (top + bottom) / 2
    out.append(f'<text x="14" y="{mid:.1f}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {mid:.1f})">{esc(label)}</text>')
    return out


# -- memory timeline ------------------------------------------------------------------------------

def _block_xs(blocks, x0: float, avail: float, minw: float = 3.0) -> list[tuple[float, float]]:
    """Pixel extent of each block: width = a minimum plus a share proportional to est. cycles."""
    total = sum(max(0, b["est_cycles"]) for b in blocks) or 1
    free = max(0.0, avail - minw * len(blocks))
    xs, x = [], x0
    for b in blocks:
        w = minw + free * max(0, b["est_cycles"]) / total
        xs.append((x, x + w))
        x += w
    return xs


def _cycle_to_px(blocks, xs, c: float) -> float:
    for b, (a, z) in zip(blocks, xs):
        if c <= b["x1"] or b is blocks[-1]:
            span = max(1, b["x1"] - b["x0"])
            return a + (z - a) * min(1.0, max(0.0, (c - b["x0"]) / span))
    return xs[-1][1]


def timeline_svg(d: dict, width: int = 1200, height: int = 380) -> str:
    blocks = d["blocks"]
    budget = d.get("budget_bytes")
    peak = d["plan"]["peak_ram_bytes"]
    left, right, top, bottom = 72, 16, 26, height - 58
    vmax = max([peak] + ([budget] if budget else [])) * 1.1 or 1
    paper = d["query"]["cost_model"] == "msfcnn"     # elements and MACs, the paper's units
    div, unit = (1000, "thousand elements") if paper else byte_axis(vmax)
    xs = _block_xs(blocks, left, width - left - right)

    def y_of(v):
        return bottom - (bottom - top) * v / vmax

    out = [_svg_open(width, height, "memory timeline: RAM of each block in execution order",
                     "fig-timeline")]
    ticks = nice_ticks(0, vmax / div, 6)
    out += _yaxis(left, lambda t: y_of(t * div), ticks, 1, f"RAM ({unit})", top, bottom,
                  width - left - right)
    for b, (a, z) in zip(blocks, xs):
        base = 0
        g = [f'<g class="tl-block" data-block="{b["index"]}" data-ram="{b["ram_bytes"]}">']
        for s in b["segments"]:
            y1, y0 = y_of(base + s["bytes"]), y_of(base)
            shape = "x".join(map(str, s["shape"]))
            tip = (f'block {b["index"]} (layers {b["label"]}, {b["mode"]}): {s["name"]} '
                   f'[{s["role"]}] ' + (f'{shape} = ' if shape else "") + f'{s["bytes"]:,} B'
                   + (f'; {s["note"]}' if s.get("note") else ""))
            g.append(f'<rect x="{a:.2f}" y="{y1:.2f}" width="{max(0.5, z - a):.2f}" '
                     f'height="{max(0.0, y0 - y1):.2f}" fill="{ROLE_FILL[s["role"]]}" '
                     f'stroke="#ffffff" stroke-width="0.4"><title>{esc(tip)}</title></rect>')
            base += s["bytes"]
        g.append("</g>")
        out += g
        if z - a >= 26:
            out.append(_text((a + z) / 2, bottom + 13, b["label"], 9, "middle"))
    pk = blocks[d["peak_block"]]
    a, z = xs[pk["index"]]
    yp = y_of(pk["ram_bytes"])
    out.append(f'<rect class="peak-mark" x="{a - 1:.2f}" y="{yp - 1:.2f}" '
               f'width="{z - a + 2:.2f}" height="{bottom - yp + 1:.2f}" fill="none" '
               f'stroke="#000" stroke-width="2.5"/>')
    lbl = f'peak: block {pk["index"]} (layers {pk["label"]}) {pk["ram_bytes"]:,} B'
    if (a + z) / 2 > width * 0.6:
        out.append(_label(min(z, width - right), max(top - 8, yp - 8), lbl, 12, "end"))
    else:
        out.append(_label(max(a, left), max(top - 8, yp - 8), lbl, 12, "start"))
    if budget:
        yb = y_of(budget)
        out.append(f'<line class="budget-line" x1="{left}" y1="{yb:.1f}" x2="{width - right}" '
                   f'y2="{yb:.1f}" stroke="#000" stroke-width="1.6" stroke-dasharray="7 4"/>')
        out.append(_label(width - right - 4, yb - 5, f"RAM budget {budget:,} B", 11, "end"))
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" '
               f'stroke="#000"/>')
    total = blocks[-1]["x1"] if blocks else 0
    cdiv, clabel = metric_axis("macs" if paper else "cycles", total)
    for t in nice_ticks(0, total / cdiv, 8):
        x = _cycle_to_px(blocks, xs, t * cdiv)
        out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                   f'stroke="#000"/>')
        out.append(_text(x, bottom + 26, _num(t), 10, "middle"))
    out.append(_text((left + width - right) / 2, height - 12,
                     f"execution order, block width proportional to {clabel} "
                     f"(cumulative; total {total:,} {'MACs' if paper else 'cycles'})", 12,
                     "middle"))
    out.append("</svg>")
    return "".join(out)


def role_legend() -> str:
    items = []
    from .report import ROLE_NAMES
    for role in ("input", "held", "output", "ring"):
        items.append(f'<span class="key"><svg width="16" height="12" aria-hidden="true">{DEFS}'
                     f'<rect width="16" height="12" fill="{ROLE_FILL[role]}" stroke="#000" '
                     f'stroke-width="0.6"/></svg> {esc(ROLE_NAMES[role])}</span>')
    return " ".join(items)


# -- arena layout ---------------------------------------------------------------------------------

def layout_svg(d: dict, width: int = 1200, height: int = 430) -> str:
    lay = d["layout"]
    blocks = d["blocks"]
    nb = len(blocks)
    arena = max(1, lay["arena_bytes"])
    left, right, top, bottom = 72, 16, 26, height - 52
    div, unit = byte_axis(arena)
    bw = (width - left - right) / max(1, nb)

    def y_of(v):
        return bottom - (bottom - top) * v / arena

    out = [_svg_open(width, height, "arena layout: address of every buffer over the blocks",
                     "fig-layout")]
    out += _yaxis(left, lambda t: y_of(t * div), nice_ticks(0, arena / div, 6), 1,
                  f"arena address ({unit})", top, bottom, width - left - right)
    bz = lay.get("busiest")
    if bz is not None:
        xb = left + bz["block"] * bw
        out.append(f'<rect x="{xb:.2f}" y="{top}" width="{bw:.2f}" height="{bottom - top}" '
                   f'fill="url(#dots)"/>')
    labels = []
    # earlier-born buffers drawn last: an in-place output (born in the block its input dies in)
    # shows from the next block on, its input whole in that block
    order = sorted(lay["rects"], key=lambda r: (r["first_block"], r["offset"]))
    fills = _distinct_fills([r for r in order if r["kind"] == "tensor"])
    for r in reversed(order):
        x = left + r["first_block"] * bw
        w = (r["last_block"] - r["first_block"] + 1) * bw
        y1, y0 = y_of(r["offset"] + r["bytes"]), y_of(r["offset"])
        if r["kind"] == "ring":
            fill, tc = "url(#hatch)", "#000"
        else:     # successive tensors in successive lightness steps
            fill, tc = fills[id(r)]
        shape = "x".join(map(str, r["shape"]))
        first, last = blocks[r["first_block"]], blocks[r["last_block"]]
        tip = (f'{r["name"]}: ' + (f'{shape}, ' if shape else "")
               + f'{r["bytes"]:,} B at offset {r["offset"]:,}; alive in blocks '
               f'{r["first_block"]}-{r["last_block"]} (layers {first["first"]}-{last["last"]})'
               + (f'; {r["note"]}' if r.get("note") else ""))
        out.append(f'<rect class="arena-rect" data-kind="{r["kind"]}" '
                   f'data-offset="{r["offset"]}" data-bytes="{r["bytes"]}" x="{x + 0.5:.2f}" '
                   f'y="{y1:.2f}" width="{max(0.8, w - 1):.2f}" height="{max(0.6, y0 - y1):.2f}" '
                   f'fill="{fill}" stroke="#000" stroke-width="0.6"><title>{esc(tip)}</title>'
                   f'</rect>')
        # the label in the columns after the producer's (where the tensor is read), if any
        lx0 = x + (bw if r["last_block"] > r["first_block"] else 0)
        if x + w - lx0 >= 30 and y0 - y1 >= 13 and r["kind"] == "tensor":
            labels.append(_text((lx0 + x + w) / 2, (y0 + y1) / 2 + 4, f't{r["tensor"]}', 10,
                                "middle",
                                f' fill="{tc}" pointer-events="none"'))
    out += labels
    if bz is not None:     # drawn over the buffers: the busiest block's column, outlined
        out.append(f'<rect class="busiest-mark" x="{xb:.2f}" y="{top - 2}" width="{bw:.2f}" '
                   f'height="{bottom - top + 4}" fill="none" stroke="#000" stroke-width="2.4" '
                   f'stroke-dasharray="6 3"/>')
    ya = y_of(lay["arena_bytes"])
    out.append(f'<line x1="{left}" y1="{ya:.1f}" x2="{width - right}" y2="{ya:.1f}" '
               f'stroke="#000" stroke-width="1.4"/>')
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" '
               f'stroke="#000"/>')
    step = max(1, math.ceil(nb / max(1, (width - left - right) // 28)))
    for k in range(0, nb, step):
        out.append(_text(left + (k + 0.5) * bw, bottom + 14, str(k), 10, "middle"))
    if bz is not None:
        cx = left + (bz["block"] + 0.5) * bw
        txt = f'busiest: block {bz["block"]}, {bz["bytes"]:,} B allocated'
        if cx > width * 0.6:
            out.append(_label(min(cx + bw / 2, width - right), top - 8, txt, 12, "end"))
        else:
            out.append(_label(max(cx - bw / 2, left), top - 8, txt, 12, "start"))
    out.append(_text((left + width - right) / 2, height - 12,
                     f"block (execution order, one column per block; top line = arena "
                     f"{lay['arena_bytes']:,} B)", 12, "middle"))
    out.append("</svg>")
    return "".join(out)


def _distinct_fills(rects) -> dict:
    """A lightness step per tensor rectangle, greedily different from every rectangle touching
    it (overlapping or abutting in both address and time), so neighbours never merge visually."""
    out: dict = {}
    done = []
    for k, r in enumerate(rects):
        used = set()
        for q in done:
            if (q["first_block"] <= r["last_block"] + 1 and r["first_block"] <= q["last_block"] + 1
                    and q["offset"] <= r["offset"] + r["bytes"]
                    and r["offset"] <= q["offset"] + q["bytes"]):
                used.add(out[id(q)])
        free = [f for f in BLOCK_FILLS if f not in used]
        out[id(r)] = free[0] if free else BLOCK_FILLS[k % len(BLOCK_FILLS)]
        done.append(r)
    return out


# -- Pareto front ---------------------------------------------------------------------------------

def pareto_svg(points, metric: str, chosen=None, unfused=None, budget=None, paper=None,
               published=None, title: str = "", unit: str = "B", width: int = 1200,
               height: int = 420) -> str:
    """Staircase of the exact front (log RAM axis), the chosen plan, the unfused plan, the RAM
    budget and optionally the paper's front and published points."""
    left, right, top, bottom = 80, 230, 30, height - 52
    xsv = [p[0] for p in points] + [p[0] for p in (paper or [])] + \
        [p[0] for p in (published or [])] + ([chosen[0]] if chosen else []) + \
        ([unfused[0]] if unfused else []) + ([budget] if budget else [])
    ysv = [p[1] for p in points] + [p[1] for p in (paper or [])] + \
        [p[1] for p in (published or [])] + ([chosen[1]] if chosen else []) + \
        ([unfused[1]] if unfused else [])
    xs_pos = [v for v in xsv if v > 0] or [1]
    lx0, lx1 = math.log10(min(xs_pos) / 1.25), math.log10(max(xs_pos) * 1.25)
    ylo, yhi = min(ysv), max(ysv)
    pad = (yhi - ylo) * 0.08 or max(1, yhi * 0.05)
    ylo, yhi = max(0, ylo - pad), yhi + pad
    ydiv, ylabel = metric_axis(metric, yhi)

    def X(v):
        return left + (width - left - right) * (math.log10(max(v, 1e-9)) - lx0) / (lx1 - lx0)

    def Y(v):
        return bottom - (bottom - top) * (v - ylo) / (yhi - ylo)

    out = [_svg_open(width, height, title or "Pareto front", "fig-pareto")]
    yt = [t * ydiv for t in nice_ticks(ylo / ydiv, yhi / ydiv, 6)]
    out += _yaxis(left, Y, [t for t in yt if ylo <= t <= yhi], ydiv, ylabel, top, bottom,
                  width - left - right)
    xt = [m * 10 ** e for e in range(0, 10) for m in (1, 2, 3, 5, 7)
          if lx0 <= math.log10(m * 10 ** e) <= lx1]
    if len(xt) < 4:
        xt = [m * 10 ** e for e in range(0, 10) for m in range(1, 10)
              if lx0 <= math.log10(m * 10 ** e) <= lx1]
    for t in xt:
        x = X(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#000" '
                   f'stroke-opacity="0.12"/>')
        out.append(_text(x, bottom + 16, f"{t / 1000:g}", 11, "middle"))
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" '
               f'stroke="#000"/>')
    out.append(_text((left + width - right) / 2, height - 12,
                     f"peak RAM ({unit}, thousands, log scale)", 12, "middle"))
    if points:
        pts = sorted(points)
        path = [f"M{X(pts[0][0]):.1f},{Y(pts[0][1]):.1f}"]
        for (p0, l0), (p1, l1) in zip(pts, pts[1:]):
            path.append(f"H{X(p1):.1f}V{Y(l1):.1f}")
        path.append(f"H{width - right:.1f}")
        out.append(f'<path d="{"".join(path)}" fill="none" stroke="#3b5f8f" stroke-width="1.4"/>')
        for p, l in pts:
            out.append(f'<circle class="front-point" cx="{X(p):.1f}" cy="{Y(l):.1f}" r="3.6" '
                       f'fill="#3b5f8f"><title>{esc(f"front point: peak {p:,} {unit}, {metric} {l:,}")}'
                       f'</title></circle>')
    if paper:
        for p, l in paper:
            out.append(f'<circle class="paper-point" cx="{X(p):.1f}" cy="{Y(l):.1f}" r="8" '
                       f'fill="none" stroke="#000" stroke-width="1.3"><title>'
                       f'{esc(f"paper section 5.2 front: {p:,} elements, {l:,} MACs")}</title></circle>')
    if published:
        for p, l, lbl in published:
            x, y = X(p), Y(l)
            out.append(f'<path class="published-point" d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},'
                       f'{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}L{x + 5:.1f},{y - 5:.1f}" '
                       f'stroke="#000" stroke-width="2"><title>{esc(f"paper {lbl}: {p:,}, {l:,}")}'
                       f'</title></path>')
    if budget:
        xb = X(budget)
        out.append(f'<line class="budget-line" x1="{xb:.1f}" y1="{top}" x2="{xb:.1f}" '
                   f'y2="{bottom}" stroke="#000" stroke-dasharray="7 4" stroke-width="1.4"/>')
        near_right = xb > (left + width - right) / 2
        out.append(_label(xb - 4 if near_right else xb + 4, top + 12, f"budget {budget:,} B", 11,
                          "end" if near_right else "start"))
    if unfused:
        x, y = X(unfused[0]), Y(unfused[1])
        out.append(f'<rect class="unfused-point" x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" '
                   f'height="12" fill="#ffffff" stroke="#000" stroke-width="2"><title>'
                   f'{esc(f"layer by layer: peak {unfused[0]:,}, {metric} {unfused[1]:,}")}'
                   f'</title></rect>')
    if chosen:
        x, y = X(chosen[0]), Y(chosen[1])
        out.append(f'<path class="chosen-point" d="M{x:.1f},{y - 9:.1f}L{x + 9:.1f},{y:.1f}'
                   f'L{x:.1f},{y + 9:.1f}L{x - 9:.1f},{y:.1f}Z" fill="#000" stroke="#fff" '
                   f'stroke-width="1"><title>{esc(f"this plan: peak {chosen[0]:,}, {metric} {chosen[1]:,}")}'
                   f'</title></path>')
    # legend
    lx, ly = width - right + 16, top + 8
    items = [("front", f"exact front ({len(points)} points)")]
    if chosen:
        items.append(("chosen", "this plan"))
    if unfused:
        items.append(("unfused", "layer by layer (unfused)"))
    if paper:
        items.append(("paper", f"paper's front ({len(paper)} points)"))
    if published:
        items.append(("published", "paper's P1/P2 results"))
    if budget:
        items.append(("budget", "RAM budget"))
    for kind, lbl in items:
        sym = {"front": '<circle cx="{x}" cy="{y}" r="3.6" fill="#3b5f8f"/>',
               "chosen": '<path d="M{x},{y0}L{x1},{y}L{x},{y1}L{xm},{y}Z" fill="#000"/>',
               "unfused": '<rect x="{xm}" y="{y0}" width="12" height="12" fill="#fff" '
                          'stroke="#000" stroke-width="2"/>',
               "paper": '<circle cx="{x}" cy="{y}" r="7" fill="none" stroke="#000"/>',
               "published": '<path d="M{xm},{y0}L{x1},{y1}M{xm},{y1}L{x1},{y0}" stroke="#000" '
                            'stroke-width="2"/>',
               "budget": '<line x1="{xm}" y1="{y}" x2="{x1}" y2="{y}" stroke="#000" '
                         'stroke-dasharray="5 3"/>'}[kind]
        out.append(sym.format(x=lx + 6, y=ly, y0=ly - 6, y1=ly + 6, x1=lx + 12, xm=lx))
        out.append(_text(lx + 20, ly + 4, lbl, 11))
        ly += 20
    out.append("</svg>")
    return "".join(out)


# -- op graph -------------------------------------------------------------------------------------

OP_SHORT = {"conv": "conv", "dw": "dw", "maxpool": "maxp", "avgpool": "avgp", "gap": "gap",
            "dense": "fc", "add": "add", "mul": "mul", "act": "act", "concat": "cat",
            "slice": "slice", "shuffle": "shuf", "resize": "rsz", "reshape": "rshp",
            "convt": "convT"}


def graph_svg(d: dict, width: int = 1200) -> str:
    """Layered drawing: x = rank (longest path from the input), wrapped into rows; ops coloured by
    the block that runs them (lightness steps; fused blocks outlined thick)."""
    g = d["graph"]
    blocks = d["blocks"]
    nodes = g["nodes"]
    lanes = max(1, g["lanes"])
    nw, nh, px, py = 46, 20, 58, 26
    margin = 14
    per_row = max(1, (width - 2 * margin - 40) // px)
    ranks = g["ranks"] + 1   # rank 0: the input
    rows = math.ceil(ranks / per_row)
    row_h = lanes * py + 34
    height = rows * row_h + 20

    def pos(rank, lane):
        r, c = divmod(rank, per_row)
        x = margin + 40 + c * px
        y = 16 + r * row_h + lane * py
        return x, y

    where = {-1: pos(0, 0)}
    for n in nodes:
        where[n["layer"]] = pos(n["rank"], n["lane"])
    out = [_svg_open(width, height, "op graph, ops coloured by block", "fig-graph")]
    for r in range(rows):
        out.append(_text(margin, 16 + r * row_h + nh / 2 + 4, f"d{r * per_row}", 9, "start",
                         ' fill="#555"'))
    for s, t in g["edges"]:
        x1, y1 = where[s]
        x2, y2 = where[t]
        x1 += nw
        y1 += nh / 2
        y2 += nh / 2
        if x2 > x1 - 1 and abs(y2 - y1) < row_h:      # same row
            if abs(y2 - y1) < 1 and x2 - x1 > px:      # skip edge along a lane: an arc above
                dy = min(18, 6 + (x2 - x1) / px * 2)
                d_ = f"M{x1 - nw / 2:.1f},{y1 - nh / 2:.1f}C{x1:.1f},{y1 - nh / 2 - dy:.1f} " \
                     f"{x2 + nw / 2 - nw:.1f},{y2 - nh / 2 - dy:.1f} {x2 + nw / 2:.1f},{y2 - nh / 2:.1f}"
            else:
                d_ = f"M{x1:.1f},{y1:.1f}C{x1 + 8:.1f},{y1:.1f} {x2 - 8:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        else:                                           # wraps to a later row
            ymid = y1 + (lanes - 1) * py - (y1 - 16) % row_h + nh + 8
            d_ = (f"M{x1:.1f},{y1:.1f}C{x1 + 10:.1f},{y1:.1f} {x1 + 10:.1f},{ymid:.1f} "
                  f"{x1:.1f},{ymid:.1f}L{x2:.1f},{ymid:.1f}C{x2 - 10:.1f},{ymid:.1f} "
                  f"{x2 - 10:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")
        out.append(f'<path d="{d_}" fill="none" stroke="#444" stroke-width="0.9" '
                   f'stroke-opacity="0.75"/>')
    x, y = where[-1]
    shape = "x".join(map(str, d["input_shape"]))
    out.append(f'<g class="op-node" data-layer="input"><rect x="{x}" y="{y}" width="{nw}" '
               f'height="{nh}" rx="9" fill="#ffffff" stroke="#000"/>'
               + _text(x + nw / 2, y + 14, "input", 10, "middle")
               + f'<title>{esc(f"network input {shape}")}</title></g>')
    outs = set(g["outputs"])
    for n in nodes:
        x, y = where[n["layer"]]
        b = blocks[n["block"]]
        fill, tc = BLOCK_FILLS[n["block"] % len(BLOCK_FILLS)]
        fused = b["mode"] != "unfused"
        shape = "x".join(map(str, n["out"]))
        tip = (f'layer {n["layer"]} {n["op"]} {n["name"]}: out {shape}, {n["macs"]:,} MACs; '
               f'block {n["block"]} (layers {b["label"]}, {b["mode"]}'
               + (f' p={b["tile"]}' if fused else "") + ")"
               + (" - graph output" if n["layer"] in outs else ""))
        out.append(f'<g class="op-node" data-layer="{n["layer"]}" data-block="{n["block"]}">'
                   f'<rect x="{x}" y="{y}" width="{nw}" height="{nh}" rx="3" fill="{fill}" '
                   f'stroke="#000" stroke-width="{2.4 if fused else 0.7}"'
                   + (' stroke-dasharray="4 2"' if n["layer"] in outs else "") + "/>"
                   + _text(x + nw / 2, y + 14, f'{n["layer"]} {OP_SHORT.get(n["op"], n["op"])}',
                           10, "middle", f' fill="{tc}"')
                   + f"<title>{esc(tip)}</title></g>")
    out.append("</svg>")
    return "".join(out)
