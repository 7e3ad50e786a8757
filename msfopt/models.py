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
