"""Export to W&B in offline mode: the run file written under the results folder is read back
(``tests/wandb_log.py``) and holds the record's values, protocol, tags and file; a second
export finds the first. The network is blocked (``tests/nonet.py``)."""

from __future__ import annotations

import json

import pytest

from evalsuite.export import export_record, export_records, exporters
from evalsuite.export.wandb_tracker import run_folders, wandb_run_id
from evalsuite.results.protocol import protocol_of
from export_records import METRICS, write_results
from wandb_log import read_run

pytest.importorskip("wandb")


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B kept offline and inside tmp_path (its config, cache and data folders too)."""
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true",
                       "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true",
                       "WANDB_CONFIG_DIR": str(tmp_path / "wbconfig"),
                       "WANDB_CACHE_DIR": str(tmp_path / "wbcache"),
                       "WANDB_DATA_DIR": str(tmp_path / "wbdata")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return {"wandb": {"enabled": True, "mode": "offline", "project": "tests",
                      "dir": str(tmp_path / "wb")}}


def _run_file(folder):
    [path] = folder.glob("run-*.wandb")
    return path


def test_offline_run_holds_the_records_values_protocol_tags_and_file(tmp_path, wandb_env):
    results = tmp_path / "results"
    rec = write_results(results)[0]
    [done] = export_record(exporters(wandb_env, results), rec, results)
    folder = tmp_path / "wb" / "wandb" / done.ref.rsplit("/", 1)[-1]
    assert done.created and folder.is_dir()
    run = read_run(_run_file(folder))
    assert run["id"] == rec["run_id"] and run["name"] == "variant 0" and run["project"] == "tests"
    expected = {k: v for k, v in METRICS.items() if v is not None and not isinstance(v, dict)}
    assert {k: run["summary"][k] for k in METRICS if k in run["summary"]} == \
        {**expected, "clip_score": 0.31}
    assert run["summary"]["psnr/baseline"] == float("inf") and "kid" not in run["summary"]
    config = run["config"]
    assert config["protocol"]["name"] == "coco2014_30k_clean" and config["protocol"]["version"] == 3
    assert config["protocol"]["key"] == protocol_of(rec).key
    assert config["metric_versions"]["clip_score"]["version"] == "2"
    assert config["evalsuite"]["run_id"] == rec["run_id"] and config["overrides"] == rec["overrides"]
    assert config["config"]["long"] == "x" * 7000  # W&B config has no 6000-character limit
    assert set(run["tags"]) == {"task:generate", "variant:variant 0",
                                f"protocol:{protocol_of(rec).key}", "study=bk_sdm"}
    record_file = results / "records" / f"{rec['run_id']}.json"
    assert (folder / "files" / record_file.name).read_bytes() == record_file.read_bytes()
    assert (folder / "files" / "preview.png").stat().st_size > 0


def test_exporting_twice_creates_one_run_per_record(tmp_path, wandb_env):
    results = tmp_path / "results"
    recs = write_results(results, n=2)
    first, failed = export_records(exporters(wandb_env, results), recs, results, preview=0)
    again, _ = export_records(exporters(wandb_env, results), recs, results, preview=0)
    assert failed == [] and [d.created for d in first] == [True, True]
    assert [d.created for d in again] == [False, False]
    assert [d.ref for d in again] == [d.ref for d in first]
    for rec in recs:
        assert len(run_folders(tmp_path / "wb", rec["run_id"])) == 1
    assert not (tmp_path / "wb" / "wandb" / "files").exists()
    assert json.loads((results / "records" / f"{recs[0]['run_id']}.json").read_text())


def test_run_ids_are_made_valid_and_stay_apart():
    assert wandb_run_id("20261130T115500-abcdef12-a1b2c3") == "20261130T115500-abcdef12-a1b2c3"
    a, b = wandb_run_id("a/b"), wandb_run_id("a:b")
    assert a != b and a.startswith("a-b-") and len(wandb_run_id("x" * 100)) == 64
