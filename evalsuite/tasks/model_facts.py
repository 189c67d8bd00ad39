"""A generation run's model: its ablation specs and architecture facts (params, FLOPs)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from evalsuite.config.build import build
from evalsuite.io import JsonCache


def build_ablations(cfg_ablation: DictConfig) -> list[Any]:
    """Instantiate the ablation specs in the order the config lists them.

    An option may build one spec or a sequence of them (``preset_*``: a model preset's list).
    """
    specs: list[Any] = []
    for key, node in (cfg_ablation or {}).items():
        built = build(node, f"ablation.{key}")
        specs.extend(built if isinstance(built, (list, tuple)) else [built])
    return specs


def specs_to_dicts(specs: list[Any]) -> list[dict[str, Any]]:
    """The record's form of ablation specs."""
    if not specs:
        return []
    from evalsuite.ablations import spec_to_dict  # torch: only when there are ablations

    return [spec_to_dict(s) for s in specs]


def architecture_facts(source: Any, specs: list[Any], cache: JsonCache, key: str) -> dict[str, Any]:
    """UNet parameters and FLOPs of the model + ablations, from its config on the meta device.

    Building the architecture also validates the ablations against it, so an ablation the
    model cannot take fails here, before any sample is generated. Cached per generation key.
    """
    facts = cache.get(key)
    if facts is None:
        # torch + diffusers: only on a cache miss, so a re-run starts without them
        from evalsuite.profile.model import profile_unet, unet_architecture

        base, preset = unet_architecture(source.arch, str(source.path) if source.path else None)
        p = profile_unet(base, preset + list(specs), sample_size=source.resolution // 8)
        facts = {"unet_params": p["unet_params"], "unet_gflops": p["flops"] / 1e9,
                 "flops_counted": f"one UNet forward, batch 1, latent {source.resolution // 8}, "
                                  f"{p['inputs']['text_len']} tokens; {p['flops_counted']}",
                 "profile_version": p["version"]}
        cache.put(key, facts)
    return facts
