"""Build a generated model for the host with gcc and run it on inputs (tests, ``msfopt run
--target host``)."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from msfopt.errors import BuildError

from .codegen import Generated, RUNTIME_SOURCES

TEMPLATES = Path(__file__).resolve().parent / "templates"
STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-Wvla"]


def build_host(gen: Generated, sanitize: bool = False, guard: int = 0, opt: str = "-O2",
               exe: Path | None = None) -> Path:
    out = gen.out_dir
    exe = exe or out / ("msf_host_san" if sanitize else "msf_host")
    flags = list(STRICT) + [opt, "-g"]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer"]
    if guard:
        flags.append(f"-DMSF_ARENA_GUARD_BYTES={guard}")
    srcs = [out / "msf_model.c", *(out / s for s in RUNTIME_SOURCES), TEMPLATES / "host_main.c"]
    cmd = ["gcc", *flags, "-I", str(out), *map(str, srcs), "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        first = next((l for l in p.stderr.splitlines() if "error" in l), p.stderr.strip()[:300])
        raise BuildError(f"host build failed: {first}")
    return exe


def run_host(gen: Generated, exe: Path, x: np.ndarray, timeout: float = 300) -> np.ndarray:
    """Run the host executable on one NHWC input; returns the NHWC output."""
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
        return np.frombuffer(fout.read_bytes(), dtype=dt).reshape(gen.output_shape)
