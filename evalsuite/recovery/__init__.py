"""Recovery by distillation: fine-tune an ablated UNet from the unablated one (BK-SDM's recipe).

``losses`` (pure functions), ``features`` (which stages feature KD compares, and the hooks),
``data`` (the ``TrainingData`` protocol and ``ImageFolder``), ``shapes_data`` (the shapes
world's train split), ``train`` (the loop), ``checkpoint`` (atomic, resumable checkpoints),
``api`` (``Recovery``: key, cache, summary) and ``doctor`` (``evalsuite doctor``'s check).
The names below are imported on first use, so importing the package (as ``evalsuite doctor``
does) costs no torch import.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Recovery": "api", "RecoveryStopped": "api", "compact_curve": "api",
    "ImageFolder": "data", "TrainingData": "data", "batch_indices": "data", "epoch_order": "data",
    "ShapesTrainData": "shapes_data",
    "StageMatch": "features", "capture": "features", "match_stages": "features",
    "LossTerms": "losses", "LossWeights": "losses", "distillation_loss": "losses",
    "feature_kd_loss": "losses", "output_kd_loss": "losses", "task_loss": "losses",
    "RecoverySettings": "settings",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'evalsuite.recovery' has no attribute {name!r}")
    return getattr(importlib.import_module(f"evalsuite.recovery.{_HOMES[name]}"), name)
