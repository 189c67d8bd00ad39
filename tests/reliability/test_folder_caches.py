"""Caches carry a digest of their content (issue 15, item 3 and "Also seen"): a cache file
that is truncated, empty, edited or from an older evalsuite is a cache miss (one log line,
recomputed, rewritten), never a traceback and never a silently used value."""

import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import FAST
from evalsuite.features.cache import FeatureCache, stats_path
from evalsuite.io import JsonCache, cached_sha256, sha256_file, unseal
from evalsuite.run import run

# FAST plus a distribution metric, so the run has feature files and reference statistics.
RUN = [*FAST, "dataset.limit=4", "metrics.allow_random_weights=true",
       "+metrics.items.fid_legacy={_target_: evalsuite.metrics.fid.LegacyFID, dims: 64, device: cpu}"]


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:len(data) // 2], "empty": b"", "garbage": b"\xff\x00junk",
                      "list": b"[]", "old-format": b'{"value": 1}'}[how])


@pytest.mark.parametrize("how", ["truncate", "empty", "garbage", "list", "old-format", "edit"])
def test_a_damaged_json_cache_entry_is_a_miss_with_one_log_line(tmp_path, caplog, how):
    cache = JsonCache(tmp_path)
    cache.put("k", {"value": 24.99, "n": 14})
    assert cache.get("k") == {"value": 24.99, "n": 14}
    path = tmp_path / "k.json"
    if how == "edit":  # a valid file whose value was changed by hand
        sealed = json.loads(path.read_text())
        sealed["value"]["value"] = 94.99
        path.write_text(json.dumps(sealed))
    else:
        _damage(path, how)
    with caplog.at_level(logging.WARNING):
        assert cache.get("k") is None
    [line] = [r.getMessage() for r in caplog.records]
    assert str(path) in line and "recomputing" in line
    cache.put("k", {"value": 24.99, "n": 14})  # the recomputed value replaces it
    assert unseal(path) == ({"value": 24.99, "n": 14}, None)


def test_a_damaged_digest_cache_is_rebuilt_not_trusted(tmp_path, caplog):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights" * 100)
    digests = tmp_path / "sha256.json"
    assert cached_sha256(weights, digests) == sha256_file(weights)
    sealed = json.loads(digests.read_text())
    sealed["value"][str(weights.resolve())]["sha256"] = "f" * 64  # a wrong digest, edited in
    digests.write_text(json.dumps(sealed))
    with caplog.at_level(logging.WARNING):
        assert cached_sha256(weights, digests) == sha256_file(weights)
    assert "does not match its digest" in caplog.text
    digests.write_bytes(digests.read_bytes()[:20])  # torn
    assert cached_sha256(weights, digests) == sha256_file(weights)
    assert unseal(digests)[1] is None  # rewritten sealed


def _feature_entry(folder: Path) -> tuple[FeatureCache, Path]:
    cache = FeatureCache(folder)
    w = cache.writer("key1", ["a", "b", "c"], 4, {"kind": "test"}, {"name": "x"})
    w.append(np.arange(12, dtype=np.float32).reshape(3, 4))
    f = w.commit()
    f.stats()
    return cache, f.path


@pytest.mark.parametrize("target,how", [("npy", "truncate"), ("npy", "flip"), ("json", "truncate"),
                                        ("json", "edit"), ("json", "old-format")])
def test_a_damaged_feature_entry_is_a_miss(tmp_path, caplog, target, how):
    cache, npy = _feature_entry(tmp_path)
    path = npy if target == "npy" else npy.with_suffix(".json")
    if how == "flip":  # same size, one value changed
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x40
        path.write_bytes(bytes(data))
    elif how == "edit":
        meta = json.loads(path.read_text())
        meta["n"] = 2
        path.write_text(json.dumps(meta))
    else:
        _damage(path, how)
    with caplog.at_level(logging.WARNING):
        assert cache.get("key1") is None
    assert len(caplog.records) == 1 and "recomputing" in caplog.text and "key1" in caplog.text


@pytest.mark.parametrize("how", ["truncate", "edit", "foreign"])
def test_damaged_or_stale_statistics_are_recomputed(tmp_path, caplog, how):
    cache, npy = _feature_entry(tmp_path)
    spath = stats_path(npy)
    expected = cache.get("key1").stats()
    if how == "truncate":
        _damage(spath, "truncate")
    else:
        with np.load(spath) as z:
            arrays = dict(z)
        if how == "edit":
            arrays["mu"] = arrays["mu"] + 1.0
        else:  # statistics in the old format: no digest of the features they came from
            del arrays["digest"]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        spath.write_bytes(buf.getvalue())
    with caplog.at_level(logging.WARNING):
        st = cache.get("key1").stats()
    assert np.array_equal(st.mu, expected.mu) and np.array_equal(st.cov, expected.cov)
    assert "recomputing them" in caplog.text and str(spath) in caplog.text


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import CONF_DIR
    from evalsuite.config import register_configs

    tmp = tmp_path_factory.mktemp("caches")

    def cfg():
        register_configs()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("config", overrides=["world=tiny", f"paths.results_dir={tmp}/results",
                                                f"paths.assets_dir={tmp}/assets", *RUN])

    return tmp / "results", cfg, run(cfg())


def test_damaged_caches_and_records_do_not_stop_a_run_nor_reach_its_record(first_run, caplog):
    """An edited cached metric value (94.99) is NOT copied into the new record; torn model and
    feature caches and a damaged record cost a recomputation, not the run."""
    results, cfg, rec = first_run
    cache = results / "cache"
    metric_files = sorted((cache / "metrics").glob("*.json"))
    assert len(metric_files) == 3  # fid_legacy, psnr/reconstruction, ssim/reconstruction
    for path in metric_files:
        sealed = json.loads(path.read_text())
        sealed["value"]["value"] = 94.99
        path.write_text(json.dumps(sealed))
    models = sorted((cache / "models").glob("*.json"))  # architecture facts, the model's VAE
    for model in models:
        _damage(model, "truncate")
    for npy in (cache / "features").glob("*.npy"):
        _damage(npy, "truncate")
    (results / "records" / "broken.json").write_bytes(b'{"schema_version": 1, "run_')
    os.utime(results / "records" / "broken.json")

    with caplog.at_level(logging.WARNING):
        again = run(cfg())
    assert again["metrics_from_cache"] == [] and again["features_from_cache"] == []
    assert {k: v["value"] for k, v in again["metrics"].items()} == \
        {k: v["value"] for k, v in rec["metrics"].items()}
    assert all(v["value"] != 94.99 for v in again["metrics"].values())
    assert again["model"]["unet_params"] == rec["model"]["unet_params"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("does not match its digest" in w for w in warnings) == 3
    assert all(sum(str(m) in w for w in warnings) == 1 for m in models)
    assert sum("feature cache entry" in w for w in warnings) == 2
    assert any("broken.json" in w for w in warnings)
    # the recomputed values were written back, sealed, and are used by the next run
    third = run(cfg())
    assert sorted(third["metrics_from_cache"]) == sorted(rec["metrics"])
    assert third["metrics"] == again["metrics"]
