"""Reference interpreters in a child process: onnxruntime, ``onnx.reference``, tflite-micro and
LiteRT (``BUILTIN_REF``) run a model file on given inputs in ``python -m msfopt.oracle_engines``.

tflite-micro aborts the whole process (SIGABRT in SOFTMAX Prepare) on an int8 softmax with a tiny
input scale; in a child that becomes :class:`OracleCrash` (a :class:`~msfopt.errors.BuildError`,
exit 6) with the message "reference interpreter <name> crashed on this model (<signal>...)"
instead of taking ``msfopt run`` down.  Which engine serves a model, and how its I/O maps to the
IR, is :mod:`msfopt.oracles`' job.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import BuildError

__all__ = ["ENGINES", "DEFAULT_TIMEOUT", "OracleError", "OracleCrash", "OracleUnavailable",
           "run_engine", "kept_workers"]

#: engine name (worker) -> the interpreter's name in messages
ENGINES = {"onnxruntime": "onnxruntime", "onnx.reference": "onnx.reference",
           "tflite-micro": "tflite-micro", "litert": "LiteRT (BUILTIN_REF)"}

DEFAULT_TIMEOUT = 900.0


class OracleError(BuildError):
    """The reference could not be computed (exit 6)."""


class OracleCrash(OracleError):
    """The reference interpreter's process died (signal / abort)."""


class OracleUnavailable(OracleError):
    """The interpreter is not installed or cannot run this model (raised a Python error)."""


# ------------------------------------------------------------------------------------------------
# the child process
# ------------------------------------------------------------------------------------------------

