"""Bootstrap confidence intervals: resample the generated images (or pairs) with replacement.

For B resamples, draw per-image counts c ~ Multinomial(n, 1/n) (numpy ``default_rng(seed)``),
recompute the metric on the resample and report the percentile interval at ``level``, with
B, the seed and the method in the record. The reference set is kept fixed: the interval
describes the variability due to the finite set of generated images.

Caveat (recorded): FID and KID are biased in the number of distinct images, and a resample
has only ~63% distinct images, so their resampled values sit above the point estimate; the
interval's width is the informative part. Mean-of-values metrics (PSNR, SSIM, LPIPS, CLIP
score) have no such bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsuite.metrics.base import DistributionMetric, Metric

def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B, n) counts of each item in each resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def per_item_values(metric: Metric) -> np.ndarray | None:
    """The per-image (per-pair) values whose mean is ``metric``'s value, in the order the
    images were fed (the source's ids): a metric's ``item_values()``; None for metrics
    without per-image values (FID...)."""
    item_values = getattr(metric, "item_values", None)
    return np.asarray(item_values(), dtype=np.float64) if callable(item_values) else None


def mean_ci(values: np.ndarray, n_resamples: int, seed: int = 0,
            level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the finite ``values`` and its percentile bootstrap
    interval, resampling the values as ``bootstrap_ci`` resamples images."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    means = resample_counts(v.size, n_resamples, seed) @ v / v.size
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(v.mean()), float(lo), float(hi)


def _per_item_values(metric: Metric, counts: np.ndarray) -> np.ndarray:
    v = per_item_values(metric)
    assert v is not None
    finite = np.isfinite(v)  # PSNR of identical pairs (inf) is left out of the mean
    w = counts * finite
    return (w @ np.where(finite, v, 0.0)) / np.maximum(w.sum(axis=1), 1)


def supports_bootstrap(metric: Metric) -> bool:
    """Whether ``bootstrap_ci`` knows how to resample ``metric``."""
    return isinstance(metric, DistributionMetric) or callable(getattr(metric, "item_values", None))


def bootstrap_ci(metric: Metric, n: int, n_resamples: int, seed: int = 0,
                 level: float = 0.95) -> dict[str, Any]:
    """Percentile interval of ``metric`` (already computed) over ``n_resamples`` resamples."""
    counts = resample_counts(n, n_resamples, seed)
    if isinstance(metric, DistributionMetric):
        values = metric.bootstrap_values(counts)
        what = "generated images (reference set fixed)"
    else:
        values = _per_item_values(metric, counts)
        what = "images/pairs"
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return {"method": "percentile bootstrap", "level": level, "n_resamples": n_resamples,
            "seed": seed, "resampled": what, "low": float(lo), "high": float(hi),
            "std": float(np.std(values, ddof=1)) if n_resamples > 1 else 0.0,
            "mean": float(np.mean(values))}
