"""KID vs. clean-fid on the same features (its compute_kid path: get_folder_features +
kernel_distance, subsets drawn from numpy's global RandomState).

Tolerances: 1e-12 relative against clean-fid's kernel_distance run in float64; 1e-4 relative
against clean-fid as it runs (float32 arithmetic on float32 features; KID is a small
difference of large kernel sums, so float32 alone moves it by ~1e-5).
"""

import numpy as np
import pytest
import torch

from evalsuite.assets import ResolvedAsset
from evalsuite.errors import EvalsuiteError
from evalsuite.features.sources import FolderSource
from evalsuite.features.standins import photo_crops, save_clean_fid_standin, write_folder
from evalsuite.metrics.functional.kid import kid
from evalsuite.metrics.kid import CleanKID


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    root = tmp_path_factory.mktemp("kid")
    w = save_clean_fid_standin(root / "w" / "inception-2015-12-05.pt", seed=5)
    gen = write_folder(root / "gen", photo_crops(24, 32, seed=1, noise=30))
    ref = write_folder(root / "ref", photo_crops(20, 32, seed=2, noise=5))
    model = InceptionV3W(str(w.parent), download=False, resize_inside=False)
    theirs = [cfid.get_folder_features(str(f), model, num_workers=0, batch_size=8,
                                       device=torch.device("cpu"), mode="clean", verbose=False)
              for f in (gen, ref)]
    return w, gen, ref, theirs


@pytest.mark.parametrize("subsets, size", [(10, 8), (3, 1000)])
def test_kid_equals_clean_fid(features, subsets, size):
    from cleanfid import fid as cfid

    w, gen, ref, (g, r) = features
    m = CleanKID(num_subsets=subsets, subset_size=size, seed=7)
    m.prepare({"inception_clean_fid": ResolvedAsset(w, "x", verified=False)})
    for real, folder in ((False, gen), (True, ref)):
        src = FolderSource(folder)
        m.update(m.extractor([src.read(i) for i in src.ids]), real)
    ours = m.compute()
    np.random.seed(7)
    as_run = cfid.kernel_distance(g, r, num_subsets=subsets, max_subset_size=size)
    np.random.seed(7)
    in_f64 = cfid.kernel_distance(g.astype(np.float64), r.astype(np.float64),
                                  num_subsets=subsets, max_subset_size=size)
    assert ours.value == pytest.approx(in_f64, rel=1e-12)
    assert ours.value == pytest.approx(as_run, rel=1e-4)
    assert ours.settings["subset_size_used"] == min(size, 20)
    assert ours.settings["seed"] == 7 and ours.settings["num_subsets"] == subsets


def test_kid_reads_only_subsets_of_a_memmap(tmp_path):
    x = np.random.default_rng(0).random((50, 16), np.float32)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert kid(mm, x[::-1], 5, 10, 0).mean == pytest.approx(kid(x, x[::-1], 5, 10, 0).mean,
                                                            rel=1e-12)


def test_kid_needs_two_images_per_set():
    m = CleanKID()
    m.update(np.ones((1, 2048), np.float32), real=False)
    m.update(np.ones((3, 2048), np.float32), real=True)
    with pytest.raises(EvalsuiteError, match="needs at least 2 generated images, got 1"):
        m.compute()
