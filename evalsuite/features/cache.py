"""On-disk feature cache: one ``.npy`` (float32, N x D) per (image set, extractor) pair.

Key = sha256 of {image-set identity, extractor identity (name, version, layer, resize
protocol, weights sha256, device type)}: adding a metric or re-running never recomputes
features that exist, and any change to a factor gets a new file.

Writes are atomic and streaming: rows are appended to a temporary file in the cache folder
(never held in memory), which is fsync-ed and renamed when complete; the ``.json`` sidecar
(ids, identities) is written last, and an entry counts as present only when both exist. A
killed pass leaves at most a ``.tmp-*`` file behind.

Reading: ``FeatureFile.blocks`` reads fixed-size row blocks with plain file reads (constant
memory; the block size, not the extraction batch size, fixes the order in which statistics
are accumulated), ``FeatureFile.array`` memory-maps the whole matrix (for KID/CMMD, which
index subsets). ``FeatureFile.stats`` computes the float64 mean and covariance once and
caches them next to the features: reference statistics are computed once per (reference
set, protocol) and reused by every later run.

Integrity: the sidecar holds the sha256 of the ``.npy`` bytes and a digest of itself, and the
``.stats.npz`` a digest of its arrays and of the ``.npy`` it was computed from. An entry
whose check fails (truncated, edited, torn) is a cache miss: one log line, recomputed and
rewritten, never used (``entry_problem``, ``read_stats``; ``evalsuite doctor`` uses them).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from evalsuite.io import atomic_write_bytes, atomic_write_text, sha256_file, sha256_json
from evalsuite.metrics.functional.frechet import GaussianStats, RunningStats

STATS_BLOCK = 256  # rows per block when accumulating statistics: fixes the sum order
DTYPE = np.dtype("<f4")
STATS_SUFFIX = ".stats.npz"

log = logging.getLogger(__name__)


def feature_key(images: dict[str, Any], extractor: dict[str, Any]) -> str:
    """The cache key of an (image set identity, extractor identity) pair."""
    return sha256_json({"images": images, "extractor": extractor})


@dataclass(frozen=True)
class FeatureFile:
    """A complete cache entry."""

    path: Path  # the .npy file
    meta: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @property
    def dims(self) -> int:
        return int(self.meta["dims"])

    @property
    def ids(self) -> list[str]:
        return list(self.meta["ids"])

    def array(self) -> np.ndarray:
        """The (N, D) float32 matrix, memory-mapped read-only."""
        return np.load(self.path, mmap_mode="r")

    def blocks(self, rows: int = STATS_BLOCK) -> Iterator[np.ndarray]:
        """Consecutive (<= rows, D) float32 blocks, read without mapping the file."""
        with open(self.path, "rb") as f:
            if np.lib.format.read_magic(f) == (1, 0):  # positions f at the data
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            for start in range(0, self.n, rows):
                count = min(rows, self.n - start) * self.dims
                yield np.fromfile(f, dtype=DTYPE, count=count).reshape(-1, self.dims)

    def stats(self) -> GaussianStats:
        """Float64 mean and covariance, computed once (fixed blocks) and cached on disk."""
        path = stats_path(self.path)
        cached, problem = read_stats(path, self.meta.get("npy_sha256"))
        if cached is not None:
            return cached
        if problem:
            log.warning("feature statistics %s: %s; recomputing them", path, problem)
        rs = RunningStats(self.dims)
        for block in self.blocks():
            rs.update(block)
        st = rs.finalize()
        buf = io.BytesIO()
        np.savez(buf, mu=st.mu, cov=st.cov, n=np.int64(st.n),
                 digest=np.array(_stats_digest(st.mu, st.cov, st.n, self.meta.get("npy_sha256"))))
        atomic_write_bytes(path, buf.getvalue())
        return st


def stats_path(npy: Path) -> Path:
    """Where the statistics of feature file ``npy`` are cached."""
    return npy.with_name(npy.stem + STATS_SUFFIX)


def _stats_digest(mu: np.ndarray, cov: np.ndarray, n: int, npy_sha256: str | None) -> str:
    h = hashlib.sha256(f"{npy_sha256}:{int(n)}:".encode())
    for a in (mu, cov):
        h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
    return h.hexdigest()


def read_stats(path: Path, npy_sha256: str | None) -> tuple[GaussianStats | None, str | None]:
    """Cached statistics at ``path`` if they check out: ``(stats, None)``; else ``(None,
    problem)`` (``(None, None)``: no file). They must carry the digest of their arrays and of
    the feature file (``npy_sha256``) they were computed from."""
    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as z:
            mu, cov, n, digest = z["mu"], z["cov"], int(z["n"]), str(z["digest"])
    except Exception as e:  # zipfile/numpy raise many types for a torn or foreign file
        return None, f"unreadable ({type(e).__name__}: {e})"
    if digest != _stats_digest(mu, cov, n, npy_sha256):
        return None, "does not match its digest or its feature file (edited, corrupted or stale)"
    return GaussianStats(mu, cov, n), None


def _meta_digest(meta: dict[str, Any]) -> str:
    return sha256_json({k: v for k, v in meta.items() if k != "digest"})


def entry_problem(npy: Path, meta_path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Check one cache entry: ``(meta, None)`` when it is complete and intact, ``(None,
    None)`` when it is absent, ``(None, what is wrong)`` otherwise."""
    if not (npy.is_file() and meta_path.is_file()):
        return None, None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"sidecar {meta_path.name} is unreadable ({e})"
    if not isinstance(meta, dict) or "digest" not in meta or "npy_sha256" not in meta:
        return None, f"sidecar {meta_path.name} has no digest (older evalsuite, or edited)"
    if _meta_digest(meta) != meta["digest"]:
        return None, f"sidecar {meta_path.name} does not match its digest"
    if sha256_file(npy) != meta["npy_sha256"]:
        return None, f"{npy.name} does not match the sha256 in its sidecar (truncated or edited)"
    return meta, None


