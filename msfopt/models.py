"""Resolve a MODEL argument: a zoo name, an .onnx file or a .tflite file."""
from __future__ import annotations

from pathlib import Path

from . import zoo
from .errors import InputError
from .ir import IRError, Network


def load_model(spec: "str | Path | Network", dtype: str = "int8",
               input_shapes: dict | None = None) -> Network:
    """``spec`` as a network.  ``input_shapes`` ({input name or None: dims}, from
    :func:`msfopt.units.parse_input_shapes`) fixes a model file's input dims: an ONNX model's
    dynamic dims (NCHW); a TFLite model's shape is fixed and may only be restated (NHWC)."""
    if isinstance(spec, Network):
        if input_shapes:
            raise InputError("--input-shape applies to a model file, not an in-memory network")
        return spec
    text = str(spec)
    key = zoo.resolve_name(text)
    if key is not None and not Path(text).is_file():
        if input_shapes:
            raise InputError(f"--input-shape applies to .onnx / .tflite files; {key} is a "
                             f"built-in model with a fixed input")
        return zoo.load(key, dtype=dtype)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".tflite"):
        if not path.is_file():
            raise InputError(f"model file not found: {text}")
        try:
            if suffix == ".onnx":
                from .importers.onnx_import import load_onnx
                net = load_onnx(path, input_shapes=input_shapes)
            else:
                from .importers.tflite_import import load_tflite
                net = load_tflite(path)
                _check_fixed_input(net, input_shapes)
            return net.validate()
        except InputError:
            raise
        except (ValueError, IRError) as exc:  # UnsupportedModelError is a ValueError
            raise InputError(" ".join(str(exc).split())) from None
    raise InputError(f"unknown model {text!r}: not a zoo model ({', '.join(zoo.names())}) "
                     f"nor an .onnx/.tflite file")


def _check_fixed_input(net: Network, input_shapes: dict | None) -> None:
    """A TFLite model's input shape is fixed: --input-shape may only restate it (NHWC)."""
    if not input_shapes:
        return
    have = (1, *net.input_shape)
    for key, dims in input_shapes.items():
        if tuple(dims) != have:
            raise InputError(f"--input-shape {'x'.join(map(str, dims))}: this TFLite model's "
                             f"input is fixed at {'x'.join(map(str, have))} (NHWC)")


def network_with_weights(spec: "str | Path | Network", dtype: str = "int8", seed: int = 0,
                         input_shapes: dict | None = None) -> Network:
    """A network with weights and quantisation, ready for code generation: zoo models get
    deterministic random weights (``seed``); imported models keep theirs."""
    if isinstance(spec, Network):
        net = spec
    else:
        net = load_model(spec, dtype=dtype, input_shapes=input_shapes)
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
