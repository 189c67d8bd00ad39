"""What a tracker receives for one record, built once and tracker-neutral (pure functions).

A ``Payload`` holds the record's metric values under the record's own names, the sections
that say what was measured and how (identity, protocol, metric versions, config group
choices, the resolved config, the command line's overrides, provenance) and the tags a lab
filters by (task, variant, protocol). The protocol (name, version, hash) and each metric's
version travel with every export, in the run's config/params *and* tags, so an exported
number is never separated from the protocol it was measured under.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from evalsuite.results.protocol import protocol_of
from evalsuite.results.record import task_of
from evalsuite.results.store import variant_label

#: Tag (MLflow) / config key (W&B) holding the record's run id: how an export is found again.
RUN_ID_TAG = "evalsuite.run_id"


@dataclass(frozen=True)
class Payload:
    """One record, as trackers take it.

    ``run_id``: the record's run id (the tracker run's id or search key); ``name``: the run's
    display name (the variant label); ``metrics``: metric name -> float (values the record
    leaves null are not exported; ``inf``/``nan`` are kept); ``sections``: section name ->
    nested JSON-like value (the run's config); ``tags``: tag name -> text; ``user_tags``: the
    record's own ``tags`` list; ``files``: artifacts to attach (the record file first).
    """

    run_id: str
    name: str
    metrics: dict[str, float]
    sections: dict[str, Any]
    tags: dict[str, str]
    user_tags: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def metric_values(record: Mapping[str, Any]) -> dict[str, float]:
    """Metric name -> value, as the record names them; null values are left out."""
    out = {}
    for name, m in (record.get("metrics") or {}).items():
        value = m.get("value") if isinstance(m, Mapping) else None
        if value is not None and not isinstance(value, bool):
            out[str(name)] = float(value)
    return out


def protocol_section(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's protocol: name, version, hash, comparability key, source and departures
    (for records older than the protocol field: the key derived from dataset and reference)."""
    proto = protocol_of(record)
    named = record.get("protocol") if isinstance(record.get("protocol"), Mapping) else {}
    return {"name": named.get("name", proto.name), "version": named.get("version"),
            "hash": named.get("hash"), "key": proto.key, "source": named.get("source"),
            "modified": list(named.get("modified") or []), "fields": dict(proto.fields)}


def metric_versions(record: Mapping[str, Any]) -> dict[str, Any]:
    """Metric name -> {version, higher_is_better, n}: what each exported number means."""
    out = {}
    for name, m in (record.get("metrics") or {}).items():
        if isinstance(m, Mapping):
            out[str(name)] = {"version": m.get("version"),
                              "higher_is_better": m.get("higher_is_better"), "n": m.get("n")}
    return out


def payload_of(record: Mapping[str, Any], files: list[Path] | None = None) -> Payload:
    """The tracker-neutral payload of a record; ``files``: its artifacts (the record file
    first)."""
    proto = protocol_section(record)
    identity = {key: record.get(key) for key in
                ("run_id", "created_at", "schema_version", "config_hash", "name", "status")}
    identity["task"] = task_of(record)
    sections = {
        "evalsuite": identity,
        "protocol": proto,
        "metric_versions": metric_versions(record),
        "choices": dict(record.get("choices") or {}),
        "overrides": list(record.get("overrides") or []),
        "config": dict(record.get("config") or {}),
        "provenance": dict(record.get("provenance") or {}),
    }
    tags = {RUN_ID_TAG: str(record["run_id"]), "task": identity["task"],
            "variant": variant_label(record), "protocol": str(proto["key"]),
            "protocol.name": str(proto["name"]), "protocol.version": str(proto["version"]),
            "config_hash": str(record.get("config_hash"))}
    return Payload(str(record["run_id"]), variant_label(record), metric_values(record),
                   sections, tags, [str(t) for t in record.get("tags") or []], list(files or []))
