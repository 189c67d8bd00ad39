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

Reference sets: in memory (``ReferenceSet``), read lazily (``CocoReference``, an image source
itself), or imported statistics only (``StatsOnlyReference``). A reference's imported
statistics (``reference.stats``: metric name -> ``.npz``) replace the reference features of
that FID metric; metrics that need reference images a stats-only reference lacks are skipped
with the reason. One INFO line per reference feature file says whether it was computed or
reused (``reference statistics computed: ...`` / ``reference statistics reused: ...``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from evalsuite import assets
from evalsuite.config.pairings import GENERATE_PAIRINGS, check_pairings
from evalsuite.data.prompts import PromptSet
from evalsuite.data.reference import (ReferenceSet, StatsOnlyReference, has_images,
                                      reference_stats)
from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.cache import FeatureCache, FeatureFile
from evalsuite.features.extract import FeaturePlan
from evalsuite.features.passes import run_passes
from evalsuite.features.sources import ArraySource, DerivedSource, ImageSource, StoreSource
from evalsuite.features.stats_file import ReferenceStats
from evalsuite.io import JsonCache, sha256_json
from evalsuite.metrics.base import DistributionMetric, Metric, PairedMetric, TextImageMetric
from evalsuite.metrics.bootstrap import bootstrap_ci, supports_bootstrap
from evalsuite.metrics.fid import FID
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)

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
    unavailable: Mapping[str, str] = field(default_factory=dict)  # pairing -> why not
    reference_stats: Mapping[str, ReferenceStats] = field(default_factory=dict)  # metric -> file
    # The samples are VAE reconstructions of the reference images (task=reconstruction): only
    # then do reconstruction-only metrics (rFID) mean what their name says.
    samples_are_reconstructions: bool = False
    # Pairings of two other image sets with equal ids (not the samples): pairing -> (images
    # scored, images they are compared with); the ``reconstruction`` pairing of a generation
    # run: the model's VAE round trips of the reference photographs vs the photographs.
    other_pairs: Mapping[str, tuple[ImageSource, ImageSource]] = field(default_factory=dict)


def evaluate(prompts: PromptSet, store: SampleStore, metrics: Mapping[str, Callable[[], Metric]], *,
             paired_with: Sequence[str] = (), baseline: SampleStore | None = None,
             reconstruction: DerivedSource | None = None,
             reference: ImageSource | ReferenceSet | StatsOnlyReference | None = None,
             assets_dir: str = "assets",
             allow_random_weights: bool = False, verify_assets: bool = True,
             batch_size: int = 16, cache_dir: str | Path | None = None, bootstrap: int = 0,
             bootstrap_seed: int = 0) -> EvalResult:
    """Score the samples in ``store`` with every metric, reading each image once: a
    convenience over ``evaluate_sources`` for notebooks and tests (``evalsuite run`` builds
    its ``Inputs`` in ``evalsuite.tasks``).

    Args:
        metrics: name -> factory of a fresh metric; a paired metric gets one instance per
            pairing in ``paired_with``, named ``<name>/<pairing>``.
        baseline: the un-ablated model's samples (same prompts and seeds), for ``baseline``.
        reconstruction: round trips of reference photographs computed from them in memory
            (a ``DerivedSource`` over the photographs), for ``reconstruction``.
        reference: the real images distribution metrics compare with (and its imported
            statistics, if any; a ``StatsOnlyReference`` has only those); defaults to the
            reconstruction's photographs.
        cache_dir: where metric values, features and weight digests are cached; None
            disables caching.
    """
    check_pairings(paired_with, GENERATE_PAIRINGS, "paired_with")
    ids = [p.id for p in prompts]
    if reference is None and reconstruction is not None:
        reference = reconstruction.base
    ref = ArraySource.from_reference(reference) if has_images(reference) else None
    other = {}
    if reconstruction is not None:
        # the photographs once: the same source object as the reference when it is one
        base = ref if ref is not None and ref.identity() == reconstruction.base.identity() \
            else reconstruction.base
        other["reconstruction"] = (reconstruction.on(base), base)
    inputs = Inputs(
        samples=StoreSource(store, ids), texts={p.id: p.text for p in prompts}, reference=ref,
        paired={"baseline": StoreSource(baseline, ids)} if baseline is not None else {},
        unavailable={"baseline": "no baseline: this run applies no ablation, so it is its own "
                                 "baseline", "reconstruction": "no reference set to reconstruct"},
        reference_stats=reference_stats(reference), other_pairs=other)
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
    # (samples, reference) feature keys of a distribution metric; reference None: imported
    feature_keys: tuple[str, str | None] | None = None


