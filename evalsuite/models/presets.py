"""Architecture presets: SD v1.5's UNet config and the published variants as ablation lists.

Every variant is SD v1.5 plus a list of ablation specs (no hand-written UNet configs), so the
same definition builds on the meta device for counting and applies to loaded SD weights.

Derived on this machine (diffusers 0.42.1, meta device, ``evalsuite.profile``): UNet params,
and FLOPs of one forward at 64x64 latent, batch 1, 77 tokens, attention matmuls included
(in brackets: MACs without the attention matmuls, the convention of the "339G" figure):

    preset                params        GFLOPs   [MACs w/o attention]   published
    sd15                  859,520,964   803.3    [338.6 G]              859,520,964 (BK-SDM card)
    bk_sdm_base           579,384,964   523.0    [223.7 G]              579,384,964 (model card)
    bk_sdm_small          482,346,884   510.9    [217.6 G]              482,346,884 (model card)
    bk_sdm_tiny           323,384,964   485.5    [205.0 G]              323,384,964 (model card)
    mobilediffusion_like  385,331,524   293.7                           ~386M (secondary sources)
    snapfusion_like       749,481,604   604.1                           848M (paper)

The BK-SDM counts come out of the ablation lists below and equal the model card exactly.
mobilediffusion_like's closeness to ~386M is a coincidence of the choices listed in
PRESET_NOTES, not a fit (its widths stay SD's). ``python -m evalsuite.profile.table`` prints
these and every single ablation as a markdown table.
"""

from __future__ import annotations

from typing import Any

from evalsuite.ablations import (
    AblationSpec,
    DropBlocks,
    DropStages,
    FFNRatio,
    MoreTransformers,
    NoSelfAttention,
    NoTransformer,
    PruneResblocks,
    ReluAttention,
    SeparableConv,
    SharedKV,
    SwishGLU,
    build_ablated_unet,
)

# The UNet config shipped with runwayml/stable-diffusion-v1-5 (diffusers keys; defaults spelt out).
SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "only_cross_attention": False,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,  # legacy diffusers name: 8 heads
    "use_linear_projection": False,
    "upcast_attention": False,
}

_SNAPFUSION_DROPS = (
    "down_blocks.0.attentions.0",  # Down-1 (320): cross-attention 2 -> 0
    "down_blocks.0.attentions.1",
    "down_blocks.2.resnets.1",  # Down-3 (1280): residual 2 -> 1
    "down_blocks.3.resnets.1",  # Mid + 1/64 (1280): residual 7 -> 4 (which three: not published)
    "mid_block.resnets.1",
    "up_blocks.0.resnets.1",
    "up_blocks.1.resnets.1",  # Up-1 (1280): residual 3 -> 2
    "up_blocks.3.attentions.0",  # Up-3 (320): cross-attention 3 -> 0
    "up_blocks.3.attentions.1",
    "up_blocks.3.attentions.2",
)

PRESETS: dict[str, tuple[AblationSpec, ...]] = {
    "sd15": (),
    # BK-SDM: one resnet(+attention) per down stage, two per up stage; Small drops the mid
    # block; Tiny also drops the innermost (attention-free, 1280-wide) stage.
    "bk_sdm_base": (PruneResblocks(layers_per_block=1, mid_block=True),),
    "bk_sdm_small": (PruneResblocks(layers_per_block=1, mid_block=False),),
    "bk_sdm_tiny": (PruneResblocks(layers_per_block=1, mid_block=False), DropStages(count=1)),
    "mobilediffusion_like": (
        NoTransformer(levels=(1,)),
        PruneResblocks(layers_per_block=(1, 1, 1, 0), mid_block=True),
        MoreTransformers(depths=(1, 1, 2, 4)),
        NoSelfAttention(levels=(2,)),
        SharedKV(self_attention=True, cross_attention=True),
        SwishGLU(),
        ReluAttention(self_attention=True, cross_attention=True),
        FFNRatio(ratio=6),
        SeparableConv(levels=None),
    ),
    "snapfusion_like": (
        DropBlocks(actions=_SNAPFUSION_DROPS),
        # Up-1 (1280): cross-attention 3 -> 6, as two transformer blocks in each of its three slots.
        MoreTransformers(depths=(1, 1, 1, 1), up_depths=(1, 1, 2, 1)),
    ),
}

#: What each preset approximates (shown with profiles and in the README table).
PRESET_NOTES: dict[str, str] = {
    "sd15": "Stable Diffusion v1.5 UNet.",
    "bk_sdm_base": "Exact BK-SDM-Base UNet architecture (weights mapped as in BK-SDM's code).",
    "bk_sdm_small": "Exact BK-SDM-Small UNet architecture.",
    "bk_sdm_tiny": "Exact BK-SDM-Tiny UNet architecture.",
    "mobilediffusion_like": (
        "MobileDiffusion's UNet changes composed on SD v1.5. Approximated: channel widths stay SD's "
        "(the paper narrows them; not published exactly); transformer depth 2 at level 4 and 4 in the "
        "bottleneck is our choice for 'more transformers in the middle'; self-attention is removed at "
        "level 2 only (the paper also removes it in the outer 16x16 blocks); 22 -> 12 resnets is read as "
        "one per down stage, none in the innermost down stage, mid block kept (3 + 2 + 7 = 12); the "
        "published UNet is ~386M params (secondary sources)."
    ),
    "snapfusion_like": (
        "SnapFusion's final per-stage cross-attention / residual counts applied to SD v1.5 by removing "
        "blocks and deepening Up-1's transformers. Approximated: which residual blocks of 'Mid + 1/64' "
        "are removed (not published); a removed up-path residual block also drops its skip connection; "
        "the published UNet has 848M params."
    ),
}


def preset_specs(name: str) -> tuple[AblationSpec, ...]:
    """The ablation list defining preset ``name`` on SD v1.5."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


def build_preset_unet(name: str, device: str = "meta"):
    """Build a preset's UNet architecture (no weights on ``meta``)."""
    return build_ablated_unet(SD15_UNET_CONFIG, preset_specs(name), device=device)
