"""Precision / recall (Kynkaanniemi et al. 2019, k=3) and density / coverage (Naeem et al.
2020, k=5) over the features of any of evalsuite's extractors (Inception pool3 by default).

Fidelity and diversity separately: a mode-collapsed sample set keeps precision and loses
recall and coverage; a degraded one loses precision and density. Each is its own metric with
its own ``nearest_k``; all four values at that k are recorded in its settings (``values_at_k``).
Features come from the shared one-pass walk (``DistributionMetric``), so adding these next to
FID on the same extractor costs only the k-NN computation (``metrics/functional/prdc.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from evalsuite.errors import EvalsuiteError
from evalsuite.features.base import FeatureExtractor
from evalsuite.metrics.base import AllFeaturesMetric, MetricResult
from evalsuite.metrics.functional.prdc import prdc

#: extractor name -> what it is (the ``extractor`` parameter).
EXTRACTORS = {
    "inception_clean": "Inception-v3 pool3 (2048), clean-fid mode=clean",
    "inception_legacy": "Inception-v3 pool3 (2048), pytorch-fid",
    "clip": "open_clip image embedding (model_name, pretrained)",
    "dinov2": "DINOv2 ViT-L/14 CLS token (1024), dgm-eval preprocessing",
    "shapes": "the shapes world's image encoder",
}


def build_extractor(name: str, device: str = "cpu", model_name: str = "ViT-L-14-336",
                    pretrained: str = "openai") -> FeatureExtractor:
    """The feature extractor called ``name`` (see ``EXTRACTORS``), unloaded."""
    from evalsuite.features.clip import CLIPImageEmbedding
    from evalsuite.features.inception import CleanFIDInception, PytorchFIDInception

    if name == "inception_clean":
        return CleanFIDInception("clean", device)
    if name == "inception_legacy":
        return PytorchFIDInception(2048, device)
    if name == "clip":
        return CLIPImageEmbedding(model_name, pretrained, device)
    if name in ("dinov2", "shapes"):  # the others of features.registry, default options
        from evalsuite.features.registry import build_extractor as build_registered

        return build_registered(name, device)
    raise EvalsuiteError(f"unknown extractor {name!r} for precision/recall/density/coverage; "
                         f"choose one of {', '.join(EXTRACTORS)}")


class _KNNMetric(AllFeaturesMetric):
    """One of the four k-NN manifold values between generated and reference features."""

    version, higher_is_better = "1", True
    default_k: ClassVar[int]

    def __init__(self, nearest_k: int | None = None, extractor: str = "inception_clean",
                 device: str = "cpu", model_name: str = "ViT-L-14-336", pretrained: str = "openai",
                 resize: str | None = None, size: int | None = None) -> None:
        k = self.default_k if nearest_k is None else int(nearest_k)
        if k < 1:
            raise EvalsuiteError(f"{self.name}: nearest_k must be >= 1, got {nearest_k}")
        self.nearest_k, self.extractor_name = k, extractor
        self.min_images = k + 1  # the k-th neighbour of a sample, itself excluded
        self.extractor = build_extractor(extractor, device, model_name, pretrained)
        self.extractor.set_eval_resize(resize, size, self.name)
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"features": self.extractor.params(), "extractor": self.extractor_name,
                "nearest_k": self.nearest_k,
                "estimator": "k-NN balls, k-th neighbour excluding self, strict '<', Euclidean "
                             "distances in float64 (prdc's definitions, clovaai)"}

    def compute(self) -> MetricResult:
        gen, ref = self._arrays()
        values = prdc(ref, gen, self.nearest_k)
        self._facts = {"n_gen": len(gen), "n_ref": len(ref), "values_at_k": values.to_dict()}
        return self._result(getattr(values, self.name), len(gen), self.extractor.weights_record())


class Precision(_KNNMetric):
    """Share of generated samples inside the reference manifold (fidelity)."""

    name, default_k = "precision", 3


class Recall(_KNNMetric):
    """Share of reference samples inside the generated manifold (diversity)."""

    name, default_k = "recall", 3


class Density(_KNNMetric):
    """Mean number of reference balls holding a generated sample, / k (fidelity; can exceed 1)."""

    name, default_k = "density", 5


class Coverage(_KNNMetric):
    """Share of reference balls that hold a generated sample (diversity)."""

    name, default_k = "coverage", 5
