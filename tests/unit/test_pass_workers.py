"""A pass run on several threads (``features.workers``) gives the values and feature files of
the same pass on one thread, bit for bit; errors in a worker abort the pass."""

import math
import threading

import numpy as np
import pytest

from evalsuite.evaluate import EvalOptions, Inputs, evaluate_sources
from evalsuite.features.cache import FeatureCache
from evalsuite.features.extract import FeaturePlan
from evalsuite.features.sources import FolderSource
from evalsuite.features.standins import (photo_crops, register_tiny_clip,
                                         save_clean_fid_standin, write_folder)
from evalsuite.features.workers import PassRunner, plan_threads, window
from evalsuite.metrics.clip_score import CLIPScore
from evalsuite.metrics.fid import CleanFID
from evalsuite.metrics.kid import CleanKID
from evalsuite.metrics.lpips import LPIPS
from evalsuite.metrics.pixel import PSNR, SSIM
from evalsuite.numerics import NonFiniteError
from evalsuite.threads import apply_threads, chosen_threads

THREADS_SEEN: set[str] = set()


class ThreadNotingSSIM(SSIM):
    """SSIM that notes which thread fed it (the pass must feed metrics off the main thread)."""

    def update(self, preds, target):
        THREADS_SEEN.add(threading.current_thread().name)
        super().update(preds, target)


@pytest.fixture
def workers():
    """Set the pass's worker count (``threads``) for one test; restored afterwards."""
    before = chosen_threads()

    def use(n):
        apply_threads(n)
    yield use
    apply_threads(before["count"] if before and before["source"] == "threads setting" else None)


def _score(tmp_path, name, batch_size=4):
    clip = register_tiny_clip()
    assets = tmp_path / "assets"
    if not assets.exists():
        save_clean_fid_standin(assets / "inception-2015-12-05.pt", seed=1)
    gen = FolderSource(write_folder(tmp_path / "gen", photo_crops(11, 64, seed=1, noise=30)))
    ref = FolderSource(write_folder(tmp_path / "ref", photo_crops(11, 64, seed=2)))
    metrics = {"fid_clean": CleanFID, "kid_clean": lambda: CleanKID(num_subsets=3),
               "psnr": PSNR, "ssim": ThreadNotingSSIM, "lpips": LPIPS,
               "clip_score": lambda: CLIPScore(clip, "test")}
    inputs = Inputs(samples=gen, texts={i: f"photo {i}" for i in gen.ids}, reference=ref,
                    paired={"reference": ref})
    opts = EvalOptions(assets_dir=str(assets), allow_random_weights=True, verify_assets=False,
                       on_error="raise", batch_size=batch_size, cache_dir=tmp_path / name)
    return evaluate_sources(inputs, metrics, ["reference"], opts)


def test_a_pass_on_three_threads_equals_the_pass_on_one(tmp_path, workers):
    workers(1)
    THREADS_SEEN.clear()
    one = _score(tmp_path, "one")
    assert THREADS_SEEN == {threading.current_thread().name}
    workers(3)
    THREADS_SEEN.clear()
    three = _score(tmp_path, "three", batch_size=8)
    assert THREADS_SEEN and threading.current_thread().name not in THREADS_SEEN
    assert set(one.metrics) == {"fid_clean", "kid_clean", "psnr/reference", "ssim/reference",
                                "lpips/reference", "clip_score"}
    for name in one.metrics:
        a, b = one.metrics[name], three.metrics[name]
        assert a["value"] == b["value"], name  # bit for bit
        assert a.get("per_image") == b.get("per_image"), name
    files = {p.name: p.read_bytes() for p in (tmp_path / "one" / "features").glob("*.npy")}
    assert len(files) == 2
    three_files = (tmp_path / "three" / "features").glob("*.npy")
    assert files == {p.name: p.read_bytes() for p in three_files}


class _NanNet:
    """An extractor whose third micro-batch is NaN (a failure in one worker among several)."""

    name, dims, micro_batch = "nan_net", 3, 2

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def identity(self):
        return {"name": self.name}

    def load(self):
        pass

    def __call__(self, images):
        with self.lock:
            self.calls += 1
        rows = np.ones((len(images), 3), np.float32)
        if images[0][0, 0, 0] == 2:
            rows[0, 0] = math.nan
        return rows


class _Images:
    ids = [str(i) for i in range(12)]

    def identity(self):
        return {"kind": "test"}

    def read(self, i):
        return np.full((4, 4, 3), int(i), np.uint8)


def test_an_error_in_a_worker_aborts_the_pass_and_publishes_nothing(tmp_path, workers):
    workers(2)
    plan = FeaturePlan(FeatureCache(tmp_path / "features"))
    plan.request("samples", _Images(), _NanNet())
    with pytest.raises(NonFiniteError, match=r"feature extractor nan_net \(samples images\)"):
        plan.run_pass({"samples": _Images()}, batch_size=4)
    assert not list((tmp_path / "features").glob("*.npy"))


def test_ordered_calls_run_in_submission_order_and_the_runner_bounds_concurrency():
    runner, order, running, peak = PassRunner(2), [], [0], [0]
    lock = threading.Lock()

    def piece(k):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.01)
        with lock:
            running[0] -= 1
        order.append(k)
    futs = [runner.submit_ordered("lane", piece, k) for k in range(6)]
    futs += [runner.submit(piece, 100 + k) for k in range(6)]
    for f in futs:
        f.result()
    runner.close()
    assert [k for k in order if k < 100] == list(range(6)) and peak[0] <= 2


def test_thread_plan():
    assert plan_threads(4, True, 3) == (4, 1)  # features: one intra-op thread per forward
    assert plan_threads(4, False, 1) == (1, 4)  # one metric alone keeps every core
    assert plan_threads(4, False, 2) == (2, 2)
    assert window(2, 6) == 2 and window(16, 2) == 16
