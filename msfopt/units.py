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


def parse_ram(text: str | int) -> int:
    """'64k', '64K', '64KiB' -> 65536; '64kB' -> 64000; '1M' -> 1048576; plain integer = bytes.
    Lower-case 'kb' is taken as kB (1000): only 'k'/'K'/'KiB' mean 1024."""
    if isinstance(text, int):
        if text <= 0:
            raise InputError(f"RAM size must be positive, got {text}")
        return text
    s = str(text).strip()
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", s)
    if not m:
        raise InputError(f"cannot parse RAM size {text!r} (examples: 65536, 64k, 64KiB, 64kB)")
    num, unit = m.group(1), m.group(2)
    if unit in ("kB", "KB", "kb"):
        mult = 1000
    elif unit in ("MB", "mb"):
        mult = 1000 ** 2
    else:
        key = unit.lower()
        if key not in _UNITS:
            raise InputError(f"unknown unit {unit!r} in RAM size {text!r} (use k, KiB, kB, M, MiB, MB)")
        mult = _UNITS[key]
    value = float(num) * mult
    if value != math.floor(value):
        raise InputError(f"RAM size {text!r} is not a whole number of bytes")
    value = int(value)
    if value <= 0:
        raise InputError(f"RAM size must be positive, got {text!r}")
    return value


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
    try:
        v = int(str(text).replace("_", "").replace(",", ""))
    except ValueError:
        raise InputError(f"cannot parse {what} {text!r} (a positive integer)")
    if v <= 0:
        raise InputError(f"{what} must be positive, got {text!r}")
    return v
