"""CMMD (Jayasumana et al., CVPR 2024): MMD between CLIP image embeddings.

As google-research/cmmd: OpenAI CLIP ViT-L/14@336 image embeddings (L2-normalised) with
CMMD's crop-and-bicubic preprocessing, Gaussian RBF kernel with sigma = 10, the
minimum-variance (biased, V-statistic) MMD estimator, times 1000. No normality assumption;
unlike FID it is not biased by the number of images in the way a covariance estimate is.
Embeddings stay on disk; the kernel sums are computed in blocks. ``resize``/``size``: an
evaluation resize before CMMD's own crop-and-resize, as for FID (``evalsuite.metrics.fid``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsuite.features.clip import CLIPImageEmbedding
from evalsuite.metrics.base import AllFeaturesMetric, MetricResult
from evalsuite.metrics.functional.mmd import SCALE, SIGMA, mmd_rbf, mmd_rbf_bootstrap


class CMMD(AllFeaturesMetric):
    """CLIP-embedding MMD between generated and reference images (lower is better)."""

    min_images = 1  # fewest images per set the estimator is defined for

    name, version, higher_is_better = "cmmd", "1", False

    def __init__(self, model_name: str = "ViT-L-14-336", pretrained: str = "openai",
                 sigma: float = SIGMA, scale: float = SCALE, device: str = "cpu",
                 resize: str | None = None, size: int | None = None) -> None:
        self.extractor = CLIPImageEmbedding(model_name, pretrained, device)
        self.extractor.set_eval_resize(resize, size, self.name)
        self.sigma, self.scale = float(sigma), float(scale)
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"features": self.extractor.params(), "kernel": "Gaussian RBF",
                "sigma": self.sigma, "scale": self.scale,
                "estimator": "biased (V-statistic, all pairs incl. i=j), float64, as "
                             "google-research/cmmd distance.py"}

    def compute(self) -> MetricResult:
        gen, ref = self._arrays()
        self._facts = {"n_gen": len(gen), "n_ref": len(ref)}
        return self._result(mmd_rbf(gen, ref, self.sigma, self.scale), len(gen),
                            self.extractor.weights_record())

    def bootstrap_values(self, counts: np.ndarray) -> np.ndarray:
        gen, ref = self._arrays()
        return mmd_rbf_bootstrap(gen, ref, counts, self.sigma, self.scale)
