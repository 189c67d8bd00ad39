"""Parity of the pixel metrics and LPIPS with the reference implementations, and CLIP score's
definition. Tolerances are stated per test."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evalsuite.assets import ResolvedAsset
from evalsuite.data.reference import center_crop_resize
from evalsuite.errors import EvalsuiteError
from evalsuite.features.standins import register_tiny_clip, save_open_clip_standin
from evalsuite.metrics.clip_score import CLIPScore, scale_cosines
from evalsuite.metrics.lpips import ASSET, LPIPS
from evalsuite.metrics.pixel import PSNR, SSIM


@pytest.fixture(scope="module")
def pairs():
    """Real photographs and a noisy, blurred version of each (uint8, 64x64)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    imgs = np.stack([center_crop_resize(Image.fromarray(f()), 64)
                     for f in (data.astronaut, data.chelsea, data.coffee, data.rocket)])
    noisy = np.clip(imgs.astype(int) + rng.integers(-20, 21, imgs.shape), 0, 255).astype(np.uint8)
    return noisy, imgs


def test_psnr_equals_skimage_and_torchmetrics(pairs):
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

    preds, target = pairs
    m = PSNR()
    m.update(preds, target)
    ours = m.compute()
    sk = np.mean([peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(preds, target)])
    tm = np.mean([tm_psnr(torch.from_numpy(p).double(), torch.from_numpy(t).double(),
                          data_range=255.0).item() for p, t in zip(preds, target)])
    assert ours.value == pytest.approx(sk, rel=1e-12)
    assert ours.value == pytest.approx(tm, rel=1e-6)  # torchmetrics reduces in float32
    assert ours.n == 4 and ours.version == "1"


def test_ssim_equals_skimage_with_stated_settings(pairs):
    preds, target = pairs
    m = SSIM()
    m.update(preds[:2], target[:2])
    m.update(preds[2:], target[2:])  # accumulation across updates
    sk = np.mean([structural_similarity(t.astype(float), p.astype(float), channel_axis=-1,
                                        gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=255)
                  for p, t in zip(preds, target)])
    assert m.compute().value == pytest.approx(sk, abs=1e-12)
    assert 0.0 < sk < 1.0


def test_identical_images_give_inf_psnr_and_ssim_one(pairs):
    _, target = pairs
    p, s = PSNR(), SSIM()
    p.update(target, target), s.update(target, target)
    assert p.compute().value == float("inf")
    assert p.compute().settings["n_identical"] == 4
    assert s.compute().value == pytest.approx(1.0, abs=1e-12)


def test_paired_metrics_reject_mismatched_shapes(pairs):
    preds, target = pairs
    with pytest.raises(EvalsuiteError, match="shape"):
        PSNR().update(preds[:, :32], target)
    with pytest.raises(EvalsuiteError, match="no image pairs"):
        SSIM().compute()


def test_lpips_equals_lpips_package_with_the_same_backbone(pairs, tmp_path: Path):
    """Stand-in AlexNet weights (seeded random) loaded through our asset path vs. the package."""
    import lpips
    import torchvision

    torch.manual_seed(0)
    alex = torchvision.models.alexnet()
    weights = tmp_path / "alexnet.pth"
    torch.save(alex.state_dict(), weights)
    m = LPIPS()
    m.prepare({ASSET: ResolvedAsset(weights, "stand-in", verified=False)})
    preds, target = pairs
    m.update(preds, target)
    ours = m.compute().value

    ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    for name, block in ref.net.named_children():
        for idx, layer in block.named_children():
            for pname, param in layer.named_parameters(recurse=False):
                param.data.copy_(alex.state_dict()[f"features.{idx}.{pname}"])
    x = torch.from_numpy(preds).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(target).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        expected = ref(x, y).mean().item()
    assert ours == pytest.approx(expected, rel=1e-5)
    assert ours > 0


def test_clip_score_definition_and_batch_invariance(pairs):
    images, _ = pairs
    texts = ["an astronaut", "a cat", "a cup of coffee", "a rocket " * 40]  # last one > 77 tokens
    m = CLIPScore(model_name="RN50", pretrained="openai")
    m.prepare({m.required_assets()[0]: None})  # random weights, explicitly
    m.update(images, texts)
    whole = m.compute()
    m2 = CLIPScore(model_name="RN50", pretrained="openai")
    m2.prepare({m2.required_assets()[0]: None})  # random weights are seeded: the same model
    for i in range(4):
        m2.update(images[i:i + 1], texts[i:i + 1])
    assert m2.compute().value == pytest.approx(whole.value, abs=1e-6)
    assert whole.settings["n_truncated_prompts"] == 1
    assert whole.weights == {"file": None, "random_init": True, "verified": False}
    assert -1.0 <= whole.value <= 1.0


def test_clip_score_scales():
    cos = np.array([0.3, -0.1, 0.2])
    assert scale_cosines(cos, "cosine") == pytest.approx(0.4 / 3)
    assert scale_cosines(cos, "x100") == pytest.approx(100 * 0.4 / 3)
    assert scale_cosines(cos, "w2.5") == pytest.approx(2.5 * 0.5 / 3)


CLIP_TEXTS = ["an astronaut", "a cat", "a cup of coffee", "a rocket"]


