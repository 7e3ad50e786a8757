"""Code-generation sub-commands: the options of ``codegen``, ``build``, ``run``, ``export-onnx``,
and the ``codegen`` and ``export-onnx`` commands (``build`` and ``run``: :mod:`msfopt.cli_run`).

``msfopt codegen MODEL --ram 64k -o out/`` solves (or reads ``--plan plan.json``) and writes the C
sources plus ``msfopt_gen.json`` (what was generated: model, weights seed, dtype, io, plan; see
:mod:`msfopt.cli_gendir`), so ``msfopt build out/ --target T`` and ``msfopt run out/ --target T``
need nothing else.  The directory is written in a staging directory and moved into place.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .cli_common import (add_model_arg, add_solve_args, cli_model, console, parse_numbers,
                         print_plan, shown)
from .cli_gendir import GEN_META, SEED_MAX, read_meta
from .cli_run import cmd_build, cmd_run
from .errors import BuildError, InputError


def add_parsers(sub) -> dict:
    p = sub.add_parser("codegen", help="generate the C runtime for a plan")
    add_solve_args(p)
    p.add_argument("--plan", help="use this plan JSON instead of solving")
    p.add_argument("-o", "--out", required=True,
                   help="output directory (new, empty, or written by msfopt codegen before)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing non-empty directory msfopt did not create "
                        "(only the generated files are replaced)")
    p.add_argument("--dtype", default="int8", choices=["int8", "float32"],
                   help="zoo models: element type of the generated model (default int8)")
    p.add_argument("--seed", type=_seed_arg, default=0, help="zoo models: weight seed (default 0)")
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
    p.add_argument("--seed", type=_seed_arg, default=1, help="seed of the random input")
    p.add_argument("--sanitize", action="store_true", help="host: -fsanitize=address,undefined")
    p.add_argument("--timeout", type=_seconds_arg, default=300.0, help="seconds (QEMU runs)")
    p.add_argument("--json", metavar="FILE|-", help="write the run result (oracle named) as JSON")

    p = sub.add_parser("export-onnx", help="export a model (zoo: with its seeded weights) to ONNX")
    add_model_arg(p)
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--dtype", default="int8", choices=["int8", "float32"])
    p.add_argument("--seed", type=_seed_arg, default=0)
    p.add_argument("--nhwc", action="store_true", help="NHWC input/output (default NCHW)")
    return {"codegen": cmd_codegen, "build": cmd_build, "run": cmd_run,
            "export-onnx": cmd_export_onnx}


def _seed_arg(text: str) -> int:
    import argparse
    t = str(text).strip()
    if not (t.isascii() and t.isdigit() and len(t) <= 19) or int(t) > SEED_MAX:
        raise argparse.ArgumentTypeError(f"seed must be an integer 0..{SEED_MAX}, got {text!r}")
    return int(t)


def _seconds_arg(text: str) -> float:
    import argparse
    from .units import parse_time
    try:
        return parse_time(text, "time-out")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_ref(model: str) -> str:
    """What msfopt_gen.json records as the model: a zoo name, or the file's absolute path (so
    the directory runs from any working directory)."""
    p = Path(model)
    if p.is_file():
        return str(p.resolve())
    return str(model)


def _check_out_dir(text: str, force: bool) -> Path:
    """Refuse (exit 2) an empty output path, a path that is not a directory, or an existing
    non-empty directory msfopt did not write (no valid msfopt_gen.json) unless --force."""
    if not str(text).strip():
        raise InputError("empty output directory (-o ''): name a directory (for the current "
                         "directory, '-o . --force')")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {text} exists and is not a directory")
    if out.is_dir():
        try:
            nonempty = any(out.iterdir())
        except OSError as exc:
            raise InputError(f"cannot read output directory {text}: {exc.strerror or exc}") from None
        if nonempty and not force:
            why = None
            if (out / GEN_META).is_file():
                try:
                    read_meta(out)
                except InputError as exc:
                    why = f"its {GEN_META} is not msfopt's ({exc})"
            else:
                why = f"it has no {GEN_META}: msfopt did not write it"
            if why:
                raise InputError(f"output directory {text} is not empty and {why}; choose another "
                                 f"directory or pass --force (only the generated files are "
                                 f"replaced)")
    return out


def _staging_dir(out: Path) -> Path:
    """A fresh temporary directory beside ``out`` (same parent, so moves are renames); inside
    ``out`` when its parent is not writable."""
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".msfopt-tmp-", dir=parent))
    except OSError:
        if not out.is_dir():
            raise
        tmp = Path(tempfile.mkdtemp(prefix=".msfopt-tmp-", dir=out))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _move_into_place(tmp: Path, out: Path) -> None:
    """The staged files become ``out``: one rename when ``out`` does not exist, else each
    generated file replaces its namesake (the directory's other files are left alone)."""
    if not out.exists():
        try:
            os.rename(tmp, out)
            return
        except OSError:
            out.mkdir(parents=True, exist_ok=True)
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)


