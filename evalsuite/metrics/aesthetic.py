"""LAION aesthetic predictor v2 (christophschuhmann/improved-aesthetic-predictor).

The published predictor (``simple_inference.py``): OpenAI CLIP ViT-L/14 image embedding,
L2-normalised, through an MLP head 768 -> 1024 -> 128 -> 64 -> 16 -> 1 (linear layers, no
activations; dropout off at inference), weights ``sac+logos+ava1-l14-linearMSE.pth``
(``layers.{0,2,4,6,7}``). The value is the mean predicted rating (about 1-10) over the images;
per-image ratings are kept for per-category tables and bootstrap intervals.

The embedding is the shared CLIP extractor (``features/clip.py``): with a CMMD on the same
CLIP model (``model_name: ViT-L-14``) the encoder runs once for both and this metric costs
only the head. Its preprocessing is CMMD's (centre crop to a square, then PIL bicubic to 224);
the predictor's own (CLIP's resize of the shorter side to 224, then centre crop) gives the
same pixels for square images, what text-to-image models produce; on non-square images the
two can differ slightly (recorded in the settings). Embeddings are float32 (the reference on
a GPU runs CLIP in float16).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features.base import RANDOM_INIT_SEED, seeded_init
from evalsuite.features.clip import CLIPImageEmbedding
from evalsuite.metrics.base import MetricResult
from evalsuite.metrics.sample_features import SampleFeatureMetric

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset

HEAD_ASSET = "laion_aesthetic_v2_vit_l14"
HEAD_LAYERS = "Linear(d,1024) Dropout(0.2) Linear(1024,128) Dropout(0.2) Linear(128,64) " \
              "Dropout(0.1) Linear(64,16) Linear(16,1)"


def aesthetic_head(dims: int = 768) -> Any:
    """The predictor's MLP (``layers`` as in improved-aesthetic-predictor's ``MLP``), seeded."""
    import torch.nn as nn

    class AestheticHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(dims, 1024), nn.Dropout(0.2),
                                        nn.Linear(1024, 128), nn.Dropout(0.2),
                                        nn.Linear(128, 64), nn.Dropout(0.1),
                                        nn.Linear(64, 16), nn.Linear(16, 1))

        def forward(self, x: Any) -> Any:
            return self.layers(x)

    with seeded_init():
        return AestheticHead().eval()


def save_aesthetic_head_standin(path: str | Path, dims: int = 768, seed: int = 0) -> Path:
    """Write a seeded random head in the published file's format (a state dict)."""
    import torch

    head = aesthetic_head(dims)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # variance-preserving weights: ratings about 5 +- 1, images told apart
        linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
        for lin in linears:
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g)
                             * (2.0 / lin.in_features) ** 0.5)
            lin.bias.zero_()
        linears[-1].bias.fill_(5.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), path)
    return Path(path)


class AestheticScore(SampleFeatureMetric):
    """Mean LAION aesthetic rating of the generated images (higher is better)."""

    name, version, higher_is_better = "laion_aesthetic", "1", True

    def __init__(self, model_name: str = "ViT-L-14", pretrained: str = "openai",
                 device: str = "cpu", resize: str | None = None,
                 size: int | None = None) -> None:
        self.extractor = CLIPImageEmbedding(model_name, pretrained, device)
        self.extractor.set_eval_resize(resize, size, self.name)
        self.device = device
        self._head: Any = None
        self._head_record: dict[str, Any] | None = None
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"predictor": "LAION aesthetic predictor v2 (improved-aesthetic-predictor, "
                             "sac+logos+ava1-l14-linearMSE)", "head": HEAD_LAYERS,
                "features": self.extractor.params(),
                "preprocessing_note": "CMMD's crop-then-resize (shared CLIP pass); equals the "
                                      "predictor's resize-then-crop on square images",
                "value": "mean predicted rating over images"}

    def required_assets(self) -> list[str]:
        return [*self.extractor.required_assets(), HEAD_ASSET]

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        import torch

        super().prepare(weights)
        found = weights[HEAD_ASSET]
        head = aesthetic_head(self.extractor.dims)
        if found is not None:
            head.load_state_dict(torch.load(found.path, map_location="cpu", weights_only=True))
        self._head = head.to(self.device)
        self._head_record = found.to_record() if found else {
            "file": None, "random_init": True, "seed": RANDOM_INIT_SEED, "verified": False}

    def reset(self) -> None:
        super().reset()
        self._scores: np.ndarray | None = None

    def ratings(self, embeddings: np.ndarray) -> np.ndarray:
        """The head's rating of each L2-normalised embedding row (float64)."""
        import torch

        if self._head is None:
            raise RuntimeError(f"{self.name}: prepare() must be called first")
        x = torch.from_numpy(np.array(embeddings, dtype=np.float32)).to(self.device)  # a copy
        with torch.inference_mode():
            return self._head(x)[:, 0].double().cpu().numpy()

    def item_values(self) -> np.ndarray:
        """Per-image ratings, in the order the images were fed (after ``compute``)."""
        if self._scores is None:
            raise EvalsuiteError(f"{self.name}: compute() first")
        return self._scores

    def compute(self) -> MetricResult:
        self._scores = self.ratings(self.features())
        self._facts = {"n_gen": len(self._scores), "std": float(np.std(self._scores))}
        weights = {self.extractor.required_assets()[0]: self.extractor.weights_record(),
                   HEAD_ASSET: self._head_record}
        return self._result(float(np.mean(self._scores)), len(self._scores), weights)

    def bootstrap_values(self, counts: np.ndarray) -> np.ndarray:
        scores = self.item_values()
        return counts @ scores / counts.sum(axis=1)
