"""`evalsuite run` on the shapes world: the world metrics reach the record."""

from __future__ import annotations

import pytest

from conftest import read_records, run_cli


@pytest.mark.slow  # ~10 s CPU, up to a minute on a busy 2-core machine
def test_run_on_shapes_world_records_world_metrics(tmp_path):
    r = run_cli(["run", "dataset=shapes", "dataset.n=4", "reference=shapes", "metrics=shapes",
                 "sampler.steps=2", f"paths.results_dir={tmp_path}/results"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (record,) = read_records(tmp_path / "results")
    metrics = record["metrics"]
    for name in ("shapes_attr_acc", "shapes_clip_score", "fd_shapes", "kid_shapes"):
        assert name in metrics, (name, sorted(metrics), record.get("skipped_metrics"))
        weights = metrics[name]["weights"]
        records = weights.values() if "verified" not in weights else [weights]
        assert records and all(w["verified"] is True for w in records), weights
    acc = metrics["shapes_attr_acc"]
    assert 0.0 <= acc["value"] <= 1.0 and acc["n"] == 4
    assert set(acc["settings"]["breakdown"]["overall"]) >= {"shape", "colour", "position", "all"}
    assert metrics["fd_shapes"]["value"] > 0
