"""The result record: one immutable JSON file per run, the only input to tables.

Fields (schema_version 1):
- ``schema_version``, ``run_id``, ``created_at`` (UTC ISO 8601), ``status`` ("complete");
- ``name``, ``tags``: the user's label for the run;
- ``choices``: which option of each config group was used (Hydra's runtime choices);
- ``config``: the resolved config; ``config_hash``: sha256 of it without ``paths``/``device``
  (where and on what a run happened does not change what was measured);
- ``model``: preset, weights identity (checkpoint sha256 or architecture + init seed), ablations,
  UNet config hash, parameter counts;
- ``dataset``: name, source, prompt-set sha256, number of prompts;
- ``sampler``: every sampler setting, plus the generation key of the samples;
- ``samples``: folder, manifest sha256, count, how many were generated vs. reused;
- ``metrics``: name -> {value, version, higher_is_better, n, settings, weights?, pairing?};
  ``skipped_metrics``: name -> reason;
- ``reference``: the reference set's identity when one was used;
- ``durations``: seconds per stage; ``provenance``: code version, git state, environment.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsuite.io import atomic_create_bytes

SCHEMA_VERSION = 1


def new_run_id(config_hash: str, now: datetime | None = None) -> str:
    """Sortable, unique without coordination: UTC time, config hash prefix, random suffix."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{config_hash[:8]}-{secrets.token_hex(3)}"


def write_record(records_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write a record as ``<run_id>.json``; never overwrites (records are immutable)."""
    if record.get("schema_version") != SCHEMA_VERSION or not record.get("run_id"):
        raise ValueError("a record needs schema_version and run_id")
    data = json.dumps(record, indent=2, sort_keys=True, default=str).encode("utf-8")
    return atomic_create_bytes(Path(records_dir) / f"{record['run_id']}.json", data)


def load_records(records_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete record in the folder, oldest first (temporary files are ignored)."""
    folder = Path(records_dir)
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        with open(path, encoding="utf-8") as f:
            records.append(json.load(f))
    return sorted(records, key=lambda r: (r.get("created_at", ""), r.get("run_id", "")))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
