"""The tiny Stable-Diffusion-shaped pipeline: the default model, built in memory.

Same block layout as SD v1.5 (3 cross-attention down stages + a plain one, a cross-attention
mid block, a plain up stage + 3 cross-attention ones, two resnets per down stage, a
CLIP text encoder, an 8x-downsampling KL VAE), with widths small enough for a CPU to run a
full evaluation in seconds. Every ablation that applies to SD v1.5 applies here too, which is
what makes it a useful test bed. Weights are a fixed-seed random initialisation: it produces
structured noise, not pictures, and its metric values only test the machinery.
"""

from __future__ import annotations

from typing import Any

from evalsuite.io import sha256_json

TINY_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (32, 64, 64, 64),
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "attention_head_dim": 4,  # legacy diffusers name: the number of heads, as in SD v1.5
    "cross_attention_dim": 32,
    "norm_num_groups": 8,
}

TINY_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (16, 16, 32, 32),  # 4 blocks -> 8x downsampling, as in SD
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}

TINY_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,  # CLIP's BPE vocabulary, so the real tokenizer works
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "projection_dim": 32,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}

# SD v1.5's scheduler settings (the PNDM config shipped with the checkpoint).
SD_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}


def build_tiny_components(init_seed: int = 0, unet_config: dict[str, Any] | None = None,
                          vae_config: dict[str, Any] | None = None,
                          text_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the tiny pipeline's components (or ones of the same kinds with other configs,
    e.g. the shapes world's) with a fixed-seed initialisation.

    Each component is initialised from its own seed (``init_seed`` + offset) inside a forked
    RNG, so building the model neither depends on nor disturbs the global torch RNG.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from evalsuite.models.tokenizer import build_clip_tokenizer

    components: dict[str, Any] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        components["unet"] = UNet2DConditionModel(**(unet_config or TINY_UNET_CONFIG))
        torch.manual_seed(init_seed + 1)
        components["vae"] = AutoencoderKL(**(vae_config or TINY_VAE_CONFIG))
        torch.manual_seed(init_seed + 2)
        text = CLIPTextConfig(**(text_config or TINY_TEXT_CONFIG))
        components["text_encoder"] = CLIPTextModel(text)
    components["tokenizer"] = build_clip_tokenizer()
    components["scheduler"] = PNDMScheduler.from_config(SD_SCHEDULER_CONFIG)
    for name in ("unet", "vae", "text_encoder"):
        components[name].eval()
    return components


def tiny_architecture_sha256() -> str:
    """Identity of the tiny architecture: changes whenever any of its configs change."""
    return sha256_json({"unet": TINY_UNET_CONFIG, "vae": TINY_VAE_CONFIG,
                        "text": TINY_TEXT_CONFIG, "scheduler": SD_SCHEDULER_CONFIG})
