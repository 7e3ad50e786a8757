"""Solver-suite sub-commands (``compare``, ``pareto``).

``msfopt compare MODEL [--objective ...] [--ram ... | --max-overhead ...]``: one query, every ILP
backend plus exact graph search, one table (backend, status, objective, peak RAM, MACs, time,
agrees).  Exit 4 when a backend claims an optimum that graph search refutes (unless --no-check),
3 when the query is infeasible.

``msfopt pareto MODEL [--metric cycles|macs] [--csv F] [--plot F]``: the exact front of
non-dominated (peak RAM, latency) plans by label-setting search on the DAG, every point and the
front's completeness confirmed by epsilon-constraint programs solved with --backend
(:mod:`msfopt.pareto_confirm`; skip with --no-check).
"""
from __future__ import annotations

import math
import time

from .backends import ILP_BACKENDS
from .cli_common import add_solve_args, cli_model, console, one_line, parse_numbers, shown
from .errors import CrossCheckError, InfeasibleError, InputError, SolverError
from .plan import mac_overhead


def add_parsers(sub) -> dict:
    p = sub.add_parser("compare", help="run every backend and graph search on one query, one table")
    add_solve_args(p)
    p.add_argument("--backends", default=",".join(ILP_BACKENDS),
                   help="comma-separated ILP backends to run beside graph search "
                        f"(default {','.join(ILP_BACKENDS)}); --backend is ignored here")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")

    p = sub.add_parser("pareto", help="exact Pareto front of peak RAM vs latency")
    add_solve_args(p, objective=False)
    p.add_argument("--metric", choices=["cycles", "macs"],
                   help="latency axis (default: cycles under runtime, MACs under msfcnn)")
    p.add_argument("--csv", metavar="FILE", help="write the front as CSV")
    p.add_argument("--plot", metavar="FILE", help="write the front as a PNG (matplotlib)")
    # the confirmation is many small shortest-path programs: HiGHS re-solves one kept model from
    # its previous basis (scripts/bench_pareto.py: 0.05-0.33 s per zoo model, CP-SAT 0.3-8 s)
    p.set_defaults(backend="highs")
    return {"compare": cmd_compare, "pareto": cmd_pareto}


# ---------------------------------------------------------------------------------------------
def load_dag(args, ram):
    """Build the query's DAG exactly as ``msfopt solve`` does; returns (dag, ram cap or None)."""
    from .solver import prepare
    _net, dag, ram = prepare(cli_model(args), cost_model=args.cost_model, io=args.io,
                             mcu=args.mcu, ram=ram, modes=args.modes_list,
                             tiles=args.tiles_list, patches=args.patches_list,
                             max_depth=args.max_depth)
    return dag, ram


def _backends(text: str) -> list[str]:
    names = [b.strip() for b in str(text).split(",") if b.strip()]
    bad = [b for b in names if b not in ILP_BACKENDS]
    if bad or not names:
        raise InputError(f"unknown backend(s) {', '.join(bad) or '(none)'} in --backends "
                         f"(choose from {', '.join(ILP_BACKENDS)})")
    return list(dict.fromkeys(names))


def run_backend(dag, q, backend: str, time_limit: float, threads: int, accept=None):
    """``solver.answer`` that turns a solver failure into an Answer row instead of raising."""
    from .solver import Answer, answer
    t0 = time.perf_counter()
    try:
        return answer(dag, q, backend, time_limit, threads, accept)
    except SolverError as exc:
        msg = str(exc)
        status = "timeout" if "timeout" in msg or "time limit" in msg else "error"
        return Answer(status, [], None, None, time.perf_counter() - t0, None, msg)


def agrees(a, ref) -> bool:
    if ref.status == "infeasible" or a.status == "infeasible":
        return a.status == ref.status
    return a.status in ("optimal", "feasible") and a.key == ref.key


def _fmt_status(a) -> str:
    if a.status == "feasible" and a.gap is not None:
        return f"feasible, gap {a.gap:.2%}"
    return a.status


