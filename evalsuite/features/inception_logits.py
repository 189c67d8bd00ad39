"""The FID Inception's 1008-class logits with torch-fidelity's input pipeline (Inception Score).

torch-fidelity's Inception Score (``isc``) reads the ``logits_unbiased`` output of its
``inception-v3-compat`` network: pool3 (2048) times the transposed weight of the 1008-way
``fc`` layer, without its bias. Its input pipeline: uint8 RGB as float32 in [0, 255],
resized to 299x299 with TensorFlow 1.x's bilinear rule (``align_corners=False``, no half-pixel
centres, no antialiasing; torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``,
``method="slow"``, transcribed below), then ``(x - 128) / 128``. The network is pytorch-fid's
FID Inception architecture (the same TF 2015-12-05 graph, and the same 566 tensors, as
torch-fidelity's), loaded from torch-fidelity's weight file
``weights-inception-2015-12-05-6726825d.pth``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from evalsuite.features.base import FeatureExtractor
from evalsuite.features.inception import build_from_file

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset

TORCH_FIDELITY_ASSET = "inception_torch_fidelity"
INCEPTION_SIZE = 299
TF1_BILINEAR = ("float32 [0, 255], TensorFlow 1.x bilinear (align_corners=False, no half-pixel "
                "centres, no antialias) to 299x299, then (x - 128) / 128 (torch-fidelity "
                "interpolate_bilinear_2d_like_tensorflow1x, method=slow)")


def tf1_bilinear(image: np.ndarray, size: int = INCEPTION_SIZE) -> np.ndarray:
    """TensorFlow 1.x ``resize_bilinear`` (align_corners=False) of one uint8 (H, W, 3) image to
    ``size`` x ``size``; float32 (3, size, size) in [0, 255], as torch-fidelity computes it."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None]
    in_h, in_w = x.shape[2], x.shape[3]

    def grid(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # source coordinate = output index * (in / out), in float32 (TF1's scale)
        pos = torch.arange(0, size, 1, dtype=torch.float32) * torch.tensor(n_in / size,
                                                                           dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.float()

    x_lo, x_hi, dx = grid(in_w)
    y_lo, y_hi, dy = grid(in_h)
    rows_lo, rows_hi = x[:, :, y_lo, :], x[:, :, y_hi, :]
    in_0 = rows_lo[:, :, :, x_lo] + (rows_lo[:, :, :, x_hi] - rows_lo[:, :, :, x_lo]) \
        * dx.view(1, 1, 1, size)
    in_1 = rows_hi[:, :, :, x_lo] + (rows_hi[:, :, :, x_hi] - rows_hi[:, :, :, x_lo]) \
        * dx.view(1, 1, 1, size)
    out = in_0 + (in_1 - in_0) * dy.view(1, 1, size, 1)
    return out[0].numpy()


class _LogitsNet:
    """pool3 blocks plus the fc weight: ``logits_unbiased = pool3 @ fc.weight.T``."""

    def __init__(self, found: "ResolvedAsset | None", device: str) -> None:
        self.blocks, fc_weight = build_from_file(found, 2048, device)
        self.fc_weight = fc_weight.to(device)

    def __call__(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.blocks(x).flatten(1).mm(self.fc_weight.T)


class InceptionLogits(FeatureExtractor):
    """The FID Inception's unbiased 1008-class logits, torch-fidelity's preprocessing."""

    name, version = "inception_v3_logits_torch_fidelity", "1"

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(device)
        self.dims = 1008

    def params(self) -> dict[str, Any]:
        return {"network": "FID Inception v3 (TF 2015-12-05 port), torch-fidelity "
                           "inception-v3-compat weights",
                "layer": "logits_unbiased: pool3 @ fc.weight.T (1008 classes, no bias)",
                "dims": 1008, "resize": TF1_BILINEAR,
                "decode": "8-bit RGB (RGBA/L/P converted to RGB)", **self.resize_params()}

    def required_assets(self) -> list[str]:
        return [TORCH_FIDELITY_ASSET]

    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any:
        return _LogitsNet(weights[TORCH_FIDELITY_ASSET], self.device)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return (tf1_bilinear(image) - 128) / 128

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        return self._model(batch)
