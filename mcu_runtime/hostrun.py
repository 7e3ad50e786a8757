"""Build a generated model for the host with gcc and run it on inputs (tests, ``msfopt run
--target host``)."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from msfopt.errors import BuildError

from .codegen import Generated
from .runtime_files import SOURCES as RUNTIME_SOURCES

TEMPLATES = Path(__file__).resolve().parent / "templates"
STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-Wvla"]


def build_host(gen: Generated, sanitize: bool = False, guard: int = 0, opt: str = "-O2",
               exe: Path | None = None, check_bounds: bool | None = None) -> Path:
    """``check_bounds`` builds with -DMSF_CHECK_BOUNDS (every buffer access of the executor
    checked; a failure exits with status 4 and a message); by default on for sanitized builds
    and when the environment sets MSF_CHECK_BOUNDS=1."""
    out = gen.out_dir
    if check_bounds is None:
        check_bounds = sanitize or os.environ.get("MSF_CHECK_BOUNDS") == "1"
    exe = exe or out / ("msf_host_san" if sanitize else "msf_host")
    flags = list(STRICT) + [opt, "-g"]
    if check_bounds:
        flags.append("-DMSF_CHECK_BOUNDS")
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer"]
    if guard:
        flags.append(f"-DMSF_ARENA_GUARD_BYTES={guard}")
    objs = [_cached_object(out / s, flags, out) for s in RUNTIME_SOURCES]
    srcs = [out / "msf_model.c", TEMPLATES / "host_main.c"]
    cmd = ["gcc", *flags, "-I", str(out), *map(str, srcs), *map(str, objs), "-o", str(exe)]
    _gcc(cmd)
    return exe


def _gcc(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        first = next((l for l in p.stderr.splitlines() if "error" in l), p.stderr.strip()[:300])
        raise BuildError(f"host build failed: {first}")


def _cache_dir() -> Path:
    d = os.environ.get("MSFOPT_OBJ_CACHE")
    return Path(d) if d else Path(tempfile.gettempdir()) / f"msfopt-objcache-{os.getuid()}"


_GCC_ID: list[str] = []


#: (flags, source and local-header bytes) -> the preprocessed unit's digest, per process
_PRE_MEMO: dict[str, str] = {}
_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*(["<])([^">]*)[">]', re.M)


def _text_key(src: Path, inc: Path, h) -> str | None:
    """A digest of every byte the preprocessor can read from this build's own files: the source
    and each quoted header it includes, transitively, from its folder or ``inc`` (system
    headers do not change while a process runs).  Equal keys give an equal preprocessed unit,
    so :func:`_cached_object` skips ``gcc -E`` (one process per runtime source and build).
    None (no memo) when an include is computed or not found."""
    todo, seen = [src], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        try:
            data = f.read_bytes()
        except OSError:
            return None
        h.update(str(f.name).encode() + b"\0" + data + b"\0")
        if re.search(rb"^[ \t]*#[ \t]*include[ \t]*[^\"< \t]", data, re.M):
            return None                          # #include MACRO: not followed
        for kind, name in _INCLUDE.findall(data):
            if kind == b"<":
                continue
            cands = [src.parent / name.decode(), inc / name.decode()]
            hit = next((c for c in cands if c.is_file()), None)
            if hit is None:
                return None
            todo.append(hit)
    return h.hexdigest()


def _cached_object(src: Path, flags: list[str], inc: Path) -> Path:
    """The object file of one runtime source, compiled once per distinct (compiler, flags,
    preprocessed text) and reused, as ccache does: a generated directory's runtime sources are
    fixed copies, so across plans only ``msf_model.c`` and the executor's ``msf_config.h``
    limits differ.  The key is the preprocessed translation unit (no line markers: the runtime
    uses no ``__FILE__``/``__LINE__``), so it covers every byte the compiler reads."""
    import hashlib
    if not _GCC_ID:
        v = subprocess.run(["gcc", "--version"], capture_output=True, text=True)
        _GCC_ID.append(v.stdout.splitlines()[0] if v.stdout else "gcc")
    h = hashlib.sha256()
    for part in (_GCC_ID[0], *flags):
        h.update(part.encode() + b"\0")
    text_key = _text_key(src, inc, h.copy())
    digest = _PRE_MEMO.get(text_key) if text_key else None
    if digest is None:
        pre = subprocess.run(["gcc", *flags, "-I", str(inc), "-E", "-P", str(src)],
                             capture_output=True)
        if pre.returncode != 0:
            _gcc(["gcc", *flags, "-I", str(inc), "-c", str(src), "-o", os.devnull])  # the error
        h.update(pre.stdout)
        digest = h.hexdigest()[:32]
        if text_key:
            _PRE_MEMO[text_key] = digest
    d = _cache_dir()
    obj = d / f"{src.stem}-{digest}.o"
    if not obj.exists():
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=d)
        os.close(fd)
        try:
            _gcc(["gcc", *flags, "-I", str(inc), "-c", str(src), "-o", tmp])
            os.replace(tmp, obj)       # atomic: concurrent builds never see half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return obj


def run_host(gen: Generated, exe: Path, x: np.ndarray, timeout: float = 300) -> np.ndarray:
    """Run the host executable on one NHWC input; returns the NHWC output (several outputs: all
    of them back to back, flat, as the caller's buffer holds them; see :func:`split_outputs`)."""
    dt = np.float32 if gen.dtype == "float32" else np.int8
    x = np.ascontiguousarray(np.asarray(x, dtype=dt).reshape(gen.input_shape))
    with tempfile.TemporaryDirectory() as td:
        fin, fout = Path(td) / "in.bin", Path(td) / "out.bin"
        fin.write_bytes(x.tobytes())
        p = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise BuildError(f"host run failed (exit {p.returncode}): "
                             f"{(p.stderr.strip().splitlines() or [''])[-1][:300]}")
        y = np.frombuffer(fout.read_bytes(), dtype=dt)
        shapes = gen.output_shapes or (gen.output_shape,)
        return y.reshape(shapes[0]) if len(shapes) == 1 else y.copy()


def split_outputs(gen: Generated, y: np.ndarray) -> list[np.ndarray]:
    """The graph outputs (NHWC, the model's order) of a run's output buffer: several outputs lie
    back to back in it (``run_host`` returns them flat, like the oracles' references)."""
    shapes = gen.output_shapes or (gen.output_shape,)
    flat, parts, pos = np.asarray(y).reshape(-1), [], 0
    for shp in shapes:
        k = int(np.prod(shp))
        parts.append(flat[pos:pos + k].reshape(shp))
        pos += k
    if pos != flat.size:
        raise ValueError(f"output buffer has {flat.size} elements, the outputs {pos}")
    return parts
