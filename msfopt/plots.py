"""Matplotlib figures: the Pareto front, solver timing charts and the memory timeline of a plan
(matplotlib is optional)."""
from __future__ import annotations

from .errors import InputError


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'msfopt[plot]'") from None
    return plt


def _save(fig, path) -> None:
    try:
        fig.savefig(path, dpi=130, bbox_inches="tight")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _plain_log_ticks(ax, values) -> None:
    """Readable ticks (5, 10, 20, 50, ...) on a log axis instead of powers of ten."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, FuncFormatter
    if not values:
        return
    lo, hi = min(values), max(values)
    ticks = [m * 10 ** e for e in range(-3, 8) for m in (1, 2, 3, 5, 7)
             if lo / 1.5 <= m * 10 ** e <= hi * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_front(path, points, metric: str, title: str, vanilla=None, paper=None,
               published=None, unit: str = "B") -> None:
    """Staircase of the front (best latency for every RAM budget), its points, the vanilla
    layer-by-layer plan and, optionally, the paper's front and published P1/P2 results.

    ``points``: [(peak, latency)]; ``vanilla``: (peak, latency); ``paper``: [(peak, latency)];
    ``published``: [(peak, latency, label)]."""
    plt = _plt()
    scale = 1e6
    ylab = {"macs": "MACs (millions)", "cycles": "estimated cycles (millions)"}.get(metric, metric)
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [p[0] / 1000 for p in points]
    ys = [p[1] / scale for p in points]
    if points:
        # the achievable region: any budget >= a point's peak reaches at least its latency
        right = max(xs + ([vanilla[0] / 1000] if vanilla else [])) * 1.15
        ax.step(xs + [right], ys + [ys[-1]], where="post", color="tab:blue", lw=1.2, alpha=0.6)
        ax.plot(xs, ys, "o", color="tab:blue", ms=5, zorder=3,
                label=f"msfopt exact front ({len(points)} points)")
    if paper:
        ax.plot([p[0] / 1000 for p in paper], [p[1] / scale for p in paper], "o", mfc="none",
                mec="tab:orange", ms=11, mew=1.5, label=f"paper §5.2 front ({len(paper)} points)",
                zorder=2)
    if published:
        ax.plot([p[0] / 1000 for p in published], [p[1] / scale for p in published], "x",
                color="tab:red", ms=9, mew=2, label="paper's published P1/P2 results", zorder=4)
    if vanilla:
        ax.plot([vanilla[0] / 1000], [vanilla[1] / scale], "*", color="black", ms=14,
                label=f"vanilla layer-by-layer ({vanilla[0]:,})", zorder=5)
    ax.set_xscale("log")
    _plain_log_ticks(ax, [x for x in xs + [p[0] / 1000 for p in (paper or [])]
                          + ([vanilla[0] / 1000] if vanilla else []) if x > 0])
    ax.set_xlabel(f"peak RAM ({unit}, thousands, log scale)")
    ax.set_ylabel(ylab)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    _save(fig, path)
    plt.close(fig)


def plot_solver_times(path, times: dict, title: str) -> None:
    """``times``: backend -> list of seconds.  One box per backend with the raw points over it,
    log scale, and a dashed line at the 1 s interactivity limit."""
    plt = _plt()
    names = [b for b in times if times[b]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = [[max(t, 1e-5) for t in times[b]] for b in names]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    import random
    rng = random.Random(0)
    for i, d in enumerate(data, start=1):
        ax.plot([i + rng.uniform(-0.18, 0.18) for _ in d], d, ".", alpha=0.45, ms=4)
    ax.axhline(1.0, ls="--", color="grey", lw=1)
    ax.text(len(names) + 0.45, 1.0, "1 s", va="bottom", ha="right", color="grey", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("solve time per query (s, log scale)")
    ax.set_title(title)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def plot_scaling(path, rows: list[dict], title: str) -> None:
    """``rows``: dicts with layers, backend, seconds and optimal (False: time limit hit)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by: dict[str, list] = {}
    for r in rows:
        by.setdefault(r["backend"], []).append(r)
    for i, (b, rs) in enumerate(by.items()):
        rs = sorted(rs, key=lambda r: r["layers"])
        line, = ax.plot([r["layers"] for r in rs], [r["seconds"] for r in rs], "o-", label=b,
                        color=f"C{i}")
        bad = [r for r in rs if not r.get("optimal", True)]
        if bad:  # hit the time limit: hollow marker
            ax.plot([r["layers"] for r in bad], [r["seconds"] for r in bad], "o", ms=11,
                    mfc="white", mec=line.get_color(), mew=2)
    ax.plot([], [], "o", ms=9, mfc="white", mec="grey", mew=2, label="time limit hit")
    ax.axhline(1.0, ls="--", color="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("layers")
    ax.set_ylabel("solve time (s)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)


#: fills of the RAM roles of :mod:`msfopt.report` (lightness steps; rings hatched)
_ROLE_STYLE = {"input": ("#1d3f6e", ""), "held": ("#6f93c0", ""), "output": ("#c4d7ee", ""),
               "ring": ("#ffffff", "///")}


def plot_timeline(path, blocks: list[dict], budget: int | None = None, title: str = "") -> None:
    """The memory timeline of a plan: one bar per block in execution order (width = its est.
    cycles), stacked by the live tensors and rings of :func:`msfopt.report.timeline`, the RAM
    budget as a dashed line and the peak block outlined."""
    plt = _plt()
    from matplotlib.patches import Patch
    from .report import ROLE_NAMES
    fig, ax = plt.subplots(figsize=(10, 4.5))
    total = max(1, blocks[-1]["x1"]) if blocks else 1
    minw = total * 0.002          # a block of few cycles stays visible
    scale = 1e6 if total >= 5e6 else 1e3
    peak = max((b["ram_bytes"] for b in blocks), default=0)
    ydiv, yunit = (1024, "KiB") if max(peak, budget or 0) >= 4096 else (1, "B")
    for b in blocks:
        x0, w = b["x0"] / scale, max(b["x1"] - b["x0"], minw) / scale
        base = 0
        for s in b["segments"]:
            color, hatch = _ROLE_STYLE[s["role"]]
            ax.bar(x0, s["bytes"] / ydiv, width=w, bottom=base / ydiv, align="edge",
                   color=color, hatch=hatch, edgecolor="black" if hatch else "white",
                   linewidth=0.3)
            base += s["bytes"]
        if b["peak"]:
            ax.bar(x0, b["ram_bytes"] / ydiv, width=w, align="edge", fill=False,
                   edgecolor="black", linewidth=2.0)
            ax.annotate(f"peak: block {b['index']} (layers {b['label']})\n{b['ram_bytes']:,} B",
                        (x0 + w / 2, b["ram_bytes"] / ydiv), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=8, fontweight="bold")
    if budget:
        ax.axhline(budget / ydiv, ls="--", color="black", lw=1.2)
        ax.text(total / scale, budget / ydiv, f"RAM budget {budget:,} B", ha="right",
                va="bottom", fontsize=8)
    ax.set_xlim(0, total / scale * 1.01)
    ax.set_ylim(0, max(peak, budget or 0) / ydiv * 1.18 or 1)
    ax.set_xlabel(f"execution order: cumulative est. cycles "
                  f"({'millions' if scale == 1e6 else 'thousands'}), bar width = block's cycles")
    ax.set_ylabel(f"RAM ({yunit})")
    ax.set_title(title)
    handles = [Patch(facecolor=_ROLE_STYLE[r][0], hatch=_ROLE_STYLE[r][1], edgecolor="black",
                     label=ROLE_NAMES[r]) for r in ("input", "held", "output", "ring")]
    ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.9)
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)
