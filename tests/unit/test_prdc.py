"""Precision / recall / density / coverage: parity with the ``prdc`` package, and that they
separate fidelity from diversity on constructed feature sets."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.errors import EvalsuiteError
from evalsuite.metrics.functional.prdc import knn_radii, prdc
from evalsuite.metrics.prdc import Coverage, Density, Precision, Recall

# Parity tolerance: both count strict '<' comparisons of the same distances; prdc's are
# float32 (sklearn), ours float64, so a comparison may flip only on a near-tie. Random
# Gaussian features have none at this size: we require equality to 1e-12.
TOL = 1e-12


def _features(seed: int, n: int, dim: int = 64, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) * scale + shift).astype(np.float32)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("n_real, n_fake", [(300, 300), (500, 240)])
def test_parity_with_the_prdc_package(k, n_real, n_fake, capsys):
    compute_prdc = pytest.importorskip("prdc").compute_prdc
    real, fake = _features(0, n_real), _features(1, n_fake, shift=0.1, scale=1.1)
    ref = compute_prdc(real, fake, k)
    ours = prdc(real, fake, k)
    for key in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, key) == pytest.approx(float(ref[key]), abs=TOL), key
    assert ours.k == k


def test_blocks_do_not_change_the_values(monkeypatch):
    import evalsuite.metrics.functional.prdc as functional

    real, fake = _features(2, 130), _features(3, 70, shift=0.3)
    whole = prdc(real, fake, 3)
    monkeypatch.setattr(functional, "BLOCK", 16)
    assert prdc(real, fake, 3) == whole


def test_knn_radius_excludes_the_sample_itself():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k\\+1"):
        knn_radii(x, 4)


def _modes(seed: int, n: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(centres), n)
    return centres[idx] + 0.3 * rng.standard_normal((n, centres.shape[1]))


def test_mode_collapse_and_noise_are_told_apart():
    centres = 6.0 * np.random.default_rng(9).standard_normal((10, 16))
    real = _modes(0, 600, centres)
    good = _modes(1, 600, centres)
    collapsed = _modes(2, 600, centres[:2])  # all samples from 2 of 10 modes
    noised = good + 1.5 * np.random.default_rng(3).standard_normal(good.shape)
    g, c, n = prdc(real, good, 5), prdc(real, collapsed, 5), prdc(real, noised, 5)
    assert g.precision > 0.85 and g.recall > 0.85 and g.coverage > 0.9 and 0.8 < g.density < 1.2
    # mode collapse: still realistic (high precision and density), far from diverse
    assert c.precision > 0.85 and c.density > 0.8 and c.recall < 0.3 and c.coverage < 0.3
    # noise: samples leave the real manifold (precision, density, coverage ~0). Recall stays
    # high, since the noised set's inflated k-NN balls swallow the real samples: the outlier
    # sensitivity that made Naeem et al. propose coverage.
    assert n.precision < 0.1 and n.density < 0.1 and n.coverage < 0.1 and n.recall > 0.9


def test_metric_classes_record_all_values_at_their_k():
    real, fake = _features(4, 200), _features(5, 150, shift=0.2)
    expected3, expected5 = prdc(real, fake, 3), prdc(real, fake, 5)
    for cls, exp in ((Precision, expected3), (Recall, expected3), (Density, expected5), (Coverage, expected5)):
        metric = cls()
        metric.prepare({name: None for name in metric.required_assets()})  # features given directly
        metric.update(fake[:100], real=False)
        metric.update(fake[100:], real=False)
        metric.update(real, real=True)
        result = metric.compute()
        assert result.value == getattr(exp, cls.name) and result.name == cls.name
        assert result.settings["nearest_k"] == exp.k and result.settings["values_at_k"] == exp.to_dict()
        assert result.settings["n_gen"] == 150 and result.settings["extractor"] == "inception_clean"


def test_bad_parameters_and_too_few_images_are_refused():
    with pytest.raises(EvalsuiteError, match="nearest_k"):
        Precision(nearest_k=0)
    with pytest.raises(EvalsuiteError, match="extractor"):
        Recall(extractor="dinov3")
    metric = Coverage()
    metric.update(_features(6, 5), real=False)
    metric.update(_features(7, 50), real=True)
    with pytest.raises(EvalsuiteError, match="at least 6 generated"):
        metric.compute()


@pytest.mark.slow
def test_run_with_metrics_prdc_shares_one_inception_pass_with_fid(tmp_path):
    """``evalsuite run metrics=prdc`` (tiny model, random Inception weights): one feature
    pass per image set serves FID and all four k-NN metrics (~60 s on 2 cores)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli", "run", "metrics=prdc",
                           "metrics.allow_random_weights=true", "threads=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("features to compute: samples:") == 1
    record = json.loads(next((tmp_path / "results" / "records").glob("*.json")).read_text())
    metrics = record["metrics"]
    assert {"fid_clean", "precision", "recall", "density", "coverage"} <= set(metrics)
    at3, at5 = metrics["precision"]["settings"]["values_at_k"], metrics["coverage"]["settings"]["values_at_k"]
    assert metrics["recall"]["value"] == at3["recall"] and metrics["density"]["value"] == at5["density"]
    assert all(0.0 <= metrics[m]["value"] <= 1.0 for m in ("precision", "recall", "coverage"))
