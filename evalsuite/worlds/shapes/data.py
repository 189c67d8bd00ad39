"""The shapes world's "COCO": a prompt set and reference images from one split.

``dataset=shapes`` is the first ``n`` items of a split (default the test split) as prompts;
each prompt's meta carries the scene truth, the split, the texture seed and a ``category``
(``one_object`` / ``two_objects``) for per-category breakdowns. ``reference=shapes`` renders
the same items (same split, ``n`` and seed as the dataset) at the model's resolution, so the
reference image of a prompt has the prompt's id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.data.reference import ReferenceSet
from evalsuite.errors import ConfigError
from evalsuite.features.stats_file import load_stats_map
from evalsuite.worlds.shapes.splits import split_items
from evalsuite.worlds.shapes.world import category, render, scene_to_dict

RENDERER = "shapes world renderer v1 (4x supersampled, box filter)"


def _check_n(n: int | None) -> int:
    if n is None or n < 1:
        raise ConfigError(f"dataset.n={n}: the shapes prompt set needs n >= 1 items.")
    return int(n)


def load_shapes_prompts(name: str = "shapes", split: str = "test", n: int | None = 64,
                        seed: int = 0, limit: int | None = None) -> PromptSet:
    """The first ``n`` items of ``split`` as prompts, ids ``<split>-NNNNNN``."""
    items = split_items(split, _check_n(n), seed)
    prompts = tuple(
        Prompt(id=it.id, text=it.caption,
               meta={"category": category(it.scene), "split": split,
                     "texture_seed": it.seed, "scene": scene_to_dict(it.scene)})
        for it in items
    )
    return PromptSet(name, prompts, f"evalsuite.worlds.shapes (split={split}, n={n}, "
                                    f"seed={seed})").head(limit)


def shapes_reference(name: str = "shapes", split: str = "test", n: int | None = 64,
                     seed: int = 0, resolution: int = 64,
                     stats: Mapping[str, str] | None = None,
                     cache_dir: str | Path | None = None) -> ReferenceSet:
    """Renders of the first ``n`` (None: 64) items of ``split`` at ``resolution`` pixels."""
    del cache_dir  # rendering is fast; nothing to remember
    imported = load_stats_map(stats)
    if resolution < 8:
        raise ConfigError(f"reference.resolution={resolution}: the shapes renderer needs >= 8 px.")
    items = split_items(split, _check_n(64 if n is None else n), seed)
    images = np.stack([render(it.scene, resolution, it.seed) for it in items])
    return ReferenceSet(name, tuple(it.id for it in items), images,
                        f"{RENDERER} at {resolution}x{resolution}, split={split}, seed={seed}",
                        imported)
