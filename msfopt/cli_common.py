"""What every sub-command module of the CLI shares: the solve options (``add_solve_args``) and
their parsing (``parse_numbers``), the printed plan (``print_plan``), and safe terminal output of
untrusted text (``one_line``, ``shown``, ``warn``, ``console``).

:mod:`msfopt.cli` (the entry point) and the sub-command modules (:mod:`msfopt.cli_solvers`,
:mod:`msfopt.cli_codegen`, :mod:`msfopt.cli_run`) import from here, never from the entry point.
"""
from __future__ import annotations

import argparse
import sys

from .backends import BACKENDS, MAX_DEFAULT_THREADS, default_threads
from .errors import InputError
from .modes import DEFAULT_PATCHES, DEFAULT_TILES, FUSED_MODES
from .schedule import IO_MODES

#: most solver threads accepted by --threads
MAX_THREADS = 256


def console():
    from rich.console import Console
    return Console(highlight=False)


def one_line(text) -> str:
    """Untrusted text (model / layer names, paths, messages quoting them) as one printable line:
    whitespace runs become one space, other control characters are shown as \\xNN."""
    s = " ".join(str(text).split())
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in s)


def shown(text) -> str:
    """Untrusted text for rich output: :func:`one_line`, with rich markup escaped."""
    from rich.markup import escape
    return escape(one_line(text))


def warn(message: str) -> None:
    sys.stderr.write(f"msfopt: warning: {one_line(message)}\n")


def _csv(values) -> str:
    return ",".join(map(str, values))


def add_io_arg(p: argparse.ArgumentParser, **kwargs) -> None:
    p.add_argument("--io", default="arena", choices=list(IO_MODES), **kwargs)


def add_model_arg(p: argparse.ArgumentParser) -> None:
    """MODEL and --input-shape."""
    p.add_argument("model", help="zoo name (see 'msfopt models'), or a .onnx / .tflite file")
    p.add_argument("--input-shape", action="append", metavar="[NAME:]DIMS",
                   help="fix a model file's input dims, e.g. 1x3x48x192 (NCHW for ONNX, NHWC "
                        "for TFLite); NAME: picks the input; a dynamic batch dim is 1 otherwise")


def cli_model(args, weights: bool = False, dtype: str = "int8", seed: int = 0):
    """The MODEL argument as a network (with --input-shape applied, weights when asked); notes
    of the importer (e.g. a dynamic batch dim set to 1) go to stderr."""
    from .models import load_model, network_with_weights
    from .units import parse_input_shapes
    shapes = parse_input_shapes(args.input_shape)
    if weights:
        net = network_with_weights(args.model, dtype=dtype, seed=seed, input_shapes=shapes)
    else:
        net = load_model(args.model, input_shapes=shapes)
    for note in (net.provenance.notes if net.provenance is not None else ()):
        sys.stderr.write(f"msfopt: note: {one_line(note)}\n")
    return net


