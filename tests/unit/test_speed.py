"""The speed work keeps every value: batched legacy_tensorflow features equal the network run
one image at a time (clean-fid's way at batch size 1), and the benchmarks run (smoke)."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.assets import ResolvedAsset
from evalsuite.features.inception import CleanFIDInception
from evalsuite.features.standins import photo_crops, save_clean_fid_standin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_clean_fid_standin(tmp_path_factory.mktemp("w") / "inception-2015-12-05.pt", seed=1)


def _extractor(weights, resize=None, size=None):
    ex = CleanFIDInception("legacy_tensorflow")
    ex.bind({"inception_clean_fid": ResolvedAsset(weights, "x", verified=False)})
    ex.set_eval_resize(resize, size)
    return ex


def test_legacy_tensorflow_batches_mixed_sizes_as_clean_fid_does_each_size(weights, tmp_path):
    """16 images in two sizes, interleaved: each size's features equal clean-fid's
    ``get_folder_features`` at batch size 8 (the same kernel shapes) on a folder of that size,
    bit for bit, and do not depend on the order or on how the images are split into calls."""
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    from evalsuite.features.standins import write_folder

    small, large = photo_crops(8, 24, seed=1), photo_crops(8, 40, seed=2)
    images = [im for pair in zip(small, large) for im in pair]
    ex = _extractor(weights)
    feats = ex(images)
    assert ex.micro_batch == 8 and feats.shape == (16, 2048)
    model = InceptionV3W(str(weights.parent), download=False, resize_inside=True)
    for k, group in enumerate((small, large)):
        theirs = cfid.get_folder_features(str(write_folder(tmp_path / str(k), group)), model,
                                          num_workers=0, batch_size=8,
                                          device=torch.device("cpu"),
                                          mode="legacy_tensorflow", verbose=False)
        np.testing.assert_array_equal(feats[k::2], theirs)
    np.testing.assert_array_equal(ex(images[::-1])[::-1], feats)
    np.testing.assert_array_equal(np.concatenate([ex(images[i:i + 3])
                                                  for i in range(0, 16, 3)]), feats)


def test_legacy_tensorflow_groups_by_the_evaluated_size(weights):
    images = [photo_crops(1, 24, seed=1)[0], photo_crops(1, 40, seed=2)[0]]
    feats = _extractor(weights, "squash", 32)(images)  # both become 32x32: one group
    for i, im in enumerate(images):
        np.testing.assert_array_equal(feats[i], _extractor(weights, "squash", 32)([im])[0])


def test_gpu_benchmark_runs_on_cpu_with_the_tiny_model(tmp_path):
    """Smoke (no timing assertion): both generators give the same images, both feature
    extractors the same features."""
    out = tmp_path / "gpu.json"
    argv = ["gpu.py", "--device", "cpu", "--n", "2", "--batch", "2", "--steps", "2",
            "--repeat", "1", "--feature-images", "8", "--feature-size", "32",
            "--feature-batch", "8", "--json", str(out)]  # same shapes: same bits
    old = sys.argv
    try:
        sys.argv = argv
        runpy.run_path(str(REPO / "benchmarks" / "gpu.py"), run_name="__main__")
    finally:
        sys.argv = old
    r = json.loads(out.read_text())
    g, f = r["generation"], r["features"]
    assert g["max_abs_pixel_difference"] == 0 and g["evalsuite_images_per_s"] > 0
    assert g["raw_images_per_s"] > 0 and g["attention"]
    assert f["max_abs_feature_difference"] == 0.0 and f["evalsuite_images_per_s"] > 0


@pytest.mark.slow
def test_speed_benchmark_runs_and_values_match_the_libraries(tmp_path):
    """Smoke of benchmarks/speed_libraries.py at a tiny size: every library job and both
    evalsuite calls run, and the parity checks pass (exit status 0)."""
    out = tmp_path / "speed.json"
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speed_libraries.py"),
                           "--n", "4", "--size", "48", "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert set(r["ours"]) == {"paper", "full"}
    for which in ("paper", "full"):
        assert r["ours"][which]["warm"]["wall"] < r["ours"][which]["cold"]["wall"]
    assert "libraries / evalsuite cold" in proc.stdout
