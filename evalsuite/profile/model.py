"""Profile a configured model's UNet: parameters and FLOPs on the meta device, latency on demand.

The architecture comes from the model config alone, with no weights: the tiny config, a
preset (SD v1.5 + its ablation list), or ``unet/config.json`` of a local folder; the run's
``ablation`` list is applied on top, exactly as ``evalsuite run`` would apply it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from evalsuite.errors import EvalsuiteError

VERSION = "1"  # bump when what is counted changes


def unet_architecture(arch: str | None, path: str | None) -> tuple[dict[str, Any], list[Any]]:
    """(base UNet config, the ablations that define the architecture on it)."""
    from evalsuite.models.presets import PRESETS, SD15_UNET_CONFIG
    from evalsuite.models.tiny import TINY_UNET_CONFIG

    if path is not None and arch in (None, "tiny"):
        cfg_file = Path(path).expanduser() / "unet" / "config.json"
        if not cfg_file.is_file():
            raise EvalsuiteError(f"model.path={path} has no unet/config.json to profile")
        from evalsuite.ablations import recorded_specs

        config = json.loads(cfg_file.read_text())
        base, specs = recorded_specs(config)
        if base is not None:  # a variant saved by evalsuite: its original config + ablations
            return dict(base), list(specs)
        return {k: v for k, v in config.items() if not k.startswith("_")}, []
    if arch == "tiny":
        return dict(TINY_UNET_CONFIG), []
    if arch in PRESETS:
        return dict(SD15_UNET_CONFIG), list(PRESETS[arch])
    raise EvalsuiteError(f"cannot profile model.arch={arch!r} without model.path")


def profile_unet(base_config: dict[str, Any], specs: Sequence[Any], sample_size: int,
                 batch: int = 1, text_len: int = 77, latency: bool = False,
                 repeats: int = 5, device: str = "cpu") -> dict[str, Any]:
    """Params and FLOPs (meta device), total and per block, of base_config + specs.

    ``latency``: also time one forward on ``device`` with random weights (seed 0).
    """
    import torch

    from evalsuite.ablations import build_ablated_unet, spec_to_dict
    from evalsuite.profile.flops import count_flops
    from evalsuite.profile.params import count_parameters, parameters_by_block
    from evalsuite.profile.pipeline import seeded, time_call

    unet = build_ablated_unet(base_config, list(specs), device="meta")
    flops = count_flops(unet, sample_size=sample_size, batch=batch, text_len=text_len)
    out: dict[str, Any] = {
        "version": VERSION,
        "ablations": [spec_to_dict(s) for s in specs],
        "unet_params": count_parameters(unet), "params_by_block": parameters_by_block(unet),
        "flops": flops.total_flops, "macs": flops.macs, "flops_by_kind": flops.by_kind,
        "flops_by_block": flops.by_block,
        "attention_share": flops.attention_share, "flops_counted": flops.counted,
        "inputs": {"latent": sample_size, "batch": batch, "text_len": text_len},
    }
    if latency:
        real = seeded(lambda d: build_ablated_unet(base_config, list(specs), device=d).eval(), device)
        dim = real.config.cross_attention_dim
        x = torch.randn(batch, real.config.in_channels, sample_size, sample_size, device=device)
        ctx = torch.randn(batch, text_len, dim if isinstance(dim, int) else dim[0], device=device)
        t = torch.full((batch,), 999, dtype=torch.long, device=device)
        out["latency"] = time_call(lambda: real(x, t, encoder_hidden_states=ctx), device, repeats)
    return out
