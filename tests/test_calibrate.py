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
    records = []
    for _ in range(3 * len(calibrate.FEATURES)):
        f = {k: float(rng.integers(0, 10_000)) for k in calibrate.FEATURES}
        records.append({"features": f, "instructions": calibrate.predict(truth, f)})
    coef = calibrate.fit(records)
    for k in calibrate.FEATURES:
        assert coef[k] == pytest.approx(truth[k], rel=1e-6), k
