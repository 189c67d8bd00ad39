"""Frechet Inception Distance under the two protocols papers report.

- ``fid_clean``: clean-fid's ``clean`` mode (Parmar et al. 2022): clean-fid's TorchScript
  Inception, per-channel float PIL bicubic resize to 299 (antialiased, not quantised).
- ``fid_legacy``: pytorch-fid (what BK-SDM reports): pytorch-fid's Inception weights, torch
  bilinear resize without antialiasing.
- ``fid_legacy_tensorflow``: clean-fid's ``legacy_tensorflow`` mode (the TorchScript network
  resizes its input itself, like the original TF code).

The resize is part of the protocol: the same images give FIDs ~14% apart under clean and
legacy resizing, so the metric's name carries the protocol and values of different protocols
never share a table column. Statistics are float64 (see ``functional/frechet.py``); the
distance is eigenvalue based. The record says when the estimate is unreliable (n <= dims).

``resize``/``size`` add an evaluation resize before the protocol's own (BK-SDM squashes its
512 px samples to 256 first: ``resize=squash size=256``); it applies to generated and
reference images alike, is a no-op on images already ``size`` x ``size``, and is part of the
extractor's identity. ``use_reference_stats`` replaces the reference features by imported
statistics (``reference.stats``, ``features/stats_file.py``), recorded by sha256; a file that
does not say how many images it summarises is recorded with ``n_ref: "unknown"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.io import sha256_json
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.inception import CleanFIDInception, PytorchFIDInception
from evalsuite.metrics.base import DistributionMetric, MetricResult
from evalsuite.metrics.functional.frechet import (FrechetResult, GaussianStats, RunningStats,
                                                  frechet_distance, frechet_distance_low_rank,
                                                  reliability)

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset
    from evalsuite.features.cache import FeatureFile
    from evalsuite.features.stats_file import ReferenceStats


def weighted_stats(file: "FeatureFile", weights: np.ndarray) -> GaussianStats:
    """Mean and covariance of a resample given per-row counts (a bootstrap draw)."""
    n = float(weights.sum())
    mu = np.zeros(file.dims)
    for start, block in _enumerate_blocks(file):
        mu += weights[start:start + len(block)] @ block.astype(np.float64)
    mu /= n
    cov = np.zeros((file.dims, file.dims))
    for start, block in _enumerate_blocks(file):
        xc = block.astype(np.float64) - mu
        cov += (xc * weights[start:start + len(block), None]).T @ xc
    return GaussianStats(mu, cov / (n - 1), int(n))


def _enumerate_blocks(file: "FeatureFile"):
    start = 0
    for block in file.blocks():
        yield start, block
        start += len(block)


class FID(DistributionMetric):
    """Frechet distance between Inception features of generated and reference images."""

    name: ClassVar[str] = "fid"
    version, higher_is_better = "1", False
    protocol: ClassVar[str] = "custom extractor"

    def __init__(self, extractor: FeatureExtractor, resize: str | None = None,
                 size: int | None = None) -> None:
        self.extractor = extractor
        extractor.set_eval_resize(resize, size, self.name)
        self._imported: ReferenceStats | None = None
        self.reset()

    @property
    def imported_stats(self) -> "ReferenceStats | None":
        """The imported reference statistics in use (None: reference features are used)."""
        return self._imported

    def use_reference_stats(self, stats: "ReferenceStats") -> None:
        """Compare with imported reference statistics instead of reference features."""
        if stats.dims != self.extractor.dims:
            raise EvalsuiteError(
                f"{self.name}: reference statistics file {stats.path} has {stats.dims}-dim "
                f"features, but this metric's extractor ({self.extractor.name}) gives "
                f"{self.extractor.dims}; use a file computed with the same network and layer")
        made_by, mine = stats.made_by(), self.extractor.spec()
        if made_by is not None:  # written by `evalsuite stats`: it says how it was made
            differ = [k for k in ("extractor", "version", "params")
                      if sha256_json(made_by.get(k)) != sha256_json(mine[k])]
            if differ:
                raise EvalsuiteError(
                    f"{self.name}: reference statistics file {stats.path} was computed with "
                    "other feature settings (" + "; ".join(
                        f"{k}: {made_by.get(k)!r} there, {mine[k]!r} here" for k in differ)
                    + f"); export them with this metric's settings (evalsuite stats) or drop "
                    f"reference.stats.{self.name}")
        self._imported = stats
        self.reset()

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        super().prepare(weights)
        made_by = self._imported.made_by() if self._imported is not None else None
        if made_by is not None and "weights" in made_by:
            here = self.extractor.identity()["weights"]
            if sha256_json(made_by["weights"]) != sha256_json(here):
                raise EvalsuiteError(
                    f"{self.name}: reference statistics file {self._imported.path} was computed "
                    f"with other Inception weights ({made_by['weights']}) than this run's "
                    f"({here}); their FID would compare two different feature spaces")

    def reset(self) -> None:
        self._gen = RunningStats(self.extractor.dims)
        self._ref = RunningStats(self.extractor.dims)
        self._ref_stats: GaussianStats | None = None
        self._gen_file: FeatureFile | None = None
        # Generated rows are kept only while n <= dims (at most D x D floats, like the
        # covariance): then the exact low-rank distance applies.
        self._gen_rows: list[np.ndarray] | None = []
        self._facts: dict[str, Any] = {}
        if self._imported is not None:
            imp = self._imported
            self._ref_stats = GaussianStats(imp.mu, imp.sigma, imp.n if imp.n else 0)

    def params(self) -> dict[str, Any]:
        p = {"protocol": self.protocol, "features": self.extractor.params(),
             "statistics": "float64 mean and covariance (divides by n - 1, as np.cov)",
             "distance": "trace of (S1 S2)^1/2 from eigvalsh of S1^1/2 S2 S1^1/2, or exactly "
                         "from the n x n matrix A S2 A^T when n_gen <= dims; float64"}
        if self._imported is not None:
            p["reference_statistics"] = {"imported": True, **self._imported.record()}
        return p

    def settings(self) -> dict[str, Any]:
        s = {**self.params(), **self._facts}
        if self._imported is not None:  # where it was read from: recorded, not hashed
            s["reference_statistics"] = {**s["reference_statistics"],
                                         "file": str(self._imported.path)}
        return s

    def update(self, features: np.ndarray, real: bool) -> None:
        if real:
            if self._imported is not None:
                raise ValueError(f"{self.name} compares with imported statistics "
                                 f"({self._imported.path}); it takes no reference features")
            self._ref.update(features)
            return
        self._gen.update(features)
        if self._gen_rows is not None:
            self._gen_rows.append(np.array(features, dtype=np.float32))
            if self._gen.n > self.extractor.dims:
                self._gen_rows = None

    def update_from_files(self, gen: "FeatureFile", ref: "FeatureFile | None") -> None:
        """Generated features from the cache; reference statistics from ``ref`` (cached next
        to its features) or, with imported statistics, from the file (``ref`` None)."""
        for block in gen.blocks():
            self.update(block, real=False)
        if self._imported is None:
            if ref is None:
                raise ValueError(f"{self.name}: no reference features and no imported statistics")
            self._ref_stats = ref.stats()  # cached per (reference set, protocol)
        self._gen_file = gen

    def _distance(self, gen: GaussianStats, ref: GaussianStats,
                  rows: "np.ndarray | list[np.ndarray] | None") -> FrechetResult:
        if rows is not None:
            return frechet_distance_low_rank(rows, ref.mu, ref.cov)
        return frechet_distance(gen.mu, gen.cov, ref.mu, ref.cov)

    def _stats(self) -> tuple[GaussianStats, GaussianStats]:
        n_ref = self._ref_stats.n if self._ref_stats else self._ref.n
        checks = [("generated", self._gen.n)]
        if self._imported is None:  # imported files were checked when loaded
            checks.append(("reference", n_ref))
        for what, n in checks:
            if n < 2:
                raise EvalsuiteError(f"{self.name}: FID needs at least 2 {what} images, got {n}")
        return self._gen.finalize(), self._ref_stats or self._ref.finalize()

    def _n_ref(self, ref: GaussianStats) -> int | None:
        """Reference images behind ``ref`` (None: imported from a file that does not say)."""
        return self._imported.n if self._imported is not None else ref.n

    def compute(self) -> MetricResult:
        gen, ref = self._stats()
        res = self._distance(gen, ref, self._gen_rows or None)
        n_ref = self._n_ref(ref)
        # An unknown reference count cannot be judged: only the generated side is checked
        # (dims + 1 stands for "enough"), and the record says the count is unknown.
        reasons = reliability(gen.n, n_ref if n_ref is not None else gen.dims + 1, gen.dims)
        self._facts = {"n_gen": gen.n, "n_ref": n_ref if n_ref is not None else "unknown",
                       "reliable": not reasons, "unreliable_because": reasons,
                       "numerics": res.diagnostics}
        if n_ref is None:
            self._facts["n_ref_note"] = ("imported statistics do not record their image count; "
                                         "reliability judged on the generated images only")
        return self._result(res.value, gen.n, self.extractor.weights_record())

    def bootstrap_values(self, counts: np.ndarray) -> np.ndarray:
        _, ref = self._stats()
        rows = np.concatenate(self._gen_rows) if self._gen_rows else None
        if rows is None and self._gen_file is None:
            raise NotImplementedError("FID bootstrap with n > dims needs the features on disk")
        out = []
        for c in counts:
            if rows is not None:  # a resample is the original rows, repeated
                out.append(self._distance(ref, ref, np.repeat(rows, c, axis=0)).value)
            else:
                g = weighted_stats(self._gen_file, c.astype(np.float64))
                out.append(frechet_distance(g.mu, g.cov, ref.mu, ref.cov).value)
        return np.asarray(out)


class CleanFID(FID):
    """FID, clean-fid ``clean`` protocol."""

    name, protocol = "fid_clean", "clean-fid mode=clean"

    def __init__(self, device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        super().__init__(CleanFIDInception("clean", device), resize, size)


class LegacyFID(FID):
    """FID, pytorch-fid protocol (``dims`` other than 2048 only for diagnostics and tests)."""

    name, protocol = "fid_legacy", "pytorch-fid"

    def __init__(self, dims: int = 2048, device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        super().__init__(PytorchFIDInception(dims, device), resize, size)


class TensorflowLegacyFID(FID):
    """FID, clean-fid ``legacy_tensorflow`` protocol (network-internal resize)."""

    name, protocol = "fid_legacy_tensorflow", "clean-fid mode=legacy_tensorflow"

    def __init__(self, device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        super().__init__(CleanFIDInception("legacy_tensorflow", device), resize, size)


class ReconstructionFID(CleanFID):
    """rFID: FID (clean-fid ``clean``) of VAE reconstructions against their originals.

    Its own name so that a decoder's rFID never shares a table column with a generator's FID.
    """

    name = "rfid_clean"
    reconstruction_only = True
