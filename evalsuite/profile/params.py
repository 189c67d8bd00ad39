"""Parameter counting (works on the meta device: shapes only, no weights needed)."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters; shared (tied) parameters are counted once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameters_by_block(unet: nn.Module) -> dict[str, int]:
    """Parameters per top-level UNet part: conv_in, time_embedding, down_blocks.i, mid_block,
    up_blocks.i, conv_norm_out, conv_out (parts without parameters are left out)."""
    out: dict[str, int] = {}
    for name, child in unet.named_children():
        if isinstance(child, nn.ModuleList):
            for i, sub in enumerate(child):
                out[f"{name}.{i}"] = count_parameters(sub)
        else:
            n = count_parameters(child)
            if n:
                out[name] = n
    return out
