"""LAION aesthetic predictor v2: parity with improved-aesthetic-predictor's simple_inference.py
(transcribed below: CLIP's own preprocess, ``encode_image``, numpy L2 normalisation, the
published ``MLP.layers``) on the same stand-in CLIP and head files, square images: ratings
equal to 1e-5; and one shared CLIP pass with CMMD (the encoder's forwards are counted).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from evalsuite.assets import ResolvedAsset, open_clip_asset_name
from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.evaluate import evaluate
from evalsuite.features.standins import photo_crops, register_tiny_clip, save_open_clip_standin
from evalsuite.features.sources import ArraySource
from evalsuite.metrics.aesthetic import HEAD_ASSET, AestheticScore, save_aesthetic_head_standin
from evalsuite.metrics.cmmd import CMMD
from evalsuite.produce import manifest_entries
from evalsuite.samples.store import SampleStore


class ReferenceMLP(nn.Module):
    """improved-aesthetic-predictor's MLP (the LightningModule's ``layers``)."""

    def __init__(self, input_size):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(input_size, 1024), nn.Dropout(0.2),
                                    nn.Linear(1024, 128), nn.Dropout(0.2), nn.Linear(128, 64),
                                    nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x):
        return self.layers(x)


def normalized(a, axis=-1, order=2):
    l2 = np.atleast_1d(np.linalg.norm(a, order, axis))
    l2[l2 == 0] = 1
    return a / np.expand_dims(l2, axis)


def reference_ratings(clip_file, head_file, model_name, images):
    """simple_inference.py with open_clip in place of OpenAI's clip package (same model,
    same preprocess: resize shorter side bicubic, centre crop, CLIP mean/std)."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
    model.load_state_dict(torch.load(clip_file, weights_only=True))
    mlp = ReferenceMLP(model.visual.output_dim)
    mlp.load_state_dict(torch.load(head_file, weights_only=True))
    out = []
    with torch.no_grad():
        for im in images:
            feats = model.eval().encode_image(preprocess(Image.fromarray(im)).unsqueeze(0))
            emb = normalized(feats.cpu().numpy())
            out.append(mlp.eval()(torch.from_numpy(emb).float()).item())
    return np.array(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    name = register_tiny_clip()
    tmp = tmp_path_factory.mktemp("aesthetic")
    clip = save_open_clip_standin(tmp / f"{open_clip_asset_name(name, 'test')}.bin", name, "test")
    head = save_aesthetic_head_standin(tmp / "sac+logos+ava1-l14-linearMSE.pth", dims=32)
    return name, clip, head


def _metric(files) -> AestheticScore:
    name, clip, head = files
    m = AestheticScore(model_name=name, pretrained="test")
    m.prepare({open_clip_asset_name(name, "test"): ResolvedAsset(clip, "c", False),
               HEAD_ASSET: ResolvedAsset(head, "h", False)})
    return m


def test_ratings_equal_the_published_inference_on_square_images(files):
    name, clip, head = files
    images = photo_crops(6, 48, seed=3, noise=20)
    m = _metric(files)
    m.update(m.extractor(list(images)))
    r = m.compute()
    ref = reference_ratings(clip, head, name, images)
    assert np.ptp(ref) > 1e-3  # the stand-in head tells the images apart
    np.testing.assert_allclose(m.item_values(), ref, rtol=1e-5, atol=1e-5)
    assert r.value == pytest.approx(ref.mean(), rel=1e-5) and r.n == 6 and r.higher_is_better
    assert set(r.weights) == {open_clip_asset_name(name, "test"), HEAD_ASSET}
    assert "sac+logos+ava1" in r.settings["predictor"]


def _store(root, prompts, images):
    store = SampleStore(root, {"test": 1})
    store.open()
    entries = manifest_entries(prompts, 0)
    for e, im in zip(entries, images):
        store.write(e["id"], im, {"prompt": e["text"], "seed": e["seed"]})
    store.write_manifest(entries)
    return store


def test_sharing_the_clip_pass_with_cmmd_costs_only_the_head(files, tmp_path, monkeypatch):
    import open_clip

    name, clip, head = files
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / clip.name).symlink_to(clip)
    (assets / head.name).symlink_to(head)
    n = 8
    prompts = PromptSet("t", tuple(Prompt(f"p{i}", f"prompt {i}", {"category": "ab"[i % 2]})
                                   for i in range(n)), "test")
    store = _store(tmp_path / "s", prompts, photo_crops(n, 40, seed=5, noise=30))
    ref = ArraySource("ref", [f"r{i}" for i in range(n)], photo_crops(n, 40, seed=6),
                      {"name": "ref"})
    calls = []
    real = open_clip.model.CLIP.encode_image
    monkeypatch.setattr(open_clip.model.CLIP, "encode_image",
                        lambda self, x, **kw: calls.append(len(x)) or real(self, x, **kw))

    def run(metrics):
        calls.clear()
        res = evaluate(prompts, store, metrics, reference=ref, assets_dir=str(assets),
                       verify_assets=False, batch_size=8, bootstrap=10)
        return res, len(calls)

    cmmd = lambda: CMMD(model_name=name, pretrained="test")  # noqa: E731
    aesthetic = lambda: AestheticScore(model_name=name, pretrained="test")  # noqa: E731
    _, alone = run({"cmmd": cmmd})
    res, both = run({"cmmd": cmmd, "laion_aesthetic": aesthetic})
    assert alone == both == 2  # one micro-batch of 8 per image set, shared by both metrics
    value = res.metrics["laion_aesthetic"]
    assert value["per_image"]["n"] == n and value["per_image"]["categories"]["names"] == ["a", "b"]
    assert np.mean(value["per_image"]["values"]) == pytest.approx(value["value"], abs=1e-5)
    assert value["ci"]["low"] <= value["value"] <= value["ci"]["high"]
    _, only = run({"laion_aesthetic": aesthetic})  # alone: the samples only, no reference
    assert only == 1
