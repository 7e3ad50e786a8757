"""The ``build`` and ``run`` sub-commands (their options: :mod:`msfopt.cli_codegen`): compile a
generated directory for the host or an MCU target, run it (host executable or QEMU), compare its
output with the reference oracle of :mod:`msfopt.oracles`, and report RAM, flash and instruction
counts."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .cli_common import console, shown
from .cli_gendir import load_generated
from .errors import InputError


def _check_target(args) -> None:
    """Unknown --target: exit 2 before anything is built; known ones by their profile name."""
    from .mcu import get_profile
    args.target = get_profile(args.target).name


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
    meta, net, plan, gen = load_generated(args.dir)
    con = console()
    if args.target == "host":
        from .mcu_runtime.hostrun import build_host
        exe = build_host(gen, sanitize=args.sanitize)
        con.print(f"built {shown(exe)}")
        return 0
    from .mcu_runtime.mcurun import build_target
    x = _input(args, net)
    b = build_target(gen, args.target, x, _expected(gen, net, meta, x))
    used = b.data + b.bss + b.stack_reserved
    con.print(f"built {shown(b.elf)}\n"
              f"  flash {b.flash_used:,} B (text+rodata {b.text:,} B, .data image {b.data:,} B)\n"
              f"  RAM   {used:,} / {b.ram_size:,} B: .data {b.data:,} B + .bss {b.bss:,} B "
              f"(arena {gen.arena_bytes:,} B) + stack reserve {b.stack_reserved:,} B")
    return 0


def cmd_run(args) -> int:
    _check_target(args)
    meta, net, plan, gen = load_generated(args.dir)
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
    from .oracle_engines import OracleCrash
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
    from .oracle_engines import OracleCrash, OracleError
    con = console()
    t = Table(title=f"{shown(net.name)} on {args.target}", title_justify="left", show_header=False)
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
        except OracleCrash as exc:
            raise OracleCrash(f"{exc}; the generated C's output is in "
                                      f"{gen.out_dir / OUTPUT_FILE}") from None
        ok, detail = oracles.compare(y, ref, net.dtype)
        if ref.kind == "host-consistent":
            detail = "host-consistent" if ok else detail
        explanation = None
        if not ok and ref.qdq and ref.kind == "external" and ref.oracle == oracles.ORT:
            # a QDQ model: onnxruntime's float32 convolutions may round ties otherwise
            from .mcu_runtime.hostrun import split_outputs
            from .qdq_explain import explain
            explanation = explain(source, net, x, split_outputs(gen, y))
            if explanation.explained:
                ok, detail = True, f"{detail}; explained by onnxruntime's float convolutions"
        t.add_row(f"output vs {ref.oracle}", detail)
        for note in ref.notes:
            t.add_row("  oracle note", note)
        if explanation is not None:
            t.add_row("  per-layer check", explanation.reason)
        result.update(oracle=ref.oracle, oracle_kind=ref.kind, oracle_notes=ref.notes,
                      ok=ok, detail=detail, verdict=detail)
        if explanation is not None:
            result["qdq_explanation"] = explanation.as_dict()
        if ref.kind == "external" and ref.oracle in (oracles.ORT, oracles.ONNX_REF):
            # msfopt's re-export of its IR: an extra check only (an importer mistake is
            # invisible to it)
            try:
                rx = oracles.reexport_reference(net, [x])
                ok2, detail2 = oracles.compare(y, rx.y, net.dtype)
            except OracleError as exc:
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
        except OracleCrash as exc:
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
            per = [prof.cycle_model(gen.rq).cycles(net, s) for s in gen.schedules]
            est = sum(per)
            t.add_row("predicted instructions" + ("" if prof.calibrated else " (uncalibrated)"),
                      f"{est:,}" + (f" ({(est - r.instructions) / r.instructions:+.1%})"
                                    if r.instructions else ""))
            result["block_predicted"] = per
            if r.block_instructions:
                errs = sorted(abs(p - m) / m for p, m in zip(per, r.block_instructions) if m)
                t.add_row("blocks measured", f"{len(r.block_instructions)} blocks, median "
                          f"|predicted - measured| {errs[len(errs) // 2]:.1%}" if errs else "-")
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
