"""Recovery settings, checked before anything is built or written."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evalsuite.errors import ConfigError
from evalsuite.recovery.losses import LossWeights

METHODS = ("none", "kd")
MIXED_PRECISION = ("no", "fp16", "bf16")
#: Settings that do not change the trained weights: left out of the cache key.
NOT_IN_KEY = ("checkpoint_every", "keep_checkpoints", "stop_after", "progress")


@dataclass(frozen=True)
class RecoverySettings:
    """See ``evalsuite.config.recovery.RecoveryConfig`` for each field."""

    steps: int = 1000
    batch_size: int = 4
    grad_accumulation: int = 1
    lr: float = 5e-5
    weight_decay: float = 1e-2
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    loss: LossWeights = field(default_factory=LossWeights)
    ema_decay: float | None = None
    caption_dropout: float = 0.0
    seed: int = 0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    stop_after: int | None = None
    progress: bool = True

    @staticmethod
    def from_config(node: Any) -> RecoverySettings:
        """From the ``recovery`` config node (``method`` and ``data`` are not settings)."""
        d = {k: v for k, v in dict(node).items() if k not in ("method", "data")}
        d["loss"] = LossWeights(**dict(d.get("loss") or {}))
        d["adam_betas"] = tuple(float(b) for b in d.get("adam_betas", (0.9, 0.999)))
        return RecoverySettings(**d)

    def check(self, device: str) -> None:
        """Reject values that cannot train (ConfigError naming the key)."""
        for key in ("steps", "batch_size", "grad_accumulation", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ConfigError(f"recovery.{key} must be >= 1, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ConfigError(f"recovery.lr must be > 0, got {self.lr}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"recovery.adam_betas must be two numbers in [0, 1), got {list(self.adam_betas)}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"recovery.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if min(asdict(self.loss).values()) < 0 or max(asdict(self.loss).values()) == 0:
            raise ConfigError(f"recovery.loss weights must be >= 0 and not all 0, got {asdict(self.loss)}")
        if not 0 <= self.caption_dropout < 1:
            raise ConfigError(f"recovery.caption_dropout must be in [0, 1), got {self.caption_dropout}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"recovery.mixed_precision={self.mixed_precision!r}; choose one of "
                              f"{list(MIXED_PRECISION)}")
        if self.mixed_precision != "no" and not str(device).startswith("cuda"):
            raise ConfigError(f"recovery.mixed_precision={self.mixed_precision} needs device=cuda; "
                              f"on {device} recovery trains in float32 (mixed_precision=no)")
        if self.stop_after is not None and self.stop_after < 0:
            raise ConfigError(f"recovery.stop_after must be >= 0 or null, got {self.stop_after}")

    def key_fields(self) -> dict[str, Any]:
        """The settings that determine the trained weights (the cache key's part)."""
        d = asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return {k: v for k, v in d.items() if k not in NOT_IN_KEY}
