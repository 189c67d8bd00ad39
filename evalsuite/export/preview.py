"""A preview PNG of a record's images: the first samples (or reconstructions) in one grid,
attached to the tracker run beside the record.

Only images inside the results folder are read (``evalsuite.results.grids.sample_folder``
confines a record's folder to it; a manifest entry must name a file in that folder), so a
crafted record cannot make an export upload other files.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from evalsuite.images import decode_image
from evalsuite.results.grids import sample_folder

COLUMNS = 4


def _image_files(folder: Path, n: int) -> list[Path]:
    """The first ``n`` images of the folder's manifest that are files in the folder."""
    try:
        entries = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["images"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    files = []
    for entry in entries if isinstance(entries, list) else []:
        name = str(entry.get("file") or f"{entry.get('id')}.png") if isinstance(entry, dict) else ""
        path = folder / name
        if name and Path(name).name == name and not name.startswith(".") and path.is_file() \
                and not path.is_symlink():
            files.append(path)
        if len(files) == n:
            break
    return files


def tile(images: list[np.ndarray], columns: int = COLUMNS) -> np.ndarray:
    """Images (H x W x 3 uint8, equal sizes) in a grid, row by row, black where none is."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    return grid


def preview_png(record: Mapping[str, Any], results: Path, n: int) -> bytes | None:
    """PNG bytes of the record's first ``n`` images in a grid, or None when it has none here
    (no sample folder in the results folder, an unreadable manifest, or ``n`` = 0)."""
    if n <= 0:
        return None
    for section in ("samples", "reconstructions"):
        folder = sample_folder((record.get(section) or {}).get("dir"), Path(results))
        files = _image_files(folder, n) if folder is not None else []
        images = [decode_image(p) for p in files]
        images = [im for im in images if im.shape == images[0].shape]
        if images:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(tile(images)).save(buf, format="PNG")
            return buf.getvalue()
    return None
