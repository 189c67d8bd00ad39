"""``evaluate_sources``: plan, one pass per image set, compute, cache (and ``evaluate``,
the same for a prompt set and sample store, for notebooks and tests)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evalsuite.config.pairings import GENERATE_PAIRINGS, check_pairings
from evalsuite.data.prompts import PromptSet
from evalsuite.data.reference import ReferenceSet, StatsOnlyReference, has_images, reference_stats
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate.jobs import Job, plan_jobs
from evalsuite.evaluate.options import EvalOptions, EvalResult, Inputs, imports_stats, skip
from evalsuite.evaluate.reference import log_computed, log_reused
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.cache import FeatureCache
from evalsuite.features.extract import FeaturePlan
from evalsuite.features.passes import run_passes
from evalsuite.features.sources import ArraySource, DerivedSource, ImageSource, StoreSource
from evalsuite.io import JsonCache
from evalsuite.metrics.base import DistributionMetric, Metric, TextImageMetric
from evalsuite.evaluate.perimage import per_image_block
from evalsuite.metrics.bootstrap import bootstrap_ci, supports_bootstrap
from evalsuite.samples.store import SampleStore

log = logging.getLogger("evalsuite.evaluate")


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
        categories=prompts.categories() or None,
        paired={"baseline": StoreSource(baseline, ids)} if baseline is not None else {},
        unavailable={"baseline": "no baseline: this run applies no ablation, so it is its own "
                                 "baseline", "reconstruction": "no reference set to reconstruct"},
        reference_stats=reference_stats(reference), other_pairs=other)
    opts = EvalOptions(assets_dir, allow_random_weights, verify_assets, "skip", batch_size,
                       cache_dir, bootstrap, bootstrap_seed)
    return evaluate_sources(inputs, metrics, paired_with, opts)


def evaluate_sources(inputs: Inputs, metrics: Mapping[str, Callable[[], Metric]],
                     paired_with: Sequence[str], opts: EvalOptions) -> EvalResult:
    """Score ``inputs`` with every metric: plan, one pass per image set, compute, cache."""
    t0 = time.perf_counter()
    res = EvalResult()
    cache = JsonCache(Path(opts.cache_dir) / "metrics" if opts.cache_dir else None)
    jobs = plan_jobs(inputs, metrics, paired_with, opts, res, cache)
    plan = FeaturePlan(FeatureCache(Path(opts.cache_dir) / "features" if opts.cache_dir else None))
    ref_requests: dict[str, FeatureExtractor] = {}
    for job in list(jobs):
        try:
            job.metric.prepare(job.weights)
        except EvalsuiteError as e:  # e.g. imported statistics made with other weights
            skip(res, job.name, e, opts)
            jobs.remove(job)
            continue
        if isinstance(job.metric, DistributionMetric):
            ex = job.metric.extractor
            ref_key = None
            if job.metric.needs_reference and not imports_stats(job.metric):
                assert inputs.reference is not None
                ref_key = plan.request("reference", inputs.reference, ex)
                ref_requests[ref_key] = ex
            job.feature_keys = (plan.request("samples", inputs.samples, ex), ref_key)
    res.features_cached = plan.cached()
    to_compute = log_reused(plan, inputs.reference, ref_requests)
    feed_passes(inputs, jobs, plan, opts.batch_size)
    log_computed(plan, inputs.reference, ref_requests, to_compute)
    for job in jobs:
        try:
            if job.feature_keys is not None:
                assert isinstance(job.metric, DistributionMetric)
                gen_key, ref_key = job.feature_keys
                job.metric.update_from_files(plan.file(gen_key),
                                             plan.file(ref_key) if ref_key else None)
            value = _compute(job.metric, opts)
        except EvalsuiteError as e:
            skip(res, job.name, e, opts)
            continue
        if job.pairing:
            value["pairing"] = job.pairing
        block = per_image_block(job.metric, _fed_ids(inputs, job.pairing), inputs.categories)
        if block is not None:
            value["per_image"] = block
        cache.put(job.key, value)
        res.metrics[job.name] = value
    res.metrics = dict(sorted(res.metrics.items()))
    res.seconds = time.perf_counter() - t0
    return res


def _fed_ids(inputs: Inputs, pairing: str | None) -> Sequence[str]:
    """The ids a metric was fed, in order: the samples', or the scored images' of another
    pairing (``Inputs.other_pairs``)."""
    if pairing in inputs.other_pairs:
        return list(inputs.other_pairs[pairing][0].ids)
    return list(inputs.samples.ids)


def _compute(metric: Metric, opts: EvalOptions) -> dict[str, Any]:
    result = metric.compute()
    if opts.bootstrap > 0 and supports_bootstrap(metric):
        ci = bootstrap_ci(metric, result.n, opts.bootstrap, opts.bootstrap_seed)
        return {**result.to_dict(), "ci": ci}
    return result.to_dict()


def feed_passes(inputs: Inputs, jobs: list[Job], plan: FeaturePlan, batch_size: int) -> None:
    """Hand the jobs' metrics to ``features.passes.run_passes`` grouped by what they take."""
    def of(pred: Callable[[Job], bool]) -> list[Metric]:
        return [j.metric for j in jobs if pred(j)]

    text = None
    if inputs.texts is not None:
        text = (inputs.texts, of(lambda j: isinstance(j.metric, TextImageMetric)))
    paired = {p: (src, of(lambda j, p=p: j.pairing == p)) for p, src in inputs.paired.items()}
    other = {p: (*srcs, of(lambda j, p=p: j.pairing == p))
             for p, srcs in inputs.other_pairs.items()}
    run_passes(plan, batch_size, inputs.samples, paired, text, inputs.reference, other)
