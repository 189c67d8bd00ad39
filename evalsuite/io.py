"""Atomic file writes and content hashing.

Every file evalsuite writes goes through here: data is written to a temporary file in the
destination folder, flushed to disk, then renamed over (or linked to) its final name, so a
reader never sees a half-written file, even when the writer is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; results are meant to be shared, so give them the usual mode.
_FILE_MODE = 0o666 & ~_umask()


def _write_temp(directory: Path, data: bytes, suffix: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, replacing any existing file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, data, path.suffix)
    os.replace(tmp, path)
    return path


def atomic_create_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a new file at ``path`` atomically; never overwrite.

    Uses ``link(2)``, which fails if the name exists, so two writers racing for the same name
    cannot clobber each other: the loser gets ``FileExistsError``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, data, path.suffix)
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically, replacing any existing file."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace variation: the input to every config hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """sha256 of the canonical JSON form of ``obj``."""
    return sha256_bytes(canonical_json(obj).encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the duration of the block.

    Used only where a derived file is rebuilt from many inputs (the results table), so that
    two runs finishing at once cannot publish a table missing the other's record.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def cached_sha256(path: str | os.PathLike, cache_file: str | os.PathLike | None) -> str:
    """sha256 of a file, remembered by (absolute path, size, mtime) in ``cache_file``.

    Multi-gigabyte checkpoints take seconds to hash; a file whose size and modification time
    are unchanged is not hashed again. ``cache_file=None`` always hashes.
    """
    path = Path(path).resolve()
    if cache_file is None:
        return sha256_file(path)
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cache_file = Path(cache_file)
    with file_lock(cache_file.with_name(cache_file.name + ".lock")):
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            cache = {}
        hit = cache.get(str(path))
        if hit and hit.get("size") == stamp["size"] and hit.get("mtime_ns") == stamp["mtime_ns"]:
            return hit["sha256"]
        digest = sha256_file(path)
        cache[str(path)] = {**stamp, "sha256": digest}
        atomic_write_text(cache_file, json.dumps(cache, indent=1, sort_keys=True))
    return digest


class JsonCache:
    """Small JSON values on disk, one file per key, written atomically (None: no cache)."""

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = Path(folder) if folder is not None else None

    def get(self, key: str) -> Any:
        if self.folder is None:
            return None
        try:
            return json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def put(self, key: str, value: Any) -> None:
        if self.folder is not None:
            atomic_write_text(self.folder / f"{key}.json", json.dumps(value, sort_keys=True))
