"""Reference execution and memory figures from TensorFlow Lite for Microcontrollers.

Thin wrapper around the PyPI ``tflite-micro`` Python interpreter (the C++ TFLM kernels and its
``RecordingMicroAllocator``), used as the bit-exact int8 oracle and as the memory baseline:

* :func:`run_tflm` runs a ``.tflite`` model on the given inputs and returns its outputs.
* :func:`tflm_arena_bytes` is the arena total TFLM needs for the model (``print_allocations()``),
  :func:`tflm_allocations` the whole report (total / head / tail and the per-kind lines).

``print_allocations()`` writes from C++ straight to the process' file descriptors, so its output
is captured at the file-descriptor level (both stdout and stderr), not through ``sys.stdout``.

These functions run the interpreter IN the calling process. tflite-micro aborts the whole process
(SIGABRT in SOFTMAX Prepare) on an int8 softmax with a tiny input scale, so references for
``msfopt run``, the MCU driver and the tests go through :mod:`msfopt.oracles`, which calls
:func:`run_tflm` in a child process and reports such a crash as an error (exit 6).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

#: arena handed to the interpreter; the figures reported are what it actually uses
DEFAULT_ARENA = 2 * 1024 * 1024

_CAPTURE_LOCK = threading.Lock()


def _runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("msfopt.tflm_ref needs the 'tflite-micro' package "
                          "(pip install tflite-micro)") from e
    return runtime


def _interpreter(path, arena_size: int):
    runtime = _runtime()
    path = str(Path(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return runtime.Interpreter.from_file(path, arena_size=int(arena_size))


def _capture_fds(fn):
    """Run ``fn()`` with fds 1 and 2 redirected to a temporary file; return (result, text)."""
    with _CAPTURE_LOCK, tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            try:
                result = fn()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                except Exception:  # pragma: no cover
                    pass
                try:  # flush the C stdio buffers too (printf from C++ is buffered on a file)
                    import ctypes
                    ctypes.CDLL(None).fflush(None)
                except Exception:  # pragma: no cover
                    pass
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
    return result, text


_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_KIND = re.compile(r"'([^']+)' used (\d+) bytes")


def tflm_allocations(path, arena_size: int = DEFAULT_ARENA) -> dict:
    """Parse TFLM's ``print_allocations()`` report for a model.

    Returns ``{"total": int, "head": int, "tail": int, "kinds": {name: bytes}, "text": str}``.
    ``head`` is the non-persistent part (activations and scratch buffers), ``tail`` the
    persistent part (tensor structs, quantisation data, kernel buffers)."""
    interp = _interpreter(path, arena_size)
    _, text = _capture_fds(interp.print_allocations)
    out: dict = {"kinds": {}, "text": text}
    for m in _LINE.finditer(text):
        out[m.group(1)] = int(m.group(2))
    for m in _KIND.finditer(text):
        out["kinds"][m.group(1)] = int(m.group(2))
    if "total" not in out:
        raise RuntimeError(f"could not read TFLM's allocation report for {path}: {text[:200]!r}")
    return out


def tflm_arena_bytes(path, arena_size: int = DEFAULT_ARENA) -> int:
    """Total arena bytes TFLM allocates for the model (``Arena allocation total``)."""
    return tflm_allocations(path, arena_size)["total"]


def _io_counts(path) -> tuple[int, int]:
    """Number of inputs and outputs of the model's main subgraph (read with the tflite package,
    so that the interpreter is not probed out of range: it prints errors from C++ then)."""
    import tflite
    buf = Path(path).read_bytes()
    g = tflite.Model.GetRootAs(buf, 0).Subgraphs(0)
    return g.InputsLength(), g.OutputsLength()


def run_tflm(path, inputs: Sequence[np.ndarray], arena_size: int = DEFAULT_ARENA) -> list[np.ndarray]:
    """Run the model once on ``inputs`` (one array per model input, with or without the batch
    dimension; values are cast to the input's dtype, normally int8) and return every output as a
    fresh numpy array in the model's output dtype and shape (normally int8).

    A new interpreter is built per call, so results do not depend on earlier calls."""
    interp = _interpreter(path, arena_size)
    n_in, n_out = _io_counts(path)
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if len(inputs) != n_in:
        raise ValueError(f"the model has {n_in} input(s), {len(inputs)} given")
    for idx, x in enumerate(inputs):
        det = interp.get_input_details(idx)
        shape = tuple(int(d) for d in det["shape"])
        dtype = np.dtype(det["dtype"])
        a = np.asarray(x)
        if a.size != int(np.prod(shape)):
            raise ValueError(f"input {idx}: {a.size} values given, model expects shape {shape}")
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            if a.size and (a.min() < info.min or a.max() > info.max):
                raise ValueError(f"input {idx}: values outside the {dtype} range")
        interp.set_input(np.ascontiguousarray(a.reshape(shape).astype(dtype)), idx)
    interp.invoke()
    return [np.array(interp.get_output(i), copy=True) for i in range(n_out)]
