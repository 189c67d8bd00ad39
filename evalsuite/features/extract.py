"""The one pass: every image is decoded once and handed to every consumer that needs it.

Consumers are (a) feature extractors whose features for this image set are not cached yet:
their rows stream into the feature cache, and (b) callbacks of metrics that take images
directly (paired and text-image metrics). ``FeaturePlan`` decides which features exist,
which must be computed, and hands out the cached files afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from evalsuite.features.base import FeatureExtractor
from evalsuite.features.cache import FeatureCache, FeatureFile, FeatureWriter, feature_key
from evalsuite.features.sources import ImageSource

log = logging.getLogger(__name__)

ImageConsumer = Callable[[Sequence[str], list[np.ndarray]], None]


@dataclass
class _Request:
    key: str
    role: str
    source: ImageSource
    extractor: FeatureExtractor
    file: FeatureFile | None


class FeaturePlan:
    """Feature files needed by the requested metrics, per image-set role ("samples", ...)."""

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache
        self._requests: dict[str, _Request] = {}

    def request(self, role: str, source: ImageSource, extractor: FeatureExtractor) -> str:
        """Ask for ``extractor``'s features of ``source``; returns the cache key.

        Requests with the same key (two metrics sharing an extractor) are merged.
        """
        images, ident = source.identity(), extractor.identity()
        key = feature_key(images, ident)
        if key not in self._requests:
            self._requests[key] = _Request(key, role, source, extractor, self.cache.get(key))
        return key

    def missing(self, role: str) -> list[_Request]:
        return [r for r in self._requests.values() if r.role == role and r.file is None]

    def cached(self) -> list[str]:
        return [f"{r.role}:{r.extractor.name}" for r in self._requests.values() if r.file]

    def file(self, key: str) -> FeatureFile:
        f = self._requests[key].file
        if f is None:
            raise RuntimeError(f"features {key} were not computed")
        return f

    def run_pass(self, role: str, source: ImageSource, batch_size: int,
                 consumers: Sequence[ImageConsumer] = (), desc: str = "") -> None:
        """One pass over ``source``: compute the missing features of ``role`` and feed
        ``consumers``; publishes every feature file atomically at the end."""
        todo = self.missing(role)
        if not todo and not consumers:
            return
        writers = [(r, self.cache.writer(r.key, source.ids, r.extractor.dims,
                                         source.identity(), r.extractor.identity()))
                   for r in todo]
        log.info("%s: %d images; features to compute: %s", desc or role, len(source.ids),
                 ", ".join(r.extractor.name for r in todo) or "none (cached)")
        try:
            image_pass(source, batch_size, [(r.extractor, w) for r, w in writers], consumers,
                       desc or role)
        except BaseException:
            for _, w in writers:
                w.abort()
            raise
        for r, w in writers:
            r.file = w.commit()


def image_pass(source: ImageSource, batch_size: int,
               extract: Sequence[tuple[FeatureExtractor, FeatureWriter]],
               consumers: Sequence[ImageConsumer], desc: str) -> None:
    """Decode each image of ``source`` once, in order, and feed every consumer.

    Extractors preprocess per image, so features do not depend on ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for extractor, _ in extract:
        extractor.load()
    ids = list(source.ids)
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    for chunk in tqdm(batches, desc=desc, unit="batch", disable=not batches):
        images = [source.read(i) for i in chunk]
        for consume in consumers:
            consume(chunk, images)
        for extractor, writer in extract:
            writer.append(extractor(images))
