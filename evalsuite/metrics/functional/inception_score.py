"""Inception Score (Salimans et al. 2016) from class logits, torch-fidelity's convention.

IS = exp(E_x KL(p(y|x) || p(y))), computed on each of ``splits`` consecutive chunks of the
(shuffled) rows, chunk i being rows [i N // splits, (i + 1) N // splits); the value is the
mean over chunks and the std over chunks is reported with it. Rows are first permuted with
``numpy.random.RandomState(seed).permutation(N)`` (torch-fidelity: ``samples_shuffle=True``,
``rng_seed=2020``), softmax in float64; p(y) is the chunk's mean of p(y|x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS, SEED = 10, 2020  # torch-fidelity's defaults (isc_splits, rng_seed)


@dataclass(frozen=True)
class InceptionScoreResult:
    mean: float
    std: float  # population std (numpy's default) over the splits, as torch-fidelity
    scores: tuple[float, ...]  # one per split


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def inception_score(logits: np.ndarray, splits: int = SPLITS, shuffle: bool = True,
                    seed: int = SEED) -> InceptionScoreResult:
    """Inception Score of (N, C) logits; needs N >= splits (every chunk non-empty)."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or splits < 1 or len(logits) < splits:
        raise ValueError(f"inception_score needs (N, C) logits with N >= splits={splits}, "
                         f"got shape {logits.shape}")
    n = len(logits)
    if shuffle:
        logits = logits[np.random.RandomState(seed).permutation(n)]
    log_p = _log_softmax(logits.astype(np.float64))
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        log_q = np.log(p[lo:hi].mean(axis=0, keepdims=True))
        kl = (p[lo:hi] * (log_p[lo:hi] - log_q)).sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return InceptionScoreResult(float(np.mean(scores)), float(np.std(scores)), tuple(scores))
