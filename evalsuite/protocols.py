"""Named evaluation protocols: which other numbers a record's numbers are comparable with.

A protocol option (``conf/protocol/<name>.yaml``) selects the dataset, reference, sampler and
metrics options a paper used and lists the config paths (``fields``) that make its numbers
what they are. ``protocol_record`` turns that into the record's ``protocol`` section:

- ``fields``: the resolved values at those paths, with machine-specific locations (file and
  folder paths) replaced by the content hashes of what they point to (the prompt set's
  sha256, the reference set's ``describe()``, which hashes its images and any imported
  statistics) and device settings dropped. Two labs with COCO in different folders get the
  same protocol; a different caption file or resize does not.
- ``hash``: sha256 of the fields. Tables and ``evalsuite compare`` group by it
  (``evalsuite/results/protocol.py``), so numbers of different protocols never share a column.
- ``modified``: for a named preset, every field whose value differs from the preset's own
  (the preset is composed again with the run's model choice and runtime settings; locations
  compare by file name) and every ``requires`` value the run does not meet, e.g.
  ``sampler.steps=50 (protocol: 25)``, ``model.resolution=64 (protocol: 512)``. The record
  keeps the preset's name but says it is not the published protocol; ``varies`` (the CFG
  scale of a sweep protocol) is exempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from evalsuite.errors import EvalsuiteError
from evalsuite.io import sha256_json
from evalsuite.results.protocol import NOT_IDENTITY

# Keys that locate inputs on one machine; what they point to enters as a content hash.
LOCATION_KEYS = frozenset({"annotations", "images_dir", "path", "stats"})
# Keys that change where or how fast something runs, never a value (the same keys a metric's
# identity leaves out).
RUNTIME_KEYS = frozenset(NOT_IDENTITY)
_ABSENT = object()


def _normalise(node: Any, locations: str) -> Any:
    """``node`` without runtime keys, at any depth; locations dropped (``"drop"``: the content
    hashes stand for them) or reduced to their file name (``"name"``: for comparing a run with
    its preset, where moving a folder is no change but another captions file is)."""
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            if k in RUNTIME_KEYS or (k in LOCATION_KEYS and locations == "drop"):
                continue
            out[k] = (Path(v).name if k in LOCATION_KEYS and isinstance(v, str)
                      else _normalise(v, locations))
        return out
    return [_normalise(v, locations) for v in node] if isinstance(node, list) else node


def _values(cfg: DictConfig, paths: Sequence[str], locations: str) -> dict[str, Any]:
    """Config path -> its resolved, normalised value, for each of ``paths``."""
    out: dict[str, Any] = {}
    for path in paths:
        node = OmegaConf.select(cfg, path, default=_ABSENT)
        if node is _ABSENT:
            name = cfg.protocol.name
            raise EvalsuiteError(f"protocol {name}: field {path!r} is not a config path; "
                                 f"fix `fields` in conf/protocol/{name}.yaml")
        value = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        out[path] = _normalise(value, locations)
    return out


def _drop(tree: dict[str, Any], dotted: str) -> None:
    """Remove ``dotted`` (``sampler.guidance_scale``) from a nested dict, if present."""
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def _drop_varies(fields: dict[str, Any], varies: Sequence[str]) -> None:
    """Remove the swept paths from ``fields`` (field path -> value), whole fields or parts."""
    for path in varies:
        for key in list(fields):
            if _covers(path, key):
                fields.pop(key)
            elif _covers(key, path) and isinstance(fields[key], dict):
                _drop(fields[key], path[len(key) + 1:])


def _covers(outer: str, inner: str) -> bool:
    """True if path ``inner`` is ``outer`` or lies under it."""
    return inner == outer or inner.startswith(outer + ".")


def protocol_fields(cfg: DictConfig, prompts: Any | None, reference: Any | None) -> dict[str, Any]:
    """The protocol's field values of this run (see the module docstring)."""
    spec = cfg.protocol
    # What was evaluated (samples, or a decoder's reconstructions) is always part of it.
    fields: dict[str, Any] = {"task": cfg.get("task", "generate"),
                              **_values(cfg, spec.fields, locations="drop")}
    if fields["task"] == "reconstruction":
        fields.pop("dataset", None)  # no prompts: the reference images are what is scored
    if "dataset" in fields and prompts is not None:
        fields["dataset"].update(sha256=prompts.sha256, count=len(prompts))
    if "reference" in fields:
        if reference is not None:
            fields["reference"].update(reference.describe())
        else:  # not built: no metric of this run compares with real images
            fields["reference"]["used"] = False
    _drop_varies(fields, spec.varies)  # swept by design: not part of what must be equal
    return fields


