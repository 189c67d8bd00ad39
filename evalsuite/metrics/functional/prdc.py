"""k-NN manifold metrics: precision and recall (Kynkaanniemi et al. 2019), density and
coverage (Naeem et al. 2020), as the ``prdc`` package (clovaai/generative-evaluation-prdc)
defines them.

Each real sample's manifold ball has radius r_i = distance to its k-th nearest real neighbour
(itself excluded); each fake sample's likewise among the fakes. With D_ij = ||real_i - fake_j||:

- precision = mean_j [ exists i: D_ij < r_i ]        (fakes inside the real manifold)
- recall    = mean_i [ exists j: D_ij < r'_j ]       (reals inside the fake manifold)
- density   = mean_j (1/k) sum_i [ D_ij < r_i ]      (how many real balls hold each fake)
- coverage  = mean_i [ min_j D_ij < r_i ]            (real balls that hold some fake)

Distances are computed in float64 in blocks of fake (or real) rows, so memory is
O(block x n) rather than O(n_real x n_fake); prdc computes the whole matrix in float32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BLOCK = 1024  # rows per distance block


@dataclass(frozen=True)
class PRDC:
    """The four values at one ``k``."""

    precision: float
    recall: float
    density: float
    coverage: float
    k: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and ``b`` (float64)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its k-th nearest other row (prdc's convention:
    the (k+1)-th smallest distance, the row's zero distance to itself being the first)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs at least k+1={k + 1} samples, got {len(x)}")
    out = np.empty(len(x))
    for s in range(0, len(x), BLOCK):
        d = pairwise_distances(x[s:s + BLOCK], x)
        out[s:s + BLOCK] = np.partition(d, k, axis=1)[:, k]
    return out


def prdc(real: np.ndarray, fake: np.ndarray, k: int) -> PRDC:
    """Precision, recall, density and coverage of ``fake`` against ``real`` features."""
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    inside_real = np.zeros(len(fake), dtype=bool)  # per fake: in some real ball
    balls_held = np.zeros(len(fake), dtype=np.int64)  # per fake: how many real balls
    real_in_fake = np.zeros(len(real), dtype=bool)  # per real: in some fake ball
    nearest_fake = np.full(len(real), np.inf)  # per real: distance to its nearest fake
    for s in range(0, len(fake), BLOCK):
        d = pairwise_distances(real, fake[s:s + BLOCK])  # (n_real, block)
        in_real_ball = d < r_real[:, None]
        inside_real[s:s + BLOCK] = in_real_ball.any(axis=0)
        balls_held[s:s + BLOCK] = in_real_ball.sum(axis=0)
        real_in_fake |= (d < r_fake[None, s:s + BLOCK]).any(axis=1)
        nearest_fake = np.minimum(nearest_fake, d.min(axis=1))
    return PRDC(precision=float(inside_real.mean()), recall=float(real_in_fake.mean()),
                density=float(balls_held.mean() / k), coverage=float((nearest_fake < r_real).mean()),
                k=k)
