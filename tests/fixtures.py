"""Small data files that tests write themselves (no download, no shipped data)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image


def write_coco(folder: Path, n_images: int = 12, captions_per_image: int = 5,
               shuffle_seed: int | None = None, year: str = "2014") -> Path:
    """A COCO-format captions file plus tiny JPEGs; returns the annotation path."""
    images = [{"id": 1000 + i, "file_name": f"COCO_val{year}_{1000 + i:012d}.jpg",
               "height": 16, "width": 16} for i in range(n_images)]
    anns = [{"id": 50_000 + 10 * i + j, "image_id": 1000 + i,
             "caption": f"image {i} caption {j} of a scene"}
            for i in range(n_images) for j in range(captions_per_image)]
    if shuffle_seed is not None:
        rng = random.Random(shuffle_seed)
        rng.shuffle(images), rng.shuffle(anns)
    ann_dir, img_dir = folder / "annotations", folder / f"val{year}"
    ann_dir.mkdir(parents=True, exist_ok=True), img_dir.mkdir(parents=True, exist_ok=True)
    path = ann_dir / f"captions_val{year}.json"
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    rng_img = np.random.default_rng(0)
    for im in images:
        Image.fromarray(rng_img.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            img_dir / im["file_name"])
    return path
