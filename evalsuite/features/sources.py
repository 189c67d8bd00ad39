"""Image sources: an ordered set of ids, one ``read`` per id, and a content identity.

The identity is what feature caches are keyed by, so it must change whenever any pixel can:
- ``StoreSource``: a sample store's manifest sha256 (it lists every PNG's sha256);
- ``ArraySource``: the sha256 of the pixels and ids (a ``ReferenceSet``);
- ``FolderSource``: the sha256 over (file name, file sha256) of every image in the folder.
  Hashing a large folder takes a while, so the result is remembered under the folder's
  (name, size, mtime) listing: an unchanged folder is only ``stat``-ed (``folder_digest``,
  which the COCO reference set uses for its image files too).

A reference set that reads its images lazily (``evalsuite.data.coco_reference``) is an image
source itself; ``ArraySource.from_reference`` passes it through unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.io import JsonCache, sha256_file, sha256_json
from evalsuite.images import decode_image, file_problem
from evalsuite.samples.store import SampleStore

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")


class ImageSource(Protocol):
    """What a pass over images needs: ids in a fixed order, a reader and an identity."""

    ids: Sequence[str]

    def read(self, image_id: str) -> np.ndarray: ...

    def identity(self) -> dict[str, Any]: ...


class StoreSource:
    """The samples of a ``SampleStore`` for the given ids (in that order)."""

    def __init__(self, store: SampleStore, ids: Sequence[str]) -> None:
        self.store, self.ids = store, list(ids)

    def read(self, image_id: str) -> np.ndarray:
        return self.store.read(image_id)

    def identity(self) -> dict[str, Any]:
        digest = self.store.manifest_sha256()
        if digest is None:
            raise EvalsuiteError(f"sample store {self.store.dir} has no manifest.json yet")
        return {"kind": "sample_store", "manifest_sha256": digest, "n": len(self.ids),
                "ids_sha256": sha256_json(self.ids)}


class DerivedSource:
    """Images computed in memory from another source's, batch by batch (e.g. a VAE round
    trip of reference photographs, in a notebook). A pass that decodes ``base`` anyway
    derives these from its decoded images, so each base image is decoded once; images of
    different sizes go through ``transform`` one size at a time."""

    def __init__(self, base: Any, transform: Callable[[np.ndarray], np.ndarray],
                 identity: dict[str, Any]) -> None:
        self.base: ImageSource = ArraySource.from_reference(base)
        self.transform, self._identity = transform, identity
        self.ids = list(self.base.ids)

    def on(self, base: ImageSource) -> "DerivedSource":
        """The same transform over ``base`` (an equal source object, read once in a pass)."""
        return DerivedSource(base, self.transform, self._identity)

    def derive(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The transform of ``images`` (base images, in order)."""
        out: list[np.ndarray] = [np.empty(0)] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for k, im in enumerate(images):
            groups.setdefault(im.shape, []).append(k)
        for group in groups.values():
            for k, im in zip(group, self.transform(np.stack([images[k] for k in group]))):
                out[k] = im
        return out

    def read(self, image_id: str) -> np.ndarray:
        return self.derive([self.base.read(image_id)])[0]

    def identity(self) -> dict[str, Any]:
        return {"kind": "derived", "base": self.base.identity(), "transform": self._identity}


class ArraySource:
    """Images already in memory (uint8, N x H x W x 3), e.g. a ``ReferenceSet``."""

    def __init__(self, name: str, ids: Sequence[str], images: np.ndarray,
                 describe: dict[str, Any]) -> None:
        if len(ids) != len(images):
            raise ValueError(f"{len(ids)} ids for {len(images)} images")
        self.name, self.ids, self.images = name, list(ids), images
        self._index = {i: k for k, i in enumerate(self.ids)}
        self._describe = describe

    @classmethod
    def from_reference(cls, ref: Any) -> "ImageSource":
        """Wrap an in-memory ``evalsuite.data.reference.ReferenceSet``; a reference that is an
        image source already (reads lazily: the COCO reference) is returned as is.

        The identity is the set's ``describe()`` without its imported statistics: those files
        do not change a pixel, so they must not change the feature-cache key.
        """
        if callable(getattr(ref, "read", None)) and callable(getattr(ref, "identity", None)):
            return ref
        described = {k: v for k, v in ref.describe().items() if k != "stats"}
        return cls(ref.name, ref.ids, ref.images, described)

    def read(self, image_id: str) -> np.ndarray:
        return self.images[self._index[image_id]]

    def identity(self) -> dict[str, Any]:
        return {"kind": "array", **self._describe}


