"""The calibration fit (scripts/calibrate.py): its non-negative least squares against brute force
over every support set, and its relative-error fit recovering known coefficients."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import calibrate  # noqa: E402


def brute_nnls(A, b):
    """min ||Ax - b|| over x >= 0 by trying every support: least squares on the support, kept
    when it is non-negative (the optimum is one of these)."""
    best, best_x = np.inf, np.zeros(A.shape[1])
    for k in range(A.shape[1] + 1):
        for sup in itertools.combinations(range(A.shape[1]), k):
            x = np.zeros(A.shape[1])
            if sup:
                x[list(sup)] = np.linalg.lstsq(A[:, list(sup)], b, rcond=None)[0]
            if (x >= -1e-12).all():
                r = np.linalg.norm(A @ np.maximum(x, 0) - b)
                if r < best - 1e-12:
                    best, best_x = r, np.maximum(x, 0)
    return best, best_x


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(3, 12), n=st.integers(1, 6))
def test_nnls_matches_brute_force(seed, m, n):
    rng = np.random.default_rng(seed)
    A, b = rng.normal(size=(m, n)), rng.normal(size=m)
    x = calibrate.nnls(A, b)
    assert (x >= 0).all()
    best, _ = brute_nnls(A, b)
    assert np.linalg.norm(A @ x - b) == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_fit_recovers_coefficients_from_exact_counts():
    rng = np.random.default_rng(7)
    truth = {k: float(v) for k, v in zip(calibrate.FEATURES,
                                         rng.uniform(0.5, 50.0, len(calibrate.FEATURES)))}
    truth["overhead_per_call"] = 1.0 + truth["overhead_per_call"]   # above its fit floor
    records = []
    for _ in range(3 * len(calibrate.FEATURES)):
        f = {k: float(rng.integers(0, 10_000)) for k in calibrate.FEATURES}
        records.append({"features": f, "instructions": calibrate.predict(truth, f)})
    coef = calibrate.fit(records)
    for k in calibrate.FEATURES:
        assert coef[k] == pytest.approx(truth[k], rel=1e-6), k
    # a coefficient whose true value is below its floor is fitted at the floor
    truth["overhead_per_call"] = 0.0
    for r in records:
        r["instructions"] = calibrate.predict(truth, r["features"])
    assert calibrate.fit(records)["overhead_per_call"] == pytest.approx(1.0)
    assert calibrate.fit(records, floors={})["overhead_per_call"] == pytest.approx(0.0, abs=1e-6)


def test_border_fraction_matches_brute_force():
    """Border pixels of k x k conv / depthwise layers: outputs whose window is clipped by the
    input, counted pixel by pixel (every pixel of a depthwise kernel the fast path does not
    take)."""
    import re
    from msfopt.cycles import DW_FAST_MAX_KW, DW_FAST_MAX_TAPS, border_fraction
    from msfopt.ir import CONV, DW, window_layer
    from msfopt.mcu_runtime import runtime_files
    src = (runtime_files.SRC_DIR / "msf_s8_dwfast.c").read_text()
    assert int(re.search(r"#define MSF_DW_MAX_TAPS (\d+)", src).group(1)) == DW_FAST_MAX_TAPS
    assert int(re.search(r"#define MSF_DW_MAX_KW (\d+)", src).group(1)) == DW_FAST_MAX_KW
    rng = np.random.default_rng(3)
    for _ in range(200):
        k, s = int(rng.integers(1, 10)), int(rng.integers(1, 4))
        h, w = int(rng.integers(k, 20)), int(rng.integers(k, 20))
        pt, pl, pb, pr = (int(rng.integers(0, k)) for _ in range(4))
        L = window_layer(DW if rng.integers(0, 2) else CONV, (h, w, 4), 4, k, s, (pt, pl, pb, pr))
        ho, wo, _ = L.out_shape
        inside = sum(1 for oy in range(ho) for ox in range(wo)
                     if oy * s - pt >= 0 and oy * s - pt + k <= h
                     and ox * s - pl >= 0 and ox * s - pl + k <= w)
        want = 0.0 if k == 1 else 1.0 - inside / (ho * wo)
        if L.op == DW and (k * k > DW_FAST_MAX_TAPS or k > DW_FAST_MAX_KW):
            want = 1.0
        assert border_fraction(L) == pytest.approx(want, abs=1e-12), (k, s, h, w, L.pad)


def test_cycle_model_equals_fitted_linear_form():
    """The optimizer's CycleModel built from a calibrated table predicts exactly the linear form
    the fit uses (calibrate.predict over calibrate.block_features), in every mode of the suite:
    every coefficient reaches the model under the name the table gives it."""
    from msfopt.cycles import CycleModel
    from msfopt.modes import schedule_of
    from msfopt.schedule import Liveness
    rng = np.random.default_rng(11)
    coef = {k: float(rng.uniform(0.5, 40.0)) for k in calibrate.FEATURES}
    table = {k: v for k, v in coef.items() if k != "maxpool"}
    table["pool"] = coef["maxpool"]
    table["maxpool"] = coef["maxpool"]
    models = {None: CycleModel.from_table("t", table),
              "fixed": CycleModel.from_table("t", table, requant="fixed")}
    suite = calibrate.micro_suite()
    assert len({b[0][2] for _, _, b in suite} | {m for _, _, b in suite for _, _, m, _ in b}) >= 6
    assert sum(calibrate.rq_of(name) == "fixed" for name, _, _ in suite) >= 15
    for name, net, blocks in suite:
        live = Liveness(net, "external")
        scheds = [schedule_of(net, live, *b) for b in blocks]
        rq = calibrate.rq_of(name)
        want = calibrate.predict(coef, calibrate.block_features(net, scheds, rq))
        got = sum(models[rq].cycles(net, s) for s in scheds)
        assert got == pytest.approx(want, rel=1e-9, abs=len(scheds)), name