def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def run_engine(engine: str, model_path, feeds: Sequence[Sequence[np.ndarray]],
               timeout: float = DEFAULT_TIMEOUT) -> list[list[np.ndarray]]:
    """Run ``engine`` (a key of :data:`ENGINES`) on ``model_path`` once per feed (one array per
    model input, in the model's own layout/dtype) in a child process; returns, per feed, every
    model output. Raises :class:`OracleCrash` when the child dies of a signal,
    :class:`OracleUnavailable` when the interpreter raised an error.  Inside
    :func:`kept_workers` the child is a long-lived worker serving every call (no interpreter
    start-up per call); otherwise a fresh child runs this one request."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}")
    name = ENGINES[engine]
    with tempfile.TemporaryDirectory(prefix="msfopt-oracle-") as td:
        fin, fout = Path(td) / "in.npz", Path(td) / "out.npz"
        arrays = {f"x{k}_{j}": np.ascontiguousarray(a) for k, feed in enumerate(feeds)
                  for j, a in enumerate(feed)}
        np.savez(fin, **arrays)
        meta = {"engine": engine, "model": str(model_path), "n": len(feeds),
                "inputs": [len(f) for f in feeds]}
        (Path(td) / "req.json").write_text(json.dumps(meta))
        if _KEPT:
            rc, stderr = _kept_worker(engine).request(td, timeout, name)
        else:
            env = dict(os.environ)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            try:
                p = subprocess.run([sys.executable, "-m", "msfopt.oracle_engines", td],
                                   capture_output=True, text=True, timeout=timeout, env=env)
            except subprocess.TimeoutExpired:
                raise OracleError(f"reference interpreter {name} timed out after "
                                  f"{timeout:.0f} s on this model") from None
            rc, stderr = p.returncode, p.stderr
        _raise_for(name, rc, stderr, Path(td))
        with np.load(fout) as z:
            n_out = json.loads(str(z["meta"]))
            return [[np.array(z[f"y{k}_{j}"]) for j in range(n_out[k])] for k in range(len(feeds))]


def _raise_for(name: str, rc: int, stderr: str, d: Path) -> None:
    """The error of a finished request (exit status ``rc``, the child's stderr), if any."""
    tail = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    if rc < 0 or rc in (134, 139):
        sig = rc if rc < 0 else -(rc - 128)
        last = next((ln for ln in reversed(tail) if "Traceback" not in ln), "")
        raise OracleCrash(f"reference interpreter {name} crashed on this model "
                          f"({_signal_name(sig)}" + (f": {last[:200]}" if last else "") + ")")
    if (d / "missing.txt").is_file():
        raise OracleUnavailable(f"reference interpreter {name} is not installed "
                                f"(pip install -e '.[test]'): "
                                f"{(d / 'missing.txt').read_text().strip()[:200]}")
    if rc != 0 or not (d / "out.npz").is_file():
        err = d / "error.txt"
        msg = err.read_text().strip() if err.is_file() else (tail[-1] if tail else f"exit {rc}")
        raise OracleUnavailable(f"reference interpreter {name} cannot run this model: "
                                f"{' '.join(msg.split())[:300]}")


# ------------------------------------------------------------------------------------------------
# long-lived workers (tests running many small models)
# ------------------------------------------------------------------------------------------------

_KEPT: list[int] = []                 # nesting depth of kept_workers()
_WORKERS: dict[str, "_Worker"] = {}


@contextlib.contextmanager
def kept_workers():
    """Within this context every :func:`run_engine` call of an engine goes to one long-lived
    child per engine (started on first use, restarted after a crash, stopped on exit): the
    same requests, the same isolation from the caller, without a Python + interpreter start-up
    (~0.4 s) per call.  Used by the random-graph tests, which run hundreds of tiny models."""
    _KEPT.append(1)
    try:
        yield
    finally:
        _KEPT.pop()
        if not _KEPT:
            for w in list(_WORKERS.values()):
                w.close()
            _WORKERS.clear()


def _kept_worker(engine: str) -> "_Worker":
    w = _WORKERS.get(engine)
    if w is None or w.proc.poll() is not None:
        if w is not None:
            w.close()
        w = _WORKERS[engine] = _Worker()
    return w


class _Worker:
    """One ``python -m msfopt.oracle_engines --serve`` child: reads request directories on its
    stdin, answers each with its exit status on a private pipe (the engines' own prints go to
    stderr, a file read back after each request)."""

    def __init__(self):
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "msfopt.oracle_engines", "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)

    def request(self, td: str, timeout: float, name: str) -> tuple[int, str]:
        pos = self.err.seek(0, os.SEEK_END)
        try:
            self.proc.stdin.write(td.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise OracleError(f"reference interpreter {name} timed out after {timeout:.0f} s "
                              f"on this model")
        line = self.proc.stdout.readline()
        self.err.seek(pos)
        stderr = self.err.read().decode(errors="replace")
        if line.strip():
            return int(line), stderr
        rc = self.proc.wait()            # the child died on this request (e.g. SIGABRT)
        return (rc if rc != 0 else 1), stderr

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def _serve() -> int:
    """The kept worker's loop: one request directory per stdin line, its exit status (as
    :func:`_worker` returns it) on a line of the original stdout, which is kept private (fd 1
    becomes stderr so an engine's prints cannot corrupt the answers)."""
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        if line.strip():
            answer.write(f"{_worker(line.strip())}\n")
            answer.flush()
    return 0


def _worker(td: str) -> int:
    d = Path(td)
    req = json.loads((d / "req.json").read_text())
    with np.load(d / "in.npz") as z:
        feeds = [[np.array(z[f"x{k}_{j}"]) for j in range(req["inputs"][k])]
                 for k in range(req["n"])]
    try:
        outs = _ENGINE_FUNCS[req["engine"]](req["model"], feeds)
    except ImportError as exc:
        (d / "missing.txt").write_text(str(exc))
        return 3
    except Exception as exc:  # noqa: BLE001 - reported to the parent as "cannot run"
        (d / "error.txt").write_text(f"{type(exc).__name__}: {exc}")
        return 3
    arrays = {f"y{k}_{j}": np.asarray(a) for k, ys in enumerate(outs) for j, a in enumerate(ys)}
    np.savez(d / "out.npz", meta=np.array(json.dumps([len(ys) for ys in outs])), **arrays)
    return 0


def _eng_onnxruntime(path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return [sess.run(None, dict(zip(names, feed))) for feed in feeds]


def _eng_onnx_reference(path, feeds):
    import onnx
    from onnx.reference import ReferenceEvaluator
    model = onnx.load(str(path))
    try:
        ev = ReferenceEvaluator(model)
    except RuntimeError as exc:  # e.g. no DequantizeLinear-13 kernel: same semantics at opset 21
        if "No implementation" not in str(exc):
            raise
        from onnx import version_converter
        ev = ReferenceEvaluator(version_converter.convert_version(model, 21))
    init = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in init]
    return [[np.asarray(y) for y in ev.run(None, dict(zip(names, feed)))] for feed in feeds]


def _eng_tflm(path, feeds):
    from .tflm_ref import run_tflm
    return [run_tflm(path, list(feed)) for feed in feeds]


def _eng_litert(path, feeds):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    out = []
    for feed in feeds:  # a fresh interpreter per input, like run_tflm
        it = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        for det, x in zip(it.get_input_details(), feed):
            it.set_tensor(det["index"], np.ascontiguousarray(
                np.asarray(x).reshape(det["shape"]).astype(det["dtype"])))
        it.invoke()
        out.append([np.array(it.get_tensor(det["index"]), copy=True)
                    for det in it.get_output_details()])
    return out


_ENGINE_FUNCS = {"onnxruntime": _eng_onnxruntime, "onnx.reference": _eng_onnx_reference,
                 "tflite-micro": _eng_tflm, "litert": _eng_litert}


if __name__ == "__main__":  # the child process of run_engine
    sys.exit(_serve() if sys.argv[1] == "--serve" else _worker(sys.argv[1]))
