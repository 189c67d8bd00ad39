"""The results store: every record of a results folder, as dicts and as a pandas frame.

Fields are named the same way everywhere (table definitions, ``where`` filters, ``compare``
selections, plots):
- a bare config-group name (``model``, ``ablation``, ``dataset``, ``sampler``, ...) is the
  group's choice in that run (``model=tiny`` -> ``tiny``);
- a dotted path reads the record (``sampler.guidance_scale``, ``model.preset``,
  ``dataset.sha256``, ``metrics.fid.value``), falling back to the resolved config;
- computed fields: ``ablations`` (ablation names joined by "+", "-" for none), ``variant`` (the
  row label used when a table lists one row per variant), ``protocol`` (protocol key),
  ``protocol.<field>`` (a field of the record's protocol).

A ``where`` mapping selects records whose every field equals the given value (or any of the
values, for a list; ``[]`` is a value, "no ablations"). Nested mappings are read as dotted
keys, so Hydra's ``+where.sampler.steps=25`` and ``where: {"sampler.steps": 25}`` mean the
same; the value ``"*"`` matches anything (it lifts a filter that a table definition sets).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from evalsuite.errors import EvalsuiteError
from evalsuite.results.protocol import CellKey, flatten, protocol_of
from evalsuite.results.record import load_records, task_of

if TYPE_CHECKING:
    import pandas as pd

# The sampler settings that make two runs of one model different variants (seed and batch
# size do not: they repeat a measurement).
VARIANT_SAMPLER = ("scheduler", "steps", "guidance_scale", "negative_prompt", "dtype")


def ablation_names(record: Mapping[str, Any]) -> str:
    names = [a.get("name", "?") for a in (record.get("model") or {}).get("ablations") or []]
    return "+".join(names) or "-"


def reconstruction_label(rec: dict[str, Any]) -> str | None:
    """The decoder a ``task=reconstruction`` record scored, as a short label (else None):
    the folder name or ``<model preset> VAE``, with the encoder and latents when not default."""
    if task_of(rec) != "reconstruction":
        return None
    vae = rec.get("vae") or {}
    model = (rec.get("choices") or {}).get("model") or "model"

    def name(part: str) -> str:
        path = (vae.get(part) or {}).get("path")
        return f"{model} VAE" if path in (None, "model") else Path(path).name

    label = name("decoder")
    if (vae.get("encoder") or {}).get("path") != (vae.get("decoder") or {}).get("path"):
        label += f" (encoder {name('encoder')})"
    if vae.get("latents") == "sample":
        label += f" (sampled latents, seed {vae.get('seed')})"
    return label


def variant_label(record: Mapping[str, Any]) -> str:
    """The run's name if it has one, else ``<model preset>[+ablation...]``."""
    if record.get("name"):
        return str(record["name"])
    decoder = reconstruction_label(dict(record))  # a decoder evaluation: name the decoder
    if decoder is not None:
        return decoder
    preset = (record.get("model") or {}).get("preset") or (record.get("choices") or {}).get("model")
    abl = ablation_names(record)
    return (f"{preset or '?'}" + (f"+{abl}" if abl != "-" else "")
            + (" [recovered]" if record.get("recovery") else ""))  # recovery=kd: other weights


_MISSING = object()


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(obj, Mapping) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return _MISSING
    return obj


def get_field(record: Mapping[str, Any], key: str) -> Any:
    """The value of ``key`` in ``record`` (see the module docstring); None when absent."""
    if key == "ablations":
        return ablation_names(record)
    if key == "variant":
        return variant_label(record)
    if key == "protocol":
        return protocol_of(record).key
    if key.startswith("protocol."):
        fields = protocol_of(record).fields
        return fields.get(key[len("protocol."):], fields.get(key))
    choices = record.get("choices") or {}
    if "." not in key and key in choices:
        return choices[key]
    value = _path(record, key)
    if value is _MISSING:
        value = _path(record.get("config") or {}, key)
    return None if value is _MISSING else value


def _equal(actual: Any, wanted: Any) -> bool:
    if actual == wanted:
        return True
    # Hydra overrides and YAML give 7.5 / "7.5" / 7: compare text forms of scalars too.
    return actual is not None and wanted is not None and not isinstance(actual, (dict, list)) \
        and str(actual) == str(wanted)


