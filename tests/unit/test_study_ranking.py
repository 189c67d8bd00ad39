"""Block-sensitivity study, the parts that need no model run: the action set, the value
scores and ranking, and the variant configs (same hash as the equivalent `evalsuite run`)."""

from __future__ import annotations

import math

import pytest

from evalsuite.errors import EvalsuiteError
from evalsuite.studies.actions import action_set, select, short_label
from evalsuite.studies.ranking import (build_rows, choose_rank_metric, rank_rows,
                                       scorable_metrics)

TINY_REJECTED = {"down_blocks.1.resnets.0", "up_blocks.3.resnets.0"}  # they change the width


def test_tiny_action_set_is_every_block_drop_blocks_accepts():
    from evalsuite.ablations import DropBlocks, build_ablated_unet
    from evalsuite.models.tiny import TINY_UNET_CONFIG

    acts = action_set(TINY_UNET_CONFIG, [], ["attentions", "resnets"])
    # 3 cross-attention down stages x 2 + mid 1 + 3 cross-attention up stages x 3 transformers;
    # 4 x 2 down + 2 mid + 4 x 3 up resnets, minus the two that change the width.
    assert sum(".attentions." in a for a in acts.actions) == 6 + 1 + 9
    assert sum(".resnets." in a for a in acts.actions) == 8 + 2 + 12 - 2
    assert set(acts.rejected) == TINY_REJECTED
    assert all("width" in r for r in acts.rejected.values())
    assert len(set(acts.actions)) == len(acts.actions)
    # Each action really is a removal drop_blocks performs (on meta: no weights needed).
    for a in acts.actions[::5]:
        unet = build_ablated_unet(TINY_UNET_CONFIG, [DropBlocks(actions=(a,))], device="meta")
        assert type(unet.get_submodule(a)).__name__.startswith("Removed")


def test_sd15_action_set_and_a_preset_that_already_drops_blocks():
    from evalsuite.models.presets import PRESETS, SD15_UNET_CONFIG

    acts = action_set(SD15_UNET_CONFIG, PRESETS["sd15"], ["attentions"])
    assert len(acts.actions) == 16  # SD v1.5's 16 transformer blocks
    acts = action_set(SD15_UNET_CONFIG, PRESETS["sd15"], ["resnets"])
    assert len(acts.actions) + len(acts.rejected) == 22  # its 22 residual blocks
    with pytest.raises(EvalsuiteError, match="listed 2 times"):
        action_set(SD15_UNET_CONFIG, PRESETS["snapfusion_like"], ["attentions", "resnets"])


def test_select_subset_and_cap():
    cands = ["a.attentions.0", "a.resnets.0", "a.resnets.1"]
    rejected = {"a.resnets.0": "it changes the width"}
    assert select(cands, rejected, [], None) == ["a.attentions.0", "a.resnets.1"]
    assert select(cands, rejected, [], 1) == ["a.attentions.0"]
    assert select(cands, rejected, ["a.resnets.1"], None) == ["a.resnets.1"]
    with pytest.raises(EvalsuiteError, match="width"):
        select(cands, rejected, ["a.resnets.0"], None)
    with pytest.raises(EvalsuiteError, match="not an action"):
        select(cands, rejected, ["b.resnets.0"], None)
    assert short_label("down_blocks.0.attentions.1") == "d0.attn1"
    assert short_label("mid_block.resnets.1") == "mid.res1"


def _rec(run_id: str, **metrics: float) -> dict:
    meta = {"clip_score": (True, None), "fid_clean": (False, None),
            "psnr/baseline": (True, "baseline"), "ssim/reconstruction": (True, "reconstruction")}
    out = {}
    for name, value in metrics.items():
        key = name.replace("__", "/")
        hib, pairing = meta[key]
        out[key] = {"value": value, "higher_is_better": hib, **({"pairing": pairing} if pairing else {})}
    return {"run_id": run_id, "metrics": out}


