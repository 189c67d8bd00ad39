"""The result record: one immutable JSON file per run, the only input to tables.

Fields (schema_version 2):
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

Optional fields that readers understand when present (added without a schema bump, because
a reader that ignores them still reads every number right):
- ``metrics[name].ci``: {low, high, n_resamples, level?}, a bootstrap interval of the value
  (``level`` defaults to 0.95);
- ``protocol``: {name, version, source, hash, fields, varies, modified}, the evaluation
  protocol the numbers were measured under (``evalsuite/protocols.py`` writes it; every run
  since the protocol group exists has one, ``custom`` when no preset was chosen;
  ``modified`` lists the overrides and unmet requirements that make a run depart from a
  named preset). Without it (older records), ``evalsuite.results.protocol`` derives the
  protocol from the dataset, reference set and resolution;
- ``overrides``: the command line's Hydra overrides;
- ``features_from_cache``: "role:extractor" of every feature set found in the feature cache
  (a CFG sweep's reference statistics are computed by its first run only);
- ``task``: "generate", "reconstruction" (decoder evaluation) or "score" (folders). Written
  by every task since the task pipeline (``evalsuite.tasks``); older generation records have
  none and older score records say ``kind: "score"``: ``Record.from_dict`` reads both, and
  readers switch on ``Record.task`` only;
- ``merge_claim``: the token of the merge claim a sharded run's record was written under
  (``evalsuite.tasks.claim``).

Non-finite values: the PSNR of identical images is ``inf``, which strict JSON cannot hold
(``json.dumps`` would write ``Infinity``, which strict parsers refuse). ``write_record`` stores
such a value as ``null`` plus a ``<key>_nonfinite`` marker ("inf", "-inf", "nan"), so a
reader that does not know the marker sees a missing value, never a wrong number or a crash;
``read_record`` turns it back into the float (records written with ``Infinity`` still read).

Damaged records: ``load_records`` (every reader: ``table``, ``report``, ``compare``, the tables
``run`` refreshes) skips a file that is truncated, empty, not a JSON object or fails
``record_problem``, with one warning naming the file and what is wrong; the rest of the folder
still reads. ``evalsuite doctor fix=true`` moves such files to ``quarantine/``.

Schema changes: when a change makes old records read wrong, bump ``SCHEMA_VERSION`` and add
``MIGRATIONS[old] = fn`` turning an ``old`` record into an ``old + 1`` one. ``load_records``
migrates every record forward in memory; the files on disk are never rewritten (immutable).
- 1 -> 2: ``task: "reconstruction"`` named its VAE round-trip pairing ``original``
  (``psnr/original``); it is ``reconstruction`` now, the name a generation run gives the same
  measurement (metrics, their ``pairing`` and ``skipped_metrics`` are renamed).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, get_args

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_create_bytes

SCHEMA_VERSION = 2

log = logging.getLogger(__name__)

# Top-level fields that, when present, must be JSON objects (or null) for readers to work.
_MAPPING_FIELDS = ("choices", "config", "model", "dataset", "sampler", "samples", "durations",
                   "provenance", "skipped_metrics")


def _renamed_pairing(name: str, old: str, new: str) -> str:
    metric, _, pairing = name.rpartition("/")
    return f"{metric}/{new}" if metric and pairing == old else name


def v1_to_v2(record: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: a decoder evaluation's ``<metric>/original`` is ``<metric>/reconstruction``
    (pure: a new dict; other records are returned as copies, unchanged)."""
    out = dict(record)
    if record.get("task") != "reconstruction":
        return out
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        out["metrics"] = {
            _renamed_pairing(k, "original", "reconstruction"):
                {**m, "pairing": "reconstruction"}
                if isinstance(m, dict) and m.get("pairing") == "original" else m
            for k, m in metrics.items()}
    skipped = record.get("skipped_metrics")
    if isinstance(skipped, dict):
        out["skipped_metrics"] = {_renamed_pairing(k, "original", "reconstruction"): v
                                  for k, v in skipped.items()}
    return out


#: version n -> function turning a version-n record into a version n+1 record (pure: returns a
#: new dict).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: v1_to_v2}


Task = Literal["generate", "reconstruction", "score"]
TASKS: tuple[str, ...] = get_args(Task)


@dataclass(frozen=True)
class Record:
    """A record as readers see it: the typed envelope, and the whole record in ``data``.

    ``task`` says which task section the record has (``model``/``sampler``/``samples`` for
    generate, ``vae``/``reconstructions`` for reconstruction, ``inputs`` for score).
    """

    task: Task
    run_id: str
    created_at: str
    metrics: dict[str, dict[str, Any]]
    protocol: dict[str, Any] | None
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], source: str = "record") -> "Record":
        """Type the envelope of ``record`` (a ``RecordError`` naming ``source`` if it is not
        a record); records older than the ``task`` field get theirs from what they hold."""
        if not isinstance(record, Mapping) or not isinstance(record.get("run_id"), str):
            raise RecordError(f"{source}: not an evalsuite record (no run_id)")
        metrics = record.get("metrics") or {}
        if not isinstance(metrics, Mapping):
            raise RecordError(f"{source}: metrics is a {type(metrics).__name__}, not an object")
        protocol = record.get("protocol")
        return cls(task_of(record), record["run_id"], str(record.get("created_at") or ""),
                   dict(metrics), dict(protocol) if isinstance(protocol, Mapping) else None,
                   dict(record))


def task_of(record: Mapping[str, Any]) -> Task:
    """The task a record comes from: its ``task`` field, or for records written before every
    task wrote one, ``kind: "score"`` -> score, anything else -> generate."""
    task = record.get("task")
    if task in TASKS:
        return task  # type: ignore[return-value]
    if task is not None:
        raise RecordError(f"record {record.get('run_id')}: unknown task {task!r}; this "
                          f"evalsuite reads {list(TASKS)}")
    return "score" if record.get("kind") == "score" else "generate"


