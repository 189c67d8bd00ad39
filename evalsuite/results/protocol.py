"""What makes two numbers comparable: the protocol of a record and the identity of a metric.

Two values may share a table column, be compared by ``evalsuite compare`` or be plotted on one
axis only if their **comparability key** is equal: the record's protocol plus the metric's
identity.

- **Protocol.** When a record carries a named ``protocol`` ({name, version, hash, fields,
  modified}; written by ``evalsuite/protocols.py``), that is used as it is; a protocol whose
  preset was modified (``dataset.n=4``) is labelled so and never shares a key with the preset. Otherwise it is derived from the record: the prompt set (name,
  sha256, count), the reference set (name, sha256, size, preprocessing, resolution) and the
  generated image resolution. Sampler and model settings are *not* part of it: they are what
  variants differ in.
- **Metric identity.** The metric's version, its constructor parameters from the resolved
  config (``_target_`` and parameters, without ``device``, which does not change a value) and
  its weight file (sha256, or "random" when computed with random weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from evalsuite.io import sha256_json
from evalsuite.metrics.weights import weights_identity

# Constructor parameters that do not change a metric's value.
NOT_IDENTITY = ("device", "batch_size")


@dataclass(frozen=True)
class Protocol:
    """A protocol: its name (None when derived), a short key and the fields it fixes."""

    name: str | None
    key: str
    fields: dict[str, Any] = field(hash=False, compare=False)

    def describe(self) -> str:
        """One line for table footers: the name (if any) and every field."""
        body = ", ".join(f"{k}={_short(v)}" for k, v in self.fields.items())
        return f"{self.name} ({body})" if self.name else body

    def summary(self) -> str:
        """A few words for a section title: the name, else prompt set, count and resolution."""
        if self.name:
            return self.name
        f = self.fields
        parts = [f"{f.get('dataset.name')}, {f.get('dataset.count')} prompts"]
        if f.get("reference.name"):
            parts.append(f"reference {f['reference.name']} ({f.get('reference.n')})")
        if f.get("resolution"):
            parts.append(f"{f['resolution']} px")
        return ", ".join(parts) + f" [{self.key}]"


def _short(value: Any) -> str:
    """Hashes shortened to 12 characters: enough to tell sets apart in a footer."""
    s = str(value)
    return s[:12] if len(s) == 64 and all(c in "0123456789abcdef" for c in s) else s


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (lists and scalars are leaves)."""
    if not isinstance(obj, Mapping):
        return {prefix: obj} if prefix else {"": obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def derived_protocol_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol fields of a record without a named protocol."""
    ds = record.get("dataset") or {}
    ref = record.get("reference") or {}
    fields = {"dataset.name": ds.get("name"), "dataset.sha256": ds.get("sha256"),
              "dataset.count": ds.get("count")}
    if ref:
        fields.update({"reference.name": ref.get("name"), "reference.sha256": ref.get("sha256"),
                       "reference.n": ref.get("n"), "reference.preprocess": ref.get("preprocess"),
                       "reference.resolution": ref.get("resolution")})
    fields["resolution"] = (record.get("model") or {}).get("resolution")
    return fields


def protocol_of(record: Mapping[str, Any]) -> Protocol:
    """The record's named protocol, or the one derived from its dataset, reference and resolution."""
    named = record.get("protocol")
    if isinstance(named, Mapping) and named.get("hash"):
        fields = flatten(named.get("fields") or {})
        name, key = named.get("name"), str(named["hash"])[:12]
        modified = list(named.get("modified") or [])
        if modified:  # never shares a column with the published protocol, even if equal
            name, key = f"{name} (modified: {'; '.join(modified)})", key + "~modified"
        return Protocol(name, key, {"protocol.name": named.get("name"),
                                    "protocol.version": named.get("version"), **fields})
    fields = derived_protocol_fields(record)
    return Protocol(None, sha256_json(fields)[:12], fields)


def metric_identity(record: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """Version, parameters and weights of ``metric`` in ``record`` (see the module docstring)."""
    m = (record.get("metrics") or {}).get(metric) or {}
    base = metric.split("/")[0]
    items = (((record.get("config") or {}).get("metrics") or {}).get("items") or {})
    params = {k: v for k, v in (items.get(base) or {}).items() if k not in NOT_IDENTITY}
    return {"version": str(m.get("version")), "params": params,
            "weights": weights_identity(m.get("weights"))}


@dataclass(frozen=True)
class CellKey:
    """Comparability key of one metric value: protocol key + metric identity hash."""

    protocol: str
    metric: str
    version: str

    @staticmethod
    def of(record: Mapping[str, Any], metric: str) -> "CellKey":
        ident = metric_identity(record, metric)
        return CellKey(protocol_of(record).key, sha256_json(ident)[:12], ident["version"])


def differing_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for every field that differs, sorted by field."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def describe_differences(diffs: list[tuple[str, Any, Any]]) -> str:
    """'dataset.count (32 vs 6), dataset.sha256 (88611e02… vs 1f2e…)' for error messages."""
    return ", ".join(f"{k} ({_short(x)} vs {_short(y)})" for k, x, y in diffs)
