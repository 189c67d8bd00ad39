"""Config-level ablations: a canonical, editable UNet config and the weight-mapping rule.

Config-level ablations (resnets per stage, mid block, stage removal, transformer depth,
transformer removal) edit a *canonical* config in which every per-stage value is an explicit
list and transformer depth is kept per stage in ``_depth`` ({"down", "up", "mid"}). Alongside,
``Sources`` records, for every stage of the edited UNet, which stage and which (resnet,
attention) slot of the original UNet its modules come from.

Weight-mapping rule (``copy_matching_weights``): a key of the rebuilt UNet is rewritten through
the slot mapping and copied when the original has that key with the same shape; anything else
keeps its fresh initialisation. Slot mapping when a stage keeps ``k`` of ``K`` resnets follows
BK-SDM's released code (``copy_weight_from_teacher``): down stages keep slots ``0..k-1``; up
stages keep slots ``0..k-1`` for their first ``k`` resnets and the original *last* slot for
their last one (the one fed by the stage-entry skip connection). Added transformer blocks
(deeper ``transformer_layers_per_block``) copy the block before them and get their three
output projections (``attn1.to_out``, ``attn2.to_out``, ``ff.net.2``) zeroed, so each adds
exactly zero to the residual stream and the model's outputs are unchanged at initialisation.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import UNet2DConditionModel

from evalsuite.ablations.base import CROSS_DOWN, Layout

RECORD_KEY = "evalsuite_ablations"
_PER_STAGE_KEYS = ("attention_head_dim", "num_attention_heads", "cross_attention_dim", "only_cross_attention")


@dataclass
class Sources:
    """For each stage of the edited UNet: (original stage index, original slot per slot)."""

    down: list[tuple[int, list[int | None]]] = field(default_factory=list)
    up: list[tuple[int, list[int | None]]] = field(default_factory=list)

    @staticmethod
    def identity(config: Mapping[str, Any]) -> Sources:
        layout = Layout.of(config)
        down = [(i, list(range(k))) for i, k in enumerate(layout.layers)]
        up = [(j, list(range(layout.layers[layout.n - 1 - j] + 1))) for j in range(layout.n)]
        return Sources(down, up)

    def prefix_map(self) -> dict[str, str]:
        """New module-path prefix -> original prefix, for every mapped stage and slot."""
        mapping: dict[str, str] = {}
        for kind, stages in (("down_blocks", self.down), ("up_blocks", self.up)):
            for new_i, (old_i, slots) in enumerate(stages):
                for sampler in ("downsamplers", "upsamplers"):
                    mapping[f"{kind}.{new_i}.{sampler}."] = f"{kind}.{old_i}.{sampler}."
                for new_j, old_j in enumerate(slots):
                    for part in ("resnets", "attentions"):
                        target = f"{kind}.{old_i}.{part}.{old_j}." if old_j is not None else "<new>."
                        mapping[f"{kind}.{new_i}.{part}.{new_j}."] = target
        return mapping


def canonical_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, editable copy of a UNet config: explicit per-stage lists, depth in ``_depth``."""
    cfg = {k: copy.deepcopy(v) for k, v in config.items() if not k.startswith("_") and k != RECORD_KEY}
    n = len(cfg["down_block_types"])
    for key in ("down_block_types", "up_block_types", "block_out_channels"):
        cfg[key] = list(cfg[key])
    layers = cfg.get("layers_per_block", 2)
    cfg["layers_per_block"] = [layers] * n if isinstance(layers, int) else list(layers)
    cfg["_depth"] = _depth_of(cfg, n)
    cfg.pop("transformer_layers_per_block", None)
    cfg.pop("reverse_transformer_layers_per_block", None)
    cfg.setdefault("mid_block_type", "UNetMidBlock2DCrossAttn")
    return cfg


def _stage_depth(value: Any) -> int:
    """One stage's depth; a per-layer list must be uniform (per-layer depth is not supported)."""
    if isinstance(value, int):
        return value
    values = set(value)
    if len(values) != 1:
        raise ValueError(f"per-layer transformer depths {list(value)} are not supported")
    return values.pop()


def _depth_of(cfg: Mapping[str, Any], n: int) -> dict[str, Any]:
    tlpb = cfg.get("transformer_layers_per_block", 1)
    down = [tlpb] * n if isinstance(tlpb, int) else [_stage_depth(v) for v in tlpb]
    reverse = cfg.get("reverse_transformer_layers_per_block")
    up = down[::-1] if reverse is None else [_stage_depth(v) for v in reverse]
    return {"down": down, "up": up, "mid": down[-1]}


