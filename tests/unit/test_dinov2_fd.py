"""FD-DINOv2 and ``fd_<extractor>`` / ``kid_<extractor>`` over any registered extractor.

References: dgm-eval's DINOv2 transform (``models/dinov2.py``: torchvision ``Resize((224,
224), BICUBIC)`` on the PIL image, ``ToTensor``, ``Normalize`` with numpy ImageNet mean/std,
written out below with torchvision): equal to 1e-6. The network: transformers' ``Dinov2Model``
loaded from the same seeded hub-format stand-in checkpoint (keys converted as transformers'
conversion script does), position embeddings resampled as the hub model's
``interpolate_pos_encoding`` (transcribed below): CLS features equal to 2e-4 (float32, two
attention implementations). The distance: pytorch-fid's ``calculate_frechet_distance`` on the
same features, 1e-6 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from evalsuite.config.build import build
from evalsuite.errors import ConfigError
from evalsuite.features.dinov2 import DINOv2Features, dgm_eval_preprocess, save_dinov2_standin
from evalsuite.features.registry import EXTRACTORS, build_extractor
from evalsuite.features.standins import photo_crops
from evalsuite.assets import ResolvedAsset
from evalsuite.metrics.fd import FD, KIDOver
from evalsuite.metrics.fid import CleanFID
from evalsuite.metrics.kid import CleanKID


def dgm_eval_transform(image: np.ndarray) -> np.ndarray:
    """dgm-eval DINOv2Encoder.transform (clean_resize=False) on a PIL image."""
    import torchvision.transforms as TF

    x = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor()])(
        Image.fromarray(image))
    return TF.Normalize(np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))(x).numpy()


@pytest.mark.parametrize("shape", [(60, 80), (224, 224), (300, 256)])
def test_preprocessing_is_dgm_eval(shape):
    im = photo_crops(1, max(shape), seed=4)[0][:shape[0], :shape[1]]
    np.testing.assert_allclose(dgm_eval_preprocess(im), dgm_eval_transform(im), rtol=0, atol=1e-6)


def hub_interpolate_pos_encoding(pos_embed, w, h, patch_size=14, offset=0.1):
    """facebookresearch/dinov2 DinoVisionTransformer.interpolate_pos_encoding (defaults:
    interpolate_offset=0.1, interpolate_antialias=False), for a (w, h) input."""
    pos_embed = pos_embed.float()
    class_pos_embed, patch_pos_embed = pos_embed[:, 0], pos_embed[:, 1:]
    dim, n = pos_embed.shape[-1], pos_embed.shape[1] - 1
    w0, h0 = w // patch_size, h // patch_size
    m = int(math.sqrt(n))
    sx, sy = float(w0 + offset) / m, float(h0 + offset) / m
    patch_pos_embed = torch.nn.functional.interpolate(
        patch_pos_embed.reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic",
        antialias=False, scale_factor=(sx, sy))
    assert (w0, h0) == patch_pos_embed.shape[-2:]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def _swiglu_keys(state, src, dst, hidden):
    """The hub's fused SwiGLU (``w12``: gate half first, ``silu(x1) * x2``; ``w3``) as
    transformers 5's ``Dinov2SwiGLUFFN`` (gate_proj, up_proj, down_proj)."""
    out = {}
    for kind in ("weight", "bias"):
        gate, up = state[src + f"mlp.w12.{kind}"].chunk(2)
        out.update({dst + f"mlp.gate_proj.{kind}": gate, dst + f"mlp.up_proj.{kind}": up,
                    dst + f"mlp.down_proj.{kind}": state[src + f"mlp.w3.{kind}"]})
    return out