def cmd_compare(args) -> int:
    from rich.table import Table
    from .solver import _infeasible, layout_acceptor, make_query
    ram, mo, lb, _tiles = parse_numbers(args)
    backends = _backends(args.backends)
    if args.objective != "ram" and (mo is not None or lb is not None):
        raise InputError("--max-overhead/--latency-budget go with --objective ram")
    dag, ram = load_dag(args, ram)
    q = make_query(dag, args.objective, ram, mo, lb)
    con = console()
    rows = []
    accept = layout_acceptor(dag)    # the same rule as solve: plans whose layout packs
    ref = run_backend(dag, q, "graph", args.time_limit, args.threads, accept)
    rows.append(("graph", ref))
    with _progress(con) as prog:
        task = prog.add_task("solving", total=len(backends))
        for b in backends:
            prog.update(task, description=f"solving with {b}")
            rows.append((b, run_backend(dag, q, b, args.time_limit, args.threads, accept)))
            prog.advance(task)
    unit = "B" if dag.cost_model == "runtime" else "elements"
    what = (f"min {q.metric} s.t. peak <= {q.ram_cap:,.0f}" if q.kind == "latency"
            else f"min peak s.t. {q.metric} <= {q.budget:,.0f}"
            + ("" if math.isinf(q.ram_cap) else f", peak <= {q.ram_cap:,.0f}"))
    t = Table(title=f"{shown(dag.net.name)}: {what} ({dag.cost_model}, io={dag.io}, RAM in {unit}; "
                    f"DAG {dag.n_nodes} nodes, {dag.n_edges} edges)", title_justify="left")
    for col, just in (("backend", "left"), ("status", "left"), ("objective", "right"),
                      ("peak RAM", "right"), ("MACs", "right"), ("time", "right"),
                      ("agrees", "left")):
        t.add_column(col, justify=just, no_wrap=True,
                     min_width=8 if col == "status" else None)
    table_rows = []
    n_agree = 0
    bad = []
    for b, a in rows:
        ok = agrees(a, ref)
        n_agree += ok and b != "graph"
        if not ok and a.status == "optimal" and ref.status in ("optimal", "infeasible"):
            bad.append(b)
        tot = dag.totals(a.path) if a.path else None
        obj = "-" if a.primary is None else f"{a.primary:,}"
        peak = "-" if tot is None else f"{tot['peak']:,}"
        macs = "-" if tot is None else f"{tot['macs']:,}"
        mark = "referee" if b == "graph" else ("[green]yes[/green]" if ok else "[red]NO[/red]")
        if b != "graph" and not ok and a.status in ("timeout", "error"):
            mark = "[yellow]no answer[/yellow]"
        t.add_row(b, _fmt_status(a), obj, peak, macs, f"{a.seconds * 1000:.1f} ms", mark)
        table_rows.append({"model": dag.net.name, "cost_model": dag.cost_model, "io": dag.io,
                           "query": what, "backend": b, "status": a.status,
                           "objective": a.primary, "tiebreak": a.secondary,
                           "peak": None if tot is None else tot["peak"],
                           "macs": None if tot is None else tot["macs"],
                           "cycles": None if tot is None else tot["cycles"],
                           "seconds": round(a.seconds, 6), "gap": a.gap,
                           "agrees": "referee" if b == "graph" else ok})
    con.print(t)
    con.print(f"{n_agree}/{len(backends)} backends agree with graph search")
    if args.csv:
        write_csv(args.csv, table_rows)
        con.print(f"table written to {shown(args.csv)}")
    if bad and not args.no_check:
        raise CrossCheckError(f"{', '.join(bad)} claim(s) an optimum that graph search refutes "
                              f"({ref.status} {ref.primary}, {ref.secondary})")
    if ref.status == "infeasible":
        raise _infeasible(dag, q)
    return 0


