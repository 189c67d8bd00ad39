"""Export to MLflow (a file store, read back with MlflowClient), the payload every tracker
gets, MLflow's name and value limits, idempotence, and a missing tracker package."""

from __future__ import annotations

import json
import sys

import pytest

from evalsuite.export import ExportError, export_record, export_records, exporters, payload_of
from evalsuite.export.mlflow_tracker import MAX_KEY, MAX_PARAM_VALUE, mlflow_key
from evalsuite.results.protocol import protocol_of
from export_records import METRICS, write_results

mlflow = pytest.importorskip("mlflow")


def _settings(tmp_path, **mlflow_settings):
    return {"mlflow": {"enabled": True, "tracking_uri": f"file:{tmp_path}/mlruns",
                       "experiment": "tests", **mlflow_settings}}


def _runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file://{tmp_path}/mlruns")
    exp = client.get_experiment_by_name("tests")
    return client, (client.search_runs([exp.experiment_id]) if exp else [])


def test_payload_keeps_the_records_names_values_and_protocol(tmp_path):
    rec = write_results(tmp_path / "results")[0]
    p = payload_of(rec)
    assert p.metrics == {k: v for k, v in METRICS.items() if v is not None
                         and not isinstance(v, dict)} | {"clip_score": 0.31}
    assert p.sections["protocol"]["name"] == "coco2014_30k_clean"
    assert p.sections["protocol"]["version"] == 3
    assert p.sections["metric_versions"]["clip_score"]["version"] == "2"
    assert p.tags["protocol"] == protocol_of(rec).key and p.tags["task"] == "generate"
    assert p.sections["overrides"] == rec["overrides"] and p.user_tags == ["study=bk_sdm"]


def test_mlflow_run_holds_the_records_metrics_params_tags_and_file(tmp_path):
    results = tmp_path / "results"
    rec = write_results(results)[0]
    [done] = export_record(exporters(_settings(tmp_path), results), rec, results)
    assert done.created
    client, [run] = _runs(tmp_path)
    renamed = {mlflow_key(k): v for k, v in METRICS.items() if k != "clip_score" and v is not None}
    assert run.data.metrics == {**renamed, "clip_score": 0.31}
    assert run.data.metrics["psnr/baseline"] == float("inf")
    params, tags = run.data.params, run.data.tags
    assert params["protocol.name"] == "coco2014_30k_clean" and params["protocol.version"] == "3"
    assert params["metric_versions.clip_score.version"] == "2"
    assert params["evalsuite.run_id"] == rec["run_id"] and params["choices.model"] == "tiny"
    assert json.loads(params["overrides"]) == rec["overrides"]
    assert params["provenance.git.commit"] == "0" * 40
    assert params[f"metric_name.{mlflow_key('fid@clean (v2)')}"] == "fid@clean (v2)"
    assert tags["evalsuite.run_id"] == rec["run_id"] and tags["task"] == "generate"
    assert tags["variant"] == "variant 0" and tags["protocol"] == protocol_of(rec).key
    assert tags["mlflow.runName"] == "variant 0"
    assert json.loads(tags["evalsuite.tags"]) == ["study=bk_sdm"]
    assert {a.path for a in client.list_artifacts(done.ref)} == {f"{rec['run_id']}.json",
                                                                 "preview.png"}
    local = client.download_artifacts(done.ref, f"{rec['run_id']}.json", str(tmp_path))
    assert open(local, "rb").read() == (results / "records" / f"{rec['run_id']}.json").read_bytes()


def test_mlflow_names_and_values_are_made_valid(tmp_path):
    results = tmp_path / "results"
    rec = write_results(results)[0]
    export_record(exporters(_settings(tmp_path), results), rec, results)
    _, [run] = _runs(tmp_path)
    long = run.data.params["config.long"]
    assert len(long) == MAX_PARAM_VALUE and long.startswith("x" * 5000) and long.endswith("[7000 characters; the full value is in the record artifact]")
    keys = [k for k in run.data.params if k.startswith("config.kkk")]
    assert len(keys) == 1 and len(keys[0]) == MAX_KEY
    assert mlflow_key("a//b/../c") == "a/b/_/c" and mlflow_key("fid@clean (v2)") == "fid_clean _v2_"
    assert mlflow_key("/x/") == "x" and mlflow_key("k" * 300) != mlflow_key("k" * 301)


def test_exporting_twice_creates_one_run_per_record(tmp_path):
    results = tmp_path / "results"
    recs = write_results(results, n=2)
    trackers = exporters(_settings(tmp_path), results)
    first, failed = export_records(trackers, recs, results)
    again, _ = export_records(exporters(_settings(tmp_path), results), recs, results)
    assert failed == [] and [d.created for d in first] == [True, True]
    assert [d.created for d in again] == [False, False]
    assert [d.ref for d in again] == [d.ref for d in first]
    _, runs = _runs(tmp_path)
    assert sorted(r.data.tags["evalsuite.run_id"] for r in runs) == sorted(r["run_id"] for r in recs)


def test_a_failed_export_leaves_no_run_that_counts_as_done(tmp_path):
    results = tmp_path / "results"
    rec = write_results(results)[0]
    [tracker] = exporters(_settings(tmp_path), results)
    with pytest.raises(ExportError, match="MLflow export of record"):  # the artifact is gone
        tracker.export(payload_of(rec, [tmp_path / "missing.json"]))
    assert _runs(tmp_path)[1] == []  # the partial run is deleted, so it is not found as done
    [done] = export_record(exporters(_settings(tmp_path), results), rec, results)
    _, runs = _runs(tmp_path)
    assert done.created and [r.info.run_id for r in runs] == [done.ref]


def test_a_missing_tracker_package_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(ExportError, match=r"pip install 'evalsuite\[trackers\]'"):
        exporters(_settings(tmp_path), tmp_path / "results")
    assert not (tmp_path / "mlruns").exists()


def test_no_tracker_enabled_imports_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert exporters({"wandb": {"enabled": False}, "mlflow": {"enabled": False}}, tmp_path) == []
    assert exporters(None, tmp_path) == []


def test_preview_tiles_the_first_images_of_the_manifest_and_stays_in_the_results(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from evalsuite.export.preview import preview_png

    results = tmp_path / "results"
    rec = write_results(results)[0]
    im = np.asarray(Image.open(io.BytesIO(preview_png(rec, results, 2))))
    assert im.shape == (8, 16, 3) and (im[:, :8] == 0).all() and (im[:, 8:] == 10).all()
    assert preview_png(rec, results, 0) is None
    outside = tmp_path / "elsewhere"
    (results / "samples" / "key").rename(outside)
    assert preview_png({**rec, "samples": {"dir": str(outside)}}, results, 2) is None
