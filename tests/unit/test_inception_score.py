"""Inception Score: parity with torch-fidelity (0.4) on identical inputs, offline.

- functional: our float64 IS of given logits vs ``torch_fidelity.metric_isc.
  isc_features_to_metric`` (same shuffle, splits, softmax): relative 1e-12;
- extractor: torch-fidelity's ``FeatureExtractorInceptionV3`` and ours loaded from the same
  seeded stand-in weight file (its format: pytorch-fid's state dict, 566 tensors): logits equal
  to 1e-5 (bit-equal on this machine), and its whole ``calculate_metrics(isc=True)`` on a PNG
  folder equals our metric to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evalsuite.assets import ResolvedAsset
from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import evaluate
from evalsuite.features.inception_logits import TORCH_FIDELITY_ASSET, tf1_bilinear
from evalsuite.features.standins import photo_crops, save_pytorch_fid_standin, write_folder
from evalsuite.metrics.functional.inception_score import inception_score
from evalsuite.metrics.inception_score import InceptionScore
from evalsuite.produce import manifest_entries
from evalsuite.samples.store import SampleStore

torch_fidelity = pytest.importorskip("torch_fidelity")


@pytest.mark.parametrize("n,splits,shuffle", [(103, 10, True), (40, 4, False), (10, 10, True)])
def test_functional_equals_torch_fidelity(n, splits, shuffle):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(n).normal(0, 4, (n, 1008)).astype(np.float32)
    ref = isc_features_to_metric(torch.from_numpy(logits), splits, shuffle, 2020)
    ours = inception_score(logits, splits, shuffle, 2020)
    assert ours.mean == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert ours.std == pytest.approx(ref["inception_score_std"], rel=1e-9, abs=1e-12)
    assert len(ours.scores) == splits


def test_score_bounds_one_and_number_of_classes():
    one_class = np.tile(np.eye(8)[0] * 50, (20, 1))  # every image sure of the same class
    assert inception_score(one_class, 2).mean == pytest.approx(1.0, abs=1e-9)
    distinct = np.eye(8)[np.arange(16) % 8] * 50  # sure and uniformly spread: IS = C
    assert inception_score(distinct, 2, shuffle=False).mean == pytest.approx(8.0, rel=1e-6)
    with pytest.raises(ValueError):
        inception_score(one_class[:3], splits=10)


def test_tf1_resize_equals_torch_fidelity():
    from torch_fidelity.interpolate_compat_tensorflow import \
        interpolate_bilinear_2d_like_tensorflow1x as tf1

    for im in (photo_crops(1, 37, seed=2)[0], photo_crops(1, 320, seed=3)[0][:, :300]):
        x = torch.from_numpy(im.transpose(2, 0, 1).copy()).float()[None]
        ref = tf1(x, size=(299, 299), align_corners=False)[0].numpy()
        np.testing.assert_array_equal(tf1_bilinear(im), ref)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """A stand-in weight file, 12 images and their PNG folder."""
    tmp = tmp_path_factory.mktemp("isc")
    weights = save_pytorch_fid_standin(tmp / "weights-inception.pth", seed=0)
    images = photo_crops(12, 48, seed=1, noise=30)
    return weights, images, write_folder(tmp / "images", images)


def _metric(weights, **kw) -> InceptionScore:
    m = InceptionScore(**kw)
    m.prepare({TORCH_FIDELITY_ASSET: ResolvedAsset(weights, "stand-in", False, "stand-in")})
    return m


def test_logits_and_score_equal_torch_fidelity(standin):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    weights, images, folder = standin
    m = _metric(weights, splits=3)
    logits = m.extractor(list(images))
    fe = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"],
                                     feature_extractor_weights_path=str(weights))
    with torch.no_grad():
        ref = fe(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))[0].numpy()
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)
    m.update(logits)
    r = m.compute()
    ref_is = torch_fidelity.calculate_metrics(
        input1=str(folder), isc=True, isc_splits=3, cuda=False, cache=False, verbose=False,
        feature_extractor_weights_path=str(weights), batch_size=12)
    assert r.value == pytest.approx(ref_is["inception_score_mean"], rel=1e-9)
    assert r.settings["std_over_splits"] == pytest.approx(ref_is["inception_score_std"],
                                                          rel=1e-6, abs=1e-12)
    assert r.settings["splits"] == 3 and r.settings["seed"] == 2020 and r.n == 12
    assert r.weights["verified"] is False and r.higher_is_better


def test_runs_without_a_reference_set_and_bootstraps(standin, tmp_path):
    weights, images, _ = standin
    prompts = PromptSet("t", tuple(Prompt(f"p{i}", f"prompt {i}") for i in range(12)), "test")
    store = SampleStore(tmp_path / "s", {"test": 1})
    store.open()
    entries = manifest_entries(prompts, 0)
    for e, im in zip(entries, images):
        store.write(e["id"], im, {"prompt": e["text"], "seed": e["seed"]})
    store.write_manifest(entries)
    assets_dir = weights.parent
    weights.rename(assets_dir / "weights-inception-2015-12-05-6726825d.pth")
    try:
        res = evaluate(prompts, store, {"inception_score": lambda: InceptionScore(splits=3)},
                       assets_dir=str(assets_dir), verify_assets=False, batch_size=8,
                       bootstrap=5)
    finally:
        (assets_dir / "weights-inception-2015-12-05-6726825d.pth").rename(weights)
    value = res.metrics["inception_score"]
    assert value["n"] == 12 and value["weights"]["sha256"] and not value["weights"]["verified"]
    assert value["ci"]["n_resamples"] == 5 and value["ci"]["low"] <= value["ci"]["high"]
    assert value["value"] >= 1.0


def test_too_few_images_and_reference_features_are_refused():
    m = InceptionScore(splits=10)
    m.update(np.zeros((5, 1008), np.float32))
    with pytest.raises(EvalsuiteError, match="at least 10"):
        m.compute()
    with pytest.raises(ValueError, match="no reference"):
        m.update(np.zeros((5, 1008), np.float32), real=True)
