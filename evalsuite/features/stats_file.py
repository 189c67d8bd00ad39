"""Reference statistics as shareable files: ``.npz`` with ``mu`` and ``sigma``.

Import: ``reference.stats={fid_legacy: /path/stats.npz}`` makes that FID metric use the file's
mean and covariance instead of features of reference images. The format is the one clean-fid
(``np.savez_compressed(outf, mu=mu, sigma=sigma)``) and pytorch-fid (``--save-stats``) write;
files written here also carry ``n`` (images behind the statistics) and ``provenance`` (JSON),
which are read when present. A file is validated when the reference set is built (before any
generation) and identified by its sha256 wherever it changes a number: the reference's
``describe()``, the metric's settings and its cache key.

Export: ``write_stats`` writes float64 ``mu``/``sigma`` plus ``n`` and ``provenance``
atomically; ``pytorch_fid.fid_score.calculate_frechet_distance`` takes its ``mu``/``sigma``
as they are, and ``load_stats`` reads it back bit for bit.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_bytes, sha256_bytes


@dataclass(frozen=True, eq=False)
class ReferenceStats:
    """Imported mean and covariance of reference features (float64)."""

    path: Path
    sha256: str
    mu: np.ndarray
    sigma: np.ndarray
    n: int | None  # images behind the statistics; None when the file does not say
    provenance: dict[str, Any] | None = None

    @property
    def dims(self) -> int:
        return int(self.mu.shape[0])

    def record(self) -> dict[str, Any]:
        """What identifies the file (content, not location): for describe() and cache keys."""
        out: dict[str, Any] = {"sha256": self.sha256, "dims": self.dims,
                               "n": self.n if self.n is not None else "unknown"}
        made_from = (self.provenance or {}).get("reference")
        if isinstance(made_from, dict):  # `evalsuite stats` says which images: keep it visible
            out["made_from"] = {k: made_from.get(k) for k in ("name", "sha256", "n",
                                                              "preprocess", "resolution")}
        return out

    def made_by(self) -> dict[str, Any] | None:
        """The extractor identity the file was computed with (files from ``evalsuite stats``;
        None for clean-fid / pytorch-fid files, which do not say)."""
        ex = (self.provenance or {}).get("extractor")
        return ex if isinstance(ex, dict) else None


def _bad(path: Path, why: str) -> EvalsuiteError:
    return EvalsuiteError(f"reference statistics file {path}: {why}. Expected an .npz with "
                          "'mu' (D,) and 'sigma' (D, D), as clean-fid or pytorch-fid "
                          "(--save-stats) or `evalsuite stats` write them")


def load_stats(path: str | Path) -> ReferenceStats:
    """Read and validate a statistics file; every problem is an ``EvalsuiteError`` naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise EvalsuiteError(f"reference statistics file {path} does not exist; set "
                             "reference.stats.<metric>=<path to an .npz with mu and sigma>")
    data = path.read_bytes()
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise _bad(path, "is a single array (.npy), not an .npz archive")
        with loaded as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _bad(path, f"is not a readable .npz archive ({e})") from None
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise _bad(path, f"has no {' or '.join(repr(k) for k in missing)} "
                         f"(keys: {sorted(arrays)})")
    mu, sigma = arrays["mu"], arrays["sigma"]
    for key, arr in (("mu", mu), ("sigma", sigma)):
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise _bad(path, f"'{key}' has dtype {arr.dtype}, not real numbers")
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    sigma = np.ascontiguousarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise _bad(path, f"'mu' has shape {mu.shape}, not (D,)")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise _bad(path, f"'sigma' has shape {sigma.shape}, not the square "
                         f"({mu.shape[0]}, {mu.shape[0]}) that 'mu' {mu.shape} needs")
    for key, arr in (("mu", mu), ("sigma", sigma)):
        if not np.isfinite(arr).all():
            raise _bad(path, f"'{key}' has {int((~np.isfinite(arr)).sum())} non-finite values")
    return ReferenceStats(path.resolve(), sha256_bytes(data), mu, sigma, _n(path, arrays),
                          _provenance(path, arrays))


def _n(path: Path, arrays: Mapping[str, np.ndarray]) -> int | None:
    if "n" not in arrays:
        return None  # clean-fid and pytorch-fid do not record it
    n = arrays["n"]
    if n.shape != () or not np.issubdtype(n.dtype, np.integer) or int(n) < 2:
        raise _bad(path, f"'n' is {n!r}; it must be an integer >= 2 (the number of images)")
    return int(n)


def _provenance(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    if "provenance" not in arrays:
        return None
    try:
        value = json.loads(str(arrays["provenance"]))
    except json.JSONDecodeError as e:
        raise _bad(path, f"'provenance' is not JSON ({e})") from None
    return value if isinstance(value, dict) else {"value": value}


def load_stats_map(stats: Mapping[str, str] | None) -> dict[str, ReferenceStats]:
    """``reference.stats`` (metric name -> path) loaded and validated, sorted by name."""
    out = {}
    for name in sorted(stats or {}):
        path = stats[name]
        if not isinstance(path, (str, Path)) or not str(path):
            raise EvalsuiteError(f"reference.stats.{name}={path!r}: give the path of an .npz "
                                 "with mu and sigma")
        try:
            out[str(name)] = load_stats(path)
        except EvalsuiteError as e:
            raise EvalsuiteError(f"reference.stats.{name}: {e}") from None
    return out


def stats_records(stats: Mapping[str, ReferenceStats]) -> dict[str, dict[str, Any]]:
    """metric name -> ``ReferenceStats.record()``: what ``describe()`` shows of the files."""
    return {name: s.record() for name, s in sorted(stats.items())}


def write_stats(path: str | Path, mu: np.ndarray, sigma: np.ndarray, n: int,
                provenance: Mapping[str, Any]) -> Path:
    """Write ``mu``, ``sigma`` (float64), ``n`` and ``provenance`` (JSON) atomically.

    The file is a compressed ``.npz`` in clean-fid's / pytorch-fid's layout (keys ``mu`` and
    ``sigma``), so their tools read it too; ``load_stats`` returns the same arrays bit for bit.
    """
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} are not (D,) and (D, D)")
    buf = io.BytesIO()
    np.savez_compressed(buf, mu=mu, sigma=sigma, n=np.int64(n),
                        provenance=np.array(json.dumps(provenance, sort_keys=True, default=str)))
    return atomic_write_bytes(Path(path).expanduser(), buf.getvalue())
