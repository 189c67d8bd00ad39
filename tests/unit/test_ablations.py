"""Ablation specs: presets and their exact parameter counts, YAML configs, validation errors.

Forward passes of every ablation and pair: test_ablation_pairs.py; weight surgery and the
save/reload round trip: test_ablation_surgery.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from evalsuite.ablations import (
    ABLATIONS,
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
    apply_ablations,
    build_ablated_unet,
    spec_from_dict,
    spec_to_dict,
)
from evalsuite.errors import ConfigError
from evalsuite.models.presets import PRESETS, SD15_UNET_CONFIG, build_preset_unet
from evalsuite.models.tiny import TINY_UNET_CONFIG
from evalsuite.profile import count_parameters

CONF = Path(__file__).resolve().parents[2] / "conf" / "ablation"


def n_params(unet: torch.nn.Module) -> int:
    return count_parameters(unet)


# ------------------------------------------------------------------------------------------
# Presets


def test_sd15_on_meta_has_exactly_the_published_parameter_count_in_seconds():
    start = time.perf_counter()
    unet = build_preset_unet("sd15")
    assert time.perf_counter() - start < 5
    assert n_params(unet) == 859_520_964
    assert all(p.is_meta for p in unet.parameters())


@pytest.mark.parametrize(
    ("preset", "expected"),
    # Derived by building the ablation lists below; equal to BK-SDM's model card counts.
    [("bk_sdm_base", 579_384_964), ("bk_sdm_small", 482_346_884), ("bk_sdm_tiny", 323_384_964)],
)
def test_bk_sdm_presets_match_the_model_card(preset, expected):
    assert n_params(build_preset_unet(preset)) == expected


def test_bk_sdm_tiny_has_the_released_config():
    config = build_preset_unet("bk_sdm_tiny").config
    assert tuple(config.block_out_channels) == (320, 640, 1280)
    assert tuple(config.down_block_types) == ("CrossAttnDownBlock2D",) * 3
    assert tuple(config.up_block_types) == ("CrossAttnUpBlock2D",) * 3
    assert config.layers_per_block == 1 and config.mid_block_type is None


def test_paper_like_presets_shrink_sd15_as_derived():
    # Regression values derived on this machine (see evalsuite/models/presets.py).
    assert n_params(build_preset_unet("mobilediffusion_like")) == 385_331_524
    assert n_params(build_preset_unet("snapfusion_like")) == 749_481_604


def test_snapfusion_like_has_the_published_block_counts():
    unet = build_preset_unet("snapfusion_like")

    def count(block, kind):
        from evalsuite.ablations import RemovedResnet, RemovedTransformer

        removed = RemovedTransformer if kind == "attentions" else RemovedResnet
        mods = getattr(block, kind, None) or []
        if kind == "attentions":
            return sum(len(m.transformer_blocks) for m in mods if not isinstance(m, removed))
        return sum(not isinstance(m, removed) for m in mods)

    d, u, mid = unet.down_blocks, unet.up_blocks, unet.mid_block
    # SnapFusion final UNet: (cross-attention blocks, residual blocks) per stage.
    assert (count(d[0], "attentions"), count(d[0], "resnets")) == (0, 2)
    assert (count(d[1], "attentions"), count(d[1], "resnets")) == (2, 2)
    assert (count(d[2], "attentions"), count(d[2], "resnets")) == (2, 1)
    inner_res = count(d[3], "resnets") + count(mid, "resnets") + count(u[0], "resnets")
    assert (count(mid, "attentions"), inner_res) == (1, 4)
    assert (count(u[1], "attentions"), count(u[1], "resnets")) == (6, 2)
    assert (count(u[2], "attentions"), count(u[2], "resnets")) == (3, 3)
    assert (count(u[3], "attentions"), count(u[3], "resnets")) == (0, 3)


def test_mobilediffusion_like_has_twelve_resblocks():
    unet = build_preset_unet("mobilediffusion_like")
    resnets = sum(len(getattr(b, "resnets", [])) for b in [*unet.down_blocks, unet.mid_block, *unet.up_blocks])
    assert resnets == 12


def test_presets_record_their_specs():
    unet = build_preset_unet("bk_sdm_tiny")
    record = unet.config["evalsuite_ablations"]
    assert [d["name"] for d in record["specs"]] == ["prune_resblocks", "drop_stages"]
    assert record["base_config"]["block_out_channels"] == [320, 640, 1280, 1280]


# ------------------------------------------------------------------------------------------
# YAML configs


def _single_ablation_yamls() -> list[Path]:
    """conf/ablation files for one ablation (``preset_*`` files bundle a preset's list)."""
    return [p for p in CONF.glob("*.yaml") if not p.stem.startswith("preset_")]


def test_every_ablation_has_a_yaml_whose_defaults_match_the_class():
    assert sorted(p.stem for p in _single_ablation_yamls()) == sorted(ABLATIONS)
    for path in _single_ablation_yamls():
        cfg = OmegaConf.load(path)
        assert list(cfg) == [path.stem]
        spec = hydra.utils.instantiate(cfg[path.stem])
        assert spec.name == path.stem
        assert spec == ABLATIONS[path.stem]()
        assert path.read_text().startswith("#")


def test_hydra_composes_a_list_in_order():
    GlobalHydra.instance().clear()  # another test may have left Hydra initialised
    with initialize_config_dir(config_dir=str(CONF.parent), version_base=None):
        cfg = compose(config_name=None, overrides=["+ablation=[shared_kv,ffn_ratio,no_sa_highres]"])
    specs = [hydra.utils.instantiate(c) for c in cfg.ablation.values()]
    assert [s.name for s in specs] == ["shared_kv", "ffn_ratio", "no_sa_highres"]
    assert specs[2].levels == (1, 2)  # ListConfig became a hashable tuple
    build_ablated_unet(TINY_UNET_CONFIG, specs)


def test_spec_dict_round_trip():
    for cls in ABLATIONS.values():
        spec = cls()
        data = spec_to_dict(spec)
        assert data["name"] == spec.name and spec_from_dict(data) == spec
    assert spec_to_dict(NoSelfAttention(levels=[2])) == {"name": "no_sa_highres", "params": {"levels": [2]}}


# ------------------------------------------------------------------------------------------
# Invalid parameters and combinations


def expect_error(ablation: str, param: str | None, call) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert f"ablation '{ablation}'" in message
    if param:
        assert f"parameter '{param}'" in message
    return info.value


@pytest.mark.parametrize(
    ("cls", "kwargs", "param"),
    [
        (FFNRatio, {"ratio": 0}, "ratio"),
        (FFNRatio, {"ratio": -6}, "ratio"),
        (FFNRatio, {"keep": "random"}, "keep"),
        (NoSelfAttention, {"levels": [3]}, "levels"),
        (NoSelfAttention, {"levels": []}, "levels"),
        (NoTransformer, {"levels": [1, 1]}, "levels"),
        (SharedKV, {"self_attention": False, "cross_attention": False}, "self_attention"),
        (ReluAttention, {"cross_attention": "yes"}, "cross_attention"),
        (PruneResblocks, {"layers_per_block": -1}, "layers_per_block"),
        (PruneResblocks, {"mid_block": 0}, "mid_block"),
        (DropStages, {"count": 0}, "count"),
        (MoreTransformers, {"depths": [1, 0, 1, 1]}, "depths"),
        (DropBlocks, {"actions": ["down_blocks.0.convs.1"]}, "actions"),
        (DropBlocks, {"actions": ["mid_block.resnets.0", "mid_block.resnets.0"]}, "actions"),
        (SeparableConv, {"levels": [0]}, "levels"),
    ],
)
def test_invalid_parameters_fail_at_construction(cls, kwargs, param):
    expect_error(cls.name, param, lambda: cls(**kwargs))


def test_misspelt_parameter_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="ration"):
        FFNRatio(ration=6)


