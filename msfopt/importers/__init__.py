"""Model importers: ``onnx_import.load_onnx`` and ``tflite_import.load_tflite`` turn a model file
into an :class:`msfopt.ir.Network`.

``UnsupportedModelError`` is raised for every model an importer cannot represent in the IR; its
message is a single line, the per-node problems grouped by op type and reason with their counts
and the first few node names (:func:`grouped`).  The importers are imported on first use
(:mod:`msfopt.models`), so that ``import msfopt.importers`` pulls in neither onnx nor tflite.
"""


class UnsupportedModelError(ValueError):
    """The model cannot be imported (unsupported op, dynamic shape, topology, unreadable file)."""


#: node names shown per group of an error message
SHOWN_NODES = 3


def grouped(problems, shown: int = SHOWN_NODES) -> str:
    """One line for per-node problems, each ``(op type, node name, reason)``: one entry per
    (op type, reason), in order of first occurrence, with its count and the first ``shown`` node
    names, e.g. ``LeakyRelu x14: op not supported ('e1/LeakyRelu', 'e2/LeakyRelu', ... 12 more)``
    (ASCII only: the message must print in any locale)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for op, node, reason in problems:
        groups.setdefault((str(op), " ".join(str(reason).split())), []).append(
            " ".join(str(node).split()))
    parts = []
    for (op, reason), nodes in groups.items():
        names = ", ".join(f"'{n}'" for n in nodes[:shown])
        more = f", ... {len(nodes) - shown} more" if len(nodes) > shown else ""
        parts.append(f"{op} x{len(nodes)}: {reason} ({names}{more})")
    return "; ".join(parts)


__all__ = ["UnsupportedModelError", "grouped", "SHOWN_NODES"]
