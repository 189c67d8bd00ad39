"""``evalsuite stats``: export the reference statistics of every FID metric as ``.npz`` files.

Composes the same config as ``evalsuite run`` (``conf/stats.yaml`` extends ``conf/config.yaml``
with ``stats.out_dir``), builds the reference set and the FID metrics of the ``metrics``
group, computes the reference features through the run's feature cache (so a later
``evalsuite run`` reuses them, and a second ``stats`` reuses them too) and writes
``<out_dir>/<reference name>-<metric>-<key>.npz`` (``key``: 12 characters of the
feature-cache key, which names the reference set, extractor, resize and weights, so files
made with other settings never overwrite each other): float64 ``mu`` and ``sigma`` (what
pytorch-fid's ``calculate_frechet_distance`` and clean-fid take), ``n`` and a JSON
``provenance`` (the reference's ``describe()``, the metric's and extractor's identities, the
weights). ``reference.stats.<metric>=<that file>`` imports it again (``features/stats_file.py``).

It shares the pipeline's validation (``evalsuite.tasks.pipeline.context``: every setting, the
writable folders, metric factories, ``EvalOptions``, threads), and like every task writes
nothing until every check has passed. It is not a ``Task`` of ``execute``: it scores nothing
and writes no record, only the statistics files.

    evalsuite stats reference=coco2014_val_squash256 metrics=bk_sdm paths.coco_dir=/data/coco
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalsuite.config.build import build
from evalsuite.data.reference import has_images
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import reference_features
from evalsuite.features.sources import ArraySource
from evalsuite.features.stats_file import write_stats
from evalsuite.io import writes_held
from evalsuite.metrics.fid import FID
from evalsuite.results.provenance import provenance
from evalsuite.results.record import utc_now
from evalsuite.tasks.pipeline import context
from evalsuite.tasks.setup import check_writable, set_threads

log = logging.getLogger("evalsuite")


class StatsExport:
    """What the pipeline's ``context`` needs to know of this job: a metric that cannot be
    computed is an error (an export has nothing to skip to)."""

    name = "stats"
    on_error = "raise"


def stats_provenance(described: dict[str, Any], name: str, metric: Any, feature_file: Any,
                     software: dict[str, Any]) -> dict[str, Any]:
    """Where exported statistics come from (JSON-able): enough to tell two files apart.

    ``described``: the reference's ``describe()``; ``software``: ``results.provenance`` (both
    the same for every metric of one export, so computed once by the caller).
    """
    ex = metric.extractor
    return {"kind": "evalsuite reference statistics", "created_at": utc_now().isoformat(),
            "reference": described, "metric": name,
            "metric_identity": metric.identity(), "extractor": ex.identity(),
            "weights": ex.weights_record(), "feature_cache_key": feature_file.meta["key"],
            "n": feature_file.n, "statistics": "float64 mean and covariance (n - 1)",
            "software": software}


def export_stats(cfg: DictConfig) -> list[Path]:
    """Write one statistics file per FID metric of ``cfg``; return the paths written."""
    with writes_held():  # validate everything first; digest caches are written only then
        ctx = context(cfg, StatsExport(), None, ())  # type: ignore[arg-type]
        out_dir = check_writable(cfg.stats.out_dir)
        fids = {n: m for n, f in ctx.factories.items() if isinstance(m := f(), FID)}
        if not fids:
            raise EvalsuiteError(f"evalsuite stats exports FID statistics, but the metrics "
                                 f"({', '.join(ctx.factories) or 'none'}) have no FID; choose "
                                 "e.g. metrics=fid_legacy or metrics=fid_clean")
        reference = build(cfg.reference, "reference", cache_dir=str(ctx.results / "cache"))
        if not has_images(reference):
            raise EvalsuiteError(f"reference {reference.name} has no images (statistics only): "
                                 "there is nothing to compute statistics from")
    set_threads(cfg.get("threads"))
    files = reference_features(ArraySource.from_reference(reference), fids, ctx.opts)
    described, software = reference.describe(), provenance(cfg.device)
    written = []
    for name, feature_file in files.items():
        st = feature_file.stats()
        path = out_dir / f"{reference.name}-{name}-{feature_file.meta['key'][:12]}.npz"
        write_stats(path, st.mu, st.cov, st.n,
                    stats_provenance(described, name, fids[name], feature_file, software))
        log.info("wrote %s: %s statistics of %s (%d images, %d dims)", path, name,
                 reference.name, st.n, st.dims)
        written.append(path)
    return written
