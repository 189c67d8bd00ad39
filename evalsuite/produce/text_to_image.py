"""The text-to-image producer: a prompt set, a run seed and a generator make the samples."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evalsuite.data.prompts import PromptSet
from evalsuite.models.interface import Generator
from evalsuite.samples.seeds import prompt_seed


def manifest_entries(prompts: PromptSet, run_seed: int) -> list[dict[str, Any]]:
    """The manifest rows of a prompt set: id, text, per-prompt seed and the prompt's meta."""
    return [{"id": p.id, "text": p.text, "seed": prompt_seed(run_seed, p.id), **p.meta}
            for p in prompts]


class TextToImage:
    """An ``ImageProducer``: one image per prompt id, from its text and its derived seed.

    ``factors`` (the store key) is given by the caller, who knows the model, ablations and
    sampler settings; ``generator`` is called only when an image is missing (it may load the
    model lazily).
    """

    verb = "generate"

    def __init__(self, generator: Generator, prompts: PromptSet, run_seed: int,
                 factors: dict[str, Any]) -> None:
        self.generator, self.prompts, self.run_seed = generator, prompts, run_seed
        self._factors = factors
        self._text = {p.id: p.text for p in prompts}

    def factors(self) -> dict[str, Any]:
        return self._factors

    def make(self, ids: Sequence[str]) -> np.ndarray:
        return self.generator.generate([self._text[i] for i in ids],
                                       [prompt_seed(self.run_seed, i) for i in ids])

    def info(self, image_id: str) -> dict[str, Any]:
        return {"prompt": self._text[image_id], "seed": prompt_seed(self.run_seed, image_id)}

    def manifest(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        wanted = set(ids)
        return [e for e in manifest_entries(self.prompts, self.run_seed) if e["id"] in wanted]
