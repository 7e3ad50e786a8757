"""Model importers: ``onnx_import.load_onnx`` and ``tflite_import.load_tflite`` turn a model file
into an :class:`msfopt.ir.Network`.

``UnsupportedModelError`` is raised for every model an importer cannot represent in the IR; its
message is a single line naming every offending node.  The importers are imported on first use
(:mod:`msfopt.models`), so that ``import msfopt.importers`` pulls in neither onnx nor tflite.
"""


class UnsupportedModelError(ValueError):
    """The model cannot be imported (unsupported op, dynamic shape, topology, unreadable file)."""


__all__ = ["UnsupportedModelError"]
