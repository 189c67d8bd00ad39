"""LPIPS (Zhang et al. 2018) through the ``lpips`` package.

Conventions: inputs are mapped from uint8 to [-1, 1] (the range LPIPS was trained on; feeding
[0, 1] is a common silent error), backbone AlexNet, linear heads v0.1 (shipped inside the
lpips package), spatial average, mean over pairs. The AlexNet backbone weights are the
torchvision file ``alexnet-owt-7be5be79.pth``, looked up locally (``evalsuite.assets``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.metrics.base import MetricResult, PairedMetric, check_images

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset

ASSET = "lpips_alexnet"


def to_lpips_input(images: np.ndarray) -> "torch.Tensor":
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _load_alexnet_backbone(model: Any, path: str) -> None:
    """Copy torchvision AlexNet ``features.*`` weights into lpips' sliced backbone."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    for slice_name, block in model.net.named_children():
        for idx, layer in block.named_children():
            for pname, param in layer.named_parameters(recurse=False):
                param.data.copy_(state[f"features.{idx}.{pname}"])


class LPIPS(PairedMetric):
    """Mean LPIPS distance over pairs (lower is better)."""

    name, version, higher_is_better = "lpips", "1", False

    def __init__(self, net: str = "alex", device: str = "cpu") -> None:
        if net != "alex":
            raise EvalsuiteError(f"lpips: only net='alex' is supported so far, got {net!r}")
        self.net, self.device = net, device
        self._model: Any = None
        self._weights: dict[str, Any] | None = None
        self.reset()

    def params(self) -> dict[str, Any]:
        return {"net": self.net, "heads": "lpips v0.1", "input_range": "[-1, 1]",
                "reduction": "mean of per-pair spatial average"}

    def required_assets(self) -> list[str]:
        return [ASSET]

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        import lpips

        found = weights[ASSET]
        import torch

        # pnet_rand=True stops lpips from downloading the backbone; real weights are copied in.
        # Without them the random backbone is seeded, so smoke runs are reproducible.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self._model = lpips.LPIPS(net=self.net, pretrained=True, pnet_rand=True, verbose=False)
        if found is not None:
            _load_alexnet_backbone(self._model, str(found.path))
            self._weights = found.to_record()
        else:
            self._weights = {"file": None, "random_backbone": True, "verified": False}
        self._model.eval().to(self.device)

    def reset(self) -> None:
        self._values: list[float] = []

    def update(self, preds: np.ndarray, target: np.ndarray) -> None:
        import torch

        check_images(preds, "preds"), check_images(target, "target")
        if self._model is None:
            raise RuntimeError("LPIPS.prepare() must be called before update()")
        with torch.inference_mode():
            d = self._model(to_lpips_input(preds).to(self.device), to_lpips_input(target).to(self.device))
        self._values.extend(d.flatten().double().cpu().tolist())

    def item_values(self) -> np.ndarray:
        """Per-pair distances in the order fed."""
        return np.asarray(self._values, dtype=np.float64)

    def compute(self) -> MetricResult:
        if not self._values:
            raise EvalsuiteError("lpips: no image pairs were given")
        return self._result(float(np.mean(self._values)), len(self._values), self._weights)
