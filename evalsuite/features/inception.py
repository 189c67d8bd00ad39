"""The FID Inception v3 networks, loaded from local files only.

- ``PytorchFIDInception``: pytorch-fid's architecture (torchvision Inception v3 with the FID
  blocks patched in) and its weight file ``pt_inception-2015-12-05-6726825d.pth``; features
  from one of pytorch-fid's four blocks (64, 192, 768 or 2048 dims; 2048 = pool3, the
  standard), spatially averaged as pytorch-fid does for the smaller blocks.
- ``CleanFIDInception``: clean-fid's TorchScript file ``inception-2015-12-05.pt``, used as
  clean-fid uses it: mode ``clean`` feeds ``(x - 128) / 128`` of clean-resized 299x299 images
  to its ``layers``; mode ``legacy_tensorflow`` lets the network resize [0, 255] inputs itself.
  Its inputs keep their own size, so images are grouped by size and each group runs in
  micro-batches of 8 (one image per call before; 2.75x slower).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.features import resize
from evalsuite.features.base import FeatureExtractor
from evalsuite.features.inception_net import BLOCK_BY_DIMS, build_pytorch_fid_blocks
from evalsuite.features.standins import clean_fid_standin_module, pytorch_fid_standin_state

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset

PYTORCH_FID_ASSET = "inception_pytorch_fid"
CLEAN_FID_ASSET = "inception_clean_fid"
LAYER_NAMES = {64: "block0 (first max pool)", 192: "block1 (second max pool)",
               768: "block2 (pre-aux, Mixed_6e)", 2048: "pool3 (final average pool)"}


class PytorchFIDInception(FeatureExtractor):
    """pytorch-fid's Inception v3 with pytorch-fid's input pipeline (FID 'legacy' protocol)."""

    name, version = "inception_v3_pytorch_fid", "1"

    def __init__(self, dims: int = 2048, device: str = "cpu") -> None:
        if dims not in BLOCK_BY_DIMS:
            raise ConfigError(f"inception dims={dims}; pytorch-fid offers {sorted(BLOCK_BY_DIMS)}")
        super().__init__(device)
        self.dims = dims

    def params(self) -> dict[str, Any]:
        return {"network": "pytorch-fid FID Inception v3 (TF 2015-12-05 port)",
                "layer": LAYER_NAMES[self.dims], "dims": self.dims,
                "resize": resize.PROTOCOLS["pytorch_fid_bilinear"],
                "decode": "8-bit RGB (RGBA/L/P converted to RGB)", **self.resize_params()}

    def required_assets(self) -> list[str]:
        return [PYTORCH_FID_ASSET]

    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any:
        return build_from_file(weights[PYTORCH_FID_ASSET], self.dims, self.device)[0]

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return resize.pytorch_fid_bilinear(image)

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        out = self._model(batch)
        if out.shape[2:] != (1, 1):  # pytorch-fid averages the smaller blocks' maps
            out = F.adaptive_avg_pool2d(out, output_size=(1, 1))
        return out.flatten(1)


class CleanFIDInception(FeatureExtractor):
    """clean-fid's TorchScript Inception v3 with clean-fid's input pipeline."""

    name, version = "inception_v3_clean_fid", "1"
    MODES = ("clean", "legacy_tensorflow")

    def __init__(self, mode: str = "clean", device: str = "cpu") -> None:
        if mode not in self.MODES:
            raise ConfigError(f"clean-fid inception mode={mode!r}; choose one of {self.MODES}")
        super().__init__(device)
        self.mode, self.dims = mode, 2048

    def params(self) -> dict[str, Any]:
        proto = "clean_fid_clean" if self.mode == "clean" else "clean_fid_legacy_tensorflow"
        return {"network": "clean-fid TorchScript Inception v3 (StyleGAN2-ADA)",
                "layer": "pool3 (2048)", "dims": 2048, "mode": self.mode,
                "resize": resize.PROTOCOLS[proto], "normalize": "(x - 128) / 128",
                "decode": "8-bit RGB (RGBA/L/P converted to RGB)", **self.resize_params()}

    def required_assets(self) -> list[str]:
        return [CLEAN_FID_ASSET]

    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any:
        import torch

        found = weights[CLEAN_FID_ASSET]
        if found is None:  # seeded random weights, recorded as such
            return clean_fid_standin_module(full=True).to(self.device).eval()
        return torch.jit.load(str(found.path), map_location=self.device).eval()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        if self.mode == "clean":
            return resize.clean_fid_clean(image)
        return resize.float_chw(image)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Features in order; ``legacy_tensorflow`` inputs keep their size, so images of equal
        (evaluated) size run together in zero-padded micro-batches and rows return in order.
        Features equal clean-fid's at batch size 8 on each size's images, bit for bit (tested);
        like every extractor's, they do not depend on how the images are split into calls."""
        if self.mode == "clean":
            return super().__call__(images)
        shapes = [self._eval_shape(im) for im in images]
        if len(set(shapes)) <= 1:
            return super().__call__(images)
        out = np.empty((len(images), self.dims), np.float32)
        for shape in dict.fromkeys(shapes):
            idx = [i for i, s in enumerate(shapes) if s == shape]
            out[idx] = super().__call__([images[i] for i in idx])
        return out

    def _eval_shape(self, image: np.ndarray) -> tuple[int, ...]:
        """The shape an image has after the evaluation resize (what the network sees)."""
        if self.eval_resize is None:
            return image.shape
        return (self.eval_resize[1], self.eval_resize[1], 3)

    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        bs = batch.shape[0]
        if self.mode == "clean":
            return self._model.layers.forward((batch - 128) / 128).view((bs, 2048))
        return self._model(batch, return_features=True).view((bs, 2048))


def load_pytorch_fid_state(found: "ResolvedAsset | None") -> Any:
    """The state dict of a pytorch-fid / torch-fidelity Inception weight file (the same 566
    tensors), memory-mapped where the file's format allows (no copy of its bytes before the
    network takes them); None: the seeded stand-in weights, recorded as random."""
    import torch

    if found is None:
        return pytorch_fid_standin_state()
    try:
        return torch.load(found.path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a file in torch's legacy (pre-zip) format cannot be mapped
        return torch.load(found.path, map_location="cpu", weights_only=True)


def build_from_file(found: "ResolvedAsset | None", dims: int, device: str) -> Any:
    """``build_pytorch_fid_blocks`` with the weights of ``found`` (``load_pytorch_fid_state``)
    and the fc weight the Inception-logits head needs (None when the file has none): one
    loader for pytorch-fid's and torch-fidelity's files."""
    state = load_pytorch_fid_state(found)
    return build_pytorch_fid_blocks(state, dims).to(device), state.get("fc.weight")
