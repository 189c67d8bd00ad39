"""What ``evaluate_sources`` takes and returns, and the helpers every part of it shares."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from evalsuite import assets
from evalsuite.errors import EvalsuiteError, MissingAssetError
from evalsuite.features.sources import ImageSource
from evalsuite.features.stats_file import ReferenceStats
from evalsuite.metrics.base import Metric
from evalsuite.metrics.fid import FID

log = logging.getLogger("evalsuite.evaluate")


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
    # id -> category (PartiPrompts' Category, a world's prompt meta): per-image values keep it,
    # for per-category tables (``evaluate.perimage``).
    categories: Mapping[str, str] | None = None


def imports_stats(metric: Metric) -> bool:
    return isinstance(metric, FID) and metric.imported_stats is not None


def skip(res: EvalResult, name: str, error: EvalsuiteError, opts: EvalOptions) -> None:
    """Record why metric ``name`` could not be computed (or re-raise: ``on_error="raise"``)."""
    if opts.on_error == "raise":
        raise error
    log.warning("skipping metric %s: %s", name, error)
    res.skipped[name] = str(error)


def resolve_weights(metric: Metric, opts: EvalOptions,
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
