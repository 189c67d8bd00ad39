"""The record every task writes (one envelope), and publishing it with the tables and report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from evalsuite.evaluate import EvalResult
from evalsuite.results.provenance import provenance
from evalsuite.results.record import (SCHEMA_VERSION, Record, new_run_id, utc_now,
                                      write_record)
from evalsuite.results.report import write_report
from evalsuite.results.tables import write_tables
from evalsuite.tasks.base import Context, Task
from evalsuite.tasks.setup import config_hash

log = logging.getLogger(__name__)


def record_envelope(ctx: Context, task: Task, ev: EvalResult,
                    durations: dict[str, float]) -> dict[str, Any]:
    """The parts of a record every task writes alike: identity, config, protocol, metric
    values with what was cached and skipped, durations and provenance."""
    cfg = ctx.cfg
    chash = config_hash(cfg, task.hash_inputs())
    envelope = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(chash),
        "created_at": utc_now().isoformat(),
        "task": task.name,
        "name": cfg.name,
        "tags": list(cfg.tags),
        "choices": ctx.choices,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": chash,
        "overrides": list(ctx.overrides),
        "protocol": task.protocol(),
        "metrics": ev.metrics,
        "metrics_from_cache": ev.cached,
        "features_from_cache": ev.features_cached,  # "role:extractor" found in the cache
        "skipped_metrics": ev.skipped,
        "allow_random_weights": bool(cfg.metrics.allow_random_weights),
        "durations": durations,
        "provenance": provenance(cfg.device),
    }
    if "shard" in cfg:
        envelope["sharding"] = {"count": ctx.shard.count, "merged_by": ctx.shard.index}
    return envelope


def publish(results: Path, record: dict[str, Any], report: bool = True) -> Path:
    """Write ``record`` (immutable), then refresh the tables and (``report``) the HTML report
    from all records. A multirun refreshes the report once, when it ends
    (``evalsuite.hydra_callbacks.ReportOnce``): it reads every record, so per cell it would
    cost a sweep of n cells n times the work."""
    Record.from_dict(record)  # the envelope every reader relies on is well-formed
    path = write_record(results / "records", record)
    log.info("wrote record %s", path)
    tables = write_tables(results)
    log.info("updated tables %s", ", ".join(str(t) for t in tables.values()))
    if not report:
        return path
    try:
        log.info("updated report %s", write_report(results))
    except Exception:  # noqa: BLE001 - the run's numbers are safe on disk already
        log.exception("could not write the HTML report (the record and tables are written)")
    return path
