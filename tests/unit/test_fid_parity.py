"""FID parity with the reference libraries, same images, same weight file (seeded stand-ins).

- legacy protocol vs. pytorch-fid's ``calculate_fid_given_paths`` (it loads the stand-in from
  ``$TORCH_HOME/hub/checkpoints`` exactly as it would load the real file);
- clean protocol vs. clean-fid: features bit-for-bit equal to ``get_folder_features`` with
  clean-fid's own ``InceptionV3W`` on the same TorchScript file (modes clean and
  legacy_tensorflow), statistics equal to clean-fid's ``np.mean``/``np.cov``, and the distance
  equal to clean-fid's ``frechet_distance`` where its ``sqrtm`` is accurate.
End-to-end ``compute_fid`` at 2048 dims (scipy ``sqrtm``: ~15-60 s per call on two cores) is
in the slow tests below.

Tolerances: pytorch-fid 1e-5 relative (measured ~4e-7: its sqrtm of rank-deficient
covariances); features exact; statistics 1e-12; distance 1e-9.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.assets import ResolvedAsset
from evalsuite.features.sources import FolderSource
from evalsuite.features.standins import (photo_crops, save_clean_fid_standin,
                                         save_pytorch_fid_standin, write_folder)
from evalsuite.metrics.fid import CleanFID, LegacyFID, TensorflowLegacyFID
from evalsuite.metrics.functional.frechet import frechet_distance

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    gen = write_folder(root / "gen", photo_crops(16, 32, seed=1, noise=25))
    ref = write_folder(root / "ref", photo_crops(16, 32, seed=2, noise=5))
    return gen, ref


@pytest.fixture(scope="module")
def clean_weights(tmp_path_factory):
    return save_clean_fid_standin(tmp_path_factory.mktemp("cf") / "inception-2015-12-05.pt")


def ours(metric, asset: str, weights: Path, gen: Path, ref: Path):
    metric.prepare({asset: ResolvedAsset(weights, "stand-in", verified=False)})
    for real, folder in ((False, gen), (True, ref)):
        src = FolderSource(folder)
        metric.update(metric.extractor([src.read(i) for i in src.ids]), real)
    return metric.compute()


def test_legacy_fid_equals_pytorch_fid(folders, tmp_path, monkeypatch):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    w = save_pytorch_fid_standin(tmp_path / "hub" / "checkpoints" /
                                 "pt_inception-2015-12-05-6726825d.pth", seed=3)
    gen, ref = folders
    # pytorch-fid's block 0 (64 dims) keeps the test fast; the network, resize and statistics
    # are the same code paths as at 2048 dims (see the slow test).
    r = ours(LegacyFID(dims=64), "inception_pytorch_fid", w, gen, ref)
    expected = calculate_fid_given_paths([str(gen), str(ref)], 8, "cpu", 64, 0)
    assert r.value == pytest.approx(expected, rel=1e-5)
    assert r.value > 0.01
    assert r.settings["protocol"] == "pytorch-fid" and r.settings["n_gen"] == 16
    assert r.weights["verified"] is False


@pytest.mark.parametrize("cls, mode", [(CleanFID, "clean"),
                                       (TensorflowLegacyFID, "legacy_tensorflow")])
def test_clean_fid_features_and_statistics_equal_clean_fid(cls, mode, folders, clean_weights):
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    gen, ref = folders
    model = InceptionV3W(str(clean_weights.parent), download=False,
                         resize_inside=mode != "clean")
    bs = cls().extractor.micro_batch  # the same kernel shapes (16 images: two full batches)
    theirs = {f: cfid.get_folder_features(str(f), model, num_workers=0, batch_size=bs,
                                          device=CPU, mode=mode, verbose=False)
              for f in (gen, ref)}
    m = cls()
    m.prepare({"inception_clean_fid": ResolvedAsset(clean_weights, "x", verified=False)})
    for real, f in ((False, gen), (True, ref)):
        src = FolderSource(f)
        feats = m.extractor([src.read(i) for i in src.ids])
        np.testing.assert_array_equal(feats, theirs[f])  # bit for bit
        m.update(feats, real)
    value = m.compute().value
    g, r = m._gen.finalize(), m._ref.finalize()
    for st, f in ((g, gen), (r, ref)):
        np.testing.assert_allclose(st.mu, np.mean(theirs[f], axis=0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(st.cov, np.cov(theirs[f], rowvar=False), rtol=1e-10, atol=1e-12)
    assert np.isfinite(value) and value > 0


def test_frechet_distance_equals_clean_fid_where_sqrtm_is_accurate(folders, clean_weights):
    """The distance itself, on clean-fid's features restricted to 8 dims (16 > 8 images:
    full-rank covariances, where scipy's sqrtm is accurate)."""
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    model = InceptionV3W(str(clean_weights.parent), download=False, resize_inside=False)
    f1, f2 = (cfid.get_folder_features(str(f), model, num_workers=0, batch_size=16, device=CPU,
                                       mode="clean", verbose=False)[:, :8].astype(np.float64)
              for f in folders)
    mu1, s1, mu2, s2 = f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False)
    expected = cfid.frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2).value == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_clean_fid_end_to_end_at_2048_dims(tmp_path, clean_weights):
    """compute_fid vs. CleanFID at 2048 dims with more images than dimensions (full rank)."""
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    gen = write_folder(tmp_path / "gen", photo_crops(2100, 16, seed=1, noise=25))
    ref = write_folder(tmp_path / "ref", photo_crops(2100, 16, seed=2, noise=5))
    model = InceptionV3W(str(clean_weights.parent), download=False, resize_inside=False)
    expected = cfid.compute_fid(str(gen), str(ref), mode="clean", custom_feat_extractor=model,
                                device=CPU, num_workers=0, batch_size=100, verbose=False)
    r = ours(CleanFID(), "inception_clean_fid", clean_weights, gen, ref)
    assert r.settings["reliable"]
    assert r.value == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_legacy_fid_end_to_end_at_2048_dims(folders, tmp_path, monkeypatch):
    """pytorch-fid at pool3 (2048 dims) on 16 images: rank-deficient covariances, where
    scipy's sqrtm is off by ~1e-6 relative; ours uses the exact low-rank formula."""
    from pytorch_fid.fid_score import calculate_fid_given_paths

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    w = save_pytorch_fid_standin(tmp_path / "hub" / "checkpoints" /
                                 "pt_inception-2015-12-05-6726825d.pth", seed=3)
    gen, ref = folders
    r = ours(LegacyFID(), "inception_pytorch_fid", w, gen, ref)
    expected = calculate_fid_given_paths([str(gen), str(ref)], 8, "cpu", 2048, 0)
    assert r.value == pytest.approx(expected, rel=1e-4)
    assert r.settings["reliable"] is False
