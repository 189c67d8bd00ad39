"""The Frechet distance and the running statistics, against exact references.

Tolerances: well-conditioned matrices vs. scipy sqrtm 1e-10 relative; rank-deficient
covariances vs. the exact singular-value formula 1e-9 relative (low-rank path) and 1e-4
(full eigenvalue path, whose clipped rounding noise is reported); running statistics vs.
two-pass numpy 1e-9.
"""

import numpy as np
import pytest
from scipy import linalg

from evalsuite.errors import EvalsuiteError
from evalsuite.features.inception import CleanFIDInception
from evalsuite.metrics.fid import FID
from evalsuite.metrics.functional.frechet import (RunningStats, frechet_distance,
                                                  frechet_distance_low_rank, reliability)


def gaussians(n1, n2, d, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n1, d)) @ mix + 0.3
    y = rng.normal(size=(n2, d)) @ (mix + 0.1 * rng.normal(size=(d, d)) / np.sqrt(d))
    return x, y


def exact_fid(x, y):
    """Exact FID from the features: tr((S1 S2)^1/2) = nuclear norm of A B^T / sqrt(..)."""
    a, b = x - x.mean(0), y - y.mean(0)
    tr = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    d = x.mean(0) - y.mean(0)
    return d @ d + np.trace(np.cov(x, rowvar=False)) + np.trace(np.cov(y, rowvar=False)) - 2 * tr


def test_equals_scipy_sqrtm_when_well_conditioned():
    x, y = gaussians(500, 400, 32)
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean)
    r = frechet_distance(mu1, s1, mu2, s2)
    assert r.value == pytest.approx(expected, rel=1e-10)
    assert r.value == pytest.approx(exact_fid(x, y), rel=1e-10)
    assert r.diagnostics["rank_cov1"] == 32


def test_identical_statistics_give_zero():
    x, _ = gaussians(100, 10, 16)
    mu, s = x.mean(0), np.cov(x, rowvar=False)
    assert frechet_distance(mu, s, mu, s).value == pytest.approx(0.0, abs=1e-10)


def test_fewer_images_than_dimensions_is_exact_and_real():
    """n < D: singular covariances. scipy's sqrtm returns a complex matrix here; ours stays
    real, the low-rank path is exact and the full path is close, with its noise reported."""
    x, y = gaussians(20, 30, 256, seed=1)
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    exact = exact_fid(x, y)
    low = frechet_distance_low_rank(x, mu2, s2)
    full = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(low.value, float) and isinstance(full.value, float)
    assert low.value == pytest.approx(exact, rel=1e-9)
    assert full.value == pytest.approx(exact, rel=1e-4)
    assert full.diagnostics["rank_cov1"] == 19
    assert np.iscomplexobj(linalg.sqrtm(s1 @ s2))  # what the libraries have to clean up


def test_near_singular_covariances_stay_finite():
    """Covariances with eigenvalues spanning 1e-14..1: no NaN, no complex, >= 0."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(64, 64)))
    s1 = (q * np.logspace(-14, 0, 64)) @ q.T
    s2 = (q * np.logspace(0, -14, 64)) @ q.T
    r = frechet_distance(np.zeros(64), s1, np.zeros(64), s2)
    assert np.isfinite(r.value) and r.value >= 0
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.logspace(-14, 0, 64) *
                                                         np.logspace(0, -14, 64)).sum()
    assert r.value == pytest.approx(expected, rel=1e-8)


def test_running_stats_equal_two_pass_numpy_despite_a_large_offset():
    """Features far from 0 (mean 1e4, spread 1): a naive sum(x x^T) - n mu mu^T would lose
    ~8 digits; the shifted sums do not."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 8)) + 1e4
    rs = RunningStats(8)
    for i in range(0, 300, 7):
        rs.update(x[i:i + 7])
    st = rs.finalize()
    np.testing.assert_allclose(st.mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)


def test_reliability_and_too_few_images():
    assert reliability(3000, 3000, 2048) == []
    assert len(reliability(100, 3000, 2048)) == 1
    fid = FID(CleanFIDInception())
    fid.prepare({"inception_clean_fid": None})
    fid.update(np.ones((1, 2048), np.float32), real=False)
    fid.update(np.random.default_rng(0).random((5, 2048), np.float32), real=True)
    with pytest.raises(EvalsuiteError, match="at least 2 generated images, got 1"):
        fid.compute()


def test_fid_metric_uses_exact_low_rank_path_and_records_why_unreliable():
    x, y = gaussians(30, 40, 2048, seed=4)
    fid = FID(CleanFIDInception())
    fid.prepare({"inception_clean_fid": None})
    fid.update(x.astype(np.float32), real=False)
    fid.update(y.astype(np.float32), real=True)
    r = fid.compute()
    assert r.value == pytest.approx(exact_fid(x.astype(np.float32).astype(np.float64),
                                              y.astype(np.float32).astype(np.float64)), rel=1e-6)
    assert r.settings["reliable"] is False and len(r.settings["unreliable_because"]) == 2
    assert r.settings["numerics"]["method"].startswith("low rank")
    assert r.weights == {"file": None, "random_init": True, "seed": 0, "verified": False}
