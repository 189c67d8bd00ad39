"""`evalsuite doctor` (issue 15, "Done when", third bullet): corrupt each kind of file in a
results folder (record, manifest, sample PNG, metric cache, feature cache, model cache,
table), add a stale temporary file and an expired merge claim; `table`, `report` and
`compare` still work; `doctor` names every problem (exit 1); `doctor --fix` quarantines them
(exit 0), losing nothing valid; the next `run` rebuilds exactly what was there."""

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from conftest import CONF_DIR, FAST, run_cli
from evalsuite.doctor import check_folder, claim_expired
from evalsuite.results.compare import compare_records, select
from evalsuite.results.report import write_report
from evalsuite.config.results import ReportSettings, root_settings
from evalsuite.results.store import ResultStore
from evalsuite.run import run

RUN = [*FAST, "dataset.limit=4", "metrics.allow_random_weights=true",
       "+metrics.items.fid_legacy={_target_: evalsuite.metrics.fid.LegacyFID, dims: 64, device: cpu}"]
HOUR = 3600


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A results folder from three runs of one config (the 2nd and 3rd reuse everything)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    tmp = tmp_path_factory.mktemp("doctor")

    def cfg(results: Path):
        register_configs()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("config", overrides=["world=tiny", f"paths.results_dir={results}",
                                                f"paths.assets_dir={tmp}/assets", *RUN])

    recs = [run(cfg(tmp / "results")) for _ in range(3)]
    return tmp / "results", cfg, recs


def _damage(results: Path, recs: list[dict]) -> dict[str, set[str]]:
    """Damage one file of each kind; return {damaged file: files doctor must quarantine}."""
    key = recs[0]["samples"]["generation_key"]
    feats = results / "cache" / "features"
    [ref_npy] = [p for p in feats.glob("*.npy") if p.with_name(p.stem + ".stats.npz").exists()]
    metric = sorted((results / "cache" / "metrics").glob("*.json"))[0]
    sealed = json.loads(metric.read_text())
    sealed["value"]["value"] = 94.99
    model = sorted((results / "cache" / "models").glob("*.json"))[0]  # one of the model caches
    edits = {
        f"records/{recs[0]['run_id']}.json": lambda p: p.write_bytes(p.read_bytes()[:300]),
        f"samples/{key}/manifest.json": lambda p: p.write_text('{"images": [{"id"'),
        f"samples/{key}/00002.png": lambda p: p.write_bytes(p.read_bytes()[:100]),
        metric.relative_to(results).as_posix(): lambda p: p.write_text(json.dumps(sealed)),
        ref_npy.relative_to(results).as_posix(): lambda p: p.write_bytes(p.read_bytes()[:200]),
        model.relative_to(results).as_posix(): lambda p: p.write_bytes(b""),
        "tables/runs.csv": lambda p: p.write_bytes(b"\xff\xfe\x00\x00"),
        "tables/variants.md": lambda p: p.write_bytes(b""),
    }
    for rel, edit in edits.items():
        edit(results / rel)
    stale = results / "samples" / key / ".tmp-k1ll3d.png"
    stale.write_bytes(b"\x89PNG half")
    os.utime(stale, (time.time() - 2 * HOUR, time.time() - 2 * HOUR))
    merges = results / "cache" / "merges"
    merges.mkdir(parents=True)
    (merges / "expired.json").write_text(json.dumps(
        {"shard": 1, "pid": 1, "host": "other-host", "time": time.time() - 2 * HOUR, "lease_s": 60}))
    (merges / "done.json").write_text(json.dumps({"shard": 0, "time": 0, "done": True}))
    feature_entry = {ref_npy.relative_to(results).as_posix(),
                     ref_npy.with_suffix(".json").relative_to(results).as_posix(),
                     ref_npy.with_name(ref_npy.stem + ".stats.npz").relative_to(results).as_posix()}
    # tables/variants.md is rewritten by `table` and `report` themselves before doctor runs
    quarantined = (set(edits) - {ref_npy.relative_to(results).as_posix(), "tables/variants.md"}) \
        | feature_entry
    return {"quarantined": quarantined | {"cache/merges/expired.json"},
            "deleted": {stale.relative_to(results).as_posix()}}


