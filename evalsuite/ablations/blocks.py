"""SnapFusion-style block removal: drop cross-attention block j or residual block j of a stage.

SnapFusion's architecture evolution removes (and adds) whole cross-attention blocks
(a ``Transformer2DModel``) and residual blocks (a ``ResnetBlock2D``) stage by stage. A removed
module is replaced by a parameter-free stand-in, so module paths (and state-dict keys of every
other module) stay unchanged:

- a removed transformer returns its input (identity), as in SnapFusion's robust training;
- a removed residual block returns its input's first ``out_channels`` channels. In down
  stages and the mid block that is the identity (only same-width resnets may be removed);
  in up stages the block's input is ``cat(hidden, skip)``, so removal keeps ``hidden`` and
  drops that skip connection (only resnets whose hidden input has ``out_channels`` may go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from evalsuite.ablations.base import CROSS_DOWN, CROSS_MID, CROSS_UP, AblationSpec, Layout, set_submodule

_ACTION = re.compile(r"^(?:(down_blocks|up_blocks)\.(\d+)|mid_block)\.(resnets|attentions)\.(\d+)$")


class RemovedTransformer(nn.Module):
    """Stand-in for a removed ``Transformer2DModel``: the identity (in the tuple form blocks index)."""

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor]:
        return (hidden_states,)


class RemovedResnet(nn.Module):
    """Stand-in for a removed ``ResnetBlock2D``: keeps the first ``out_channels`` input channels."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None = None, *args: Any, **kwargs: Any):
        return input_tensor[:, : self.out_channels]

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}"


def action_level(action: str, n_stages: int) -> int:
    """The level of the stage an action path points into."""
    m = _ACTION.match(action)
    if m.group(1) is None:
        return 2 ** (n_stages - 1)
    i = int(m.group(2))
    return 2**i if m.group(1) == "down_blocks" else 2 ** (n_stages - 1 - i)


def check_action(action: str, layout: Layout) -> str | None:
    """Why ``action`` cannot be applied to a UNet with ``layout`` (None if it can)."""
    kind, stage, part, j = _ACTION.match(action).groups()
    j = int(j)
    if kind is None:
        if layout.mid_type is None:
            return "the UNet has no mid block"
        if layout.mid_type != CROSS_MID:
            return f"mid block type {layout.mid_type} is not supported"
        count = 2 if part == "resnets" else 1
        return None if j < count else f"the mid block has {count} {part}"
    i = int(stage)
    if i >= layout.n:
        return f"the UNet has {layout.n} {kind}"
    down = kind == "down_blocks"
    block_type = layout.down_types[i] if down else layout.up_types[i]
    count = layout.layers[i] if down else layout.layers[layout.n - 1 - i] + 1
    if part == "attentions" and block_type not in (CROSS_DOWN, CROSS_UP):
        return f"{kind}.{i} is a {block_type} without attention blocks"
    if j >= count:
        return f"{kind}.{i} has {count} {part}"
    if part == "resnets":
        if down:
            c_in, c_out = layout.down_resnet_channels(i, j)
        else:
            c_in, _, c_out = layout.up_resnet_channels(i, j)
        if c_in != c_out:
            return f"it changes the width {c_in} -> {c_out}, so it cannot become an identity"
    return None


@dataclass(frozen=True)
class DropBlocks(AblationSpec):
    """Remove cross-attention / residual blocks by module path (SnapFusion's A-[i, j] actions).

    ``actions``: paths such as ``down_blocks.0.attentions.1``, ``mid_block.resnets.1`` or
    ``up_blocks.2.resnets.0``, in the architecture after the config-level ablations. The
    default list is snapfusion_like's removals (see ``evalsuite.models.presets``).
    """

    name = "drop_blocks"
    actions: tuple[str, ...] = (
        "down_blocks.0.attentions.0",
        "down_blocks.0.attentions.1",
        "down_blocks.2.resnets.1",
        "down_blocks.3.resnets.1",
        "mid_block.resnets.1",
        "up_blocks.0.resnets.1",
        "up_blocks.1.resnets.1",
        "up_blocks.3.attentions.0",
        "up_blocks.3.attentions.1",
        "up_blocks.3.attentions.2",
    )

    def check_params(self) -> None:
        if not isinstance(self.actions, tuple) or not self.actions:
            raise self.error("actions", f"must be a non-empty list of module paths, got {self.actions!r}")
        for action in self.actions:
            if not isinstance(action, str) or not _ACTION.match(action):
                raise self.error(
                    "actions",
                    f"{action!r} is not '<down_blocks|up_blocks>.<i>.<resnets|attentions>.<j>' "
                    "or 'mid_block.<resnets|attentions>.<j>'",
                )
        if len(set(self.actions)) != len(self.actions):
            raise self.error("actions", "the same block is listed twice")

    def levels_of(self, part: str, n_stages: int) -> set[int]:
        return {action_level(a, n_stages) for a in self.actions if f".{part}." in a}

    def validate(self, unet_config: dict[str, Any]) -> None:
        layout = Layout.of(unet_config)
        for action in self.actions:
            reason = check_action(action, layout)
            if reason:
                raise self.error("actions", f"cannot remove {action}: {reason}")

    def apply(self, unet: nn.Module) -> None:
        self.validate(unet.config)
        for action in self.actions:
            module = unet.get_submodule(action)
            if ".resnets." in action:
                if not isinstance(module, ResnetBlock2D):
                    raise self.error("actions", f"{action} is not a residual block (already removed?)")
                set_submodule(unet, action, RemovedResnet(module.out_channels))
            else:
                if isinstance(module, RemovedTransformer):
                    raise self.error("actions", f"{action} was already removed")
                set_submodule(unet, action, RemovedTransformer())
