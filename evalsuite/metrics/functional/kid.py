"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic kernel.

k(x, y) = (x . y / d + 1)^3. The estimate averages the unbiased MMD^2 over ``num_subsets``
random subsets of ``subset_size`` rows drawn without replacement from each set.

Subset sampling follows clean-fid's ``kernel_distance`` exactly: a ``numpy.random.RandomState``
seeded with ``seed``, and in each subset first the reference rows, then the generated rows.
With the same seed and features our value therefore equals clean-fid's after
``np.random.seed(seed)``. We compute in float64 (clean-fid uses the features' float32), which
matters: KID is a small difference of large kernel sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KIDResult:
    """KID over subsets: mean (the value), std over subsets, and the subset size used."""

    mean: float
    std: float  # standard deviation over subsets (what torch-fidelity reports as kid_std)
    subset_size: int
    num_subsets: int


def polynomial_mmd_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two equal-size sets under (x.y/d + 1)^3, in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, d = x.shape
    if y.shape != x.shape:
        raise ValueError(f"subsets must have equal shapes, got {x.shape} and {y.shape}")
    a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
    b = (x @ y.T / d + 1) ** 3
    return float(((a.sum() - np.trace(a)) / (m - 1) - b.sum() * 2 / m) / m)


def subset_indices(n_gen: int, n_ref: int, num_subsets: int, subset_size: int,
                   seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(generated, reference) row indices of each subset, in clean-fid's sampling order."""
    m = min(n_gen, n_ref, subset_size)
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(num_subsets):
        ref_idx = rng.choice(n_ref, m, replace=False)
        gen_idx = rng.choice(n_gen, m, replace=False)
        out.append((gen_idx, ref_idx))
    return out


def kid(gen: np.ndarray, ref: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> KIDResult:
    """KID of generated vs. reference features (arrays or memmaps; only subsets are read)."""
    n_gen, n_ref = len(gen), len(ref)
    if min(n_gen, n_ref) < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {n_gen} and {n_ref}")
    values = []
    for gen_idx, ref_idx in subset_indices(n_gen, n_ref, num_subsets, subset_size, seed):
        # Rows are read in the sampled order, so the sum order equals clean-fid's.
        values.append(polynomial_mmd_unbiased(np.asarray(ref[ref_idx]), np.asarray(gen[gen_idx])))
    v = np.asarray(values)
    return KIDResult(float(v.mean()), float(v.std()), min(n_gen, n_ref, subset_size), num_subsets)
