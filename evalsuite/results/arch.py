"""Architecture-only figures (UNet parameters, GFLOPs) regenerated from configs, no weights.

An architecture is a base (a preset of ``evalsuite.models.presets``, or ``tiny``) plus a list
of ablation specs. It is built on the meta device with ``build_ablated_unet`` and measured
with ``evalsuite.profile``, so the numbers in a paper table come from the same definitions
that generate images, not from a copy of them. torch is imported only when a figure is asked
for (tables without architecture columns stay fast).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Mapping, Sequence

from evalsuite.errors import ConfigError


def counted() -> str:
    """What a FLOP count includes (shown in the footer of every table with a GFLOPs column)."""
    from evalsuite.profile import COUNTED

    return COUNTED


def known_bases() -> list[str]:
    from evalsuite.models.presets import PRESETS

    return sorted([*PRESETS, "tiny"])


def arch_of_record(record: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """(base, ablation dicts) of a record's model when its architecture is known by name.

    A checkpoint loaded from a folder has no named architecture (None): its parameter count
    is in the record (``model.unet_params``), measured on the loaded model.
    """
    model = record.get("model") or {}
    base = model.get("arch") if model.get("weights") == "random_init" else model.get("preset")
    if base not in known_bases():
        return None
    return base, list(model.get("ablations") or [])


def _base_config_and_specs(base: str) -> tuple[dict[str, Any], list[Any]]:
    from evalsuite.models.presets import PRESETS, SD15_UNET_CONFIG, preset_specs
    from evalsuite.models.tiny import TINY_UNET_CONFIG

    if base == "tiny":
        return dict(TINY_UNET_CONFIG), []
    if base in PRESETS:
        return dict(SD15_UNET_CONFIG), list(preset_specs(base))
    raise ConfigError(f"unknown architecture {base!r}; known: {', '.join(known_bases())}")


@lru_cache(maxsize=64)
def _figures(key: str) -> dict[str, float]:
    from evalsuite.ablations import build_ablated_unet, spec_from_dict
    from evalsuite.profile import count_flops, count_parameters

    spec = json.loads(key)
    config, specs = _base_config_and_specs(spec["base"])
    specs += [spec_from_dict(a) for a in spec["ablations"]]
    unet = build_ablated_unet(config, specs, device="meta")
    report = count_flops(unet)
    return {"params": count_parameters(unet), "gflops": report.total_flops / 1e9}


def arch_figures(base: str, ablations: Sequence[Mapping[str, Any]] = ()) -> dict[str, float]:
    """{"params": UNet parameter count, "gflops": GFLOPs of one forward} of base + ablations.

    GFLOPs are for the base config's latent size (64x64 for SD v1.5, i.e. 512 px images),
    batch 1, 77 text tokens; see ``counted()`` for what is counted.
    """
    key = json.dumps({"base": base, "ablations": [dict(a) for a in ablations]}, sort_keys=True)
    return dict(_figures(key))
