"""The metric protocol: stateful ``update``/``compute``/``reset`` over a pure function.

Conventions shared by every metric:
- images enter as ``uint8`` arrays of shape (N, H, W, 3): exactly what is stored on disk, so a
  metric sees the same numbers whether it scores a fresh run or a folder of PNGs;
- ``compute`` returns a ``MetricResult`` naming the metric's version and the settings that
  change its value, which the result record stores next to the number;
- ``version`` is bumped whenever a change to the code can change a value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset
    from evalsuite.features.base import FeatureExtractor
    from evalsuite.features.cache import FeatureFile


@dataclass(frozen=True)
class MetricResult:
    """One metric value with what is needed to interpret and compare it."""

    name: str
    value: float
    version: str
    higher_is_better: bool
    n: int  # number of images (or pairs) the value is computed over
    settings: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] | None = None  # {"file":..., "sha256":..., "verified": bool} or random
    ci: dict[str, Any] | None = None  # bootstrap interval (evalsuite.metrics.bootstrap)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "value": self.value,
            "version": self.version,
            "higher_is_better": self.higher_is_better,
            "n": self.n,
            "settings": self.settings,
        }
        if self.weights is not None:
            d["weights"] = self.weights
        if self.ci is not None:
            d["ci"] = self.ci
        return d


def check_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    """Validate a uint8 (N, H, W, 3) batch and return it unchanged."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise EvalsuiteError(f"{what} must be a uint8 numpy array, got {type(images).__name__} "
                             f"{getattr(images, 'dtype', '')}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise EvalsuiteError(f"{what} must have shape (N, H, W, 3), got {images.shape}")
    return images


class Metric(ABC):
    """Base class: metadata on the class, settings on the instance."""

    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_better: ClassVar[bool]
    # Meaningful only on VAE reconstructions of the reference images (rFID): skipped, with the
    # reason, when the scored images are generated samples.
    reconstruction_only: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        """The constructor settings that change this metric's value."""
        return {}

    def settings(self) -> dict[str, Any]:
        """What is recorded with the value: ``params()`` plus facts learned while computing."""
        return self.params()

    def required_assets(self) -> list[str]:
        """Names (in ``evalsuite.assets``) of the weight files this metric needs."""
        return []

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        """Load the weights found for ``required_assets()``; None means "use random weights"
        (only passed when the config allows it explicitly)."""

    def identity(self) -> dict[str, Any]:
        """Everything about the metric itself that changes its value (for cache keys)."""
        cls = type(self)
        return {"class": f"{cls.__module__}.{cls.__qualname__}", "version": self.version,
                "params": self.params()}

    @abstractmethod
    def reset(self) -> None: ...

    @abstractmethod
    def compute(self) -> MetricResult: ...

    def _result(self, value: float, n: int, weights: dict[str, Any] | None = None) -> MetricResult:
        return MetricResult(self.name, float(value), self.version, self.higher_is_better, n,
                            self.settings(), weights)


class PairedMetric(Metric):
    """A metric over pairs of images with the same id (generated vs. reference)."""

    @abstractmethod
    def update(self, preds: np.ndarray, target: np.ndarray) -> None: ...


class TextImageMetric(Metric):
    """A metric over images and the prompts they were generated from."""

    @abstractmethod
    def update(self, images: np.ndarray, texts: Sequence[str]) -> None: ...


class DistributionMetric(Metric):
    """Compares the feature distribution of generated images with that of reference images.

    The metric names its feature extractor (``extractor``, unloaded); the evaluation core
    computes the features once per image set in the shared pass, caches them on disk, and
    hands them over with ``update_from_files``. Used by hand, ``update(features, real)``
    takes feature arrays directly.
    """

    extractor: "FeatureExtractor"
    # False: features of the generated images only (Inception Score, aesthetic score); the
    # evaluation core then requests no reference features and needs no reference set.
    needs_reference: ClassVar[bool] = True

    def required_assets(self) -> list[str]:
        return self.extractor.required_assets()

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        # Only binds: the network is built if and when features must actually be computed.
        self.extractor.bind(weights)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "extractor": self.extractor.spec()}

    @abstractmethod
    def update(self, features: np.ndarray, real: bool) -> None:
        """Add generated (``real=False``) or reference (``real=True``) feature rows."""

    def update_from_files(self, gen: "FeatureFile", ref: "FeatureFile") -> None:
        """Feed cached features in fixed-size blocks (a deterministic accumulation order)."""
        for block in gen.blocks():
            self.update(block, real=False)
        for block in ref.blocks():
            self.update(block, real=True)

    @staticmethod
    def _joined(parts: list[np.ndarray], what: str, name: str, minimum: int) -> np.ndarray:
        """One feature matrix from the parts given to ``update``. A single part (the memmap
        from the feature cache) is returned as is, so it is never loaded whole."""
        arr = parts[0] if len(parts) == 1 else (np.concatenate(parts) if parts
                                                 else np.zeros((0, 1), np.float32))
        if len(arr) < minimum:
            raise EvalsuiteError(f"{name}: needs at least {minimum} {what} images, got {len(arr)}")
        return arr

    def bootstrap_values(self, counts: np.ndarray) -> np.ndarray:
        """Metric values for resamples of the generated images; ``counts`` is (B, n_gen),
        how often each generated image is drawn. Optional (NotImplementedError)."""
        raise NotImplementedError(f"{self.name} has no bootstrap")


class AllFeaturesMetric(DistributionMetric):
    """A distribution metric that needs every feature row (KID, CMMD), not running sums.

    Rows given to ``update`` are kept as float32 parts; features from the on-disk cache come
    in as memmaps (``update_from_files``) and are never loaded whole. Subclasses set
    ``min_images`` and report computed facts in ``self._facts``.
    """

    min_images: ClassVar[int] = 2

    def reset(self) -> None:
        self._parts: dict[bool, list[np.ndarray]] = {False: [], True: []}
        self._facts: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {**self.params(), **self._facts}

    def update(self, features: np.ndarray, real: bool) -> None:
        self._parts[real].append(np.asarray(features, dtype=np.float32))

    def update_from_files(self, gen: "FeatureFile", ref: "FeatureFile") -> None:
        self._parts = {False: [gen.array()], True: [ref.array()]}

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(generated, reference) feature matrices, each with at least ``min_images`` rows."""
        return (self._joined(self._parts[False], "generated", self.name, self.min_images),
                self._joined(self._parts[True], "reference", self.name, self.min_images))