def cmd_codegen(args) -> int:
    from .plan import Plan
    from .order import solve
    from .mcu_runtime.codegen import generate
    from .mcu_runtime.ctext import CodegenError
    out = _check_out_dir(args.out, args.force)
    ram, mo, lb, tiles = parse_numbers(args)
    if args.plan:
        plan = Plan.load(args.plan)      # structure first: a bad plan costs no model load
    net = cli_model(args, weights=True, dtype=args.dtype, seed=args.seed)
    if args.plan:
        if plan.cost_model != "runtime":
            raise InputError("code generation needs a plan made with --cost-model runtime")
        if plan.model != net.name:
            raise InputError(f"plan {args.plan} is for {plan.model}, not {net.name}")
        net = plan.network(net)
        plan.validate(net)
        io = plan.io
    else:
        if args.cost_model != "runtime":
            raise InputError("code generation needs --cost-model runtime")
        plan = solve(net, objective=args.objective, ram=ram, max_overhead=mo, latency_budget=lb,
                     backend=args.backend, io=args.io, mcu=args.mcu, check=not args.no_check,
                     time_limit=args.time_limit, threads=args.threads, modes=args.modes_list,
                     tiles=tiles, patches=args.patches_list, max_depth=args.max_depth,
                     order=args.order)
        net = plan.network(net)
        io = args.io
    try:
        tmp = _staging_dir(out)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    try:
        try:
            gen = generate(net, plan.blocks, tmp, io=io, rq=args.rq)
        except CodegenError as exc:
            raise InputError(str(exc)) from None
        if plan.arena_bytes is None:
            plan.arena_bytes = gen.arena_bytes    # the layout of its blocks, by construction
        elif plan.arena_bytes != gen.arena_bytes:
            msg = f"generated arena {gen.arena_bytes} B != plan's {plan.arena_bytes} B"
            if args.plan:
                raise InputError(f"plan {args.plan}: arena_bytes {plan.arena_bytes} does not match "
                                 f"the layout of its blocks ({gen.arena_bytes} B)")
            raise BuildError(msg)
        plan.save(tmp / "plan.json")
        meta = {"model": _model_ref(args.model), "dtype": net.dtype, "seed": args.seed, "io": io,
                "rq": gen.rq, "arena_bytes": gen.arena_bytes, "weight_bytes": gen.weight_bytes,
                "input_shape_args": list(args.input_shape or []),
                "input_shape": list(gen.input_shape), "output_shape": list(gen.output_shape),
                "output_shapes": [list(s) for s in gen.output_shapes]}
        (tmp / GEN_META).write_text(json.dumps(meta, indent=2) + "\n")
        _move_into_place(tmp, out)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.plan:
        print_plan(plan)
    console().print(f"generated {shown(out)}/msf_model.c, msf_model.h (MSF_ARENA_BYTES = "
                     f"{gen.arena_bytes:,}, weights {gen.weight_bytes:,} B, rq {gen.rq}), "
                     f"CMakeLists.txt, msfopt.mk")
    return 0


def cmd_export_onnx(args) -> int:
    import onnx
    from .export_onnx import to_onnx
    net = cli_model(args, weights=True, dtype=args.dtype, seed=args.seed)
    mode = "float" if net.dtype == "float32" else "int8"
    try:
        model = to_onnx(net, mode=mode, nhwc_io=args.nhwc)
        onnx.save(model, args.out)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror}") from None
    console().print(f"wrote {shown(args.out)} ({mode}, {net.n_layers} layers, "
                     f"{'NHWC' if args.nhwc else 'NCHW'} I/O)")
    return 0
