"""The directory ``msfopt codegen`` writes: its record ``msfopt_gen.json`` (model, weights seed,
dtype, io, requantisation, shapes) checked on reading, and the reload of its network, plan and
generated C that ``msfopt build`` and ``msfopt run`` start from."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .schedule import IO_MODES

GEN_META = "msfopt_gen.json"

#: largest --seed accepted (numpy seeds are non-negative; kept to 64 bits)
SEED_MAX = 2 ** 63 - 1


#: msfopt_gen.json keys -> check
_META_CHECKS = {
    "model": lambda v: isinstance(v, str) and bool(v.strip()),
    "dtype": lambda v: v in ("int8", "float32"),
    "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= SEED_MAX,
    "io": lambda v: v in IO_MODES,
    "rq": lambda v: v in ("float", "fixed"),
}


def read_meta(out: Path) -> dict:
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
    extra = meta.get("input_shape_args", [])
    if not (isinstance(extra, list) and all(isinstance(v, str) for v in extra)):
        raise InputError(f"{meta_p} has an invalid input_shape_args: regenerate with "
                         f"'msfopt codegen'")
    return meta


def meta_model(meta: dict, out: Path) -> str:
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


def load_generated(d: str):
    from .models import network_with_weights
    from .plan import Plan
    from .units import parse_input_shapes
    from .mcu_runtime.codegen import generate
    from .mcu_runtime.ctext import CodegenError
    out = Path(d)
    meta = read_meta(out)
    meta["model"] = meta_model(meta, out)
    net = network_with_weights(meta["model"], dtype=meta["dtype"], seed=meta["seed"],
                               input_shapes=parse_input_shapes(meta.get("input_shape_args", [])))
    plan = Plan.load(out / "plan.json")
    if plan.model != net.name:
        raise InputError(f"{out / 'plan.json'} is for {plan.model}, not {net.name}")
    net = plan.network(net)
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
