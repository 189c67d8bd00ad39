"""Retraining the shapes pipeline: each stage for a few steps, deterministic for a seed, and
the command line writes a folder that loads through the ordinary pretrained path."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from evalsuite.models.sources import ModelSource
from evalsuite.worlds.shapes.pipeline import WEIGHT_FILES, build_shapes_components
from evalsuite.worlds.shapes.pipeline_train import (
    TrainConfig,
    build_data,
    encode_latents,
    set_scaling_factor,
    train_unet,
    train_vae,
)
from evalsuite.worlds.shapes.train_pipeline import main
from tiny_unet import one_thread  # noqa: F401  (autouse: one torch thread)

FEW = TrainConfig(n_train=12, vae_steps=3, vae_batch=4, unet_steps=3, unet_batch=4, warmup=2,
                  log_every=1)


def _train_stages(cfg: TrainConfig) -> dict[str, dict[str, torch.Tensor]]:
    """Every stage, as the command line runs them; returns each component's weights."""
    torch.manual_seed(cfg.seed)
    c = build_shapes_components(init_seed=cfg.seed)
    data = build_data(cfg.n_train, cfg.seed, c["tokenizer"])
    vae_log = train_vae(c["vae"], data, cfg)
    latents = encode_latents(c["vae"], data.images)
    scale = set_scaling_factor(c["vae"], latents[0])
    unet_log = train_unet(c["unet"], c["text_encoder"], latents, scale, data, cfg)
    assert len(vae_log["loss"]) == cfg.vae_steps and len(unet_log["mse"]) == cfg.unet_steps
    assert c["vae"].config.scaling_factor == scale > 0
    return {k: {n: t.clone() for n, t in c[k].state_dict().items()} for k in WEIGHT_FILES}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_each_stage_retrains_deterministically_for_a_seed():
    start = {k: dict(build_shapes_components(0)[k].state_dict()) for k in WEIGHT_FILES}
    first, second = _train_stages(FEW), _train_stages(FEW)
    other = _train_stages(dataclasses.replace(FEW, seed=1))
    for k in WEIGHT_FILES:
        assert _equal(first[k], second[k]), f"{k}: same seed, different weights"
        assert not _equal(first[k], other[k]), f"{k}: the seed changes nothing"
        assert not _equal(first[k], start[k]), f"{k}: training changed nothing"


@pytest.mark.slow
def test_command_line_writes_a_pipeline_that_loads_like_sd(tmp_path):
    args = ["--out", str(tmp_path / "p"), "--threads", "1"]
    for f in dataclasses.fields(FEW):
        args += ["--" + f.name.replace("_", "-"), str(getattr(FEW, f.name))]
    assert main(args) == 0
    folder = tmp_path / "p"
    log = json.loads((folder / "train_log.json").read_text())
    assert set(log["weights_sha256"]) == set(WEIGHT_FILES)
    assert len(log["stages"]["unet"]["mse"]) == FEW.unet_steps and log["threads"] == 1
    assert (folder / "loss_curves.png").stat().st_size > 0
    assert (folder / "samples.png").stat().st_size > 0
    components = ModelSource("shapes", path=str(folder), resolution=64).load()
    assert components["vae"].config.scaling_factor == log["scaling_factor"]
    assert main(["--threads", "0", "--out", str(tmp_path / "q")]) == 2
    assert not (tmp_path / "q").exists()
