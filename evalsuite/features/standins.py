"""Seeded stand-in weight files in the upstream formats, for tests, benchmarks and smoke runs.

They let evalsuite and the reference libraries load *the same file* offline, so parity can be
tested without the real weights. A stand-in's numbers mean nothing; records computed with
one say ``verified: false`` (``metrics.verify_assets=false``).

- ``save_pytorch_fid_standin``: a state dict for pytorch-fid's ``fid_inception_v3()``
  (``pt_inception-2015-12-05-6726825d.pth`` format); He-initialised so that pool3 features
  have a useful scale.
- ``save_clean_fid_standin``: a TorchScript module with clean-fid's interface: ``.layers``
  maps (x - 128) / 128 at 299x299 to (B, 2048, 1, 1), and ``forward(x, return_features)``
  resizes [0, 255] inputs itself. ``full=True`` uses the Inception architecture (realistic
  cost), otherwise a tiny network (fast tests).
- ``save_open_clip_standin``: a seeded open_clip model's state dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalsuite.features.base import seeded_init
from evalsuite.features.inception_net import build_pytorch_fid_blocks, fid_inception_net


def _he_init(module: Any, seed: int) -> None:
    import torch
    import torch.nn as nn

    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)


def pytorch_fid_standin_state(seed: int = 0) -> dict:
    """A random (He-initialised, seeded) state dict for pytorch-fid's ``fid_inception_v3()``."""
    net = fid_inception_net()
    _he_init(net, seed)
    return net.state_dict()


def save_pytorch_fid_standin(path: str | Path, seed: int = 0) -> Path:
    """Write a random FID Inception state dict loadable by pytorch-fid and evalsuite."""
    import torch

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(pytorch_fid_standin_state(seed), path)
    return Path(path)


def _clean_fid_module(layers: Any) -> Any:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class CleanFIDStandIn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = layers

        def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            return self.layers((x - 128) / 128)

    return CleanFIDStandIn().eval()


def clean_fid_standin_module(seed: int = 0, full: bool = False) -> Any:
    """A scripted module with the interface of clean-fid's TorchScript Inception."""
    import torch
    import torch.nn as nn

    with seeded_init(seed):
        if full:
            layers = build_pytorch_fid_blocks(pytorch_fid_standin_state(seed), 2048)
        else:  # ~1 ms per image: pooled 23x23 input, two convolutions, 2048 channels
            layers = nn.Sequential(nn.AvgPool2d(13), nn.Conv2d(3, 48, 3), nn.ReLU(),
                                   nn.Conv2d(48, 2048, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            _he_init(layers, seed)
    layers = torch.jit.trace(layers.eval(), torch.zeros(1, 3, 299, 299))
    return torch.jit.script(_clean_fid_module(layers))


def save_clean_fid_standin(path: str | Path, seed: int = 0, full: bool = False) -> Path:
    """Write a TorchScript stand-in for clean-fid's ``inception-2015-12-05.pt``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    clean_fid_standin_module(seed, full).save(str(path))
    return Path(path)


def save_open_clip_standin(path: str | Path, model_name: str = "ViT-B-32",
                           pretrained: str = "openai", seed: int = 0) -> Path:
    """Write a seeded random open_clip model's state dict."""
    import torch

    from evalsuite.features.clip import load_open_clip

    with seeded_init(seed):
        model = load_open_clip(model_name, pretrained, None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return Path(path)


TINY_CLIP = "evalsuite-tiny-clip"  # a 32x32, two-layer open_clip config for fast tests


def register_tiny_clip() -> str:
    """Register (once per process) a tiny open_clip model config; returns its name."""
    import json
    import tempfile

    import open_clip

    if TINY_CLIP not in open_clip.list_models():
        cfg = {"embed_dim": 32,
               "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                              "head_width": 32},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                            "layers": 2}}
        # open_clip reads the file when it is added and keeps the parsed config, so the
        # temporary folder can go at once.
        with tempfile.TemporaryDirectory(prefix="evalsuite-clip-cfg-") as tmp:
            path = Path(tmp) / f"{TINY_CLIP}.json"
            path.write_text(json.dumps(cfg))
            open_clip.add_model_config(path)
    return TINY_CLIP


def photo_crops(n: int, size: int = 32, seed: int = 0, noise: float = 10.0) -> Any:
    """``n`` uint8 (size, size, 3) images: random crops of scikit-image's bundled photographs
    plus Gaussian noise (test and benchmark inputs with photo-like statistics)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        p = photos[i % len(photos)]
        side = int(rng.integers(min(p.shape[:2]) // 3, min(p.shape[:2])))
        y, x = (int(rng.integers(0, d - side + 1)) for d in p.shape[:2])
        im = np.asarray(Image.fromarray(p[y:y + side, x:x + side]).resize((size, size),
                                                                           Image.BICUBIC))
        out[i] = np.clip(im + rng.normal(0, noise, im.shape), 0, 255).astype(np.uint8)
    return out


def write_folder(folder: str | Path, images: Any, prefix: str = "") -> Path:
    """Save images as ``<prefix><index:05d>.png`` (lossless) in ``folder``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{prefix}{i:05d}.png")
    return folder
