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

``resize_square`` is the one square resize of uint8 images: reference sets use it
(``squash`` / ``center_crop`` / ``none``), and so does the evaluation resize of FID, KID and
CMMD (``resize=squash size=256``: BK-SDM squashes its 512 px samples to 256 before FID),
which runs before the extractor's own preprocessing above.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from evalsuite.errors import ConfigError

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
    x = resize_square(image, "center_crop", size).astype(np.float32) / 255.0
    x = (x - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


# --- Square resizes of uint8 images (reference sets, and the evaluation resize of metrics) ---

SQUARE_RESIZES = ("squash", "center_crop", "none")


def check_square_resize(mode: str | None, size: int | None, where: str,
                        size_key: str = "size") -> str | None:
    """Validate a (resize, size) pair; return the mode, or None for "as is".

    ``where`` names the owner in the message (``"fid_legacy: "``, ``"reference."``) and
    ``size_key`` the size parameter's name there (a reference calls it ``resolution``), so the
    user sees which parameter to fix. ``"none"`` and None both mean "as is"; ``size`` is then
    not used (and not checked).
    """
    if mode is None or mode == "none":
        return None
    if mode not in SQUARE_RESIZES:
        raise ConfigError(f"{where}resize={mode!r}; choose one of {list(SQUARE_RESIZES)} "
                          "(none or null: as is)")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{where}{size_key}={size!r}: resize={mode} needs a positive integer "
                          f"{size_key} (the side of the square output, in pixels)")
    return mode


def square_protocol(mode: str | None, size: int | None) -> str:
    """How ``resize_square`` treats an image, as recorded in identities and records."""
    if mode is None or mode == "none":
        return "none (as stored)"
    return f"{mode}+pil_bicubic@{size}"


def resize_square(image: np.ndarray, mode: str | None, size: int | None = None) -> np.ndarray:
    """Resize a uint8 RGB (H, W, 3) image to a ``size`` x ``size`` square; returns uint8 RGB.

    - ``squash``: resize to size x size, ignoring the aspect ratio (BK-SDM's 512 -> 256);
    - ``center_crop``: crop the centred largest square, then resize;
    - ``none`` / None: the image as is.
    Resizing is PIL bicubic on the uint8 image, which antialiases when downscaling. An image
    that already is size x size is returned unchanged (no resampling at all), so applying the
    same resize twice, or to images generated at the target size, changes nothing.
    """
    if mode is None or mode == "none":
        return image
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"resize_square takes uint8 (H, W, 3) images, got {image.dtype} "
                         f"{image.shape}")
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    im = Image.fromarray(image)
    if mode == "center_crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        im = im.crop((left, top, left + side, top + side))
    elif mode not in ("squash", "center_crop"):
        raise ValueError(f"unknown square resize {mode!r}; choose one of {SQUARE_RESIZES}")
    return np.asarray(im.resize((size, size), resample=Image.BICUBIC), dtype=np.uint8)
