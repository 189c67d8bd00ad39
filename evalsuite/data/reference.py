"""Reference image sets: real photographs that generated or reconstructed images are compared to.

The demo set is scikit-image's bundled photographs (no download): its colour photographs
plus a few grayscale ones replicated to RGB. Preprocessing is part of the set's identity:
centre crop to a square, then PIL bicubic resize (antialiased) to the target resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.io import sha256_bytes

SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
                  "ihc.png", "motorcycle_left.png", "retina.jpg", "rocket.jpg",
                  "camera.png", "moon.png", "coins.png", "brick.png", "grass.png", "gravel.png")


@dataclass(frozen=True)
class ReferenceSet:
    """Preprocessed reference images (uint8, N x H x W x 3) with ids and a content hash."""

    name: str
    ids: tuple[str, ...]
    images: np.ndarray
    preprocess: str

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.images.tobytes() + "\n".join(self.ids).encode())

    def describe(self) -> dict:
        return {"name": self.name, "n": len(self.ids), "sha256": self.sha256,
                "preprocess": self.preprocess, "resolution": int(self.images.shape[1])}


def center_crop_resize(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop to a square, then PIL bicubic (antialiased) resize; returns uint8 RGB."""
    img = image.convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return np.asarray(img.resize((resolution, resolution), Image.BICUBIC), dtype=np.uint8)


def skimage_photos(name: str = "skimage_photos", resolution: int = 512) -> ReferenceSet:
    """scikit-image's bundled photographs, centre-cropped and resized to ``resolution``."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    images, ids = [], []
    for fname in SKIMAGE_PHOTOS:
        path = folder / fname
        if not path.is_file():
            raise EvalsuiteError(f"scikit-image's bundled photograph {path} is missing; "
                                 "reinstall scikit-image")
        with Image.open(path) as im:
            images.append(center_crop_resize(im, resolution))
        ids.append(Path(fname).stem)
    return ReferenceSet(name, tuple(ids), np.stack(images),
                        f"center_crop+pil_bicubic@{resolution}")
