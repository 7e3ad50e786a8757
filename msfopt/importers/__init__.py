"""Model importers.

``UnsupportedModelError`` is raised for every model an importer cannot represent in the IR; its
message is a single line naming every offending node.  ``load_onnx`` is imported lazily so that
``import msfopt.importers`` does not pull in onnx.
"""


class UnsupportedModelError(ValueError):
    """The model cannot be imported (unsupported op, dynamic shape, topology, unreadable file)."""


def __getattr__(name):  # lazy re-export: msfopt.importers.load_onnx
    if name == "load_onnx":
        from .onnx_import import load_onnx
        return load_onnx
    raise AttributeError(name)


__all__ = ["UnsupportedModelError", "load_onnx"]
