"""Kernel Inception Distance on the same Inception features as FID (clean or legacy).

Value: the mean over ``num_subsets`` subsets of the unbiased MMD^2 with the cubic polynomial
kernel (raw, not x1000), as clean-fid's ``compute_kid``; the subset size actually used is
min(n_gen, n_ref, subset_size) and is recorded, with the seed and the std over subsets.
Features stay on disk: the evaluation core passes memory-mapped feature files, and only the
sampled subsets are read. ``resize``/``size``: an evaluation resize before the protocol's own,
as for FID (``evalsuite.metrics.fid``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.inception import CleanFIDInception, PytorchFIDInception
from evalsuite.metrics.base import AllFeaturesMetric, MetricResult
from evalsuite.metrics.functional.kid import kid


class KID(AllFeaturesMetric):
    """KID between generated and reference features."""

    min_images = 2  # fewest images per set the estimator is defined for

    name: ClassVar[str] = "kid"
    version, higher_is_better = "1", False
    protocol: ClassVar[str]

    def __init__(self, extractor: FeatureExtractor, num_subsets: int = 100,
                 subset_size: int = 1000, seed: int = 0, resize: str | None = None,
                 size: int | None = None) -> None:
        if num_subsets < 1 or subset_size < 2:
            raise EvalsuiteError(f"{self.name}: num_subsets >= 1 and subset_size >= 2 needed, "
                                 f"got {num_subsets}, {subset_size}")
        self.extractor = extractor
        extractor.set_eval_resize(resize, size, self.name)
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "features": self.extractor.params(),
                "num_subsets": self.num_subsets, "subset_size": self.subset_size,
                "seed": self.seed, "kernel": "(x.y/d + 1)^3",
                "estimator": "unbiased MMD^2, mean over subsets, float64, raw (not x1000)",
                "subset_sampler": "numpy RandomState(seed).choice without replacement; "
                                  "reference then generated per subset (clean-fid order)"}

    def compute(self) -> MetricResult:
        gen, ref = self._arrays()
        r = kid(gen, ref, self.num_subsets, self.subset_size, self.seed)
        self._facts = {"n_gen": len(gen), "n_ref": len(ref), "subset_size_used": r.subset_size,
                       "std_over_subsets": r.std}
        return self._result(r.mean, len(gen), self.extractor.weights_record())

    def bootstrap_values(self, counts: np.ndarray) -> np.ndarray:
        gen, ref = self._arrays()
        out = []
        for c in counts:
            idx = np.repeat(np.arange(len(gen)), c)  # duplicates count as distinct images
            out.append(kid(np.asarray(gen[idx]), ref, self.num_subsets, self.subset_size,
                           self.seed).mean)
        return np.asarray(out)


class CleanKID(KID):
    """KID on clean-fid ``clean`` features (what clean-fid's ``compute_kid`` computes)."""

    name, protocol = "kid_clean", "clean-fid mode=clean"

    def __init__(self, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0,
                 device: str = "cpu", resize: str | None = None, size: int | None = None) -> None:
        super().__init__(CleanFIDInception("clean", device), num_subsets, subset_size, seed,
                         resize, size)


class LegacyKID(KID):
    """KID on pytorch-fid features."""

    name, protocol = "kid_legacy", "pytorch-fid"

    def __init__(self, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0,
                 dims: int = 2048, device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        super().__init__(PytorchFIDInception(dims, device), num_subsets, subset_size, seed,
                         resize, size)
