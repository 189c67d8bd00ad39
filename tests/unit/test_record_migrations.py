"""Schema 1 -> 2: decoder evaluations (task=reconstruction) named their VAE round-trip pairing
``original``; records written then load, table and compare under today's ``reconstruction``."""

import json

import pandas as pd

from evalsuite.results.compare import compare_records
from evalsuite.results.record import SCHEMA_VERSION, load_records, read_record, write_record
from evalsuite.results.tables import write_tables


def _decoder_record(i: int, psnr: float | None, schema: int, pairing: str) -> dict:
    metrics = {f"{m}/{pairing}": {"value": v, "version": "1", "n": 14, "pairing": pairing,
                                  "higher_is_better": m != "lpips", "settings": {}}
               for m, v in (("psnr", psnr), ("lpips", 0.25))}
    metrics["psnr/compare_decoder"] = {"value": 30.0, "version": "1", "n": 14,
                                       "pairing": "compare_decoder", "settings": {}}
    return {"schema_version": schema, "run_id": f"20260201T0000{i:02d}-dec{i:05d}-abcdef",
            "created_at": f"2026-02-01T00:00:{i:02d}+00:00", "status": "complete",
            "task": "reconstruction", "name": None, "tags": [], "choices": {"model": "tiny"},
            "config": {"metrics": {"items": {}}},
            "vae": {"encoder": {"path": "model"}, "decoder": {"path": "model"},
                    "latents": "mode", "seed": None},
            "reference": {"name": "skimage_photos", "sha256": "a" * 64, "n": 14},
            "reconstructions": {"count": 14}, "metrics": metrics,
            "skipped_metrics": {f"ssim/{pairing}": "no weights"},
            "durations": {"total": 1.0}, "provenance": {}}


def test_a_schema_1_decoder_record_reads_under_the_reconstruction_pairing(tmp_path):
    path = write_record(tmp_path, _decoder_record(1, float("inf"), 1, "original"))
    before = path.read_bytes()
    rec = read_record(path)
    assert rec["schema_version"] == SCHEMA_VERSION == 2
    assert sorted(rec["metrics"]) == ["lpips/reconstruction", "psnr/compare_decoder",
                                      "psnr/reconstruction"]
    assert rec["metrics"]["psnr/reconstruction"]["value"] == float("inf")  # marker restored
    assert rec["metrics"]["psnr/reconstruction"]["pairing"] == "reconstruction"
    assert rec["metrics"]["psnr/compare_decoder"]["pairing"] == "compare_decoder"
    assert rec["skipped_metrics"] == {"ssim/reconstruction": "no weights"}
    assert path.read_bytes() == before  # migrated in memory; the file is immutable
    assert "psnr/original" in json.loads(before)["metrics"]


def test_generation_records_keep_their_names(tmp_path):
    gen = _decoder_record(1, 20.0, 1, "original")
    gen["task"] = "generate"  # no generation record ever had an "original" pairing; untouched
    [rec] = load_records(write_record(tmp_path, gen).parent)
    assert "psnr/original" in rec["metrics"]


def test_old_and_new_decoder_records_share_a_column_and_compare(tmp_path):
    records = tmp_path / "results" / "records"
    write_record(records, _decoder_record(1, 20.0, 1, "original"))
    write_record(records, _decoder_record(2, 21.5, 2, "reconstruction"))
    old, new = load_records(records)
    cmp = compare_records(old, new, {"default": {"abs": 0.0, "rel": 0.0}})
    verdicts = {v.metric: v.verdict for v in cmp.verdicts}
    assert verdicts["psnr/reconstruction"] == "better" and "missing" not in verdicts.values()
    write_tables(tmp_path / "results")
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    [col] = [c for c in runs.columns if c.startswith("psnr/reconstruction@v1")]
    assert runs[col].tolist() == [20.0, 21.5]
    assert not any("original" in c for c in runs.columns)
