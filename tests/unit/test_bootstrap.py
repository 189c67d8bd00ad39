"""Bootstrap intervals: reproducible, n resamples recorded, equal to a direct recomputation."""

import numpy as np
import pytest

from evalsuite.features.inception import CleanFIDInception
from evalsuite.metrics.bootstrap import bootstrap_ci, resample_counts
from evalsuite.metrics.fid import FID
from evalsuite.metrics.functional.frechet import frechet_distance_low_rank
from evalsuite.metrics.pixel import PSNR


def test_psnr_bootstrap_is_reproducible_and_recomputes_the_mean():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    b[0] = a[0]  # one identical pair: inf PSNR, left out of every mean
    m = PSNR()
    m.update(b, a)
    r = m.compute()
    ci = bootstrap_ci(m, r.n, 50, seed=3)
    assert ci == bootstrap_ci(m, r.n, 50, seed=3)
    assert ci["n_resamples"] == 50 and ci["seed"] == 3 and ci["level"] == 0.95
    assert ci["low"] < r.value < ci["high"]
    counts = resample_counts(12, 50, 3)
    v = np.asarray(m._values)
    direct = [np.mean(np.repeat(v, c)[np.isfinite(np.repeat(v, c))]) for c in counts]
    assert ci["mean"] == pytest.approx(np.mean(direct), rel=1e-12)


def test_fid_bootstrap_recomputes_fid_on_each_resample():
    rng = np.random.default_rng(1)
    x, y = rng.random((20, 2048), np.float32), rng.random((25, 2048), np.float32) + 0.01
    fid = FID(CleanFIDInception())
    fid.prepare({"inception_clean_fid": None})
    fid.update(x, real=False)
    fid.update(y, real=True)
    counts = resample_counts(20, 4, 0)
    ref = fid._ref.finalize()
    expected = [frechet_distance_low_rank(np.repeat(x, c, axis=0), ref.mu, ref.cov).value
                for c in counts]
    np.testing.assert_allclose(fid.bootstrap_values(counts), expected, rtol=1e-12)
