"""Reading a metric's ``weights`` field: which files it used and whether each was verified.

A metric records its weights in one of three shapes: one file (``{"file", "sha256",
"verified", "verification"}``, ``evalsuite.assets.ResolvedAsset.to_record``), seeded random
weights (``{"file": None, "random_init": True, "seed", "verified": False}``), or one record
per file, by name, for a metric with several files (the LAION aesthetic head beside its CLIP
model; ImageReward's checkpoint with its text files nested under ``text_files``). Every
reader goes through these functions, so a nested random-init record can never pass for a
verified file.
"""

from __future__ import annotations

from typing import Any, Mapping

RECORD_KEYS = ("file", "sha256", "verified", "random_init", "random_backbone", "random")
RANDOM_KEYS = ("random_init", "random_backbone", "random")


def weight_records(weights: Any) -> list[Mapping[str, Any]]:
    """Every per-file record in ``weights``: the field itself when it is one, and every
    record nested in it (depth first, in order)."""
    if not isinstance(weights, Mapping):
        return []
    own = [weights] if any(k in weights for k in RECORD_KEYS) else []
    return own + [r for v in weights.values() if isinstance(v, Mapping) for r in weight_records(v)]


def weights_verified(weights: Any) -> bool:
    """True when every file's record says ``verified`` (no weights at all: True). A record
    without the key counts as unverified: only a digest check may set it."""
    return all(bool(r.get("verified", False)) for r in weight_records(weights))


def is_random(record: Mapping[str, Any]) -> bool:
    """Whether a per-file record stands for seeded random weights."""
    return any(bool(record.get(k)) for k in RANDOM_KEYS)


def weights_identity(weights: Any) -> str | None:
    """What identifies the weights in a comparability key: each file's sha256 ("random" for
    random weights, else the file name), joined by "+" when there are several."""
    if isinstance(weights, str):
        return weights
    parts = [str(r.get("sha256") or ("random" if is_random(r) else r.get("file")))
             for r in weight_records(weights)]
    return "+".join(parts) if parts else None
