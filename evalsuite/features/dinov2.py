"""DINOv2 CLS-token features with dgm-eval's preprocessing (FD-DINOv2, Stein et al. 2023).

dgm-eval (layer6ai-labs/dgm-eval, ``models/dinov2.py``) loads ``facebookresearch/dinov2``
from torch hub and feeds each image as: PIL ``Resize((224, 224), BICUBIC)`` (a squash, no
crop; PIL antialiases), ``ToTensor`` (x / 255), ``Normalize`` with the ImageNet mean and std;
the feature is the hub model's output, the final-LayerNorm CLS token (1024 dims for ViT-L/14).

The network here is timm's ViT (``vit_large_patch14_dinov2``: the same blocks, LayerScale,
eps 1e-6 LayerNorms and token pooling) built for 224x224 inputs, loaded from the official
hub checkpoint ``dinov2_vitl14_pretrain.pth``. The checkpoint's 37x37 position embeddings are
resampled to 16x16 exactly as the hub model does at run time for a 224 input (bicubic, no
antialias, ``scale_factor = (16 + 0.1) / 37``: its ``interpolate_offset``), once, at load.
Without weights (allowed explicitly) a seeded random checkpoint in the hub format is used.

ViT-g/14 (``vitg14``: width 1536, depth 40, 24 heads) has a SwiGLU FFN where S/B/L have a
plain MLP: the hub's ``SwiGLUFFNFused`` holds ``mlp.w12`` (Linear(dim, 2 x 4096), the gate
half first: ``silu(x1) * x2``) and ``mlp.w3`` (Linear(4096, dim)); timm's
``vit_giant_patch14_dinov2`` has the same packed layer as ``GluMlp`` (``SwiGLUPacked``,
``gate_last=False``) named ``mlp.fc1`` / ``mlp.fc2``. ``hub_to_timm`` renames those keys (as
timm's own ``_convert_dinov2`` does); every other key is named alike in both.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.features import resize
from evalsuite.features.base import FeatureExtractor, seeded_init

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset

# arch -> (timm model, feature dims); vitg14's FFN is SwiGLU (keys renamed: hub_to_timm)
ARCHS = {"vits14": ("vit_small_patch14_dinov2", 384), "vitb14": ("vit_base_patch14_dinov2", 768),
         "vitl14": ("vit_large_patch14_dinov2", 1024),
         "vitg14": ("vit_giant_patch14_dinov2", 1536)}
#: hub SwiGLUFFNFused -> timm GluMlp parameter names, in ``blocks.<i>.mlp.``
HUB_TO_TIMM_MLP = {"w12": "fc1", "w3": "fc2"}
_HUB_MLP = re.compile(r"^(blocks\.\d+\.mlp\.)(w12|w3)(\.(?:weight|bias))$")
_TIMM_MLP = re.compile(r"^(blocks\.\d+\.mlp\.)(fc1|fc2)(\.(?:weight|bias))$")
SIZE, PATCH, HUB_GRID, INTERPOLATE_OFFSET = 224, 14, 37, 0.1
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PREPROCESS = ("PIL bicubic (antialiased) squash to 224x224 on uint8, x/255, ImageNet mean/std "
              "(dgm-eval DINOv2Encoder.transform, clean_resize=False)")


def asset_name(arch: str) -> str:
    """Registry name of the hub checkpoint of ``arch`` (e.g. ``dinov2_vitl14``)."""
    return f"dinov2_{arch}"


def dgm_eval_preprocess(image: np.ndarray) -> np.ndarray:
    """dgm-eval's DINOv2 transform of one uint8 (H, W, 3) image; float32 (3, 224, 224)."""
    x = resize.resize_square(image, "squash", SIZE).astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def hub_pos_embed(pos_embed: "torch.Tensor", grid: int = SIZE // PATCH) -> "torch.Tensor":
    """The hub model's ``interpolate_pos_encoding`` for a ``grid`` x ``grid`` patch input:
    the class position kept, the patch positions bicubic-resampled (no antialias) with
    ``scale_factor = (grid + 0.1) / M``, float32."""
    import torch
    import torch.nn.functional as F

    pos = pos_embed.float()
    n, dim = pos.shape[1] - 1, pos.shape[-1]
    m = int(math.sqrt(n))
    if m * m != n:
        raise ValueError(f"DINOv2 position embedding of {n} patches is not a square grid")
    if m == grid:
        return pos
    scale = float(grid + INTERPOLATE_OFFSET) / m
    patch = F.interpolate(pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic",
                          antialias=False, scale_factor=(scale, scale))
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((pos[:, :1], patch), dim=1)


def hub_to_timm(state: Mapping[str, Any]) -> dict[str, Any]:
    """A hub-format state dict with ViT-g's SwiGLU keys (``mlp.w12``/``mlp.w3``) renamed to
    timm's (``mlp.fc1``/``mlp.fc2``); other keys (every key of S/B/L) unchanged."""
    return {_HUB_MLP.sub(lambda m: m[1] + HUB_TO_TIMM_MLP[m[2]] + m[3], k): v
            for k, v in state.items()}


def timm_to_hub(state: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """The inverse of ``hub_to_timm`` for a SwiGLU arch (``vitg14``); a copy otherwise."""
    if arch != "vitg14":
        return dict(state)
    back = {v: k for k, v in HUB_TO_TIMM_MLP.items()}
    return {_TIMM_MLP.sub(lambda m: m[1] + back[m[2]] + m[3], k): v for k, v in state.items()}


def random_hub_state(arch: str, seed: int = 0, **shape: int) -> dict[str, Any]:
    """A seeded random state dict in the hub checkpoint's format (518 px: 37x37 positions,
    a ``mask_token``, ViT-g's SwiGLU keys). ``shape``: timm overrides (``depth``,
    ``embed_dim``, ``num_heads``) for a smaller network of the same structure (tests)."""
    import timm
    import torch

    with seeded_init(seed):
        net = timm.create_model(ARCHS[arch][0], pretrained=False, num_classes=0, **shape)
        state = timm_to_hub(net.state_dict(), arch)
        state["mask_token"] = torch.zeros(1, net.embed_dim)
    return state


def save_dinov2_standin(path: str | Path, arch: str = "vits14", seed: int = 0) -> Path:
    """Write a seeded random hub-format DINOv2 checkpoint (tests, smoke runs)."""
    import torch

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_hub_state(arch, seed), path)
    return Path(path)


def build_dinov2(arch: str, state: Mapping[str, Any], **shape: int) -> Any:
    """timm's DINOv2 ViT for 224x224 inputs with a hub-format state dict (loaded strictly:
    a key that does not map fails). ``shape``: as for ``random_hub_state``."""
    import timm

    state = {k: v for k, v in hub_to_timm(state).items() if k != "mask_token"}
    state["pos_embed"] = hub_pos_embed(state["pos_embed"])
    with seeded_init():
        net = timm.create_model(ARCHS[arch][0], pretrained=False, img_size=SIZE, num_classes=0,
                                **shape)
    net.load_state_dict(state)
    return net.eval()


class DINOv2Features(FeatureExtractor):
    """DINOv2 final-norm CLS token, dgm-eval preprocessing (FD-DINOv2's feature space)."""

    name, version = "dinov2_cls", "1"

    def __init__(self, arch: str = "vitl14", device: str = "cpu") -> None:
        if arch not in ARCHS:
            raise ConfigError(f"dinov2 arch={arch!r}; choose one of {sorted(ARCHS)}")
        super().__init__(device)
        self.arch, self.dims = arch, ARCHS[arch][1]

    def params(self) -> dict[str, Any]:
        return {"network": f"DINOv2 {self.arch} (facebookresearch/dinov2 hub checkpoint, timm "
                           "ViT)", "layer": "final LayerNorm, CLS token", "dims": self.dims,
                "resize": PREPROCESS,
                "position_embedding": "37x37 -> 16x16 bicubic, no antialias, scale_factor "
                                      "(16 + 0.1) / 37 (hub interpolate_pos_encoding)",
                **self.resize_params()}

    def required_assets(self) -> list[str]:
        return [asset_name(self.arch)]

    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any:
        import torch

        found = weights[asset_name(self.arch)]
        state = (torch.load(found.path, map_location="cpu", weights_only=True) if found
                 else random_hub_state(self.arch))  # seeded random weights, recorded as such
        return build_dinov2(self.arch, state).to(self.device)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return dgm_eval_preprocess(image)

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        return self._model(batch)
