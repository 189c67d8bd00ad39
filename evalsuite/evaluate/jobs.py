"""Which (metric, pairing) jobs run, which are skipped and why, and their cache keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evalsuite import assets
from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.evaluate.options import EvalOptions, EvalResult, Inputs, imports_stats, resolve_weights, skip
from evalsuite.evaluate.reference import attach_reference_stats
from evalsuite.io import JsonCache, sha256_json
from evalsuite.metrics.base import DistributionMetric, Metric, PairedMetric, TextImageMetric
from evalsuite.metrics.fid import FID

log = logging.getLogger("evalsuite.evaluate")


@dataclass
class Job:
    """One metric instance on one set of inputs, with its cache key."""

    name: str
    metric: Metric
    pairing: str | None
    key: str
    weights: dict[str, assets.ResolvedAsset | None]
    # (samples, reference) feature keys of a distribution metric; reference None: imported
    feature_keys: tuple[str, str | None] | None = None


def unavailable(inputs: Inputs, name: str, metric: Metric, pairing: str | None) -> str | None:
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
    if isinstance(metric, DistributionMetric) and metric.needs_reference \
            and inputs.reference is None \
            and name not in inputs.reference_stats:
        if inputs.reference_stats:
            fix = (f"reference images or a statistics file of its own (+reference.stats.{name}"
                   "=<.npz>)" if isinstance(metric, FID) else "reference images (imported "
                   "statistics serve FID only)")
            return (f"the reference has imported statistics only (for "
                    f"{', '.join(inputs.reference_stats)}), no images: {name} needs {fix}")
        return "no reference images to compare the distribution with"
    return None


def input_identity(inputs: Inputs, metric: Metric, pairing: str | None) -> Any:
    if pairing in inputs.other_pairs:  # the samples are not part of it
        scored, other = inputs.other_pairs[pairing]
        return {pairing: scored.identity(), "compared_with": other.identity()}
    ident: dict[str, Any] = {"samples": inputs.samples.identity()}
    if pairing is not None:
        ident[pairing] = inputs.paired[pairing].identity()
    elif imports_stats(metric):
        ident["reference"] = {"imported_stats": metric.imported_stats.sha256}
    elif isinstance(metric, DistributionMetric) and metric.needs_reference:
        assert inputs.reference is not None
        ident["reference"] = inputs.reference.identity()
    elif isinstance(metric, TextImageMetric):
        assert inputs.texts is not None
        ident["texts"] = sha256_json([inputs.texts[i] for i in inputs.samples.ids])
    return ident


def plan_jobs(inputs: Inputs, metrics: Mapping[str, Callable[[], Metric]],
              paired_with: Sequence[str], opts: EvalOptions, res: EvalResult,
              cache: JsonCache) -> list[Job]:
    """Instantiate every (metric, pairing), skip what cannot run, and take cached values."""
    digests = Path(opts.cache_dir) / "sha256.json" if opts.cache_dir else None
    jobs: list[Job] = []
    missing: list[str] = []
    for name in inputs.reference_stats:
        if name not in metrics:
            log.warning("reference.stats.%s: no metric %s in this run (metrics: %s); the file "
                        "is not used", name, name, ", ".join(metrics) or "none")
    for name, factory in metrics.items():
        first = factory()
        pairings: list[str | None] = list(paired_with) if isinstance(first, PairedMetric) else [None]
        for k, pairing in enumerate(pairings):
            metric = first if k == 0 else factory()
            job = _job(inputs, name, metric, pairing, opts, res, digests, missing)
            if job is None:
                continue
            hit = cache.get(job.key)
            if hit is not None:
                res.metrics[job.name] = hit
                res.cached.append(job.name)
            else:
                jobs.append(job)
    if missing and opts.on_error == "raise":
        raise MissingAssetError("\n".join(dict.fromkeys(missing)))
    if res.cached:
        log.info("metric values reused from cache: %s", ", ".join(res.cached))
    return jobs


def _job(inputs: Inputs, name: str, metric: Metric, pairing: str | None, opts: EvalOptions,
         res: EvalResult, digests: Path | None, missing: list[str]) -> Job | None:
    """The job of ``metric`` on ``pairing`` with its cache key, or None (skipped: why is in
    ``res.skipped``; a missing weight file is also added to ``missing``)."""
    full = f"{name}/{pairing}" if pairing else name
    try:
        if pairing is None:
            attach_reference_stats(name, metric, inputs.reference_stats)
    except EvalsuiteError as e:
        skip(res, full, e, opts)
        return None
    why = unavailable(inputs, name, metric, pairing)
    if why:
        log.info("skipping %s: %s", full, why)
        res.skipped[full] = why
        return None
    try:
        weights = resolve_weights(metric, opts, digests)
    except MissingAssetError as e:
        missing.append(str(e))
        log.warning("skipping metric %s: %s", full, e)
        res.skipped[full] = str(e)
        return None
    key_in = {"metric": metric.identity(), "pairing": pairing,
              "inputs": input_identity(inputs, metric, pairing),
              "weights": {a: v.sha256 if v else "random" for a, v in weights.items()}}
    if opts.bootstrap > 0:
        key_in["bootstrap"] = [opts.bootstrap, opts.bootstrap_seed]
    return Job(full, metric, pairing, sha256_json(key_in), weights)
