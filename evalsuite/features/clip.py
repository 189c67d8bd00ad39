"""open_clip image embeddings with CMMD's preprocessing (google-research/cmmd).

CMMD's reference embeds with OpenAI CLIP ViT-L/14@336 (``open_clip`` ``ViT-L-14-336`` /
``openai``): each image is centre-cropped to a square, PIL-bicubic resized to the model's
resolution, scaled to [0, 1], CLIP-normalised, and its image embedding L2-normalised. Any
open_clip model can be selected; the resolution comes from the model.
"""

from __future__ import annotations

import logging
import zipfile
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from evalsuite import assets
from evalsuite.features import resize
from evalsuite.features.base import FeatureExtractor, seeded_init

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset


def _is_torchscript(path: str) -> bool:
    """OpenAI's CLIP checkpoints are TorchScript archives (a zip with a ``code/`` folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        # The whole listing: torch 2 writes the tensors (data/...) before code/, so a prefix
        # of it misses the code of any model with more than a few dozen tensors.
        return any("/code/" in n or n.startswith("code/") for n in z.namelist())


class _DropRandomInitWarning(logging.Filter):
    """Drops open_clip's "Model initialized randomly" line (see ``load_open_clip``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


def load_open_clip(model_name: str, pretrained: str, path: str | None) -> Any:
    """An open_clip model with weights from a local file (None: random, seeded).

    QuickGELU follows the pretrained tag (OpenAI's models were trained with it; building them
    without it gives different embeddings from the same weights).
    """
    import open_clip
    import torch

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    # open_clip warns "No pretrained weights loaded ... Model initialized randomly" for the
    # architecture built here; with a weight file that is false a moment later, so the line
    # is dropped then (with no file the weights are random and the warning stands).
    quiet = _DropRandomInitWarning() if path is not None else None
    root = logging.getLogger()
    if quiet is not None:
        root.addFilter(quiet)
    try:
        with seeded_init():
            model = open_clip.create_model(model_name, pretrained=None,
                                           force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    finally:
        if quiet is not None:
            root.removeFilter(quiet)
    if path is not None:
        if _is_torchscript(path):
            state = torch.jit.load(path, map_location="cpu").state_dict()
            for k in ("input_resolution", "context_length", "vocab_size"):
                state.pop(k, None)
            model.load_state_dict(state)
        else:
            open_clip.load_checkpoint(model, path)
    return model.eval()


class CLIPImageEmbedding(FeatureExtractor):
    """L2-normalised open_clip image embeddings, CMMD preprocessing."""

    name, version = "open_clip_image_embedding", "1"

    def __init__(self, model_name: str = "ViT-L-14-336", pretrained: str = "openai",
                 device: str = "cpu") -> None:
        super().__init__(device)
        self.model_name, self.pretrained = model_name, pretrained
        self.size, self.dims = _model_geometry(model_name)

    def params(self) -> dict[str, Any]:
        return {"model": self.model_name, "pretrained": self.pretrained,
                "resolution": self.size, "dims": self.dims,
                "resize": resize.PROTOCOLS["cmmd_bicubic"],
                "embedding": "image embedding, L2-normalised", **self.resize_params()}

    def required_assets(self) -> list[str]:
        return [assets.open_clip_asset_name(self.model_name, self.pretrained)]

    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any:
        found = weights[self.required_assets()[0]]
        return load_open_clip(self.model_name, self.pretrained,
                              str(found.path) if found else None).to(self.device)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return resize.cmmd_bicubic(image, self.size)

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        return F.normalize(self._model.encode_image(batch).float(), dim=-1)


def _model_geometry(model_name: str) -> tuple[int, int]:
    """(image resolution, embedding dims) from open_clip's model config, without building it."""
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        from evalsuite.errors import ConfigError

        raise ConfigError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
    size = cfg["vision_cfg"]["image_size"]
    return int(size if isinstance(size, int) else size[0]), int(cfg["embed_dim"])