def evaluate_sources(inputs: Inputs, metrics: Mapping[str, Callable[[], Metric]],
                     paired_with: Sequence[str], opts: EvalOptions) -> EvalResult:
    """Score ``inputs`` with every metric: plan, one pass per image set, compute, cache."""
    t0 = time.perf_counter()
    res = EvalResult()
    cache = JsonCache(Path(opts.cache_dir) / "metrics" if opts.cache_dir else None)
    jobs = _plan(inputs, metrics, paired_with, opts, res, cache)
    plan = FeaturePlan(FeatureCache(Path(opts.cache_dir) / "features" if opts.cache_dir else None))
    ref_requests: dict[str, FeatureExtractor] = {}
    for job in list(jobs):
        try:
            job.metric.prepare(job.weights)
        except EvalsuiteError as e:  # e.g. imported statistics made with other weights
            _skip(res, job.name, e, opts)
            jobs.remove(job)
            continue
        if isinstance(job.metric, DistributionMetric):
            ex = job.metric.extractor
            ref_key = None
            if not _imports_stats(job.metric):
                assert inputs.reference is not None
                ref_key = plan.request("reference", inputs.reference, ex)
                ref_requests[ref_key] = ex
            job.feature_keys = (plan.request("samples", inputs.samples, ex), ref_key)
    res.features_cached = plan.cached()
    to_compute = _log_reused(plan, inputs.reference, ref_requests)
    _run_passes(inputs, jobs, plan, opts.batch_size)
    _log_computed(plan, inputs.reference, ref_requests, to_compute)
    for job in jobs:
        try:
            if job.feature_keys is not None:
                assert isinstance(job.metric, DistributionMetric)
                gen_key, ref_key = job.feature_keys
                job.metric.update_from_files(plan.file(gen_key),
                                             plan.file(ref_key) if ref_key else None)
            value = _compute(job.metric, opts)
        except EvalsuiteError as e:
            _skip(res, job.name, e, opts)
            continue
        if job.pairing:
            value["pairing"] = job.pairing
        cache.put(job.key, value)
        res.metrics[job.name] = value
    res.metrics = dict(sorted(res.metrics.items()))
    res.seconds = time.perf_counter() - t0
    return res


def _imports_stats(metric: Metric) -> bool:
    return isinstance(metric, FID) and metric.imported_stats is not None


def _source_name(source: ImageSource | None) -> str:
    return str(getattr(source, "name", None) or getattr(source, "dir", None) or "reference")


def _log_reused(plan: FeaturePlan, reference: ImageSource | None,
                requests: Mapping[str, FeatureExtractor]) -> set[str]:
    """Log the reference feature files found in the cache; return the keys still to compute."""
    missing = {r.key for r in plan.missing("reference")}
    for key, ex in requests.items():
        if key not in missing:
            f = plan.file(key)
            log.info("reference statistics reused: %s %s (%d images) -> %s",
                     _source_name(reference), ex.name, f.n, f.path)
    return missing


def _log_computed(plan: FeaturePlan, reference: ImageSource | None,
                  requests: Mapping[str, FeatureExtractor], keys: set[str]) -> None:
    for key in sorted(keys):
        f = plan.file(key)
        log.info("reference statistics computed: %s %s (%d images) -> %s",
                 _source_name(reference), requests[key].name, f.n, f.path)


def reference_features(reference: ImageSource, metrics: Mapping[str, DistributionMetric],
                       opts: EvalOptions) -> dict[str, FeatureFile]:
    """Features of ``reference`` for each metric's extractor, through the feature cache.

    Resolves and binds each metric's weights, computes what the cache lacks in one pass and
    logs, per feature file, whether it was computed or reused (as ``evaluate_sources`` does).
    Returns metric name -> ``FeatureFile`` (``evalsuite stats`` exports their statistics).
    """
    digests = Path(opts.cache_dir) / "sha256.json" if opts.cache_dir else None
    plan = FeaturePlan(FeatureCache(Path(opts.cache_dir) / "features" if opts.cache_dir else None))
    keys: dict[str, str] = {}
    requests: dict[str, FeatureExtractor] = {}
    for name, metric in metrics.items():
        metric.prepare(_resolve_weights(metric, opts, digests))
        keys[name] = plan.request("reference", reference, metric.extractor)
        requests[keys[name]] = metric.extractor
    to_compute = _log_reused(plan, reference, requests)
    plan.run_pass({"reference": reference}, opts.batch_size, desc="reference")
    _log_computed(plan, reference, requests, to_compute)
    return {name: plan.file(key) for name, key in keys.items()}


def _skip(res: EvalResult, name: str, error: EvalsuiteError, opts: EvalOptions) -> None:
    """Record why metric ``name`` could not be computed (or re-raise: ``on_error="raise"``)."""
    if opts.on_error == "raise":
        raise error
    log.warning("skipping metric %s: %s", name, error)
    res.skipped[name] = str(error)


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


