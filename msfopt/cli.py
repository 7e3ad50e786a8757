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

# a command does no large linear algebra: one OpenBLAS thread, not a pool per core started when
# numpy is imported (0.06 s of CPU per command on this 2-core machine: scripts/bench_startup.py)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli_common import (add_io_arg, add_model_arg, add_solve_args, cli_model, console, one_line,
                         parse_numbers, print_plan, shown)
from .errors import InputError, MsfoptError


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter with the terminal width read by ``os`` (argparse's own default
    imports shutil, and with it lzma and bz2, at every parser construction: start-up time)."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS", "")) - 2
            except ValueError:
                try:
                    width = os.get_terminal_size(sys.stdout.fileno()).columns - 2
                except (OSError, ValueError, AttributeError):
                    width = 78
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, exit code 2
        sys.stderr.write(f"msfopt: error: {message} (see 'msfopt --help')\n")
        raise SystemExit(2)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``command`` (a sub-command name), only the extension module that
    defines it is imported (start-up time: ``msfopt solve`` needs none of them), every other
    command still parses."""
    ap = _Parser(prog="msfopt", description="Plan patch-based layer fusion of CNNs for MCU RAM.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("solve", help="find the best fusion plan for a model")
    add_solve_args(p)
    p.add_argument("--json", metavar="FILE|-", help="write the plan as JSON (- for stdout)")
    p.add_argument("--plot", metavar="FILE", help="write the plan's memory timeline as a PNG")

    sub.add_parser("models", help="list the built-in zoo models")

    p = sub.add_parser("inspect", help="print a model's layer table")
    add_model_arg(p)
    add_io_arg(p)
    p.add_argument("--plan", metavar="PLAN.json",
                   help="show the layers in the plan's execution order with the block that runs "
                        "each (the order and blocks of 'msfopt solve --json')")

    sub.add_parser("mcus", help="list the MCU profiles")
    wanted = [m for m, cmds in EXTENSIONS.items() if command in cmds]
    if command is None or (command not in COMMANDS and not wanted):
        wanted = list(EXTENSIONS)       # help, or an unknown command: every command is listed
    for mod in wanted:
        COMMANDS.update(importlib.import_module(mod).add_parsers(sub))
    return ap


def _command_of(argv) -> str | None:
    """The sub-command word of ``argv`` (the first argument not starting with '-'), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def cmd_solve(args) -> int:
    from .order import solve
    ram, mo, lb, tiles = parse_numbers(args)
    if args.plot:
        from .cli_report import check_out_file
        check_out_file(args.plot)
    if args.objective != "ram" and (mo is not None or lb is not None):
        raise InputError("--max-overhead/--latency-budget go with --objective ram")
    net = cli_model(args)
    plan = solve(net, objective=args.objective, ram=ram, max_overhead=mo,
                 latency_budget=lb, backend=args.backend, cost_model=args.cost_model, io=args.io,
                 mcu=args.mcu, check=not args.no_check, time_limit=args.time_limit,
                 threads=args.threads, modes=args.modes_list, tiles=tiles,
                 patches=args.patches_list, max_depth=args.max_depth, order=args.order)
    net = plan.network(net)
    if args.plot:
        _plot_timeline(args, net, plan, ram)
    if args.json == "-":
        sys.stdout.write(plan.to_json() + "\n")
        return 0
    print_plan(plan)
    if args.json:
        try:
            plan.save(args.json)
        except OSError as exc:
            raise InputError(f"cannot write {args.json}: {exc.strerror}") from None
        sys.stdout.write(f"plan written to {one_line(args.json)}\n")
    return 0


def _plot_timeline(args, net, plan, ram) -> None:
    """``solve --plot``: the memory timeline of the plan (matplotlib PNG)."""
    from .plots import plot_timeline
    from .report import block_schedules, timeline
    blocks = timeline(net, plan, block_schedules(net, plan))
    if ram is None and args.mcu is not None:
        from .mcu import get_profile
        ram = get_profile(args.mcu).ram_bytes
    plot_timeline(args.plot, blocks, budget=ram,
                  title=f"{one_line(net.name)}: memory timeline ({plan.peak_ram_bytes:,} B peak)")
    if args.json != "-":
        console().print(f"memory timeline written to {shown(args.plot)}")


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
    console().print(t)
    return 0


def cmd_inspect(args) -> int:
    from rich.table import Table
    from .modes import unfused_schedule
    from .schedule import Liveness
    plan = None
    if args.plan:
        from .plan import Plan
        plan = Plan.load(args.plan)
    net = cli_model(args)
    order = list(range(net.n_layers))
    block_of: dict[int, str] = {}
    if plan is not None:
        if plan.model != net.name:
            raise InputError(f"plan {args.plan} is for {plan.model}, not {net.name}")
        file_net = net
        net = plan.network(net)
        plan.validate(net, io=args.io)
        order = plan.order or order
        for k, b in enumerate(plan.blocks):
            for l in range(b.first_layer, b.last_layer + 1):
                block_of[l] = f"{k} {b.mode}" + (f" p={b.tile}" if b.mode != "unfused" else "")
        del file_net
    live = Liveness(net, args.io)
    title = f"{shown(net.name)} ({net.dtype}, input {'x'.join(map(str, net.input_shape))})"
    if plan is not None:
        moved = sum(1 for k, o in enumerate(order) if o != k)
        title += (f": plan order ({moved} positions differ from the file's)" if plan.order
                  else ": plan (the file's order)")
    t = Table(title=title, title_justify="left")
    cols = ["#", "op", "in", "out", "k", "s", "pad t,l,b,r", "act", "reads", "MACs",
            "RAM unfused (B)"]
    if plan is not None:
        cols[1:1] = ["file op #"]
        cols.append("block")
    for c in cols:
        t.add_column(c, justify="right" if c in ("#", "file op #", "MACs", "RAM unfused (B)")
                     else "left")
    peak = 0
    for r in net.summary_rows():
        s = unfused_schedule(net, live, r["index"])
        peak = max(peak, s.ram_bytes)
        reads = "+".join(map(str, r["srcs"]))
        row = [str(r["index"]), r["op"], "x".join(map(str, r["in"])),
               "x".join(map(str, r["out"])), "x".join(map(str, r["kernel"])),
               "x".join(map(str, r["stride"])), ",".join(map(str, r["pad"])), r["act"], reads,
               f"{r['macs']:,}", f"{s.ram_bytes:,}"]
        if plan is not None:
            row[1:1] = [str(order[r["index"]])]
            row.append(block_of.get(r["index"], ""))
        t.add_row(*row)
    con = console()
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
    console().print(t)
    return 0


COMMANDS = {"solve": cmd_solve, "models": cmd_models, "inspect": cmd_inspect, "mcus": cmd_mcus}
#: modules adding sub-commands (each has add_parsers(sub) -> {name: handler}) and the commands
#: each adds, so that a command imports only its own module (tests check the names match)
EXTENSIONS = {"msfopt.cli_solvers": ("compare", "pareto"),
              "msfopt.cli_codegen": ("codegen", "build", "run", "export-onnx"),
              "msfopt.cli_report": ("report",)}
#: the commands defined here
CORE_COMMANDS = tuple(COMMANDS)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    ap = build_parser(_command_of(argv))
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
