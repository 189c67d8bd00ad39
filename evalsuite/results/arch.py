"""Architecture-only figures (UNet parameters, GFLOPs) regenerated from configs, no weights.

An architecture is a named base (a preset of ``evalsuite.models.presets``, or ``tiny``) plus
a list of ablation specs. It is resolved and measured by ``evalsuite.profile.model`` (the same
code ``evalsuite run`` and ``evalsuite profile`` use), on the meta device, so the numbers in a
paper table come from the same definitions that generate images. torch is imported only when
a figure is asked for (tables without architecture columns stay fast).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Mapping, Sequence


def counted() -> str:
    """What a FLOP count includes (shown in the footer of every table with a GFLOPs column)."""
    from evalsuite.profile import COUNTED

    return COUNTED


def known_bases() -> list[str]:
    from evalsuite.models.presets import PRESETS

    return sorted([*PRESETS, "tiny"])


def arch_of_record(record: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """(base, ablation dicts) of a record's model when its architecture is known by name.

    A checkpoint folder without a named architecture gives None: its figures are in the
    record (``model.unet_params``, ``model.unet_gflops``), measured from its own config.
    """
    model = record.get("model") or {}
    base = model.get("arch") or model.get("preset")
    if base not in known_bases():
        return None
    return base, list(model.get("ablations") or [])


@lru_cache(maxsize=64)
def _figures(key: str) -> dict[str, float]:
    from evalsuite.ablations import spec_from_dict
    from evalsuite.profile.model import profile_unet, unet_architecture

    spec = json.loads(key)
    config, specs = unet_architecture(spec["base"], None)
    specs = list(specs) + [spec_from_dict(a) for a in spec["ablations"]]
    p = profile_unet(config, specs, sample_size=config["sample_size"])
    return {"params": p["unet_params"], "gflops": p["flops"] / 1e9}


def arch_figures(base: str, ablations: Sequence[Mapping[str, Any]] = ()) -> dict[str, float]:
    """{"params": UNet parameter count, "gflops": GFLOPs of one forward} of base + ablations.

    GFLOPs are for the base config's latent size (64x64 for SD v1.5, i.e. 512 px images),
    batch 1, 77 text tokens; see ``counted()`` for what is counted.
    """
    key = json.dumps({"base": base, "ablations": [dict(a) for a in ablations]}, sort_keys=True)
    return dict(_figures(key))
