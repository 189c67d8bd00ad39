"""Sharding: 1, 2 or 3 shards give byte-identical images and identical metrics; stages split
generation from scoring; incomplete sets are refused naming the shard; parallel shards writing
into one folder lose nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from evalsuite.errors import EvalsuiteError
from evalsuite.run import run

SETTINGS = ["dataset.limit=6", "sampler.steps=1", "sampler.batch_size=2", "metrics=pixel",
            "ablation=[swish_glu]", "world=tiny"]  # shard processes start without run_cli


def _pngs(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes()
            for p in sorted((results / "samples").glob("*/*.png"))}


def _run_shards(compose, results: Path, n: int) -> dict:
    records = [run(compose(*SETTINGS, f"paths.results_dir={results}", f"shard.index={i}",
                           f"shard.count={n}")) for i in range(n)]
    assert all(r is None for r in records[:-1]), "only the shard completing the set scores it"
    assert records[-1] is not None
    return records[-1]


def test_one_two_three_shards_are_byte_identical(compose, tmp_path):
    out = {n: _run_shards(compose, tmp_path / f"n{n}", n) for n in (1, 2, 3)}
    images = {n: _pngs(tmp_path / f"n{n}") for n in out}
    assert len(images[1]) == 12  # 6 variant + 6 baseline images
    assert images[1] == images[2] == images[3]
    for n in (2, 3):
        assert out[n]["metrics"] == out[1]["metrics"]
        assert out[n]["samples"]["manifest_sha256"] == out[1]["samples"]["manifest_sha256"]
        assert out[n]["sharding"] == {"count": n, "merged_by": n - 1}
        assert len(list((tmp_path / f"n{n}" / "records").glob("*.json"))) == 1


def test_generate_then_metrics_stage_equals_one_pass(compose, tmp_path):
    whole = run(compose(*SETTINGS, f"paths.results_dir={tmp_path}/a"))
    assert run(compose(*SETTINGS, f"paths.results_dir={tmp_path}/b", "stage=generate")) is None
    assert not list((tmp_path / "b").glob("records/*.json"))
    scored = run(compose(*SETTINGS, f"paths.results_dir={tmp_path}/b", "stage=metrics"))
    assert scored["metrics"] == whole["metrics"]
    assert scored["samples"]["generated"] == 0 and scored["samples"]["reused"] == 6


def test_incomplete_sample_set_is_refused_naming_the_shard(compose, tmp_path):
    results = f"paths.results_dir={tmp_path}"
    run(compose(*SETTINGS, results, "shard.index=0", "shard.count=2", "stage=generate"))
    with pytest.raises(EvalsuiteError, match=r"shard 1 of 2 is missing 2 images"):
        run(compose(*SETTINGS, results, "shard.count=2", "stage=metrics"))
    assert not list(tmp_path.glob("records/*.json"))
    rec = run(compose(*SETTINGS, results, "shard.count=2", "stage=metrics", "allow_incomplete=true"))
    assert rec["status"] == "incomplete"
    assert rec["dataset"]["count"] == 6 and rec["dataset"]["n_used"] == 4
    assert rec["metrics"]["psnr/baseline"]["n"] == 4


def test_bad_shard_settings_are_rejected(compose):
    with pytest.raises(EvalsuiteError, match="shard.index=2, shard.count=2"):
        run(compose(*SETTINGS, "shard.index=2", "shard.count=2"))
    with pytest.raises(EvalsuiteError, match="stage='score'"):
        run(compose(*SETTINGS, "stage=score"))


@pytest.mark.slow  # ~1-2 min: four CLI processes; parallel writers are also covered by
# tests/unit/test_records.py and the local_parallel sweep in tests/integration/test_sweeps.py
def test_parallel_shards_into_one_folder_lose_nothing(tmp_path):
    """Three shard processes at once against one results folder; then one unsharded run."""
    code = ("import sys; sys.path.insert(0, %r); import nonet; from evalsuite.cli import main; "
            "sys.argv = ['evalsuite'] + sys.argv[1:]; main()" % str(Path(__file__).parents[1]))
    shared = tmp_path / "shared"
    shared.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", code, "run", *SETTINGS, "threads=1",
                               f"shard.index={i}", "shard.count=3"], cwd=shared,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    records = [json.loads(p.read_text()) for p in (shared / "results" / "records").glob("*.json")]
    assert len(records) == 1 and records[0]["dataset"]["n_used"] == 6

    alone = tmp_path / "alone"
    alone.mkdir()
    proc = run_cli(["run", *SETTINGS, "threads=1"], cwd=alone)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _pngs(shared / "results") == _pngs(alone / "results")
    ref = json.loads(next((alone / "results" / "records").glob("*.json")).read_text())
    assert records[0]["metrics"] == ref["metrics"]
