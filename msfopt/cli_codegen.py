"""Code-generation sub-commands: ``codegen``, ``build``, ``run``, ``export-onnx``.

``msfopt codegen MODEL --ram 64k -o out/`` solves (or reads ``--plan plan.json``) and writes the C
sources plus ``msfopt_gen.json`` (what was generated: model, weights seed, dtype, io, plan), so
``msfopt build out/ --target T`` and ``msfopt run out/ --target T`` need nothing else.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .errors import BuildError, InputError

GEN_META = "msfopt_gen.json"


def add_parsers(sub, add_solve_args) -> dict:
    p = sub.add_parser("codegen", help="generate the C runtime for a plan")
    add_solve_args(p)
    p.add_argument("--plan", help="use this plan JSON instead of solving")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--dtype", default="int8", choices=["int8", "float32"],
                   help="zoo models: element type of the generated model (default int8)")
    p.add_argument("--seed", type=int, default=0, help="zoo models: weight seed (default 0)")
    p.add_argument("--rq", choices=["float", "fixed"],
                   help="int8 requantisation: float (onnxruntime-exact, default for ONNX/zoo) or "
                        "fixed (TFLite Micro integer-only, default for .tflite)")

    p = sub.add_parser("build", help="compile a generated model for a target")
    p.add_argument("dir", help="directory written by 'msfopt codegen'")
    p.add_argument("--target", default="host", help="host or an MCU profile (see 'msfopt mcus')")
    p.add_argument("--sanitize", action="store_true", help="host: -fsanitize=address,undefined")
    p.add_argument("--input", default="random", help="MCU targets: input embedded in the image "
                   "(raw NHWC file or 'random')")

    p = sub.add_parser("run", help="build, run and compare a generated model with its reference")
    p.add_argument("dir", help="directory written by 'msfopt codegen'")
    p.add_argument("--target", default="host")
    p.add_argument("--input", default="random", help="raw NHWC input file, or 'random'")
    p.add_argument("--seed", type=int, default=1, help="seed of the random input")
    p.add_argument("--sanitize", action="store_true", help="host: -fsanitize=address,undefined")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds (QEMU runs)")

    p = sub.add_parser("export-onnx", help="export a model (zoo: with its seeded weights) to ONNX")
    p.add_argument("model")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--dtype", default="int8", choices=["int8", "float32"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nhwc", action="store_true", help="NHWC input/output (default NCHW)")
    return {"codegen": cmd_codegen, "build": cmd_build, "run": cmd_run,
            "export-onnx": cmd_export_onnx}


def _console():
    from rich.console import Console
    return Console(highlight=False)


def cmd_codegen(args) -> int:
    from .cli import _parse_numbers, print_plan
    from .models import network_with_weights
    from .plan import Plan
    from .solver import solve
    from .mcu_runtime.codegen import CodegenError, generate
    ram, mo, lb, tiles = _parse_numbers(args)
    net = network_with_weights(args.model, dtype=args.dtype, seed=args.seed)
    if args.plan:
        plan = Plan.load(args.plan)
        if plan.cost_model != "runtime":
            raise InputError("code generation needs a plan made with --cost-model runtime")
        if plan.model != net.name:
            raise InputError(f"plan {args.plan} is for {plan.model}, not {net.name}")
        io = plan.io
    else:
        if args.cost_model != "runtime":
            raise InputError("code generation needs --cost-model runtime")
        plan = solve(net, objective=args.objective, ram=ram, max_overhead=mo, latency_budget=lb,
                     backend=args.backend, io=args.io, mcu=args.mcu, check=not args.no_check,
                     time_limit=args.time_limit, threads=args.threads, modes=args.modes_list,
                     tiles=tiles, patches=args.patches_list, max_depth=args.max_depth)
        io = args.io
    out = Path(args.out)
    try:
        gen = generate(net, plan.blocks, out, io=io, rq=args.rq)
    except CodegenError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    if plan.arena_bytes is not None and plan.arena_bytes != gen.arena_bytes:
        raise BuildError(f"generated arena {gen.arena_bytes} B != plan's {plan.arena_bytes} B")
    plan.save(out / "plan.json")
    meta = {"model": str(args.model), "dtype": net.dtype, "seed": args.seed, "io": io,
            "rq": gen.rq, "arena_bytes": gen.arena_bytes, "weight_bytes": gen.weight_bytes,
            "input_shape": list(gen.input_shape), "output_shape": list(gen.output_shape)}
    (out / GEN_META).write_text(json.dumps(meta, indent=2) + "\n")
    if not args.plan:
        print_plan(plan)
    _console().print(f"generated {out}/msf_model.c, msf_model.h (MSF_ARENA_BYTES = "
                     f"{gen.arena_bytes:,}, weights {gen.weight_bytes:,} B, rq {gen.rq}), "
                     f"CMakeLists.txt, msfopt.mk")
    return 0


def _load_generated(d: str):
    from .models import network_with_weights
    from .plan import Plan
    from .mcu_runtime.codegen import generate
    out = Path(d)
    meta_p = out / GEN_META
    if not meta_p.is_file():
        raise InputError(f"{d} is not a directory written by 'msfopt codegen' (no {GEN_META})")
    try:
        meta = json.loads(meta_p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta_p}: {exc}") from None
    net = network_with_weights(meta["model"], dtype=meta["dtype"], seed=meta["seed"])
    plan = Plan.load(out / "plan.json")
    gen = generate(net, plan.blocks, out, io=meta["io"], rq=meta["rq"])
    return meta, net, plan, gen


def _input(args, net):
    dt = np.float32 if net.dtype == "float32" else np.int8
    if args.input == "random":
        rng = np.random.default_rng(getattr(args, "seed", 1))
        if dt is np.int8:
            return rng.integers(-128, 128, size=net.input_shape, dtype=np.int8)
        return rng.standard_normal(net.input_shape).astype(np.float32)
    p = Path(args.input)
    if not p.is_file():
        raise InputError(f"input file not found: {args.input}")
    data = np.frombuffer(p.read_bytes(), dtype=dt)
    n = int(np.prod(net.input_shape))
    if data.size != n:
        raise InputError(f"input {args.input} has {data.size} {net.dtype} elements, "
                         f"expected {n} ({'x'.join(map(str, net.input_shape))} NHWC)")
    return data.reshape(net.input_shape)


def _expected(gen, net, meta, x):
    """Reference output: onnxruntime / tflite-micro, or for integer requantisation of a
    non-TFLite model the same C code built for the host."""
    from .mcu_runtime.mcurun import expected_output
    return expected_output(gen, net, x, meta["model"])


def cmd_build(args) -> int:
    meta, net, plan, gen = _load_generated(args.dir)
    con = _console()
    if args.target == "host":
        from .mcu_runtime.hostrun import build_host
        exe = build_host(gen, sanitize=args.sanitize)
        con.print(f"built {exe}")
        return 0
    from .mcu_runtime.mcurun import build_target
    x = _input(args, net)
    b = build_target(gen, args.target, x, _expected(gen, net, meta, x))
    used = b.data + b.bss + b.stack_reserved
    con.print(f"built {b.elf}\n"
              f"  flash {b.flash_used:,} B (text+rodata {b.text:,} B, .data image {b.data:,} B)\n"
              f"  RAM   {used:,} / {b.ram_size:,} B: .data {b.data:,} B + .bss {b.bss:,} B "
              f"(arena {gen.arena_bytes:,} B) + stack reserve {b.stack_reserved:,} B")
    return 0


def cmd_run(args) -> int:
    from rich.table import Table
    from .models import reference_output
    meta, net, plan, gen = _load_generated(args.dir)
    x = _input(args, net)
    ref = _expected(gen, net, meta, x) if args.target != "host" else reference_output(net, x, meta["model"])
    con = _console()
    t = Table(title=f"{net.name} on {args.target}", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    if args.target == "host":
        from .mcu_runtime.hostrun import build_host, run_host
        exe = build_host(gen, sanitize=args.sanitize, guard=64)
        y = run_host(gen, exe, x, timeout=args.timeout)
        if net.dtype == "float32":
            err = float(np.max(np.abs(y - ref) / (np.abs(ref) + 1e-6)))
            ok = bool(np.allclose(y, ref, rtol=1e-4, atol=1e-5))
            t.add_row("max relative error vs reference", f"{err:.2e}")
        else:
            ok = bool(np.array_equal(y, ref))
            t.add_row("mismatching output bytes", str(int(np.sum(y != ref))))
        t.add_row("arena (MSF_ARENA_BYTES)", f"{gen.arena_bytes:,} B")
        t.add_row("plan's predicted arena", f"{plan.arena_bytes:,} B")
        t.add_row("arena guard bytes", "intact")
        con.print(t)
    else:
        from .mcu_runtime.mcurun import run_target
        r = run_target(gen, args.target, x, ref, timeout_s=args.timeout)
        ok = r.bit_exact and r.fits
        t.add_row("output vs " + ("host reference" if gen.rq == "float" else "host build (rq fixed)"),
                  "bit-exact" if r.bit_exact else f"{r.mismatches} mismatches")
        t.add_row("exit status", str(r.exit_code))
        t.add_row("arena (measured / predicted)", f"{r.arena_bytes:,} / {plan.arena_bytes:,} B")
        t.add_row(".data + .bss", f"{r.static_ram:,} B")
        t.add_row("stack high-water mark (painted)",
                  f"{r.stack_hwm:,} B of {r.stack_reserved:,} B reserved")
        t.add_row("total RAM (static + painted stack)", f"{r.total_ram:,} / {r.ram_size:,} B"
                  + ("" if r.fits else "  [red]exceeds RAM[/red]"))
        t.add_row("flash", f"{r.flash:,} B")
        t.add_row("instructions in msf_model_run", f"{r.instructions:,}" if r.instructions else "-")
        try:
            from .mcu import get_profile
            prof = get_profile(args.target)
            est = sum(prof.cycle_model().cycles(net, s) for s in gen.schedules)
            t.add_row("predicted instructions" + ("" if prof.calibrated else " (uncalibrated)"),
                      f"{est:,}" + (f" ({(est - r.instructions) / r.instructions:+.1%})"
                                    if r.instructions else ""))
        except Exception:  # the estimate is informative only
            pass
        con.print(t)
    if not ok:
        what = ("measured RAM exceeds the target's RAM" if args.target != "host" and r.bit_exact
                else "output differs from the reference")
        sys.stderr.write(f"msfopt: error: {what}\n")
        return 6
    con.print("[green]output matches the reference[/green]")
    return 0


def cmd_export_onnx(args) -> int:
    import onnx
    from .export_onnx import to_onnx
    from .models import network_with_weights
    net = network_with_weights(args.model, dtype=args.dtype, seed=args.seed)
    mode = "float" if net.dtype == "float32" else "int8"
    try:
        model = to_onnx(net, mode=mode, nhwc_io=args.nhwc)
        onnx.save(model, args.out)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror}") from None
    _console().print(f"wrote {args.out} ({mode}, {net.n_layers} layers, "
                     f"{'NHWC' if args.nhwc else 'NCHW'} I/O)")
    return 0
