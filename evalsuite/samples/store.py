"""Where generated images live.

Layout: ``<results>/samples/<generation_key>/`` holds one lossless PNG per prompt id
(``<id>.png``, with the prompt, seed, generation key and sample identity in a PNG text chunk),
``identity/<id>.json`` per PNG (its identity and sha256, written after the PNG), a
``generation.json`` naming every factor that went into the key, and a ``manifest.json``
listing each image with its identity and sha256. The generation key hashes everything that
changes pixels (model identity, ablations, sampler settings but not batch size, resolution,
dtype, device type and CPU thread count), so two runs that would produce the same images share
one folder. A sample's identity adds its id, prompt text and seed
(``evalsuite.samples.identity``): a stored PNG is reused only if its record names the identity
requested and its bytes match the recorded sha256, so a run with other prompts under the same
ids, a swapped or edited PNG, or a run killed between a PNG and its record generates those
samples again. Each file is written to a temporary file and renamed, so a file that exists is
complete.

Ids become file names as they are, so only ids that are safe as a file name on every common
file system are accepted (``id_problem``): prompt sets refuse other ids when they are loaded
(``check_ids``), and the store refuses them again before touching the disk. Nothing in an id
can therefore name a path outside the store's folder.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from PIL import Image, PngImagePlugin

from evalsuite.errors import EvalsuiteError
from evalsuite.images import decode_image
from evalsuite.io import (atomic_write_bytes, atomic_write_text, sha256_bytes, sha256_file,
                          sha256_json)
from evalsuite.samples.identity import entry_identity, sample_identity

log = logging.getLogger(__name__)

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
    """Read an image file as uint8 (H, W, 3) by evalsuite's one set of decoding rules
    (``evalsuite.images.decode_image``: 16-bit exact, transparency refused, ...)."""
    return decode_image(path)


_NO_FILE = "has no PNG file"
_NO_RECORD = "has no identity record (it is written after the PNG: killed in between?)"


class SampleStore:
    """A folder of generated images for one generation key, each verified when it is read.

    Besides ``<id>.png``, each sample has ``identity/<id>.json``: its identity
    (``samples.identity.sample_identity``) and the PNG file's sha256, written after the PNG.
    A sample counts as present only if that record exists, names the requested identity and
    matches the file's bytes; anything else (an edited or swapped PNG, a PNG generated for
    another prompt text or seed, a PNG without its record after a kill) is missing, so
    generation makes it again. Once ``write_manifest`` has verified the set, ``read`` checks
    every file against the sha256 it recorded and refuses a file changed since.
    """

    def __init__(self, root: str | Path, factors: dict[str, Any]):
        self.factors = factors
        self.key = sha256_json(factors)[:16]
        self.dir = Path(root) / self.key
        self._hashes: dict[str, tuple[tuple[int, int, int], str]] = {}  # id -> (stat, sha256)
        self._verified: dict[str, str] = {}  # id -> sha256, as this process's manifest says
        self._manifest_digest: str | None = None

    def path(self, prompt_id: str) -> Path:
        """The PNG file of ``prompt_id``; unsafe ids are refused (see ``id_problem``)."""
        problem = id_problem(prompt_id)
        if problem is not None:
            raise EvalsuiteError(f"sample store {self.dir}: id {_shown(prompt_id)} {problem}. "
                                 f"{ID_RULE}.")
        return self.dir / f"{prompt_id}.png"

    def record_path(self, prompt_id: str) -> Path:
        """``identity/<id>.json``: the sample's identity and its PNG's sha256."""
        self.path(prompt_id)  # refuses unsafe ids
        return self.dir / "identity" / f"{prompt_id}.json"

    def _file_sha256(self, prompt_id: str) -> str | None:
        """sha256 of the PNG (None if absent), hashed once per process while it is unchanged."""
        try:
            st = self.path(prompt_id).stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        known = self._hashes.get(prompt_id)
        if known is None or known[0] != stamp:
            known = (stamp, sha256_file(self.path(prompt_id)))
            self._hashes[prompt_id] = known
        return known[1]

    def _record(self, prompt_id: str) -> dict[str, Any] | None:
        """The identity record of a sample; None if absent or unreadable (a missing sample)."""
        try:
            rec = json.loads(self.record_path(prompt_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) else None

    def problem(self, prompt_id: str, identity: str | None) -> str | None:
        """Why the stored sample is not usable as ``identity`` (None: it is; ``identity=None``
        checks only that the file matches its record)."""
        if not self.path(prompt_id).is_file():
            return _NO_FILE
        rec = self._record(prompt_id)
        if rec is None:
            return _NO_RECORD
        if identity is not None and rec.get("identity") != identity:
            return "was made for another prompt text, seed or generation key"
        if rec.get("sha256") != self._file_sha256(prompt_id):
            return "is not the file that was generated (its sha256 differs from its record)"
        return None

    def existing_ids(self) -> set[str]:
        """Ids whose PNG matches its identity record (whatever identity it names)."""
        if not self.dir.is_dir():
            return set()
        ids = {p.stem for p in self.dir.glob("*.png")
               if not p.name.startswith(".tmp-") and id_problem(p.stem) is None}
        return {i for i in ids if self.problem(i, None) is None}

    def valid_ids(self, entries: Iterable[Mapping[str, Any]]) -> set[str]:
        """The ids of ``entries`` (manifest entries: id, text, seed) stored with exactly that
        identity and intact. Stored samples that fail are logged once, then remade."""
        if not self.dir.is_dir():
            return set()
        good, bad = set(), []
        for e in entries:
            why = self.problem(e["id"], entry_identity(self.key, e))
            if why is None:
                good.add(e["id"])
            elif why not in (_NO_FILE, _NO_RECORD):  # not yet written, or being written
                bad.append(f"{e['id']} {why}")
        if bad:
            log.warning("sample store %s: %d stored samples are not reused (%s%s); they are "
                        "generated again", self.dir, len(bad), "; ".join(bad[:3]),
                        ", ..." if len(bad) > 3 else "")
        return good

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
        """Store one sample: the PNG (``info`` and the identity in its text chunk), then its
        identity record. ``info["prompt"]`` and ``info["seed"]`` are part of the identity."""
        path = self.path(prompt_id)  # first: an unsafe id fails before any work
        identity = sample_identity(self.key, prompt_id, info.get("prompt"), info.get("seed"))
        data = encode_png(image, {**info, "id": prompt_id, "generation_key": self.key,
                                  "identity": identity})
        atomic_write_bytes(path, data)
        digest = sha256_bytes(data)
        atomic_write_text(self.record_path(prompt_id),
                          json.dumps({"id": prompt_id, "identity": identity, "sha256": digest},
                                     sort_keys=True))
        return path

    def read(self, prompt_id: str) -> np.ndarray:
        """Decode one sample after checking its bytes against the sha256 it must have.

        That sha256 is the one this store's ``write_manifest`` verified in this process, else
        the one in ``manifest.json``, else its identity record.
        """
        p = self.path(prompt_id)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise EvalsuiteError(f"sample {p} is missing from the sample store") from None
        expected = self._verified.get(prompt_id) or self._disk_sha256(prompt_id)
        if expected is None:
            raise EvalsuiteError(f"sample {p} has no identity record and no manifest entry, so "
                                 "it cannot be verified; run again (stage=all or generate) to "
                                 "make it anew")
        actual = sha256_bytes(data)
        if actual != expected:
            raise EvalsuiteError(
                f"sample {p} has changed since it was generated (sha256 {actual[:12]}, "
                f"expected {expected[:12]}): it was edited, replaced, or overwritten by a "
                "run with other prompts writing into the same results folder. Nothing was "
                "scored from it; run again (stage=all or generate) to make it anew")
        return decode_image(p, data)

    def _disk_sha256(self, prompt_id: str) -> str | None:
        rows = self._disk_manifest_rows()
        if prompt_id in rows:
            return rows[prompt_id]
        rec = self._record(prompt_id)
        return rec.get("sha256") if rec else None

    def _disk_manifest_rows(self) -> dict[str, str]:
        try:
            doc = json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
            return {r["id"]: r["sha256"] for r in doc["images"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def manifest_sha256(self) -> str | None:
        """The sha256 of the manifest this process wrote, else the one in ``manifest.json``
        (None before the first manifest)."""
        if self._manifest_digest is not None:
            return self._manifest_digest
        path = self.dir / "manifest.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))["sha256"]

    def write_manifest(self, entries: list[dict[str, Any]]) -> str:
        """Verify every entry's sample, then write ``manifest.json`` (each entry with its file,
        sha256 and identity); return its sha256. ``read`` then checks files against it.

        A sample that does not verify is an ``EvalsuiteError``: it was changed after this run
        generated or checked it (by hand, or by another run writing into the same folder).
        """
        rows, bad = [], []
        for e in entries:
            identity = entry_identity(self.key, e)
            why = self.problem(e["id"], identity)
            if why is not None:
                bad.append(f"{e['id']} {why}")
                continue
            rows.append({**e, "file": self.path(e["id"]).name, "identity": identity,
                         "sha256": self._file_sha256(e["id"])})
        if bad:
            raise EvalsuiteError(
                f"sample store {self.dir}: {len(bad)} samples do not match the prompts of this "
                f"run ({'; '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); another run may be "
                "writing other prompts into the same results folder. Nothing was scored; run "
                "again (stage=all or generate) to make them anew")
        digest = sha256_json(rows)
        atomic_write_text(self.dir / "manifest.json",
                          json.dumps({"generation_key": self.key, "sha256": digest, "images": rows},
                                     indent=1, sort_keys=True))
        self._verified = {r["id"]: r["sha256"] for r in rows}
        self._manifest_digest = digest
        return digest
