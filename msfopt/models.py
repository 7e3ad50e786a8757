"""Resolve a MODEL argument: a zoo name, an .onnx file or a .tflite file."""
from __future__ import annotations

from pathlib import Path

from . import zoo
from .errors import InputError
from .ir import IRError, Network


def load_model(spec: "str | Path | Network", dtype: str = "int8") -> Network:
    if isinstance(spec, Network):
        return spec
    text = str(spec)
    key = zoo.resolve_name(text)
    if key is not None and not Path(text).is_file():
        return zoo.load(key, dtype=dtype)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".tflite"):
        if not path.is_file():
            raise InputError(f"model file not found: {text}")
        try:
            if suffix == ".onnx":
                from .importers.onnx_import import load_onnx
                net = load_onnx(path)
            else:
                from .importers.tflite_import import load_tflite
                net = load_tflite(path)
            return net.validate()
        except InputError:
            raise
        except (ValueError, IRError) as exc:  # UnsupportedModelError is a ValueError
            raise InputError(" ".join(str(exc).split())) from None
    raise InputError(f"unknown model {text!r}: not a zoo model ({', '.join(zoo.names())}) "
                     f"nor an .onnx/.tflite file")


def network_with_weights(spec: "str | Path | Network", dtype: str = "int8", seed: int = 0) -> Network:
    """A network with weights and quantisation, ready for code generation: zoo models get
    deterministic random weights (``seed``); imported models keep theirs."""
    if isinstance(spec, Network):
        net = spec
    else:
        net = load_model(spec, dtype=dtype)
    needs = [l for l in net.layers if l.op in ("conv", "dw", "dense") and l.weight is None]
    if needs or (net.dtype == "int8" and net.quant_of(0) is None):
        from .weights import init_weights
        net = init_weights(net, seed=seed, dtype=dtype)
    return net


def reference_output(net: Network, x, source: str | None = None):
    """The oracle's output for one NHWC input (see :mod:`msfopt.oracles`: tflite-micro for
    TFLite models, onnxruntime on the original ``.onnx`` file, onnxruntime on msfopt's re-export
    for zoo / in-memory models), run in a child process."""
    from .oracles import reference
    return reference(net, [x], source).y