def add_solve_args(p: argparse.ArgumentParser, objective: bool = True) -> None:
    add_model_arg(p)
    if objective:
        p.add_argument("--objective", default="latency", choices=["latency", "macs", "ram"],
                       help="latency: min est. cycles (MACs under msfcnn) s.t. RAM; macs: min MACs "
                            "s.t. RAM; ram: min peak RAM s.t. --max-overhead/--latency-budget")
    p.add_argument("--ram", help="RAM capacity: 65536, 64k = 64K = 64KiB = 65536, 64kB = 64000")
    p.add_argument("--max-overhead", help="with --objective ram: MACs <= F x vanilla MACs (F >= 1 or inf)")
    p.add_argument("--latency-budget", help="with --objective ram: est. cycles <= this budget")
    p.add_argument("--cost-model", default="runtime", choices=["runtime", "msfcnn"],
                   help="runtime: exact bytes of the generated C runtime (default); msfcnn: the "
                        "paper's analytic model, digit for digit")
    add_io_arg(p, help="arena: network input/output are RAM buffers and counted (default); "
                       "external: input read in place, output to the caller's buffer (paper); "
                       "input-external: input read in place, output in the arena")
    p.add_argument("--mcu", help="MCU profile name (RAM size, clock, cycle model); see 'msfopt mcus'")
    p.add_argument("--backend", default="cpsat", choices=list(BACKENDS))
    p.add_argument("--no-check", action="store_true", help="skip the graph-search cross-check")
    p.add_argument("--time-limit", type=float, default=60.0, help="solver time limit, seconds")
    p.add_argument("--threads", type=int, default=None,
                   help=f"solver threads (default: the machine's cores, at most "
                        f"{MAX_DEFAULT_THREADS})")
    p.add_argument("--modes", default=_csv(FUSED_MODES),
                   help="execution modes to consider besides unfused layers (default: all)")
    p.add_argument("--tiles", default=_csv(DEFAULT_TILES),
                   help=f"H-cache output tile heights, comma-separated (default {_csv(DEFAULT_TILES)})")
    p.add_argument("--patches", default=_csv(DEFAULT_PATCHES),
                   help=f"recompute output patch sizes, comma-separated (default "
                        f"{_csv(DEFAULT_PATCHES)})")
    p.add_argument("--max-depth", type=int, help="longest fused block considered (layers)")
    p.add_argument("--order", default="auto", choices=["auto", "exact", "compact", "fixed"],
                   help="execution order: exact = search every order jointly with the fusion "
                        "(the order DAG over executed-op states), compact = a CP-SAT model over "
                        "positions (wide graphs; time limit, gap reported), fixed = the model "
                        "file's order; auto (default): exact for branched models under the "
                        "runtime cost model, compact when their states are too many, fixed for "
                        "chains")


def parse_numbers(args):
    """Check and convert the options of :func:`add_solve_args`: returns (RAM bytes or None,
    max overhead or None, latency budget or None, tiles) and sets ``args.tiles_list``,
    ``args.patches_list``, ``args.modes_list``, ``args.threads`` and ``args.time_limit``."""
    from .units import parse_overhead, parse_positive_int, parse_ram, parse_time
    ram = parse_ram(args.ram) if args.ram is not None else None
    mo = parse_overhead(args.max_overhead) if args.max_overhead is not None else None
    lb = (parse_positive_int(args.latency_budget, "latency budget")
          if args.latency_budget is not None else None)
    tiles = args.tiles_list = int_list(args.tiles, "--tiles")
    args.patches_list = int_list(args.patches, "--patches")
    modes = tuple(m.strip() for m in str(args.modes).split(",") if m.strip())
    bad = [m for m in modes if m not in FUSED_MODES]
    if bad:
        raise InputError(f"unknown mode(s) {', '.join(bad)} (choose from {', '.join(FUSED_MODES)})")
    args.modes_list = modes
    if args.max_depth is not None and args.max_depth < 1:
        raise InputError(f"--max-depth must be >= 1, got {args.max_depth}")
    if args.threads is None:
        args.threads = default_threads()
    if not 1 <= args.threads <= MAX_THREADS:
        raise InputError(f"--threads must be 1..{MAX_THREADS}, got {args.threads}")
    args.time_limit = parse_time(args.time_limit, "--time-limit")
    if args.mcu is not None:
        from .mcu import get_profile
        prof = get_profile(args.mcu)
        if ram is not None and prof.ram_bytes is not None and ram > prof.ram_bytes:
            what = (f"{prof.name}'s RAM ({prof.ram_size:,} B)" if ram > prof.ram_size else
                    f"the RAM {prof.name} leaves for the plan ({prof.ram_bytes:,} B of "
                    f"{prof.ram_size:,} B)")
            warn(f"--ram {ram:,} B exceeds {what}: the plan may not fit the MCU")
    return ram, mo, lb, tiles


def int_list(text, what, limit: int = 1 << 16):
    parts = [x.strip() for x in str(text).split(",") if x.strip()]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts):
        raise InputError(f"cannot parse {what} {text!r} (comma-separated positive integers)")
    vals = tuple(int(p) for p in parts)
    if min(vals) < 1 or max(vals) > limit:
        raise InputError(f"{what} needs integers 1..{limit}, got {text!r}")
    return vals


