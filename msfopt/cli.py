"""Command-line interface: ``msfopt solve | models | inspect | ...``.

Exit codes: 0 success; 1 internal error; 2 bad input (usage, model, option values); 3 infeasible;
4 solver/graph-search disagreement; 5 solver failure or time-out without a plan; 6 build/run
failure of generated code.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import InputError, MsfoptError
from .schedule import DEFAULT_MODES


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        sys.stderr.write(f"msfopt: error: {message} (see 'msfopt --help')\n")
        raise SystemExit(2)


def _console():
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


def _add_solve_args(p: argparse.ArgumentParser, objective: bool = True) -> None:
    p.add_argument("model", help="zoo name (see 'msfopt models'), or a .onnx / .tflite file")
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
    p.add_argument("--io", default="arena", choices=["arena", "external", "input-external"],
                   help="arena: network input/output are RAM buffers and counted (default); "
                        "external: input read in place, output to the caller's buffer (paper); "
                        "input-external: input read in place, output in the arena")
    p.add_argument("--mcu", help="MCU profile name (RAM size, clock, cycle model); see 'msfopt mcus'")
    p.add_argument("--backend", default="cpsat", choices=["cpsat", "cbc", "scip", "highs", "graph"])
    p.add_argument("--no-check", action="store_true", help="skip the graph-search cross-check")
    p.add_argument("--time-limit", type=float, default=60.0, help="solver time limit, seconds")
    p.add_argument("--threads", type=int, default=None,
                   help="solver threads (default: the machine's cores, at most 8)")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES),
                   help="execution modes to consider besides unfused layers (default: all)")
    p.add_argument("--tiles", default="1,2,4",
                   help="H-cache output tile heights, comma-separated (default 1,2,4)")
    p.add_argument("--patches", default="4,8,16",
                   help="recompute output patch sizes, comma-separated (default 4,8,16)")
    p.add_argument("--max-depth", type=int, help="longest fused block considered (layers)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="msfopt", description="Plan patch-based layer fusion of CNNs for MCU RAM.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("solve", help="find the best fusion plan for a model")
    _add_solve_args(p)
    p.add_argument("--json", metavar="FILE|-", help="write the plan as JSON (- for stdout)")

    sub.add_parser("models", help="list the built-in zoo models")

    p = sub.add_parser("inspect", help="print a model's layer table")
    p.add_argument("model")
    p.add_argument("--io", default="arena", choices=["arena", "external", "input-external"])

    sub.add_parser("mcus", help="list the MCU profiles")
    for mod in EXTENSIONS:
        COMMANDS.update(importlib.import_module(mod).add_parsers(sub, _add_solve_args))
    return ap


def _parse_numbers(args):
    from .units import parse_overhead, parse_positive_int, parse_ram
    ram = parse_ram(args.ram) if getattr(args, "ram", None) is not None else None
    mo = parse_overhead(args.max_overhead) if getattr(args, "max_overhead", None) is not None else None
    lb = (parse_positive_int(args.latency_budget, "latency budget")
          if getattr(args, "latency_budget", None) is not None else None)
    tiles = _int_list(args.tiles, "--tiles")
    args.patches_list = _int_list(getattr(args, "patches", "4,8,16"), "--patches")
    from .schedule import FUSED_MODES
    modes = tuple(m.strip() for m in str(getattr(args, "modes", "hcache")).split(",") if m.strip())
    bad = [m for m in modes if m not in FUSED_MODES]
    if bad:
        raise InputError(f"unknown mode(s) {', '.join(bad)} (choose from {', '.join(FUSED_MODES)})")
    args.modes_list = modes
    if args.max_depth is not None and args.max_depth < 1:
        raise InputError(f"--max-depth must be >= 1, got {args.max_depth}")
    if args.threads is None:
        args.threads = max(1, min(8, os.cpu_count() or 1))
    if not 1 <= args.threads <= MAX_THREADS:
        raise InputError(f"--threads must be 1..{MAX_THREADS}, got {args.threads}")
    from .units import parse_time
    args.time_limit = parse_time(args.time_limit, "--time-limit")
    if getattr(args, "mcu", None) is not None:
        from .mcu import get_profile
        prof = get_profile(args.mcu)
        if ram is not None and prof.ram_bytes is not None and ram > prof.ram_bytes:
            what = (f"{prof.name}'s RAM ({prof.ram_size:,} B)" if ram > prof.ram_size else
                    f"the RAM {prof.name} leaves for the plan ({prof.ram_bytes:,} B of "
                    f"{prof.ram_size:,} B)")
            warn(f"--ram {ram:,} B exceeds {what}: the plan may not fit the MCU")
    return ram, mo, lb, tiles


#: most solver threads accepted by --threads
MAX_THREADS = 256


def _int_list(text, what, limit: int = 1 << 16):
    parts = [x.strip() for x in str(text).split(",") if x.strip()]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts):
        raise InputError(f"cannot parse {what} {text!r} (comma-separated positive integers)")
    vals = tuple(int(p) for p in parts)
    if min(vals) < 1 or max(vals) > limit:
        raise InputError(f"{what} needs integers 1..{limit}, got {text!r}")
    return vals


def cmd_solve(args) -> int:
    from .solver import solve
    ram, mo, lb, tiles = _parse_numbers(args)
    if args.objective != "ram" and (mo is not None or lb is not None):
        raise InputError("--max-overhead/--latency-budget go with --objective ram")
    plan = solve(args.model, objective=args.objective, ram=ram, max_overhead=mo,
                 latency_budget=lb, backend=args.backend, cost_model=args.cost_model, io=args.io,
                 mcu=args.mcu, check=not args.no_check, time_limit=args.time_limit,
                 threads=args.threads, modes=args.modes_list, tiles=tiles,
                 patches=args.patches_list, max_depth=args.max_depth)
    if args.json == "-":
        sys.stdout.write(plan.to_json() + "\n")
        return 0
    print_plan(plan)
    if args.json:
        try:
            plan.save(args.json)
        except OSError as exc:
            raise InputError(f"cannot write {args.json}: {exc.strerror}") from None
        _console().print(f"plan written to {shown(args.json)}")
    return 0


def print_plan(plan) -> None:
    from rich.table import Table
    con = _console()
    unit = "B" if plan.cost_model == "runtime" else "B (elements)"
    t = Table(title=f"{shown(plan.model)}: {len(plan.blocks)} blocks, objective {plan.objective}",
              title_justify="left")
    for col, just in (("block", "left"), ("layers", "left"), ("mode", "left"), ("RAM", "right"),
                      ("MACs", "right"), ("est. cycles", "right")):
        t.add_column(col, justify=just)
    for k, b in enumerate(plan.blocks):
        mode = b.mode if b.mode == "unfused" else f"{b.mode} p={b.tile}"
        peak = b.ram_bytes == plan.peak_ram_bytes
        t.add_row(str(k), b.label, mode, (f"[bold]{b.ram_bytes:,}[/bold]" if peak else f"{b.ram_bytes:,}"),
                  f"{b.macs:,}", f"{b.est_cycles:,}")
    con.print(t)
    con.print(f"peak RAM        {plan.peak_ram_bytes:,} {unit}"
              + (f"   (vanilla {plan.vanilla_peak_bytes:,})" if plan.vanilla_peak_bytes else ""))
    if plan.arena_bytes is not None:
        con.print(f"arena           {plan.arena_bytes:,} B (io={plan.io})")
    else:
        con.print(f"io              {plan.io}")
    con.print(f"MACs            {plan.macs:,}   F = {plan.mac_overhead:.6f} "
              f"(vanilla {plan.vanilla_macs:,})")
    con.print(f"est. cycles     {plan.est_cycles:,}" + (f"   (vanilla {plan.vanilla_cycles:,})"
                                                      if plan.cost_model == "runtime" else ""))
    con.print(f"cost model      {plan.cost_model}" + (f", mcu {plan.mcu}" if plan.mcu else ""))
    con.print(f"setting         {plan.setting}")
    status = plan.status + (f" ({plan.gap_of or 'primary'} gap {plan.gap:.2%})"
                            if plan.gap is not None and plan.status == "feasible" else "")
    con.print(f"solver          {plan.backend}, {status}, {plan.solve_seconds * 1000:.1f} ms; DAG "
              f"{plan.dag.get('nodes')} nodes, {plan.dag.get('edges')} edges")
    if plan.layout_rejected:
        con.print(f"layout          {plan.layout_rejected} better plan(s) skipped: their arena "
                  f"layout does not pack at their peak")
    if plan.note:
        con.print(f"note            {plan.note}")
    cc = plan.cross_check
    if cc:
        mark = "[green]agree[/green]" if cc["agree"] else "[red]DISAGREE[/red]"
        con.print(f"cross-check     {cc['backend']}: {mark} (objective {cc['objective']:,})")
    else:
        con.print("cross-check     skipped (--no-check)")


def cmd_models(args) -> int:
    from rich.table import Table
    from . import zoo
    t = Table(title="built-in models")
    for c in ("name", "input", "layers", "MACs", "description"):
        t.add_column(c)
    for name in zoo.names():
        net = zoo.load(name)
        t.add_row(name, "x".join(map(str, net.input_shape)), str(net.n_layers),
                  f"{net.vanilla_macs:,}", zoo.ZOO[name]["description"])
    _console().print(t)
    return 0


def cmd_inspect(args) -> int:
    from rich.table import Table
    from .models import load_model
    from .schedule import Liveness, unfused_schedule
    net = load_model(args.model)
    live = Liveness(net, args.io)
    t = Table(title=f"{shown(net.name)} ({net.dtype}, input {'x'.join(map(str, net.input_shape))})",
              title_justify="left")
    for c in ("#", "op", "in", "out", "k", "s", "pad t,l,b,r", "act", "reads", "MACs",
              "RAM unfused (B)"):
        t.add_column(c, justify="right" if c in ("#", "MACs", "RAM unfused (B)") else "left")
    peak = 0
    for r in net.summary_rows():
        s = unfused_schedule(net, live, r["index"])
        peak = max(peak, s.ram_bytes)
        reads = str(r["src"]) + (f"+{r['src2']}" if r["src2"] is not None else "")
        t.add_row(str(r["index"]), r["op"], "x".join(map(str, r["in"])),
                  "x".join(map(str, r["out"])), "x".join(map(str, r["kernel"])),
                  "x".join(map(str, r["stride"])), ",".join(map(str, r["pad"])), r["act"], reads,
                  f"{r['macs']:,}", f"{s.ram_bytes:,}")
    con = _console()
    con.print(t)
    con.print(f"layers {net.n_layers}, MACs {net.vanilla_macs:,}, layer-by-layer peak {peak:,} B "
              f"(io={args.io}, skip tensors alive)")
    return 0


def cmd_mcus(args) -> int:
    from rich.table import Table
    from .mcu import list_profiles
    t = Table(title="MCU profiles")
    for c in ("name", "core", "RAM", "stack", "RAM for the plan", "clock", "emulated by"):
        t.add_column(c)
    for p in list_profiles():
        t.add_row(p.name, p.core, f"{p.ram_size:,}" if p.ram_size else "-",
                  f"{p.stack_size:,}" if p.stack_size else "-",
                  f"{p.ram_bytes:,}" if p.ram_bytes else "no limit",
                  f"{p.clock_hz / 1e6:g} MHz" if p.clock_hz else "-", p.target)
    _console().print(t)
    return 0


COMMANDS = {"solve": cmd_solve, "models": cmd_models, "inspect": cmd_inspect, "mcus": cmd_mcus}
#: modules adding sub-commands: each has add_parsers(sub, add_solve_args) -> {name: handler}
EXTENSIONS = ["msfopt.cli_solvers", "msfopt.cli_codegen"]


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except MsfoptError as exc:
        sys.stderr.write(f"msfopt: error: {one_line(exc) or type(exc).__name__}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("msfopt: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback
        if args.debug or os.environ.get("MSFOPT_DEBUG"):
            raise
        msg = one_line(exc)[:500] or type(exc).__name__
        sys.stderr.write(f"msfopt: internal error: {type(exc).__name__}: {msg} "
                         f"(rerun with --debug for a traceback)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
