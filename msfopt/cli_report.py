"""The ``report`` sub-command: ``msfopt report MODEL [solve options] -o report.html`` solves the
query (or reads ``--plan plan.json``, validated as ``codegen`` validates it) and writes the plan
report, one self-contained HTML page (:mod:`msfopt.report`, :mod:`msfopt.report_html`).

``--run-json RESULT`` adds the totals of a ``msfopt run --json`` result of the same plan (whole
model instructions, stack high-water mark, RAM): the runtime measures no per-block figures.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .cli_common import add_solve_args, cli_model, console, parse_numbers, print_plan, shown
from .errors import InputError


def add_parsers(sub) -> dict:
    p = sub.add_parser("report", help="write a one-page HTML report of a plan")
    add_solve_args(p)
    p.add_argument("--plan", help="report this plan JSON instead of solving")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--no-pareto", action="store_true", help="skip the Pareto front section")
    p.add_argument("--no-tflm", action="store_true",
                   help="skip TFLite Micro's arena figures (TFLite models)")
    p.add_argument("--run-json", metavar="FILE",
                   help="a 'msfopt run --json' result of this plan: its measured totals")
    return {"report": cmd_report}


def check_out_file(text: str) -> Path:
    """An output file path we can write: not empty, not a directory, its directory exists and is
    writable (exit 2 otherwise, before any work)."""
    if not str(text).strip():
        raise InputError("empty output file name (-o '')")
    p = Path(text)
    if p.is_dir():
        raise InputError(f"output path {text} is a directory; name an .html file")
    parent = p.absolute().parent
    if not parent.is_dir():
        raise InputError(f"cannot write {text}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError(f"cannot write {text}: permission denied")
    return p


def _run_json(path) -> dict:
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"run result not found: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read run result {path}: {type(exc).__name__}") from None
    if not isinstance(d, dict) or "target" not in d:
        raise InputError(f"{path} is not a 'msfopt run --json' result")
    keep = ("target", "instructions", "stack_hwm", "stack_reserved", "total_ram", "arena_bytes",
            "verdict", "model")
    out = {k: d[k] for k in keep if k in d and isinstance(d[k], (int, str))}
    per = d.get("block_instructions")
    if isinstance(per, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                     for v in per):
        out["block_instructions"] = per
    return out


def _load_plan(args, net):
    from .plan import Plan
    plan = Plan.load(args.plan)
    if plan.model != net.name:
        raise InputError(f"plan {args.plan} is for {plan.model}, not {net.name}")
    plan.validate(plan.network(net))
    return plan


def cmd_report(args) -> int:
    from rich.console import Console
    from .report import gather
    from .report_html import render
    from .order import solve
    from .solver import prepare
    out = check_out_file(args.out)
    ram, mo, lb, tiles = parse_numbers(args)
    plan = None
    if args.plan:
        from .plan import Plan
        plan = Plan.load(args.plan)     # structure first: a bad plan costs no model load
    measured = _run_json(args.run_json) if args.run_json else None
    net = cli_model(args)
    err = Console(stderr=True, highlight=False)
    with err.status("building the fusion DAG") as st:
        def say(msg):
            st.update(msg)
        if plan is not None:
            plan = _load_plan(args, net)
            net = plan.network(net)
            _n, dag, ram_b = prepare(net, cost_model=plan.cost_model, io=plan.io, mcu=plan.mcu,
                                     ram=(plan.constraints or {}).get("ram_bytes"),
                                     modes=args.modes_list, tiles=tiles,
                                     patches=args.patches_list, max_depth=args.max_depth)
        else:
            say("solving")
            plan = solve(net, objective=args.objective, ram=ram, max_overhead=mo,
                         latency_budget=lb, backend=args.backend, cost_model=args.cost_model,
                         io=args.io, mcu=args.mcu, check=not args.no_check,
                         time_limit=args.time_limit, threads=args.threads, modes=args.modes_list,
                         tiles=tiles, patches=args.patches_list, max_depth=args.max_depth,
                         order=args.order)
            net = plan.network(net)
            say("building the fusion DAG")
            _n, dag, ram_b = prepare(net, cost_model=args.cost_model, io=args.io, mcu=args.mcu,
                                     ram=ram, modes=args.modes_list, tiles=tiles,
                                     patches=args.patches_list, max_depth=args.max_depth)
        d = gather(net, dag, plan, budget=ram_b, pareto=not args.no_pareto,
                   tflm=not args.no_tflm, measured=measured, status=say)
        say("rendering")
        page = render(d)
    if not args.plan:
        print_plan(plan)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    console().print(f"report written to {shown(out)} ({len(page):,} bytes; peak block "
                    f"{d['peak_block']}, {len(d['blocks'])} blocks)")
    sys.stdout.flush()
    return 0
