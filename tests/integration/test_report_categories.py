"""Per-category results end to end: a PartiPrompts-format sample (JSONL with Prompt/Category,
written here), the tiny model with and without an ablation, per-image PSNR in the records
(checked against PSNR recomputed from the PNGs) and the per-category table with CIs."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CONF_DIR, FAST, run_cli
from evalsuite.results.render import render
from evalsuite.results.report import write_report
from evalsuite.results.store import ResultStore
from evalsuite.results.tables import build_named_tables
from evalsuite.run import run
from evalsuite.samples.store import decode_png

PARTI = [("a red bus on a bridge", "Vehicles"), ("a cat asleep on a sofa", "Animals"),
         ("a bicycle leaning on a wall", "Vehicles"), ("a dog catching a frisbee", "Animals"),
         ("an owl in a tree at night", "Animals"), ("a bowl of ramen", "Food & Beverage")]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_per_category_table_from_a_partiprompts_sample(compose, tmp_path):
    jsonl = tmp_path / "parti.jsonl"
    jsonl.write_text("".join(json.dumps({"Prompt": p, "Category": c}) + "\n" for p, c in PARTI))
    data = ["dataset=parti_prompts", f"dataset.path={jsonl}"]
    plain = run(compose(*FAST, *data))
    variant = run(compose(*FAST, *data, "ablation=[shared_kv]"))
    block = variant["metrics"]["psnr/baseline"]["per_image"]
    assert block["n"] == 6 and block["categories"]["names"] == ["Animals", "Food & Beverage", "Vehicles"]
    assert [block["categories"]["names"][i] for i in block["categories"]["of"]] == [c for _, c in PARTI]
    # reference: PSNR recomputed from the two sample folders, image by image, in prompt order
    ours, base = Path(variant["samples"]["dir"]), Path(variant["baseline_samples"])
    ref = [_psnr(decode_png(p), decode_png(base / p.name)) for p in sorted(ours.glob("*.png"))]
    assert block["values"] == pytest.approx(ref, rel=1e-5)
    assert np.mean(block["values"]) == pytest.approx(variant["metrics"]["psnr/baseline"]["value"], rel=1e-5)

    tables, _ = build_named_tables(ResultStore([plain, variant]), "variants", CONF_DIR)
    cat = [t for t in tables if t.name.startswith("variants-categories-psnr-baseline")]
    assert len(cat) == 1, [t.name for t in tables]
    t = cat[0]
    assert t.values("category") == ["Animals", "Food & Beverage", "Vehicles", "all"]
    assert t.values("images") == [3, 1, 2, 6]
    animals = t.column("tiny+shared_kv")[0]
    assert animals.value == pytest.approx(np.mean([ref[1], ref[3], ref[4]]), rel=1e-5)
    assert animals.ci[0] <= animals.value <= animals.ci[1]
    assert "±" in render(t, "md") and plain["run_id"] not in t.record_ids

    # the same table from `evalsuite table` (printed, and written as files) and in the report
    results = tmp_path / "results"
    proc = run_cli(["table", f"paths.results_dir={results}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "psnr/baseline per category" in proc.stdout and "| Food & Beverage | 1 |" in proc.stdout
    assert (results / "tables" / f"{t.name}.csv").is_file()
    assert "psnr/baseline per category" in write_report(results).read_text()
