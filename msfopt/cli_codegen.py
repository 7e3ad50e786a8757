"""Code-generation sub-commands (``codegen``, ``build``, ``run``, ``export-onnx``)."""


def add_parsers(sub, add_solve_args) -> dict:
    return {}
