"""Reference features and imported reference statistics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping

from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.evaluate.options import EvalOptions, resolve_weights
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.cache import FeatureCache, FeatureFile
from evalsuite.features.extract import FeaturePlan
from evalsuite.features.sources import ImageSource
from evalsuite.features.stats_file import ReferenceStats
from evalsuite.metrics.base import DistributionMetric, Metric
from evalsuite.metrics.fid import FID

log = logging.getLogger("evalsuite.evaluate")


def _source_name(source: ImageSource | None) -> str:
    return str(getattr(source, "name", None) or getattr(source, "dir", None) or "reference")


def log_reused(plan: FeaturePlan, reference: ImageSource | None,
                requests: Mapping[str, FeatureExtractor]) -> set[str]:
    """Log the reference feature files found in the cache; return the keys still to compute."""
    missing = {r.key for r in plan.missing("reference")}
    for key, ex in requests.items():
        if key not in missing:
            f = plan.file(key)
            log.info("reference statistics reused: %s %s (%d images) -> %s",
                     _source_name(reference), ex.name, f.n, f.path)
    return missing


def log_computed(plan: FeaturePlan, reference: ImageSource | None,
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
        metric.prepare(resolve_weights(metric, opts, digests))
        keys[name] = plan.request("reference", reference, metric.extractor)
        requests[keys[name]] = metric.extractor
    to_compute = log_reused(plan, reference, requests)
    plan.run_pass({"reference": reference}, opts.batch_size, desc="reference")
    log_computed(plan, reference, requests, to_compute)
    return {name: plan.file(key) for name, key in keys.items()}


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
                weights = resolve_weights(metric, opts, digests)
            except MissingAssetError:
                continue
            metric.prepare(weights)  # checks the weights against the file's provenance
