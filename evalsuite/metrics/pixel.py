"""PSNR and SSIM over pairs of images: the mean of per-image values."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.metrics.base import MetricResult, PairedMetric, check_images
from evalsuite.metrics.functional.pixel import SSIM_SETTINGS, SSIM_WINDOW, psnr, ssim


class _MeanOfPairs(PairedMetric):
    _fn: Callable[[np.ndarray, np.ndarray], float]

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._values: list[float] = []

    def update(self, preds: np.ndarray, target: np.ndarray) -> None:
        check_images(preds, "preds"), check_images(target, "target")
        if preds.shape != target.shape:
            raise EvalsuiteError(f"{self.name}: paired images differ in shape "
                                 f"{preds.shape} vs {target.shape}")
        self._values.extend(type(self)._fn(p, t) for p, t in zip(preds, target))

    def item_values(self) -> np.ndarray:
        """Per-pair values in the order fed (inf for identical pairs under PSNR)."""
        return np.asarray(self._values, dtype=np.float64)

    def compute(self) -> MetricResult:
        if not self._values:
            raise EvalsuiteError(f"{self.name}: no image pairs were given")
        # PSNR of identical images is inf; it is counted in the settings, not averaged in.
        finite = [v for v in self._values if math.isfinite(v)]
        value = float(np.mean(finite)) if finite else math.inf
        return self._result(value, len(self._values))


class PSNR(_MeanOfPairs):
    """Mean per-image PSNR (dB); pairs of identical images are left out of the mean (inf)."""

    name, version, higher_is_better = "psnr", "1", True
    _fn = staticmethod(psnr)

    def params(self) -> dict[str, Any]:
        return {"data_range": 255, "reduction": "mean of per-image finite PSNR"}

    def settings(self) -> dict[str, Any]:
        return {**self.params(), "n_identical": sum(math.isinf(v) for v in self._values)}


class SSIM(_MeanOfPairs):
    """Mean per-image SSIM (scikit-image, Gaussian window; settings recorded)."""

    name, version, higher_is_better = "ssim", "1", True
    _fn = staticmethod(ssim)
    min_side = SSIM_WINDOW  # checked before any work (evalsuite score) and per batch here

    def update(self, preds: np.ndarray, target: np.ndarray) -> None:
        height, width = np.shape(preds)[1:3]
        if min(height, width) < SSIM_WINDOW:
            raise EvalsuiteError(
                f"ssim: the images are {height}x{width} pixels, smaller than SSIM's "
                f"{SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window (sigma {SSIM_SETTINGS['sigma']}, "
                f"as scikit-image), so SSIM is undefined for them; use images of at least "
                f"{SSIM_WINDOW} pixels a side, or leave ssim out of the metrics")
        super().update(preds, target)

    def params(self) -> dict[str, Any]:
        return {**SSIM_SETTINGS, "channel_axis": -1, "border": "skimage (crop 5 px)",
                "reduction": "mean of per-image SSIM"}
