"""The generator interface: the only thing the producers know about a model.

(``typing.Protocol``; an evaluation protocol is something else: ``evalsuite.protocols``.)
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Generator(Protocol):
    """Turns prompts and per-prompt seeds into images."""

    resolution: int

    def generate(self, texts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """One uint8 (H, W, 3) image per (text, seed), stacked: (N, H, W, 3)."""
        ...
