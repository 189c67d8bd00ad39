"""The evaluation core, on plain objects: score images in one pass.

Nothing here sees a config. ``run.py`` (and ``score.py``) build the objects from one; a
notebook or a test can build them by hand and call ``evaluate`` or ``evaluate_sources``
directly (samples come from ``evalsuite.samples.generate.generate_samples``).

One pass: each image is decoded once; every metric that takes images (paired, text-image)
and every feature extractor that a distribution metric (FID, KID, CMMD) needs sees it in that
pass. Features are cached on disk per (image set, extractor identity) and reference
statistics per (reference set, protocol), so adding a metric or re-running computes only
what does not exist yet.

Metric values are cached too (``JsonCache``) under a key naming every input that changes
them: the metric's class, version and parameters, the weight files' sha256, the identity of
the images it scores (sample manifest, reference set, VAE) and the bootstrap settings. A
re-run therefore recomputes only what changed, and does not even load the model when nothing
did.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from evalsuite import assets
from evalsuite.data.prompts import PromptSet
from evalsuite.data.reference import ReferenceSet
from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.features.cache import FeatureCache
from evalsuite.features.extract import FeaturePlan
from evalsuite.features.passes import run_passes
from evalsuite.features.sources import ArraySource, ImageSource, StoreSource
from evalsuite.io import JsonCache, sha256_json
from evalsuite.metrics.base import DistributionMetric, Metric, PairedMetric, TextImageMetric
from evalsuite.metrics.bootstrap import bootstrap_ci, supports_bootstrap
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)

PAIRINGS = ("baseline", "reconstruction")


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
    features_cached: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate (nothing here changes a metric value, except ``bootstrap``'s CI)."""

    assets_dir: str | None = "assets"
    allow_random_weights: bool = False  # missing weight file -> seeded random weights
    verify_assets: bool = True  # False: accept stand-in files whose sha256 does not match
    on_error: str = "skip"  # "skip": record why a metric could not be computed; "raise"
    batch_size: int = 16
    cache_dir: str | Path | None = None  # metric values, features, digests; None: no cache
    bootstrap: int = 0  # resamples for confidence intervals (0: none)
    bootstrap_seed: int = 0


@dataclass
class Inputs:
    """What is scored: the samples, and what each kind of metric compares them with."""

    samples: ImageSource
    texts: Mapping[str, str] | None = None  # id -> prompt, for text-image metrics
    reference: ImageSource | None = None  # distribution metrics (FID, KID, CMMD)
    paired: Mapping[str, ImageSource] = field(default_factory=dict)  # pairing -> same ids
    reconstruction: Reconstruction | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)  # pairing -> why not


def evaluate(prompts: PromptSet, store: SampleStore, metrics: Mapping[str, Callable[[], Metric]], *,
             paired_with: Sequence[str] = (), baseline: SampleStore | None = None,
             reconstruction: Reconstruction | None = None,
             reference: ImageSource | ReferenceSet | None = None, assets_dir: str = "assets",
             allow_random_weights: bool = False, verify_assets: bool = True,
             batch_size: int = 16, cache_dir: str | Path | None = None, bootstrap: int = 0,
             bootstrap_seed: int = 0) -> EvalResult:
    """Score the samples in ``store`` with every metric, reading each image once.

    Args:
        metrics: name -> factory of a fresh metric; a paired metric gets one instance per
            pairing in ``paired_with``, named ``<name>/<pairing>``.
        baseline: the un-ablated model's samples (same prompts and seeds), for ``baseline``.
        reconstruction: reference photographs and the model's VAE, for ``reconstruction``.
        reference: the real images distribution metrics compare with; defaults to the
            reconstruction's reference photographs when those are given.
        cache_dir: where metric values, features and weight digests are cached; None
            disables caching.
    """
    unknown = set(paired_with) - set(PAIRINGS)
    if unknown:
        raise ValueError(f"unknown pairings {sorted(unknown)}; known: {PAIRINGS}")
    ids = [p.id for p in prompts]
    if isinstance(reference, ReferenceSet):
        reference = ArraySource.from_reference(reference)
    if reference is None and reconstruction is not None:
        reference = ArraySource.from_reference(reconstruction.reference)
    inputs = Inputs(
        samples=StoreSource(store, ids), texts={p.id: p.text for p in prompts},
        reference=reference,
        paired={"baseline": StoreSource(baseline, ids)} if baseline is not None else {},
        reconstruction=reconstruction,
        unavailable={"baseline": "no baseline: this run applies no ablation, so it is its own "
                                 "baseline",
                     "reconstruction": "no reference set to reconstruct"})
    opts = EvalOptions(assets_dir, allow_random_weights, verify_assets, "skip", batch_size,
                       cache_dir, bootstrap, bootstrap_seed)
    return evaluate_sources(inputs, metrics, paired_with, opts)


