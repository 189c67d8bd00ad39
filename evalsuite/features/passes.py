"""The passes ``evaluate`` runs: which image sets are walked together, and who is fed.

1. The samples, in lock-step with the images they are paired with (the baseline's samples,
   or the reference folder in ``score``): text-image and paired metrics are fed, and missing
   features of every role present are computed. When the paired images are also the
   reference set, their features are computed here, so each of them is decoded once.
2. Each pairing of two other image sets (the stored VAE round trips of the reference
   photographs vs the photographs), together with the reference set when its features are
   still missing and it holds those photographs, so each photograph is decoded once. The
   reference may read its photographs lazily (the COCO reference): only one batch is
   decoded at a time.
3. The reference set, if its features are still missing after that.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features.extract import Consumer, FeaturePlan
from evalsuite.features.sources import ImageSource


def _groups(*sides: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """Stack a batch when all images share a shape; otherwise one group per image (folders
    of mixed sizes). Metrics that average per image give the same value either way."""
    if len({im.shape for im in sides[0]}) == 1:
        return [tuple(np.stack(s) for s in sides)]
    return [tuple(s[i][None] for s in sides) for i in range(len(sides[0]))]


def paired_consumer(metrics: Sequence[Any], pairing: str, first: str = "samples",
                    second: str | None = None) -> Consumer:
    """Feed ``metric.update(images[first], images[second])`` for images with the same id
    (``second`` defaults to the pairing's role)."""
    second = second or pairing

    def feed(ids: Sequence[str], images: Mapping[str, list[np.ndarray]]) -> None:
        gen, other = images[first], images[second]
        for i, a, b in zip(ids, gen, other):
            if a.shape != b.shape:
                raise EvalsuiteError(f"paired metrics ({pairing}): image {i!r} is "
                                     f"{a.shape[1]}x{a.shape[0]} in the {first} images but "
                                     f"{b.shape[1]}x{b.shape[0]} in the {second} images")
        for g, r in _groups(gen, other):
            for m in metrics:
                m.update(g, r)
    return Consumer((first, second), feed)


def text_consumer(metrics: Sequence[Any], texts: Mapping[str, str]) -> Consumer:
    """Feed ``metric.update(images, prompts)``."""
    def feed(ids: Sequence[str], images: Mapping[str, list[np.ndarray]]) -> None:
        samples = images["samples"]
        prompts = [texts[i] for i in ids]
        stacked = len({im.shape for im in samples}) == 1
        for m in metrics:
            if stacked:
                m.update(np.stack(samples), prompts)
            else:
                for im, t in zip(samples, prompts):
                    m.update(im[None], [t])
    return Consumer(("samples",), feed)


def run_passes(plan: FeaturePlan, batch_size: int, samples: ImageSource,
               paired: Mapping[str, tuple[ImageSource, Sequence[Any]]],
               text: tuple[Mapping[str, str], Sequence[Any]] | None,
               reference: ImageSource | None,
               other: Mapping[str, tuple[ImageSource, ImageSource, Sequence[Any]]]) -> None:
    """Run the passes (see the module docstring).

    Args:
        paired: pairing -> (its images, the paired metrics to feed).
        text: (id -> prompt, the text-image metrics to feed), or None.
        other: pairing -> (images scored, images compared with, the metrics to feed).
    """
    # one consumer per metric: the runner feeds different metrics at the same time
    consumers = [text_consumer([m], text[0]) for m in text[1]] if text else []
    sources: dict[str, ImageSource] = {"samples": samples}
    for pairing, (src, metrics) in paired.items():
        if metrics:
            sources[pairing] = src
            consumers += [paired_consumer([m], pairing) for m in metrics]
    plan.run_pass(sources, batch_size, consumers, desc="samples")

    ref_needed = reference is not None and bool(plan.missing("reference"))
    for pairing, (scored, compared, metrics) in other.items():
        if not metrics:
            continue
        if ref_needed and reference is not None and compared.identity() == reference.identity():
            feed = [paired_consumer([m], pairing, first=pairing, second="reference")
                    for m in metrics]
            plan.run_pass({"reference": reference, pairing: scored}, batch_size, feed,
                          desc="reference")
            ref_needed = False
        else:
            feed = [paired_consumer([m], pairing, first=pairing, second=f"{pairing}:with")
                    for m in metrics]
            plan.run_pass({pairing: scored, f"{pairing}:with": compared}, batch_size, feed,
                          desc=pairing)
    if ref_needed:
        plan.run_pass({"reference": reference}, batch_size, desc="reference")
