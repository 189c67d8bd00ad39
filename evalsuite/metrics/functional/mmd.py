"""MMD with a Gaussian RBF kernel, as CMMD (Jayasumana et al., CVPR 2024) defines it.

Transcribes google-research/cmmd ``distance.py``: k(x, y) = exp(-||x - y||^2 / (2 sigma^2))
with sigma = 10, the minimum-variance (biased, V-statistic) estimator of Gretton et al. 2012
Eq. 5, i.e. means over all pairs including i = j, and the result multiplied by 1000. The
embeddings are L2-normalised CLIP image embeddings. We compute in float64, in fixed blocks,
so that the features can stay on disk (memmap) and the sum order is deterministic.
"""

from __future__ import annotations

import numpy as np

SIGMA = 10.0
SCALE = 1000.0


def _sqnorms(x: np.ndarray, block: int) -> np.ndarray:
    return np.concatenate([np.einsum("ij,ij->i", b, b) for b in _blocks(x, block)]) \
        if len(x) else np.zeros(0)


def _blocks(x: np.ndarray, block: int):
    for i in range(0, len(x), block):
        yield np.asarray(x[i:i + block], dtype=np.float64)


def kernel_sum(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA, block: int = 1024,
               weights_x: np.ndarray | None = None) -> np.ndarray:
    """sum_ij w_i k(x_i, y_j), blockwise; ``weights_x`` (B, n) gives B weighted sums at once.

    Without weights the result has shape (1,), i.e. all weights 1.
    """
    gamma = 1.0 / (2.0 * sigma ** 2)
    wx = np.ones((1, len(x))) if weights_x is None else np.asarray(weights_x, np.float64)
    ny = _sqnorms(y, block)
    total = np.zeros(wx.shape[0])
    for i, xb in enumerate(_blocks(x, block)):
        nxb = np.einsum("ij,ij->i", xb, xb)
        row = np.zeros(len(xb))
        for j, yb in enumerate(_blocks(y, block)):
            d2 = nxb[:, None] + ny[j * block:j * block + len(yb)][None, :] - 2.0 * xb @ yb.T
            row += np.exp(-gamma * d2).sum(axis=1)
        total += wx[:, i * block:i * block + len(xb)] @ row
    return total


def mmd_rbf(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA, scale: float = SCALE,
            block: int = 1024) -> float:
    """CMMD's MMD between embedding sets ``x`` (generated) and ``y`` (reference)."""
    n, m = len(x), len(y)
    if n < 1 or m < 1:
        raise ValueError(f"MMD needs at least one embedding per set, got {n} and {m}")
    k_xx = kernel_sum(x, x, sigma, block)[0] / (n * n)
    k_yy = kernel_sum(y, y, sigma, block)[0] / (m * m)
    k_xy = kernel_sum(x, y, sigma, block)[0] / (n * m)
    return float(scale * (k_xx + k_yy - 2 * k_xy))


def mmd_rbf_bootstrap(x: np.ndarray, y: np.ndarray, counts: np.ndarray, sigma: float = SIGMA,
                      scale: float = SCALE, block: int = 1024) -> np.ndarray:
    """MMD for each row of ``counts`` (B, n): how often each generated embedding is drawn.

    A resample with counts c has k_xx = c^T K c / n^2 and k_xy = c^T K 1 / (n m); the
    reference set is kept whole. K is never held in memory: each block of K is contracted
    with all B count vectors as it is computed.
    """
    gamma = 1.0 / (2.0 * sigma ** 2)
    counts = np.asarray(counts, np.float64)
    n, m = len(x), len(y)
    nx = _sqnorms(x, block)
    k_xx = np.zeros(len(counts))
    for i, xi in enumerate(_blocks(x, block)):
        ci = counts[:, i * block:i * block + len(xi)]
        for j, xj in enumerate(_blocks(x, block)):
            k = np.exp(-gamma * (nx[i * block:i * block + len(xi)][:, None]
                                 + nx[j * block:j * block + len(xj)][None, :] - 2.0 * xi @ xj.T))
            k_xx += np.einsum("bi,bi->b", ci @ k, counts[:, j * block:j * block + len(xj)])
    k_xy = kernel_sum(x, y, sigma, block, weights_x=counts)
    k_yy = kernel_sum(y, y, sigma, block)[0] / (m * m)
    return scale * (k_xx / (n * n) + k_yy - 2 * k_xy / (n * m))