def test_value_scores_signs_and_ranking():
    base = _rec("base", clip_score=0.30, fid_clean=20.0, ssim__reconstruction=0.5)
    records = {
        "x.attentions.0": _rec("r0", clip_score=0.28, fid_clean=22.0, psnr__baseline=30.0,
                               ssim__reconstruction=0.5),
        "x.resnets.0": _rec("r1", clip_score=0.29, fid_clean=21.0, psnr__baseline=math.inf,
                            ssim__reconstruction=0.5),
        "x.resnets.1": _rec("r2", clip_score=0.31, fid_clean=19.0, psnr__baseline=40.0,
                            ssim__reconstruction=0.5),
    }
    blocks = {"x.attentions.0": 2.0, "x.resnets.0": 4.0, "x.resnets.1": 1.0}
    metrics, left_out = scorable_metrics(base, list(records.values()))
    assert metrics == ["clip_score", "fid_clean", "psnr/baseline"]
    assert "reconstruction" in left_out["ssim/reconstruction"]
    assert choose_rank_metric(["clip_score", "psnr/baseline"], metrics) == "clip_score"
    assert choose_rank_metric(["lpips/baseline", "psnr/baseline"], metrics) == "psnr/baseline"
    with pytest.raises(EvalsuiteError, match="rank_by"):
        choose_rank_metric(["lpips/baseline"], metrics)

    rows = build_rows(list(records), records, base, blocks, 10.0, metrics)
    by = {r.action: r for r in rows}
    r0 = by["x.attentions.0"]
    assert r0.latency_ms == 8.0 and r0.d_latency_ms == -2.0
    # SnapFusion's value score: dCLIP/dLatency = (0.28 - 0.30) / (8 - 10)
    assert r0.metrics["clip_score"]["score"] == pytest.approx((0.28 - 0.30) / (8.0 - 10.0))
    assert r0.metrics["fid_clean"]["score"] == pytest.approx(2.0 / 2.0)  # FID up 2 for 2 ms
    assert r0.metrics["psnr/baseline"]["loss"] == pytest.approx(255**2 * 10 ** -3)  # MSE at 30 dB
    assert by["x.resnets.0"].metrics["psnr/baseline"]["loss"] == 0.0  # identical images
    assert by["x.resnets.1"].metrics["clip_score"]["score"] < 0  # CLIP improved: remove first

    ranked = rank_rows(rows, "clip_score")
    assert [r.action for r in ranked] == ["x.resnets.1", "x.resnets.0", "x.attentions.0"]
    assert [r.rank for r in ranked] == [1, 2, 3]
    scores = [r.score("clip_score") for r in ranked]
    assert scores == sorted(scores)
    ranked = rank_rows(rows, "psnr/baseline")
    assert ranked[0].action == "x.resnets.0"


def test_variant_config_hashes_like_the_same_evalsuite_run(tmp_path):
    """A study's variant is an ordinary run: same config hash as `evalsuite run` with
    ablation=[drop_blocks] ablation.drop_blocks.actions=[...] and the same overrides."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import CONF_DIR
    from evalsuite.config import register_configs
    from evalsuite.run import config_hash
    from evalsuite.studies.block_sensitivity import run_config
    from evalsuite.config.study import register_study_configs

    register_configs()
    register_study_configs()
    common = ["world=tiny", f"paths.results_dir={tmp_path}", "sampler.steps=3", "metrics=pixel"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        study = compose("study", overrides=[*common, "study.prompts=5"])
        variant = compose("config", overrides=[*common, "dataset.limit=5", "ablation=[drop_blocks]",
                                               "ablation.drop_blocks.actions=[mid_block.resnets.1]"])
        base = compose("config", overrides=[*common, "dataset.limit=5"])
    ours = run_config(study, ["mid_block.resnets.1"], CONF_DIR, tag="study:x")
    assert "study" not in ours and list(ours.tags) == ["study:x"]
    assert config_hash(ours) == config_hash(variant)
    assert config_hash(run_config(study, [], CONF_DIR)) == config_hash(base)
