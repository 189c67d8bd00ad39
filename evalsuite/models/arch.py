"""Match a loaded UNet to a named architecture preset.

``model=bk_sdm_small model.path=<folder>`` means "the BK-SDM-Small architecture, with weights
from this folder". Two kinds of folder make sense, and the UNet's parameter names and shapes
tell them apart:
- the folder already holds that architecture (a BK-SDM-Small checkpoint): used as it is;
- the folder holds SD v1.5 (the preset's base): the preset's ablations are applied to it,
  inheriting the weights that still fit (zero-shot surgery, as BK-SDM initialises its students).
Anything else is an error that says which parameters differ.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError

log = logging.getLogger(__name__)


def unet_signature(unet: Any) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer names with their shapes: the architecture, without the values."""
    return {k: tuple(v.shape) for k, v in unet.state_dict().items()}


def _describe_difference(have: dict, want: dict) -> str:
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    shape = sorted(k for k in set(have) & set(want) if have[k] != want[k])
    parts = [f"{len(missing)} missing (e.g. {missing[:2]})" if missing else "",
             f"{len(extra)} unexpected (e.g. {extra[:2]})" if extra else "",
             f"{len(shape)} with other shapes (e.g. {shape[:2]})" if shape else ""]
    return "; ".join(p for p in parts if p)


def fit_unet_to_preset(unet: Any, arch: str) -> tuple[Any, str]:
    """Return (unet with ``arch``'s architecture, "as_is" | "derived_from_base")."""
    from evalsuite.ablations import apply_ablations
    from evalsuite.models.presets import preset_specs

    how = fit_kind(unet_signature(unet), arch)
    if how == "as_is":
        return unet, how
    log.info("model.path holds SD v1.5: applying preset %s's ablations to it", arch)
    return apply_ablations(unet, list(preset_specs(arch))), how


def fit_kind(have: dict[str, tuple[int, ...]], arch: str) -> str:
    """"as_is" or "derived_from_base" for a UNet of signature ``have``; refused otherwise."""
    from evalsuite.ablations import build_ablated_unet
    from evalsuite.models.presets import SD15_UNET_CONFIG, build_preset_unet, preset_specs

    want = unet_signature(build_preset_unet(arch, device="meta"))
    if have == want:
        return "as_is"
    base = unet_signature(build_ablated_unet(SD15_UNET_CONFIG, (), device="meta"))
    if have == base and preset_specs(arch):
        return "derived_from_base"
    raise EvalsuiteError(f"the UNet in model.path is neither the {arch} architecture nor its SD v1.5 "
                         f"base: against {arch} it has {_describe_difference(have, want)}. Use "
                         "model=pretrained to load a folder as it is.")


def check_unet_folder(path: Path, arch: str) -> None:
    """Refuse, before any weight is read, a pipeline folder whose UNet (from its
    ``unet/config.json``, built on the meta device: no memory, well under a second) is neither
    ``arch`` nor its SD v1.5 base. A UNet saved by evalsuite (``evalsuite_ablations`` in its
    config) is rebuilt with its surgery only at load, and checked there."""
    config = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
    if "evalsuite_ablations" in config:
        return
    import torch
    from diffusers import UNet2DConditionModel

    try:
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(config)
    except Exception as e:  # noqa: BLE001  diffusers raises many types for a bad config
        raise EvalsuiteError(f"model.path={path}: unet/config.json does not describe a "
                             f"UNet2DConditionModel ({type(e).__name__}: {e})") from e
    fit_kind(unet_signature(unet), arch)
