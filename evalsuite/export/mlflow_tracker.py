"""MLflow: one MLflow run per record, in a file store or on a tracking server.

MLflow chooses its own run ids, so a record's run is found by the ``evalsuite.run_id`` tag
(searched before a run is created). That tag is set last, after every metric, param and
artifact: an export that fails halfway leaves no tagged run (the partial run is deleted), so
the next export does it again instead of taking the partial run for a done one.

MLflow's limits, met here (``mlflow_key``, ``mlflow_params``): names of params, metrics and
tags may hold only letters, digits, ``_ - . : /`` and spaces, at most 250 characters, and no
empty or ``.``/``..`` path segments; param values at most 6000 characters, tag values 8000;
at most 100 params and 1000 metrics per batch call. A name that had to change keeps its
original in the ``metric_name.<name>`` param; a truncated value says where the full one is
(the record file, attached as an artifact).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable

from evalsuite.export.base import Exported, ExportError, require
from evalsuite.export.payload import RUN_ID_TAG, Payload
from evalsuite.results.protocol import flatten

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def mlflow_key(name: str) -> str:
    """``name`` as a valid MLflow param/metric/tag name: other characters become ``_``, empty,
    ``.`` and ``..`` path segments are dropped or replaced, and a name over 250 characters is
    cut and ends with a hash of the whole name (so two long names stay apart)."""
    parts = [p for p in _BAD_CHARS.sub("_", str(name)).split("/") if p]
    key = "/".join("_" if p in (".", "..") else p for p in parts) or "_"
    if len(key) > MAX_KEY:
        key = f"{key[:MAX_KEY - 9]}-{_short_hash(str(name))}"
    return key


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def truncated(text: str, limit: int) -> str:
    """``text``, or its start and a note of the full length when it is over ``limit``."""
    if len(text) <= limit:
        return text
    note = f"...[{len(text)} characters; the full value is in the record artifact]"
    return text[:limit - len(note)] + note


def unique_keys(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Names made valid with ``mlflow_key``; two names that become one keep apart by a hash."""
    out: dict[str, Any] = {}
    for name, value in items:
        key = mlflow_key(name)
        if key in out:
            key = mlflow_key(f"{key[:MAX_KEY - 9]}-{_short_hash(name)}")
        out[key] = value
    return out


def mlflow_params(payload: Payload) -> dict[str, str]:
    """Every section of the payload flattened to dotted names (lists as JSON), made valid."""
    flat = flatten(payload.sections)
    params = {k: truncated(_text(v), MAX_PARAM_VALUE) for k, v in unique_keys(flat.items()).items()}
    for key, name in unique_keys((n, n) for n in payload.metrics).items():
        if key != name:  # say which record metric a changed name stands for
            params[mlflow_key(f"metric_name.{key}")] = truncated(name, MAX_PARAM_VALUE)
    return params


def mlflow_tags(payload: Payload) -> dict[str, str]:
    """The payload's tags (the run-id tag left out: it is set last) and the record's tags."""
    tags = {k: v for k, v in payload.tags.items() if k != RUN_ID_TAG}
    tags["evalsuite.tags"] = json.dumps(payload.user_tags)
    return {k: truncated(str(v), MAX_TAG_VALUE) for k, v in unique_keys(tags.items()).items()}


def file_store_uri(uri: str) -> str:
    """A ``file:`` URI with an absolute path (``file:results/mlruns`` is relative to here)."""
    if uri.startswith("file:") and not uri.startswith("file://"):
        return Path(uri[len("file:"):]).expanduser().resolve().as_uri()
    return uri


class MlflowExporter:
    """Exports payloads to the MLflow experiment ``experiment`` at ``tracking_uri``."""

    name = "mlflow"

    def __init__(self, tracking_uri: str, experiment: str):
        self.tracking_uri = file_store_uri(tracking_uri)
        self.experiment = experiment
        self._client: Any = None

    def check(self) -> None:
        """Import mlflow (the store is opened at the first export: opening a file store
        creates its folder, and nothing may be written before a run's work is done)."""
        if not self.experiment:
            raise ExportError("export.mlflow.experiment is empty; name the MLflow experiment")
        if self.tracking_uri.startswith("file:"):
            # MLflow 3 refuses its file store unless asked (it favours a database); a file
            # store is what this export is for when no server is given.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        require("mlflow")

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found else self._client.create_experiment(self.experiment)

    def find(self, run_id: str) -> str | None:
        """The MLflow run id of the record ``run_id`` in the experiment, or None."""
        found = self._client.get_experiment_by_name(self.experiment)
        if found is None:
            return None
        value = run_id.replace("\\", "\\\\").replace("'", "\\'")
        hits = self._client.search_runs([found.experiment_id], max_results=1,
                                        filter_string=f"tags.`{RUN_ID_TAG}` = '{value}'")
        return hits[0].info.run_id if hits else None

    def export(self, payload: Payload) -> Exported:
        """Create the run (unless it exists) with metrics, params, tags and artifacts."""
        if self._client is None:
            self.check()
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        existing = self.find(payload.run_id)
        if existing is not None:
            return Exported(self.name, payload.run_id, existing, False)
        run = self._client.create_run(self._experiment_id(), run_name=payload.name[:MAX_KEY],
                                      tags=mlflow_tags(payload))
        rid = run.info.run_id
        try:
            self._log(rid, payload)
            self._client.set_tag(rid, RUN_ID_TAG, payload.run_id)  # last: the export is done
            self._client.set_terminated(rid, "FINISHED")
        except Exception as e:
            self._client.delete_run(rid)
            raise ExportError(f"MLflow export of record {payload.run_id} to "
                              f"{self.tracking_uri} failed: {type(e).__name__}: {e}") from e
        return Exported(self.name, payload.run_id, rid, True)

    def _log(self, rid: str, payload: Payload) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in
                   unique_keys(payload.metrics.items()).items()]
        params = [Param(k, v) for k, v in mlflow_params(payload).items()]
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            self._client.log_batch(rid, metrics=metrics[i:i + METRICS_PER_BATCH])
        for i in range(0, len(params), PARAMS_PER_BATCH):
            self._client.log_batch(rid, params=params[i:i + PARAMS_PER_BATCH])
        for path in payload.files:
            self._client.log_artifact(rid, str(path))
