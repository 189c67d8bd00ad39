"""ImageReward: parity with the image-reward package's own code.

``tests/data/imagereward_reference.npz`` holds a tiny seeded stand-in model in
``ImageReward.pt``'s format and the package's outputs on it (``ImageReward.score(prompt, PIL
image)`` per pair, the tokenizer's ids, ``preprocess``'s tensors, the MLP's input), produced by
running the unmodified image-reward 1.5 modules (timm 0.6.13, fairscale, transformers 4.46) at
small sizes: ``benchmarks/imagereward_reference.py`` says exactly how, and reruns it. Here the
same files go through evalsuite's loader (checkpoint key mapping onto transformers' BLIP
classes, med_config, vocabulary): token ids and pixels are equal, rewards agree to 1e-5
(measured, float32: 0 one pair at a time as the package scores, 5e-7 in a batch of 5)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite import assets
from evalsuite.assets import ResolvedAsset
from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.features import blip
from evalsuite.features.standins import photo_crops
from evalsuite.metrics.bootstrap import per_item_values, supports_bootstrap
from evalsuite.metrics.imagereward import (IMAGEREWARD_ASSET, MED_CONFIG_ASSET, VOCAB_ASSET,
                                           ImageReward)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "imagereward_reference.npz"


@pytest.fixture(scope="module")
def reference():
    return np.load(FIXTURE)


@pytest.fixture(scope="module")
def files(reference, tmp_path_factory):
    """The fixture's model as the three asset files, in their upstream formats."""
    folder = tmp_path_factory.mktemp("imagereward")
    state = {k[len("state/"):]: torch.from_numpy(reference[k].copy())
             for k in reference.files if k.startswith("state/")}
    torch.save(state, folder / "ImageReward.pt")
    (folder / "imagereward_med_config.json").write_text(str(reference["med_config"]))
    (folder / "bert-base-uncased-vocab.txt").write_text("\n".join(reference["vocab"]) + "\n")
    return folder


def _found(folder: Path) -> dict[str, ResolvedAsset]:
    return {IMAGEREWARD_ASSET: ResolvedAsset(folder / "ImageReward.pt", "s", False, "stand-in"),
            MED_CONFIG_ASSET: ResolvedAsset(folder / "imagereward_med_config.json", "s", False),
            VOCAB_ASSET: ResolvedAsset(folder / "bert-base-uncased-vocab.txt", "s", False)}


def _images(reference) -> list[np.ndarray]:
    return [reference[f"image/{i}"] for i in range(len(reference["prompts"]))]


def test_tokenizer_and_preprocessing_equal_the_package(reference, files):
    tok = blip.build_tokenizer(str(files / "bert-base-uncased-vocab.txt"))
    out = tok(reference["prompts"].tolist(), padding="max_length", truncation=True,
              max_length=blip.MAX_TOKENS)
    np.testing.assert_array_equal(out["input_ids"], reference["input_ids"])
    np.testing.assert_array_equal(out["attention_mask"], reference["attention_mask"])
    assert reference["attention_mask"][-1].all()  # the long prompt was truncated to 35
    pixels = np.stack([blip.preprocess(im, 32).numpy() for im in _images(reference)])
    np.testing.assert_array_equal(pixels, reference["pixels"])  # non-square sizes included


def test_rewards_equal_the_package(reference, files):
    m = ImageReward(arch="tiny")
    m.prepare(_found(files))
    for image, prompt in zip(_images(reference), reference["prompts"].tolist()):
        m.update(image[None], [prompt])  # the images differ in size
    r = m.compute()
    np.testing.assert_allclose(m.item_values(), reference["rewards"], rtol=0, atol=1e-5)
    assert r.value == pytest.approx(reference["rewards"].mean(), abs=1e-5) and r.n == 5
    assert supports_bootstrap(m) and len(per_item_values(m)) == 5
    assert r.weights["verified"] is False and r.weights["file"].endswith("ImageReward.pt")
    assert r.weights["text_files"][VOCAB_ASSET]["file"].endswith("vocab.txt")
    assert "35" in r.settings["tokenizer"] and "CenterCrop" in r.settings["preprocess"]


def test_text_features_equal_the_package(reference, files):
    """The MLP's input (token 0 after the cross-attention encoder), before the head."""
    m = ImageReward(arch="tiny")
    m.prepare(_found(files))
    net = m._model
    feats = []
    net.head.register_forward_hook(lambda mod, args, out: feats.append(args[0]))
    pix = torch.stack([blip.preprocess(im, 32) for im in _images(reference)])
    with torch.no_grad():
        net(pix, torch.from_numpy(reference["input_ids"]),
            torch.from_numpy(reference["attention_mask"]))
    np.testing.assert_allclose(feats[0].numpy(), reference["features"], rtol=0, atol=1e-5)


def test_batches_of_one_image_size_match_single_pairs(reference, files):
    m = ImageReward(arch="tiny")
    m.prepare(_found(files))
    images = photo_crops(3, 40, seed=3, noise=20)
    m.update(images, ["a red cube", "two dogs", "a cat"])
    batched = m.item_values()
    m.reset()
    for im, p in zip(images, ["a red cube", "two dogs", "a cat"]):
        m.update(im[None], [p])
    np.testing.assert_allclose(m.item_values(), batched, rtol=0, atol=1e-5)


