"""open_clip image embeddings with CMMD's preprocessing (google-research/cmmd).

CMMD's reference embeds with OpenAI CLIP ViT-L/14@336 (``open_clip`` ``ViT-L-14-336`` /
``openai``): each image is centre-cropped to a square, PIL-bicubic resized to the model's
resolution, scaled to [0, 1], CLIP-normalised, and its image embedding L2-normalised. Any
open_clip model can be selected; the resolution comes from the model.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
import zipfile
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping

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


# (model, tag, file, its size and mtime, device) -> the model built from it, while in use:
# CLIP score and CMMD with the same model share one build (each only runs it, in eval mode).
_LOADED: "weakref.WeakValueDictionary[tuple, Any]" = weakref.WeakValueDictionary()
_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                   "xavier_uniform_", "xavier_normal_", "orthogonal_", "constant_", "zeros_",
                   "ones_")


@contextmanager
def _skip_random_init() -> Iterator[None]:
    """``torch.nn.init``'s fills do nothing inside the block: a model whose every parameter
    a strict ``load_state_dict`` overwrites next need not be filled with random numbers first
    (0.75 s of CPU for ViT-B-32, 1.7 s for ViT-L-14-336). Called before any pass starts its
    threads, so no other module is being built meanwhile."""
    import torch

    saved = {n: getattr(torch.nn.init, n) for n in _INIT_FUNCTIONS}
    for n in _INIT_FUNCTIONS:
        setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


def load_open_clip(model_name: str, pretrained: str, path: str | None,
                   device: str = "cpu") -> Any:
    """An open_clip model on ``device`` with weights from a local file (None: random, seeded).

    QuickGELU follows the pretrained tag (OpenAI's models were trained with it; building them
    without it gives different embeddings from the same weights). A model built from a file
    is shared with the other callers asking for the same one while it is in use: callers
    must not change it.
    """
    if path is None:
        return _build_open_clip(model_name, pretrained, None).to(device)
    st = os.stat(path)
    key = (model_name, pretrained, os.path.abspath(path), st.st_size, st.st_mtime_ns, device)
    model = _LOADED.get(key)
    if model is None:
        model = _build_open_clip(model_name, pretrained, path).to(device)
        _LOADED[key] = model
    return model


def _build_open_clip(model_name: str, pretrained: str, path: str | None) -> Any:
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
    # random weights are seeded; with a file loaded strictly (every parameter overwritten)
    # they are not drawn at all (big_vision .npz files are not loaded strictly)
    strict = path is not None and not path.endswith((".npz", ".npy"))
    try:
        with (_skip_random_init() if strict else seeded_init()):
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
                              str(found.path) if found else None, self.device)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return resize.cmmd_bicubic(image, self.size)

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        return F.normalize(self._model.encode_image(batch).float(), dim=-1)


def _model_geometry(model_name: str) -> tuple[int, int]:
    """(image resolution, embedding dims) from open_clip's model config, without building it
    (and without importing open_clip, 3 s of CPU, when its bundled config file answers: a
    fully cached run needs no model at all)."""
    cfg = _bundled_config(model_name) if "open_clip" not in sys.modules else None
    if cfg is None:
        import open_clip

        cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        from evalsuite.errors import ConfigError

        raise ConfigError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
    size = cfg["vision_cfg"]["image_size"]
    return int(size if isinstance(size, int) else size[0]), int(cfg["embed_dim"])


def _bundled_config(model_name: str) -> dict[str, Any] | None:
    """open_clip's own ``model_configs/<name>.json`` (None: not a bundled model, or no
    open_clip; then open_clip itself is asked, which also knows registered configs)."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations or ":" in model_name \
            or "/" in model_name:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model_configs" / f"{model_name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
