"""A tiny captioned image folder for recovery tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def image_folder(root: Path, n: int = 4, size: int = 48) -> Path:
    """``n`` seeded random RGB PNGs (``size`` px, not square-resized) and a captions.csv."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["file,caption"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(root / f"im{i}.png")
        rows.append(f"im{i}.png,a small picture number {i}")
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    return root