def transformers_dinov2(state, hidden=384, layers=12, heads=6, swiglu=False):
    """transformers' Dinov2Model from a hub-format state dict (convert_dinov2_to_hf.py's key
    mapping), at 224 px with the hub's resampled position embeddings. ``swiglu``: ViT-g's FFN
    (``use_swiglu_ffn``; mlp_ratio 4 gives the hub's hidden width by the same 2/3 rule)."""
    from transformers import Dinov2Config, Dinov2Model

    cfg = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                       patch_size=14, image_size=224, layerscale_value=1.0, layer_norm_eps=1e-6,
                       use_swiglu_ffn=swiglu)
    model = Dinov2Model(cfg).eval()
    sd = {"embeddings.cls_token": state["cls_token"], "embeddings.mask_token": state["mask_token"],
          "embeddings.position_embeddings": hub_interpolate_pos_encoding(state["pos_embed"],
                                                                         224, 224),
          "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
          "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
          "layernorm.weight": state["norm.weight"], "layernorm.bias": state["norm.bias"]}
    for i in range(layers):
        src, dst = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state[src + f"attn.qkv.{kind}"].chunk(3)
            sd.update({dst + f"attention.q_proj.{kind}": q,  # transformers 5 names
                       dst + f"attention.k_proj.{kind}": k,
                       dst + f"attention.v_proj.{kind}": v,
                       dst + f"attention.o_proj.{kind}": state[src + f"attn.proj.{kind}"],
                       dst + f"norm1.{kind}": state[src + f"norm1.{kind}"],
                       dst + f"norm2.{kind}": state[src + f"norm2.{kind}"]})
            if not swiglu:
                sd.update({dst + f"mlp.fc1.{kind}": state[src + f"mlp.fc1.{kind}"],
                           dst + f"mlp.fc2.{kind}": state[src + f"mlp.fc2.{kind}"]})
        if swiglu:
            sd.update(_swiglu_keys(state, src, dst, hidden))
        sd[dst + "layer_scale1.lambda1"] = state[src + "ls1.gamma"]
        sd[dst + "layer_scale2.lambda1"] = state[src + "ls2.gamma"]
    model.load_state_dict(sd)
    return model


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    path = save_dinov2_standin(tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth",
                               "vits14", seed=0)
    state = torch.load(path, weights_only=True)
    with torch.no_grad():  # larger LayerScale than timm's 1e-5 init: the blocks matter
        for k in state:
            if k.endswith(".gamma"):
                state[k].fill_(0.5)
    torch.save(state, path)
    return path, state


def test_features_equal_transformers_dinov2_on_the_same_checkpoint(standin):
    path, state = standin
    ex = DINOv2Features("vits14")
    ex.bind({"dinov2_vits14": ResolvedAsset(path, "stand-in", False, "stand-in")})
    images = list(photo_crops(3, 64, seed=5, noise=20))
    ours = ex(images)
    ref_model = transformers_dinov2(state)
    with torch.no_grad():
        x = torch.from_numpy(np.stack([dgm_eval_transform(im) for im in images])).float()
        ref = ref_model(pixel_values=x).pooler_output.numpy()
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4 * np.abs(ref).max())
    # the hub's +0.1 offset matters: transformers' own size-based resampling gives other values
    size_based = torch.nn.functional.interpolate(
        state["pos_embed"][:, 1:].reshape(1, 37, 37, 384).permute(0, 3, 1, 2), size=(16, 16),
        mode="bicubic", align_corners=False)
    hub = hub_interpolate_pos_encoding(state["pos_embed"], 224, 224)[:, 1:]
    assert (hub - size_based.permute(0, 2, 3, 1).reshape(1, -1, 384)).abs().max() > 1e-3


def test_fd_dinov2_equals_pytorch_fid_distance_on_its_features(standin):
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    gen, ref = rng.normal(0, 1, (500, 384)), rng.normal(0.1, 1.1, (450, 384))
    m = FD(extractor="dinov2", arch="vits14")
    m.prepare({"dinov2_vits14": None})  # binds only: no network is built for given features
    m.update(gen.astype(np.float32), real=False)
    m.update(ref.astype(np.float32), real=True)
    r = m.compute()
    g32, r32 = gen.astype(np.float32).astype(np.float64), ref.astype(np.float32).astype(np.float64)
    expected = calculate_frechet_distance(g32.mean(0), np.cov(g32, rowvar=False),
                                          r32.mean(0), np.cov(r32, rowvar=False))
    assert m.name == "fd_dinov2" and r.name == "fd_dinov2"
    assert r.value == pytest.approx(expected, rel=1e-6)
    assert "dinov2" in r.settings["protocol"] and r.settings["features"]["dims"] == 384