NONFINITE = "_nonfinite"  # suffix of the key that marks a non-finite float stored as null


def encode_nonfinite(obj: Any) -> Any:
    """A copy of ``obj`` that strict JSON can hold: each non-finite float under a mapping key
    becomes ``null`` with a ``<key>_nonfinite`` marker next to it (see the module docstring);
    in a list, it becomes ``null``."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k], out[f"{k}{NONFINITE}"] = None, repr(v)  # 'inf', '-inf', 'nan'
            else:
                out[k] = encode_nonfinite(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if isinstance(v, float) and not math.isfinite(v) else encode_nonfinite(v)
                for v in obj]
    return obj


def restore_nonfinite(obj: Any) -> Any:
    """The inverse of ``encode_nonfinite``: markers turned back into floats (copy)."""
    if isinstance(obj, dict):
        out = {k: restore_nonfinite(v) for k, v in obj.items()}
        for k, v in obj.items():
            base = k[:-len(NONFINITE)] if isinstance(k, str) and k.endswith(NONFINITE) else None
            if base and base in out and out[base] is None and v in ("inf", "-inf", "nan"):
                out[base] = float(v)
                del out[k]
        return out
    if isinstance(obj, list):
        return [restore_nonfinite(v) for v in obj]
    return obj


class RecordError(EvalsuiteError):
    """A record cannot be read by this version of evalsuite."""


class NewerRecordError(RecordError):
    """A record from a newer evalsuite: valid, but not readable by this version."""


def new_run_id(config_hash: str, now: datetime | None = None) -> str:
    """Sortable, unique without coordination: UTC time, config hash prefix, random suffix."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{config_hash[:8]}-{secrets.token_hex(3)}"


def write_record(records_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write a record as ``<run_id>.json``; never overwrites (records are immutable).

    Every task writes ``SCHEMA_VERSION``; a record of an older schema (a tool or test that
    reproduces an old results folder) is written as it is, and readers migrate it."""
    version = record.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION \
            or not record.get("run_id"):
        raise ValueError("a record needs schema_version (1 to "
                         f"{SCHEMA_VERSION}) and run_id")
    data = json.dumps(encode_nonfinite(record), indent=2, sort_keys=True, default=str,
                      allow_nan=False).encode("utf-8")
    return atomic_create_bytes(Path(records_dir) / f"{record['run_id']}.json", data)


def migrate_record(record: dict[str, Any], source: str = "record") -> dict[str, Any]:
    """Bring ``record`` forward to ``SCHEMA_VERSION`` through ``MIGRATIONS``, one step at a time.

    Records from a newer evalsuite, or without a version, are refused with a ``RecordError``
    naming ``source``: guessing their meaning could put a number in the wrong column.
    """
    version = record.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise RecordError(f"{source}: no valid schema_version ({version!r}); not an evalsuite record")
    if version > SCHEMA_VERSION:
        raise NewerRecordError(f"{source}: schema_version {version} is newer than this evalsuite reads "
                          f"({SCHEMA_VERSION}); upgrade evalsuite to read it")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise RecordError(f"{source}: no migration from schema_version {version}")
        record = step(record)
        version += 1
        record["schema_version"] = version
    return record


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """One record file, migrated to the current schema; a ``RecordError`` naming the file and
    what is wrong when it cannot be read as a record."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (UnicodeDecodeError, ValueError) as e:
        empty = Path(path).stat().st_size == 0
        raise RecordError(f"{path}: {'empty file' if empty else f'not valid JSON ({e})'}") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{path}: a JSON {type(raw).__name__}, not an object")
    record = restore_nonfinite(migrate_record(raw, source=str(path)))
    problem = record_problem(record)
    if problem:
        raise RecordError(f"{path}: {problem}")
    return record


def record_problem(record: Any) -> str | None:
    """Why ``record`` (migrated) is not a record readers can use, or None.

    Checks what every reader relies on: ``run_id`` and ``created_at`` strings, the structured
    fields as objects, and each metric an object with a ``version`` and a numeric (or null)
    ``value``; a metric value that is text or a list would otherwise reach a table as a number.
    """
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not an object"
    for key in ("run_id", "created_at"):
        if not isinstance(record.get(key), str) or not record[key]:
            return f"{key} is missing or not a string"
    for key in _MAPPING_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key} is a {type(record[key]).__name__}, not an object"
    for key, value in (("samples.dir", (record.get("samples") or {}).get("dir")),
                       ("baseline_samples", record.get("baseline_samples"))):
        if value is not None and not isinstance(value, str):
            return f"{key} is a {type(value).__name__}, not a path"
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return "metrics is missing or not an object"
    for name, m in metrics.items():
        if not isinstance(m, dict) or "version" not in m:
            return f"metric {name!r} is not an object with a version"
        value = m.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            return f"metric {name!r} has value {value!r}, not a number"
    return None


def load_records(records_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every readable record in the folder, migrated to the current schema, oldest first.

    Temporary files are ignored; a damaged file is skipped with one warning naming it and
    what is wrong (``read_record``), so one bad file never breaks the folder."""
    folder = Path(records_dir)
    if not folder.is_dir():
        return []
    records = []
    # Skip dotfiles: pathlib's glob matches them, and ".tmp-*.json" are writes in progress.
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            records.append(read_record(path))
        except (RecordError, OSError) as e:
            log.warning("skipping record %s (run `evalsuite doctor` to inspect it, "
                        "`evalsuite doctor fix=true` to quarantine it)", e)
    return sorted(records, key=lambda r: (r.get("created_at", ""), r.get("run_id", "")))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
