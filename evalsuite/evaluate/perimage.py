"""Per-image values in a metric's record entry, for per-category tables.

A metric whose value is a mean over images or pairs (CLIP score, PSNR, SSIM, LPIPS;
``metrics.bootstrap.per_item_values``) keeps its per-image values next to the aggregate:

    "per_image": {"ids_sha256": <sha256 of the ids, in order>, "n": N,
                  "values": [v0, v1, ...],               # 6 significant digits, null = inf/nan
                  "categories": {"names": [...], "of": [i0, i1, ...]}}   # when known

Compact by design: values are rounded to 6 significant digits (far below any CI width), ids
are not repeated (their sha256 ties the list to the prompt set's order), and categories are
indices into a name list. Values are kept when the prompt set has categories (that is what
they are for) or when there are at most ``MAX_PLAIN`` images, so a COCO-30K record stays small.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from evalsuite.io import sha256_json
from evalsuite.metrics.base import Metric
from evalsuite.metrics.bootstrap import per_item_values

MAX_PLAIN = 5000  # images: above this, per-image values only for prompt sets with categories


def _compact(v: float) -> float | None:
    return float(f"{v:.6g}") if math.isfinite(v) else None


def per_image_block(metric: Metric, ids: Sequence[str],
                    categories: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The ``per_image`` entry for ``metric`` fed images ``ids`` in that order (None: the
    metric has no per-image values, their count differs from the ids', or too many)."""
    values = per_item_values(metric)
    if values is None or len(values) != len(ids) or not ids:
        return None
    cats = [categories.get(i) for i in ids] if categories else None
    if cats is not None and any(c is None for c in cats):
        cats = None  # a category for some prompts only: no breakdown (it would mislead)
    if cats is None and len(ids) > MAX_PLAIN:
        return None
    block: dict[str, Any] = {"ids_sha256": sha256_json(list(ids)), "n": len(ids),
                             "values": [_compact(float(v)) for v in values]}
    if cats is not None:
        names = sorted(set(cats))
        index = {c: k for k, c in enumerate(names)}
        block["categories"] = {"names": names, "of": [index[c] for c in cats]}
    return block
