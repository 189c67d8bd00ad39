"""Imported and exported reference statistics (features/stats_file.py, reference.stats,
``evalsuite stats``).

Tolerances: FID from imported statistics vs. pytorch-fid's ``calculate_frechet_distance``
(scipy sqrtm) on the same mu/sigma, full-rank 64-dim Gaussians: 1e-9 relative. Export ->
import round trips are exact (float64 written and read back bit for bit).
"""

import json
import logging

import numpy as np
import pytest

from evalsuite.tasks.stats import export_stats
from evalsuite.config.build import build
from evalsuite.data.reference import skimage_photos, stats_only
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import (EvalOptions, Inputs, check_reference_stats, evaluate_sources,
                                reference_features)
from evalsuite.features.sources import ArraySource, FolderSource
from evalsuite.features.standins import photo_crops, write_folder
from evalsuite.features.stats_file import load_stats, write_stats
from evalsuite.io import sha256_file
from evalsuite.metrics.fid import CleanFID, LegacyFID
from evalsuite.metrics.kid import LegacyKID


def gaussian(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ (np.eye(d) + 0.2 * rng.normal(size=(d, d))) + shift


@pytest.mark.parametrize("writer", ["pytorch-fid", "evalsuite"])
def test_fid_on_imported_statistics_equals_pytorch_fid(tmp_path, writer):
    from pytorch_fid.fid_score import compute_statistics_of_path, calculate_frechet_distance

    ref, gen = gaussian(300, 64, 0), gaussian(200, 64, 1, shift=0.3)
    mu, sigma = ref.mean(0), np.cov(ref, rowvar=False)
    path = tmp_path / "stats.npz"
    if writer == "pytorch-fid":  # what `python -m pytorch_fid --save-stats` writes
        np.savez_compressed(path, mu=mu, sigma=sigma)
    else:
        write_stats(path, mu, sigma, 300, {"test": True})
    # pytorch-fid reads the file as it reads its own (.npz path: f['mu'], f['sigma'])
    m2, s2 = compute_statistics_of_path(str(path), None, 1, 64, "cpu")
    np.testing.assert_array_equal(m2, mu)
    np.testing.assert_array_equal(s2, sigma)

    m = LegacyFID(dims=64)
    m.prepare({"inception_pytorch_fid": None})  # features are given: the network never runs
    m.use_reference_stats(load_stats(path))
    m.update(gen.astype(np.float32), real=False)
    r = m.compute()
    g = gen.astype(np.float32).astype(np.float64)
    expected = calculate_frechet_distance(g.mean(0), np.cov(g, rowvar=False), mu, sigma)
    assert r.value == pytest.approx(expected, rel=1e-9)
    imported = r.settings["reference_statistics"]
    assert imported["sha256"] == sha256_file(path) and imported["file"] == str(path.resolve())
    if writer == "pytorch-fid":  # the count is not in the file: recorded as unknown
        assert r.settings["n_ref"] == "unknown" and "n_ref_note" in r.settings
        assert r.settings["reliable"] is True  # judged on the 200 > 64 generated images only
    else:
        assert r.settings["n_ref"] == 300
    assert m.identity()["params"]["reference_statistics"]["sha256"] == sha256_file(path)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "absent.npz", "does not exist"),
    (lambda p: (p / "t.npz").write_text("not a zip") and p / "t.npz", "not a readable .npz"),
    (lambda p: np.save(p / "a.npy", np.zeros(3)) or p / "a.npy", r"single array \(.npy\)"),
    (lambda p: _npz(p / "k.npz", mu=np.zeros(4)), "has no 'sigma'"),
    (lambda p: _npz(p / "k.npz", m=np.zeros(4), s=np.eye(4)), "has no 'mu' or 'sigma'"),
    (lambda p: _npz(p / "f.npz", mu=np.array([0, np.nan, 0, 0]), sigma=np.eye(4)),
     "'mu' has 1 non-finite"),
    (lambda p: _npz(p / "f.npz", mu=np.zeros(4), sigma=np.full((4, 4), np.inf)),
     "'sigma' has 16 non-finite"),
    (lambda p: _npz(p / "s.npz", mu=np.zeros(4), sigma=np.zeros((4, 3))),
     r"'sigma' has shape \(4, 3\), not the square \(4, 4\)"),
    (lambda p: _npz(p / "s.npz", mu=np.zeros(3), sigma=np.eye(4)), r"square \(3, 3\)"),
    (lambda p: _npz(p / "s.npz", mu=np.zeros((2, 2)), sigma=np.eye(2)), r"'mu' has shape"),
    (lambda p: _npz(p / "n.npz", mu=np.zeros(2), sigma=np.eye(2), n=np.float64(3)),
     "'n' is"),
])
def test_a_bad_statistics_file_is_named_when_the_reference_is_built(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(EvalsuiteError, match=match) as e:
        skimage_photos(resolution=8, stats={"fid_legacy": str(path)})
    assert str(path) in str(e.value) and "reference.stats.fid_legacy" in str(e.value)


def test_dims_are_checked_against_the_metric(tmp_path):
    path = write_stats(tmp_path / "s.npz", np.zeros(64), np.eye(64), 10, {})
    stats = load_stats(path)
    with pytest.raises(EvalsuiteError, match=r"s\.npz has 64-dim features.* gives 2048"):
        CleanFID().use_reference_stats(stats)
    with pytest.raises(EvalsuiteError, match="serve FID metrics only"):
        check_reference_stats({"kid": stats}, {"kid": LegacyKID})
    with pytest.raises(EvalsuiteError, match="64-dim"):
        check_reference_stats({"fid": stats}, {"fid": LegacyFID})
    check_reference_stats({"fid": stats, "unused": stats}, {"fid": lambda: LegacyFID(64)})


def _opts(cache, **kw):
    return EvalOptions(assets_dir="assets", allow_random_weights=True, verify_assets=False,
                       on_error="raise", batch_size=4, cache_dir=cache, **kw)


def test_export_then_import_gives_the_identical_fid(tmp_path):
    gen = FolderSource(write_folder(tmp_path / "gen", photo_crops(6, 24, seed=1, noise=30)))
    ref = FolderSource(write_folder(tmp_path / "ref", photo_crops(9, 24, seed=2)))
    fid = {"fid_legacy": lambda: LegacyFID(dims=64)}
    cache = tmp_path / "cache"
    from_images = evaluate_sources(Inputs(samples=gen, reference=ref), fid, [], _opts(cache))

    files = reference_features(ref, {"fid_legacy": LegacyFID(dims=64)}, _opts(cache))
    st = files["fid_legacy"].stats()
    path = write_stats(tmp_path / "ref-fid_legacy.npz", st.mu, st.cov, st.n, {"from": "test"})
    imported = load_stats(path)
    assert imported.n == 9 and imported.provenance == {"from": "test"}
    np.testing.assert_array_equal(imported.mu, st.mu)
    np.testing.assert_array_equal(imported.sigma, st.cov)

    inputs = Inputs(samples=gen, reference=None, reference_stats={"fid_legacy": imported})
    from_file = evaluate_sources(inputs, fid, [], _opts(cache))
    a, b = from_images.metrics["fid_legacy"], from_file.metrics["fid_legacy"]
    assert b["value"] == a["value"]  # bit for bit
    assert not from_file.cached  # another input (a file, not images): its own cache entry
    assert b["settings"]["n_ref"] == 9 and "reference_statistics" in b["settings"]
    assert "reference_statistics" not in a["settings"]
    assert from_file.features_cached == ["samples:inception_v3_pytorch_fid"]


def test_statistics_made_with_other_feature_settings_or_weights_are_refused(tmp_path):
    """A file from `evalsuite stats` says which extractor made it: another network, eval
    resize or weights would compare two different feature spaces, so it is refused."""
    made = LegacyFID(dims=64)
    made.prepare({"inception_pytorch_fid": None})  # random-init weights
    prov = {"extractor": made.extractor.identity()}
    stats = load_stats(write_stats(tmp_path / "s.npz", np.zeros(64), np.eye(64), 10, prov))
    LegacyFID(dims=64).use_reference_stats(stats)  # same settings: accepted
    with pytest.raises(EvalsuiteError, match=r"other feature settings \(params"):
        LegacyFID(dims=64, resize="squash", size=256).use_reference_stats(stats)
    other = dict(prov, extractor={**prov["extractor"], "weights": {"x.pth": "ab" * 32}})
    stats2 = load_stats(write_stats(tmp_path / "s2.npz", np.zeros(64), np.eye(64), 10, other))
    fid = LegacyFID(dims=64)
    fid.use_reference_stats(stats2)
    with pytest.raises(EvalsuiteError, match="other Inception weights"):
        fid.prepare({"inception_pytorch_fid": None})
    assert load_stats(tmp_path / "s.npz").record()["n"] == 10


def test_stats_only_reference_skips_metrics_that_need_images(tmp_path):
    gen = FolderSource(write_folder(tmp_path / "gen", photo_crops(4, 24, seed=1)))
    path = write_stats(tmp_path / "s.npz", *(lambda x: (x.mean(0), np.cov(x, rowvar=False)))(
        gaussian(80, 64, 3)), 80, {})
    only = stats_only("published", {"fid_legacy": str(path)})
    assert only.describe() == {"name": "published", "n": 0, "images": False,
                               "stats": {"fid_legacy": {"sha256": sha256_file(path), "dims": 64,
                                                        "n": 80}}}
    metrics = {"fid_legacy": lambda: LegacyFID(dims=64), "fid_other": lambda: LegacyFID(dims=64),
               "kid_legacy": lambda: LegacyKID(dims=64, num_subsets=2)}
    inputs = Inputs(samples=gen, reference=None, reference_stats=only.stats)
    res = evaluate_sources(inputs, metrics, [], _opts(tmp_path / "cache"))
    assert set(res.metrics) == {"fid_legacy"}
    for name in ("fid_other", "kid_legacy"):
        assert "imported statistics only (for fid_legacy), no images" in res.skipped[name]
    assert "+reference.stats.fid_other=<.npz>" in res.skipped["fid_other"]
    assert "imported statistics serve FID only" in res.skipped["kid_legacy"]
    with pytest.raises(EvalsuiteError, match="needs at least one statistics file"):
        stats_only("x", {})


def test_imported_stats_enter_describe_but_not_the_feature_key(tmp_path):
    path = write_stats(tmp_path / "s.npz", np.zeros(64), np.eye(64), 5, {})
    plain, with_stats = skimage_photos(resolution=8), skimage_photos(
        resolution=8, stats={"fid_legacy": str(path)})
    assert "stats" not in plain.describe()
    assert with_stats.describe() == {**plain.describe(), "stats": {"fid_legacy": {
        "sha256": sha256_file(path), "dims": 64, "n": 5}}}
    assert ArraySource.from_reference(plain).identity() == \
        ArraySource.from_reference(with_stats).identity()


def test_stats_command_exports_through_the_run_cache(compose, tmp_path, caplog):
    """`evalsuite stats` (its function): one file per FID metric, <reference>-<metric>-<key>,
    features in the run's cache; a second export reuses them."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import CONF_DIR

    compose()  # registers the run schemas (the stats schema: importing export_stats above)
    GlobalHydra.instance().clear()
    overrides = ["world=tiny", "metrics=fid_legacy", "metrics.items.fid_legacy.dims=64",
                 "~metrics.items.clip_score", "+metrics.items.kid_legacy._target_="
                 "evalsuite.metrics.kid.LegacyKID", "metrics.allow_random_weights=true",
                 "model.resolution=16", f"paths.results_dir={tmp_path}/results",
                 f"paths.assets_dir={tmp_path}/assets"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = hydra_compose("stats", overrides=overrides)
    assert cfg.stats.out_dir == f"{tmp_path}/results/stats"
    caplog.set_level(logging.INFO)
    written = export_stats(cfg)
    key = load_stats(written[0]).provenance["feature_cache_key"][:12]
    assert [p.name for p in written] == [f"skimage_photos-fid_legacy-{key}.npz"]
    assert "reference statistics computed: skimage_photos inception_v3_pytorch_fid (14 images)" \
        in caplog.text
    st = load_stats(written[0])
    assert st.n == 14 and st.dims == 64
    prov = st.provenance
    assert prov["reference"]["name"] == "skimage_photos" and prov["metric"] == "fid_legacy"
    assert prov["extractor"]["weights"] == {"inception_pytorch_fid": "random_init:0"}
    assert json.loads(json.dumps(prov)) == prov
    # the same features a run would use: the reference built from the run config, same cache
    ref = ArraySource.from_reference(build(cfg.reference, "reference"))
    files = reference_features(ref, {"fid_legacy": build(cfg.metrics["items"]["fid_legacy"],
                                                          "m")},
                               _opts(tmp_path / "results" / "cache"))
    np.testing.assert_array_equal(files["fid_legacy"].stats().mu, st.mu)
    caplog.clear()
    assert export_stats(cfg) == written  # same settings: the same file, rewritten identically
    assert "reference statistics reused: skimage_photos" in caplog.text
    assert "reference statistics computed" not in caplog.text
    # other settings (here the eval resize) never overwrite it
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        other = hydra_compose("stats", overrides=[*overrides, "+metrics.items.fid_legacy.resize=squash",
                                                  "+metrics.items.fid_legacy.size=8"])
    assert export_stats(other)[0].name != written[0].name and written[0].is_file()


def test_statistics_from_other_images_than_the_reference_are_refused(tmp_path):
    """An `evalsuite stats` file names the image set it was made from; importing it into a
    reference whose images differ (here: another resolution) would compare the samples with
    the wrong images under this reference's name."""
    from evalsuite.data.reference import check_stats_images

    ref16 = skimage_photos(resolution=16)
    prov = {"reference": ref16.describe()}
    path = write_stats(tmp_path / "s.npz", np.zeros(8), np.eye(8), 14, prov)
    check_stats_images(skimage_photos(resolution=16, stats={"fid_legacy": str(path)}))
    with pytest.raises(EvalsuiteError, match=r"computed from the image set skimage_photos"):
        check_stats_images(skimage_photos(resolution=24, stats={"fid_legacy": str(path)}))
    check_stats_images(stats_only(stats={"fid_legacy": str(path)}))  # nothing to compare with


def test_statistics_made_with_other_weights_skip_only_their_metric(tmp_path):
    gen = FolderSource(write_folder(tmp_path / "gen", photo_crops(4, 24, seed=1)))
    ref = FolderSource(write_folder(tmp_path / "ref", photo_crops(5, 24, seed=2)))
    made = LegacyFID(dims=64)
    made.prepare({"inception_pytorch_fid": None})
    other = {"extractor": {**made.extractor.identity(), "weights": {"x": "ab" * 32}}}
    stats = load_stats(write_stats(tmp_path / "s.npz", np.zeros(64), np.eye(64), 10, other))
    metrics = {"fid_legacy": lambda: LegacyFID(dims=64), "fid_small": lambda: LegacyFID(dims=192)}
    with pytest.raises(EvalsuiteError, match="other Inception weights"):  # before generation
        check_reference_stats({"fid_legacy": stats}, metrics, _opts(tmp_path / "c"))
    opts = EvalOptions(assets_dir="assets", allow_random_weights=True, verify_assets=False,
                       on_error="skip", batch_size=4, cache_dir=tmp_path / "c")
    res = evaluate_sources(Inputs(samples=gen, reference=ref,
                                  reference_stats={"fid_legacy": stats}), metrics, [], opts)
    assert "other Inception weights" in res.skipped["fid_legacy"]
    assert "fid_small" in res.metrics  # the other metrics are still computed