class FolderSource:
    """The images directly inside a folder, sorted by file name; ids are the file stems."""

    def __init__(self, folder: str | Path, cache_dir: str | Path | None = None) -> None:
        self.dir = Path(folder).expanduser()
        if not self.dir.is_dir():
            raise EvalsuiteError(f"image folder {self.dir} does not exist or is not a folder")
        files = sorted((p for p in self.dir.iterdir()
                        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
                       key=lambda p: (p.stem, p.name))
        if not files:
            raise EvalsuiteError(f"image folder {self.dir} contains no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
        # Before anything is hashed or remembered: a folder named x.png or a dangling link
        # would otherwise fail deep inside a metric, after the cache was written.
        bad = [f"{p.name} {why}" for p in files for why in [file_problem(p)] if why]
        if bad:
            raise EvalsuiteError(f"image folder {self.dir}: {'; '.join(bad[:3])}"
                                 f"{f' (and {len(bad) - 3} more)' if len(bad) > 3 else ''}; "
                                 "remove or replace these entries")
        # Headers too (milliseconds a file): a file that is no image or is cut short is
        # refused here, not after the first metric pass has filled caches.
        headers = {p: image_header(p) for p in files}
        bad = [f"{p} {why}" for p, (_, why) in headers.items() if why]
        if bad:
            raise EvalsuiteError(f"image folder {self.dir}: {'; '.join(bad[:3])}"
                                 f"{f' (and {len(bad) - 3} more)' if len(bad) > 3 else ''}; "
                                 "replace or remove these files")
        self.sizes = {p.stem: size for p, (size, _) in headers.items()}  # (width, height)
        self.files = {p.stem: p for p in files}
        if len(self.files) != len(files):
            stems = [p.stem for p in files]
            dup = sorted({s for s in stems if stems.count(s) > 1})
            raise EvalsuiteError(f"image folder {self.dir} has several files per id: {dup[:5]}")
        self.ids = list(self.files)
        self._cache = JsonCache(Path(cache_dir) / "folders" if cache_dir else None)
        self._identity: dict[str, Any] | None = None

    def read(self, image_id: str) -> np.ndarray:
        return decode_image(self.files[image_id])

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            digest = folder_digest(self.dir, [p.name for p in self.files.values()], self._cache)
            self._identity = {"kind": "folder", "sha256": digest, "n": len(self.ids)}
        return self._identity


def folder_digest(folder: Path, names: Sequence[str], cache: JsonCache) -> str:
    """sha256 over (name, file sha256) of the files ``names`` (relative to ``folder``), in order.

    The digest is remembered in ``cache`` under the files' (name, size, mtime) listing, so an
    unchanged set of files is only ``stat``-ed; any change to a listed file rehashes.
    """
    listing = [(name, st.st_size, st.st_mtime_ns) for name in names
               for st in [(folder / name).stat()]]
    stamp = sha256_json({"dir": str(folder.resolve()), "files": listing})
    digest = cache.get(stamp)
    if digest is None:
        digest = sha256_json([(name, sha256_file(folder / name)) for name in names])
        cache.put(stamp, digest)
    return digest


_PNG_END = b"IEND\xaeB`\x82"


def image_header(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """``((width, height), None)`` from an image file's header, or ``(None, what is wrong)``.

    Reads the header and, for PNG, the last 12 bytes: a PNG cut short has no end chunk.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            size, fmt = im.size, im.format
    except Exception as e:  # Pillow raises many types for files that are not images
        return None, f"is unreadable or corrupt (not an image: {type(e).__name__})"
    if fmt == "PNG":
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 12))
            if not f.read().endswith(_PNG_END):
                return None, "is unreadable or corrupt (a truncated PNG: it has no end chunk)"
    return (int(size[0]), int(size[1])), None
