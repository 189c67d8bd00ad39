"""Records are immutable and concurrent writers lose nothing."""

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.results.record import SCHEMA_VERSION, load_records, new_run_id, write_record
from evalsuite.results.tables import write_tables


def _record(i: int) -> dict:
    return {"schema_version": SCHEMA_VERSION, "run_id": new_run_id(f"{i:064x}"),
            "created_at": f"2026-01-01T00:00:{i:02d}+00:00", "choices": {"model": "tiny"},
            "sampler": {"steps": i}, "dataset": {"count": 3}, "model": {"ablations": []},
            "metrics": {"psnr/baseline": {"value": float(i), "version": "1"}}}


def _write_one(args: tuple[str, int]) -> str:
    folder, i = args
    rec = _record(i)
    write_record(Path(folder) / "records", rec)
    write_tables(folder)
    return rec["run_id"]


def test_parallel_writers_lose_no_record_and_no_table_row(tmp_path):
    with ProcessPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(_write_one, [(str(tmp_path), i) for i in range(24)]))
    records = load_records(tmp_path / "records")
    assert sorted(r["run_id"] for r in records) == sorted(ids)
    table = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert sorted(table["run_id"]) == sorted(ids)
    assert sorted(table["psnr/baseline@v1"]) == [float(i) for i in range(24)]
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_a_record_is_never_overwritten(tmp_path):
    rec = _record(1)
    path = write_record(tmp_path, rec)
    with pytest.raises(FileExistsError):
        write_record(tmp_path, {**rec, "metrics": {}})
    assert json.loads(path.read_text())["metrics"] == rec["metrics"]


def test_metric_versions_get_separate_columns(tmp_path):
    a, b = _record(1), _record(2)
    b["metrics"] = {"psnr/baseline": {"value": 9.0, "version": "2"}}
    for r in (a, b):
        write_record(tmp_path / "records", r)
    write_tables(tmp_path)
    table = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert table["psnr/baseline@v1"].tolist()[0] == 1.0 and pd.isna(table["psnr/baseline@v1"][1])
    assert table["psnr/baseline@v2"].tolist()[1] == 9.0
