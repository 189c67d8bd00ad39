"""Seeded, order-independent train/val/test splits of the shapes world.

Disjointness is by a hash-partition of scene space: a scene's *truth key* (its objects keyed
by position, background excluded, so "A left of B" and "B right of A" are one key) is hashed
with sha256 into 20 buckets; buckets 0-15 are train (80%), 16-17 val, 18-19 test. A split
therefore never shares a scene truth (what a caption states) with another: test prompts
are combinations the training split never shows, as in compositional benchmarks.

Item ``i`` of a split depends only on ``(seed, split, i)``: its scene is drawn from a
generator seeded by ``sha256(f"{seed}/{split}/{i}/{attempt}")``, redrawing (attempt + 1)
until the scene falls in the split's buckets. So ``split_items(s, n)`` is a prefix of
``split_items(s, m)`` for ``n < m``. The split seed does not move the partition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.worlds.shapes.world import N_CAPTION_VARIANTS, Scene, caption, sample_scene

SPLITS = ("train", "val", "test")
_N_BUCKETS = 20
_BUCKETS = {"train": range(0, 16), "val": range(16, 18), "test": range(18, 20)}
_MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class Item:
    """One world sample: ``seed`` is the render's texture seed."""

    id: str
    scene: Scene
    caption: str
    seed: int


def truth_key(scene: Scene) -> str:
    """Canonical text of what a caption states: objects sorted by position."""
    slots = scene.slots()
    return ";".join(f"{p}:{o.size},{o.colour},{o.shape}" for p, o in sorted(slots.items()))


def split_of(scene: Scene) -> str:
    """The split whose hash-partition owns this scene's truth."""
    digest = hashlib.sha256(truth_key(scene).encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % _N_BUCKETS
    return next(name for name, buckets in _BUCKETS.items() if bucket in buckets)


def _item(split: str, i: int, seed: int) -> Item:
    for attempt in range(_MAX_ATTEMPTS):
        digest = hashlib.sha256(f"{seed}/{split}/{i}/{attempt}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:16], "big"))
        scene = sample_scene(rng)
        if split_of(scene) == split:
            variant = int(rng.integers(N_CAPTION_VARIANTS))
            texture_seed = int.from_bytes(digest[16:20], "big")
            return Item(f"{split}-{i:06d}", scene, caption(scene, variant), texture_seed)
    raise RuntimeError(f"no scene for {split} item {i} in {_MAX_ATTEMPTS} draws")  # p ~ 0.9**1000


def split_items(split: str, n: int, seed: int = 0) -> list[Item]:
    """The first ``n`` items of ``split`` ("train", "val" or "test") for ``seed``."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown shapes split {split!r}; choose one of {SPLITS}.")
    if n < 0:
        raise ConfigError(f"The number of items must be >= 0, not {n}.")
    return [_item(split, i, seed) for i in range(n)]
