"""Features of the shapes world's image encoder (``evalsuite.worlds.shapes.nets``).

96 float32 features per image: the encoder's 64-d contrastive embedding (before its L2
normalisation) and the channel means of its 16x16 mid-level maps (32), a feature space
trained on the world (contrastively, against the captions), for ``fd_shapes`` and
``kid_shapes``. Images that are not 64x64 are squashed
to 64x64 first (PIL bicubic, antialiased, on uint8); the network sees ``x / 255 - 0.5``.
Weights: ``shapes_image_encoder`` (shipped in the package, sha256 in ``evalsuite.assets``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from evalsuite.features import resize
from evalsuite.features.base import FeatureExtractor

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset

IMAGE_ENCODER_ASSET = "shapes_image_encoder"


class ShapesEncoderFeatures(FeatureExtractor):
    """The shapes image encoder's 96-d features (``ImageEncoder.fd_features``)."""

    name, version = "shapes_image_encoder", "1"
    dims = 96
    micro_batch = 32

    def params(self) -> dict[str, Any]:
        return {"layer": "concat(64-d embedding before L2 normalisation, means of the 32 16x16 "
                          "mid-level maps)",
                "dims": self.dims, "resolution": 64,
                "resize": "squash to 64x64, PIL bicubic (antialiased) on uint8, if not 64x64",
                "normalisation": "x/255 - 0.5", **self.resize_params()}

    def required_assets(self) -> list[str]:
        return [IMAGE_ENCODER_ASSET]

    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any:
        from evalsuite.worlds.shapes.nets import load_net

        found = weights[IMAGE_ENCODER_ASSET]
        return load_net("image_encoder", found.path if found else None).to(self.device)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != (64, 64):
            image = resize.resize_square(image, "squash", 64)
        return (image.astype(np.float32) / 255.0 - 0.5).transpose(2, 0, 1)

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        return self._model.fd_features(batch)
