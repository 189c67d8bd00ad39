"""PickScore: parity with the PickScore README's inference code (transcribed below:
transformers' PIL ``CLIPImageProcessor`` of its time (``CLIPImageProcessorPil`` in
transformers 5; the new default resizes with torchvision and differs by up to 0.015 per
pixel) + the CLIP tokenizer as ``CLIPProcessor``, ``get_image_features`` /
``get_text_features``, normalise, ``logit_scale.exp()`` x text @ image.T, one prompt at a time) on the same stand-in safetensors file (a tiny CLIPModel),
square and non-square images: scores equal to 1e-4 (logit scale 14.3 x float32 cosines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.assets import ResolvedAsset
from evalsuite.features.standins import photo_crops
from evalsuite.metrics.pickscore import PICKSCORE_ASSET, PickScore, build_pickscore_model
from evalsuite.models.tokenizer import build_clip_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_clip_tokenizer()


def reference_scores(path, images, prompts, tokenizer):
    from safetensors.torch import load_file
    from transformers import CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    model = build_pickscore_model("tiny")
    model.load_state_dict(load_file(str(path)))
    # the PIL processor: what CLIPImageProcessor was in transformers 4 (PickScore's time)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32},
                                         crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    out = []
    with torch.no_grad():
        for im, prompt in zip(images, prompts):
            image_inputs = processor(images=[Image.fromarray(im)], return_tensors="pt")
            text_inputs = processor(text=prompt, padding=True, truncation=True, max_length=77,
                                    return_tensors="pt")
            image_embs = model.get_image_features(**image_inputs).pooler_output
            image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
            text_embs = model.get_text_features(**text_inputs).pooler_output
            text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
            out.append((model.logit_scale.exp() * (text_embs @ image_embs.T)[0]).item())
    return np.array(out)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("pick") / "pickscore_v1.safetensors"
    save_file({k: v.contiguous() for k, v in build_pickscore_model("tiny").state_dict().items()},
              str(path))
    return path


@pytest.mark.parametrize("shape", [(40, 40), (36, 60), (64, 45)])
def test_scores_equal_the_pickscore_inference_code(weights, tokenizer, shape):
    images = np.ascontiguousarray(photo_crops(3, max(shape), seed=8, noise=20)[:, :shape[0],
                                                                               :shape[1]])
    prompts = ["a cat", "a very long prompt about a rocket " * 12, "two red cubes"]
    m = PickScore(arch="tiny")
    m.prepare({PICKSCORE_ASSET: ResolvedAsset(weights, "stand-in", False, "stand-in")})
    m.update(images, prompts)
    r = m.compute()
    ref = reference_scores(weights, images, prompts, tokenizer)
    np.testing.assert_allclose(m.item_values(), ref, rtol=0, atol=1e-4)
    assert r.value == pytest.approx(ref.mean(), abs=1e-4) and r.n == 3
    assert "logit_scale" in r.settings["score"]


def test_the_vit_h14_architecture_is_open_clips_vit_h14():
    """PickScore is fine-tuned from LAION's CLIP ViT-H/14 (an OpenCLIP model): our transformers
    config must be open_clip's ``ViT-H-14.json``, widths, depths, heads and activation (no
    ``quick_gelu`` there: nn.GELU, transformers' "gelu"). Checked on the config only, not by
    building the 986M-parameter model."""
    import json
    from pathlib import Path

    import open_clip
    from evalsuite.metrics.pickscore import ARCHS

    oc = json.loads((Path(open_clip.__file__).parent / "model_configs" / "ViT-H-14.json")
                    .read_text())
    ours = ARCHS["ViT-H-14"]
    v, t = oc["vision_cfg"], oc["text_cfg"]
    assert ours["projection_dim"] == oc["embed_dim"]
    assert (ours["vision_config"]["hidden_size"], ours["vision_config"]["num_hidden_layers"],
            ours["vision_config"]["patch_size"], ours["vision_config"]["image_size"]) == (
        v["width"], v["layers"], v["patch_size"], v["image_size"])
    assert ours["vision_config"]["num_attention_heads"] == v["width"] // v["head_width"]
    assert ours["vision_config"]["intermediate_size"] == v["width"] * v.get("mlp_ratio", 4)
    assert (ours["text_config"]["hidden_size"], ours["text_config"]["num_hidden_layers"],
            ours["text_config"]["num_attention_heads"]) == (t["width"], t["layers"], t["heads"])
    assert ours["text_config"]["intermediate_size"] == t["width"] * t.get("mlp_ratio", 4)
    assert not oc.get("quick_gelu", False)  # nn.GELU: transformers' "gelu", not "quick_gelu"
    built = build_pickscore_model("tiny").config  # every arch gets the same activation
    assert built.vision_config.hidden_act == built.text_config.hidden_act == "gelu"
