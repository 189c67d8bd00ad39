"""Schema of the ``recovery`` config group (``conf/recovery/``): fine-tuning an ablated UNet
from the unablated teacher by distillation before it is evaluated (``evalsuite.recovery``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class LossWeightsConfig:
    """BK-SDM's recipe: task (denoising MSE) + output KD + feature KD, each weighted."""

    task: float = 1.0
    output_kd: float = 1.0
    feature_kd: float = 1.0


@dataclass
class RecoveryConfig:
    """``method=none``: evaluate the ablation zero-shot. ``method=kd``: recover it first.

    ``data`` is a ``_target_`` node building a ``evalsuite.recovery.TrainingData``, chosen in
    the group ``recovery/data`` (``conf/recovery/data/``): ``folder``
    (``evalsuite.recovery.ImageFolder``: a folder of images with a captions file) or
    ``shapes`` (the shapes world's train split; the shapes world's default).
    Everything but ``checkpoint_every``, ``keep_checkpoints``, ``stop_after`` and ``progress``
    is part of the recovered weights' cache key.
    """

    method: str = "none"  # none | kd
    data: Dict[str, Any] = field(default_factory=dict)
    steps: int = 1000  # optimizer steps
    batch_size: int = 4  # images per micro-batch
    grad_accumulation: int = 1  # micro-batches per optimizer step
    lr: float = 5e-5
    weight_decay: float = 1e-2  # AdamW's
    adam_betas: Any = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-8
    loss: LossWeightsConfig = field(default_factory=LossWeightsConfig)
    ema_decay: Optional[float] = None  # e.g. 0.9999: the EMA weights are the recovered model
    caption_dropout: float = 0.0  # fraction of captions replaced by "" (CFG's unconditional branch)
    seed: int = 0  # data order, noise, timesteps and VAE posterior draws
    mixed_precision: str = "no"  # no | fp16 | bf16 (CUDA only)
    gradient_checkpointing: bool = False
    checkpoint_every: int = 100  # steps between checkpoints (also one at the end)
    keep_checkpoints: int = 2  # newest step checkpoints kept; older ones are removed
    stop_after: Optional[int] = None  # stop (as if killed) after this many steps: tests, budgets
    progress: bool = True  # tqdm bar with the loss


def register_recovery(cs: ConfigStore) -> None:
    """Register the group's schema (``recovery_schema``)."""
    cs.store(group="recovery", name="recovery_schema", node=RecoveryConfig)