def test_one_line_of_config_per_metric_and_shared_features():
    cfg = OmegaConf.create({"fd_dinov2": {"_target_": "evalsuite.metrics.fd.FD",
                                          "extractor": "dinov2"},
                            "kid_dinov2": {"_target_": "evalsuite.metrics.fd.KIDOver",
                                           "extractor": "dinov2", "subset_size": 50},
                            "fd_inception_clean": {"_target_": "evalsuite.metrics.fd.FD",
                                                   "extractor": "inception_clean"}})
    fd, kid, fd_clean = (build(cfg[k], k) for k in cfg)
    assert isinstance(fd, FD) and isinstance(kid, KIDOver) and kid.name == "kid_dinov2"
    assert fd.required_assets() == ["dinov2_vitl14"] and fd.extractor.dims == 1024
    assert fd.extractor.spec_key() == kid.extractor.spec_key()  # one pass serves both
    assert fd_clean.extractor.spec_key() == CleanFID().extractor.spec_key()
    assert fd_clean.extractor.spec_key() == CleanKID().extractor.spec_key()
    shipped = OmegaConf.load("conf/metrics/dinov2.yaml")["items"]
    assert shipped["fd_dinov2"]["extractor"] == "dinov2"
    for name in EXTRACTORS:
        assert build_extractor(name).dims > 0
    with pytest.raises(ConfigError, match="unknown feature extractor"):
        FD(extractor="nope")
    with pytest.raises(ConfigError, match="bad options"):
        FD(extractor="dinov2", model_name="x")
    with pytest.raises(ConfigError, match="arch"):
        FD(extractor="dinov2", arch="vith14")


GIANT_SHAPE = {"depth": 2, "embed_dim": 48, "num_heads": 4}  # ViT-g's structure, narrow


def _giant_standin():
    """A hub-format ViT-g/14 checkpoint of GIANT_SHAPE, every tensor perturbed (LayerScale
    0.5, non-zero biases) so that each block and both FFN halves change the output."""
    from evalsuite.features.dinov2 import random_hub_state

    state = random_hub_state("vitg14", seed=3, **GIANT_SHAPE)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for k, v in state.items():
            if k.endswith(".gamma"):
                v.fill_(0.5)
            elif v.is_floating_point() and k != "mask_token":
                v.add_(0.05 * torch.randn(v.shape, generator=gen))
    return state


def _giant_features(net, images):
    x = torch.from_numpy(np.stack([dgm_eval_preprocess(im) for im in images])).float()
    with torch.no_grad():
        return net(x).numpy(), x


def test_vitg14_hub_swiglu_checkpoint_gives_transformers_features():
    """The hub's ``mlp.w12``/``mlp.w3`` land in timm's ``mlp.fc1``/``mlp.fc2``: timm's ViT-g
    structure (SwiGLUPacked, LayerScale) on a depth-2, width-48 stand-in equals transformers'
    Dinov2Model with ``use_swiglu_ffn`` (gate and up projections split from ``w12``)."""
    from evalsuite.features.dinov2 import build_dinov2

    state = _giant_standin()
    assert state["blocks.1.mlp.w12.weight"].shape == (2 * 128, 48)  # hub: (int(192*2/3)+7)//8*8
    assert state["blocks.1.mlp.w3.weight"].shape == (48, 128)
    assert not any(".mlp.fc" in k for k in state)
    images = list(photo_crops(2, 64, seed=9, noise=20))
    ours, x = _giant_features(build_dinov2("vitg14", state, **GIANT_SHAPE), images)
    with torch.no_grad():
        ref = transformers_dinov2(state, 48, 2, 4, swiglu=True)(pixel_values=x).pooler_output.numpy()
    assert ours.shape == (2, 48)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    # the mapping is what makes them agree: the gate half second (gate_last) differs
    swapped = {k: (torch.cat(v.chunk(2)[::-1]) if ".mlp.w12." in k else v) for k, v in state.items()}
    wrong, _ = _giant_features(build_dinov2("vitg14", swapped, **GIANT_SHAPE), images)
    assert np.abs(wrong - ref).max() > 1e-2 * np.abs(ref).max()


def test_vitg14_is_an_option_with_its_hub_asset():
    from evalsuite.assets import ASSETS

    ex = DINOv2Features("vitg14")
    assert ex.dims == 1536 and ex.required_assets() == ["dinov2_vitg14"]
    asset = ASSETS["dinov2_vitg14"]
    assert asset.filename == "dinov2_vitg14_pretrain.pth" and asset.sha256 is None
    assert asset.url == ("https://dl.fbaipublicfiles.com/dinov2/dinov2_vitg14/"
                         "dinov2_vitg14_pretrain.pth")
    m = build(OmegaConf.create({"_target_": "evalsuite.metrics.fd.FD", "extractor": "dinov2",
                                "arch": "vitg14"}), "metrics.items.fd_dinov2")
    assert "dinov2_vitg14" in m.required_assets()
