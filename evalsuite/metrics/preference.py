"""Human-preference scores of (prompt, image) pairs: HPSv2.1 here, PickScore in ``pickscore.py``.

Both are CLIP-H models fine-tuned on human choices between images for one prompt; the score of
a pair is (a scaled) cosine of the normalised image and text embeddings, and the metric is the
mean over pairs, with per-image values kept (per-category tables, bootstrap intervals).

HPSv2.1 (Wu et al. 2023, tgxs002/HPSv2 ``img_score.py``): open_clip ViT-H-14 (no QuickGELU)
with ``HPS_v2.1_compressed.pt`` (its ``state_dict``); images through HPS's ``preprocess_val``
(``light_augmentation=True``: ``ResizeMaxSize``, the longer side to 224 with PIL bicubic, then
zero padding to 224x224, centred; x/255; CLIP mean/std); score = cosine (not x100, no logit
scale), as ``hps_score = diag(image_features @ text_features.T)``. The reference runs under
CUDA autocast (float16); here float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.features.base import RANDOM_INIT_SEED
from evalsuite.metrics.base import MetricResult, TextImageMetric, check_images

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset

HPS_ASSET = "hpsv21_vit_h14"


def random_record() -> dict[str, Any]:
    """The record of seeded random weights (allowed explicitly)."""
    return {"file": None, "random_init": True, "seed": RANDOM_INIT_SEED, "verified": False}


class PromptImageScore(TextImageMetric):
    """Mean of a per-(image, prompt) score; subclasses load a model and score batches."""

    version, higher_is_better = "1", True

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._model: Any = None
        self._weights: dict[str, Any] | None = None
        self.reset()

    def reset(self) -> None:
        self._scores: list[float] = []

    def _score(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Scores of a batch of uint8 images with their prompts."""
        raise NotImplementedError

    def update(self, images: np.ndarray, texts: Sequence[str]) -> None:
        check_images(images)
        if len(texts) != len(images):
            raise EvalsuiteError(f"{self.name}: {len(images)} images but {len(texts)} prompts")
        if self._model is None:
            raise RuntimeError(f"{self.name}: prepare() must be called before update()")
        self._scores.extend(float(s) for s in self._score(images, texts))

    def item_values(self) -> np.ndarray:
        """Per-image scores, in the order fed."""
        return np.asarray(self._scores, dtype=np.float64)

    def compute(self) -> MetricResult:
        if not self._scores:
            raise EvalsuiteError(f"{self.name}: no images were given")
        return self._result(float(np.mean(self._scores)), len(self._scores), self._weights)


def resize_max_size(image: np.ndarray, size: int) -> Image.Image:
    """HPS's ``ResizeMaxSize(size, fill=0)`` (its open_clip fork): scale the longer side to
    ``size`` (PIL bicubic; sides rounded with Python's ``round``), pad with zeros, centred."""
    pil = Image.fromarray(image)
    width, height = pil.size
    scale = size / float(max(height, width))
    if scale == 1.0:
        return pil
    new_h, new_w = round(height * scale), round(width * scale)
    pil = pil.resize((new_w, new_h), resample=Image.BICUBIC)
    pad_h, pad_w = size - new_h, size - new_w
    out = Image.new("RGB", (size, size), (0, 0, 0))
    out.paste(pil, (pad_w // 2, pad_h // 2))
    return out


class HPSv21(PromptImageScore):
    """HPSv2.1: mean cosine under the HPS-fine-tuned open_clip ViT-H-14."""

    name = "hpsv21"

    def __init__(self, model_name: str = "ViT-H-14", device: str = "cpu") -> None:
        self.model_name = model_name
        super().__init__(device)

    def params(self) -> dict[str, Any]:
        return {"model": f"open_clip {self.model_name}, HPS_v2.1_compressed.pt (state_dict)",
                "preprocess": "HPS preprocess_val: longer side to the model resolution (PIL "
                              "bicubic), zero pad centred, x/255, CLIP mean/std",
                "score": "cosine of L2-normalised image and text embeddings (HPS img_score.py)",
                "precision": "float32 (the reference: CUDA autocast float16)"}

    def required_assets(self) -> list[str]:
        return [HPS_ASSET]

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        import open_clip

        from evalsuite.features.clip import load_open_clip

        found = weights[HPS_ASSET]
        # laion2b_s32b_b79k: the tag HPS builds from (no QuickGELU); open_clip's
        # load_checkpoint reads the file's "state_dict"
        model = load_open_clip(self.model_name, "laion2b_s32b_b79k",
                               str(found.path) if found else None)
        cfg = model.visual.preprocess_cfg
        self._size = int(cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"])
        self._mean = np.asarray(cfg["mean"], np.float32)
        self._std = np.asarray(cfg["std"], np.float32)
        self._model = model.to(self.device)
        self._tokenizer = open_clip.get_tokenizer(self.model_name)
        self._weights = found.to_record() if found else random_record()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One uint8 image -> float32 (3, size, size), HPS's ``preprocess_val``."""
        x = np.asarray(resize_max_size(image, self._size), np.float32) / 255.0
        return np.ascontiguousarray(((x - self._mean) / self._std).transpose(2, 0, 1))

    def _score(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        pix = torch.from_numpy(np.stack([self.preprocess(im) for im in images])).to(self.device)
        tok = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            img = F.normalize(self._model.encode_image(pix).float(), dim=-1)
            txt = F.normalize(self._model.encode_text(tok).float(), dim=-1)
        return (img * txt).sum(-1).double().cpu().numpy()