def attach_reference_stats(name: str, metric: Metric,
                           stats: Mapping[str, ReferenceStats]) -> None:
    """Give metric ``name`` its imported statistics, if ``stats`` has a file for it.

    Raises ``EvalsuiteError`` when the file cannot serve it: the metric is not an FID (KID
    and CMMD need every reference feature, not a mean and covariance), or its dims differ.
    """
    if name not in stats:
        return
    if not isinstance(metric, FID):
        raise EvalsuiteError(f"reference.stats.{name}: imported statistics (mu, sigma) serve "
                             f"FID metrics only; {name} ({type(metric).__name__}) needs the "
                             "reference images' features")
    metric.use_reference_stats(stats[name])


def check_reference_stats(stats: Mapping[str, ReferenceStats],
                          metrics: Mapping[str, Callable[[], Metric]],
                          opts: EvalOptions | None = None) -> None:
    """Fail early (before generation) if an imported statistics file cannot serve its metric:
    wrong kind of metric, dims, feature settings and, with ``opts``, the weights the metric
    will use (resolved as ``evaluate`` resolves them; a missing file is left to ``evaluate``,
    which skips the metric with the reason).

    A file for a metric that is not configured is not an error (``evaluate`` logs it): the
    reference option may be shared by runs with other metric sets.
    """
    digests = Path(opts.cache_dir) / "sha256.json" if opts and opts.cache_dir else None
    for name in stats:
        if name not in metrics:
            continue
        metric = metrics[name]()
        attach_reference_stats(name, metric, stats)
        if opts is not None:
            try:
                weights = _resolve_weights(metric, opts, digests)
            except MissingAssetError:
                continue
            metric.prepare(weights)  # checks the weights against the file's provenance


def _unavailable(inputs: Inputs, name: str, metric: Metric, pairing: str | None) -> str | None:
    """Why ``metric`` cannot run on ``inputs`` (None: it can)."""
    if pairing is not None:
        present = pairing in inputs.paired or pairing in inputs.other_pairs
        return None if present else inputs.unavailable.get(
            pairing, f"no {pairing} images to pair with")
    if metric.reconstruction_only and not inputs.samples_are_reconstructions:
        return (f"{name} scores VAE reconstructions against their originals; these images are "
                "generated samples (use task=reconstruction, or score.reconstructions=true)")
    if isinstance(metric, TextImageMetric) and inputs.texts is None:
        return "no prompts for the images (give a prompts file)"
    if isinstance(metric, DistributionMetric) and inputs.reference is None \
            and name not in inputs.reference_stats:
        if inputs.reference_stats:
            fix = (f"reference images or a statistics file of its own (+reference.stats.{name}"
                   "=<.npz>)" if isinstance(metric, FID) else "reference images (imported "
                   "statistics serve FID only)")
            return (f"the reference has imported statistics only (for "
                    f"{', '.join(inputs.reference_stats)}), no images: {name} needs {fix}")
        return "no reference images to compare the distribution with"
    return None


def _input_identity(inputs: Inputs, metric: Metric, pairing: str | None) -> Any:
    if pairing in inputs.other_pairs:  # the samples are not part of it
        scored, other = inputs.other_pairs[pairing]
        return {pairing: scored.identity(), "compared_with": other.identity()}
    ident: dict[str, Any] = {"samples": inputs.samples.identity()}
    if pairing is not None:
        ident[pairing] = inputs.paired[pairing].identity()
    elif _imports_stats(metric):
        ident["reference"] = {"imported_stats": metric.imported_stats.sha256}
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
    for name in inputs.reference_stats:
        if name not in metrics:
            log.warning("reference.stats.%s: no metric %s in this run (metrics: %s); the file "
                        "is not used", name, name, ", ".join(metrics) or "none")
    for name, factory in metrics.items():
        first = factory()
        pairings: list[str | None] = list(paired_with) if isinstance(first, PairedMetric) else [None]
        for k, pairing in enumerate(pairings):
            full = f"{name}/{pairing}" if pairing else name
            metric = first if k == 0 else factory()
            try:
                if pairing is None:
                    attach_reference_stats(name, metric, inputs.reference_stats)
            except EvalsuiteError as e:
                _skip(res, full, e, opts)
                continue
            why = _unavailable(inputs, name, metric, pairing)
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
    other = {p: (*srcs, of(lambda j, p=p: j.pairing == p))
             for p, srcs in inputs.other_pairs.items()}
    run_passes(plan, batch_size, inputs.samples, paired, text, inputs.reference, other)
