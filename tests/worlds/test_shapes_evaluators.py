"""Calibration of the shipped shapes evaluators: checks that their numbers mean something.

On held-out (val/test split) renders: the attribute checker reads every attribute >= 98%;
fd_shapes of test vs. val renders is small and grows strictly with Gaussian blur and with
additive noise (Spearman 1); the CLIP-score analogue prefers matched over shuffled prompts on
>= 95% of images. The weights are the files shipped in the package, found through the asset
registry with their sha256 verified.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from evalsuite import assets
from evalsuite.metrics.bootstrap import per_item_values
from evalsuite.metrics.shapes import ShapesAttributeAccuracy, ShapesCLIPScore, ShapesFD
from evalsuite.worlds.shapes import scoring
from evalsuite.worlds.shapes.nets import load_net
from evalsuite.worlds.shapes.splits import split_items
from evalsuite.worlds.shapes.world import render

N = 400


def _resolve(name: str, tmp_path) -> assets.ResolvedAsset:
    found = assets.resolve(name, tmp_path / "empty-assets-dir")  # falls back to the package
    assert found.verified
    return found


def _renders(split: str, n: int = N) -> tuple[np.ndarray, list[str]]:
    items = split_items(split, n)
    return np.stack([render(it.scene, 64, it.seed) for it in items]), [it.caption for it in items]


def _fd(metric: ShapesFD, gen: np.ndarray, ref_feats: np.ndarray) -> float:
    metric.reset()
    metric.update(metric.extractor(list(gen)), real=False)
    metric.update(ref_feats, real=True)
    return metric.compute().value


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return images
    out = gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma, 0), mode="nearest")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _noise(images: np.ndarray, std: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = images + rng.normal(0.0, std, images.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _collapsed(**attrs: str) -> np.ndarray:
    """Test-split renders with one attribute of every object forced to one value."""
    out = []
    for it in split_items("test", N):
        objects = tuple(dataclasses.replace(o, **attrs) for o in it.scene.objects)
        out.append(render(dataclasses.replace(it.scene, objects=objects), 64, it.seed))
    return np.stack(out)


@pytest.fixture(scope="module")
def val_and_test():
    return _renders("val"), _renders("test")


def test_checker_reads_every_attribute_on_held_out_renders(tmp_path, val_and_test):
    (images, captions), _ = val_and_test
    metric = ShapesAttributeAccuracy()
    metric.prepare({"shapes_checker": _resolve("shapes_checker", tmp_path)})
    metric.update(images, captions)
    result = metric.compute()
    overall = result.settings["breakdown"]["overall"]
    for attr in ("shape", "colour", "size", "position", "count", "relation"):
        assert overall[attr]["accuracy"] >= 0.98, (attr, overall[attr])
    assert set(result.settings["breakdown"]) == {"overall", "one_object", "two_objects"}
    assert result.value >= 0.95 and result.weights["verified"]
    # Per-image pass/fail (for per-category tables and paired intervals) average to the value.
    passed = per_item_values(metric)
    assert passed is not None and len(passed) == len(images) and set(passed) <= {0.0, 1.0}
    assert passed.mean() == pytest.approx(result.value, abs=1e-12)

    metric.reset()  # the same images against other images' prompts: mostly wrong
    metric.update(images, captions[1:] + captions[:1])
    assert metric.compute().value < 0.1
    assert per_item_values(metric).mean() < 0.1


def test_fd_shapes_is_small_between_splits_and_grows_with_blur_and_noise(tmp_path, val_and_test):
    (val, _), (test, _) = val_and_test
    metric = ShapesFD()
    metric.prepare({"shapes_image_encoder": _resolve("shapes_image_encoder", tmp_path)})
    ref = metric.extractor(list(val))
    blur = [_fd(metric, _blur(test, s), ref) for s in (0, 1, 2, 3)]
    noise = [_fd(metric, _noise(test, s), ref) for s in (0, 16, 32, 48)]
    assert all(a < b for a, b in zip(blur, blur[1:])), blur  # strictly increasing: Spearman 1
    assert all(a < b for a, b in zip(noise, noise[1:])), noise
    assert blur[0] == noise[0]
    # Small: another split's renders are far closer than a collapsed world (every object a
    # circle, or red, or small: the same scenes otherwise).
    collapsed = [_fd(metric, _collapsed(**kw), ref)
                 for kw in ({"shape": "circle"}, {"colour": "red"}, {"size": "small"})]
    assert blur[0] < 0.3 * min(collapsed), (blur[0], collapsed)


def test_clip_analogue_prefers_matched_prompts(tmp_path, val_and_test):
    _, (images, captions) = val_and_test
    image_net = load_net("image_encoder", _resolve("shapes_image_encoder", tmp_path).path)
    text_net = load_net("text_encoder", _resolve("shapes_text_encoder", tmp_path).path)
    r = scoring.matched_vs_shuffled(scoring.embed_images(image_net, images),
                                    scoring.embed_texts(text_net, captions))
    assert r["wins"] >= 0.95 and r["matched"] > r["shuffled"]

    metric = ShapesCLIPScore()
    metric.prepare({name: _resolve(name, tmp_path)
                    for name in ("shapes_image_encoder", "shapes_text_encoder")})
    metric.update(images, captions)
    matched = metric.compute().value
    metric.reset()
    metric.update(images, captions[::-1])
    assert matched > metric.compute().value + 0.2
    assert abs(matched - r["matched"]) < 1e-5
    assert per_item_values(metric).mean() == pytest.approx(metric.compute().value, abs=1e-12)


def test_registry_digests_are_the_training_logs():
    import json
    from importlib import resources

    weights = resources.files("evalsuite.worlds.shapes") / "weights"
    log = json.loads((weights / "train_log.json").read_text())
    for fname, digest in log["sha256"].items():
        assert assets.get(fname.removesuffix(".safetensors")).sha256 == digest
    for kind, acc in log["val"]["checker"].items():
        assert acc["accuracy"] >= 0.98, (kind, acc)  # the training log's own val numbers
