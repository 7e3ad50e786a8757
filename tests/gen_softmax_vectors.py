"""Print the expected outputs of mcu_runtime/tests_c/test_softmax.c, computed by the TFLite Micro
interpreter (the ``tflite-micro`` package) on one-op int8 SOFTMAX models: nothing here comes from
msfopt's own softmax code.  Run from the repository root:

    .venv/bin/python tests/gen_softmax_vectors.py

and paste the arrays into test_softmax.c when a case is added.  Each case is (input scale, beta,
rows of int8 logits); the output quantisation is TFLM's required scale 1/256, zero point -128.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from msfopt import oracle_engines  # noqa: E402
from test_tflite_import import OP, ModelWriter  # noqa: E402
from test_tflm_exact import softmax_opts  # noqa: E402

CASES = {
    # name: (input scale, beta, rows of logits)
    "s16": (1 / 16, 1.0, [[0, 16, 32, -16, -128, 127, 100, 90, 80, 70],
                          [5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
                          [127, -128, -128, -128, -128, -128, -128, -128, -128, -128],
                          [127, -120, -121, -122, 0, 0, -1, 1, 126, 127]]),
    "s4": (1 / 4, 1.0, [[3, 1, -2], [0, 0, 0], [-128, 127, 60], [10, 9, 8]]),
    "s2": (1 / 2, 1.0, [[1, 2, 3, 4, 5, 6, 7, 8], [-96, -97, -128, -65, -66, -64, -80, -128]]),
}


def tflm_softmax(scale: float, beta: float, rows) -> np.ndarray:
    x_in = np.asarray(rows, dtype=np.int8)
    w = ModelWriter()
    x = w.act([1, x_in.shape[1]], scale, 0)
    y = w.act([1, x_in.shape[1]], 1 / 256, -128)
    w.op(OP["SOFTMAX"], [x], [y], *softmax_opts(beta))
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "softmax.tflite"
        path.write_bytes(w.build([x], [y]))
        outs = oracle_engines.run_engine("tflite-micro", path, [[row[None, :]] for row in x_in])
    return np.concatenate([o[0] for o in outs]).reshape(x_in.shape)


def c_rows(a: np.ndarray) -> str:
    return ",\n".join("    " + ", ".join(str(int(v)) for v in row) for row in a)


def main() -> None:
    for name, (scale, beta, rows) in CASES.items():
        y = tflm_softmax(scale, beta, rows)
        print(f"/* {name}: input scale {scale}, beta {beta} */")
        print(f"static const int8_t {name}_x[{y.size}] = {{\n{c_rows(np.asarray(rows))}\n}};")
        print(f"static const int8_t {name}_want[{y.size}] = {{\n{c_rows(y)}\n}};\n")


if __name__ == "__main__":
    main()
