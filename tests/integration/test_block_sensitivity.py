"""SnapFusion's block-sensitivity study, end to end on the tiny model (CPU, network blocked).

Quality must come from real `evalsuite run`s (one record per action, sharing the baseline's
samples) and latency from the per-block lookup table; the written table must say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from conftest import CONF_DIR, run_cli
from evalsuite.errors import EvalsuiteError

# Down, mid and up stages; both kinds of block.
ACTIONS = ["down_blocks.0.attentions.0", "mid_block.resnets.1", "up_blocks.1.attentions.2"]
FAST = ["study.prompts=4", "sampler.steps=2", "sampler.batch_size=4", "metrics=pixel",
        "study.latency.repeats=2"]


@pytest.fixture
def compose_study(tmp_path):
    """compose_study(*overrides) -> the composed `evalsuite study` config, results in tmp_path."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs
    from evalsuite.config.study import register_study_configs

    def _compose(*overrides: str):
        register_configs()
        register_study_configs()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("study", overrides=["world=tiny", f"paths.results_dir={tmp_path}/results",
                                               f"paths.assets_dir={tmp_path}/assets", *overrides])

    return _compose


@pytest.fixture
def one_thread():
    """One torch thread: on a busy 2-core machine two threads spin against other processes
    and the study runs several times slower (the latency footer reports the thread count)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _record(results: Path, run_id: str) -> dict:
    path = results / "records" / f"{run_id}.json"
    assert path.is_file(), f"row names record {run_id}, which does not exist"
    return json.loads(path.read_text())


def test_study_ranks_actions_by_real_runs_and_the_lookup_table(compose_study, tmp_path, one_thread):
    from evalsuite.studies.block_sensitivity import run_study

    results = tmp_path / "results"
    # threads=1 explicitly: without the setting a run takes what the machine allows (2 here),
    # whatever torch was set to before.
    res = run_study(compose_study(*FAST, "threads=1", f"study.actions=[{','.join(ACTIONS)}]"),
                    {"model": "tiny", "dataset": "demo"}, CONF_DIR)
    doc = json.loads(res.files["json"].read_text())
    table = doc["latency_table"]

    # One row per action asked for; the full action set minus the two width-changing resnets.
    assert sorted(r.action for r in res.rows) == sorted(ACTIONS) == sorted(doc["actions"])
    assert set(doc["rejected"]) == {"down_blocks.1.resnets.0", "up_blocks.3.resnets.0"}
    # Weight-free metrics rank (no CLIP weights here); reconstruction ones are not scored.
    assert res.rank_metric == "ssim/baseline"
    assert res.metrics == ["psnr/baseline", "ssim/baseline"]
    assert set(doc["not_scored"]) == {"psnr/reconstruction", "ssim/reconstruction"}

    base = _record(results, res.base_record_id)
    assert base["model"]["ablations"] == [] and base["dataset"]["count"] == 4
    for row in res.rows:
        # Latency: the lookup table's entry, measured once, not a per-variant timing.
        assert row.block_ms == table["blocks_ms"][row.action] > 0
        assert row.d_latency_ms == -table["blocks_ms"][row.action]
        assert row.latency_ms == pytest.approx(table["base_ms"] - table["blocks_ms"][row.action])
        # Quality: from the action's own record, an ordinary run with drop_blocks.
        rec = _record(results, row.record_id)
        assert rec["model"]["ablations"] == [{"name": "drop_blocks", "params": {"actions": [row.action]}}]
        assert rec["config"]["ablation"]["drop_blocks"]["actions"] == [row.action]
        assert rec["baseline_samples"] == base["samples"]["dir"]  # baseline generated once
        assert rec["samples"]["count"] == 4 and rec["dataset"]["sha256"] == base["dataset"]["sha256"]
        assert f"study:block_sensitivity/{res.study_id}" in rec["tags"]
        for m in res.metrics:
            assert row.metrics[m]["value"] == rec["metrics"][m]["value"]
        ssim = rec["metrics"]["ssim/baseline"]["value"]
        assert 0 < ssim < 1  # the removal changed the images
        assert row.metrics["ssim/baseline"]["score"] == pytest.approx((1 - ssim) / row.block_ms)
    assert [r.rank for r in res.rows] == [1, 2, 3]
    scores = [r.score(res.rank_metric) for r in res.rows]
    assert scores == sorted(scores)

    # The CSV holds the same ranking; its footer says where the latency column comes from.
    csv = pd.read_csv(res.files["csv"], comment="#")
    assert len(csv) == len(ACTIONS) and list(csv["rank"]) == [1, 2, 3]
    assert list(csv["action"]) == [r.action for r in res.rows]
    assert list(csv["record"]) == [r.record_id for r in res.rows]
    assert csv["ssim/baseline loss/ms"].is_monotonic_increasing
    for _, line in csv.iterrows():
        assert line["d_latency_ms"] == -table["blocks_ms"][line["action"]]
    footer = [ln for ln in res.files["csv"].read_text().splitlines() if ln.startswith("# ")]
    latency_note = next(ln for ln in footer if "lookup table" in ln)
    assert "on cpu with 1 torch thread," in latency_note and table["setup"]["threads"] == 1
    assert any(res.base_record_id in ln for ln in footer)

    md = res.files["md"].read_text()
    assert all(r.record_id in md for r in res.rows) and "lookup table" in md
    assert res.out_dir == results / "studies" / "block_sensitivity" / res.study_id
    with Image.open(res.files["png"]) as img:
        assert img.format == "PNG" and img.width > 400
    assert not list(res.out_dir.glob(".tmp-*"))  # atomic writes leave no temporaries


def test_study_refuses_ablations_and_unknown_actions_before_writing(compose_study, tmp_path):
    from evalsuite.studies.block_sensitivity import run_study

    with pytest.raises(EvalsuiteError, match="ablation=.*must be empty"):
        run_study(compose_study(*FAST, "ablation=[shared_kv]"), None, CONF_DIR)
    with pytest.raises(EvalsuiteError, match="width"):
        run_study(compose_study(*FAST, "study.actions=[down_blocks.1.resnets.0]"), None, CONF_DIR)
    with pytest.raises(EvalsuiteError, match="not an action"):
        run_study(compose_study(*FAST, "study.actions=[down_blocks.3.attentions.0]"), None, CONF_DIR)
    assert not (tmp_path / "results").exists()


def test_cli_composes_the_study_config(tmp_path):
    out = run_cli(["study", "study.max_actions=2", "metrics=pixel", "--cfg", "job"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "block_sensitivity" in out.stdout and "max_actions: 2" in out.stdout
    assert "sampler:" in out.stdout  # the run config's groups come with it
    bad = run_cli(["study", "study.max_actionz=2", "--cfg", "job"], tmp_path)
    assert bad.returncode != 0 and "max_actionz" in bad.stderr
