"""CMMD: the MMD is google-research/cmmd's distance.py (transcribed to numpy below, float64),
the preprocessing is its io_util.py (centre crop + PIL bicubic), embeddings L2-normalised.
Tolerance 1e-12 relative (same formula, different summation order)."""

import numpy as np
import pytest
from PIL import Image

from evalsuite.features.resize import CLIP_MEAN, CLIP_STD, cmmd_bicubic
from evalsuite.features.standins import photo_crops, register_tiny_clip
from evalsuite.metrics.cmmd import CMMD
from evalsuite.metrics.functional.mmd import mmd_rbf, mmd_rbf_bootstrap


def reference_mmd(x, y, sigma=10, scale=1000):
    """google-research/cmmd distance.py, line by line in numpy."""
    x_sq, y_sq = np.diag(x @ x.T), np.diag(y @ y.T)
    gamma = 1 / (2 * sigma ** 2)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


def unit(rng, n, d):
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_mmd_equals_cmmd_reference_blockwise():
    rng = np.random.default_rng(0)
    x, y = unit(rng, 70, 24), unit(rng, 50, 24) + 0.05
    expected = reference_mmd(x, y)
    assert mmd_rbf(x, y) == pytest.approx(expected, rel=1e-12)
    assert mmd_rbf(x, y, block=16) == pytest.approx(expected, rel=1e-12)
    assert mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)


def test_mmd_bootstrap_equals_recomputation_on_the_resample():
    rng = np.random.default_rng(1)
    x, y = unit(rng, 30, 8), unit(rng, 20, 8)
    counts = rng.multinomial(30, np.full(30, 1 / 30), size=3)
    fast = mmd_rbf_bootstrap(x, y, counts, block=7)
    slow = [reference_mmd(np.repeat(x, c, axis=0), y) for c in counts]
    np.testing.assert_allclose(fast, slow, rtol=1e-10)


def test_preprocessing_is_cmmd_io_util():
    im = photo_crops(1, 50, seed=3)[0][:, 5:45]  # 50 x 40: not square
    pil = Image.fromarray(im)
    w, h = pil.size
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    ref = np.asarray(pil.crop((left, top, left + side, top + side))
                     .resize((32, 32), resample=Image.BICUBIC)).astype(np.float32) / 255.0
    ref = ((ref - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)
    np.testing.assert_allclose(cmmd_bicubic(im, 32), ref, rtol=1e-6, atol=1e-6)


def test_cmmd_metric_on_images_with_a_tiny_clip():
    name = register_tiny_clip()
    m = CMMD(model_name=name, pretrained="test")
    m.prepare({m.required_assets()[0]: None})
    gen, ref = photo_crops(6, 40, seed=1, noise=40), photo_crops(5, 40, seed=2)
    fg, fr = m.extractor(list(gen)), m.extractor(list(ref))
    np.testing.assert_allclose(np.linalg.norm(fg, axis=1), 1.0, rtol=1e-5)
    m.update(fg, real=False)
    m.update(fr, real=True)
    r = m.compute()
    assert r.value == pytest.approx(reference_mmd(fg.astype(np.float64), fr.astype(np.float64)),
                                    rel=1e-9)
    assert r.settings["sigma"] == 10 and r.settings["scale"] == 1000
    assert r.settings["features"]["resolution"] == 32 and r.n == 6