@pytest.mark.parametrize(
    ("spec", "param", "fragment"),
    [
        (NoSelfAttention(levels=(16,)), "levels", "level 16 does not exist"),
        (NoTransformer(levels=(16,)), "levels", "level 16 does not exist"),
        (SeparableConv(levels=(32,)), "levels", "does not exist"),
        (DropBlocks(actions=("down_blocks.4.resnets.0",)), "actions", "has 4 down_blocks"),
        (DropBlocks(actions=("down_blocks.3.attentions.0",)), "actions", "without attention"),
        (DropBlocks(actions=("down_blocks.1.resnets.0",)), "actions", "changes the width 32 -> 64"),
        (DropBlocks(actions=("up_blocks.1.resnets.3",)), "actions", "has 3 resnets"),
        (PruneResblocks(layers_per_block=(1, 1)), "layers_per_block", "has 2 entries"),
        (PruneResblocks(layers_per_block=(1, 0, 1, 1)), "layers_per_block", "changes width 32 -> 64"),
        (DropStages(count=4), "count", "at least one must remain"),
        (MoreTransformers(depths=(1, 1, 1)), "depths", "has 3 entries"),
        (MoreTransformers(depths=(1, 1, 1, 1), up_depths=(1, 1, 1, 2)), "up_depths", "no transformer blocks"),
    ],
)
def test_parameters_the_model_cannot_take_fail_before_building(spec, param, fragment):
    error = expect_error(spec.name, param, lambda: build_ablated_unet(TINY_UNET_CONFIG, [spec]))
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("specs", "ablation", "param"),
    [
        ([NoSelfAttention(levels=(1, 2)), NoTransformer(levels=(1,))], "no_sa_highres", "levels"),
        ([NoTransformer(levels=(2,)), NoSelfAttention(levels=(2,))], "no_sa_highres", "levels"),
        ([NoSelfAttention(levels=(1,)), DropBlocks(actions=("up_blocks.3.attentions.0",))], "no_sa_highres", "levels"),
        ([MoreTransformers(depths=(2, 1, 1, 1)), NoTransformer(levels=(1,))], "more_transformers_middle", "depths"),
        ([NoTransformer(levels=(1,)), MoreTransformers(depths=(2, 1, 1, 1))], "more_transformers_middle", "depths"),
        ([NoTransformer(levels=(1,)), DropBlocks(actions=("down_blocks.0.attentions.0",))], "drop_blocks", "actions"),
        ([PruneResblocks(layers_per_block=1), DropBlocks(actions=("down_blocks.0.resnets.1",))], "drop_blocks", "actions"),
        ([SeparableConv(levels=(8,)), DropStages(count=1)], "separable_conv", "levels"),
        ([DropStages(count=1), SeparableConv(levels=(8,))], "separable_conv", "levels"),
        ([PruneResblocks(mid_block=False), PruneResblocks(mid_block=False)], "prune_resblocks", None),
        ([PruneResblocks(layers_per_block=1, mid_block=False), NoTransformer(levels=(8,))], "no_transformer_highres", "levels"),
    ],
)
def test_contradicting_combinations_fail_naming_ablation_and_parameter(specs, ablation, param):
    expect_error(ablation, param, lambda: build_ablated_unet(TINY_UNET_CONFIG, specs))


