"""Reference image sets: real photographs that generated or reconstructed images are compared to.

The demo set is scikit-image's bundled photographs (no download): its colour photographs
plus a few grayscale ones replicated to RGB. Preprocessing is part of the set's identity:
centre crop to a square, then PIL bicubic resize (antialiased) to the target resolution
(``features.resize.resize_square``, the one square resize shared with the COCO reference
sets of ``evalsuite/data/coco_reference.py``).

Every reference target takes ``cache_dir`` (where digests are remembered) and ``stats``
(``reference.stats``: metric name -> ``.npz`` with ``mu``/``sigma``, see
``features/stats_file.py``): those FID metrics then use the file instead of features of the
images. ``stats_only`` is a reference with imported statistics
and no images at all; metrics that need reference images are skipped with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.features.resize import resize_square, square_protocol
from evalsuite.features.stats_file import ReferenceStats, load_stats_map, stats_records
from evalsuite.images import decode_image
from evalsuite.io import sha256_bytes

SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
                  "ihc.png", "motorcycle_left.png", "retina.jpg", "rocket.jpg",
                  "camera.png", "moon.png", "coins.png", "brick.png", "grass.png", "gravel.png")


@dataclass(frozen=True, eq=False)
class ReferenceSet:
    """Preprocessed reference images (uint8, N x H x W x 3) with ids and a content hash."""

    name: str
    ids: tuple[str, ...]
    images: np.ndarray
    preprocess: str
    stats: Mapping[str, ReferenceStats] = field(default_factory=dict)  # imported statistics

    @cached_property
    def sha256(self) -> str:
        """Over the pixels and ids; computed once (describe() is read by the protocol, the
        statistics check and the record of every run)."""
        return sha256_bytes(self.images.tobytes() + "\n".join(self.ids).encode())

    def describe(self) -> dict[str, Any]:
        """Name, size, content hash and preprocessing; ``stats`` only when files are imported
        (so sets without imported statistics keep their earlier descriptions)."""
        d: dict[str, Any] = {"name": self.name, "n": len(self.ids), "sha256": self.sha256,
                             "preprocess": self.preprocess,
                             "resolution": int(self.images.shape[1])}
        if self.stats:
            d["stats"] = stats_records(self.stats)
        return d


@dataclass(frozen=True, eq=False)
class StatsOnlyReference:
    """Imported reference statistics without images (``conf/reference/stats_only.yaml``)."""

    name: str
    stats: Mapping[str, ReferenceStats]
    ids: tuple[str, ...] = ()  # no images

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "n": 0, "images": False, "stats": stats_records(self.stats)}


def center_crop_resize(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop to a square, then PIL bicubic (antialiased) resize; returns uint8 RGB."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return resize_square(rgb, "center_crop", resolution)


def skimage_photos(name: str = "skimage_photos", resolution: int = 512,
                   stats: Mapping[str, str] | None = None,
                   cache_dir: str | Path | None = None) -> ReferenceSet:
    """scikit-image's bundled photographs, centre-cropped and resized to ``resolution``.

    ``cache_dir`` is the argument every reference target takes (``build(cfg.reference,
    "reference", cache_dir=...)``); 14 small photographs need nothing remembered there.
    """
    import skimage

    del cache_dir

    imported = load_stats_map(stats)  # validated first: a bad file fails before any decoding
    folder = Path(skimage.__file__).parent / "data"
    images, ids = [], []
    for fname in SKIMAGE_PHOTOS:
        path = folder / fname
        if not path.is_file():
            raise EvalsuiteError(f"scikit-image's bundled photograph {path} is missing; "
                                 "reinstall scikit-image")
        images.append(resize_square(decode_image(path), "center_crop", resolution))
        ids.append(Path(fname).stem)
    return ReferenceSet(name, tuple(ids), np.stack(images),
                        square_protocol("center_crop", resolution), imported)


def stats_only(name: str = "stats_only", stats: Mapping[str, str] | None = None,
               resolution: int | None = None,
               cache_dir: str | Path | None = None) -> StatsOnlyReference:
    """A reference made of imported statistics only (e.g. a published-style FID stats file).

    ``resolution`` and ``cache_dir`` are accepted because every reference target takes them;
    with no images there is nothing to resize or remember.
    """
    del resolution, cache_dir
    imported = load_stats_map(stats)
    if not imported:
        raise EvalsuiteError("reference=stats_only needs at least one statistics file: set "
                             "reference.stats={fid_legacy: /path/to/stats.npz} (metric name -> "
                             ".npz with mu and sigma)")
    return StatsOnlyReference(name, imported)


def reference_stats(reference: Any) -> Mapping[str, ReferenceStats]:
    """The imported statistics of any reference object ({} for one without ``stats``)."""
    return getattr(reference, "stats", None) or {}


def has_images(reference: Any) -> bool:
    """False for a reference that is only imported statistics."""
    return reference is not None and not isinstance(reference, StatsOnlyReference)


def check_stats_images(reference: Any) -> None:
    """Refuse imported statistics that say they were made from other images than the
    reference's own (files from ``evalsuite stats`` record the image set's sha256; files from
    clean-fid or pytorch-fid do not, and are taken on trust, recorded by their sha256)."""
    if not has_images(reference):
        return
    mine = reference.describe()
    for metric, st in reference_stats(reference).items():
        made_from = st.record().get("made_from")
        if made_from and made_from.get("sha256") != mine.get("sha256"):
            raise EvalsuiteError(
                f"reference.stats.{metric}: {st.path} was computed from the image set "
                f"{made_from.get('name')} (sha256 {str(made_from.get('sha256'))[:12]}, "
                f"{made_from.get('n')} images, {made_from.get('preprocess')}), not from this "
                f"reference's images ({mine.get('name')}, sha256 {str(mine.get('sha256'))[:12]}, "
                f"{mine.get('n')} images, {mine.get('preprocess')}); use reference=stats_only "
                "to compare with the file's images, or drop the file")
