"""A results folder survives its worst record (issue 15, item 3): every reader skips a record
file that is truncated, empty, not an object or fails the schema, with one warning naming the
file and what is wrong; `table`, `report` and `compare` keep working."""

import json
import logging

import pytest

from conftest import CONF_DIR, run_cli
from evalsuite.results.record import RecordError, load_records, read_record, record_problem, write_record
from evalsuite.results.report import write_report
from evalsuite.config.results import ReportSettings, root_settings
from results_factory import make_record

GOOD = [make_record(1, {"psnr/baseline": 20.0, "fid_clean": 12.0}),
        make_record(2, {"psnr/baseline": 20.5, "fid_clean": 13.0}, ablations=("shared_kv",))]

# file name -> (bytes, what the warning says is wrong)
BAD = {
    "truncated.json": (json.dumps(make_record(3, {"fid_clean": 1.0}))[:150].encode(), "not valid JSON"),
    "empty.json": (b"", "empty file"),
    "list.json": (b"[1, 2, 3]", "a JSON list, not an object"),
    "number.json": (b"5", "a JSON int, not an object"),
    "binary.json": (b"\xff\xfe\x00garbage", "not valid JSON"),
    "text-value.json": (json.dumps(make_record(4, {"fid_clean": "94.99"})).encode(),
                        "metric 'fid_clean' has value '94.99', not a number"),
    "metrics-list.json": (json.dumps({**make_record(5, {}), "metrics": [1]}).encode(),
                          "metrics is missing or not an object"),
    "no-run-id.json": (json.dumps({**make_record(6, {}), "run_id": None}).encode(),
                       "run_id is missing or not a string"),
    "model-string.json": (json.dumps({**make_record(7, {}), "model": "tiny"}).encode(),
                          "model is a str, not an object"),
    "samples-dir.json": (json.dumps(make_record(8, {}, samples_dir=["a"])).encode(),
                         "samples.dir is a list, not a path"),
}


def _folder(tmp_path):
    results = tmp_path / "results"
    for rec in GOOD:
        write_record(results / "records", rec)
    for name, (data, _) in BAD.items():
        (results / "records" / name).write_bytes(data)
    (results / "records" / ".tmp-abc123.json").write_bytes(b'{"half": ')  # a write in progress
    return results


def test_each_damaged_record_is_skipped_with_one_warning_naming_it(tmp_path, caplog):
    results = _folder(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = load_records(results / "records")
    assert [r["run_id"] for r in records] == [r["run_id"] for r in GOOD]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(BAD)  # one per damaged file, none for the temporary file
    for name, (_, why) in BAD.items():
        [line] = [w for w in warnings if f"records/{name}:" in w]
        assert why in line, (name, line)
    assert not any(".tmp-" in w for w in warnings)


def test_read_record_refuses_what_load_records_skips(tmp_path):
    results = _folder(tmp_path)
    for name, (_, why) in BAD.items():
        with pytest.raises(RecordError, match=f"{name}: .*{why[:20]}"):
            read_record(results / "records" / name)
    assert record_problem(GOOD[0]) is None
    assert record_problem({**GOOD[0], "metrics": {"x": {"value": True, "version": "1"}}})


def test_table_report_and_compare_work_next_to_damaged_records(tmp_path):
    results = _folder(tmp_path)
    table = run_cli(["table", f"paths.results_dir={results}"], tmp_path)
    assert table.returncode == 0, table.stderr[-2000:]
    assert "tiny+shared_kv" in table.stdout and "94.99" not in table.stdout
    assert table.stderr.count("skipping record") == len(BAD)
    assert "Traceback" not in table.stderr

    compare = run_cli(["compare", f"baseline={GOOD[0]['run_id']}", f"candidate={GOOD[1]['run_id']}",
                       f"paths.results_dir={results}"], tmp_path)
    assert compare.returncode == 1, compare.stderr[-2000:]  # fid_clean 12.0 -> 13.0: a regression
    assert "Traceback" not in compare.stderr and "fid_clean" in compare.stdout

    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    html = write_report(results, settings).read_text()
    assert "2 records in" in html and "94.99" not in html
