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
- ``modified``: for a named preset, every override that can change one of its fields
  (``dataset.n=4``, ``sampler=default``; not a location such as ``reference.images_dir``, a
  device, or the choice of model) and every ``requires`` value the run does not meet
  (``model.resolution=64 (protocol: 512)``). The record keeps the preset's name but says it
  is not the published protocol; ``varies`` (the CFG scale of a sweep protocol) is exempt.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from evalsuite.errors import EvalsuiteError
from evalsuite.io import sha256_json

# Keys that locate inputs on one machine; what they point to enters as a content hash.
LOCATION_KEYS = frozenset({"annotations", "images_dir", "path", "stats"})
# Keys that change where or how fast something runs, never a value.
RUNTIME_KEYS = frozenset({"device", "batch_size"})
_ABSENT = object()


def _strip(node: Any) -> Any:
    """``node`` without location and runtime keys, at any depth."""
    if isinstance(node, Mapping):
        return {k: _strip(v) for k, v in node.items()
                if k not in LOCATION_KEYS and k not in RUNTIME_KEYS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _drop(tree: dict[str, Any], dotted: str) -> None:
    """Remove ``dotted`` (``sampler.guidance_scale``) from a nested dict, if present."""
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def _covers(outer: str, inner: str) -> bool:
    """True if path ``inner`` is ``outer`` or lies under it."""
    return inner == outer or inner.startswith(outer + ".")


def protocol_fields(cfg: DictConfig, prompts: Any | None, reference: Any | None) -> dict[str, Any]:
    """The protocol's field values of this run (see the module docstring)."""
    spec = cfg.protocol
    # What was evaluated (samples, or a decoder's reconstructions) is always part of it.
    fields: dict[str, Any] = {"task": cfg.get("task", "generate")}
    for path in spec.fields:
        node = OmegaConf.select(cfg, path, default=_ABSENT)
        if node is _ABSENT:
            raise EvalsuiteError(f"protocol {spec.name}: field {path!r} is not a config path; "
                                 f"fix `fields` in conf/protocol/{spec.name}.yaml")
        value = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        fields[path] = _strip(copy.deepcopy(value))
    if fields["task"] == "reconstruction":
        fields.pop("dataset", None)  # no prompts: the reference images are what is scored
    if "dataset" in fields and prompts is not None:
        fields["dataset"].update(sha256=prompts.sha256, count=len(prompts))
    if "reference" in fields:
        if reference is not None:
            fields["reference"].update(reference.describe())
        else:  # not built: no metric of this run compares with real images
            fields["reference"]["used"] = False
    for path in spec.varies:  # swept by design: not part of what must be equal
        for key in list(fields):
            if _covers(path, key):
                fields.pop(key)
            elif _covers(key, path) and isinstance(fields[key], dict):
                _drop(fields[key], path[len(key) + 1:])
    return fields


def override_keys(overrides: Sequence[str]) -> list[tuple[str, str]]:
    """(config path, override text) of Hydra command-line overrides (``+``/``~`` stripped)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [(o.key_or_group, o.input_line or "") for o in parsed]


def _changes_a_field(key: str, spec: Any) -> bool:
    """True if overriding config path ``key`` can change a field of the preset."""
    if key == "protocol" or key in spec.requires or any(_covers(v, key) for v in spec.varies):
        return False  # choosing the preset; `requires` are checked by value; swept by design
    if _covers("protocol", key):
        return True
    if any(part in LOCATION_KEYS or part in RUNTIME_KEYS for part in key.split(".")):
        return False  # where inputs live or how fast it runs: content hashes cover the rest
    return any(_covers(f, key) or (_covers(key, f) and f not in spec.requires)
               for f in spec.fields)  # at/under a field, or a group choice replacing one


def modifications(cfg: DictConfig, overrides: Sequence[str]) -> list[str]:
    """How this run departs from the named preset (empty for ``custom`` or an unmodified run).

    ``overrides`` are Hydra override strings (the command line's, plus any a study applies in
    code, such as ``dataset.limit=64``). Choosing the model (``model=sd15``) is not a
    modification; whether it meets ``requires`` (``model.resolution: 512``) is checked by value.
    """
    spec = cfg.protocol
    if not spec.preset:
        return []
    out = [text for key, text in override_keys(overrides) if _changes_a_field(key, spec)]
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
