"""The text encoder and the VAE of a configured model: architecture, parameters and FLOPs.

Built on the meta device from configs alone (no weights, nothing downloaded), like the UNet in
``evalsuite.profile.model``. SD v1.5 and its presets use SD v1.5's own components (CLIP
ViT-L/14's text model and SD's AutoencoderKL); the tiny model uses its in-memory configs; a
``model.path`` folder its ``text_encoder/config.json`` and ``vae/config.json`` (a missing one
leaves that component out of the profile).

Derived on this machine (meta device, 512x512 images, 77 tokens, batch 1; SnapFusion's Table 1
gives 123M and 50M parameters for the text encoder and the decoder):

    component                          params        GFLOPs
    text encoder (CLIP ViT-L/14 text)  123,060,480      13.3
    VAE decoder + post_quant_conv       49,490,199    2514.5
    VAE encoder + quant_conv            34,163,664    1116.7
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError

# text_encoder/config.json of runwayml/stable-diffusion-v1-5 (CLIP ViT-L/14's text model).
SD15_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}

# vae/config.json of runwayml/stable-diffusion-v1-5.
SD15_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "sample_size": 512,
}


@dataclass(frozen=True)
class ComponentConfigs:
    """Configs of the non-UNet components; None: not known for this model (left out)."""

    text_encoder: dict[str, Any] | None
    vae: dict[str, Any] | None


def _folder_config(path: str, sub: str) -> dict[str, Any] | None:
    file = Path(path).expanduser() / sub / "config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise EvalsuiteError(f"cannot read {file} to profile it: {e}") from e
    return {k: v for k, v in config.items() if not k.startswith("_")}


def component_configs(arch: str | None, path: str | None) -> ComponentConfigs:
    """The text encoder's and VAE's configs for a model config (same rules as the UNet's)."""
    from evalsuite.models.presets import PRESETS
    from evalsuite.models.tiny import TINY_TEXT_CONFIG, TINY_VAE_CONFIG

    if path is not None and arch in (None, "tiny"):
        return ComponentConfigs(_folder_config(path, "text_encoder"), _folder_config(path, "vae"))
    if arch == "tiny":
        return ComponentConfigs(dict(TINY_TEXT_CONFIG), dict(TINY_VAE_CONFIG))
    if arch in PRESETS:
        return ComponentConfigs(dict(SD15_TEXT_CONFIG), dict(SD15_VAE_CONFIG))
    raise EvalsuiteError(f"cannot profile model.arch={arch!r} without model.path")


def build_text_encoder(config: dict[str, Any], device: str = "meta") -> Any:
    """A ``CLIPTextModel`` of ``config`` (random weights unless on meta)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    keep = {k: v for k, v in config.items() if k not in ("architectures", "transformers_version")}
    with torch.device(device):
        return CLIPTextModel(CLIPTextConfig(**keep)).eval()


def build_vae(config: dict[str, Any], device: str = "meta") -> Any:
    """An ``AutoencoderKL`` of ``config`` (random weights unless on meta)."""
    import torch
    from diffusers import AutoencoderKL

    with torch.device(device):
        return AutoencoderKL.from_config(config).eval()


def vae_factor(config: dict[str, Any]) -> int:
    """The VAE's spatial downsampling factor (8 for SD: one halving between blocks)."""
    return 2 ** (len(config["block_out_channels"]) - 1)


def text_inputs(encoder: Any, batch: int, text_len: int) -> Any:
    """Token ids (zeros) of shape (batch, text_len) on the encoder's device."""
    import torch

    limit = encoder.config.max_position_embeddings
    if not 1 <= text_len <= limit:
        raise EvalsuiteError(f"profile.text_len={text_len}: the text encoder takes 1..{limit} tokens")
    device = next(encoder.parameters()).device
    return torch.zeros(batch, text_len, dtype=torch.long, device=device)


def vae_inputs(vae: Any, batch: int, resolution: int) -> tuple[Any, Any]:
    """(latents for the decoder, images for the encoder) at ``resolution`` pixels."""
    import torch

    factor = vae_factor(dict(vae.config))
    if resolution % factor:
        raise EvalsuiteError(f"model.resolution={resolution} is not a multiple of the VAE's factor {factor}")
    param = next(vae.parameters())
    dev, dtype = param.device, param.dtype
    latent = torch.zeros(batch, vae.config.latent_channels, resolution // factor, resolution // factor,
                         device=dev, dtype=dtype)
    image = torch.zeros(batch, vae.config.in_channels, resolution, resolution, device=dev, dtype=dtype)
    return latent, image


def _summary(params: int, report: Any) -> dict[str, Any]:
    return {"params": params, "flops": report.total_flops, "macs": report.macs,
            "flops_by_kind": report.by_kind, "inputs": report.inputs}


def _params(*modules: Any) -> int:
    from evalsuite.profile.params import count_parameters

    return sum(count_parameters(m) for m in modules if m is not None)


def profile_text_encoder(config: dict[str, Any], batch: int, text_len: int) -> dict[str, Any]:
    """Params and FLOPs (meta device) of one text-encoder forward over ``text_len`` tokens."""
    from evalsuite.profile.flops import count_module_flops

    encoder = build_text_encoder(config)
    ids = text_inputs(encoder, batch, text_len)
    report = count_module_flops(encoder, lambda: encoder(ids), {"input_ids": list(ids.shape)}, by_block=False)
    return _summary(_params(encoder), report)


def profile_vae(config: dict[str, Any], batch: int, resolution: int) -> dict[str, dict[str, Any]]:
    """Decoder (with post_quant_conv) and encoder (with quant_conv): params and FLOPs (meta)."""
    from evalsuite.profile.flops import count_module_flops

    vae = build_vae(config)
    latent, image = vae_inputs(vae, batch, resolution)
    dec = count_module_flops(vae, lambda: vae.decode(latent), {"latent": list(latent.shape)}, by_block=False)
    enc = count_module_flops(vae, lambda: vae.encode(image), {"image": list(image.shape)}, by_block=False)
    post, quant = getattr(vae, "post_quant_conv", None), getattr(vae, "quant_conv", None)
    return {"vae_decoder": _summary(_params(vae.decoder, post), dec),
            "vae_encoder": _summary(_params(vae.encoder, quant), enc)}


def component_figures(arch: str, resolution: int = 512) -> dict[str, dict[str, float]]:
    """{"text_encoder" | "vae_decoder" | "vae_encoder": {"params", "gflops"}} of a named model
    (a preset or ``tiny``), batch 1, 77 tokens: the cells of SnapFusion Table 1's rows."""
    configs = component_configs(arch, None)
    out: dict[str, dict[str, float]] = {}
    if configs.text_encoder is not None:
        te = profile_text_encoder(configs.text_encoder, 1, configs.text_encoder["max_position_embeddings"])
        out["text_encoder"] = {"params": te["params"], "gflops": te["flops"] / 1e9}
    if configs.vae is not None:
        for name, part in profile_vae(configs.vae, 1, resolution).items():
            out[name] = {"params": part["params"], "gflops": part["flops"] / 1e9}
    return out
