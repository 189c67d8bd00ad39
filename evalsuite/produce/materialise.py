"""The one loop that turns an image producer into stored images: chunks, shards, resume, manifest.

Chunks are fixed slices of the id list (chunk k = ids [kB, (k+1)B)), and shard i of n owns
the chunks k with k mod n == i. Batched kernels round the last bits differently for different
batch compositions, so keeping the chunks fixed is what makes a resumed run, or a run split
into any number of shards, byte-identical to one uninterrupted run: every image is always
computed in the same batch. A chunk with any image missing is recomputed whole; only the
missing files are written. The manifest is written once every image of the set exists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from evalsuite.errors import ConfigError
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)


class ImageProducer(Protocol):
    """Something that makes images for ids: a text-to-image model, a VAE round trip."""

    verb: str  # what making an image is called in the log ("generate", "decode")

    def factors(self) -> dict[str, Any]:
        """Everything that changes a pixel of what ``make`` returns (the store key)."""

    def make(self, ids: Sequence[str]) -> Sequence[np.ndarray]:
        """uint8 (H, W, 3) images for ``ids``, in order (a stacked batch or a list)."""

    def info(self, image_id: str) -> dict[str, Any]:
        """What the PNG text chunk of ``image_id`` records (prompt, seed)."""

    def manifest(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The manifest rows (id, text, seed, ...) of ``ids``."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the chunks k with k mod count == index."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard.index={self.index}, shard.count={self.count}: need "
                              "count >= 1 and 0 <= index < count")

    def owns(self, chunk_number: int) -> bool:
        return chunk_number % self.count == self.index


@dataclass
class Materialised:
    """What one ``materialise`` call found and did."""

    dir: str
    key: str
    count: int  # ids in the set
    made: int  # images this call made
    reused: int  # images of this call's shard that already existed
    manifest_sha256: str | None  # None until every image of the set exists
    seconds: float


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Fixed slices of ``size`` items (the last one shorter)."""
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    return [items[i:i + size] for i in range(0, len(items), size)]


def missing_by_shard(entries: Sequence[dict[str, Any]], store: SampleStore, batch_size: int,
                     shard_count: int) -> dict[int, list[str]]:
    """shard index -> ids of its images not stored with the identity their manifest entry
    names (``SampleStore.valid_ids``; only incomplete shards)."""
    have = store.valid_ids(entries)
    out: dict[int, list[str]] = {}
    for k, chunk in enumerate(chunks([e["id"] for e in entries], batch_size)):
        gone = [i for i in chunk if i not in have]
        if gone:
            out.setdefault(k % shard_count, []).extend(gone)
    return out


def materialise(producer: ImageProducer, ids: Sequence[str], store: SampleStore,
                batch_size: int, shard: Shard = Shard(), desc: str = "generate") -> Materialised:
    """Make this shard's missing images of ``ids`` into ``store``; write the manifest once the
    whole set exists (every shard that completes it writes the same bytes, atomically)."""
    t0 = time.perf_counter()
    ids = list(ids)
    entries = producer.manifest(ids)
    # Only a stored image made for this very prompt text and seed (and intact) is reused.
    have = store.valid_ids(entries)
    mine = [c for k, c in enumerate(chunks(ids, batch_size)) if shard.owns(k)]
    todo = [c for c in mine if any(i not in have for i in c)]
    n_mine = sum(len(c) for c in mine)
    n_missing = sum(i not in have for c in mine for i in c)
    where = f" (shard {shard.index} of {shard.count})" if shard.count > 1 else ""
    log.info("%s%s: %d of %d images to %s in %s", desc, where, n_missing, n_mine,
             producer.verb, store.dir)
    if not todo:
        store.open()
    for chunk in tqdm(todo, desc=desc, unit="batch", disable=not todo):
        images = producer.make(chunk)
        store.open()  # after the first images exist: a model that fails to load leaves no folder
        for i, img in zip(chunk, images):
            if i not in have:
                store.write(i, img, producer.info(i))
    digest = None
    if not missing_by_shard(entries, store, batch_size, 1):
        digest = store.write_manifest(entries)
    return Materialised(str(store.dir), store.key, len(ids), n_missing, n_mine - n_missing,
                        digest, time.perf_counter() - t0)