def text_table(title: str, columns, rows) -> str:
    """A box-drawn table as text (the layout of rich's default table, without importing rich:
    ``msfopt solve`` prints one per query and rich costs more start-up time than the solve).
    ``columns``: (header, "left" | "right"); ``rows``: lists of cell strings."""
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for k, (h, _) in enumerate(columns)]

    def line(cells, bar):
        out = []
        for k, c in enumerate(cells):
            out.append(c.rjust(widths[k]) if columns[k][1] == "right" else c.ljust(widths[k]))
        return bar + bar.join(f" {c} " for c in out) + bar

    def rule(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    width = sum(widths) + 3 * len(widths) + 1
    lines = [title.ljust(width) if len(title) < width else title,
             rule("┏", "┳", "┓", "━"), line([h for h, _ in columns], "┃"),
             rule("┡", "╇", "┩", "━")]
    lines += [line(r, "│") for r in rows]
    lines.append(rule("└", "┴", "┘", "─"))
    return "\n".join(lines)


def print_plan(plan) -> None:
    """The plan as a table and a summary, plain text (untrusted names through :func:`one_line`)."""
    out: list[str] = []
    con = out.append
    unit = "B" if plan.cost_model == "runtime" else "B (elements)"
    cols = (("block", "left"), ("layers", "left"), ("mode", "left"), ("RAM", "right"),
            ("MACs", "right"), ("est. cycles", "right"))
    rows = []
    for k, b in enumerate(plan.blocks):
        mode = b.mode if b.mode == "unfused" else f"{b.mode} p={b.tile}"
        rows.append([str(k), one_line(b.label), mode, f"{b.ram_bytes:,}", f"{b.macs:,}",
                     f"{b.est_cycles:,}"])
    con(text_table(f"{one_line(plan.model)}: {len(plan.blocks)} blocks, objective "
                   f"{plan.objective}", cols, rows))
    con(f"peak RAM        {plan.peak_ram_bytes:,} {unit}"
        + (f"   (vanilla {plan.vanilla_peak_bytes:,})" if plan.vanilla_peak_bytes else ""))
    if plan.arena_bytes is not None:
        con(f"arena           {plan.arena_bytes:,} B (io={plan.io})")
    else:
        con(f"io              {plan.io}")
    con(f"MACs            {plan.macs:,}   F = {plan.mac_overhead:.6f} "
        f"(vanilla {plan.vanilla_macs:,})")
    con(f"est. cycles     {plan.est_cycles:,}" + (f"   (vanilla {plan.vanilla_cycles:,})"
                                                  if plan.cost_model == "runtime" else ""))
    con(f"cost model      {plan.cost_model}" + (f", mcu {plan.mcu}" if plan.mcu else ""))
    con(f"setting         {plan.setting}")
    status = plan.status + (f" ({plan.gap_of or 'primary'} gap {plan.gap:.2%})"
                            if plan.gap is not None and plan.status == "feasible" else "")
    con(f"solver          {plan.backend}, {status}, {plan.solve_seconds * 1000:.1f} ms; DAG "
        f"{plan.dag.get('nodes')} nodes, {plan.dag.get('edges')} edges")
    if plan.layout_rejected:
        con(f"layout          {plan.layout_rejected} better plan(s) skipped: their arena "
            f"layout does not pack at their peak")
    om = plan.dag.get("order_method")
    if om in ("exact", "compact"):
        moved = sum(1 for k, o in enumerate(plan.order or []) if o != k)
        how = (f"{plan.dag.get('order_states'):,} states, {plan.dag.get('order_edges'):,} edges"
               if om == "exact" else
               f"compact CP-SAT model, {plan.dag.get('order_edges'):,} block variants, "
               f"{plan.dag.get('order_status')}" + (
                   f" (gap {plan.dag['order_gap']:.1%})" if plan.dag.get("order_gap") else ""))
        con(f"order           searched jointly ({how}), "
            f"{plan.dag.get('order_seconds', 0) * 1000:.1f} ms; "
            + (f"the order differs from the file's at {moved} positions" if moved
               else "the file's order is optimal"))
    if plan.note:
        con(f"note            {one_line(plan.note)}")
    cc = plan.cross_check
    if cc:
        mark = "agree" if cc["agree"] else "DISAGREE"
        con(f"cross-check     {cc['backend']}: {mark} (objective {cc['objective']:,})")
    else:
        con("cross-check     skipped (--no-check)")
    sys.stdout.write("\n".join(out) + "\n")
