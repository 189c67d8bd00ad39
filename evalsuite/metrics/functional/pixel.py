"""Per-image PSNR and SSIM, delegated to scikit-image with every setting stated.

Conventions (part of each metric's recorded settings):
- inputs are uint8 RGB, ``data_range=255``, computed in float64;
- SSIM uses the Gaussian window of Wang et al. (sigma 1.5, population covariance), per
  channel, averaged over channels; as in scikit-image, the 5-pixel border affected by the
  window's padding is excluded from the mean (torchmetrics averages the padded full map, so
  its values differ slightly at the border);
- identical images give PSNR = inf and SSIM = 1.
"""

from __future__ import annotations

import numpy as np

SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False,
                 "data_range": 255}
# scikit-image's Gaussian window: 2 * int(3.5 * sigma + 0.5) + 1 = 11 pixels for sigma 1.5.
SSIM_WINDOW = 2 * int(3.5 * SSIM_SETTINGS["sigma"] + 0.5) + 1
# SKIMAGE_NOTE: skimage.metrics is imported where it is called, not here: it pulls in
# scipy.stats (1.1 s of a 2.5 s fully cached re-run, which builds these metrics but computes
# nothing).


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of one uint8 (H, W, 3) image against its reference."""
    if pred.shape != target.shape:
        raise ValueError(f"image shapes differ: {pred.shape} vs {target.shape}")
    if np.array_equal(pred, target):
        return float("inf")  # skimage would divide by zero with a warning
    from skimage.metrics import peak_signal_noise_ratio  # see SKIMAGE_NOTE

    return float(peak_signal_noise_ratio(target, pred, data_range=255))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM of one uint8 (H, W, 3) image against its reference (settings in SSIM_SETTINGS)."""
    if pred.shape != target.shape:
        raise ValueError(f"image shapes differ: {pred.shape} vs {target.shape}")
    from skimage.metrics import structural_similarity  # see SKIMAGE_NOTE

    return float(structural_similarity(target.astype(np.float64), pred.astype(np.float64),
                                       channel_axis=-1, **SSIM_SETTINGS))
