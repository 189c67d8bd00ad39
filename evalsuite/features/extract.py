"""The one pass: every image is decoded once and handed to every consumer that needs it.

A pass walks the ids of one or more image sources in lock-step (the samples and, when they
are compared pair by pair, the images with the same ids: the baseline's samples, or a
reference folder). Consumers are (a) feature extractors whose features for a source are not
cached yet; their rows stream into the feature cache, and (b) callbacks of metrics that take
images directly (paired and text-image metrics). ``FeaturePlan`` decides which features
exist, which must be computed, and hands out the cached files afterwards.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from evalsuite.errors import EvalsuiteError
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.cache import FeatureCache, FeatureFile, FeatureWriter, feature_key
from evalsuite.features.sources import ImageSource
from evalsuite.features.workers import PassRunner, plan_threads, window
from evalsuite.numerics import require_finite
from evalsuite.threads import intra_op_threads, pass_workers

log = logging.getLogger(__name__)

Images = Mapping[str, list[np.ndarray]]  # role -> the decoded images of one batch


@dataclass(frozen=True)
class Consumer:
    """A callback fed every batch: ``fn(ids, images_by_role)``; ``roles`` are decoded for it."""

    roles: tuple[str, ...]
    fn: Callable[[Sequence[str], Images], None]


@dataclass
class _Request:
    key: str
    role: str
    extractor: FeatureExtractor
    file: FeatureFile | None


class FeaturePlan:
    """Feature files needed by the requested metrics, per image-set role."""

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache
        self._requests: dict[str, _Request] = {}

    def request(self, role: str, source: ImageSource, extractor: FeatureExtractor) -> str:
        """Ask for ``extractor``'s features of ``source``; returns the cache key.

        Requests with the same key (two metrics sharing an extractor) are merged, so the
        network runs once and its features serve both.
        """
        key = feature_key(source.identity(), extractor.identity())
        if key not in self._requests:
            self._requests[key] = _Request(key, role, extractor, self.cache.get(key))
        return key

    def missing(self, role: str) -> list[_Request]:
        """Requests of ``role`` whose features are not on disk yet."""
        return [r for r in self._requests.values() if r.role == role and r.file is None]

    def cached(self) -> list[str]:
        """``role:extractor`` of every request found in the cache."""
        return sorted(f"{r.role}:{r.extractor.name}" for r in self._requests.values()
                      if r.file is not None)

    def file(self, key: str) -> FeatureFile:
        """The feature file of a request (after its pass)."""
        f = self._requests[key].file
        if f is None:
            raise RuntimeError(f"features {key} were not computed")
        return f

    def run_pass(self, sources: Mapping[str, ImageSource], batch_size: int,
                 consumers: Sequence[Consumer] = (), desc: str = "pass") -> None:
        """One pass over ``sources`` (role -> source, equal id lists): compute their missing
        features and feed ``consumers``; feature files are published atomically at the end."""
        todo = [r for role in sources for r in self.missing(role)]
        if not todo and not consumers:
            return
        ids = list(next(iter(sources.values())).ids)
        for role, src in sources.items():
            if list(src.ids) != ids:
                raise EvalsuiteError(f"{desc}: the {role} images do not have the same ids as "
                                     f"the others ({len(src.ids)} vs {len(ids)} images)")
        writers = [(r, self.cache.writer(r.key, ids, r.extractor.dims,
                                         sources[r.role].identity(), r.extractor.identity()))
                   for r in todo]
        log.info("%s: %d images; features to compute: %s", desc, len(ids),
                 ", ".join(f"{r.role}:{r.extractor.name}" for r in todo) or "none (cached)")
        try:
            image_pass(sources, ids, batch_size, [(r.role, r.extractor, w) for r, w in writers],
                       consumers, desc)
        except BaseException:
            for _, w in writers:
                w.abort()
            raise
        for r, w in writers:
            r.file = w.commit()


def image_pass(sources: Mapping[str, ImageSource], ids: Sequence[str], batch_size: int,
               extract: Sequence[tuple[str, FeatureExtractor, FeatureWriter]],
               consumers: Sequence[Consumer], desc: str) -> None:
    """Decode each needed image once, in id order, and feed every extractor and consumer.

    Extractors preprocess per image and run fixed micro-batches, so features do not depend on
    ``batch_size``; it is rounded up to a multiple of the micro-batches so that only the last
    one of the pass is padded. The micro-batches and consumer calls run concurrently, one
    intra-op thread each (``features.workers``); rows are written and consumers fed in order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    mb = max((ex.micro_batch for _, ex, _ in extract), default=1)
    batch_size = -(-batch_size // mb) * mb
    for _, extractor, _ in extract:
        extractor.load()
    roles = {role for role, _, _ in extract} | {r for c in consumers for r in c.roles}
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    workers, intra = plan_threads(pass_workers(), bool(extract), len(consumers))
    piece_intra = 0  # 0: each piece runs with the pass's intra-op count
    if any(hasattr(sources[r], "derive") for r in roles):
        # VAE round trips computed in the pass (derived sources) keep torch's thread count, as
        # before; the networks then run one piece at a time, each with the intra-op count of
        # any other pass, so a feature or metric value never depends on whether its pass
        # also derived images (CI: 2 intra-op threads moved FID by 1e-8 relative)
        workers, piece_intra, intra = 1, intra, 0
    pieces = sum(-(-batch_size // ex.micro_batch) for _, ex, _ in extract) + len(consumers)
    runner, inflight, done = PassRunner(workers), deque(), False
    try:
        with intra_op_threads(intra), tqdm(total=len(batches), desc=desc, unit="batch",
                                           disable=not batches) as bar:
            for chunk in batches:
                inflight.append(_submit(runner, chunk, _decode(sources, roles, chunk),
                                        extract, consumers, piece_intra))
                while inflight and (len(inflight) >= window(workers, pieces)
                                    or chunk is batches[-1]):
                    _retire(inflight.popleft(), extract)
                    bar.update()
        done = True
    finally:
        runner.close(cancel=not done)


def _decode(sources: Mapping[str, ImageSource], roles: set[str],
            chunk: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """The images of ``chunk`` per role; a source in two roles is read once, and a derived
    source whose base is in the pass is computed from its images (so derived ones last)."""
    decoded: dict[int, list[np.ndarray]] = {}
    for role in sorted(roles, key=lambda r: (hasattr(sources[r], "derive"), r)):
        src = sources[role]
        base = getattr(src, "base", None)
        if id(src) in decoded:
            continue
        if hasattr(src, "derive") and id(base) in decoded:
            decoded[id(src)] = src.derive(decoded[id(base)])
        else:
            decoded[id(src)] = [src.read(i) for i in chunk]
    return {role: decoded[id(sources[role])] for role in roles}


_Batch = tuple[list[list["Future[np.ndarray]"]], list["Future[None]"]]


def _submit(runner: PassRunner, chunk: Sequence[str], images: Images,
            extract: Sequence[tuple[str, FeatureExtractor, FeatureWriter]],
            consumers: Sequence[Consumer], intra: int = 0) -> _Batch:
    """Hand one batch's pieces to the runner: per extractor its micro-batches (features do
    not depend on how the images are split into calls), per consumer one call in its lane;
    ``intra`` > 0: each piece runs with that many intra-op threads (one runner thread only)."""
    rows = [[runner.submit(_threaded, intra, ex, images[role][s:s + ex.micro_batch])
             for s in range(0, len(chunk), ex.micro_batch)] for role, ex, _ in extract]
    fed = [runner.submit_ordered(k, _threaded, intra, c.fn, chunk, images)
           for k, c in enumerate(consumers)]
    return rows, fed


def _threaded(intra: int, fn: Callable[..., Any], *args: Any) -> Any:
    with intra_op_threads(intra):
        return fn(*args)


def _retire(batch: _Batch, extract: Sequence[tuple[str, FeatureExtractor, FeatureWriter]]) -> None:
    """Wait for a batch's pieces (raising the first error) and write its rows in order."""
    rows, fed = batch
    for f in fed:
        f.result()
    for parts, (role, extractor, writer) in zip(rows, extract):
        feats = np.concatenate([f.result() for f in parts])
        writer.append(require_finite(feats, f"feature extractor {extractor.name} "
                                            f"({role} images)"))
