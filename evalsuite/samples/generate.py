"""Generate the missing images of a prompt set, optionally one shard of it.

Batches are fixed chunks of the prompt set in its order (chunk k = prompts [kB, (k+1)B)),
and shard i of n owns the chunks k with k mod n == i. Batched kernels round the last bits
differently for different batch compositions, so keeping the chunks fixed is what makes a
resumed run, or a run split into any number of shards, byte-identical to one uninterrupted
run: every image is always computed in the same batch. A chunk with any image missing is
recomputed whole; only the missing files are written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

from tqdm.auto import tqdm

from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.errors import ConfigError
from evalsuite.models.protocol import Generator
from evalsuite.samples.seeds import prompt_seed
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)


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
class SampleStats:
    dir: str
    generation_key: str
    count: int  # prompts in the set
    generated: int  # images this call generated
    reused: int  # images of this call's shard that already existed
    manifest_sha256: str | None  # None until every image of the set exists
    seconds: float


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def manifest_entries(prompts: PromptSet, run_seed: int) -> list[dict[str, Any]]:
    return [{"id": p.id, "text": p.text, "seed": prompt_seed(run_seed, p.id), **p.meta}
            for p in prompts]


def missing_by_shard(prompts: PromptSet, store: SampleStore, batch_size: int,
                     shard_count: int, run_seed: int | None = None) -> dict[int, list[str]]:
    """shard index -> ids of its images that are not in the store (only incomplete shards).

    With ``run_seed``, a stored image counts only if it was made for its prompt's text and
    seed (``SampleStore.valid_ids``); without, any intact image counts.
    """
    have = (store.valid_ids(manifest_entries(prompts, run_seed)) if run_seed is not None
            else store.existing_ids())
    out: dict[int, list[str]] = {}
    for k, chunk in enumerate(chunks(prompts.prompts, batch_size)):
        gone = [p.id for p in chunk if p.id not in have]
        if gone:
            out.setdefault(k % shard_count, []).extend(gone)
    return out


def generate_samples(generator: Generator, prompts: PromptSet, store: SampleStore,
                     run_seed: int, batch_size: int, shard: Shard = Shard(),
                     desc: str = "generate") -> SampleStats:
    """Generate this shard's missing images; write the manifest once the set is complete."""
    t0 = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    have = store.valid_ids(manifest_entries(prompts, run_seed))
    mine: list[Sequence[Prompt]] = [c for k, c in enumerate(chunks(prompts.prompts, batch_size))
                                    if shard.owns(k)]
    todo = [c for c in mine if any(p.id not in have for p in c)]
    n_mine = sum(len(c) for c in mine)
    n_missing = sum(p.id not in have for c in mine for p in c)
    where = f" (shard {shard.index} of {shard.count})" if shard.count > 1 else ""
    log.info("%s%s: %d of %d images to generate in %s", desc, where, n_missing, n_mine, store.dir)
    store.open()
    for chunk in tqdm(todo, desc=desc, unit="batch", disable=not todo):
        seeds = [prompt_seed(run_seed, p.id) for p in chunk]
        images = generator.generate([p.text for p in chunk], seeds)
        for p, s, img in zip(chunk, seeds, images):
            if p.id not in have:
                store.write(p.id, img, {"prompt": p.text, "seed": s})
    digest = None
    if not missing_by_shard(prompts, store, batch_size, 1, run_seed):
        # Every shard that completes the set writes the same bytes, atomically.
        digest = store.write_manifest(manifest_entries(prompts, run_seed))
    return SampleStats(str(store.dir), store.key, len(prompts), n_missing, n_mine - n_missing,
                       digest, time.perf_counter() - t0)
