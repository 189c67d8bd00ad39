"""Retraining the shapes evaluators for a few steps: runs, is deterministic, logs its losses."""

from __future__ import annotations

import json

import pytest
import torch

from evalsuite.worlds.shapes.nets import load_net
from evalsuite.worlds.shapes.train_evaluators import FILES, train_all


@pytest.mark.slow
def test_retraining_a_few_steps_is_deterministic(tmp_path):
    torch.set_num_threads(1)
    logs = [train_all(tmp_path / name, seed=3, n_train=256, checker_steps=12, clip_steps=12,
                      batch=32, n_val=64) for name in ("a", "b")]
    assert logs[0]["sha256"] == logs[1]["sha256"]  # same seed and threads: same bytes
    log = json.loads((tmp_path / "a" / "train_log.json").read_text())
    assert log["sha256"] == logs[0]["sha256"] and log["settings"]["threads"] == 1
    for curve in log["loss"].values():
        assert curve[0][0] == 0 and curve[-1][0] == 11 and curve[-1][1] < curve[0][1]
    for kind, fname in FILES.items():
        load_net(kind, tmp_path / "a" / fname)  # strict load of what was written
    other = train_all(tmp_path / "c", seed=4, n_train=256, checker_steps=12, clip_steps=12,
                      batch=32, n_val=64)
    assert other["sha256"] != logs[0]["sha256"]
