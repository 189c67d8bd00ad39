"""The evaluation core, on plain objects: generate what is missing, then score in one pass.

Nothing here sees a config. ``run.py`` builds the objects from one; a notebook or a test can
build them by hand and call ``generate_samples`` and ``evaluate`` directly.

Metric values are cached (``JsonCache``) under a key naming every input that changes them:
the metric's class, version and parameters, the weight file's sha256, and the identity of the
images it scores (sample manifests, reference set, VAE). A re-run therefore recomputes only
what changed, and does not even load the model when nothing did.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from evalsuite import assets
from evalsuite.data.prompts import PromptSet
from evalsuite.data.reference import ReferenceSet
from evalsuite.errors import MissingAssetError
from evalsuite.io import JsonCache, sha256_json
from evalsuite.metrics.base import Metric, PairedMetric, TextImageMetric
from evalsuite.models.protocol import Generator
from evalsuite.samples.seeds import prompt_seed
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
class Reconstruction:
    """Reference photographs, a VAE round trip (called lazily) and the VAE's identity."""

    reference: ReferenceSet
    reconstruct: Callable[[np.ndarray], np.ndarray]
    vae_identity: dict[str, Any]


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
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


@dataclass
class _Job:
    """One metric instance on one set of inputs, with its cache key."""

    name: str
    metric: Metric
    pairing: str | None
    key: str
    weights: dict[str, assets.ResolvedAsset | None]


def _resolve_weights(metric: Metric, assets_dir: str, allow_random: bool,
                     digest_cache: Path | None) -> dict[str, assets.ResolvedAsset | None]:
    found: dict[str, assets.ResolvedAsset | None] = {}
    for name in metric.required_assets():
        try:
            found[name] = assets.resolve(name, assets_dir, digest_cache)
        except MissingAssetError:
            if not allow_random:
                raise
            found[name] = None  # the record will say "random weights"
    return found


def evaluate(prompts: PromptSet, store: SampleStore, metrics: Mapping[str, Callable[[], Metric]], *,
             paired_with: Sequence[str] = (), baseline: SampleStore | None = None,
             reconstruction: Reconstruction | None = None, assets_dir: str = "assets",
             allow_random_weights: bool = False, batch_size: int = 16,
             cache_dir: str | Path | None = None) -> EvalResult:
    """Score the samples in ``store`` with every metric, reading each image once.

    Args:
        metrics: name -> factory of a fresh metric; a paired metric gets one instance per
            pairing in ``paired_with``, named ``<name>/<pairing>``.
        baseline: the un-ablated model's samples (same prompts and seeds), for ``baseline``.
        reconstruction: reference photographs and the model's VAE, for ``reconstruction``.
        cache_dir: where metric values (and weight digests) are cached; None disables it.
    """
    t0 = time.perf_counter()
    unknown = set(paired_with) - set(PAIRINGS)
    if unknown:
        raise ValueError(f"unknown pairings {sorted(unknown)}; known: {PAIRINGS}")
    res = EvalResult()
    cache = JsonCache(Path(cache_dir) / "metrics" if cache_dir else None)
    digests = Path(cache_dir) / "sha256.json" if cache_dir else None
    inputs = {"samples": store.manifest_sha256(),
              "baseline": baseline.manifest_sha256() if baseline else None,
              "reconstruction": ({"reference": reconstruction.reference.describe(),
                                  "vae": reconstruction.vae_identity} if reconstruction else None)}
    jobs: list[_Job] = []
    for name, factory in metrics.items():
        metric = factory()
        pairings: list[str | None] = [None]
        if isinstance(metric, PairedMetric):
            pairings = list(paired_with)
        for pairing in pairings:
            full = f"{name}/{pairing}" if pairing else name
            if pairing and inputs[pairing] is None:
                why = ("no baseline: this run applies no ablation, so it is its own baseline"
                       if pairing == "baseline" else "no reference set to reconstruct")
                log.info("skipping %s: %s", full, why)
                res.skipped[full] = why
                continue
            try:
                weights = _resolve_weights(metric, assets_dir, allow_random_weights, digests)
            except MissingAssetError as e:
                log.warning("skipping metric %s: %s", full, e)
                res.skipped[full] = str(e)
                continue
            key = sha256_json({"metric": metric.identity(), "pairing": pairing,
                               "inputs": inputs["samples"] if pairing is None else
                               [inputs["samples"] if pairing == "baseline" else None, inputs[pairing]],
                               "weights": {k: v.sha256 if v else "random" for k, v in weights.items()}})
            hit = cache.get(key)
            if hit is not None:
                res.metrics[full] = hit
                res.cached.append(full)
            else:
                jobs.append(_Job(full, metric if pairing == pairings[0] else factory(), pairing,
                                 key, weights))
    if res.cached:
        log.info("metric values reused from cache: %s", ", ".join(res.cached))
    for job in jobs:
        job.metric.prepare(job.weights)
    _sample_pass(prompts, store, baseline,
                 [j for j in jobs if j.pairing is None], [j for j in jobs if j.pairing == "baseline"],
                 batch_size)
    _reconstruction_pass(reconstruction, [j for j in jobs if j.pairing == "reconstruction"],
                         batch_size)
    for job in jobs:
        value = job.metric.compute().to_dict()
        if job.pairing:
            value["pairing"] = job.pairing
        cache.put(job.key, value)
        res.metrics[job.name] = value
    res.metrics = dict(sorted(res.metrics.items()))
    res.seconds = time.perf_counter() - t0
    return res


def _sample_pass(prompts: PromptSet, store: SampleStore, baseline: SampleStore | None,
                 text_image: list[_Job], paired: list[_Job], batch_size: int) -> None:
    """One pass over the samples: each PNG is decoded once and fed to every metric."""
    if not text_image and not paired:
        return
    for chunk in tqdm(chunks(prompts.prompts, batch_size), desc="metrics", unit="batch"):
        images = np.stack([store.read(p.id) for p in chunk])
        for job in text_image:
            assert isinstance(job.metric, TextImageMetric)
            job.metric.update(images, [p.text for p in chunk])
        if paired:
            assert baseline is not None
            ref = np.stack([baseline.read(p.id) for p in chunk])
            for job in paired:
                assert isinstance(job.metric, PairedMetric)
                job.metric.update(images, ref)


def _reconstruction_pass(reconstruction: Reconstruction | None, jobs: list[_Job],
                         batch_size: int) -> None:
    if not jobs:
        return
    assert reconstruction is not None
    images = reconstruction.reference.images
    for batch in tqdm(chunks(images, batch_size), desc="reconstruction", unit="batch"):
        recon = reconstruction.reconstruct(np.asarray(batch))
        for job in jobs:
            assert isinstance(job.metric, PairedMetric)
            job.metric.update(recon, np.asarray(batch))
