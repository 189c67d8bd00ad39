"""Where generated images live.

Layout: ``<results>/samples/<generation_key>/`` holds one lossless PNG per prompt id
(``<id>.png``, with the prompt, seed and generation key in a PNG text chunk), a
``generation.json`` naming every factor that went into the key, and a ``manifest.json`` listing
each image with its sha256. The generation key hashes everything that changes pixels (model
identity, ablations, sampler settings but not batch size, resolution, dtype, device type), so
two runs that would produce the same images share one folder, and a run that is killed
part-way resumes by generating only the ids whose PNG is missing. Each PNG is written to a
temporary file and renamed, so a file that exists is complete.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image, PngImagePlugin

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_bytes, atomic_write_text, sha256_bytes, sha256_json

META_KEY = "evalsuite"


def encode_png(image: np.ndarray, info: dict[str, Any] | None = None) -> bytes:
    """Encode a uint8 (H, W, 3) array as a PNG, with ``info`` as JSON in a text chunk."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    pnginfo = PngImagePlugin.PngInfo()
    if info is not None:
        pnginfo.add_text(META_KEY, json.dumps(info, sort_keys=True))
    buf = io.BytesIO()
    # compress_level is fixed so the same pixels always give the same bytes.
    Image.fromarray(image, "RGB").save(buf, format="PNG", pnginfo=pnginfo, compress_level=6)
    return buf.getvalue()


def decode_png(path: str | Path) -> np.ndarray:
    """Read an 8-bit RGB image as uint8 (H, W, 3); refuse anything that would need guessing.

    Pillow silently keeps the high byte of 16-bit RGB PNGs and turns 16-bit grayscale white on
    ``convert('RGB')``, so only 8-bit modes are accepted.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("RGB", "RGBA", "L", "P"):
                raise EvalsuiteError(f"image {path} has mode {im.mode}; evalsuite reads 8-bit "
                                     "RGB, RGBA, L or P images only (convert 16-bit files first)")
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except EvalsuiteError:
        raise
    except Exception as e:  # PIL raises many types for truncated/corrupt files
        raise EvalsuiteError(f"image {path} is unreadable or corrupt: {e}") from e
    return arr


class SampleStore:
    """A folder of generated images for one generation key."""

    def __init__(self, root: str | Path, factors: dict[str, Any]):
        self.factors = factors
        self.key = sha256_json(factors)[:16]
        self.dir = Path(root) / self.key

    def path(self, prompt_id: str) -> Path:
        return self.dir / f"{prompt_id}.png"

    def existing_ids(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.stem for p in self.dir.glob("*.png") if not p.name.startswith(".tmp-")}

    def missing(self, ids: Iterable[str]) -> list[str]:
        have = self.existing_ids()
        return [i for i in ids if i not in have]

    def open(self) -> None:
        """Create the folder and write ``generation.json`` (idempotent)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        gen = self.dir / "generation.json"
        if not gen.exists():
            atomic_write_text(gen, json.dumps({"key": self.key, "factors": self.factors},
                                              indent=2, sort_keys=True, default=str))

    def write(self, prompt_id: str, image: np.ndarray, info: dict[str, Any]) -> Path:
        data = encode_png(image, {**info, "id": prompt_id, "generation_key": self.key})
        return atomic_write_bytes(self.path(prompt_id), data)

    def read(self, prompt_id: str) -> np.ndarray:
        p = self.path(prompt_id)
        if not p.exists():
            raise EvalsuiteError(f"sample {p} is missing from the sample store")
        return decode_png(p)

    def manifest_sha256(self) -> str | None:
        """The sha256 recorded in ``manifest.json`` (None before the first manifest)."""
        path = self.dir / "manifest.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))["sha256"]

    def write_manifest(self, entries: list[dict[str, Any]]) -> str:
        """Write ``manifest.json`` (id, text, seed, file sha256 per image); return its sha256."""
        rows = []
        for e in entries:
            data = self.path(e["id"]).read_bytes()
            rows.append({**e, "file": f"{e['id']}.png", "sha256": sha256_bytes(data)})
        digest = sha256_json(rows)
        atomic_write_text(self.dir / "manifest.json",
                          json.dumps({"generation_key": self.key, "sha256": digest, "images": rows},
                                     indent=1, sort_keys=True))
        return digest