def override_keys(overrides: Sequence[str]) -> list[tuple[str, str]]:
    """(config path, override text) of Hydra command-line overrides (``+``/``~`` stripped)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [(o.key_or_group, o.input_line or "") for o in parsed]


def _departure_setting(key: str, spec: Any) -> bool:
    """True if an override of ``key`` can make a run depart from the preset: it is at, under
    or above a field (``sampler.steps``, ``~metrics.items.clip_score``, ``sampler=default``),
    other than the model choice and runtime settings, which the preset is composed with too.
    Locations are compared by file name, so moving COCO is no departure but another captions
    file or an imported statistics file is."""
    if key == "protocol" or key in spec.requires or any(_covers(v, key) for v in spec.varies):
        return False
    if any(part in RUNTIME_KEYS for part in key.split(".")):
        return False
    if _covers("protocol", key) or key == "task":
        return True
    return any(_covers(f, key) or (_covers(key, f) and f not in spec.requires)
               for f in spec.fields)


def _compose_preset(name: str, overrides: list[str]) -> DictConfig:
    """The run config of ``protocol=<name>`` with ``overrides``, inside a Hydra app (its
    config search path) or, outside one, from evalsuite's conf/."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose("config", overrides=[f"protocol={name}", *overrides])
    from evalsuite.protocol_table import compose_preset

    return compose_preset(name, overrides=tuple(overrides))


def _settings(cfg: DictConfig) -> dict[str, Any]:
    """The config-level values of a protocol's fields, for comparing a run with its preset:
    locations by file name (``captions_val2014.json``, ``val2014``), runtime keys dropped,
    swept and required paths left out (the latter are checked by value on their own)."""
    spec = cfg.protocol
    out: dict[str, Any] = {"task": cfg.get("task", "generate"),
                           "protocol": OmegaConf.to_container(spec, resolve=True),
                           **_values(cfg, [f for f in spec.fields if f not in spec.requires],
                                     locations="name")}
    _drop_varies(out, spec.varies)
    return out


def _diff(run: Any, preset: Any, path: str = "") -> list[str]:
    """``path=<run value> (protocol: <preset value>)`` at the highest level that differs."""
    if isinstance(run, dict) and isinstance(preset, dict):
        return [d for k in sorted(set(run) | set(preset), key=str)
                for d in _diff(run.get(k, _ABSENT), preset.get(k, _ABSENT),
                               f"{path}.{k}" if path else str(k))]
    if run == preset:
        return []

    def show(v: Any) -> str:
        return "absent" if v is _ABSENT else "{...}" if isinstance(v, dict) else str(v)

    return [f"{path}={show(run)} (protocol: {show(preset)})"]


def modifications(cfg: DictConfig, overrides: Sequence[str] = ()) -> list[str]:
    """How this run departs from the named preset (empty for ``custom`` or an unmodified run).

    Decided by value: the preset is composed again with this run's model choice and runtime
    settings (the ``overrides`` that cannot change a field), and every field whose
    value differs is listed, as is every ``requires`` the run does not meet. So choosing what
    the preset already chooses (``sampler=sd_pndm25``) is no departure, while a study's prompt
    limit or a command-line ``sampler.steps=50`` is. ``varies`` (a sweep's CFG scale) is exempt.
    """
    spec = cfg.protocol
    if not spec.preset:
        return []
    keep = [text for key, text in override_keys(overrides) if not _departure_setting(key, spec)]
    preset = _compose_preset(spec.name, keep)
    out = _diff(_settings(cfg), _settings(preset))
    for path, expected in (spec.requires or {}).items():
        actual = OmegaConf.select(cfg, path)
        if actual != expected:
            out.append(f"{path}={actual} (protocol: {expected})")
    return out


def protocol_record(cfg: DictConfig, prompts: Any | None, reference: Any | None,
                    overrides: Sequence[str] = (),
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record's ``protocol`` section: name, version, source, fields, hash, modified.

    ``extra``: fields a task adds (``task=reconstruction``: the encoder's identity and how
    latents are drawn, which change every number of every decoder scored on them).
    """
    spec = cfg.protocol
    fields = {**protocol_fields(cfg, prompts, reference), **(extra or {})}
    return {"name": spec.name, "version": spec.version, "source": spec.source,
            "hash": sha256_json(fields),  # comparability is about the fields, not the label
            "fields": fields, "varies": list(spec.varies),
            "modified": modifications(cfg, overrides)}