class FeatureWriter:
    """Streams rows into a temporary file; ``commit`` publishes it atomically."""

    def __init__(self, folder: Path, key: str, n: int, dims: int, meta: dict[str, Any]) -> None:
        self.folder, self.key, self.n, self.dims, self.meta = folder, key, n, dims, meta
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npy")
        self._tmp = Path(tmp)
        self._f = os.fdopen(fd, "wb")
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": np.lib.format.dtype_to_descr(DTYPE), "fortran_order": False,
                     "shape": (n, dims)})
        self._sha = hashlib.sha256()  # of the bytes as written, for the sidecar
        self._write(header.getvalue())
        self.rows = 0

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._sha.update(data)

    def append(self, rows: np.ndarray) -> None:
        """Write the next rows (in id order) to the temporary file."""
        rows = np.ascontiguousarray(rows, dtype=DTYPE)
        if rows.ndim != 2 or rows.shape[1] != self.dims:
            raise ValueError(f"expected (k, {self.dims}) rows, got {rows.shape}")
        if self.rows + len(rows) > self.n:
            raise ValueError(f"more than the declared {self.n} rows")
        self._write(rows.tobytes())
        self.rows += len(rows)

    def commit(self) -> FeatureFile:
        """Check the row count, fsync, rename into place, then write the sidecar."""
        if self.rows != self.n:
            self.abort()
            raise ValueError(f"feature file {self.key}: {self.rows} rows written, {self.n} declared")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        final = self.folder / f"{self.key}.npy"
        os.replace(self._tmp, final)
        meta = {**self.meta, "key": self.key, "n": self.n, "dims": self.dims,
                "npy_sha256": self._sha.hexdigest()}
        meta["digest"] = _meta_digest(meta)
        stats_path(final).unlink(missing_ok=True)  # statistics of a replaced file are stale
        atomic_write_text(final.with_suffix(".json"), json.dumps(meta, sort_keys=True))
        return FeatureFile(final, meta)

    def abort(self) -> None:
        """Drop the temporary file (nothing becomes visible)."""
        if not self._f.closed:
            self._f.close()
        self._tmp.unlink(missing_ok=True)


class FeatureCache:
    """Feature files under ``folder`` (None: a private temporary folder, removed at exit)."""

    def __init__(self, folder: str | Path | None) -> None:
        if folder is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="evalsuite-features-")
            folder = self._tmpdir.name
        self.folder = Path(folder)

    def get(self, key: str) -> FeatureFile | None:
        """The complete, intact entry for ``key``, or None (a damaged one is logged once and
        will be recomputed over)."""
        npy = self.folder / f"{key}.npy"
        meta, problem = entry_problem(npy, npy.with_suffix(".json"))
        if problem:
            log.warning("feature cache entry %s: %s; recomputing it", npy, problem)
        return FeatureFile(npy, meta) if meta is not None else None

    def writer(self, key: str, ids: Sequence[str], dims: int, images: dict[str, Any],
               extractor: dict[str, Any]) -> FeatureWriter:
        """A writer for ``len(ids)`` rows of ``dims`` features under ``key``."""
        meta = {"ids": list(ids), "images": images, "extractor": extractor}
        return FeatureWriter(self.folder, key, len(ids), dims, meta)
