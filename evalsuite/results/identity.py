"""Variant identity: when two records are the same variant, and how a table names it.

A variant is the model plus what was done to it, read from what every record holds:
- the model: the checkpoint's sha256 for weights loaded from files (the path is not part of
  it: the same files elsewhere are the same model); for weights built from a seed (the tiny
  model), the architecture hash, the init seed and the resolution; the decoder section for a
  decoder evaluation (``task=reconstruction``); the images' sha256 for ``evalsuite score``
  records (no model); and the run's ``name`` when one was given;
- the ablations: the full specs, parameters included, in the order they were applied.

Two records with different identities never share a table row, however alike their names
(``preset_bk_sdm_base``, ``preset_bk_sdm_small`` and ``prune_resblocks`` all apply
``prune_resblocks``, with different parameters). Labels stay short: the name, else the model
preset, plus the ablation options as chosen (``tiny+preset_bk_sdm_small``), with the
parameters the command line changed (``sd15+ffn_ratio(4)``). Where two different variants would
still get one label, the label grows by what tells them apart (the differing ablation
parameters, ``[ckpt 3f2a9c1b]``, ``[seed 1]``, ``[128 px]``). The full spec (``Variant.spec``)
goes into a footnote and the HTML tooltip.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from evalsuite.results.store import reconstruction_label

Rec = Mapping[str, Any]

# A command-line override of an ablation's parameter: ablation.<option>.<param>=<value>.
_ABLATION_OVERRIDE = re.compile(r"^[+~]*ablation\.([^.=]+)\.([^=]+)=")


@dataclass(frozen=True)
class Variant:
    """One variant: equal (and hashed) by ``key`` alone; the rest says how to show it."""

    key: str
    label: str = field(compare=False)
    model: str = field(compare=False)  # the label's model part (name, preset or decoder)
    spec: str = field(compare=False)
    ablations: str = field(compare=False)  # every ablation with all its parameters
    facets: tuple[tuple[str, str], ...] = field(compare=False, default=())  # model details


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _spec_text(spec: Mapping[str, Any]) -> str:
    params = spec.get("params") or {}
    inner = ",".join(f"{k}={_compact(v)}" for k, v in sorted(params.items()))
    return f"{spec.get('name', '?')}({inner})" if inner else str(spec.get("name", "?"))


def model_identity(rec: Rec) -> dict[str, Any]:
    """What identifies the model of ``rec`` (see the module docstring)."""
    model = rec.get("model") or {}
    out: dict[str, Any] = {"name": rec.get("name")}
    if rec.get("task") == "reconstruction":
        return {**out, "decoder": rec.get("vae")}
    if rec.get("kind") == "score":  # `evalsuite score`: no model, a folder of images
        return {**out, "images": ((rec.get("inputs") or {}).get("gen") or {}).get("sha256")
                or (rec.get("dataset") or {}).get("sha256")}
    if model.get("checkpoint_sha256"):
        return {**out, "checkpoint_sha256": model["checkpoint_sha256"]}
    if model.get("arch_sha256"):
        return {**out, "arch_sha256": model["arch_sha256"], "init_seed": model.get("init_seed"),
                "resolution": model.get("resolution")}
    # An older record: the preset and where the weights came from are all there is.
    return {**out, "preset": model.get("preset") or (rec.get("choices") or {}).get("model"),
            "weights": model.get("weights"), "path": model.get("path"),
            "init_seed": model.get("init_seed"), "resolution": model.get("resolution")}


def ablation_specs(rec: Rec) -> list[dict[str, Any]]:
    """The ablations applied, in order, each ``{"name", "params"}``."""
    return [dict(a) for a in (rec.get("model") or {}).get("ablations") or []]


def _model_label(rec: Rec) -> str:
    if rec.get("name"):
        return str(rec["name"])
    decoder = reconstruction_label(dict(rec))
    if decoder is not None:
        return decoder
    if rec.get("kind") == "score":
        return str((rec.get("dataset") or {}).get("name") or "score")
    return str((rec.get("model") or {}).get("preset") or (rec.get("choices") or {}).get("model") or "?")


def _ablation_labels(rec: Rec) -> list[str]:
    """The ablation options as chosen (a preset stays one name), with the parameters the
    command line set; an older record without its config: the applied spec names."""
    chosen = (rec.get("config") or {}).get("ablation")
    if not isinstance(chosen, Mapping) or not chosen:
        return [str(a.get("name", "?")) for a in ablation_specs(rec)]
    changed: dict[str, list[str]] = {}
    for item in rec.get("overrides") or []:
        m = _ABLATION_OVERRIDE.match(str(item))
        if m and m.group(1) in chosen:
            changed.setdefault(m.group(1), []).append(m.group(2))
    out = []
    for option, node in chosen.items():
        params = [(p, _lookup(node, p)) for p in dict.fromkeys(changed.get(option, []))]
        if len(params) == 1:
            out.append(f"{option}({_compact(params[0][1])})")
        elif params:
            out.append(f"{option}(" + ",".join(f"{p}={_compact(v)}" for p, v in params) + ")")
        else:
            out.append(str(option))
    return out


def _lookup(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _facets(rec: Rec, ident: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    if ident.get("checkpoint_sha256"):
        out.append(("weights", f"ckpt {ident['checkpoint_sha256'][:8]}"))
    elif ident.get("init_seed") is not None:
        out.append(("weights", f"seed {ident['init_seed']}"))
    if ident.get("path"):
        out.append(("path", str(ident["path"])))
    if ident.get("resolution") is not None:
        out.append(("resolution", f"{ident['resolution']} px"))
    if ident.get("images"):
        out.append(("images", f"images {ident['images'][:8]}"))
    if ident.get("decoder") is not None:
        out.append(("decoder", _compact(ident["decoder"])))
    return tuple(out)


def variant_of(rec: Rec) -> Variant:
    """The variant of record ``rec``."""
    ident = model_identity(rec)
    specs = ablation_specs(rec)
    recovered = (rec.get("recovery") or {}).get("key")  # recovery=kd: other weights, another variant
    what = {"model": ident, "ablations": specs, **({"recovery": recovered} if recovered else {})}
    key = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]
    model_label = _model_label(rec)
    label = "+".join([model_label, *_ablation_labels(rec)]) + (" [recovered]" if recovered else "")
    full = "+".join(_spec_text(s) for s in specs) or "none"
    facets = _facets(rec, ident)
    model = (rec.get("model") or {}).get("preset") or (rec.get("choices") or {}).get("model") or "?"
    details = ", ".join(text for _, text in facets if len(text) < 80)
    spec = (f"model {model}" + (f" ({details})" if details else "")
            + (f", name {rec['name']}" if rec.get("name") else "") + f"; ablations: {full}")
    return Variant(key, label, model_label, spec, full, facets)


def distinct_labels(variants: Sequence[Variant]) -> list[str]:
    """One label per variant, different for different variants (see the module docstring)."""
    labels = [v.label for v in variants]
    for label in dict.fromkeys(labels):
        idx = [i for i, x in enumerate(labels) if x == label]
        group = [variants[i] for i in idx]
        if len({v.key for v in group}) < 2:
            continue
        with_specs = len({v.ablations for v in group}) > 1
        names = [n for v in group for n, _ in v.facets]
        differ = [n for n in dict.fromkeys(names)
                  if len({dict(v.facets).get(n) for v in group}) > 1]
        for i, v in zip(idx, group):
            new = v.model + (f"+{v.ablations}" if with_specs and v.ablations != "none"
                             else v.label[len(v.model):])
            extra = [dict(v.facets)[n] for n in differ if n in dict(v.facets)]
            labels[i] = new + (f" [{', '.join(extra)}]" if extra else "")
    # Anything still shared (records too old to tell apart otherwise): the identity's hash.
    shared = [i for i, v in enumerate(variants)
              if any(labels[j] == labels[i] and w.key != v.key for j, w in enumerate(variants))]
    for i in shared:
        labels[i] = f"{labels[i]} [{variants[i].key[:8]}]"
    return labels