def write_csv(path, rows: list[dict]) -> None:
    import csv
    if not rows:
        return
    try:
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _progress(con):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=con, transient=True)


def setting(dag, path) -> str:
    return ", ".join(str(int(dag.src[e])) if dag.dst[e] - dag.src[e] == 1
                     else f"{int(dag.src[e])}-{int(dag.dst[e]) - 1}" for e in path)


# ---------------------------------------------------------------------------------------------
def cmd_pareto(args) -> int:
    from rich.table import Table
    from .backends import pareto
    from .pareto_confirm import confirm
    # the confirmation solves many small programs: one solver thread each is fastest (CP-SAT's
    # portfolio of workers costs more than it saves on them), unless --threads says otherwise
    conf_threads = 1 if args.threads is None else args.threads
    ram, mo, lb, _tiles = parse_numbers(args)
    dag, ram = load_dag(args, ram)
    metric = args.metric or ("macs" if dag.cost_model == "msfcnn" else "cycles")
    if mo is not None and metric != "macs":
        raise InputError("--max-overhead bounds MACs: use it with --metric macs")
    if lb is not None and metric != "cycles":
        raise InputError("--latency-budget bounds est. cycles: use it with --metric cycles")
    con = console()
    fr = pareto.front(dag, metric, ram_cap=math.inf if ram is None else ram)
    n_all = len(fr.points)
    limit = None
    if mo is not None and not math.isinf(mo):
        limit = mo * dag.vanilla_macs
    elif lb is not None:
        limit = lb
    if limit is not None:
        fr.points = [p for p in fr.points if p.latency <= limit]
    if not fr.points:
        from .backends import graph
        min_ram = graph.min_feasible_ram(dag)
        best = graph.min_latency(dag, metric).total
        raise InfeasibleError(
            f"no plan of {dag.net.name} satisfies the constraints (smallest feasible peak "
            f"{min_ram:,}, least {metric} {best:,})", min_ram=min_ram, min_latency=best)
    confirmations = None
    t_conf = 0.0
    if not args.no_check:
        t0 = time.perf_counter()
        with _progress(con) as prog:
            task = prog.add_task(f"confirming with {args.backend}", total=len(fr.points))
            confirmations = confirm(dag, fr, args.backend, args.time_limit, conf_threads,
                                    progress=lambda: prog.advance(task),
                                    ram_cap=math.inf if ram is None else ram,
                                    latency_limit=limit)
        t_conf = time.perf_counter() - t0

    # the paper's points (zoo models, msfcnn cost model, MACs axis, no extra constraint)
    from . import paper_points
    paper = published = None
    if (dag.cost_model == "msfcnn" and metric == "macs" and dag.net.name in paper_points.PARETO
            and ram is None and limit is None and args.max_depth is None):
        paper = paper_points.PARETO[dag.net.name]
        published = paper_points.PUBLISHED[dag.net.name]
    paper_set = set(paper or [])
    van = dag.vanilla_path()
    vt = dag.totals(van) if dag.is_path(van) else None

    unit = "B" if dag.cost_model == "runtime" else "elements"
    t = Table(title=f"{shown(dag.net.name)}: Pareto front, peak RAM vs {metric} ({dag.cost_model}, "
                    f"io={dag.io}; {len(fr.points)} points)", title_justify="left")
    cols = [("#", "right"), (f"peak RAM ({unit})", "right"), (metric, "right"),
            ("F", "right"), ("blocks", "right")]
    if dag.cost_model == "runtime" and metric == "macs":
        cols.append(("est. cycles", "right"))
    if confirmations is not None:
        cols.append((f"confirmed ({args.backend})", "left"))
    if paper is not None:
        cols.append(("paper §5.2", "left"))
    for c, j in cols:
        t.add_column(c, justify=j)
    csv_rows = []
    for k, p in enumerate(fr.points):
        row = [str(k), f"{p.peak:,}", f"{p.latency:,}",
               f"{mac_overhead(p.macs, dag.vanilla_macs):.4f}", str(len(p.path))]
        if dag.cost_model == "runtime" and metric == "macs":
            row.append(f"{p.cycles:,}")
        conf = None if confirmations is None else confirmations[k]
        if conf is not None:
            row.append("[green]yes[/green]" if conf.ok else
                       ("[yellow]time-out[/yellow]" if conf.unanswered else "[red]NO[/red]"))
        if paper is not None:
            row.append("yes" if (p.peak, p.latency) in paper_set else "[red]not listed[/red]")
        t.add_row(*row)
        csv_rows.append({"model": dag.net.name, "cost_model": dag.cost_model, "io": dag.io,
                         "metric": metric, "point": k, "peak": p.peak, "latency": p.latency,
                         "macs": p.macs, "cycles": p.cycles,
                         "mac_overhead": mac_overhead(p.macs, dag.vanilla_macs),
                         "blocks": len(p.path), "setting": setting(dag, p.path),
                         "confirmed": None if conf is None else conf.ok,
                         "in_paper": None if paper is None else (p.peak, p.latency) in paper_set})
    con.print(t)
    con.print(f"front computed in {fr.seconds * 1000:.1f} ms (label-setting search, "
              f"{fr.labels:,} labels, DAG {dag.n_nodes} nodes, {dag.n_edges} edges)"
              + (f"; {n_all - len(fr.points)} points beyond the latency limit dropped"
                 if len(fr.points) < n_all else ""))
    if vt is not None:
        lat = vt[metric]
        on = any(p.peak == vt["peak"] and p.latency == lat for p in fr.points)
        dom = [k for k, p in enumerate(fr.points) if p.peak <= vt["peak"] and p.latency <= lat]
        con.print(f"vanilla layer-by-layer: peak {vt['peak']:,}, {metric} {lat:,} — "
                  + ("on the front" if on else
                     f"dominated by point {dom[0]}" if dom else "outside the constrained range"))
    if paper is not None:
        found = paper_set & {(p.peak, p.latency) for p in fr.points}
        extra = len(fr.points) - len(found)
        con.print(f"paper §5.2: {len(found)}/{len(paper)} of its Pareto points are on msfopt's "
                  f"front; {extra} front point(s) the paper does not list")
        pub_on = sum((a, b) in {(p.peak, p.latency) for p in fr.points} for a, b, _ in published)
        con.print(f"paper's published P1/P2 results: {pub_on}/{len(published)} on the front")
    bad = timeouts = 0
    if confirmations is not None:
        bad = sum(1 for c in confirmations if not c.ok and not c.unanswered)
        timeouts = sum(1 for c in confirmations if c.unanswered)
        con.print(f"epsilon-constraint confirmation with {args.backend}: "
                  f"{len(confirmations) - bad - timeouts}/{len(confirmations)} points confirmed "
                  f"({t_conf:.2f} s)")
    else:
        con.print("epsilon-constraint confirmation skipped (--no-check)")
    if args.csv:
        write_csv(args.csv, csv_rows)
        con.print(f"front written to {shown(args.csv)}")
    if args.plot:
        from .plots import plot_front
        # matplotlib reads $...$ as mathtext: the name is shown literally
        title = (f"{one_line(dag.net.name).replace('$', chr(92) + '$')}: peak RAM vs {metric} "
                 f"({dag.cost_model} cost model)")
        plot_front(args.plot, [(p.peak, p.latency) for p in fr.points], metric, title,
                   vanilla=None if vt is None else (vt["peak"], vt[metric]), paper=paper,
                   published=published,
                   unit="bytes" if dag.cost_model == "runtime" else "elements = bytes at int8")
        con.print(f"plot written to {shown(args.plot)}")
    if bad:
        raise CrossCheckError(f"{bad} front point(s) not confirmed by {args.backend}")
    if timeouts:
        raise SolverError(f"{timeouts} front point(s) not confirmed: {args.backend} timed out "
                          f"or failed")
    return 0
