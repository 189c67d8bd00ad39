"""Where generated images live.

Layout: ``<results>/samples/<generation_key>/`` holds one lossless PNG per prompt id
(``<id>.png``, with the prompt, seed and generation key in a PNG text chunk), a
``generation.json`` naming every factor that went into the key, and a ``manifest.json`` listing
each image with its sha256. The generation key hashes everything that changes pixels (model
identity, ablations, sampler settings but not batch size, resolution, dtype, device type), so
two runs that would produce the same images share one folder, and a run that is killed
part-way resumes by generating only the ids whose PNG is missing. Each PNG is written to a
temporary file and renamed, so a file that exists is complete.

Ids become file names as they are, so only ids that are safe as a file name on every common
file system are accepted (``id_problem``): prompt sets refuse other ids when they are loaded
(``check_ids``), and the store refuses them again before touching the disk. Nothing in an id
can therefore name a path outside the store's folder.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image, PngImagePlugin

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_bytes, atomic_write_text, sha256_bytes, sha256_json

META_KEY = "evalsuite"

#: Longest accepted id. ``<id>.png`` must fit the smallest common file-name limit: 143
#: characters on eCryptfs (255 bytes elsewhere).
MAX_ID_LENGTH = 128

# ASCII letters, digits, '.', '_' and '-', starting with a letter or digit. This excludes
# path separators, '.' and '..', hidden and temporary names ('.tmp-', which ``existing_ids``
# skips), control characters (NUL, newline), characters Windows forbids (<>:"|?*), and
# non-ASCII text, which macOS may store in another Unicode normal form than it was given (the
# file would then never be found under its id again).
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Windows device names: a file named like one (with any extension) opens the device instead.
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul",
                              *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})

ID_RULE = (f"Ids name the image files of the sample store, so they must be 1 to {MAX_ID_LENGTH} "
           "ASCII letters, digits, '.', '_' or '-', start with a letter or digit, not be a "
           "Windows device name (CON, NUL, COM1, ...), and not differ from another id only in "
           "upper/lower case")


def id_problem(sample_id: str) -> str | None:
    """Why ``sample_id`` cannot be a file name in a sample store (None: it can)."""
    if not isinstance(sample_id, str):
        return f"is a {type(sample_id).__name__}, not a string"
    if not sample_id:
        return "is empty"
    if len(sample_id) > MAX_ID_LENGTH:
        return f"is {len(sample_id)} characters long (at most {MAX_ID_LENGTH})"
    if not _SAFE_ID.fullmatch(sample_id):
        return ("has characters other than ASCII letters, digits, '.', '_' and '-', or does "
                "not start with a letter or digit")
    if sample_id.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        return "is a Windows device name"
    return None


def _shown(sample_id: Any) -> str:
    """An id for an error message: repr (shows NUL, newlines), cut short if very long."""
    text = repr(sample_id)
    return text if len(text) <= 60 else text[:50] + "...'"


def check_ids(ids: Iterable[str], where: str, hint: str = "") -> None:
    """Raise ``EvalsuiteError`` naming up to five ids that cannot be file names in a store.

    ``where`` names the source of the ids; ``hint`` (a sentence) says how to get other ids.

    Besides each id on its own (``id_problem``), ids that differ only in case are refused:
    on a case-insensitive file system (macOS and Windows by default) they would be one file.
    """
    bad: list[str] = []
    seen: dict[str, str] = {}  # lower-cased id -> the id first seen
    for sample_id in ids:
        problem = id_problem(sample_id)
        if problem is None:
            other = seen.setdefault(sample_id.lower(), sample_id)
            if other != sample_id:
                problem = f"differs from id {other!r} only in case"
        if problem is not None:
            bad.append(f"{_shown(sample_id)} {problem}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise EvalsuiteError(f"{where}: id {'; id '.join(bad[:5])}{more}. {ID_RULE}."
                             + (f" {hint}" if hint else ""))


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
        """The PNG file of ``prompt_id``; unsafe ids are refused (see ``id_problem``)."""
        problem = id_problem(prompt_id)
        if problem is not None:
            raise EvalsuiteError(f"sample store {self.dir}: id {_shown(prompt_id)} {problem}. "
                                 f"{ID_RULE}.")
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
        path = self.path(prompt_id)  # first: an unsafe id fails before any work
        data = encode_png(image, {**info, "id": prompt_id, "generation_key": self.key})
        return atomic_write_bytes(path, data)

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
            path = self.path(e["id"])
            rows.append({**e, "file": path.name, "sha256": sha256_bytes(path.read_bytes())})
        digest = sha256_json(rows)
        atomic_write_text(self.dir / "manifest.json",
                          json.dumps({"generation_key": self.key, "sha256": digest, "images": rows},
                                     indent=1, sort_keys=True))
        return digest
