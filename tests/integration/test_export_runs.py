"""Export after a run and with ``evalsuite export``: the trackers hold the record's numbers,
a second export finds the first, a missing package stops a run before any work, and a failed
export never costs the record."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import FAST, read_records, run_cli
from evalsuite.export.mlflow_tracker import mlflow_key
from evalsuite.export.wandb_tracker import run_folders
from wandb_log import read_run

pytest.importorskip("mlflow")
pytest.importorskip("wandb")


@pytest.fixture
def trackers(tmp_path, monkeypatch):
    """Overrides enabling both trackers inside tmp_path (W&B offline, MLflow file store)."""
    for key, value in {"WANDB_SILENT": "true", "WANDB_CONFIG_DIR": str(tmp_path / "wbconfig"),
                       "WANDB_CACHE_DIR": str(tmp_path / "wbcache"),
                       "WANDB_DATA_DIR": str(tmp_path / "wbdata")}.items():
        monkeypatch.setenv(key, value)
    return ["export.wandb.enabled=true", "export.wandb.mode=offline",
            f"export.wandb.dir={tmp_path}/wb", "export.mlflow.enabled=true",
            f"export.mlflow.tracking_uri=file:{tmp_path}/mlruns"]


def _mlflow_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file://{tmp_path}/mlruns")
    return client.search_runs([client.get_experiment_by_name("evalsuite").experiment_id])


def test_a_run_exports_its_record_and_evalsuite_export_finds_it(compose, tmp_path, trackers):
    from evalsuite.tasks import run

    record = run(compose(*FAST, *trackers))
    values = {k: m["value"] for k, m in record["metrics"].items() if m["value"] is not None}
    assert values and read_records(tmp_path / "results")[0]["run_id"] == record["run_id"]
    [ml] = _mlflow_runs(tmp_path)
    assert ml.data.metrics == {mlflow_key(k): v for k, v in values.items()}
    assert ml.data.tags["evalsuite.run_id"] == record["run_id"]
    assert ml.data.params["protocol.name"] == str(record["protocol"]["name"])
    [folder] = run_folders(tmp_path / "wb", record["run_id"])
    summary = read_run(next(folder.glob("run-*.wandb")))["summary"]
    assert {k: summary[k] for k in values} == values
    proc = run_cli(["export", f"paths.results_dir={tmp_path}/results", *trackers], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = sorted(line.split("\t")[:3] for line in proc.stdout.splitlines())
    assert lines == [["mlflow", record["run_id"], "exists"], ["wandb", record["run_id"], "exists"]]
    assert len(_mlflow_runs(tmp_path)) == 1 and len(run_folders(tmp_path / "wb", record["run_id"])) == 1


def test_a_missing_tracker_package_stops_the_run_before_any_work(compose, tmp_path, monkeypatch):
    from evalsuite.export import ExportError
    from evalsuite.tasks import run

    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ExportError, match="wandb"):
        run(compose(*FAST, "export.wandb.enabled=true"))
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("on_error", ["warn", "fail"])
def test_a_failed_export_keeps_the_record(compose, tmp_path, on_error):
    from evalsuite.export import ExportError
    from evalsuite.tasks import run

    (tmp_path / "afile").write_text("x")  # the MLflow store cannot be made under a file
    cfg = compose(*FAST, "export.mlflow.enabled=true", f"export.on_error={on_error}",
                  f"export.mlflow.tracking_uri=file:{tmp_path}/afile/mlruns")
    if on_error == "fail":
        with pytest.raises(ExportError, match="The record is written; export it again"):
            run(cfg)
    else:
        assert run(cfg) is not None
    [rec] = read_records(tmp_path / "results")
    assert rec["metrics"] and json.dumps(rec)


def test_evalsuite_export_refuses_nothing_to_do(tmp_path):
    proc = run_cli(["export", f"paths.results_dir={tmp_path}/results"], cwd=tmp_path)
    assert proc.returncode == 2 and "no tracker is enabled" in proc.stderr
    proc = run_cli(["export", f"paths.results_dir={tmp_path}/results", "export.mlflow.enabled=true",
                    f"export.mlflow.tracking_uri=file:{tmp_path}/mlruns"], cwd=tmp_path)
    assert proc.returncode == 2 and "no record selected" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "mlruns").exists()
