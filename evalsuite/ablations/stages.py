"""Config-level ablations: transformers per level, resnets per stage, mid block, stage count.

These change ``UNet2DConditionModel``'s config; the UNet is rebuilt from it and inherits the
original's weights by the rule in ``evalsuite.ablations.config_edit`` (BK-SDM's slot mapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from evalsuite.ablations.base import (
    CROSS_DOWN,
    CROSS_MID,
    CROSS_UP,
    PLAIN_DOWN,
    PLAIN_UP,
    AblationSpec,
    Layout,
    TransformerLevelsSpec,
)
from evalsuite.ablations.blocks import RemovedTransformer
from evalsuite.ablations.config_edit import Sources, drop_innermost_stages


@dataclass(frozen=True)
class NoTransformer(TransformerLevelsSpec):
    """Remove whole transformer blocks (SA + CA + FFN) at the given levels.

    Down/up stages become ``DownBlock2D`` / ``UpBlock2D`` through the config (their resnets
    keep their weights). A mid block at a listed level keeps its two resnets and has its
    transformer replaced by the identity (diffusers' attention-free mid block would have
    only one resnet).
    """

    name = "no_transformer_highres"
    config_level = True
    acts_as = "remove"
    levels: tuple[int, ...] = (1,)

    def edit_config(self, config: dict[str, Any], sources: Sources) -> None:
        layout = Layout.of(config)
        for level in self.levels:
            i, j = layout.down_index(level), layout.up_index(level)
            if config["down_block_types"][i] == CROSS_DOWN:
                config["down_block_types"][i] = PLAIN_DOWN
            if config["up_block_types"][j] == CROSS_UP:
                config["up_block_types"][j] = PLAIN_UP

    def apply(self, unet: nn.Module) -> None:
        mid_level = 2 ** (len(unet.down_blocks) - 1)
        if mid_level in self.levels and unet.mid_block is not None:
            for k in range(len(getattr(unet.mid_block, "attentions", []))):
                unet.mid_block.attentions[k] = RemovedTransformer()


@dataclass(frozen=True)
class PruneResblocks(AblationSpec):
    """Residual blocks per stage and mid block on/off (BK-SDM; MobileDiffusion's 22 -> 12).

    ``layers_per_block``: resnets (each with its transformer, where the stage has attention)
    per down stage, an int or one per stage; up stages get one more, as in diffusers. SD v1.5
    has 2 per stage = 22 resnets in all. The default ``[1, 1, 1, 0]`` with the mid block kept
    gives 3 + 2 + 7 = 12 (see presets for why). ``mid_block: false`` removes the mid block.
    Weight rule: BK-SDM's (``config_edit``): first slots kept, up stages keep their last.
    """

    name = "prune_resblocks"
    config_level = True
    layers_per_block: int | tuple[int, ...] = (1, 1, 1, 0)
    mid_block: bool = True

    def check_params(self) -> None:
        values = self.layers_per_block if isinstance(self.layers_per_block, tuple) else (self.layers_per_block,)
        if not values:
            raise self.error("layers_per_block", "must be an integer or a non-empty list")
        for value in values:
            self.require_int("layers_per_block", value, 0)
        self.require_bool("mid_block", self.mid_block)

    def target_levels(self) -> dict[str, set[int]]:
        if isinstance(self.layers_per_block, tuple):
            return {"layers_per_block": {2**i for i in range(len(self.layers_per_block))}}
        return {}

    def _layers(self, n: int) -> list[int]:
        lpb = self.layers_per_block
        return list(lpb) if isinstance(lpb, tuple) else [lpb] * n

    def validate(self, unet_config: dict[str, Any]) -> None:
        layout = Layout.of(unet_config)
        layers = self._layers(layout.n)
        if len(layers) != layout.n:
            raise self.error("layers_per_block", f"has {len(layers)} entries; the UNet has {layout.n} stages")
        for i, k in enumerate(layers):
            c_in, c_out = layout.down_resnet_channels(i, 0)
            if k == 0 and c_in != c_out:
                raise self.error("layers_per_block", f"stage {i} changes width {c_in} -> {c_out}, needs >= 1 resnet")
        if self.mid_block and layout.mid_type is None:
            raise self.error("mid_block", "the UNet has no mid block to keep (it was removed)")

    def edit_config(self, config: dict[str, Any], sources: Sources) -> None:
        layers = self._layers(len(config["down_block_types"]))
        for i, k in enumerate(layers):
            _, slots = sources.down[i]
            sources.down[i] = (sources.down[i][0], (slots + [None] * k)[:k])
        for j, k in enumerate(layers[::-1]):
            old_i, slots = sources.up[j]
            body = (slots[:-1] + [None] * k)[:k]
            sources.up[j] = (old_i, body + [slots[-1]])
        config["layers_per_block"] = layers
        if not self.mid_block:
            config["mid_block_type"] = None


@dataclass(frozen=True)
class DropStages(AblationSpec):
    """Remove the ``count`` innermost stages (down and mirrored up); BK-SDM-Tiny drops one.

    The new innermost down stage loses its downsampler (diffusers puts none on the last);
    the mid block, if any, stays and runs at the new innermost level -- at twice the
    resolution, so with the mid block kept FLOPs may even rise (BK-SDM-Tiny removes the mid
    block first). Weight rule: remaining
    stages keep their weights (up stages re-indexed), as in BK-SDM-Tiny's released code.
    """

    name = "drop_stages"
    config_level = True
    count: int = 1

    def check_params(self) -> None:
        self.require_int("count", self.count, 1)

    def validate(self, unet_config: dict[str, Any]) -> None:
        n = Layout.of(unet_config).n
        if self.count >= n:
            raise self.error("count", f"the UNet has {n} stages; at least one must remain")

    def edit_config(self, config: dict[str, Any], sources: Sources) -> None:
        drop_innermost_stages(config, sources, self.count)


@dataclass(frozen=True)
class MoreTransformers(AblationSpec):
    """Transformer depth per level (MobileDiffusion: more at low resolution).

    ``depths``: transformer blocks per attention module, one entry per level, highest
    resolution first (SD v1.5: ``[1, 1, 1, 1]``); it sets the down stage, the mid block (at
    the innermost level) and, unless ``up_depths`` is given, the up stage at that level.
    Levels without transformer blocks must say 1. Weight rule: existing blocks keep their
    weights; added blocks copy the previous block with zeroed output projections (so the
    model's outputs are unchanged until they are trained); removed blocks are the last ones.
    """

    name = "more_transformers_middle"
    config_level = True
    depths: tuple[int, ...] = (1, 1, 2, 4)
    up_depths: tuple[int, ...] | None = None

    def check_params(self) -> None:
        for param in ("depths", "up_depths"):
            values = getattr(self, param)
            if values is None and param == "up_depths":
                continue
            if not isinstance(values, tuple) or not values:
                raise self.error(param, f"must be a non-empty list with one depth per level, got {values!r}")
            for value in values:
                self.require_int(param, value, 1)

    def target_levels(self) -> dict[str, set[int]]:
        out = {"depths": {2**i for i, d in enumerate(self.depths) if d != 1}}
        if self.up_depths is not None:
            out["up_depths"] = {2**i for i, d in enumerate(self.up_depths) if d != 1}
        return out

    def validate(self, unet_config: dict[str, Any]) -> None:
        layout = Layout.of(unet_config)
        for param in ("depths", "up_depths"):
            values = getattr(self, param)
            if values is None:
                continue
            if len(values) != layout.n:
                raise self.error(param, f"has {len(values)} entries; the UNet has {layout.n} levels {list(layout.levels)}")
            for i, depth in enumerate(values):
                level = 2**i
                up = layout.up_types[layout.up_index(level)] == CROSS_UP
                if param == "depths":
                    mid = level == layout.mid_level and layout.mid_type == CROSS_MID
                    has = layout.down_types[i] == CROSS_DOWN or mid or (up and self.up_depths is None)
                else:
                    has = up
                if depth != 1 and not has:
                    raise self.error(param, f"level {level} has no transformer blocks to deepen (use 1 there)")

    def edit_config(self, config: dict[str, Any], sources: Sources) -> None:
        depth = config["_depth"]
        depth["down"] = list(self.depths)
        depth["mid"] = self.depths[-1]
        depth["up"] = list((self.up_depths or self.depths)[::-1])
