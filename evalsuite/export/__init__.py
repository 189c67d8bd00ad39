"""Export records to experiment trackers: Weights & Biases and MLflow (optional extras:
``pip install 'evalsuite[trackers]'``).

Each record becomes one tracker run holding its metric values (named as in the record), its
protocol and metric versions, config group choices, resolved config, overrides and provenance
(W&B config / MLflow params), tags for task, variant and protocol, and the record file (and a
preview PNG of its first images) as artifacts. Exporting a record twice finds the first
export and does nothing (W&B: the run id is the record's; MLflow: the ``evalsuite.run_id``
tag is searched first).

Two ways in: after a run, when ``export.<tracker>.enabled=true`` (``after_run``; the record
is written first, and a failed export warns, or with ``export.on_error=fail`` exits 2, the
record kept), and ``evalsuite export`` for the records of a results folder
(``export_records``). The trackers' packages are imported only when enabled, and checked
before any work (``exporters``): a missing one is an ``ExportError`` (exit status 2).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.export.base import Exported, Exporter, ExportError
from evalsuite.export.mlflow_tracker import MlflowExporter
from evalsuite.export.payload import Payload, payload_of
from evalsuite.export.preview import preview_png
from evalsuite.export.wandb_tracker import WandbExporter
from evalsuite.io import atomic_write_bytes

__all__ = ["Exported", "Exporter", "ExportError", "MlflowExporter", "Payload", "WandbExporter",
           "after_run", "export_record", "export_records", "exporters", "payload_of"]

log = logging.getLogger(__name__)
ON_ERROR = ("warn", "fail")


def exporters(settings: Mapping[str, Any] | None, results: str | Path) -> list[Exporter]:
    """The enabled trackers of the ``export`` settings, checked: their packages imported and
    settings valid, so a problem fails before any work (``ExportError``/``ConfigError``)."""
    if not settings:
        return []
    if settings.get("on_error", "warn") not in ON_ERROR:
        raise ConfigError(f"export.on_error={settings.get('on_error')!r}; choose one of "
                          f"{list(ON_ERROR)}")
    results = Path(results)
    found: list[Exporter] = []
    wb = settings.get("wandb") or {}
    if wb.get("enabled"):
        found.append(WandbExporter(str(wb.get("mode", "offline")), str(wb.get("project")),
                                   wb.get("entity"), wb.get("dir") or results))
    ml = settings.get("mlflow") or {}
    if ml.get("enabled"):
        uri = ml.get("tracking_uri") or (results / "mlruns").resolve().as_uri()
        found.append(MlflowExporter(str(uri), str(ml.get("experiment"))))
    for exporter in found:
        exporter.check()
    return found


def export_record(trackers: Iterable[Exporter], record: Mapping[str, Any], results: str | Path,
                  preview: int = 8) -> list[Exported]:
    """Export one record (its file ``<results>/records/<run_id>.json`` attached) to every
    tracker; every tracker is tried, then one ``ExportError`` names those that failed."""
    results = Path(results)
    path = results / "records" / f"{record['run_id']}.json"
    done, failed = [], []
    with tempfile.TemporaryDirectory(prefix="evalsuite-export-") as tmp:
        files = [path] if path.is_file() else []
        try:
            png = preview_png(record, results, preview)
        except EvalsuiteError as e:  # a damaged image costs the preview, not the export
            log.warning("no preview for record %s: %s", record["run_id"], e)
            png = None
        if png is not None:
            files.append(atomic_write_bytes(Path(tmp) / "preview.png", png))
        payload = payload_of(record, files)
        for tracker in trackers:
            try:
                done.append(tracker.export(payload))
            except Exception as e:  # noqa: BLE001 - any tracker failure: the record is safe
                failed.append(str(e) if isinstance(e, ExportError)
                              else f"{tracker.name}: {type(e).__name__}: {e}")
    if failed:
        raise ExportError("; ".join(failed))
    return done


def after_run(trackers: list[Exporter], settings: Mapping[str, Any] | None,
              record: Mapping[str, Any], results: str | Path) -> list[Exported]:
    """The export step of a run, after its record is written: a failure is logged (the run
    succeeds; ``evalsuite export`` retries it), or with ``on_error=fail`` raised."""
    if not trackers:
        return []
    settings = settings or {}
    try:
        done = export_record(trackers, record, results, int(settings.get("preview", 8)))
    except ExportError as e:
        retry = f"evalsuite export paths.results_dir={results} run_ids=[{record['run_id']}]"
        if settings.get("on_error") == "fail":
            raise ExportError(f"{e}. The record is written; export it again with: {retry}") from e
        log.warning("export failed (the record is written; retry with `%s`): %s", retry, e)
        return []
    for item in done:
        log.info("%s %s: %s", item.tracker, "exported" if item.created else "already had it",
                 item.ref)
    return done


def export_records(trackers: list[Exporter], records: Iterable[Mapping[str, Any]],
                   results: str | Path, preview: int = 8) -> tuple[list[Exported], list[str]]:
    """Export each record; returns what was exported (or found) and one message per record
    that failed (the others are still exported)."""
    done: list[Exported] = []
    failed: list[str] = []
    for record in records:
        try:
            done += export_record(trackers, record, results, preview)
        except ExportError as e:
            log.error("record %s: %s", record.get("run_id"), e)
            failed.append(f"{record.get('run_id')}: {e}")
    return done, failed
