"""Inception Score, torch-fidelity's convention (what ``fidelity --isc`` reports).

The unbiased 1008-class logits of the FID Inception (``features/inception_logits.py``:
torch-fidelity's TF1 bilinear resize to 299 and its weight file), 10 splits of the rows
shuffled with ``RandomState(2020)``, float64 softmax; the value is the mean over splits, the
std over splits is in the settings (``functional/inception_score.py``). Generated images
only: no reference set. Needs at least ``splits`` images; values computed on fewer than a
few thousand images are biased low and not comparable with published ones (50k is usual).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features.inception_logits import InceptionLogits
from evalsuite.metrics.base import MetricResult
from evalsuite.metrics.functional.inception_score import SEED, SPLITS, inception_score
from evalsuite.metrics.sample_features import SampleFeatureMetric


class InceptionScore(SampleFeatureMetric):
    """Inception Score of the generated images (higher is better)."""

    name, version, higher_is_better = "inception_score", "1", True

    def __init__(self, splits: int = SPLITS, shuffle: bool = True, seed: int = SEED,
                 device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        if splits < 1:
            raise EvalsuiteError(f"{self.name}: splits must be >= 1, got {splits}")
        self.splits, self.shuffle, self.seed = int(splits), bool(shuffle), int(seed)
        self.min_images = self.splits  # every split needs an image
        self.extractor = InceptionLogits(device)
        self.extractor.set_eval_resize(resize, size, self.name)
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"protocol": "torch-fidelity isc", "features": self.extractor.params(),
                "splits": self.splits, "shuffle": self.shuffle, "seed": self.seed,
                "estimator": "exp(mean KL(p(y|x) || p(y))) per split, float64 softmax; mean "
                             "over splits (std over splits recorded); rows permuted with "
                             "numpy RandomState(seed) when shuffle"}

    def compute(self) -> MetricResult:
        logits = self.features()
        r = inception_score(logits, self.splits, self.shuffle, self.seed)
        self._facts = {"n_gen": len(logits), "std_over_splits": r.std,
                       "split_scores": list(r.scores)}
        return self._result(r.mean, len(logits), self.extractor.weights_record())

    def bootstrap_values(self, counts: np.ndarray) -> np.ndarray:
        logits = np.asarray(self.features())
        return np.asarray([inception_score(np.repeat(logits, c, axis=0), self.splits,
                                           self.shuffle, self.seed).mean for c in counts])
