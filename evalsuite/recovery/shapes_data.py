"""The shapes world's training split as a recovery ``TrainingData`` source (no files needed).

Item ``i`` is item ``i`` of the world's ``train`` split (``evalsuite.worlds.shapes.splits``:
a scene, one of its captions and a texture seed, each a function of ``(seed, split, i)``),
rendered at the model's resolution by the world's deterministic renderer. The scenes are
disjoint from the test split's by construction (a hash partition of scene truths), so a model
recovered on them is evaluated on compositions it never saw -- the ``test`` split is refused.

The content sha256 (part of the recovery cache key) is that of ``(split, n, seed)``, the
renderer's version and the source code of the world's scene generator, captions, splits and
renderer (``world.py``, ``splits.py``): the items are a function of those, so the key moves
with any change to them, and a run that reuses a cached recovery does not have to draw 4096
scenes first. The items are drawn on the first ``item`` call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.io import sha256_bytes, sha256_json

TRAINABLE_SPLITS = ("train", "val")


def generator_sha256() -> str:
    """sha256 of what makes the world's items: the renderer's version and the source of its
    scene, caption and split code."""
    import evalsuite.worlds.shapes.splits as splits
    import evalsuite.worlds.shapes.world as world
    from evalsuite.worlds.shapes.data import RENDERER

    sources = [Path(m.__file__).read_bytes() for m in (world, splits) if m.__file__]
    return sha256_json({"renderer": RENDERER, "sources": [sha256_bytes(b) for b in sources]})


class ShapesTrainData:
    """The first ``n`` items of the shapes world's ``split`` (``train``; ``val`` allowed) for
    split seed ``seed``, rendered on demand."""

    def __init__(self, split: str = "train", n: int = 4096, seed: int = 0):
        if split not in TRAINABLE_SPLITS:
            raise ConfigError(f"recovery.data.split={split!r}: recovery trains on the shapes world's "
                              f"{' or '.join(TRAINABLE_SPLITS)} split; the test split is what "
                              "dataset=shapes evaluates on, and training on it would score memory")
        if n is None or int(n) < 1:
            raise ConfigError(f"recovery.data.n={n}: the shapes training set needs n >= 1 items")
        self.split, self.n, self.seed = split, int(n), int(seed)
        self._items: list[Any] | None = None
        self._sha256 = sha256_json({"split": split, "n": self.n, "seed": self.seed,
                                    "generator": generator_sha256()})

    def __len__(self) -> int:
        return self.n

    def item(self, index: int, resolution: int) -> tuple[np.ndarray, str]:
        """The render of item ``index`` at ``resolution`` pixels a side, and its caption."""
        from evalsuite.worlds.shapes.splits import split_items
        from evalsuite.worlds.shapes.world import render

        if self._items is None:
            self._items = split_items(self.split, self.n, self.seed)
        it = self._items[index]
        return render(it.scene, resolution, it.seed), it.caption

    def identity(self) -> dict[str, Any]:
        return {"source": "shapes_world", "split": self.split, "n": self.n, "seed": self.seed,
                "count": self.n, "sha256": self._sha256}