def test_every_kind_of_damaged_file_is_survived_then_quarantined_and_rebuilt(pristine, tmp_path):
    source, cfg, recs = pristine
    results = tmp_path / "results"
    shutil.copytree(source, results)
    before = _snapshot(results)
    expect = _damage(results, recs)
    damaged = _snapshot(results)

    # readers keep working next to the damage
    table = run_cli(["table", f"paths.results_dir={results}"], tmp_path)
    assert table.returncode == 0 and "Traceback" not in table.stderr, table.stderr[-2000:]
    assert "skipping record" in table.stderr and recs[0]["run_id"] in table.stderr
    assert "tiny" in (results / "tables" / "variants.md").read_text()  # the empty table rebuilt
    store = ResultStore.open(results)
    assert [r["run_id"] for r in store.records] == [recs[1]["run_id"], recs[2]["run_id"]]
    verdict = compare_records(select(store, recs[1]["run_id"], {}), select(store, "latest", {}),
                              {"default": {"abs": 0.0, "rel": 0.0}}, [], True)
    assert verdict.passed
    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    html = write_report(results, settings).read_text()
    assert "2 records in" in html and "<h2 id=\"grids\">" in html  # (no grid: the manifest is torn)

    # doctor names every problem and changes nothing
    check = run_cli(["doctor", f"paths.results_dir={results}"], tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr[-2000:]
    for rel in expect["quarantined"] | expect["deleted"]:
        assert rel in check.stdout, rel
    assert "cache/merges/done.json" not in check.stdout
    assert _snapshot(results).keys() >= damaged.keys() - {"report.html"}

    fixed = run_cli(["doctor", f"paths.results_dir={results}", "--fix"], tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
    assert "result: clean" in fixed.stdout
    quarantine = _snapshot(results / "quarantine")
    assert set(quarantine) == expect["quarantined"]
    assert all(quarantine[rel] == damaged[rel] for rel in quarantine)  # moved, not altered
    after = _snapshot(results)
    for rel in expect["deleted"]:
        assert rel not in after
    rebuilt = {"tables/runs.csv", "tables/runs.md", "report.html"} | {
        r for r in before if r.startswith("tables/variants.")}
    for rel, digest in before.items():  # nothing valid lost or changed
        if rel not in expect["quarantined"] | rebuilt:
            assert after.get(rel) == digest, rel
    assert run_cli(["doctor", f"paths.results_dir={results}"], tmp_path).returncode == 0

    # the next run regenerates what was quarantined, byte for byte, and scores it the same
    again = run(cfg(results))
    assert again["samples"]["generated"] == 1
    now = _snapshot(results)
    key = recs[0]["samples"]["generation_key"]
    for rel in (f"samples/{key}/00002.png", f"samples/{key}/manifest.json"):
        assert now[rel] == before[rel], rel
    assert again["metrics"] == recs[0]["metrics"]
    assert again["samples"]["manifest_sha256"] == recs[0]["samples"]["manifest_sha256"]
    assert check_folder(results) == []


def test_claims_expire_by_lease_or_dead_process_never_when_done():
    now = time.time()
    assert claim_expired({"time": now - 100, "lease_s": 60, "pid": 1, "host": "h"}, now, now)
    assert claim_expired({"time": now, "lease_s": 60, "pid": 1, "host": "h"}, now, now) is None
    assert claim_expired({"time": 0, "done": True}, 0, now) is None
    gone = os.fork() if hasattr(os, "fork") else None
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)  # a pid that existed on this host and is gone now
    why = claim_expired({"time": now, "lease_s": 60, "pid": gone, "host": socket.gethostname()}, now, now)
    assert why and "is gone" in why
    assert claim_expired({"shard": 1}, now - 2 * 86400, now)  # old format: file age vs. lease
    assert claim_expired({"shard": 1}, now, now) is None
    assert claim_expired(None, now, now) == "unreadable"


def test_doctor_refuses_a_missing_folder_with_one_paragraph(tmp_path):
    proc = run_cli(["doctor", f"paths.results_dir={tmp_path}/nope"], tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_temp_files_of_killed_writers_are_ignored_by_readers_and_only_stale_ones_deleted(tmp_path):
    """Issue 15, "Also seen": 14 `.tmp-*` files from killed runs were never cleaned up."""
    from evalsuite.doctor import fix
    from evalsuite.io import JsonCache
    from evalsuite.results.record import load_records, write_record
    from evalsuite.samples.store import SampleStore
    from results_factory import make_record

    results = tmp_path / "results"
    write_record(results / "records", make_record(1, {"fid_clean": 12.0}))
    store = SampleStore(results / "samples", {"model": "x"})
    store.open()
    JsonCache(results / "cache" / "metrics").put("k", {"value": 1.0})
    old, young = time.time() - 2 * HOUR, time.time() - 5
    temps = {"records/.tmp-a1.json": old, f"samples/{store.key}/.tmp-b2.png": old,
             "cache/metrics/.tmp-c3.json": old, "cache/features/.tmp-d4.npy": old,
             "tables/.tmp-e5.csv": old, "cache/metrics/.tmp-young.json": young}
    for rel, mtime in temps.items():
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_bytes(b'{"torn": ')
        os.utime(results / rel, (mtime, mtime))

    assert [r["run_id"] for r in load_records(results / "records")] == [make_record(1, {})["run_id"]]
    assert store.existing_ids() == set()
    assert JsonCache(results / "cache" / "metrics").get("k") == {"value": 1.0}

    findings = check_folder(results, tmp_age_s=HOUR)
    assert {f.path: f.action for f in findings} == {
        rel: ("delete" if mtime == old else "note") for rel, mtime in temps.items()}
    fix(results, findings)
    assert [rel for rel in temps if (results / rel).exists()] == ["cache/metrics/.tmp-young.json"]
    assert not (results / "quarantine").exists()  # partial writes are deleted, not kept
    assert not [f for f in check_folder(results, tmp_age_s=HOUR) if f.is_problem]


def test_a_swapped_sample_png_is_found_by_its_sha256_and_quarantined_with_its_manifest(tmp_path):
    """Issue 15, "Also seen": a sample PNG swapped for another valid PNG was used silently."""
    import numpy as np

    from evalsuite.doctor import fix
    from evalsuite.samples.store import SampleStore

    results = tmp_path / "results"
    store = SampleStore(results / "reconstructions", {"task": "reconstruction"})
    store.open()
    for k, pid in enumerate(["a1", "b2", "c3"]):
        store.write(pid, np.full((8, 8, 3), 40 * k, np.uint8), {"seed": k})
    store.write_manifest([{"id": pid, "seed": k} for k, pid in enumerate(["a1", "b2", "c3"])])
    good = _snapshot(results)
    shutil.copy(store.path("c3"), store.path("a1"))  # a valid PNG, the wrong one

    findings = check_folder(results)
    rel = f"reconstructions/{store.key}"
    assert {(f.path, f.action) for f in findings} == {(f"{rel}/a1.png", "quarantine"),
                                                      (f"{rel}/manifest.json", "quarantine")}
    assert "swapped or edited" in [f for f in findings if f.path.endswith("a1.png")][0].problem
    fix(results, findings)
    assert set(_snapshot(results / "quarantine")) == {f"{rel}/a1.png", f"{rel}/manifest.json"}
    after = _snapshot(results)
    assert {k: after[k] for k in (f"{rel}/b2.png", f"{rel}/c3.png", f"{rel}/generation.json")} == \
        {k: good[k] for k in (f"{rel}/b2.png", f"{rel}/c3.png", f"{rel}/generation.json")}
    assert check_folder(results) == []
