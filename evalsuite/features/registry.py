"""Every feature extractor under one name, so any distribution metric can use any of them.

``build_extractor(name, device, **options)`` returns an unloaded extractor; ``fd_<name>`` and
``kid_<name>`` (``metrics/fd.py``) are the Frechet distance and KID in its feature space, one
config entry each (``extractor: <name>``). Two metrics with the same extractor and options get
extractors of equal identity, so their features are computed once (the shared pass).
"""

from __future__ import annotations

from typing import Any, Callable

from evalsuite.errors import ConfigError
from evalsuite.features.base import FeatureExtractor


def _inception_clean(device: str) -> FeatureExtractor:
    from evalsuite.features.inception import CleanFIDInception

    return CleanFIDInception("clean", device)


def _inception_legacy(device: str, dims: int = 2048) -> FeatureExtractor:
    from evalsuite.features.inception import PytorchFIDInception

    return PytorchFIDInception(dims, device)


def _inception_legacy_tensorflow(device: str) -> FeatureExtractor:
    from evalsuite.features.inception import CleanFIDInception

    return CleanFIDInception("legacy_tensorflow", device)


def _clip(device: str, model_name: str = "ViT-L-14-336", pretrained: str = "openai"
          ) -> FeatureExtractor:
    from evalsuite.features.clip import CLIPImageEmbedding

    return CLIPImageEmbedding(model_name, pretrained, device)


def _dinov2(device: str, arch: str = "vitl14") -> FeatureExtractor:
    from evalsuite.features.dinov2 import DINOv2Features

    return DINOv2Features(arch, device)


def _shapes(device: str) -> FeatureExtractor:
    from evalsuite.features.shapes import ShapesEncoderFeatures

    return ShapesEncoderFeatures(device)


def _inception_logits(device: str) -> FeatureExtractor:
    from evalsuite.features.inception_logits import InceptionLogits

    return InceptionLogits(device)


#: name -> (what it is, builder(device, **options)).
EXTRACTORS: dict[str, tuple[str, Callable[..., FeatureExtractor]]] = {
    "inception_clean": ("Inception-v3 pool3 (2048), clean-fid mode=clean", _inception_clean),
    "inception_legacy": ("Inception-v3 pool3 (2048; dims=64/192/768 for other blocks), "
                         "pytorch-fid", _inception_legacy),
    "inception_legacy_tensorflow": ("Inception-v3 pool3 (2048), clean-fid "
                                    "mode=legacy_tensorflow", _inception_legacy_tensorflow),
    "inception_logits": ("Inception-v3 unbiased logits (1008), torch-fidelity",
                         _inception_logits),
    "clip": ("open_clip image embedding, L2-normalised (model_name, pretrained; default "
             "ViT-L-14-336 openai, CMMD's)", _clip),
    "dinov2": ("DINOv2 CLS token (arch: vits14/vitb14/vitl14/vitg14, default vitl14), dgm-eval "
               "preprocessing", _dinov2),
    "shapes": ("the shapes world's image encoder", _shapes),
}


def build_extractor(name: str, device: str = "cpu", **options: Any) -> FeatureExtractor:
    """The feature extractor called ``name`` (see ``EXTRACTORS``) with its ``options``, unloaded."""
    if name not in EXTRACTORS:
        raise ConfigError(f"unknown feature extractor {name!r}; choose one of "
                          f"{', '.join(EXTRACTORS)}")
    builder = EXTRACTORS[name][1]
    try:
        return builder(device, **options)
    except TypeError as e:  # an option this extractor does not have
        raise ConfigError(f"feature extractor {name}: bad options {sorted(options)} ({e})") \
            from None
