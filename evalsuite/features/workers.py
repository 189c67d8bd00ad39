"""Running a pass's work concurrently: several network forwards at once, one thread each.

A pass's work on one batch of decoded images falls into independent pieces: each feature
extractor's micro-batches of each image role (each piece computes its own feature rows) and
each consumer's call (a metric's ``update``, which must see the batches in order). Left to
itself, torch splits every forward over all cores with intra-op threads, which wait for each
other between operations; on a small or shared machine that waiting costs CPU time (two
intra-op threads on a busy 2-core machine measured 3.5x the CPU time of one thread for the
same Inception forwards) and wall time. Here the pieces run on ``workers`` threads at once
while torch uses one intra-op thread:

- the CPU time is that of single-threaded forwards, and independent networks (Inception,
  CLIP, LPIPS' AlexNet) and the two image sets of a pass run side by side;
- every feature is computed by one thread whatever the machine, so cached features no longer
  depend on its core count (one vs two intra-op threads moved Inception features by up to
  7e-7);
- values are those of the same pass run piece by piece, bit for bit: a micro-batch has the
  same inputs and shape, and a consumer's calls run one after another in batch order.

A pass whose only work is consumers (metrics fed images, no features to compute) keeps
``workers // consumers`` intra-op threads each, so a single metric still uses every core.
A pass that computes VAE round trips of its images (a derived source, decoded on the main
thread) runs piece by piece with torch's thread count untouched, as before: the VAE keeps
every core and its reconstructions stay those of the same thread count.
Only a few batches are in flight (``window``), so memory stays flat in the number of images.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Hashable


class PassRunner:
    """Runs callables on ``workers`` threads at most: ``submit`` in any order, ``submit_ordered``
    one after another per lane (in submission order). With one worker every call runs at once
    on the calling thread (no threads), and its exception is raised there."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._slots = threading.Semaphore(self.workers)  # bounds concurrency, lanes included
        self._pool: ThreadPoolExecutor | None = None
        self._lanes: dict[Hashable, ThreadPoolExecutor] = {}

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._slots:
            return fn(*args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> "Future[Any]":
        """Run ``fn(*args)`` on any worker."""
        if self.workers == 1:
            return _done(fn(*args))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="evalsuite-pass")
        return self._pool.submit(self._run, fn, *args)

    def submit_ordered(self, lane: Hashable, fn: Callable[..., Any], *args: Any) -> "Future[Any]":
        """Run ``fn(*args)`` after every call submitted earlier on ``lane`` has finished."""
        if self.workers == 1:
            return _done(fn(*args))
        if lane not in self._lanes:
            self._lanes[lane] = ThreadPoolExecutor(1, thread_name_prefix="evalsuite-lane")
        return self._lanes[lane].submit(self._run, fn, *args)

    def close(self, cancel: bool = False) -> None:
        """Wait for the calls running now; ``cancel``: drop those not started."""
        for ex in [*([self._pool] if self._pool else []), *self._lanes.values()]:
            ex.shutdown(wait=True, cancel_futures=cancel)


def _done(value: Any) -> "Future[Any]":
    fut: Future[Any] = Future()
    fut.set_result(value)
    return fut


def plan_threads(workers: int, has_extractors: bool, n_consumers: int) -> tuple[int, int]:
    """(concurrent pieces, intra-op threads per piece) for a pass (see the module docstring)."""
    workers = max(1, workers)
    if has_extractors or n_consumers == 0:
        return workers, 1
    concurrent = min(workers, n_consumers)
    return concurrent, max(1, workers // concurrent)


def window(workers: int, pieces_per_batch: int) -> int:
    """Batches in flight: two (one decoded while another is scored), more when one batch has
    fewer pieces than twice the workers, so every worker has a piece to run."""
    return max(2, math.ceil(2 * workers / max(1, pieces_per_batch)))
