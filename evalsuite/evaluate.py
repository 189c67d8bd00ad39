"""The evaluation core, on plain objects: generate what is missing, then score in one pass.

Nothing here sees a config. ``run.py`` builds the objects from one; a notebook or a test can
build them by hand and call ``generate_samples`` and ``evaluate`` directly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from evalsuite.data.prompts import PromptSet
from evalsuite.data.reference import ReferenceSet
from evalsuite.errors import MissingAssetError
from evalsuite.metrics.base import Metric, PairedMetric, TextImageMetric
from evalsuite.models.generator import Generator, prompt_seed
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)

PAIRINGS = ("baseline", "reconstruction")


@dataclass
class SampleStats:
    dir: str
    generation_key: str
    count: int
    generated: int
    reused: int
    manifest_sha256: str
    seconds: float


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def generate_samples(generator: Generator, prompts: PromptSet, store: SampleStore,
                     run_seed: int, batch_size: int, desc: str = "generate") -> SampleStats:
    """Generate the images of ``prompts`` that ``store`` does not have yet.

    Batches are fixed chunks of the prompt set in its order, and a chunk with any image
    missing is recomputed whole: batched kernels round differently for different batch
    compositions, so recomputing the same chunk is what makes a resumed run byte-identical to
    an uninterrupted one. Only the missing files are written.
    """
    t0 = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    have = store.existing_ids()
    todo = [c for c in chunks(prompts.prompts, batch_size) if any(p.id not in have for p in c)]
    n_missing = sum(p.id not in have for p in prompts)
    log.info("%s: %d of %d images to generate in %s", desc, n_missing, len(prompts), store.dir)
    store.open()
    for chunk in tqdm(todo, desc=desc, unit="batch", disable=not todo):
        seeds = [prompt_seed(run_seed, p.id) for p in chunk]
        images = generator.generate([p.text for p in chunk], seeds)
        for p, s, img in zip(chunk, seeds, images):
            if p.id not in have:
                store.write(p.id, img, {"prompt": p.text, "seed": s})
    entries = [{"id": p.id, "text": p.text, "seed": prompt_seed(run_seed, p.id)} for p in prompts]
    digest = store.write_manifest(entries)
    return SampleStats(str(store.dir), store.key, len(prompts), n_missing,
                       len(prompts) - n_missing, digest, time.perf_counter() - t0)


def _prepare(name: str, factory: Callable[[], Metric], assets_dir: str, allow_random: bool,
             skipped: dict[str, str]) -> Metric | None:
    metric = factory()
    try:
        metric.prepare(assets_dir, allow_random)
    except MissingAssetError as e:
        log.warning("skipping metric %s: %s", name, e)
        skipped[name] = str(e)
        return None
    return metric


def evaluate(prompts: PromptSet, store: SampleStore, metrics: Mapping[str, Callable[[], Metric]], *,
             paired_with: Sequence[str] = (), baseline: SampleStore | None = None,
             reference: ReferenceSet | None = None,
             reconstruct: Callable[[np.ndarray], np.ndarray] | None = None,
             assets_dir: str = "assets", allow_random_weights: bool = False,
             batch_size: int = 16) -> EvalResult:
    """Score the samples in ``store`` with every metric, reading each image once.

    Args:
        metrics: name -> factory of a fresh metric; a paired metric gets one instance per
            pairing in ``paired_with``, named ``<name>/<pairing>``.
        baseline: the un-ablated model's samples (same prompts and seeds), for ``baseline``.
        reference, reconstruct: reference photographs and the model's VAE round trip, for
            ``reconstruction``.
    """
    t0 = time.perf_counter()
    res = EvalResult()
    unknown = set(paired_with) - set(PAIRINGS)
    if unknown:
        raise ValueError(f"unknown pairings {sorted(unknown)}; known: {PAIRINGS}")
    text_image: dict[str, TextImageMetric] = {}
    paired: dict[str, dict[str, PairedMetric]] = {p: {} for p in paired_with}
    for name, factory in metrics.items():
        probe = factory()
        if isinstance(probe, TextImageMetric):
            m = _prepare(name, factory, assets_dir, allow_random_weights, res.skipped)
            if m is not None:
                text_image[name] = m  # type: ignore[assignment]
        elif isinstance(probe, PairedMetric):
            for pairing in paired_with:
                why = _pairing_unavailable(pairing, baseline, reference, reconstruct)
                if why:
                    log.info("skipping %s/%s: %s", name, pairing, why)
                    res.skipped[f"{name}/{pairing}"] = why
                    continue
                m = _prepare(f"{name}/{pairing}", factory, assets_dir, allow_random_weights, res.skipped)
                if m is not None:
                    paired[pairing][name] = m  # type: ignore[assignment]

    if text_image or paired.get("baseline"):
        _sample_pass(prompts, store, baseline, text_image, paired.get("baseline", {}), batch_size)
    if paired.get("reconstruction"):
        _reconstruction_pass(reference, reconstruct, paired["reconstruction"], batch_size)

    for name, m in text_image.items():
        res.metrics[name] = m.compute().to_dict()
    for pairing, ms in paired.items():
        for name, m in ms.items():
            res.metrics[f"{name}/{pairing}"] = {**m.compute().to_dict(), "pairing": pairing}
    res.seconds = time.perf_counter() - t0
    return res


def _pairing_unavailable(pairing: str, baseline: SampleStore | None,
                         reference: ReferenceSet | None, reconstruct: Any) -> str | None:
    if pairing == "baseline" and baseline is None:
        return "no baseline: this run applies no ablation, so it is its own baseline"
    if pairing == "reconstruction" and (reference is None or reconstruct is None):
        return "no reference set or VAE to reconstruct it with"
    return None


def _sample_pass(prompts: PromptSet, store: SampleStore, baseline: SampleStore | None,
                 text_image: Mapping[str, TextImageMetric],
                 paired: Mapping[str, PairedMetric], batch_size: int) -> None:
    """One pass over the samples: each PNG is decoded once and fed to every metric."""
    for chunk in tqdm(chunks(prompts.prompts, batch_size), desc="metrics", unit="batch"):
        images = np.stack([store.read(p.id) for p in chunk])
        for m in text_image.values():
            m.update(images, [p.text for p in chunk])
        if paired:
            assert baseline is not None
            ref = np.stack([baseline.read(p.id) for p in chunk])
            for m in paired.values():
                m.update(images, ref)


def _reconstruction_pass(reference: ReferenceSet | None, reconstruct: Any,
                         paired: Mapping[str, PairedMetric], batch_size: int) -> None:
    assert reference is not None and reconstruct is not None
    for batch in tqdm(chunks(reference.images, batch_size), desc="reconstruction", unit="batch"):
        recon = reconstruct(np.asarray(batch))
        for m in paired.values():
            m.update(recon, np.asarray(batch))
