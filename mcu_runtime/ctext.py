"""C source text from values: model-file text made safe for comments, literals, constant arrays,
C99 designated initialisers, and the ``templates/*.tmpl`` files filled in (``@{name}``
placeholders, :class:`string.Template`).  The code generator builds every line of the generated
sources with these."""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np

TEMPLATES = Path(__file__).resolve().parent / "templates"


class CodegenError(ValueError):
    """A plan, model or value that cannot be written as C."""


# -- escaping: model text in comments -----------------------------------------------------------
#
# Nothing read from a model file (graph / node names, the file's path) reaches the generated text
# except through c_comment_text(): comment text is percent-escaped to a safe alphabet (no '*',
# '\\', quotes, '?', '$', backquotes, control or non-ASCII characters; '/' alone is harmless
# without '*'), so it can neither close the comment, nor open a nested one (-Wcomment), nor splice
# lines, nor form trigraphs.  No C identifier, #define or build-file line is made from model
# text: they are fixed names and numbers.
# Template placeholders are filled once (substituted text is not scanned again), so an '@' of
# escaped model text stays inert.

_COMMENT_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                          " _-.,:;+=@()[]{}<>|~!#&^/")
_COMMENT_MAX = 160


def c_comment_text(text, limit: int = _COMMENT_MAX) -> str:
    """``text`` made safe inside a C block comment: one line, characters outside a small safe
    alphabet percent-encoded (UTF-8 bytes: ``%2A`` for '*', ``%25`` for '%'), at most ``limit``
    characters (longer text is cut, ending in ``...``)."""
    out = []
    for ch in str(text):
        if ch in _COMMENT_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    s = "".join(out)
    if len(s) > limit:
        s = s[:max(0, limit - 3)] + "..."
    return s


#: element type of each C type a constant array may be packed from
_PACKABLE = {"float": np.float32, "int8_t": np.int8, "uint8_t": np.uint8, "int16_t": np.int16,
             "int32_t": np.int32}
#: constant arrays of at least this many elements are written packed (:func:`c_packed_array`)
PACK_MIN_ELEMS = 64


def c_array(ctype: str, name: str, values, per_line: int = 24, const: bool = True,
            section: str | None = None) -> str:
    """A ``static [const] ctype name[N]`` array of ``values`` (one 0 when empty); a large
    constant array of a packable type is written by :func:`c_packed_array` (same C name)."""
    vals = np.asarray(values).ravel()
    if const and ctype in _PACKABLE and vals.size >= PACK_MIN_ELEMS:
        return c_packed_array(ctype, name, vals)
    if ctype == "float":
        items = [c_float(v) for v in vals]
    else:
        items = [str(int(v)) for v in vals]
    if not items:
        items = ["0"]
    lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
    q = "static const " if const else "static "
    return f"{q}{ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def c_packed_array(ctype: str, name: str, values, per_line: int = 8) -> str:
    """A constant array of ``values`` as 64-bit little-endian words of their bytes: the union
    ``name_u`` of ``uint64_t u[K]`` (initialised) and ``ctype v[N]``, and ``#define name
    (name_u.v)`` so that the rest of the generated code uses ``name`` as an ordinary array.

    Why: a compiler's cost is per initialiser element; eight int8 weights (two floats) per
    element make the weight arrays of a large model compile several times faster (measured:
    1 M floats 4.5 s as float literals, 2.1 s as words).  The bytes are exactly the values'
    (floats bit for bit, no decimal round trip).  Every supported target is little-endian; the
    text stops a big-endian build with #error."""
    dt = np.dtype(_PACKABLE[ctype]).newbyteorder("<")
    vals = np.asarray(values).ravel()
    if ctype == "float" and not np.all(np.isfinite(vals.astype(np.float32))):
        raise CodegenError(f"non-finite float constant in {name}")
    raw = vals.astype(dt).tobytes()
    raw += b"\0" * (-len(raw) % 8)
    words = np.frombuffer(raw, dtype="<u8").tolist()
    items = [f"0x{w:x}u" for w in words]
    lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
    return ("#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__\n"
            "#error \"packed constant arrays need a little-endian target\"\n#endif\n"
            f"static const union {{ uint64_t u[{len(items)}]; {ctype} v[{vals.size}]; }} "
            f"{name}_u = {{{{\n    " + ",\n    ".join(lines) + f"\n}}}};\n"
            f"#define {name} ({name}_u.v)\n")


def c_float(v) -> str:
    """The float32 value of ``v`` as a C ``float`` literal (round-trips exactly)."""
    f = np.float32(v)
    if not np.isfinite(f):
        raise CodegenError(f"non-finite float constant {v!r}")
    r = repr(float(f))
    if "e" not in r and "." not in r:
        r += ".0"
    return r + "f"


def c_init(fields: dict, indent: str = "", width: int = 100) -> str:
    """C99 designated initialiser of ``fields`` (field name -> C expression, or a dict for a
    nested struct, which is written on one line ``{.a = 1, .b = 2}``): ``{``, the items wrapped
    before ``width`` columns at ``indent`` + 4 spaces, ``}`` at ``indent``."""
    items = [f".{k} = {c_init(v, width=0) if isinstance(v, dict) else v}"
             for k, v in fields.items()]
    if not width:
        return "{" + ", ".join(items) + "}"
    pad = indent + "    "
    lines, cur = [], pad
    for k, item in enumerate(items):
        piece = item + ("," if k + 1 < len(items) else "")
        if cur != pad and len(cur) + 1 + len(piece) > width:
            lines.append(cur)
            cur = pad + piece
        else:
            cur += ("" if cur == pad else " ") + piece
    return "{\n" + "\n".join(lines + [cur]) + "\n" + indent + "}"


# -- templates -----------------------------------------------------------------------------------

class _CTemplate(string.Template):
    delimiter = "@"  # no '@' in C, make or CMake text: the templates need no escapes


def render(name: str, drop_blank: bool = False, **values) -> str:
    """``templates/name`` with its ``@{...}`` placeholders filled (every one must be given);
    ``drop_blank`` removes empty lines (statement fragments whose optional parts are absent)."""
    text = _CTemplate((TEMPLATES / name).read_text()).substitute(values)
    if drop_blank:
        text = "".join(line + "\n" for line in text.splitlines() if line.strip())
    return text
