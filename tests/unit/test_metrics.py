"""Parity of the pixel metrics and LPIPS with the reference implementations, and CLIP score's
definition. Tolerances are stated per test."""

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evalsuite.assets import ResolvedAsset
from evalsuite.data.reference import center_crop_resize
from evalsuite.errors import EvalsuiteError
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
