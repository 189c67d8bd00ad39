"""Metrics over the features of the generated images alone (no reference set).

The Inception Score reads the FID Inception's logits, the LAION aesthetic score a head on
the CLIP image embedding: both are functions of an extractor's features, so they go through
the same shared one-pass walk and on-disk feature cache as FID, KID and CMMD
(``DistributionMetric`` with ``needs_reference = False``). A metric whose extractor has the
same identity as another metric's (CMMD on the same CLIP model) shares its forward passes:
adding it costs only what it computes on top of the features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from evalsuite.metrics.base import DistributionMetric

if TYPE_CHECKING:
    from evalsuite.features.cache import FeatureFile


class SampleFeatureMetric(DistributionMetric):
    """A metric of the generated images' feature rows; reference features are refused.

    Subclasses set ``min_images`` and report computed facts in ``self._facts``.
    """

    needs_reference: ClassVar[bool] = False
    min_images: ClassVar[int] = 1

    def reset(self) -> None:
        self._parts: list[np.ndarray] = []
        self._facts: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {**self.params(), **self._facts}

    def update(self, features: np.ndarray, real: bool = False) -> None:
        if real:
            raise ValueError(f"{self.name} scores generated images only; it takes no "
                             "reference features")
        self._parts.append(np.asarray(features, dtype=np.float32))

    def update_from_files(self, gen: "FeatureFile", ref: "FeatureFile | None" = None) -> None:
        self._parts = [gen.array()]

    def features(self) -> np.ndarray:
        """The generated feature rows (at least ``min_images``), in the order fed."""
        return self._joined(self._parts, "generated", self.name, self.min_images)
