"""Code-generation sub-commands: ``codegen``, ``build``, ``run``, ``export-onnx``.

``msfopt codegen MODEL --ram 64k -o out/`` solves (or reads ``--plan plan.json``) and writes the C
sources plus ``msfopt_gen.json`` (what was generated: model, weights seed, dtype, io, plan), so
``msfopt build out/ --target T`` and ``msfopt run out/ --target T`` need nothing else.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import BuildError, InputError

GEN_META = "msfopt_gen.json"


def add_parsers(sub, add_solve_args) -> dict:
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
    p.add_argument("model")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--dtype", default="int8", choices=["int8", "float32"])
    p.add_argument("--seed", type=_seed_arg, default=0)
    p.add_argument("--nhwc", action="store_true", help="NHWC input/output (default NCHW)")
    return {"codegen": cmd_codegen, "build": cmd_build, "run": cmd_run,
            "export-onnx": cmd_export_onnx}


def _console():
    from rich.console import Console
    return Console(highlight=False)


#: largest --seed accepted (numpy seeds are non-negative; kept to 64 bits)
SEED_MAX = 2 ** 63 - 1


def _shown(text) -> str:
    from .cli import shown
    return shown(text)


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


def _check_target(args) -> None:
    """Unknown --target: exit 2 before anything is built; known ones by their profile name."""
    from .mcu import get_profile
    args.target = get_profile(args.target).name


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
                    _read_meta(out)
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
    from .cli import _parse_numbers, print_plan, shown
    from .models import network_with_weights
    from .plan import Plan
    from .solver import solve
    from .mcu_runtime.codegen import CodegenError, generate
    out = _check_out_dir(args.out, args.force)
    ram, mo, lb, tiles = _parse_numbers(args)
    if args.plan:
        plan = Plan.load(args.plan)      # structure first: a bad plan costs no model load
    net = network_with_weights(args.model, dtype=args.dtype, seed=args.seed)
    if args.plan:
        if plan.cost_model != "runtime":
            raise InputError("code generation needs a plan made with --cost-model runtime")
        if plan.model != net.name:
            raise InputError(f"plan {args.plan} is for {plan.model}, not {net.name}")
        plan.validate(net)
        io = plan.io
    else:
        if args.cost_model != "runtime":
            raise InputError("code generation needs --cost-model runtime")
        plan = solve(net, objective=args.objective, ram=ram, max_overhead=mo, latency_budget=lb,
                     backend=args.backend, io=args.io, mcu=args.mcu, check=not args.no_check,
                     time_limit=args.time_limit, threads=args.threads, modes=args.modes_list,
                     tiles=tiles, patches=args.patches_list, max_depth=args.max_depth)
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
                "input_shape": list(gen.input_shape), "output_shape": list(gen.output_shape)}
        (tmp / GEN_META).write_text(json.dumps(meta, indent=2) + "\n")
        _move_into_place(tmp, out)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.plan:
        print_plan(plan)
    _console().print(f"generated {shown(out)}/msf_model.c, msf_model.h (MSF_ARENA_BYTES = "
                     f"{gen.arena_bytes:,}, weights {gen.weight_bytes:,} B, rq {gen.rq}), "
                     f"CMakeLists.txt, msfopt.mk")
    return 0


#: msfopt_gen.json keys -> check
_META_CHECKS = {
    "model": lambda v: isinstance(v, str) and bool(v.strip()),
    "dtype": lambda v: v in ("int8", "float32"),
    "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= SEED_MAX,
    "io": lambda v: v in ("arena", "external", "input-external"),
    "rq": lambda v: v in ("float", "fixed"),
}


def _read_meta(out: Path) -> dict:
    """msfopt_gen.json of a generated directory, every key the commands use checked."""
    meta_p = out / GEN_META
    if not meta_p.is_file():
        raise InputError(f"{out} is not a directory written by 'msfopt codegen' (no {GEN_META})")
    try:
        meta = json.loads(meta_p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {meta_p}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{meta_p} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{meta_p} does not hold a JSON object")
    missing = [k for k in _META_CHECKS if k not in meta]
    if missing:
        raise InputError(f"{meta_p} lacks key(s) {', '.join(missing)}: regenerate with "
                         f"'msfopt codegen'")
    bad = [f"{k}={json.dumps(meta[k])[:40]}" for k, ok in _META_CHECKS.items() if not ok(meta[k])]
    if bad:
        raise InputError(f"{meta_p} has invalid value(s) {', '.join(bad)}: regenerate with "
                         f"'msfopt codegen'")
    return meta


def _meta_model(meta: dict, out: Path) -> str:
    """The recorded model: zoo name or absolute path (older directories: a path relative to
    the working directory of the codegen run, tried as is and relative to the directory)."""
    from . import zoo
    m = meta["model"]
    p = Path(m)
    if p.is_absolute() or p.is_file() or (zoo.resolve_name(m) is not None):
        return m
    if (out / p).is_file():
        return str((out / p).resolve())
    return m


def _load_generated(d: str):
    from .models import network_with_weights
    from .plan import Plan
    from .mcu_runtime.codegen import CodegenError, generate
    out = Path(d)
    meta = _read_meta(out)
    meta["model"] = _meta_model(meta, out)
    net = network_with_weights(meta["model"], dtype=meta["dtype"], seed=meta["seed"])
    plan = Plan.load(out / "plan.json")
    if plan.model != net.name:
        raise InputError(f"{out / 'plan.json'} is for {plan.model}, not {net.name}")
    plan.validate(net, io=meta["io"])
    try:
        gen = generate(net, plan.blocks, out, io=meta["io"], rq=meta["rq"])
    except CodegenError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    if plan.arena_bytes is None:
        plan.arena_bytes = gen.arena_bytes
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
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read input {args.input}: {exc.strerror or exc}") from None
    esize = np.dtype(dt).itemsize
    n = int(np.prod(net.input_shape))
    if len(raw) % esize:
        raise InputError(f"input {args.input} has {len(raw)} bytes, not a multiple of the "
                         f"{esize}-byte {net.dtype} element (expected {n * esize} bytes, "
                         f"{'x'.join(map(str, net.input_shape))} NHWC)")
    data = np.frombuffer(raw, dtype=dt)
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
    _check_target(args)
    meta, net, plan, gen = _load_generated(args.dir)
    con = _console()
    if args.target == "host":
        from .mcu_runtime.hostrun import build_host
        exe = build_host(gen, sanitize=args.sanitize)
        con.print(f"built {_shown(exe)}")
        return 0
    from .mcu_runtime.mcurun import build_target
    x = _input(args, net)
    b = build_target(gen, args.target, x, _expected(gen, net, meta, x))
    used = b.data + b.bss + b.stack_reserved
    con.print(f"built {_shown(b.elf)}\n"
              f"  flash {b.flash_used:,} B (text+rodata {b.text:,} B, .data image {b.data:,} B)\n"
              f"  RAM   {used:,} / {b.ram_size:,} B: .data {b.data:,} B + .bss {b.bss:,} B "
              f"(arena {gen.arena_bytes:,} B) + stack reserve {b.stack_reserved:,} B")
    return 0


def cmd_run(args) -> int:
    _check_target(args)
    meta, net, plan, gen = _load_generated(args.dir)
    x = _input(args, net)
    return _run_and_compare(args, meta, net, plan, gen, x)


OUTPUT_FILE = "msf_output.bin"


def _write_c_output(gen, y) -> Path:
    p = gen.out_dir / OUTPUT_FILE
    p.write_bytes(np.ascontiguousarray(y).tobytes())
    return p


def _oracle_crashed(exc, gen, x):
    """The reference interpreter died: still run the generated C on the host and write its
    output, then fail with exit 6."""
    from .mcu_runtime.hostrun import build_host, run_host
    from .oracles import OracleCrash
    try:
        p = _write_c_output(gen, run_host(gen, build_host(gen), x))
        where = f"; the generated C's output is in {p}"
    except Exception as e2:  # noqa: BLE001 - the crash is the error to report
        where = f"; the generated C did not run either: {e2}"
    raise OracleCrash(f"{exc}{where}") from None


def _run_and_compare(args, meta, net, plan, gen, x) -> int:
    """Run the generated C (host or QEMU), compare it with the oracle of :mod:`msfopt.oracles`
    (named in the table and in the JSON result), write its output to ``msf_output.bin``."""
    from rich.table import Table
    from . import oracles
    con = _console()
    t = Table(title=f"{_shown(net.name)} on {args.target}", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    result: dict = {"model": meta["model"], "target": args.target, "rq": gen.rq,
                    "predicted_arena_bytes": plan.arena_bytes}
    source = meta["model"]
    if args.target == "host":
        from .mcu_runtime.hostrun import build_host, run_host
        exe = build_host(gen, sanitize=args.sanitize, guard=64)
        y = run_host(gen, exe, x, timeout=args.timeout)
        _write_c_output(gen, y)
        try:
            ref = oracles.reference(net, [x], source, rq=gen.rq, gen=gen,
                                    host_exe=None if args.sanitize else exe)
            ref = oracles.arbitrate(net, [x], [y], ref, source)
        except oracles.OracleCrash as exc:
            raise oracles.OracleCrash(f"{exc}; the generated C's output is in "
                                      f"{gen.out_dir / OUTPUT_FILE}") from None
        ok, detail = oracles.compare(y, ref, net.dtype)
        if ref.kind == "host-consistent":
            detail = "host-consistent" if ok else detail
        t.add_row(f"output vs {ref.oracle}", detail)
        for note in ref.notes:
            t.add_row("  oracle note", note)
        result.update(oracle=ref.oracle, oracle_kind=ref.kind, oracle_notes=ref.notes,
                      ok=ok, detail=detail, verdict=detail)
        if ref.kind == "external" and ref.oracle in (oracles.ORT, oracles.ONNX_REF):
            # msfopt's re-export of its IR: an extra check only (an importer mistake is
            # invisible to it)
            try:
                rx = oracles.reexport_reference(net, [x])
                ok2, detail2 = oracles.compare(y, rx.y, net.dtype)
            except oracles.OracleError as exc:
                ok2, detail2 = False, str(exc)
            t.add_row(f"extra check: vs {oracles.ORT_REEXPORT}", detail2)
            result["extra_check"] = {"oracle": oracles.ORT_REEXPORT, "ok": ok2, "detail": detail2}
        t.add_row("arena (MSF_ARENA_BYTES)", f"{gen.arena_bytes:,} B")
        t.add_row("plan's predicted arena", f"{plan.arena_bytes:,} B")
        t.add_row("arena guard bytes", "intact")
        result["arena_bytes"] = gen.arena_bytes
        con.print(t)
        what = "output differs from the reference"
    else:
        from .mcu_runtime.mcurun import expected_reference, run_target
        try:
            ref = expected_reference(gen, net, x, source)
        except oracles.OracleCrash as exc:
            _oracle_crashed(exc, gen, x)
        r = run_target(gen, args.target, x, ref, timeout_s=args.timeout)
        ok = r.bit_exact and r.fits
        t.add_row(f"output vs {ref.oracle}", r.verdict)
        for note in ref.notes:
            t.add_row("  oracle note", note)
        t.add_row("exit status", str(r.exit_code))
        same = "" if r.arena_bytes == plan.arena_bytes else (
            f"  [yellow]linked object {r.arena_bytes - plan.arena_bytes:+,} B vs predicted"
            f"[/yellow]")
        t.add_row("arena (nm -S msf_arena_u / predicted)",
                  f"{r.arena_bytes:,} / {plan.arena_bytes:,} B{same}")
        t.add_row("MSF_ARENA_BYTES echoed by the image", f"{r.arena_reported:,} B")
        t.add_row(".bss (includes the arena)", f"{r.bss:,} B")
        t.add_row(".data + .bss", f"{r.static_ram:,} B")
        t.add_row("stack high-water mark (painted)",
                  f"{r.stack_hwm:,} B of {r.stack_reserved:,} B reserved")
        t.add_row("total RAM (static + painted stack)", f"{r.total_ram:,} / {r.ram_size:,} B"
                  + ("" if r.fits else "  [red]exceeds RAM[/red]"))
        t.add_row("flash", f"{r.flash:,} B")
        t.add_row("instructions in msf_model_run", f"{r.instructions:,}" if r.instructions else "-")
        result.update(r.as_dict())
        result.update(oracle_notes=ref.notes, ok=ok, arena_matches_prediction=(
            r.arena_bytes == plan.arena_bytes))
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
        what = ("measured RAM exceeds the target's RAM" if r.bit_exact
                else "output differs from the reference")
    _write_json(args, result)
    if not ok:
        sys.stderr.write(f"msfopt: error: {what}\n")
        return 6
    con.print("[green]output matches the reference[/green]" if result.get("oracle_kind") !=
              "host-consistent" else "[green]output matches the host build (host-consistent; no "
                                     "external oracle for rq fixed on this model)[/green]")
    return 0


def _write_json(args, result: dict) -> None:
    dest = getattr(args, "json", None)
    if not dest:
        return
    text = json.dumps(result, indent=2, default=str) + "\n"
    if dest == "-":
        sys.stdout.write(text)
        return
    try:
        Path(dest).write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write {dest}: {exc.strerror}") from None


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
    _console().print(f"wrote {_shown(args.out)} ({mode}, {net.n_layers} layers, "
                     f"{'NHWC' if args.nhwc else 'NCHW'} I/O)")
    return 0
