"""MS-COCO photographs as the reference set of FID, KID and CMMD, read lazily from local disk.

Which images (``subset``):
- ``split``: every image listed under ``images`` in the annotation file (val2014: 40,504;
  val2017: 5,000), e.g. BK-SDM's "all val2014 images";
- ``prompts``: the images of the prompt subset, chosen exactly as the COCO prompt set with the
  same ``n`` and ``seed`` chooses them (``evalsuite.data.coco.load_coco_prompts`` is called,
  so the two selections cannot drift apart).
Ids are the zero-padded image ids (the prompt ids of ``load_coco_prompts``), sorted, so
neither the selection nor the order depends on the order of the annotation file.

Preprocessing (``resize``, ``features.resize.resize_square``): ``squash`` to resolution x
resolution ignoring aspect, ``center_crop`` then resize, or ``none`` (as stored); PIL bicubic
with antialiasing, uint8 RGB out (grayscale photographs replicated to RGB).

Nothing is held in memory but ids and file names: ``read`` decodes one file when a pass asks
for it. Missing files are reported when the set is built (before any generation); a file
that cannot be decoded is reported, by name, when it is read. The content hash covers every
file's sha256, the ids and the preprocessing; hashing 40K files takes a while, so the file
digest is remembered under the files' (name, size, mtime) listing (``folder_digest``, the
mechanism of ``FolderSource``) in ``cache_dir``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from evalsuite.data.coco import load_coco_prompts, read_coco_captions
from evalsuite.errors import EvalsuiteError
from evalsuite.features.resize import check_square_resize, resize_square, square_protocol
from evalsuite.features.sources import folder_digest
from evalsuite.features.stats_file import load_stats_map, stats_records
from evalsuite.images import decode_image
from evalsuite.io import JsonCache, sha256_json

SUBSETS = ("split", "prompts")


class CocoReference:
    """COCO images of one split (or of the prompt subset), preprocessed on read."""

    def __init__(self, name: str, annotations: str, images_dir: str, subset: str = "split",
                 n: int | None = None, seed: int = 0, resize: str = "center_crop",
                 resolution: int = 512, stats: Mapping[str, str] | None = None,
                 cache_dir: str | Path | None = None) -> None:
        """Select the images and check that every file exists (see the module docstring).

        Args:
            stats: metric name -> imported statistics file (validated now).
            cache_dir: where the files' digest is remembered (None: hash on every build).
        """
        if subset not in SUBSETS:
            raise EvalsuiteError(f"reference.subset={subset!r}; choose one of {list(SUBSETS)}")
        if subset == "split" and n is not None:
            raise EvalsuiteError(f"reference.n={n} applies to subset=prompts only; subset=split "
                                 "takes every image of the annotation file (set n=null)")
        self.resize = check_square_resize(resize, resolution, "reference.", "resolution") or "none"
        self.resolution = resolution if self.resize != "none" else None
        self.name, self.subset, self.n_requested, self.seed = name, subset, n, seed
        self.stats = load_stats_map(stats)
        self.dir = Path(images_dir).expanduser()
        self.files = self._select(annotations)  # id -> file name, sorted by id
        self.ids = list(self.files)
        self._check_files()
        self._cache = JsonCache(Path(cache_dir) / "folders" if cache_dir else None)

    def _select(self, annotations: str) -> dict[str, str]:
        if self.subset == "prompts":
            try:
                prompts = load_coco_prompts(self.name, annotations, self.n_requested, self.seed)
            except EvalsuiteError as e:  # its messages speak of dataset.n: say who asked
                raise EvalsuiteError(f"reference {self.name} (subset=prompts, n="
                                     f"{self.n_requested}, seed={self.seed}): {e}") from None
            chosen = {p.id: str(p.meta["file_name"]) for p in prompts}
        else:
            files, _ = read_coco_captions(annotations)
            chosen = {f"{image_id:012d}": name for image_id, name in files.items()}
        if not chosen:
            raise EvalsuiteError(f"COCO annotation file {annotations} lists no images")
        return dict(sorted(chosen.items()))

    def _check_files(self) -> None:
        if not self.dir.is_dir():
            raise EvalsuiteError(f"reference.images_dir={self.dir} is not a folder; download "
                                 "the COCO images of this split (e.g. val2014.zip) and point "
                                 "reference.images_dir (or paths.coco_dir) at them")
        missing = [name for name in self.files.values() if not os.path.isfile(self.dir / name)]
        if missing:
            raise EvalsuiteError(f"{len(missing)} of {len(self.files)} COCO images of reference "
                                 f"{self.name} are missing from {self.dir}, e.g. "
                                 f"{self.dir / missing[0]}" +
                                 (f" and {missing[1:4]}" if len(missing) > 1 else ""))

    @property
    def preprocess(self) -> str:
        return square_protocol(self.resize, self.resolution)

    def read(self, image_id: str) -> np.ndarray:
        """Decode and preprocess one photograph (uint8 RGB)."""
        return resize_square(decode_photo(self.dir / self.files[image_id]), self.resize,
                             self.resolution)

    @cached_property
    def sha256(self) -> str:
        """sha256 of every file's sha256, the ids and the preprocessing (computed once)."""
        digest = folder_digest(self.dir, list(self.files.values()), self._cache)
        return sha256_json({"files": digest, "ids": self.ids, "preprocess": self.preprocess})

    def identity(self) -> dict[str, Any]:
        """The images' identity (feature-cache key): content only, not name or stats files."""
        return {"kind": "coco_reference", "sha256": self.sha256, "n": len(self.ids)}

    def describe(self) -> dict[str, Any]:
        """What the record says about the set (as ``ReferenceSet.describe()``)."""
        d: dict[str, Any] = {"name": self.name, "n": len(self.ids), "sha256": self.sha256,
                             "preprocess": self.preprocess, "resolution": self.resolution,
                             "subset": self.subset}
        if self.subset == "prompts":
            d["seed"] = self.seed
        if self.stats:
            d["stats"] = stats_records(self.stats)
        return d


def decode_photo(path: Path) -> np.ndarray:
    """A photograph as uint8 RGB (H, W, 3) by ``evalsuite.images.decode_image``'s rules; any
    failure names the file."""
    if not os.path.lexists(path):
        raise EvalsuiteError(f"COCO image {path} has disappeared since the reference set was "
                             "built")
    try:
        return decode_image(path)
    except EvalsuiteError as e:  # "image <path> ...": say which set it belongs to
        raise EvalsuiteError(f"COCO {e}") from None
