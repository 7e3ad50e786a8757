"""Random int8 TFLite graph models (hypothesis), bit-exact with tflite-micro.

Each example writes a TFLite file (tests/tflite_builder.py) as a sequence of patterns on a
running tensor: convolutions (3x3 same, strided, 1x1, per-channel weights, fused relu / relu6),
depthwise convolutions, max / average pools, two-branch residual adds (a conv branch and the
skip), channel concats of two branches, squeeze-excite gates (MEAN -> CONV -> LOGISTIC -> MUL),
hard-swish, swish (LOGISTIC + MUL), nearest x2 upsampling, bilinear resizes (align_corners /
half_pixel_centers / neither, to a random size up to x2), adds of a per-channel constant (its
grid per tensor or per channel), and sometimes a second graph output.
Every tensor gets its own random quantisation (a concat's inputs share its output's, as TFLite
requires).  The file is imported, planned (one plan an example: unfused, zero-recompute,
minimum RAM or a random path of the fusion DAG), generated as C, built for the host (linked arena
== predicted) and run on two inputs; every output equals tflite-micro's on the same file.

``MSFOPT_HYPOTHESIS_SCALE`` multiplies the number of examples (scripts/nightly.sh).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples, require

require("tflite", "tflite-micro")

from test_tflite_graph_ops import (OPS, all_values_inputs, check_bit_exact, concat_opts,  # noqa: E402
                                   mul_opts, plans_of, resize_opts)
from test_tflite_import import (_conv_weights, add_opts, conv_opts, dw_opts,  # noqa: E402
                                mean_opts, pool_opts)
from random_nets import path_blocks, random_path  # noqa: E402
from tflite_builder import SAME, VALID, ModelWriter  # noqa: E402

from msfopt import oracle_engines  # noqa: E402
from msfopt.dag import build_dag  # noqa: E402
from msfopt.importers.tflite_import import load_tflite  # noqa: E402

PATTERNS = ("conv", "conv_s2", "pw", "dw", "maxpool", "avgpool", "residual", "concat", "se",
            "hardswish", "swish", "upsample", "bilinear", "addc")


class _Builder:
    def __init__(self, rng, h, w, c):
        self.rng = rng
        self.w = ModelWriter()
        self.shape = [1, h, w, c]
        self.cur = self.w.act(self.shape, 0.02, -5)
        self.x = self.cur
        self.outputs = []

    def q(self):
        return float(self.rng.uniform(0.01, 0.08)), int(self.rng.integers(-40, 40))

    def act(self, shape, q=None):
        return self.w.act(shape, *(q or self.q()))

    def conv(self, x, c_in, c_out, k, s, act="none", pad=SAME, q=None):
        h, w = self.shape[1], self.shape[2]
        oh, ow = (-(-h // s), -(-w // s)) if pad == SAME else (h - k + 1, w - k + 1)
        cw, cb = _conv_weights(self.w, self.rng, [c_out, k, k, c_in], 0)
        y = self.act([1, oh, ow, c_out], q)
        self.w.op(OPS["CONV_2D"], [x, cw, cb], [y], *conv_opts(pad, (s, s), act))
        return y, [1, oh, ow, c_out]

    def step(self, kind):
        w, rng = self.w, self.rng
        _, h, wd, c = self.shape
        x = self.cur
        if kind in ("conv", "pw", "conv_s2"):
            k = 1 if kind == "pw" else 3
            s = 2 if kind == "conv_s2" and min(h, wd) >= 4 else 1
            cout = int(rng.integers(2, 7))
            self.cur, self.shape = self.conv(x, c, cout, k, s, str(rng.choice(
                ["none", "relu", "relu6"])))
        elif kind == "dw":
            dw_w = w.tensor([1, 3, 3, c], w.INT8, rng.uniform(0.005, 0.03, c).astype(np.float32),
                            np.zeros(c, np.int64), qdim=3,
                            data=rng.integers(-127, 128, (1, 3, 3, c), dtype=np.int8))
            db = w.tensor([c], w.INT32, np.full(c, 0.001, np.float32), np.zeros(c, np.int64),
                          data=rng.integers(-500, 500, c, dtype=np.int32))
            y = self.act(self.shape)
            w.op(OPS["DEPTHWISE_CONV_2D"], [x, dw_w, db], [y], *dw_opts(SAME, (1, 1), "relu6"))
            self.cur = y
        elif kind in ("maxpool", "avgpool") and min(h, wd) >= 2:
            shape = [1, h // 2, wd // 2, c]
            # TFLite's int8 pools keep their input's quantisation (tflite-micro requires it)
            y = self.act(shape, self._quant_of(x))
            w.op(OPS["MAX_POOL_2D" if kind == "maxpool" else "AVERAGE_POOL_2D"], [x], [y],
                 *pool_opts(VALID, (2, 2), (2, 2)))
            self.cur, self.shape = y, shape
        elif kind == "residual":
            b, _ = self.conv(x, c, c, 3, 1, "relu")
            y = self.act(self.shape)
            w.op(OPS["ADD"], [b, x], [y], *add_opts(str(rng.choice(["none", "relu"]))))
            self.cur = y
        elif kind == "concat":
            q = self.q()
            a, sa = self.conv(x, c, 2, 1, 1, "relu", q=q)
            b, sb = self.conv(x, c, 3, 3, 1, "none", q=q)
            shape = [1, h, wd, 5]
            y = self.act(shape, q)
            w.op(OPS["CONCATENATION"], [a, b], [y], *concat_opts(3))
            self.cur, self.shape = y, shape
        elif kind == "se":
            axes = w.tensor([2], w.INT32, data=np.array([1, 2], np.int32))
            m = self.act([1, 1, 1, c])
            w.op(OPS["MEAN"], [x, axes], [m], *mean_opts(True))
            sv = self.shape
            self.shape = [1, 1, 1, c]
            g0, _ = self.conv(m, c, c, 1, 1, "none", pad=VALID)
            self.shape = sv
            g = self.act([1, 1, 1, c], (1 / 256, -128))
            w.op(OPS["LOGISTIC"], [g0], [g])
            y = self.act(self.shape)
            w.op(OPS["MUL"], [x, g], [y], *mul_opts())
            self.cur = y
        elif kind == "addc":       # ADD of a [C] constant (per-tensor or per-channel grid)
            vals = rng.integers(-128, 128, c).astype(np.int8)
            if rng.integers(2):
                k = w.tensor([c], w.INT8, rng.uniform(0.01, 0.08, c).astype(np.float32),
                             rng.integers(-20, 20, c), qdim=0, data=vals)
            else:
                k = w.tensor([c], w.INT8, *self.q(), data=vals)
            y = self.act(self.shape)
            w.op(OPS["ADD"], [x, k], [y], *add_opts(str(rng.choice(["none", "relu"]))))
            self.cur = y
        elif kind == "hardswish":
            y = self.act(self.shape)
            w.op(OPS["HARD_SWISH"], [x], [y])
            self.cur = y
        elif kind == "swish":
            sg = self.act(self.shape, (1 / 256, -128))
            w.op(OPS["LOGISTIC"], [x], [sg])
            y = self.act(self.shape)
            w.op(OPS["MUL"], [x, sg], [y], *mul_opts())
            self.cur = y
        elif kind in ("upsample", "bilinear") and h * wd <= 64:
            # x2 (nearest) or to a random size up to x2 (bilinear; align_corners or
            # half_pixel_centers or neither)
            oh, ow = (2 * h, 2 * wd) if kind == "upsample" else (
                int(rng.integers(h, 2 * h + 1)), int(rng.integers(wd, 2 * wd + 1)))
            size = w.tensor([2], w.INT32, data=np.array([oh, ow], np.int32))
            shape = [1, oh, ow, c]
            y = self.act(shape, self._quant_of(x))
            align, half = [(False, False), (True, False), (False, True)][int(rng.integers(3))]
            w.op(OPS["RESIZE_NEAREST_NEIGHBOR" if kind == "upsample" else "RESIZE_BILINEAR"],
                 [x, size], [y], *resize_opts(kind == "upsample", align, half))
            self.cur, self.shape = y, shape

    def _quant_of(self, t):
        """(scale, zero point) of an activation tensor written so far."""
        d = self.w.tensors[t]
        return float(d["scale"][0]), int(d["zp"][0])

    def build(self):
        return self.w.build([self.x], self.outputs + [self.cur])


@pytest.fixture(scope="module")
def kept_oracle():
    """One long-lived tflite-micro worker for the whole module (no start-up per example)."""
    with oracle_engines.kept_workers():
        yield


def one_plan(net, plan: str, rng) -> dict:
    """{plan: blocks} for one plan: unfused, zero-recompute, min-RAM or a random DAG path."""
    if plan != "random":
        return plans_of(net, (plan,))
    dag = build_dag(net)
    return {"random": path_blocks(dag, random_path(dag, rng))}


# ~0.4 s an example: one tflite-micro worker for the module, one plan (one host build) per
# example, the runtime objects compiled once (hostrun's object cache)
@settings(max_examples=examples(90), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(PATTERNS), min_size=2, max_size=6),
       h=st.integers(4, 10), w=st.integers(4, 10), c=st.integers(1, 4),
       two_outputs=st.booleans(), seed=st.integers(0, 10_000),
       plan=st.sampled_from(("unfused", "zero-recompute", "min-ram", "random")))
def test_random_tflite_graph_bit_exact_with_tflm(tmp_path_factory, kept_oracle, kinds, h, w, c,
                                                 two_outputs, seed, plan):
    rng = np.random.default_rng(seed)
    b = _Builder(rng, h, w, c)
    b.cur, b.shape = b.conv(b.x, c, int(rng.integers(2, 5)), 3, 1, "relu")
    for k, kind in enumerate(kinds):
        b.step(kind)
        if two_outputs and k == len(kinds) // 2 - 1 and len(kinds) >= 2:
            # a head on an intermediate tensor: a second graph output
            head, _ = b.conv(b.cur, b.shape[3], 2, 1, 1, "none")
            b.outputs.append(head)
    path = tmp_path_factory.mktemp("tfl") / "random.tflite"
    path.write_bytes(b.build())
    net = load_tflite(path)
    assert len(net.output_ids) == 1 + len(b.outputs)
    xs = all_values_inputs(net.input_shape, 2, rng)
    check_bit_exact(net, path, xs, one_plan(net, plan, rng), path.parent)
