"""Feature extractors: a network plus the exact preprocessing that makes its features a protocol.

An extractor turns uint8 RGB images (H, W, 3) into float32 feature rows. Preprocessing is done
per image (``preprocess``), and the network always runs on micro-batches of exactly
``micro_batch`` inputs, zero-padded: CPU kernels pick their algorithm (and so their rounding)
by batch shape, so a fixed shape is what makes an image's features independent of the batch
size of the pass and of the other images in its batch, bit for bit (tested). ``identity()`` names everything
that changes the features (extractor, version, layer, resize protocol, weights sha256, device
type); it is part of every feature-cache key.

Weights are resolved by the caller (``bind``) and loaded only when features must actually be
computed (``load``), so a run whose features are all cached never builds a network.

An optional evaluation resize (``set_eval_resize``: ``squash`` or ``center_crop`` to a square
of ``size`` pixels, ``features.resize.resize_square``) runs on each uint8 image before the
extractor's own preprocessing, on generated and reference images alike. It is part of
``params()`` (so of the feature-cache key) when set, and absent when not, so extractors
without it keep their identities. Images already at ``size`` x ``size`` pass unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.features import resize
from evalsuite.io import sha256_json

if TYPE_CHECKING:
    import torch

    from evalsuite.assets import ResolvedAsset

RANDOM_INIT_SEED = 0  # stand-in networks (allow_random_weights) are initialised from this seed


@contextmanager
def seeded_init(seed: int = RANDOM_INIT_SEED) -> Iterator[None]:
    """Build modules under a fixed torch seed without disturbing the global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class FeatureExtractor(ABC):
    """Base class: metadata on the class, protocol settings on the instance."""

    name: ClassVar[str]
    version: ClassVar[str]  # bumped whenever a code change can change a feature value
    dims: int
    micro_batch: int = 8  # inputs per network call, zero-padded (1: inputs of varying size)

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._weights: dict[str, ResolvedAsset | None] | None = None
        self._model: Any = None
        self.eval_resize: tuple[str, int] | None = None  # (mode, size), see set_eval_resize

    def set_eval_resize(self, mode: str | None, size: int | None, owner: str = "") -> None:
        """Resize every image to a ``size`` square (``squash`` / ``center_crop``) first.

        None (or ``"none"``) with no size: no resize. Bad values raise ``ConfigError``
        naming ``owner`` and the parameter (``resize=`` / ``size=``).
        """
        where = f"{owner}: " if owner else ""
        checked = resize.check_square_resize(mode, size, where)
        if checked is None:
            if size is not None:
                raise ConfigError(f"{where}size={size} is given without resize; set "
                                  "resize=squash or resize=center_crop, or drop size")
            self.eval_resize = None
        else:
            assert size is not None
            self.eval_resize = (checked, int(size))

    def resize_params(self) -> dict[str, Any]:
        """The evaluation resize for ``params()`` ({} when there is none)."""
        if self.eval_resize is None:
            return {}
        mode, size = self.eval_resize
        return {"eval_resize": {"mode": mode, "size": size,
                                "method": "PIL bicubic (antialiased) on uint8, before the "
                                          "extractor's preprocessing; images already "
                                          f"{size}x{size} unchanged"}}

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """The evaluation resize (if any), then ``preprocess``."""
        if self.eval_resize is not None:
            image = resize.resize_square(image, *self.eval_resize)
        return self.preprocess(image)

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The protocol: layer, resize, normalisation... everything but the weights."""

    @abstractmethod
    def required_assets(self) -> list[str]: ...

    def spec(self) -> dict[str, Any]:
        """What identifies this extractor before weights are known (used to share it)."""
        return {"extractor": self.name, "version": self.version, "params": self.params(),
                "micro_batch": self.micro_batch, "device_type": self.device.split(":")[0]}

    def spec_key(self) -> str:
        return sha256_json(self.spec())

    def bind(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        """Attach the resolved weight files (None: random init from RANDOM_INIT_SEED)."""
        self._weights = {k: weights[k] for k in self.required_assets()}

    def weights_record(self) -> dict[str, Any]:
        """What the result record says about the weights."""
        if self._weights is None:
            raise RuntimeError(f"{self.name}: bind() must be called first")
        recs = {k: (v.to_record() if v is not None else
                    {"file": None, "random_init": True, "seed": RANDOM_INIT_SEED,
                     "verified": False}) for k, v in self._weights.items()}
        return next(iter(recs.values())) if len(recs) == 1 else recs

    def identity(self) -> dict[str, Any]:
        """``spec()`` plus the weights' sha256 (or the random-init seed): the cache key input."""
        if self._weights is None:
            raise RuntimeError(f"{self.name}: bind() must be called first")
        return {**self.spec(), "weights": {k: v.sha256 if v is not None else
                                           f"random_init:{RANDOM_INIT_SEED}"
                                           for k, v in self._weights.items()}}

    def load(self) -> None:
        """Build the network with the bound weights (idempotent)."""
        if self._model is None:
            if self._weights is None:
                raise RuntimeError(f"{self.name}: bind() must be called before load()")
            self._model = self._build(self._weights)

    @abstractmethod
    def _build(self, weights: Mapping[str, "ResolvedAsset | None"]) -> Any: ...

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One uint8 (H, W, 3) image -> the float32 (C, H', W') network input."""

    @abstractmethod
    def _forward(self, batch: "torch.Tensor") -> "torch.Tensor":
        """A stacked batch of preprocessed images -> (B, dims) features."""

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Features (float32, (N, dims)) of a list of uint8 images, in order."""
        import torch

        self.load()
        mb = self.micro_batch
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), mb):
                inputs = [self._prepare(im) for im in images[start:start + mb]]
                if len({x.shape for x in inputs}) != 1:
                    raise ValueError(f"{self.name}: inputs of one micro-batch differ in shape")
                batch = np.zeros((mb, *inputs[0].shape), dtype=np.float32)
                batch[:len(inputs)] = inputs
                feats = self._forward(torch.from_numpy(batch).to(self.device))
                out.append(feats[:len(inputs)].float().cpu().numpy())
        feats = np.concatenate(out) if out else np.zeros((0, self.dims), np.float32)
        if feats.shape[1] != self.dims:
            raise ValueError(f"{self.name} produced {feats.shape[1]} features, expected {self.dims}")
        return np.ascontiguousarray(feats, dtype=np.float32)
