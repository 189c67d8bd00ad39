"""Whole-pipeline profiler: SD v1.5's components on the meta device, pipeline cost, the CLI's JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.models.presets import SD15_UNET_CONFIG
from evalsuite.models.tiny import TINY_UNET_CONFIG, TINY_VAE_CONFIG
from evalsuite.profile.components import (
    SD15_TEXT_CONFIG,
    SD15_VAE_CONFIG,
    component_configs,
    component_figures,
    profile_text_encoder,
    profile_vae,
)
from evalsuite.profile.document import ProfileRequest, markdown, profile_document
from evalsuite.profile.pipeline import pipeline_calls, pipeline_cost
from tiny_unet import one_thread  # noqa: F401 (autouse: one torch thread in this module)

ROOT = Path(__file__).resolve().parents[2]


def test_sd15_text_encoder_matches_clip_vit_l14_and_a_hand_count():
    te = profile_text_encoder(SD15_TEXT_CONFIG, batch=1, text_len=77)
    assert te["params"] == 123_060_480
    # Per layer, 77 tokens: q, k, v, out (768x768) and the MLP (768x3072, 3072x768), 2 FLOPs a MAC.
    linear = 12 * 2 * 77 * (4 * 768 * 768 + 2 * 768 * 3072)
    # QK^T and AV over all 77x77 pairs (the causal mask is applied, not skipped): 2 matmuls.
    attention = 12 * 2 * 2 * 77 * 77 * 768
    assert te["flops_by_kind"] == {"linear": linear, "attention": attention}
    assert te["flops"] == linear + attention == 13_298_503_680
    assert te["macs"] == te["flops"] // 2 and te["inputs"] == {"input_ids": [1, 77]}


def test_sd15_vae_decoder_and_encoder_with_their_quant_convs():
    vae = profile_vae(SD15_VAE_CONFIG, batch=1, resolution=512)
    dec, enc = vae["vae_decoder"], vae["vae_encoder"]
    assert dec["params"] == 49_490_199 and enc["params"] == 34_163_664
    assert dec["inputs"] == {"latent": [1, 4, 64, 64]} and enc["inputs"] == {"image": [1, 3, 512, 512]}
    # The mid block's single-head attention over 64x64 = 4096 tokens of width 512 (both sides):
    # q, k, v, out projections, then QK^T and AV.
    tokens, width = 64 * 64, 512
    for part in (dec, enc):
        assert part["flops_by_kind"]["linear"] == 2 * 4 * tokens * width * width
        assert part["flops_by_kind"]["attention"] == 2 * 2 * tokens * tokens * width
        assert part["flops"] == sum(part["flops_by_kind"].values())
    assert dec["flops"] == 2_514_518_933_504 and enc["flops"] == 1_116_658_466_816
    # SnapFusion Table 1: SD v1.5's decoder has 50M parameters.
    assert dec["params"] / 1e6 == pytest.approx(50, abs=1)
    # Batch scales every count linearly.
    assert profile_vae(SD15_VAE_CONFIG, batch=2, resolution=512)["vae_decoder"]["flops"] == 2 * dec["flops"]


def test_component_figures_fill_snapfusion_table1_rows():
    figures = component_figures("bk_sdm_small")  # every preset keeps SD v1.5's text encoder and VAE
    assert figures["text_encoder"] == {"params": 123_060_480, "gflops": 13_298_503_680 / 1e9}
    assert figures["vae_decoder"] == {"params": 49_490_199, "gflops": 2_514_518_933_504 / 1e9}
    assert figures["vae_encoder"]["params"] == 34_163_664


def test_pipeline_calls_follow_diffusers_cfg_rule():
    assert pipeline_calls(25, 7.5) == {"text_encoder": 2, "unet": 50, "vae_decoder": 1, "vae_encoder": 0}
    assert pipeline_calls(25, 1.0) == {"text_encoder": 1, "unet": 25, "vae_decoder": 1, "vae_encoder": 0}
    with pytest.raises(ValueError, match="steps"):
        pipeline_calls(0, 7.5)


def test_pipeline_cost_sums_calls_times_cost_and_lists_missing_parts():
    comps = {"text_encoder": {"flops": 10, "latency": {"median_ms": 1.0}},
             "unet": {"flops": 100, "latency": {"median_ms": 2.0}},
             "vae_decoder": {"flops": 1000, "latency": {"median_ms": 5.0}}, "vae_encoder": None}
    cost = pipeline_cost(comps, steps=3, guidance_scale=5.0)
    assert cost["flops_by_component"] == {"text_encoder": 20, "unet": 600, "vae_decoder": 1000}
    assert cost["flops"] == 1620 and cost["macs"] == 810 and cost["missing"] == ["vae_encoder"]
    assert cost["share"]["vae_decoder"] == pytest.approx(1000 / 1620)
    assert cost["latency_ms"] == pytest.approx(2 * 1.0 + 6 * 2.0 + 5.0)
    del comps["unet"]["latency"]
    assert "latency_ms" not in pipeline_cost(comps, steps=3, guidance_scale=5.0)


def test_sd15_document_has_every_component_and_the_pipeline_total():
    req = ProfileRequest(arch="sd15", path=None, resolution=512, steps=25, guidance_scale=7.5)
    doc = profile_document(req, dict(SD15_UNET_CONFIG), [])
    comps = doc["components"]
    assert {k: v["params"] for k, v in comps.items()} == {
        "text_encoder": 123_060_480, "unet": 859_520_964,
        "vae_decoder": 49_490_199, "vae_encoder": 34_163_664}
    assert comps["unet"]["flops"] == doc["profile"]["flops"] == 803_273_441_280
    assert sum(doc["profile"]["params_by_block"].values()) == 859_520_964
    assert sum(doc["profile"]["flops_by_block"].values()) == 803_273_441_280
    expected = 2 * comps["text_encoder"]["flops"] + 50 * comps["unet"]["flops"] + comps["vae_decoder"]["flops"]
    assert doc["pipeline"]["flops"] == expected and doc["pipeline"]["missing"] == []
    assert doc["settings"]["latent"] == 64 and doc["baseline"] is None
    table = markdown(doc, "sd15", "sd15")
    assert "| sd15 | 859,520,964 | 803.27 |" in table
    assert "| text encoder | 123,060,480 | 13.30 | 2 |" in table
    assert "| VAE decoder (+ post_quant_conv) | 49,490,199 | 2514.52 | 1 |" in table
    assert "| down_blocks.0 | 10,524,480 |" in table


def test_tiny_latency_on_every_component_adds_up_to_the_pipeline_estimate():
    req = ProfileRequest(arch="tiny", path=None, resolution=64, steps=2, guidance_scale=1.0,
                         latency=True, repeats=1)
    doc = profile_document(req, dict(TINY_UNET_CONFIG), [])
    lat = {k: c["latency"]["median_ms"] for k, c in doc["components"].items()}
    assert all(v > 0 for v in lat.values())
    assert doc["components"]["unet"]["latency"]["threads"] == 1
    pipe = doc["pipeline"]
    assert pipe["calls"]["unet"] == 2 and pipe["calls"]["text_encoder"] == 1
    assert pipe["latency_ms"] == pytest.approx(lat["text_encoder"] + 2 * lat["unet"] + lat["vae_decoder"])


def test_a_folder_profiles_the_components_it_has(tmp_path):
    for sub, config in (("unet", TINY_UNET_CONFIG), ("vae", TINY_VAE_CONFIG)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "config.json").write_text(json.dumps({"_class_name": "x", **config}))
    configs = component_configs(None, str(tmp_path))
    assert configs.text_encoder is None and configs.vae["block_out_channels"] == [16, 16, 32, 32]
    req = ProfileRequest(arch=None, path=str(tmp_path), resolution=64, steps=2)
    doc = profile_document(req, dict(TINY_UNET_CONFIG), [])
    assert doc["components"]["text_encoder"] is None and doc["pipeline"]["missing"] == ["text_encoder"]
    assert doc["components"]["vae_decoder"]["params"] > 0
    assert "| text encoder | not known |" in markdown(doc, "m", "m")


@pytest.mark.parametrize("field, value", [("batch", 0), ("steps", 0), ("resolution", 60), ("text_len", 78)])
def test_impossible_settings_are_refused(field, value):
    from evalsuite.errors import EvalsuiteError

    req = ProfileRequest(arch="tiny", path=None, **{"resolution": 64, field: value})
    with pytest.raises(EvalsuiteError, match="text_len|batch|steps|resolution"):
        profile_document(req, dict(TINY_UNET_CONFIG), [])


def _cli(args: list[str], cwd: Path, threads: str = "2") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "evalsuite.cli", "profile", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_json_is_one_document_on_stdout_and_saved(tmp_path):
    proc = _cli(["model=sd15", "profile.format=json", "threads=1", "profile.steps=25"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)  # the whole of stdout: exactly one document
    assert {k: v["params"] for k, v in doc["components"].items()} == {
        "text_encoder": 123_060_480, "unet": 859_520_964,
        "vae_decoder": 49_490_199, "vae_encoder": 34_163_664}
    assert all(doc["components"][k]["flops"] > 0 for k in doc["components"])
    assert doc["pipeline"]["calls"]["unet"] == 50
    assert doc["settings"]["threads"] == 1  # threads=1 beats OMP_NUM_THREADS=2
    saved = list((tmp_path / "results" / "profiles").glob("sd15-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == doc
    assert "wrote" in proc.stderr and not list(tmp_path.glob("results/profiles/*.tmp*"))


def test_cli_refuses_an_unknown_format_and_writes_nothing(tmp_path):
    proc = _cli(["profile.format=yaml"], tmp_path)
    assert proc.returncode == 2 and "profile.format='yaml'" in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "results").exists()


@pytest.mark.slow
def test_readme_pipeline_table_has_every_preset():
    from evalsuite.models.presets import PRESETS
    from evalsuite.profile.table import pipeline_table

    table = pipeline_table()
    assert "| sd15 | 123.1M / 13.3 | 859.5M / 803.3 | 49.5M / 2514.5 | 34.2M / 1116.7 | 42.70 |" in table
    assert all(f"| {name} |" in table for name in PRESETS)
    readme = (ROOT / "README.md").read_text()
    assert all(line in readme for line in table.splitlines())
