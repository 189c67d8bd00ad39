"""Frechet distance between Gaussians fitted to features, computed without ``sqrtm``.

FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

``scipy.linalg.sqrtm`` of the non-symmetric product S1 S2 is slow (~14 s at 2048 dims on two
cores) and, for near-singular covariances, returns complex matrices whose imaginary part
pytorch-fid and clean-fid discard or reject. We use the identity

    tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(A S2 A)),   A = S1^(1/2) (symmetric),

where A S2 A is symmetric positive semi-definite, so ``eigh``/``eigvalsh`` apply and every
eigenvalue is real; the tiny negative ones that rounding produces are clipped to 0 and their
mass is reported. Statistics are accumulated in float64 with a shift (the first block's mean)
so the one-pass covariance does not suffer catastrophic cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    """Mean and unbiased covariance (float64) of ``n`` feature vectors."""

    mu: np.ndarray
    cov: np.ndarray
    n: int

    @property
    def dims(self) -> int:
        return int(self.mu.shape[0])


class RunningStats:
    """Float64 running sums for mean and covariance; memory O(D^2), independent of N.

    Rows are accumulated as given, so the result depends only on the sequence of blocks fed
    to ``update``; callers that need bit-for-bit reproducibility feed fixed-size blocks in a
    fixed order (see ``evalsuite.features.cache.FeatureFile.blocks``).
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(dims, dtype=np.float64)
        self._outer = np.zeros((dims, dims), dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        """Add a block of rows (N, D)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ValueError(f"expected features of shape (N, {self.dims}), got {x.shape}")
        if len(x) == 0:
            return
        if self._shift is None:
            # Shifting by an estimate of the mean keeps sum(x x^T) - n mu mu^T well conditioned.
            self._shift = x.mean(axis=0)
        xc = x - self._shift
        self._sum += xc.sum(axis=0)
        self._outer += xc.T @ xc
        self.n += len(x)

    def finalize(self) -> GaussianStats:
        """Mean and unbiased covariance (divides by n - 1, as ``np.cov``); needs n >= 2."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.n}")
        assert self._shift is not None
        mean_c = self._sum / self.n
        cov = (self._outer - self.n * np.outer(mean_c, mean_c)) / (self.n - 1)
        cov = (cov + cov.T) / 2  # exact symmetry; rounding can break it in the last bit
        return GaussianStats(self._shift + mean_c, cov, self.n)


@dataclass(frozen=True)
class FrechetResult:
    """The distance and the numerical facts needed to judge it."""

    value: float
    trace_sqrt: float
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _psd_sqrt(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric square root of a PSD matrix (negative eigenvalues clipped) and its spectrum."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T, w


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> FrechetResult:
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2), eigenvalue based, float64.

    Diagnostics: ``clipped_negative_eigenvalue_mass`` (how much rounding pushed below zero,
    relative to the trace of the product) and the numerical rank of ``cov1`` (pass the
    generated images' covariance first: it is the one that is usually small).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, "
                         f"cov {cov1.shape} vs {cov2.shape}")
    sqrt1, w1 = _psd_sqrt(cov1)
    neg1 = float(-w1[w1 < 0].sum())
    m = sqrt1 @ cov2 @ sqrt1
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    neg_m = float(-lam[lam < 0].sum())
    trace_sqrt = float(np.sqrt(np.clip(lam, 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)
    scale = max(float(np.abs(lam).sum()), 1e-300)
    diagnostics = {
        "method": "eigvalsh(S1^1/2 S2 S1^1/2), float64",
        "clipped_negative_eigenvalue_mass": (neg1 + neg_m) / scale,
        "rank_cov1": _rank(w1),
    }
    # A tiny negative value is rounding of a zero distance (identical statistics).
    return FrechetResult(max(value, 0.0) if value > -1e-9 * scale else value, trace_sqrt,
                         diagnostics)


def frechet_distance_low_rank(x: np.ndarray | Sequence[np.ndarray], mu2: np.ndarray,
                              cov2: np.ndarray, block: int = 256) -> FrechetResult:
    """Frechet distance of the Gaussian fitted to rows ``x`` (n <= D) to N(mu2, cov2).

    With A the centred rows, S1 = A^T A / (n - 1), and the non-zero eigenvalues of S1 S2 are
    those of A S2 A^T / (n - 1), an n x n symmetric PSD matrix. This is exact (the D - n + 1
    zero eigenvalues are zero by construction, not rounding noise whose square roots add up)
    and costs O(n D^2) instead of O(D^3). ``x`` may be a list of row blocks (float32 is fine):
    rows are converted to float64 one block at a time, so the extra memory is the n x n
    matrix plus one block.
    """
    blocks = [x[i:i + block] for i in range(0, len(x), block)] if isinstance(x, np.ndarray) \
        else list(x)
    n = sum(len(b) for b in blocks)
    if n < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {n}")
    mu2, cov2 = np.asarray(mu2, np.float64), np.asarray(cov2, np.float64)
    mu1 = sum(np.asarray(b, np.float64).sum(axis=0) for b in blocks) / n
    starts = np.cumsum([0] + [len(b) for b in blocks])
    m = np.empty((n, n))
    trace1 = 0.0
    for i, bi in enumerate(blocks):
        ai = np.asarray(bi, np.float64) - mu1
        trace1 += float((ai * ai).sum())
        ai_s2 = ai @ cov2
        for j, bj in enumerate(blocks[:i + 1]):
            mij = ai_s2 @ (np.asarray(bj, np.float64) - mu1).T
            m[starts[i]:starts[i + 1], starts[j]:starts[j + 1]] = mij
            m[starts[j]:starts[j + 1], starts[i]:starts[i + 1]] = mij.T
    lam = np.linalg.eigvalsh(m / (n - 1))
    neg = float(-lam[lam < 0].sum())
    trace_sqrt = float(np.sqrt(np.clip(lam, 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + trace1 / (n - 1) + np.trace(cov2) - 2 * trace_sqrt)
    scale = max(float(np.abs(lam).sum()), 1e-300)
    diagnostics = {"method": "low rank: eigvalsh(A S2 A^T) / (n - 1), n x n, float64 (exact "
                             "for n <= dims)",
                   "clipped_negative_eigenvalue_mass": neg / scale, "rank_cov1_at_most": n - 1}
    return FrechetResult(max(value, 0.0) if value > -1e-9 * scale else value, trace_sqrt,
                         diagnostics)


def _rank(w: np.ndarray) -> int:
    """Numerical rank from a spectrum, with numpy's ``matrix_rank`` tolerance."""
    tol = len(w) * np.finfo(np.float64).eps * max(float(w.max()), 0.0)
    return int((w > tol).sum())


def reliability(n_gen: int, n_ref: int, dims: int) -> list[str]:
    """Reasons the estimate should not be compared with others (empty list: none known).

    With n <= dims the sample covariance has rank <= n - 1 < dims: the distance is still
    defined and computed exactly, but it is biased upwards by an amount that depends on n,
    so such values are only comparable at equal n (and not to published numbers).
    """
    reasons = []
    for what, n in (("generated", n_gen), ("reference", n_ref)):
        if n <= dims:
            reasons.append(f"{n} {what} images <= {dims} feature dimensions: covariance is "
                           "rank-deficient; the value is biased upwards and comparable only "
                           "at equal n")
    return reasons
