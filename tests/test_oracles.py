"""The oracles (msfopt/oracles.py): references msfopt did not produce.

* LiteRT with the BUILTIN_REF op resolver equals tflite-micro on every TFLite model of
  ../shared/models that both run (a few random inputs each): that is what justifies it as the
  second TFLite oracle (for what tflite-micro cannot run: TILE, fp16-weight DEQUANTIZE).
* tflite-micro's abort on an int8 softmax with a tiny input scale is contained: the reference
  runs in a child process; ``msfopt run`` exits 6 with a one-line message and still writes the
  generated C's output.
* ONNX models written here with onnx.helper are ORIGINAL files: the generated C is compared with
  onnxruntime on them (layouts NCHW / NHWC, float / int8 / uint8 I/O mapped back), not with
  msfopt's re-export of its IR.
* ``--rq fixed`` on an ONNX / zoo model is labelled host-consistent, never bit-exact; every
  report names its oracle.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from conftest import SHARED_MODELS, require

from msfopt import oracle_engines, oracles
from msfopt.cli import main as cli_main
from msfopt.models import network_with_weights
from msfopt.mcu_runtime.codegen import generate
from msfopt.mcu_runtime.hostrun import build_host, run_host
from msfopt.solver import solve

from onnx_helpers import G

F = np.float32


def _tflite_input_shape(path):
    import tflite
    g = tflite.Model.GetRootAs(Path(path).read_bytes(), 0).Subgraphs(0)
    return [int(d) for d in g.Tensors(int(g.Inputs(0))).ShapeAsNumpy()]


# ------------------------------------------------------------------------------------------------
# LiteRT BUILTIN_REF == tflite-micro: the second TFLite oracle
# ------------------------------------------------------------------------------------------------

def test_litert_builtin_ref_equals_tflm_on_shared_models():
    require("../shared/models", "tflite", "tflite-micro", "LiteRT")
    files = sorted(SHARED_MODELS.glob("*.tflite"))
    assert len(files) >= 8, files
    compared = []
    for path in files:
        rng = np.random.default_rng(len(path.name))
        shape = _tflite_input_shape(path)
        feeds = [[rng.integers(-128, 128, shape, dtype=np.int8)] for _ in range(3)]
        try:
            want = oracle_engines.run_engine("tflite-micro", path, feeds)
        except oracle_engines.OracleUnavailable:
            continue  # "where both run"
        got = oracle_engines.run_engine("litert", path, feeds)
        assert len(got) == len(want) == 3
        for k, (a, b) in enumerate(zip(want, got)):
            assert len(a) == len(b), path.name
            for j, (u, v) in enumerate(zip(a, b)):
                assert u.dtype == v.dtype and u.shape == v.shape, (path.name, k, j)
                assert np.array_equal(u, v), (f"{path.name} input {k} output {j}: "
                                              f"{int(np.sum(u != v))} values differ")
        # the inputs are not degenerate for the oracle
        assert len({a[0].tobytes() for a in want}) >= 2 or want[0][0].size <= 2, path.name
        compared.append(path.name)
    # every TFLite model of the folder runs in both today (README of ../shared/models)
    assert len(compared) == len(files), sorted(set(p.name for p in files) - set(compared))


def _tile_model(tmp_path) -> Path:
    """x[1,2,3,2] int8 -> TILE(multiples [1,2,1,3]) -> [1,4,3,6]: tflite-micro has no TILE."""
    from test_tflite_import import ModelWriter, OP
    w = ModelWriter()
    x = w.act([1, 2, 3, 2], 0.1, 3)
    mult = w.tensor([4], w.INT32, data=np.array([1, 2, 1, 3], np.int32))
    y = w.act([1, 4, 3, 6], 0.1, 3)
    w.op(OP.get("TILE", 69), [x, mult], [y])
    p = tmp_path / "tile.tflite"
    p.write_bytes(w.build([x], [y]))
    return p


class _Stub:
    """The IR facts the TFLite oracle mapping uses (this graph is not importable)."""
    dtype = "int8"
    requant = "fixed"
    n_layers = 1

    def __init__(self, path, in_shape, out_shape):
        self.source = str(path)
        self.input_shape = in_shape
        self._out = out_shape

    output_ids = (1,)

    def tensor_shape(self, t):
        return self.input_shape if t == 0 else self._out


def test_litert_is_the_fallback_where_tflm_cannot_run(tmp_path):
    require("tflite", "tflite-micro", "LiteRT")
    p = _tile_model(tmp_path)
    x = np.random.default_rng(3).integers(-128, 128, (2, 3, 2), dtype=np.int8)
    with pytest.raises(oracle_engines.OracleUnavailable, match="tflite-micro cannot run"):
        oracle_engines.run_engine("tflite-micro", p, [[x[None]]])
    ref = oracles.reference(_Stub(p, (2, 3, 2), (4, 3, 6)), [x])
    assert ref.oracle == oracles.LITERT and ref.kind == "external"
    assert any("tflite-micro cannot run" in n for n in ref.notes)
    np.testing.assert_array_equal(ref.y, np.tile(x[None], (1, 2, 1, 3))[0])  # numpy's TILE


# ------------------------------------------------------------------------------------------------
# crash containment
# ------------------------------------------------------------------------------------------------

def _tiny_softmax_model(path: Path) -> Path:
    """CONV -> AVGPOOL (whole map) -> RESHAPE -> FC (logits scale 1e-8) -> SOFTMAX: tflite-micro
    (and LiteRT's reference kernels) abort in SOFTMAX Prepare on such a tiny input scale."""
    from test_tflite_import import (ModelWriter, OP, SAME, VALID, _conv_weights, conv_opts,
                                    fc_opts, pool_opts, reshape_opts)
    from test_tflm_exact import softmax_opts
    rng = np.random.default_rng(3)
    w = ModelWriter()
    x = w.act([1, 6, 6, 3], 0.05, 0)
    cW, cB = _conv_weights(w, rng, [4, 3, 3, 3], 0)
    a1 = w.act([1, 6, 6, 4], 0.1, -128)
    w.op(OP["CONV_2D"], [x, cW, cB], [a1], *conv_opts(SAME, (1, 1), "relu"))
    g = w.act([1, 1, 1, 4], 0.1, -128)
    w.op(OP["AVERAGE_POOL_2D"], [a1], [g], *pool_opts(VALID, (1, 1), (6, 6)))
    shp = w.tensor([2], w.INT32, data=np.array([1, 4], np.int32))
    flat = w.act([1, 4], 0.1, -128)
    w.op(OP["RESHAPE"], [g, shp], [flat], *reshape_opts([1, 4]))
    fW = w.tensor([5, 4], w.INT8, 1e-9, 0, data=rng.integers(-127, 128, (5, 4), dtype=np.int8))
    fB = w.tensor([5], w.INT32, 1e-10, 0, data=rng.integers(-3000, 3000, 5, dtype=np.int32))
    logits = w.act([1, 5], 1e-8, 0)
    w.op(OP["FULLY_CONNECTED"], [flat, fW, fB], [logits], *fc_opts())
    out = w.act([1, 5], 1 / 256, -128)
    w.op(OP["SOFTMAX"], [logits], [out], *softmax_opts(1.0))
    path.write_bytes(w.build([x], [out]))
    return path


def test_tflm_abort_is_contained(tmp_path, capsys):
    require("tflite", "tflite-micro")
    model = _tiny_softmax_model(tmp_path / "tiny_softmax.tflite")
    x = np.zeros((1, 6, 6, 3), np.int8)
    with pytest.raises(oracle_engines.OracleCrash,
                       match=r"reference interpreter tflite-micro crashed on this model \(SIGABRT"):
        oracle_engines.run_engine("tflite-micro", model, [[x]])
    out = tmp_path / "gen"
    assert cli_main(["codegen", str(model), "--ram", "64k", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["run", str(out)]) == 6   # this process survived the abort
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("msfopt: error: reference interpreter tflite-micro crashed on this "
                             "model (SIGABRT")
    y = (out / "msf_output.bin").read_bytes()  # the generated C's output is still written
    assert len(y) == 5 and str(out / "msf_output.bin") in err[0]
    # the same from a shell: one line, exit 6, no traceback
    p = subprocess.run([sys.executable, "-m", "msfopt.cli", "run", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 6 and "Traceback" not in p.stderr
    assert "reference interpreter tflite-micro crashed on this model" in p.stderr


# ------------------------------------------------------------------------------------------------
# ONNX: the generated C vs onnxruntime on the ORIGINAL file
# ------------------------------------------------------------------------------------------------

def _uint8_qop_model():
    """uint8 input -> QLinearConv (uint8 x int8 weights) -> QLinearConv stride 2 (uint8 out)."""
    g = G(11)
    r = g.rng
    w1 = r.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    c1 = g.op("QLinearConv", ["x", g.c(F(0.02)), g.c(np.uint8(128)), g.c(w1),
                              g.c(r.uniform(0.002, 0.01, 6).astype(F)), g.c(np.zeros(6, np.int8)),
                              g.c(F(0.05)), g.c(np.uint8(0)),
                              g.c(r.integers(-900, 900, 6).astype(np.int32))],
              name="qconv1", pads=[1, 1, 1, 1])
    w2 = r.integers(-127, 128, (8, 6, 3, 3)).astype(np.int8)
    c2 = g.op("QLinearConv", [c1, g.c(F(0.05)), g.c(np.uint8(0)), g.c(w2), g.c(F(0.004)),
                              g.c(np.int8(0)), g.c(F(0.08)), g.c(np.uint8(120)),
                              g.c(r.integers(-900, 900, 8).astype(np.int32))],
              name="qconv2", pads=[1, 1, 1, 1], strides=[2, 2])
    return g.model("x", c2, [1, 3, 9, 8], [1, 8, 5, 4], in_type=TensorProto.UINT8)


def _original_models():
    from test_onnx_import import mbv2_model, nhwc_model, qdq_model, qop_model, resnet_model
    return {
        "qdq-float-io-flat-out": qdq_model()[0],           # float NCHW in, [1,5] float out
        "qop-float-io": qop_model(with_matmul=False)[0],   # QOperator, com.microsoft ops
        "uint8-qop-nchw": _uint8_qop_model(),              # uint8 in / out, shifted by 128
        "float-mbv2": mbv2_model(),                        # float, NCHW out
        "float-resnet": resnet_model(),
        "float-nhwc-in": nhwc_model(),                     # NHWC input (Transpose 0,3,1,2)
    }


ORIGINALS = list(_original_models())


def _gen_and_run(net, out, xs):
    plan = solve(net, objective="ram", io="arena", check=False)
    gen = generate(net, plan.blocks, out, io="arena")
    exe = build_host(gen, guard=16)
    return gen, [run_host(gen, exe, x) for x in xs]


@pytest.mark.parametrize("kind", ORIGINALS)
def test_c_matches_onnxruntime_on_the_original_file(kind, tmp_path):
    require("onnxruntime")
    path = tmp_path / f"{kind}.onnx"
    onnx.save(_original_models()[kind], str(path))
    net = network_with_weights(str(path))
    assert net.source == str(path)
    rng = np.random.default_rng(len(kind))
    if net.dtype == "int8":
        xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(4)]
        xs[0][:] = 127   # uint8 255 for the uint8 model
    else:
        xs = [rng.uniform(-1, 1, net.input_shape).astype(np.float32) for _ in range(3)]
    ref = oracles.reference(net, xs)
    assert ref.oracle == oracles.ORT and ref.kind == "external"
    if kind.startswith("uint8"):
        assert oracles.needs_arbitration(net, ref)
        assert ref.raw[0][0].dtype == np.uint8          # the original's own output type
        np.testing.assert_array_equal(ref.ys[0].astype(np.int16),
                                      ref.raw[0][0][0].transpose(1, 2, 0).astype(np.int16) - 128)
    gen, ys = _gen_and_run(net, tmp_path / "g", xs)
    ref = oracles.arbitrate(net, xs, ys, ref)
    n_diff = 0
    for k, (y, w) in enumerate(zip(ys, ref.ys)):
        assert y.shape == w.shape == tuple(net.tensor_shape(net.n_layers))
        ok, detail = oracles.compare(y, w, net.dtype, ref.tolerance_steps)
        assert ok, f"{kind} input {k}: {detail} vs {ref.label}"
        n_diff += int(np.sum(y != w)) if net.dtype == "int8" else 0
    assert ref.tolerance_steps == (1 if kind.startswith("qdq") else 0)
    # QDQ: near-ties only, not a systematic difference
    assert n_diff <= max(1, 0.05 * sum(w.size for w in ref.ys)), n_diff
    assert len({w.tobytes() for w in ref.ys}) >= 2   # the oracle's outputs vary with the input


def test_onnx_reference_agrees_on_a_uint8_model(tmp_path):
    """The arbitration oracle (onnx.reference) on a uint8 x int8 model computes what the C does;
    arbitrate() picks it (and says so) when onnxruntime disagrees with the C."""
    require("onnxruntime")
    path = tmp_path / "u8.onnx"
    onnx.save(_uint8_qop_model(), str(path))
    net = network_with_weights(str(path))
    rng = np.random.default_rng(4)
    xs = [rng.integers(-128, 128, net.input_shape, dtype=np.int8) for _ in range(3)]
    xs.append(np.full(net.input_shape, 127, np.int8))
    _, ys = _gen_and_run(net, tmp_path / "g", xs)
    arb = oracles.reference(net, xs, engine="onnx.reference")
    assert arb.oracle == oracles.ONNX_REF
    for y, w in zip(ys, arb.ys):
        np.testing.assert_array_equal(y, w)
    # an onnxruntime that saturated (simulated: one output byte off) is arbitrated
    ort_ref = oracles.reference(net, xs)
    ort_ref.ys[0] = ort_ref.ys[0].copy()
    ort_ref.ys[0].flat[0] ^= 1
    got = oracles.arbitrate(net, xs, ys, ort_ref)
    assert got.oracle == oracles.ONNX_REF
    assert any("saturate" in n and "1 output bytes" in n for n in got.notes)
    # no disagreement: onnxruntime stays the oracle
    assert oracles.arbitrate(net, xs, ys, oracles.reference(net, xs)).oracle == oracles.ORT


# ------------------------------------------------------------------------------------------------
# `msfopt run`: the oracle named; rq fixed is host-consistent
# ------------------------------------------------------------------------------------------------

def _run_json(out, tmp_path, *extra):
    res = tmp_path / "res.json"
    rc = cli_main(["run", str(out), "--json", str(res), *extra])
    return rc, json.loads(res.read_text())


def test_run_names_the_oracle(tmp_path, capsys, monkeypatch):
    require("onnxruntime")
    monkeypatch.setenv("COLUMNS", "300")   # one table row per line
    onnx_path = tmp_path / "qdq.onnx"
    onnx.save(_original_models()["qdq-float-io-flat-out"], str(onnx_path))
    cases = [(str(onnx_path), oracles.ORT, "external"),
             ("mbv2-w0.35", oracles.ORT_REEXPORT, "re-export")]
    for model, oracle, kind in cases:
        out = tmp_path / Path(model).stem
        assert cli_main(["codegen", model, "--ram", "256k", "-o", str(out)]) == 0
        rc, res = _run_json(out, tmp_path)
        text = capsys.readouterr().out
        assert rc == 0, text
        assert res["oracle"] == oracle and res["oracle_kind"] == kind and res["ok"] is True
        assert res["detail"] == "bit-exact"
        assert f"output vs {oracle}" in " ".join(text.split())
        if kind == "external":  # the re-export is kept as an extra check
            assert res["extra_check"]["oracle"] == oracles.ORT_REEXPORT
        else:
            assert any("no original file" in n for n in res["oracle_notes"])


def test_rq_fixed_onnx_is_host_consistent_not_a_mismatch(tmp_path, capsys):
    require("onnxruntime")
    path = tmp_path / "qop.onnx"
    onnx.save(_original_models()["qop-float-io"], str(path))
    out = tmp_path / "g"
    assert cli_main(["codegen", str(path), "--ram", "64k", "-o", str(out), "--rq", "fixed"]) == 0
    capsys.readouterr()
    rc, res = _run_json(out, tmp_path)
    text = " ".join(capsys.readouterr().out.split())
    assert rc == 0
    assert res["oracle_kind"] == "host-consistent" and res["detail"] == "host-consistent"
    assert "bit-exact" not in text and "host-consistent" in text


def test_tflite_run_names_tflm(tmp_path, capsys):
    require("tflite", "tflite-micro")
    from test_tflm_exact import build_mbv2_like
    path = tmp_path / "m.tflite"
    path.write_bytes(build_mbv2_like(np.random.default_rng(11)))
    out = tmp_path / "g"
    assert cli_main(["codegen", str(path), "--ram", "64k", "-o", str(out)]) == 0
    rc, res = _run_json(out, tmp_path)
    assert rc == 0 and res["oracle"] == oracles.TFLM and res["detail"] == "bit-exact"


# ------------------------------------------------------------------------------------------------
# the resource guard
# ------------------------------------------------------------------------------------------------

def test_required_resources_fail_instead_of_skipping(tmp_path):
    """MSFOPT_REQUIRE_TOOLCHAINS=1: a skip (an explicit one, a missing resource, a module-level
    importorskip) fails; =0 or unset: it skips."""
    here = Path(__file__).resolve().parent
    (tmp_path / "conftest.py").write_text((here / "conftest.py").read_text())
    (tmp_path / "test_guard.py").write_text(textwrap.dedent("""
        import pytest
        from conftest import RESOURCES, require
        RESOURCES["fake"] = (lambda: False, "nowhere")
        def test_missing_resource():
            require("fake")
        def test_plain_skip():
            pytest.skip("no reason")
        def test_ok():
            pass
    """))
    (tmp_path / "test_guard_mod.py").write_text(
        "import pytest\npytest.importorskip('msfopt_no_such_module')\n")
    env_base = {k: v for k, v in __import__("os").environ.items()
                if k != "MSFOPT_REQUIRE_TOOLCHAINS"}
    res = {}
    for val in (None, "0", "1"):
        env = dict(env_base)
        if val is not None:
            env["MSFOPT_REQUIRE_TOOLCHAINS"] = val
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-o", "addopts=", "--continue-on-collection-errors",
                            str(tmp_path)], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=300)
        res[val] = (p.returncode, p.stdout.strip().splitlines()[-1])
    assert res[None][0] == res["0"][0] == 0
    assert "1 passed, 3 skipped" in res["0"][1]
    assert res["1"][0] != 0
    assert "2 failed, 1 passed, 1 error" in res["1"][1], res["1"]