@dataclass
class _Job:
    """One metric instance on one set of inputs, with its cache key."""

    name: str
    metric: Metric
    pairing: str | None
    key: str
    weights: dict[str, assets.ResolvedAsset | None]
    feature_keys: tuple[str, str] | None = None  # (samples, reference) for distribution metrics


def evaluate_sources(inputs: Inputs, metrics: Mapping[str, Callable[[], Metric]],
                     paired_with: Sequence[str], opts: EvalOptions) -> EvalResult:
    """Score ``inputs`` with every metric: plan, one pass per image set, compute, cache."""
    t0 = time.perf_counter()
    res = EvalResult()
    cache = JsonCache(Path(opts.cache_dir) / "metrics" if opts.cache_dir else None)
    jobs = _plan(inputs, metrics, paired_with, opts, res, cache)
    plan = FeaturePlan(FeatureCache(Path(opts.cache_dir) / "features" if opts.cache_dir else None))
    for job in jobs:
        job.metric.prepare(job.weights)
        if isinstance(job.metric, DistributionMetric):
            assert inputs.reference is not None
            ex = job.metric.extractor
            job.feature_keys = (plan.request("samples", inputs.samples, ex),
                                plan.request("reference", inputs.reference, ex))
    res.features_cached = plan.cached()
    _run_passes(inputs, jobs, plan, opts.batch_size)
    for job in jobs:
        try:
            if job.feature_keys is not None:
                assert isinstance(job.metric, DistributionMetric)
                job.metric.update_from_files(*(plan.file(k) for k in job.feature_keys))
            value = _compute(job.metric, opts)
        except EvalsuiteError as e:
            if opts.on_error == "raise":
                raise
            log.warning("skipping metric %s: %s", job.name, e)
            res.skipped[job.name] = str(e)
            continue
        if job.pairing:
            value["pairing"] = job.pairing
        cache.put(job.key, value)
        res.metrics[job.name] = value
    res.metrics = dict(sorted(res.metrics.items()))
    res.seconds = time.perf_counter() - t0
    return res


def _compute(metric: Metric, opts: EvalOptions) -> dict[str, Any]:
    result = metric.compute()
    if opts.bootstrap > 0 and supports_bootstrap(metric):
        ci = bootstrap_ci(metric, result.n, opts.bootstrap, opts.bootstrap_seed)
        return {**result.to_dict(), "ci": ci}
    return result.to_dict()


def _resolve_weights(metric: Metric, opts: EvalOptions,
                     digest_cache: Path | None) -> dict[str, assets.ResolvedAsset | None]:
    found: dict[str, assets.ResolvedAsset | None] = {}
    for name in metric.required_assets():
        try:
            found[name] = assets.resolve(name, opts.assets_dir, digest_cache, opts.verify_assets)
        except assets.CorruptAssetError:
            raise  # a wrong file is never replaced by random weights
        except MissingAssetError:
            if not opts.allow_random_weights:
                raise
            found[name] = None  # the record will say "random weights"
    return found


