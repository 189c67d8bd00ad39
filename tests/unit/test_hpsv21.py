"""HPSv2.1: parity with tgxs002/HPSv2 ``img_score.py`` (transcribed below with open_clip: the
checkpoint's ``state_dict``, ``preprocess_val`` with ``ResizeMaxSize`` + zero padding via
torchvision, ``model(image, text)`` with ``output_dict=True``, the diagonal of image @ text)
on the same stand-in checkpoint (tiny open_clip architecture), square and non-square images:
scores equal to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.assets import ResolvedAsset
from evalsuite.features.standins import photo_crops, register_tiny_clip
from evalsuite.metrics.bootstrap import bootstrap_ci, per_item_values, supports_bootstrap
from evalsuite.metrics.preference import HPS_ASSET, HPSv21


def reference_resize_max_size(img, max_size):
    """open_clip (HPS fork) ResizeMaxSize(max_size, BICUBIC, fill=0) on a PIL image."""
    import torchvision.transforms.functional as F

    width, height = img.size
    scale = max_size / float(max(height, width))
    if scale != 1.0:
        new_size = tuple(round(dim * scale) for dim in (height, width))
        img = F.resize(img, new_size, F.InterpolationMode.BICUBIC)
        pad_h, pad_w = max_size - new_size[0], max_size - new_size[1]
        img = F.pad(img, padding=[pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2],
                    fill=0)
    return img


def reference_scores(checkpoint, model_name, images, prompts):
    import open_clip
    import torchvision.transforms as T

    model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=None,
                                                        output_dict=True)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    model.eval()
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) \
        else model.visual.image_size
    preprocess_val = T.Compose([lambda im: reference_resize_max_size(im, size),
                                lambda im: im.convert("RGB"), T.ToTensor(),
                                T.Normalize(open_clip.OPENAI_DATASET_MEAN,
                                            open_clip.OPENAI_DATASET_STD)])
    tokenizer = open_clip.get_tokenizer(model_name)
    out = []
    with torch.no_grad():
        for im, prompt in zip(images, prompts):
            outputs = model(preprocess_val(Image.fromarray(im)).unsqueeze(0), tokenizer([prompt]))
            logits = outputs["image_features"] @ outputs["text_features"].T
            out.append(torch.diagonal(logits).numpy()[0])
    return np.array(out, dtype=np.float64)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from evalsuite.features.clip import load_open_clip

    name = register_tiny_clip()
    path = tmp_path_factory.mktemp("hps") / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": load_open_clip(name, "laion2b_s32b_b79k", None).state_dict()}, path)
    return name, path


@pytest.mark.parametrize("shape", [(48, 48), (40, 64), (70, 50)])
def test_scores_equal_hps_img_score(checkpoint, shape):
    name, path = checkpoint
    images = photo_crops(4, max(shape), seed=7, noise=20)[:, :shape[0], :shape[1]]
    prompts = ["a red cube", "two cats on a sofa", "a photograph of a rocket", "coffee"]
    m = HPSv21(model_name=name)
    m.prepare({HPS_ASSET: ResolvedAsset(path, "stand-in", False, "stand-in")})
    m.update(np.ascontiguousarray(images), prompts)
    r = m.compute()
    ref = reference_scores(path, name, images, prompts)
    np.testing.assert_allclose(m.item_values(), ref, rtol=0, atol=1e-5)
    assert r.value == pytest.approx(ref.mean(), abs=1e-5) and r.n == 4
    assert r.weights["verified"] is False and "HPS" in r.settings["model"]


def test_random_weights_are_recorded():
    name = register_tiny_clip()
    m = HPSv21(model_name=name)
    m.prepare({HPS_ASSET: None})
    m.update(photo_crops(2, 32, seed=1), ["a", "b"])
    r = m.compute()
    assert r.weights["random_init"] is True and -1 <= r.value <= 1
    assert supports_bootstrap(m) and len(per_item_values(m)) == 2  # per-image values kept
    ci = bootstrap_ci(m, r.n, 20, seed=0)
    assert min(per_item_values(m)) <= ci["low"] <= ci["high"] <= max(per_item_values(m))
