"""--input-shape: dynamic ONNX input dims fixed on the command line and in the library, a dynamic
batch dim defaulting to 1 with a note, and clear one-line errors for shapes that cannot be."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import require  # noqa: E402
from onnx_helpers import G, ort_run  # noqa: E402

from msfopt.errors import InputError  # noqa: E402
from msfopt.importers import UnsupportedModelError  # noqa: E402
from msfopt.importers.onnx_import import load_onnx  # noqa: E402
from msfopt.models import load_model  # noqa: E402
from msfopt.reference import reference_forward  # noqa: E402
from msfopt.units import parse_input_shapes  # noqa: E402

MSFOPT = [sys.executable, "-m", "msfopt.cli"]


def dyn_model(in_dims=(1, 3, "H", "W"), out_dims=(1, 6, "H", "W")):
    g = G(5)
    c = g.op("Relu", [g.conv("x", 3, 6, 3, 1, [1, 1, 1, 1], name="c1")])
    y = g.conv(c, 6, 6, 3, 1, [1, 1, 1, 1], name="c2")
    return g.model("x", y, list(in_dims), list(out_dims))


def run_cli(*args, cwd=None):
    return subprocess.run(MSFOPT + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


# -- the parser ---------------------------------------------------------------------------------

def test_parse_input_shapes():
    assert parse_input_shapes(None) == {}
    assert parse_input_shapes(["1x3x48x192"]) == {None: (1, 3, 48, 192)}
    assert parse_input_shapes(["a:1x3x4x4", "b:1X8"]) == {"a": (1, 3, 4, 4), "b": (1, 8)}
    assert parse_input_shapes(["in:put:1x2"]) == {"in:put": (1, 2)}   # the last ':' splits


@pytest.mark.parametrize("bad, why", [
    ("1x3x0x4", "every dim must be"), ("1x3xHx4", "expected dims"), ("", "expected dims"),
    ("x:", "expected dims"), ("1x-3", "expected dims"), ("1x3x4x99999999", "every dim must be"),
])
def test_parse_input_shapes_errors(bad, why):
    with pytest.raises(InputError, match=why):
        parse_input_shapes([bad])


def test_parse_input_shapes_repeated_or_mixed():
    with pytest.raises(InputError, match="given twice"):
        parse_input_shapes(["1x3", "1x4"])
    with pytest.raises(InputError, match="name every input"):
        parse_input_shapes(["1x3", "a:1x4"])


# -- the importer -------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(12, 16), (7, 9)])
def test_dynamic_dims_fixed_match_onnxruntime_on_the_original(hw):
    m = dyn_model()
    net = load_onnx(m, input_shapes={None: (1, 3, *hw)})
    assert net.input_shape == (*hw, 3) and net.layers[-1].out_shape == (*hw, 6)
    for seed in range(2):
        x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, *hw)).astype(np.float32)
        y = reference_forward(net, x[0].transpose(1, 2, 0))
        want = ort_run(m, x)[0].transpose(1, 2, 0)          # the ORIGINAL (dynamic) model
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_named_input_shape():
    net = load_onnx(dyn_model(), input_shapes={"x": (1, 3, 5, 6)})
    assert net.input_shape == (5, 6, 3)


@pytest.mark.parametrize("shape, msg", [
    ({None: (1, 3, 8)}, "has 3 dims, the input has rank 4"),
    ({None: (1, 4, 8, 8)}, "dim 1 is 3 in the file, not 4"),
    ({None: (2, 3, 8, 8)}, "dim 0 is 1 in the file, not 2"),
    ({"y": (1, 3, 8, 8)}, "names input 'y'; the model's inputs are 'x'"),
])
def test_input_shape_errors(shape, msg):
    with pytest.raises(UnsupportedModelError, match=msg):
        load_onnx(dyn_model(), input_shapes=shape)


def test_batch_above_one_refused():
    with pytest.raises(UnsupportedModelError, match="batch 4, only 1 is supported"):
        load_onnx(dyn_model(("N", 3, 8, 8), ("N", 6, 8, 8)), input_shapes={None: (4, 3, 8, 8)})


def test_dynamic_batch_with_static_rest_needs_no_flag():
    net = load_onnx(dyn_model(("batch", 3, 8, 8), ("batch", 6, 8, 8)))
    assert net.input_shape == (8, 8, 3)
    assert net.provenance.notes == ("input 'x': dynamic batch dim 'batch' set to 1",)


def test_zoo_and_tflite_inputs_are_fixed():
    with pytest.raises(InputError, match="built-in model with a fixed input"):
        load_model("mbv2-w0.35", input_shapes={None: (1, 3, 8, 8)})


def test_tflite_input_shape_may_only_restate_it(tmp_path):
    require("../shared/models")
    from conftest import SHARED_MODELS
    path = SHARED_MODELS / "mlperf_tiny_vww_96_int8.tflite"
    assert load_model(path, input_shapes={None: (1, 96, 96, 3)}).input_shape == (96, 96, 3)
    with pytest.raises(InputError, match=r"input is fixed at 1x96x96x3 \(NHWC\)"):
        load_model(path, input_shapes={None: (1, 3, 96, 96)})


# -- the command line ---------------------------------------------------------------------------

def test_cli_inspect_and_solve_with_input_shape(tmp_path):
    p = tmp_path / "dyn.onnx"
    onnx.save(dyn_model(), p)
    r = run_cli("inspect", p)
    assert r.returncode == 2 and "dynamic dim 'H' (fix it with --input-shape)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("inspect", p, "--input-shape", "1x3x12x16")
    assert r.returncode == 0, r.stderr
    assert "input 12x16x3" in r.stdout
    r = run_cli("solve", p, "--input-shape", "1x3x12x16", "--objective", "ram", "--json", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["peak_ram_bytes"] > 0
    r = run_cli("solve", p, "--input-shape", "1x3x12")
    assert r.returncode == 2 and "has 3 dims, the input has rank 4" in r.stderr
    r = run_cli("solve", p, "--input-shape", "1x3xHx8")
    assert r.returncode == 2 and "expected dims like" in r.stderr


def test_cli_dynamic_batch_note(tmp_path):
    p = tmp_path / "dynb.onnx"
    onnx.save(dyn_model(("N", 3, 8, 8), ("N", 6, 8, 8)), p)
    r = run_cli("solve", p, "--objective", "ram")
    assert r.returncode == 0, r.stderr
    assert "msfopt: note: input 'x': dynamic batch dim 'N' set to 1" in r.stderr


def test_cli_codegen_and_run_remember_the_input_shape(tmp_path):
    """codegen with --input-shape records it; 'msfopt run' reloads the model with it and the
    generated C matches onnxruntime on the original (dynamic) file."""
    require("onnxruntime")
    p = tmp_path / "dyn.onnx"
    onnx.save(dyn_model(), p)
    out = tmp_path / "gen"
    r = run_cli("codegen", p, "--input-shape", "1x3x10x6", "--objective", "ram", "-o", out)
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "msfopt_gen.json").read_text())
    assert meta["input_shape_args"] == ["1x3x10x6"]
    r = run_cli("run", out, "--target", "host")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "output matches the reference" in r.stdout
