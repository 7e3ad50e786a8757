"""Parsing of RAM sizes and budgets given on the command line."""
from __future__ import annotations

import math
import re

from .errors import InputError

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "ki": 1024,
    "kb": 1000,
    "m": 1024 ** 2, "mib": 1024 ** 2, "mi": 1024 ** 2,
    "mb": 1000 ** 2,
}


#: largest RAM size / budget accepted: the solvers work in signed 64-bit integers
INT64_MAX = 2 ** 63 - 1


def _check_int64(value: int, what: str, text) -> int:
    if value > INT64_MAX:
        raise InputError(f"{what} {text!r} is too large (at most {INT64_MAX:,})")
    return value


def parse_ram(text: str | int) -> int:
    """'64k', '64K', '64KiB' -> 65536; '64kB' -> 64000; '1M' -> 1048576; plain integer = bytes.
    Lower-case 'kb' is taken as kB (1000): only 'k'/'K'/'KiB' mean 1024.  Exact integer
    arithmetic (no float): '0.5k' = 512, '1.5' is refused; at most 2**63 - 1 bytes."""
    if isinstance(text, bool):
        raise InputError(f"RAM size must be an integer or a size string, got {text!r}")
    if isinstance(text, int):
        if text <= 0:
            raise InputError(f"RAM size must be positive, got {text}")
        return _check_int64(text, "RAM size", text)
    s = str(text).strip()
    m = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?\s*([A-Za-z]*)", s, flags=re.ASCII)
    if not m:
        raise InputError(f"cannot parse RAM size {text!r} (examples: 65536, 64k, 64KiB, 64kB)")
    whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
    if len(s) > 64:
        raise InputError(f"RAM size {text[:40]!r}... is too large (at most {INT64_MAX:,})")
    if unit in ("kB", "KB", "kb"):
        mult = 1000
    elif unit in ("MB", "mb"):
        mult = 1000 ** 2
    else:
        key = unit.lower()
        if key not in _UNITS:
            raise InputError(f"unknown unit {unit!r} in RAM size {text!r} (use k, KiB, kB, M, MiB, MB)")
        mult = _UNITS[key]
    scale = 10 ** len(frac)
    num = int(whole + frac) * mult          # value * scale, exactly
    if num % scale:
        raise InputError(f"RAM size {text!r} is not a whole number of bytes")
    value = num // scale
    if value <= 0:
        raise InputError(f"RAM size must be positive, got {text!r}")
    return _check_int64(value, "RAM size", text)


def parse_overhead(text: str | float) -> float:
    """MAC overhead factor F >= 1, or 'inf'."""
    try:
        f = float(text)
    except (TypeError, ValueError):
        raise InputError(f"cannot parse overhead factor {text!r} (a number >= 1, or inf)")
    if math.isnan(f) or f < 1.0:
        raise InputError(f"overhead factor must be >= 1 (or inf), got {text!r}")
    return f


def parse_positive_int(text: str | int, what: str) -> int:
    """A positive integer (``_`` and ``,`` digit separators allowed), at most 2**63 - 1."""
    if isinstance(text, bool):
        raise InputError(f"cannot parse {what} {text!r} (a positive integer)")
    s = str(text).strip().replace("_", "").replace(",", "")
    if not re.fullmatch(r"[+]?[0-9]{1,64}", s, flags=re.ASCII):
        if re.fullmatch(r"-[0-9]+", s):
            raise InputError(f"{what} must be positive, got {text!r}")
        raise InputError(f"cannot parse {what} {text!r} (a positive integer)")
    v = int(s)
    if v <= 0:
        raise InputError(f"{what} must be positive, got {text!r}")
    return _check_int64(v, what, text)


def parse_time(text: str | float, what: str) -> float:
    """A finite positive number of seconds (nan, inf, 0 and negative values are refused)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise InputError(f"cannot parse {what} {text!r} (a positive number of seconds)") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{what} must be a finite number of seconds > 0, got {text!r}")
    return v


#: largest dimension accepted in --input-shape
MAX_DIM = 1 << 20


def parse_input_shapes(specs) -> dict[str | None, tuple[int, ...]]:
    """``--input-shape`` values -> {input name or None (the only input): dims}.  Each spec is
    ``1x3x48x192`` or ``NAME:1x3x48x192``; dims are positive integers."""
    out: dict[str | None, tuple[int, ...]] = {}
    for spec in specs or ():
        text = str(spec).strip()
        name, _, dims_text = text.rpartition(":")
        dims_s = dims_text.lower().split("x")
        if not dims_text or not all(re.fullmatch(r"[0-9]+", d) for d in dims_s):
            raise InputError(f"--input-shape {text!r}: expected dims like 1x3x48x192 or "
                             f"NAME:1x3x48x192")
        dims = tuple(int(d) for d in dims_s)
        if any(d < 1 or d > MAX_DIM for d in dims):
            raise InputError(f"--input-shape {text!r}: every dim must be 1..{MAX_DIM}")
        key = name or None
        if key in out:
            raise InputError(f"--input-shape given twice for "
                             f"{'input ' + repr(key) if key else 'the input'}")
        out[key] = dims
    if None in out and len(out) > 1:
        raise InputError("--input-shape: name every input (NAME:DIMS) when giving several")
    return out
