"""CLIP score with open_clip: how well each image matches its prompt.

Definition (one, documented): for each (image, prompt) pair, the cosine similarity of the
L2-normalised open_clip image and text embeddings; the score is the mean over pairs. Scales:
- ``cosine``: the mean cosine (how BK-SDM and SnapFusion report it, e.g. 0.2958);
- ``x100``: 100 x mean cosine (torchmetrics' convention);
- ``w2.5``: mean of 2.5 x max(cos, 0) (Hessel et al.'s CLIPScore).
Prompts longer than the text tower's context are truncated by the tokenizer; how many were
truncated is recorded with the value. Images go through the model's own preprocessing
(bicubic resize of the shorter side, centre crop, CLIP normalisation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image

from evalsuite import assets
from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.features.clip import load_open_clip
from evalsuite.metrics.base import MetricResult, TextImageMetric, check_images

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset

SCALES = ("cosine", "x100", "w2.5")


def scale_cosines(cos: np.ndarray, scale: str) -> float:
    """Reduce per-pair cosines to one number under the named scale."""
    if scale == "cosine":
        return float(np.mean(cos))
    if scale == "x100":
        return float(100.0 * np.mean(cos))
    if scale == "w2.5":
        return float(np.mean(2.5 * np.maximum(cos, 0.0)))
    raise ConfigError(f"clip_score.scale={scale!r}; choose one of {SCALES}")


class CLIPScore(TextImageMetric):
    """Mean image-text cosine similarity under an open_clip model."""

    # version 2: OpenAI-tag models are built with QuickGELU (their values changed) and OpenAI's
    # TorchScript files are read.
    name, version, higher_is_better = "clip_score", "2", True

    def __init__(self, model_name: str = "ViT-g-14", pretrained: str = "laion2b_s34b_b88k",
                 scale: str = "cosine", device: str = "cpu") -> None:
        if scale not in SCALES:
            raise ConfigError(f"clip_score.scale={scale!r}; choose one of {SCALES}")
        self.model_name, self.pretrained, self.scale, self.device = model_name, pretrained, scale, device
        self._model: Any = None
        self._weights: dict[str, Any] | None = None
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"model": self.model_name, "pretrained": self.pretrained, "scale": self.scale,
                "definition": "mean cosine of L2-normalised image and text embeddings"}

    def settings(self) -> dict[str, Any]:
        return {**self.params(), "n_truncated_prompts": self._n_truncated}

    def required_assets(self) -> list[str]:
        return [assets.open_clip_asset_name(self.model_name, self.pretrained)]

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        found = weights[self.required_assets()[0]]
        # load_open_clip builds the architecture the pretrained tag names (QuickGELU for
        # OpenAI's models, which a local file alone would not select), reads both state dicts
        # and OpenAI's TorchScript archives, and seeds random weights (allowed explicitly) so
        # smoke runs are reproducible.
        model = load_open_clip(self.model_name, self.pretrained,
                               str(found.path) if found else None, self.device)
        # The model's own inference preprocessing, built as create_model_and_transforms does.
        preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg),
                                        is_train=False)
        self._model, self._preprocess = model.to(self.device), preprocess
        self._tokenizer = open_clip.get_tokenizer(self.model_name)
        self._weights = found.to_record() if found else {"file": None, "random_init": True,
                                                         "verified": False}

    def reset(self) -> None:
        self._cos: list[float] = []
        self._n_truncated = 0

    def _count_truncated(self, texts: Sequence[str]) -> int:
        ctx = getattr(self._tokenizer, "context_length", 77)
        inner = getattr(self._tokenizer, "tokenizer", None) or self._tokenizer
        encode = getattr(inner, "encode", None)
        if encode is None:
            return 0
        return sum(len(encode(t)) + 2 > ctx for t in texts)  # +2: start and end tokens

    def update(self, images: np.ndarray, texts: Sequence[str]) -> None:
        import torch

        check_images(images)
        if len(texts) != len(images):
            raise EvalsuiteError(f"clip_score: {len(images)} images but {len(texts)} prompts")
        if self._model is None:
            raise RuntimeError("CLIPScore.prepare() must be called before update()")
        pix = torch.stack([self._preprocess(Image.fromarray(im)) for im in images]).to(self.device)
        tok = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            img = torch.nn.functional.normalize(self._model.encode_image(pix).float(), dim=-1)
            txt = torch.nn.functional.normalize(self._model.encode_text(tok).float(), dim=-1)
        self._cos.extend((img * txt).sum(-1).double().cpu().tolist())
        self._n_truncated += self._count_truncated(texts)

    def item_values(self) -> np.ndarray:
        """Per-pair scores under ``scale``, whose mean is the value, in the order fed."""
        cos = np.asarray(self._cos, dtype=np.float64)
        return {"cosine": cos, "x100": 100 * cos, "w2.5": 2.5 * np.maximum(cos, 0)}[self.scale]

    def compute(self) -> MetricResult:
        if not self._cos:
            raise EvalsuiteError("clip_score: no images were given")
        return self._result(scale_cosines(np.asarray(self._cos), self.scale), len(self._cos),
                            self._weights)
