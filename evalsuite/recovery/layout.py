"""Names in a recovery folder (``evalsuite.recovery.checkpoint`` describes the layout); no
torch, so ``evalsuite doctor`` can walk the folders without it."""

from __future__ import annotations

from pathlib import Path

STEP_PREFIX = "step-"
UNET_WEIGHTS = "diffusion_pytorch_model.safetensors"


def step_dirs(folder: Path) -> list[Path]:
    """Complete step checkpoints under ``folder/checkpoints``, oldest first."""
    root = folder / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX))
