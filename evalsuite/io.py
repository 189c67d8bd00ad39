"""Atomic file writes and content hashing.

Every file evalsuite writes goes through here: data is written to a temporary file in the
destination folder, flushed to disk, then renamed over (or linked to) its final name, so a
reader never sees a half-written file, even when the writer is killed with SIGKILL.

``writes_held()`` keeps every write of a block in memory and writes it only when the block
ends without an error: the pipeline validates under it, so a refused run writes nothing (not
even the digest caches its checks fill). A full disk or a read-only folder is an
``EvalsuiteError`` naming the file (one paragraph, exit status 2), not a traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from evalsuite.errors import EvalsuiteError

log = logging.getLogger(__name__)


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


# path -> (bytes, create-only) of the writes held by ``writes_held`` (None: not holding).
_HELD: contextvars.ContextVar[dict[Path, tuple[bytes, bool]] | None] = \
    contextvars.ContextVar("evalsuite_held_writes", default=None)

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


@contextlib.contextmanager
def writes_held() -> Iterator[None]:
    """Hold the block's atomic writes in memory (reads of them see the held bytes); write them
    all when the block ends normally, drop them when it raises: a refusal writes nothing."""
    held: dict[Path, tuple[bytes, bool]] = {}
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
    for path, (data, create) in held.items():
        if not create:
            atomic_write_bytes(path, data)
        elif not path.exists():
            with contextlib.suppress(FileExistsError):
                atomic_create_bytes(path, data)


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes, or the bytes a ``writes_held`` block holds for it."""
    held = _HELD.get()
    if held is not None and Path(path) in held:
        return held[Path(path)][0]
    return Path(path).read_bytes()


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A full disk or a folder that refuses writing: one paragraph naming the file."""
    try:
        yield
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise EvalsuiteError(f"no space left on the device holding {path.parent} while "
                                 f"writing {path.name} ({e.strerror}); the file was not "
                                 "written and no file there is half-written. Free space, or "
                                 "set paths.results_dir=<a folder with space>, and run again: "
                                 "finished work is reused") from None
        if e.errno in _DENIED:
            raise EvalsuiteError(f"cannot write {path} ({e.strerror}); make its folder "
                                 "writable, or set paths.results_dir=<a writable folder>") from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, replacing any existing file."""
    path = Path(path)
    held = _HELD.get()
    if held is not None:
        held[path] = (bytes(data), False)
        return path
    with _writing(path):
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
    held = _HELD.get()
    if held is not None:
        if path in held or path.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(path))
        held[path] = (bytes(data), True)
        return path
    with _writing(path):
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
    two runs finishing at once cannot publish a table missing the other's record. Inside
    ``writes_held`` nothing is written, so there is nothing to lock (and no lock file made).
    """
    if _HELD.get() is not None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _sealed(value: Any) -> dict[str, Any]:
    """``value`` wrapped with the sha256 of its canonical JSON form (see ``unseal``)."""
    return {"digest": sha256_json(value), "value": value}


def unseal(path: str | os.PathLike) -> tuple[Any, str | None]:
    """Read a sealed JSON cache file: ``(value, None)``, or ``(None, what is wrong)``.

    A cache file that is missing is ``(None, None)``. One that is truncated, empty, not a
    sealed object, or whose value does not match its digest is never used: the caller
    recomputes the value (a cache miss), so an edited or torn cache file cannot reach a record.
    """
    try:
        raw = read_bytes(path)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"unreadable ({e.strerror or e})"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return None, f"not valid JSON ({'empty file' if not raw.strip() else e})"
    if not isinstance(data, dict) or set(data) != {"digest", "value"}:
        return None, ("not a sealed cache entry (no digest: written by an older evalsuite "
                      "or by hand)")
    if sha256_json(data["value"]) != data["digest"]:
        return None, "its content does not match its digest (edited or corrupted)"
    return data["value"], None


def cached_sha256(path: str | os.PathLike, cache_file: str | os.PathLike | None) -> str:
    """sha256 of a file, remembered by (absolute path, size, mtime) in ``cache_file``.

    Multi-gigabyte checkpoints take seconds to hash; a file whose size and modification time
    are unchanged is not hashed again. ``cache_file=None`` always hashes. The cache file is
    sealed (``unseal``): a torn or edited one is dropped, with one log line, and rebuilt.
    """
    path = Path(path).resolve()
    if cache_file is None:
        return sha256_file(path)
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cache_file = Path(cache_file)
    with file_lock(cache_file.with_name(cache_file.name + ".lock")):
        cache, problem = unseal(cache_file)
        if problem:
            log.warning("digest cache %s is %s; hashing again", cache_file, problem)
        cache = cache if isinstance(cache, dict) else {}
        hit = cache.get(str(path))
        if isinstance(hit, dict) and hit.get("size") == stamp["size"] \
                and hit.get("mtime_ns") == stamp["mtime_ns"] and isinstance(hit.get("sha256"), str):
            return hit["sha256"]
        digest = sha256_file(path)
        cache[str(path)] = {**stamp, "sha256": digest}
        atomic_write_text(cache_file, json.dumps(_sealed(cache), indent=1, sort_keys=True))
    return digest


class JsonCache:
    """Small JSON values on disk, one sealed file per key (``unseal``), written atomically
    (None: no cache). A file that fails its check is a miss, logged once, and rewritten."""

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = Path(folder) if folder is not None else None

    def get(self, key: str) -> Any:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.json"
        value, problem = unseal(path)
        if problem:
            log.warning("cache file %s is %s; recomputing it", path, problem)
        return value

    def put(self, key: str, value: Any) -> None:
        if self.folder is not None:
            atomic_write_text(self.folder / f"{key}.json",
                              json.dumps(_sealed(value), sort_keys=True))
