"""PickScore (Kirstain et al. 2023, yuvalkirstain/PickScore): CLIP-H fine-tuned on Pick-a-Pic.

As the PickScore README's inference code: transformers ``CLIPModel`` with the
``yuvalkirstain/PickScore_v1`` weights and the ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``
processor: images resized (shorter side to 224, PIL bicubic), centre-cropped to 224, x/255
(float64, then float32), CLIP mean/std; prompts tokenized with the CLIP BPE (truncated to 77
tokens); score = ``logit_scale.exp()`` x cosine of the normalised image and text projections
(about 20-23 for good images). The metric is the mean over (image, prompt) pairs.

The model configuration (CLIP ViT-H/14: vision 1280 wide, 32 layers; text 1024 wide, 24
layers; projection 1024) is written here, so the single weight file is all that is needed
offline; ``arch="tiny"`` is a small configuration for tests and smoke runs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image

from evalsuite.errors import ConfigError
from evalsuite.features.base import seeded_init
from evalsuite.features.resize import CLIP_MEAN, CLIP_STD
from evalsuite.metrics.preference import PromptImageScore, random_record

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset

PICKSCORE_ASSET = "pickscore_v1"
ARCHS: dict[str, dict[str, Any]] = {
    "ViT-H-14": {"projection_dim": 1024,
                 "text_config": {"hidden_size": 1024, "intermediate_size": 4096,
                                 "num_attention_heads": 16, "num_hidden_layers": 24},
                 "vision_config": {"hidden_size": 1280, "intermediate_size": 5120,
                                   "num_attention_heads": 16, "num_hidden_layers": 32,
                                   "patch_size": 14, "image_size": 224}},
    "tiny": {"projection_dim": 32,
             "text_config": {"hidden_size": 32, "intermediate_size": 64,
                             "num_attention_heads": 2, "num_hidden_layers": 2},
             "vision_config": {"hidden_size": 32, "intermediate_size": 64,
                               "num_attention_heads": 2, "num_hidden_layers": 2,
                               "patch_size": 8, "image_size": 32}},
}


def build_pickscore_model(arch: str = "ViT-H-14") -> Any:
    """A transformers ``CLIPModel`` of ``arch`` (seeded random weights)."""
    from transformers import CLIPConfig, CLIPModel

    if arch not in ARCHS:
        raise ConfigError(f"pickscore arch={arch!r}; choose one of {sorted(ARCHS)}")
    spec = ARCHS[arch]
    common = {"hidden_act": "gelu", "layer_norm_eps": 1e-5}
    cfg = CLIPConfig(text_config={**spec["text_config"], **common,
                                  "max_position_embeddings": 77, "vocab_size": 49408},
                     vision_config={**spec["vision_config"], **common},
                     projection_dim=spec["projection_dim"])
    with seeded_init():
        return CLIPModel(cfg).eval()


def clip_processor_image(image: np.ndarray, size: int) -> np.ndarray:
    """transformers ``CLIPImageProcessor`` (slow) on one uint8 image: shorter side to ``size``
    (PIL bicubic, the longer ``int(size * long / short)``), centre crop, rescale, normalise;
    float32 (3, size, size)."""
    pil = Image.fromarray(image)
    w, h = pil.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) != (w, h):
        pil = pil.resize((new_w, new_h), resample=Image.BICUBIC)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    x = np.asarray(pil)[top:top + size, left:left + size]
    x = (x.astype(np.float64) * (1 / 255)).astype(np.float32)
    return np.ascontiguousarray(((x - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1))


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """The CLIP BPE tokenizer (transformers), built once per process (~10 s)."""
    from evalsuite.models.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(77)


class PickScore(PromptImageScore):
    """Mean PickScore of (image, prompt) pairs."""

    name = "pickscore"

    def __init__(self, arch: str = "ViT-H-14", device: str = "cpu") -> None:
        if arch not in ARCHS:
            raise ConfigError(f"pickscore arch={arch!r}; choose one of {sorted(ARCHS)}")
        self.arch = arch
        super().__init__(device)

    def params(self) -> dict[str, Any]:
        return {"model": f"transformers CLIPModel ({self.arch}), PickScore_v1 weights",
                "preprocess": "CLIPImageProcessor: shorter side to 224 (PIL bicubic), centre "
                              "crop, x/255, CLIP mean/std; CLIP BPE, 77 tokens",
                "score": "logit_scale.exp() x cosine of normalised projections (PickScore "
                         "README)"}

    def required_assets(self) -> list[str]:
        return [PICKSCORE_ASSET]

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        found = weights[PICKSCORE_ASSET]
        model = build_pickscore_model(self.arch)
        if found is not None:
            from safetensors.torch import load_file

            state = load_file(str(found.path))
            state.pop("text_model.embeddings.position_ids", None)  # a buffer in old releases
            state.pop("vision_model.embeddings.position_ids", None)
            model.load_state_dict(state)
        self._model = model.to(self.device)
        self._size = int(ARCHS[self.arch]["vision_config"]["image_size"])
        self._tokenizer = _tokenizer()
        self._weights = found.to_record() if found else random_record()

    def _score(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        import torch

        pix = torch.from_numpy(np.stack([clip_processor_image(im, self._size) for im in images]))
        tok = self._tokenizer(list(texts), padding=True, truncation=True, max_length=77,
                              return_tensors="pt")
        with torch.inference_mode():
            img = self._model.get_image_features(pixel_values=pix.to(self.device))
            txt = self._model.get_text_features(**{k: v.to(self.device) for k, v in tok.items()})
            img = getattr(img, "pooler_output", img)  # transformers 5: an output object
            txt = getattr(txt, "pooler_output", txt)
            img = img / torch.norm(img, dim=-1, keepdim=True)
            txt = txt / torch.norm(txt, dim=-1, keepdim=True)
            scores = self._model.logit_scale.exp() * (img * txt).sum(-1)
        return scores.double().cpu().numpy()
