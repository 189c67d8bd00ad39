"""Exact scoring of images against the truth of their captions (pure functions + batching).

Per prompt, with the truth parsed from the caption (``world.parse_caption``) and what the
checker found in each of the five position slots:
- ``position``: some object is at each true object's position;
- ``shape`` / ``colour`` / ``size``: the object found there has the true shape / colour / size
  (an empty slot counts as wrong);
- ``count``: exactly as many objects are found as the caption names;
- ``relation`` (two-object captions only): an object with the first's shape and colour and one
  with the second's sit in two slots whose centres satisfy the relation (x for left/right of,
  y for above/below), wherever they are;
- ``all`` (the metric's value, GenEval-style): every check above passes.
Attribute accuracies average over objects (position/shape/colour/size) or prompts (count,
relation, all); categories are ``one_object`` and ``two_objects``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from evalsuite.worlds.shapes import nets
from evalsuite.worlds.shapes.world import POSITIONS, Obj, Scene, category

ATTRIBUTES = ("shape", "colour", "size", "position", "count", "relation", "all")
Found = dict[str, dict[str, str]]  # position -> {"shape", "colour", "size"}


def _holds(relation: str, p: str, q: str) -> bool:
    (xp, yp), (xq, yq) = POSITIONS[p], POSITIONS[q]
    return {"left of": xp < xq, "right of": xp > xq, "above": yp < yq, "below": yp > yq}[relation]


def _matches(obj: Obj, found: dict[str, str] | None) -> bool:
    return found is not None and found["shape"] == obj.shape and found["colour"] == obj.colour


def check_scene(truth: Scene, found: Found) -> dict[str, list[bool]]:
    """Per-attribute outcomes for one image (lists: one entry per object or one per prompt)."""
    out: dict[str, list[bool]] = {k: [] for k in ("shape", "colour", "size", "position")}
    for obj in truth.objects:
        f = found.get(obj.position)
        out["position"].append(f is not None)
        for attr in ("shape", "colour", "size"):
            out[attr].append(f is not None and f[attr] == getattr(obj, attr))
    out["count"] = [len(found) == len(truth.objects)]
    if truth.relation is not None:
        a, b = truth.objects
        out["relation"] = [any(_matches(a, found.get(p)) and _matches(b, found.get(q))
                               and _holds(truth.relation, p, q)
                               for p in POSITIONS for q in POSITIONS if p != q)]
    out["all"] = [all(all(v) for v in out.values())]
    return out


def summarise(truths: Sequence[Scene], founds: Sequence[Found]) -> dict[str, Any]:
    """Accuracy per attribute, overall and per category, with counts."""
    pooled: dict[str, dict[str, list[bool]]] = {}
    for truth, found in zip(truths, founds):
        for cat in ("overall", category(truth)):
            bucket = pooled.setdefault(cat, {})
            for attr, oks in check_scene(truth, found).items():
                bucket.setdefault(attr, []).extend(oks)
    return {cat: {attr: {"accuracy": float(np.mean(oks)), "n": len(oks)}
                  for attr, oks in sorted(attrs.items())}
            for cat, attrs in pooled.items()}


@torch.inference_mode()
def read_images(checker: torch.nn.Module, images: np.ndarray, batch: int = 64) -> list[Found]:
    """What the checker finds in each uint8 64x64 image."""
    out: list[Found] = []
    for start in range(0, len(images), batch):
        out.extend(nets.decode_slots(checker(nets.to_input(images[start:start + batch]))))
    return out


@torch.inference_mode()
def embed_texts(text_net: torch.nn.Module, texts: Sequence[str]) -> torch.Tensor:
    """L2-normalised text embeddings."""
    return F.normalize(text_net(nets.tokenize(list(texts))), dim=-1)


@torch.inference_mode()
def embed_images(image_net: torch.nn.Module, images: np.ndarray, batch: int = 64) -> torch.Tensor:
    """L2-normalised image embeddings of uint8 64x64 images."""
    parts = [image_net(nets.to_input(images[s:s + batch])) for s in range(0, len(images), batch)]
    return F.normalize(torch.cat(parts), dim=-1)


def matched_vs_shuffled(image_emb: torch.Tensor, text_emb: torch.Tensor,
                        seed: int = 0) -> dict[str, float]:
    """Cosines of matched pairs vs. a derangement of the texts; share of images matched wins."""
    n = len(image_emb)
    perm = np.random.default_rng(seed).permutation(n)
    perm = np.where(perm == np.arange(n), (perm + 1) % n, perm)  # never an image's own text
    matched = (image_emb * text_emb).sum(-1)
    shuffled = (image_emb * text_emb[torch.from_numpy(perm)]).sum(-1)
    return {"matched": float(matched.mean()), "shuffled": float(shuffled.mean()),
            "wins": float((matched > shuffled).float().mean())}