def _unavailable(inputs: Inputs, metric: Metric, pairing: str | None) -> str | None:
    """Why ``metric`` cannot run on ``inputs`` (None: it can)."""
    if pairing == "reconstruction":
        return None if inputs.reconstruction else inputs.unavailable.get(pairing, "no reference")
    if pairing is not None:
        return None if pairing in inputs.paired else inputs.unavailable.get(
            pairing, f"no {pairing} images to pair with")
    if isinstance(metric, TextImageMetric) and inputs.texts is None:
        return "no prompts for the images (give a prompts file)"
    if isinstance(metric, DistributionMetric) and inputs.reference is None:
        return "no reference images to compare the distribution with"
    return None


def _input_identity(inputs: Inputs, metric: Metric, pairing: str | None) -> Any:
    if pairing == "reconstruction":
        assert inputs.reconstruction is not None
        return {"reference": inputs.reconstruction.reference.describe(),
                "vae": inputs.reconstruction.vae_identity}
    ident: dict[str, Any] = {"samples": inputs.samples.identity()}
    if pairing is not None:
        ident[pairing] = inputs.paired[pairing].identity()
    elif isinstance(metric, DistributionMetric):
        assert inputs.reference is not None
        ident["reference"] = inputs.reference.identity()
    elif isinstance(metric, TextImageMetric):
        assert inputs.texts is not None
        ident["texts"] = sha256_json([inputs.texts[i] for i in inputs.samples.ids])
    return ident


def _plan(inputs: Inputs, metrics: Mapping[str, Callable[[], Metric]], paired_with: Sequence[str],
          opts: EvalOptions, res: EvalResult, cache: JsonCache) -> list[_Job]:
    """Instantiate every (metric, pairing), skip what cannot run, and take cached values."""
    digests = Path(opts.cache_dir) / "sha256.json" if opts.cache_dir else None
    jobs: list[_Job] = []
    missing: list[str] = []
    for name, factory in metrics.items():
        first = factory()
        pairings: list[str | None] = list(paired_with) if isinstance(first, PairedMetric) else [None]
        for k, pairing in enumerate(pairings):
            full = f"{name}/{pairing}" if pairing else name
            metric = first if k == 0 else factory()
            why = _unavailable(inputs, metric, pairing)
            if why:
                log.info("skipping %s: %s", full, why)
                res.skipped[full] = why
                continue
            try:
                weights = _resolve_weights(metric, opts, digests)
            except MissingAssetError as e:
                missing.append(str(e))
                log.warning("skipping metric %s: %s", full, e)
                res.skipped[full] = str(e)
                continue
            key_in = {"metric": metric.identity(), "pairing": pairing,
                      "inputs": _input_identity(inputs, metric, pairing),
                      "weights": {a: v.sha256 if v else "random" for a, v in weights.items()}}
            if opts.bootstrap > 0:
                key_in["bootstrap"] = [opts.bootstrap, opts.bootstrap_seed]
            key = sha256_json(key_in)
            hit = cache.get(key)
            if hit is not None:
                res.metrics[full] = hit
                res.cached.append(full)
            else:
                jobs.append(_Job(full, metric, pairing, key, weights))
    if missing and opts.on_error == "raise":
        raise MissingAssetError("\n".join(dict.fromkeys(missing)))
    if res.cached:
        log.info("metric values reused from cache: %s", ", ".join(res.cached))
    return jobs


def _run_passes(inputs: Inputs, jobs: list[_Job], plan: FeaturePlan, batch_size: int) -> None:
    """Hand the jobs' metrics to ``features.passes.run_passes`` grouped by what they take."""
    def of(pred: Callable[[_Job], bool]) -> list[Metric]:
        return [j.metric for j in jobs if pred(j)]

    text = None
    if inputs.texts is not None:
        text = (inputs.texts, of(lambda j: isinstance(j.metric, TextImageMetric)))
    paired = {p: (src, of(lambda j, p=p: j.pairing == p)) for p, src in inputs.paired.items()}
    recon = None
    if inputs.reconstruction is not None:
        r = inputs.reconstruction
        recon = (ArraySource.from_reference(r.reference), r.reconstruct,
                 of(lambda j: j.pairing == "reconstruction"))
    run_passes(plan, batch_size, inputs.samples, paired, text, inputs.reference, recon)