def matches(record: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """True when every field of ``where`` has the given value (or one of the listed values)."""
    for key, wanted in flatten(dict(where or {})).items():
        if key == "" or wanted == "*":  # "*" lifts a filter a definition sets
            continue
        actual = get_field(record, key)
        is_options = isinstance(wanted, (list, tuple)) and wanted and not _is_spec_list(wanted)
        options = wanted if is_options else [wanted]  # [] is a value: "no ablations"
        if not any(_equal(actual, w) for w in options):
            return False
    return True


def _is_spec_list(value: Any) -> bool:
    """A list of mappings (e.g. ``model.ablations``) is one value, not a list of options."""
    return bool(value) and all(isinstance(v, Mapping) for v in value)


class ResultStore:
    """Records of one results folder (migrated to the current schema), oldest first."""

    def __init__(self, records: Iterable[Mapping[str, Any]]):
        self.records: list[dict[str, Any]] = [dict(r) for r in records]
        self._by_id = {r["run_id"]: r for r in self.records}

    @classmethod
    def open(cls, results_dir: str | os.PathLike) -> "ResultStore":
        """Load ``<results_dir>/records/*.json``."""
        return cls(load_records(Path(results_dir) / "records"))

    def __len__(self) -> int:
        return len(self.records)

    def filter(self, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Records matching ``where``, oldest first."""
        return [r for r in self.records if matches(r, where)]

    def get(self, ref: str) -> dict[str, Any]:
        """The record whose run id is ``ref`` or starts with it (a unique prefix)."""
        if ref in self._by_id:
            return self._by_id[ref]
        hits = [rid for rid in self._by_id if rid.startswith(ref)]
        if len(hits) == 1:
            return self._by_id[hits[0]]
        if not hits:
            raise EvalsuiteError(f"no record with run id {ref!r} ({len(self)} records in the store)")
        raise EvalsuiteError(f"run id prefix {ref!r} is ambiguous: {', '.join(sorted(hits)[:5])}")

    def latest(self, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The most recent record matching ``where``; an error naming the filter if none does."""
        hits = self.filter(where)
        if not hits:
            raise EvalsuiteError(f"no record matches {dict(flatten(dict(where or {})))} "
                                 f"({len(self)} records in the store)")
        return hits[-1]

    def frame(self, where: Mapping[str, Any] | None = None) -> "pd.DataFrame":
        """One row per (record, metric): the long form every table and plot starts from.

        Columns: run_id, created_at, variant, the config choices, ablations, the variant's
        sampler settings, dataset, n_images, unet_params, protocol (key), metric, version,
        metric_key (comparability key of the value), value, ci_low, ci_high, n,
        higher_is_better.
        """
        import pandas as pd  # here, not at import: `evalsuite compare` in CI should start fast

        rows = []
        for rec in self.filter(where):
            base = record_summary(rec)
            for name, m in sorted((rec.get("metrics") or {}).items()):
                ci = m.get("ci") or {}
                key = CellKey.of(rec, name)
                rows.append({**base, "metric": name, "version": str(m.get("version")),
                             "metric_key": key.metric, "value": m.get("value"),
                             "ci_low": ci.get("low"), "ci_high": ci.get("high"), "n": m.get("n"),
                             "higher_is_better": m.get("higher_is_better")})
        return pd.DataFrame(rows)


def record_summary(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The per-record columns of ``ResultStore.frame``."""
    sampler = rec.get("sampler") or {}
    out: dict[str, Any] = {"run_id": rec.get("run_id"), "created_at": rec.get("created_at"),
                           "variant": variant_label(rec)}
    for group, choice in sorted((rec.get("choices") or {}).items()):
        out[f"choice.{group}"] = choice
    out["ablations"] = ablation_names(rec)
    for k in VARIANT_SAMPLER:
        out[f"sampler.{k}"] = sampler.get(k)
    out["dataset"] = (rec.get("dataset") or {}).get("name")
    out["n_images"] = images_of(rec)
    out["unet_params"] = (rec.get("model") or {}).get("unet_params")
    out["protocol"] = protocol_of(rec).key
    return out


def images_of(rec: Mapping[str, Any]) -> int | None:
    """Number of images the run scored: samples (else the prompt count), or a decoder
    evaluation's reconstructions."""
    return ((rec.get("samples") or {}).get("count") or (rec.get("dataset") or {}).get("count")
            or (rec.get("reconstructions") or {}).get("count"))
