"""Training data for recovery: a ``TrainingData`` protocol and the image-folder source.

A source yields ``(image, caption)`` items by index: ``image`` is uint8 (H, W, 3) at the
model's resolution, or float32 latents (C, h, w) already in the UNet's latent space (a source
that has them, such as a synthetic world, skips the VAE). The order in which training visits
them is a function of the seed only (``epoch_order``), so a resumed run sees the same batches.
Every source checks itself completely when it is built -- before anything is written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.images import decode_image
from evalsuite.io import sha256_bytes, sha256_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CAPTION_FILES = ("captions.csv", "captions.jsonl")


@runtime_checkable
class TrainingData(Protocol):
    """A finite, indexable set of (image or latents, caption) pairs with a content identity."""

    def __len__(self) -> int: ...

    def item(self, index: int, resolution: int) -> tuple[np.ndarray, str]:
        """Item ``index``: (uint8 (H, W, 3) image at ``resolution`` or latents (C, h, w), caption)."""
        ...

    def identity(self) -> dict[str, Any]:
        """What the data is, with a ``sha256`` of its content (part of the recovery cache key)."""
        ...


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``range(n)`` that epoch ``epoch`` visits (a function of the seed)."""
    return np.random.default_rng([seed, epoch, 0x5EC0]).permutation(n)


def batch_indices(n: int, seed: int, first: int, size: int) -> list[int]:
    """Item indices of samples ``first .. first+size-1`` of the seeded stream of epochs."""
    out = []
    for c in range(first, first + size):
        out.append(int(epoch_order(n, seed, c // n)[c % n]))
    return out


def center_square(image: np.ndarray, resolution: int) -> np.ndarray:
    """Center-crop to a square, then resize (bicubic) to ``resolution`` pixels a side."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(image[top:top + side, left:left + side])
    if side != resolution:
        crop = crop.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return np.asarray(crop, dtype=np.uint8)


def _read_captions(path: Path) -> list[tuple[str, Any]]:
    """(file, caption) rows of a CSV (header ``file,caption``) or JSONL captions file."""
    rows: list[tuple[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EvalsuiteError(f"captions file {path} cannot be read: {e}") from e
    if path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise EvalsuiteError(f"captions file {path}, line {n}: not JSON ({e})") from e
            if not isinstance(obj, dict) or "file" not in obj:
                raise EvalsuiteError(f"captions file {path}, line {n}: needs an object with "
                                     "\"file\" and \"caption\"")
            rows.append((str(obj["file"]), obj.get("caption")))
        return rows
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"file", "caption"} <= set(reader.fieldnames):
        raise EvalsuiteError(f"captions file {path} needs a header line with the columns file,caption "
                             f"(found {reader.fieldnames})")
    return [(str(r["file"]), r["caption"]) for r in reader]


class ImageFolder:
    """A folder of images and a captions file (CSV ``file,caption`` or JSONL ``{"file",
    "caption"}``; default ``captions.csv`` or ``captions.jsonl`` in the folder).

    Refused when built, naming the problem: a missing folder or captions file, an empty set,
    an image the captions name that does not exist or cannot be decoded, an image in the
    folder without a caption, an empty caption, a file captioned twice.
    """

    def __init__(self, path: str, captions: str | None = None):
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise EvalsuiteError(f"recovery.data.path={path} is not a folder of training images")
        self.captions_path = self._captions_file(captions)
        rows = _read_captions(self.captions_path)
        self._check_rows(rows)
        self.files = [f for f, _ in rows]
        self.captions = [str(c).strip() for _, c in rows]
        digests = [self._check_image(f) for f in self.files]
        self._sha256 = sha256_json([[f, c, d] for f, c, d in zip(self.files, self.captions, digests)])

    def _captions_file(self, captions: str | None) -> Path:
        if captions is not None:
            p = Path(captions).expanduser()
            if not p.is_file():
                raise EvalsuiteError(f"recovery.data.captions={captions} does not exist")
            return p
        found = [self.path / n for n in CAPTION_FILES if (self.path / n).is_file()]
        if len(found) != 1:
            raise EvalsuiteError(f"recovery.data.path={self.path} needs exactly one captions file "
                                 f"({' or '.join(CAPTION_FILES)}) or recovery.data.captions=<file>; "
                                 f"found {len(found)}")
        return found[0]

    def _check_rows(self, rows: list[tuple[str, Any]]) -> None:
        if not rows:
            raise EvalsuiteError(f"the training set {self.captions_path} is empty: no (file, caption) rows")
        seen: set[str] = set()
        for f, c in rows:
            if f in seen:
                raise EvalsuiteError(f"{self.captions_path}: {f} is captioned twice; keep one row per image")
            seen.add(f)
            if c is None or not str(c).strip():
                raise EvalsuiteError(f"{self.captions_path}: image {f} has a missing or empty caption")
        on_disk = {p.name for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        uncaptioned = sorted(on_disk - seen)
        if uncaptioned:
            raise EvalsuiteError(f"{len(uncaptioned)} image(s) in {self.path} have no caption in "
                                 f"{self.captions_path} (e.g. {uncaptioned[:3]}); caption or remove them")

    def _check_image(self, name: str) -> str:
        """Decode the image once (an unreadable one fails here) and return its sha256."""
        p = self.path / name
        try:
            data = p.read_bytes()
        except OSError as e:
            raise EvalsuiteError(f"training image {p} (named in {self.captions_path}) cannot be "
                                 f"read: {e.strerror or e}") from e
        decode_image(p, data)
        return sha256_bytes(data)

    def __len__(self) -> int:
        return len(self.files)

    def item(self, index: int, resolution: int) -> tuple[np.ndarray, str]:
        return center_square(decode_image(self.path / self.files[index]), resolution), self.captions[index]

    def identity(self) -> dict[str, Any]:
        return {"source": "image_folder", "path": str(self.path.resolve()),
                "captions": str(self.captions_path.resolve()), "count": len(self),
                "sha256": self._sha256}
