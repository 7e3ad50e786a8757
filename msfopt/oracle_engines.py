"""Reference interpreters in a child process: onnxruntime, ``onnx.reference``, tflite-micro and
LiteRT (``BUILTIN_REF``) run a model file on given inputs in ``python -m msfopt.oracle_engines``.

tflite-micro aborts the whole process (SIGABRT in SOFTMAX Prepare) on an int8 softmax with a tiny
input scale; in a child that becomes :class:`OracleCrash` (a :class:`~msfopt.errors.BuildError`,
exit 6) with the message "reference interpreter <name> crashed on this model (<signal>...)"
instead of taking ``msfopt run`` down.  Which engine serves a model, and how its I/O maps to the
IR, is :mod:`msfopt.oracles`' job.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import BuildError

__all__ = ["ENGINES", "DEFAULT_TIMEOUT", "OracleError", "OracleCrash", "OracleUnavailable",
           "run_engine"]

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
    :class:`OracleUnavailable` when the interpreter raised an error."""
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
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            p = subprocess.run([sys.executable, "-m", "msfopt.oracle_engines", td], capture_output=True,
                               text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise OracleError(f"reference interpreter {name} timed out after {timeout:.0f} s "
                              f"on this model") from None
        tail = [ln.strip() for ln in (p.stderr or "").splitlines() if ln.strip()]
        if p.returncode < 0 or p.returncode in (134, 139):
            rc = p.returncode if p.returncode < 0 else -(p.returncode - 128)
            last = next((ln for ln in reversed(tail) if "Traceback" not in ln), "")
            raise OracleCrash(f"reference interpreter {name} crashed on this model "
                              f"({_signal_name(rc)}" + (f": {last[:200]}" if last else "") + ")")
        if (Path(td) / "missing.txt").is_file():
            raise OracleUnavailable(f"reference interpreter {name} is not installed "
                                    f"(pip install -e '.[test]'): "
                                    f"{(Path(td) / 'missing.txt').read_text().strip()[:200]}")
        if p.returncode != 0 or not fout.is_file():
            err = Path(td) / "error.txt"
            msg = err.read_text().strip() if err.is_file() else (tail[-1] if tail else
                                                                  f"exit {p.returncode}")
            raise OracleUnavailable(f"reference interpreter {name} cannot run this model: "
                                    f"{' '.join(msg.split())[:300]}")
        with np.load(fout) as z:
            n_out = json.loads(str(z["meta"]))
            return [[np.array(z[f"y{k}_{j}"]) for j in range(n_out[k])] for k in range(len(feeds))]


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
    sys.exit(_worker(sys.argv[1]))