def test_extra_tensors_are_recorded_missing_ones_refused(files, tmp_path):
    state = torch.load(files / "ImageReward.pt", weights_only=True)
    state["blip.itm_head.weight"] = torch.zeros(2, 16)  # unused: ignored, as the package does
    torch.save(state, tmp_path / "ImageReward.pt")
    found = {**_found(files),
             IMAGEREWARD_ASSET: ResolvedAsset(tmp_path / "ImageReward.pt", "s", False)}
    m = ImageReward(arch="tiny")
    m.prepare(found)
    m.update(photo_crops(1, 32, seed=2), ["a cat"])
    assert m.compute().weights["ignored_tensors"] == {
        "count": 1, "first": ["blip.itm_head.weight"]}
    del state["mlp.layers.7.bias"]  # a tensor the score needs (the package would keep it random)
    torch.save(state, tmp_path / "ImageReward.pt")
    with pytest.raises(EvalsuiteError, match=r"missing \['head.7.bias'\]"):
        ImageReward(arch="tiny").prepare(found)
    med = json.loads((files / "imagereward_med_config.json").read_text())
    (tmp_path / "med.json").write_text(json.dumps({**med, "intermediate_size": 64}))
    found = {**_found(files), MED_CONFIG_ASSET: ResolvedAsset(tmp_path / "med.json", "s", False)}
    with pytest.raises(EvalsuiteError, match="does not fit"):  # right keys, wrong shapes
        ImageReward(arch="tiny").prepare(found)


def test_missing_files_are_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ImageReward().required_assets():
        with pytest.raises(MissingAssetError) as e:
            assets.resolve(name, tmp_path / "assets")
        asset = assets.get(name)
        assert asset.filename in str(e.value) and asset.url in str(e.value)
        assert asset.sha256 is None and asset.sha256_prefix is None  # none is published


def test_registry_entries():
    w = assets.get(IMAGEREWARD_ASSET)
    assert w.filename == "ImageReward.pt"
    assert w.url == "https://huggingface.co/THUDM/ImageReward/resolve/main/ImageReward.pt"
    assert assets.get(MED_CONFIG_ASSET).url.endswith("THUDM/ImageReward/resolve/main/"
                                                     "med_config.json")
    assert assets.get(VOCAB_ASSET).url.endswith("bert-base-uncased/resolve/main/vocab.txt")


def test_random_weights_are_recorded_and_run_offline():
    m = ImageReward(arch="tiny")
    m.prepare({IMAGEREWARD_ASSET: None, MED_CONFIG_ASSET: None, VOCAB_ASSET: None})
    m.update(photo_crops(2, 48, seed=1), ["a cat", "Two Dogs!"])
    r = m.compute()
    assert r.weights["random_init"] is True and r.weights["verified"] is False
    text = r.weights["text_files"]
    assert text[MED_CONFIG_ASSET]["file"] is None and "builtin" in text[MED_CONFIG_ASSET]
    assert text[VOCAB_ASSET]["file"] is None and "standin" in text[VOCAB_ASSET]
    assert np.isfinite(m.item_values()).all() and r.n == 2


def test_builtin_med_config_is_blips():
    med = blip.BUILTIN_MED_CONFIGS["ViT-L-16"]
    cfg = blip.text_config(med, 1024)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size, cfg.encoder_hidden_size,
            cfg.layer_norm_eps) == (768, 12, 30524, 1024, 1e-12)
    assert blip.vision_config("ViT-L-16").layer_norm_eps == 1e-6
    with pytest.raises(EvalsuiteError, match="add_cross_attention"):
        blip.text_config({**med, "add_cross_attention": False}, 1024)


def test_listed_in_readme_and_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^\| `imagereward` \| samples \+ prompts \|", readme, re.M)
    for name in (IMAGEREWARD_ASSET, MED_CONFIG_ASSET, VOCAB_ASSET):
        assert f"| `{name}` |" in readme
    for conf in ("preference.yaml", "imagereward.yaml"):
        text = (ROOT / "conf" / "metrics" / conf).read_text(encoding="utf-8")
        assert "evalsuite.metrics.imagereward.ImageReward" in text
    assert json.loads(str(np.load(FIXTURE)["tiny"]))["mlp"] == list(blip.ARCHS["tiny"]["head"])


def test_the_real_checkpoint_layout_maps_onto_the_network(reference):
    """Every tensor of the package's real-size model (ViT-L/16 + BERT-base + 768-1024-128-64-16-1
    MLP, its names and shapes in the fixture) lands on a tensor of the same shape here."""
    full = json.loads(str(reference["full_shapes"]))
    assert len(full) > 600 and full["blip.visual_encoder.pos_embed"] == [1, 197, 1024]
    mapped, ignored = blip.checkpoint_to_model({k: tuple(v) for k, v in full.items()})
    assert ignored == []
    with torch.device("meta"):
        net = blip.build_network("ViT-L-16", blip.BUILTIN_MED_CONFIGS["ViT-L-16"])
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    ours.pop("text.embeddings.position_ids", None)  # a buffer, not in the checkpoint
    assert mapped == ours
