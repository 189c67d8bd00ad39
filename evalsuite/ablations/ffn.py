"""Feed-forward ablations: expansion ratio and GEGLU -> SwiGLU (swish-gated) activation.

SD's transformer FFN is ``GEGLU(proj: Linear(C, 2*4C)) -> Linear(4C, C)``: the first 4C
outputs of ``proj`` are the values, the last 4C the gates (``h * gelu(g)``). The papers count
its expansion ratio as the width of ``proj``: 2*4C / C = 8 (MobileDiffusion trims it to 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.activations import GEGLU, SwiGLU
from diffusers.models.attention import FeedForward
from torch import nn

from evalsuite.ablations.base import AblationSpec, iter_transformer_blocks

_GATED = (GEGLU, SwiGLU)


def _iter_ffns(unet: nn.Module):
    """(path, FeedForward) for each transformer block's FFN."""
    for path, t2d, t in iter_transformer_blocks(unet):
        ff = getattr(t2d.transformer_blocks[t], "ff", None)
        if isinstance(ff, FeedForward):
            yield f"{path}.transformer_blocks.{t}.ff", ff


@dataclass(frozen=True)
class SwishGLU(AblationSpec):
    """GELU in the GEGLU gate replaced by swish/SiLU (MobileDiffusion, for fp16/int8 stability).

    Weight rule: the gated projection ``proj`` is reused as is (same keys, same values); only
    the nonlinearity changes, so outputs change but every weight is inherited.
    """

    name = "swish_glu"

    def apply(self, unet: nn.Module) -> None:
        changed = 0
        for _, ff in _iter_ffns(unet):
            glu = ff.net[0]
            if isinstance(glu, GEGLU):
                with torch.device("meta"):  # its own proj is a placeholder, replaced just below
                    swish = SwiGLU(glu.proj.in_features, glu.proj.out_features // 2, bias=glu.proj.bias is not None)
                swish.proj = glu.proj  # keep the trained projection object itself
                ff.net[0] = swish
                changed += 1
        if not changed:
            raise self.error(None, "no GEGLU feed-forward layers to convert")


@dataclass(frozen=True)
class FFNRatio(AblationSpec):
    """FFN expansion ratio as the papers count it (SD's GEGLU = 8; MobileDiffusion uses 6).

    Hidden width = round(ratio * C / 2) gated units. Weight rule when narrowing, by ``keep``:
    ``"first"`` keeps hidden units 0..n-1; ``"magnitude"`` keeps the n units with the largest
    ``||[w_value_j; w_gate_j]||_2 * ||w_out[:, j]||_2`` (kept in their original order). Either
    way the value row, gate row and output column of a kept unit move together, so ratio = 8
    is the identity. Widening adds units with fresh input rows and *zero* output columns, which
    leaves the model's outputs unchanged until they are trained.
    """

    name = "ffn_ratio"
    ratio: float = 6.0
    keep: str = "first"

    def check_params(self) -> None:
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not self.ratio > 0:
            raise self.error("ratio", f"must be a number > 0 (SD's GEGLU counts as 8), got {self.ratio!r}")
        if self.keep not in ("first", "magnitude"):
            raise self.error("keep", f"must be 'first' or 'magnitude', got {self.keep!r}")

    def validate(self, unet_config: dict[str, Any]) -> None:
        for width in unet_config["block_out_channels"]:
            if round(self.ratio * width / 2) < 1:
                raise self.error("ratio", f"{self.ratio} leaves no hidden units at width {width}")

    def apply(self, unet: nn.Module) -> None:
        ffns = list(_iter_ffns(unet))
        if not ffns:
            raise self.error("ratio", "the UNet has no transformer feed-forward layers")
        for path, ff in ffns:
            if not isinstance(ff.net[0], _GATED):
                raise self.error("ratio", f"{path} is not a gated (GEGLU/SwiGLU) FFN")
            _resize_ffn(ff, round(self.ratio * ff.net[0].proj.in_features / 2), self.keep)


def _resize_ffn(ff: FeedForward, width: int, keep: str) -> None:
    glu, out = ff.net[0], ff.net[2]
    old = glu.proj.out_features // 2
    if width == old:
        return
    dev, dtype = glu.proj.weight.device, glu.proj.weight.dtype
    proj = nn.Linear(glu.proj.in_features, 2 * width, bias=glu.proj.bias is not None, device=dev, dtype=dtype)
    down = nn.Linear(width, out.out_features, bias=out.bias is not None, device=dev, dtype=dtype)
    if dev.type != "meta":
        with torch.no_grad():
            _inherit(glu.proj, out, proj, down, old, width, keep)
    glu.proj, ff.net[2] = proj, down


def _inherit(proj: nn.Linear, out: nn.Linear, new_proj: nn.Linear, new_out: nn.Linear, old: int, width: int, keep: str) -> None:
    """Copy kept units (value row, gate row, output column) into the resized layers."""
    n = min(old, width)
    if keep == "magnitude" and width < old:
        w_in = torch.cat([proj.weight[:old], proj.weight[old:]], dim=1).float().norm(dim=1)
        score = w_in * out.weight.float().norm(dim=0)
        idx = torch.topk(score, n).indices.sort().values
    else:
        idx = torch.arange(n, device=proj.weight.device)
    new_proj.weight[:n] = proj.weight[idx]
    new_proj.weight[width : width + n] = proj.weight[old + idx]
    new_out.weight.zero_()
    new_out.weight[:, :n] = out.weight[:, idx]
    if proj.bias is not None:
        new_proj.bias[:n] = proj.bias[idx]
        new_proj.bias[width : width + n] = proj.bias[old + idx]
    if out.bias is not None:
        new_out.bias.copy_(out.bias)
