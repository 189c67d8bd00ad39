"""Build, apply, save and reload ablated UNets.

Order of application: config-level ablations first, in list order (each validated against the
config the previous ones produced), then the UNet is rebuilt once, then module-surgery
ablations in list order, validated against the final config. Levels and module paths named
by surgery ablations therefore refer to the architecture after the config-level changes.

``apply_ablations`` checks everything -- each spec's parameters, the combination, and a full
dry run on the meta device -- before it touches the model. The spec list and the original
config are recorded in the UNet's config under ``evalsuite_ablations``, so a saved variant
rebuilds itself: build from its config on meta, re-run the surgery, load the state dict.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

from evalsuite.ablations.base import AblationSpec, Layout
from evalsuite.ablations.blocks import DropBlocks
from evalsuite.ablations.config_edit import (
    RECORD_KEY,
    Sources,
    build_unet,
    canonical_config,
    copy_matching_weights,
    finalize_config,
)
from evalsuite.errors import ConfigError

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def spec_to_dict(spec: AblationSpec) -> dict[str, Any]:
    """``{"name": ..., "params": {...}}`` with JSON-friendly values (lists, not tuples)."""

    def plain(v: Any) -> Any:
        return [plain(x) for x in v] if isinstance(v, tuple) else v

    params = {f.name: plain(getattr(spec, f.name)) for f in dataclasses.fields(spec)}
    return {"name": spec.name, "params": params}


def spec_from_dict(data: Mapping[str, Any]) -> AblationSpec:
    """Inverse of ``spec_to_dict``."""
    cls = AblationSpec.registry.get(data.get("name"))
    if cls is None:
        raise ConfigError(f"unknown ablation {data.get('name')!r}; known: {sorted(AblationSpec.registry)}")
    return cls(**dict(data.get("params", {})))


# ----------------------------------------------------------------------------------------------
# Combination rules


def check_combination(specs: Sequence[AblationSpec]) -> None:
    """Reject repeated ablations and pairs that contradict each other (in either order)."""
    for spec in specs:
        if not isinstance(spec, AblationSpec):
            raise ConfigError(f"not an ablation spec: {spec!r}")
    names = [s.name for s in specs]
    for name in set(names):
        if names.count(name) > 1:
            raise ConfigError(f"ablation '{name}' is listed {names.count(name)} times; merge its parameters into one")
    for a, b in combinations(specs, 2):
        for x, y in ((a, b), (b, a)):
            _check_pair(x, y)


def _check_pair(x: AblationSpec, y: AblationSpec) -> None:
    if x.name == "no_sa_highres" and y.name == "no_transformer_highres":
        both = sorted(set(x.levels) & set(y.levels))
        if both:
            raise x.error("levels", f"level(s) {both} are also in no_transformer_highres.levels, which removes "
                          "those transformer blocks entirely; keep each level in one of the two")
    if x.name == "more_transformers_middle" and y.name == "no_transformer_highres":
        for param, levels in x.target_levels().items():
            both = sorted(levels & set(y.levels))
            if both:
                raise x.error(param, f"deepens level(s) {both}, whose transformers no_transformer_highres removes")


def _check_final(specs: Sequence[AblationSpec], final: Mapping[str, Any]) -> None:
    """Checks that need the final architecture: named levels must still exist, and a block
    that drop_blocks removes must not be one that no_sa_highres is asked to keep (CA + FFN)."""
    layout = Layout.of(final)
    later_drop = [s for s in specs if s.name == "drop_stages"]
    for spec in specs:
        for param, levels in spec.target_levels().items():
            gone = sorted(set(levels) - set(layout.levels))
            if gone and later_drop:
                raise spec.error(param, f"level(s) {gone} are removed by drop_stages; the two contradict")
    no_sa = next((s for s in specs if s.name == "no_sa_highres"), None)
    drop = next((s for s in specs if isinstance(s, DropBlocks)), None)
    if no_sa and drop:
        both = sorted(drop.levels_of("attentions", layout.n) & set(no_sa.levels))
        if both:
            raise no_sa.error("levels", f"drop_blocks.actions removes transformer blocks at level(s) {both}, "
                              "whose cross-attention and FFN no_sa_highres keeps; the two contradict")


# ----------------------------------------------------------------------------------------------
# Planning and application


def plan(
    base_config: Mapping[str, Any], specs: Sequence[AblationSpec], dry_run: bool = True
) -> tuple[dict[str, Any], Sources]:
    """Validate ``specs`` on ``base_config`` and return (final UNet kwargs, weight sources).

    With ``dry_run`` the whole list is also applied to a meta-device UNet, so a successful plan
    means the ablated UNet builds and every surgery finds its targets.
    """
    check_combination(specs)
    cfg = canonical_config(base_config)
    sources = Sources.identity(cfg)
    done: list[AblationSpec] = []
    for spec in (s for s in specs if s.config_level):
        spec.validate(_finalize(cfg, done))
        spec.edit_config(cfg, sources)
        done.append(spec)
    _check_final(specs, cfg)
    final = _finalize(cfg, done)
    for spec in (s for s in specs if not s.config_level):
        spec.validate(final)
    if dry_run:
        _run_surgery(build_unet(final, "meta"), specs)
    return final, sources


def _finalize(cfg: Mapping[str, Any], done: Sequence[AblationSpec]) -> dict[str, Any]:
    try:
        return finalize_config(cfg)
    except ValueError as exc:  # a combination diffusers' config cannot express
        raise ConfigError(f"ablations {', '.join(s.name for s in done)}: {exc}") from exc


def _run_surgery(unet: UNet2DConditionModel, specs: Sequence[AblationSpec]) -> None:
    for spec in (s for s in specs if s.config_level):  # their module-level parts (e.g. mid block)
        spec.apply(unet)
    for spec in (s for s in specs if not s.config_level):
        spec.apply(unet)


def _record(unet: UNet2DConditionModel, base_config: Mapping[str, Any], specs: Sequence[AblationSpec]) -> None:
    base = json.loads(json.dumps(finalize_config(canonical_config(base_config))))
    unet.register_to_config(**{RECORD_KEY: {"base_config": base, "specs": [spec_to_dict(s) for s in specs]}})


def recorded_specs(unet_or_config: Any) -> tuple[dict[str, Any] | None, list[AblationSpec]]:
    """(original config, spec list) recorded in an ablated UNet (``(None, [])`` if none)."""
    config = getattr(unet_or_config, "config", unet_or_config)
    record = config.get(RECORD_KEY) if isinstance(config, Mapping) else None
    if not record:
        return None, []
    return dict(record["base_config"]), [spec_from_dict(d) for d in record["specs"]]


def build_ablated_unet(
    unet_config: Mapping[str, Any], specs: Sequence[AblationSpec], device: str | torch.device = "meta"
) -> UNet2DConditionModel:
    """Build the ablated architecture from a config, without inheriting any weights.

    On ``meta`` nothing is allocated (parameter and FLOP counting); on ``cpu`` the weights are
    diffusers' fresh initialisation under the current torch RNG state.
    """
    specs = list(specs)
    final, _ = plan(unet_config, specs, dry_run=False)  # a fresh model: no state to protect
    unet = build_unet(final, device)
    _run_surgery(unet, specs)
    _record(unet, unet_config, specs)
    return unet


def apply_ablations(unet: UNet2DConditionModel, specs: Sequence[AblationSpec]) -> UNet2DConditionModel:
    """Apply ``specs`` to a (loaded) UNet, inheriting the weights that still fit.

    Validates everything first. Config-level ablations return a *new* UNet (rebuilt on the
    same device and dtype, weights copied by ``config_edit``'s rule); otherwise the UNet is
    changed in place and returned. An already-ablated UNet accepts more ablations; config-level
    ones only if it has had no surgery yet (re-apply the full list to the original instead).
    """
    specs = list(specs)
    base, prior = recorded_specs(unet)
    base = base if base is not None else dict(unet.config)
    if any(s.config_level for s in specs) and any(not s.config_level for s in prior):
        raise ConfigError(
            f"ablation '{next(s for s in specs if s.config_level).name}' changes the UNet config, but this UNet "
            "already has module-surgery ablations; apply the whole list to the original UNet in one call"
        )
    final, sources = plan(base, prior + specs)
    if any(s.config_level for s in specs):
        new = _rebuild_with_weights(unet, final, sources)
        _run_surgery(new, prior + specs)
        unet = new
    else:
        _run_surgery(unet, specs)
    _record(unet, base, prior + specs)
    return unet


def _rebuild_with_weights(unet: UNet2DConditionModel, final: Mapping[str, Any], sources: Sources) -> UNet2DConditionModel:
    """Build ``final`` on ``unet``'s device and dtype and copy the weights that fit.

    Built on meta and materialised uninitialised, so only modules that inherit nothing are
    initialised (diffusers' defaults are PyTorch's ``reset_parameters``): for SD v1.5 this
    avoids initialising ~0.9B parameters that would be overwritten anyway.
    """
    param = next(unet.parameters())
    new = build_unet(final, "meta")
    if new.dtype != param.dtype:
        new = new.to(param.dtype)
    new.train(unet.training)
    if param.device.type == "meta":
        return new
    new = new.to_empty(device=param.device)
    missing = copy_matching_weights(new, unet, sources)
    owners = {key.rpartition(".")[0] for key in missing}
    # Fresh init of modules that inherit nothing must not move the caller's RNG streams.
    with torch.random.fork_rng(devices=[param.device] if param.device.type == "cuda" else []):
        for path in sorted(owners):
            module = new.get_submodule(path)
            if not hasattr(module, "reset_parameters"):
                raise RuntimeError(f"cannot initialise {path} ({type(module).__name__}) after rebuilding")
            module.reset_parameters()
    return new


def save_ablated_unet(unet: UNet2DConditionModel, folder: str | Path) -> None:
    """Save config (with the ablation record) and weights (safetensors) to ``folder``."""
    unet.save_pretrained(str(folder), safe_serialization=True)


def load_ablated_unet(folder: str | Path, device: str | torch.device = "cpu") -> UNet2DConditionModel:
    """Rebuild a saved (ablated or not) UNet exactly: config -> surgery on meta -> strict load."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    base, specs = recorded_specs(config)
    unet = build_unet(config, "meta")
    _run_surgery(unet, specs)
    state = load_file(str(folder / WEIGHTS_NAME), device=str(device))
    load_state_dict_strict(unet, state, what=str(folder))
    if base is not None:
        _record(unet, base, specs)
    return unet.eval()


def load_state_dict_strict(unet: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Strict load (a meta-device ``unet`` is materialised on the state's device first); on a
    mismatch raise ConfigError listing missing, unexpected and wrongly shaped keys."""
    own = unet.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" ... ({len(keys)} in all)" if len(keys) > 8 else "") if keys else "none"

        raise ConfigError(
            f"checkpoint {what} does not fit the architecture. Missing keys: {show(missing)}. Unexpected keys: "
            f"{show(unexpected)}. Wrong shapes: {show(wrong)}. Likely cause: the checkpoint was saved from a "
            "different ablation list or base config than the one requested."
        )
    if any(t.is_meta for t in own.values()):
        # Materialise, then copy: freshly allocated (aligned) tensors, not views into the file
        # buffer -- CPU kernels can pick a different path for misaligned data and change the
        # last bits, which would break the exact save -> reload round trip.
        device = next(iter(state.values())).device if state else torch.device("cpu")
        unet.to_empty(device=device)
        dtypes = {t.dtype for t in state.values()}  # mixed-dtype checkpoints load as float32
        if len(dtypes) == 1 and (dtype := dtypes.pop()) != unet.dtype:
            unet.to(dtype)
    unet.load_state_dict(dict(state), strict=True)
