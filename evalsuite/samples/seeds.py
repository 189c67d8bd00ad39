"""Per-prompt seeds: an image's noise depends on the run seed and its prompt id, nothing else."""

from __future__ import annotations

import hashlib


def prompt_seed(run_seed: int, prompt_id: str) -> int:
    """The seed of one prompt's image: a hash of the run seed and the prompt id (63 bits).

    Hashing (rather than ``run_seed + index``) keeps seeds of different prompts unrelated and
    makes them independent of the prompt's position, batch and shard.
    """
    digest = hashlib.sha256(f"{run_seed}/{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)