@pytest.fixture
def openai_tiny_clip(monkeypatch):
    """The tiny open_clip config with ViT-B-32's "openai" pretrained tag (QuickGELU and all):
    the OpenAI path without a 600 MB model. open_clip has no public call to add a tag; its
    registry is a plain dict, restored after the test."""
    import open_clip

    name = register_tiny_clip()
    tag = dict(open_clip.get_pretrained_cfg("ViT-B-32", "openai"))
    assert tag["quick_gelu"] is True
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"openai": tag})
    return name


def _open_clip_score(model, preprocess, model_name, images, texts) -> float:
    """Mean image-text cosine computed directly with open_clip (the reference)."""
    import open_clip
    from PIL import Image

    pix = torch.stack([preprocess(Image.fromarray(im)) for im in images])
    tok = open_clip.get_tokenizer(model_name)(texts)
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.eval().encode_image(pix).float(), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(tok).float(), dim=-1)
    return (img * txt).sum(-1).mean().item()


def _clip_score(model_name, pretrained, path, images, texts) -> float:
    m = CLIPScore(model_name=model_name, pretrained=pretrained)
    m.prepare({m.required_assets()[0]: ResolvedAsset(path, "stand-in", verified=False)})
    m.update(images, texts)
    return m.compute().value


def test_clip_score_builds_openai_tagged_models_with_quick_gelu(pairs, tmp_path, openai_tiny_clip):
    """A local weights file does not say which activation the model was trained with; the
    "openai" tag does (QuickGELU), and the score must use it."""
    import open_clip

    images, _ = pairs
    weights = save_open_clip_standin(tmp_path / "w.pt", openai_tiny_clip, "openai", seed=3)
    ours = _clip_score(openai_tiny_clip, "openai", weights, images, CLIP_TEXTS)
    expected = {}
    for quick_gelu in (True, False):
        model, _, preprocess = open_clip.create_model_and_transforms(
            openai_tiny_clip, pretrained=None, force_quick_gelu=quick_gelu)
        open_clip.load_checkpoint(model, str(weights))
        expected[quick_gelu] = _open_clip_score(model, preprocess, openai_tiny_clip, images,
                                                CLIP_TEXTS)
    assert ours == pytest.approx(expected[True], abs=1e-6)
    assert abs(expected[True] - expected[False]) > 1e-4  # the activation is visible in the score


def test_clip_score_other_tags_are_built_as_open_clip_builds_them(pairs, tmp_path):
    """Without a QuickGELU tag the model and preprocessing are open_clip's own for that file."""
    import open_clip

    images, _ = pairs
    name = register_tiny_clip()
    weights = save_open_clip_standin(tmp_path / "w.pt", name, "test", seed=4)
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(weights))
    assert _clip_score(name, "test", weights, images, CLIP_TEXTS) == pytest.approx(
        _open_clip_score(model, preprocess, name, images, CLIP_TEXTS), abs=1e-6)


def test_clip_score_reads_openai_torchscript_archives(pairs, tmp_path, openai_tiny_clip):
    """OpenAI's CLIP files are TorchScript archives; they give the same score as the same
    weights saved as a state dict."""
    import open_clip

    from evalsuite.features.clip import load_open_clip

    images, _ = pairs
    state_file = save_open_clip_standin(tmp_path / "w.pt", openai_tiny_clip, "openai", seed=5)
    model = load_open_clip(openai_tiny_clip, "openai", str(state_file))
    # Shape the state dict as in OpenAI's archives: their text mask is a plain attribute (open_clip
    # registers a buffer), and they carry scalars that loaders drop (input_resolution, ...;
    # context_length and vocab_size are plain attributes of open_clip's model, so not added).
    model.attn_mask = model._buffers.pop("attn_mask")
    model.register_buffer("input_resolution", torch.tensor(32))
    example = (torch.zeros(1, 3, 32, 32), open_clip.get_tokenizer(openai_tiny_clip)(["a"]))
    with warnings.catch_warnings():  # torch.jit is deprecated but is OpenAI's format; tracing
        warnings.simplefilter("ignore")  # also warns that shapes are fixed by the example
        traced = torch.jit.trace(model, example, strict=False, check_trace=False)
    traced.save(str(tmp_path / "openai.pt"))
    assert _clip_score(openai_tiny_clip, "openai", tmp_path / "openai.pt", images, CLIP_TEXTS) \
        == pytest.approx(_clip_score(openai_tiny_clip, "openai", state_file, images, CLIP_TEXTS),
                         abs=1e-6)


def test_open_clip_random_init_warning_only_when_the_weights_are_random(tmp_path, caplog):
    """open_clip says "Model initialized randomly" for every model built without a tag; that
    line is dropped when a weight file is loaded next, and kept when the weights stay random."""
    import logging

    from evalsuite.features.clip import load_open_clip

    name = register_tiny_clip()
    weights = save_open_clip_standin(tmp_path / "w.pt", name, "test", seed=4)
    caplog.clear()  # making the stand-in file built a random model
    with caplog.at_level(logging.WARNING):
        load_open_clip(name, "test", str(weights))
    assert "initialized randomly" not in caplog.text
    assert not logging.getLogger().filters  # the filter is removed again
    with caplog.at_level(logging.WARNING):
        load_open_clip(name, "test", None)
    assert "initialized randomly" in caplog.text