def test_apply_validates_everything_before_changing_the_model():
    torch.manual_seed(0)
    unet = build_ablated_unet(TINY_UNET_CONFIG, [], device="cpu")
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    processors = dict(unet.attn_processors)
    # The first spec is fine and would change the model; the second fails only in the (meta)
    # dry run, when it finds no self-attention left to share.
    bad = [NoSelfAttention(levels=(1, 2, 4, 8)), SharedKV(self_attention=True, cross_attention=False)]
    expect_error("shared_kv", "self_attention", lambda: apply_ablations(unet, bad))
    with pytest.raises(ConfigError):
        apply_ablations(unet, [SharedKV(), NoSelfAttention(levels=(16,))])
    after = unet.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert dict(unet.attn_processors) == processors
    assert unet.config["evalsuite_ablations"]["specs"] == []


def test_config_level_ablation_after_surgery_is_refused():
    unet = apply_ablations(build_ablated_unet(TINY_UNET_CONFIG, []), [SharedKV()])
    with pytest.raises(ConfigError, match="prune_resblocks.*apply the whole list"):
        apply_ablations(unet, [PruneResblocks()])


def test_sd15_config_is_accepted_by_every_ablation_alone():
    for cls in ABLATIONS.values():
        unet = build_ablated_unet(SD15_UNET_CONFIG, [cls()])
        assert n_params(unet) > 0


def test_presets_cover_the_issue_list():
    assert set(PRESETS) == {"sd15", "bk_sdm_base", "bk_sdm_small", "bk_sdm_tiny", "mobilediffusion_like", "snapfusion_like"}
