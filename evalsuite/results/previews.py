"""The reference images a decoder evaluation reconstructed, kept for the report to show.

A ``task=reconstruction`` run stores its reconstructions on disk, but the originals are read
from the reference set (a package's photographs, a COCO folder, a world's renders) and are
not. The report must show them beside the reconstructions, and must not rebuild (or hash) a
reference set to do so; so the run writes the first ``PREVIEW`` originals, exactly as the
metrics saw them (cropped and resized), to ``<results>/reconstructions/originals-<sha>/``
with a manifest in the sample store's format (``id``, ``file``, ``sha256``). The folder is
keyed by the reference set's sha256 and written once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evalsuite.io import atomic_write_bytes, atomic_write_text

#: How many originals are kept: more than a report grid shows (``grid.prompts``, default 6).
PREVIEW = 16


def write_reference_preview(results: Path, images: Any, ids: Sequence[str], sha256: str,
                            n: int = PREVIEW) -> dict[str, Any]:
    """Write the first ``n`` of ``ids`` from the image source ``images`` (``read(id)`` gives
    uint8 H x W x 3) as PNGs with a manifest; return the record's ``reference_preview``
    section ({dir, count}). A folder whose manifest already lists these ids is kept as is."""
    from evalsuite.samples.store import encode_png  # the sample store's PNG writer

    folder = Path(results) / "reconstructions" / f"originals-{str(sha256)[:16]}"
    wanted = [str(i) for i in list(ids)[:n]]
    manifest = folder / "manifest.json"
    try:
        have = [e["id"] for e in json.loads(manifest.read_text(encoding="utf-8"))["images"]]
    except (OSError, ValueError, KeyError, TypeError):
        have = []
    if have != wanted or not all((folder / f"{i}.png").is_file() for i in wanted):
        entries = []
        for image_id in wanted:
            data = encode_png(np.ascontiguousarray(images.read(image_id), dtype=np.uint8))
            atomic_write_bytes(folder / f"{image_id}.png", data)
            entries.append({"id": image_id, "file": f"{image_id}.png", "seed": None,
                            "sha256": hashlib.sha256(data).hexdigest()})
        atomic_write_text(manifest, json.dumps({"reference_sha256": sha256, "images": entries},
                                               indent=1) + "\n")
    return {"dir": str(folder), "count": len(wanted)}
