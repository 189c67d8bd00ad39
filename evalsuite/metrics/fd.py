"""Frechet distance and KID in the feature space of any registered extractor.

``fd_<extractor>`` / ``kid_<extractor>``: the same statistics, distance and estimators as
FID and KID (``metrics/fid.py``, ``metrics/kid.py``), over ``features.registry``'s extractor
``<extractor>`` with its options, e.g. FD-DINOv2 (Stein et al., NeurIPS 2023) is

    fd_dinov2: {_target_: evalsuite.metrics.fd.FD, extractor: dinov2}

The metric's name is ``fd_<extractor>`` and its protocol names the extractor, so values of
different feature spaces never share a table column. With ``extractor: inception_clean`` the
features are the ones ``fid_clean`` uses (one shared pass), but the name stays ``fd_``.
"""

from __future__ import annotations

from typing import Any

from evalsuite.features.registry import EXTRACTORS, build_extractor
from evalsuite.metrics.fid import FID
from evalsuite.metrics.kid import KID


def _describe(extractor: str) -> str:
    what = EXTRACTORS[extractor][0] if extractor in EXTRACTORS else "unknown"
    return f"{extractor} features ({what})"


class FD(FID):
    """Frechet distance between ``extractor`` features of generated and reference images."""

    def __init__(self, extractor: str, device: str = "cpu", resize: str | None = None,
                 size: int | None = None, **options: Any) -> None:
        self.name = f"fd_{extractor}"
        self.protocol = f"Frechet distance, {_describe(extractor)}"
        super().__init__(build_extractor(extractor, device, **options), resize, size)


class KIDOver(KID):
    """KID (unbiased MMD^2, cubic kernel) between ``extractor`` features."""

    def __init__(self, extractor: str, num_subsets: int = 100, subset_size: int = 1000,
                 seed: int = 0, device: str = "cpu", resize: str | None = None,
                 size: int | None = None, **options: Any) -> None:
        self.name = f"kid_{extractor}"
        self.protocol = f"KID, {_describe(extractor)}"
        super().__init__(build_extractor(extractor, device, **options), num_subsets,
                         subset_size, seed, resize, size)