def finalize_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a canonical config back into UNet2DConditionModel kwargs (as compact as possible)."""
    out = {k: v for k, v in cfg.items() if k != "_depth"}
    layers = list(cfg["layers_per_block"])
    out["layers_per_block"] = layers[0] if len(set(layers)) == 1 else layers
    depth = cfg["_depth"]
    down, up, mid = list(depth["down"]), list(depth["up"]), depth["mid"]
    # diffusers gives the mid block the last down stage's depth; only an attention-free last
    # down stage lets the two differ in the flat form.
    mid_fits = down[-1] == mid or cfg["down_block_types"][-1] != CROSS_DOWN
    if up == down[::-1] and mid_fits:
        flat = down[:-1] + [mid]
        out["transformer_layers_per_block"] = flat[0] if len(set(flat)) == 1 else flat
        return out
    if not mid_fits:
        raise ValueError("mid-block depth must equal the innermost down stage's depth when that stage has attention")
    # Nested form: one entry per layer (at least one, so the mid block can read its depth).
    nested = [[d] * max(1, k) for d, k in zip(down, layers)]
    nested[-1] = [mid] * max(1, layers[-1])
    out["transformer_layers_per_block"] = nested
    out["reverse_transformer_layers_per_block"] = [[d] * (k + 1) for d, k in zip(up, layers[::-1])]
    return out


def drop_innermost_stages(cfg: dict[str, Any], sources: Sources, count: int) -> None:
    """Remove the ``count`` innermost stages (down and mirrored up), keeping the mid block."""
    n = len(cfg["down_block_types"])
    keep = n - count
    for key in ("down_block_types", "block_out_channels", "layers_per_block"):
        cfg[key] = cfg[key][:keep]
    cfg["up_block_types"] = cfg["up_block_types"][count:]
    for key in _PER_STAGE_KEYS:
        if isinstance(cfg.get(key), (list, tuple)):
            cfg[key] = list(cfg[key])[:keep]
    depth = cfg["_depth"]
    depth["down"], depth["up"] = depth["down"][:keep], depth["up"][count:]
    sources.down, sources.up = sources.down[:keep], sources.up[count:]


def build_unet(config: Mapping[str, Any], device: str | torch.device = "meta") -> UNet2DConditionModel:
    """Build a UNet2DConditionModel from (finalised) kwargs on ``device`` (no weights on meta)."""
    accepted = inspect.signature(UNet2DConditionModel.__init__).parameters
    kwargs = {k: v for k, v in config.items() if k in accepted and k != "self"}
    with torch.device(device):
        return UNet2DConditionModel(**kwargs)


_BLOCK_KEY = re.compile(r"^((?:down_blocks|up_blocks)\.\d+\.(?:resnets|attentions)\.\d+\.|"
                        r"(?:down_blocks|up_blocks)\.\d+\.(?:downsamplers|upsamplers)\.)")
_TBLOCK = re.compile(r"^(.*\.transformer_blocks\.)(\d+)\.(.*)$")
_ZEROED = ("attn1.to_out.0.", "attn2.to_out.0.", "ff.net.2.")


def copy_matching_weights(new: torch.nn.Module, old: torch.nn.Module, sources: Sources) -> list[str]:
    """Copy the original's weights into the rebuilt UNet by the documented mapping rule.

    Returns the keys left at their fresh initialisation.
    """
    mapping = sources.prefix_map()
    old_sd, new_sd = old.state_dict(), new.state_dict()
    missing: list[str] = []
    with torch.no_grad():
        for key, tensor in new_sd.items():
            match = _BLOCK_KEY.match(key)
            src = key if match is None else mapping.get(match.group(1), "<new>.") + key[match.end():]
            if src in old_sd and old_sd[src].shape == tensor.shape:
                tensor.copy_(old_sd[src])
            else:
                missing.append(key)
        missing = _init_added_transformer_blocks(new_sd, missing)
    return missing


def _init_added_transformer_blocks(sd: dict[str, torch.Tensor], missing: list[str]) -> list[str]:
    """Added transformer blocks: copy of the previous block, output projections zeroed."""
    still: list[str] = []
    for key in sorted(missing, key=_tblock_order):
        m = _TBLOCK.match(key)
        prev = f"{m.group(1)}{int(m.group(2)) - 1}.{m.group(3)}" if m and int(m.group(2)) > 0 else None
        if prev is None or prev not in sd or prev in still:
            still.append(key)
            continue
        sd[key].copy_(sd[prev])
        if m.group(3).startswith(_ZEROED):
            sd[key].zero_()
    return still


def _tblock_order(key: str) -> tuple[str, int, str]:
    m = _TBLOCK.match(key)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else (key, -1, "")
