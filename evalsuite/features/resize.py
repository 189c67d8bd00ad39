"""Resize protocols: pure functions from a uint8 (H, W, 3) image to a network input.

Each is a transcription of what the reference library does to one image, so that the same
image gives the same floats here and there:
- ``clean_fid_clean``: clean-fid ``clean`` mode (``make_resizer("PIL", False, "bicubic")``):
  each channel as a float32 PIL 'F' image, bicubic with PIL's antialiasing, to 299x299,
  clipped to [0, 255], not quantised.
- ``pytorch_fid_bilinear``: pytorch-fid: ``ToTensor`` (x / 255), then
  ``F.interpolate(bilinear, align_corners=False)`` to 299x299 without antialiasing, then
  ``2x - 1``. This is the resize BK-SDM's FID used.
- ``cmmd_bicubic``: google-research/cmmd ``io_util``: centre crop to a square, PIL bicubic
  (antialiased) on the uint8 image to the CLIP resolution, then x / 255.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

INCEPTION_SIZE = 299
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

PROTOCOLS = {
    "clean_fid_clean": "per-channel float32 PIL bicubic (antialiased) to 299x299, clip to "
                       "[0, 255], no quantisation (clean-fid mode=clean)",
    "pytorch_fid_bilinear": "x/255, torch F.interpolate bilinear align_corners=False, no "
                            "antialias, to 299x299, then 2x-1 (pytorch-fid)",
    "clean_fid_legacy_tensorflow": "no resize outside the network: the TorchScript Inception "
                                   "resizes [0, 255] floats itself (clean-fid "
                                   "mode=legacy_tensorflow)",
    "cmmd_bicubic": "centre crop to square, PIL bicubic (antialiased) on uint8 to the CLIP "
                    "resolution, x/255, CLIP mean/std (google-research/cmmd)",
}


def clean_fid_clean(image: np.ndarray, size: int = INCEPTION_SIZE) -> np.ndarray:
    """clean-fid ``clean`` resize; returns float32 (3, size, size) in [0, 255]."""
    chans = []
    for c in range(3):
        img = Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
        img = img.resize((size, size), resample=Image.BICUBIC)
        chans.append(np.asarray(img).clip(0, 255))
    return np.stack(chans).astype(np.float32)


def pytorch_fid_bilinear(image: np.ndarray, size: int = INCEPTION_SIZE) -> np.ndarray:
    """pytorch-fid's input pipeline for one image; returns float32 (3, size, size) in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255)
    x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)
    return (2 * x - 1)[0].numpy()


def float_chw(image: np.ndarray) -> np.ndarray:
    """No resize: float32 (3, H, W) in [0, 255] (for networks that resize themselves)."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def cmmd_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    """CMMD's crop + resize + CLIP normalisation; returns float32 (3, size, size)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    im = Image.fromarray(image).crop((left, top, left + side, top + side))
    x = np.asarray(im.resize((size, size), resample=Image.BICUBIC), dtype=np.float32) / 255.0
    x = (x - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
