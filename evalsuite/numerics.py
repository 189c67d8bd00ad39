"""Non-finite output is a failure: the one check between a network's float output and the
numbers or images evalsuite keeps.

A VAE with NaN weights decodes to NaN, which ``to_uint8`` would silently clip to black; an
extractor that returns NaN features would give a NaN (or, through covariances, an arbitrary)
FID. ``require_finite`` stops that at the source with an error naming the component, so no
record ever holds a number computed from NaN.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from evalsuite.errors import EvalsuiteError

T = TypeVar("T")


class NonFiniteError(EvalsuiteError):
    """A model or feature extractor produced NaN or infinite values."""


def _as_numpy(x: Any) -> np.ndarray:
    """A numpy view of an array or (any-device) torch tensor, without importing torch."""
    if hasattr(x, "detach"):  # a torch tensor: half precision and GPU tensors included
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def require_finite(x: T, component: str) -> T:
    """Return ``x`` unchanged if every value is finite; else raise ``NonFiniteError`` naming
    ``component`` and how many values are NaN / infinite.

    Only float data can hold NaN: integer arrays pass without a scan.
    """
    arr = _as_numpy(x)
    if not np.issubdtype(arr.dtype, np.floating) or np.isfinite(arr).all():
        return x
    raise non_finite_error(component, int(np.isnan(arr).sum()), int(np.isinf(arr).sum()),
                           arr.size)


def non_finite_error(component: str, nan: int, inf: int, size: int) -> NonFiniteError:
    """The error ``require_finite`` raises: ``component`` and how many of ``size`` values
    are NaN / infinite (also raised by checks that count on the device)."""
    return NonFiniteError(
        f"{component} produced non-finite values ({nan} NaN, {inf} infinite of {size}); "
        "nothing computed from them is kept. Check the weights (a checkpoint with NaN or "
        "overflowing values, or float16 where the model needs float32) and the inputs.")
