"""Feature extraction: batch-size independence (bit for bit), one decode per image, the
on-disk cache (keys, atomic writes, reuse) and deterministic statistics."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from evalsuite.assets import ResolvedAsset
from evalsuite.errors import ConfigError
from evalsuite.evaluate import EvalOptions, Inputs, evaluate_sources
from evalsuite.features.cache import FeatureCache, feature_key
from evalsuite.features.clip import CLIPImageEmbedding
from evalsuite.features.inception import CleanFIDInception, PytorchFIDInception
from evalsuite.features.resize import resize_square
from evalsuite.features.sources import FolderSource
from evalsuite.features.standins import (photo_crops, register_tiny_clip,
                                         save_clean_fid_standin, write_folder)
from evalsuite.metrics.clip_score import CLIPScore
from evalsuite.metrics.cmmd import CMMD
from evalsuite.metrics.fid import CleanFID, LegacyFID, TensorflowLegacyFID
from evalsuite.metrics.kid import CleanKID, LegacyKID
from evalsuite.metrics.pixel import PSNR


@pytest.fixture(scope="module")
def assets_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("assets")
    save_clean_fid_standin(d / "inception-2015-12-05.pt", seed=1)
    return d


@pytest.mark.parametrize("make", [
    lambda: CleanFIDInception("clean"),
    lambda: PytorchFIDInception(dims=64),
    lambda: CLIPImageEmbedding(register_tiny_clip(), "test"),
], ids=["clean_fid", "pytorch_fid_64", "clip"])
def test_features_do_not_depend_on_the_batch(make, assets_dir):
    ex = make()
    ex.bind({a: (ResolvedAsset(assets_dir / "inception-2015-12-05.pt", "x", False)
                 if a == "inception_clean_fid" else None) for a in ex.required_assets()})
    images = list(photo_crops(10, 24, seed=4))  # > one micro-batch of 8
    whole = ex(images)
    threes = np.concatenate([ex(images[i:i + 3]) for i in range(0, 10, 3)])
    shuffled = ex(images[::-1])[::-1]
    for other in (threes, shuffled):
        np.testing.assert_array_equal(whole, other)
    np.testing.assert_array_equal(whole[4:5], ex(images[4:5]))


def test_feature_key_names_every_factor(assets_dir):
    ex = CleanFIDInception("clean")
    ex.bind({"inception_clean_fid": ResolvedAsset(assets_dir / "w", "aaa", False)})
    base = feature_key({"sha256": "imgs"}, ex.identity())
    other_weights = CleanFIDInception("clean")
    other_weights.bind({"inception_clean_fid": ResolvedAsset(assets_dir / "w", "bbb", False)})
    other_mode = CleanFIDInception("legacy_tensorflow")
    other_mode.bind({"inception_clean_fid": ResolvedAsset(assets_dir / "w", "aaa", False)})
    layer_a, layer_b = PytorchFIDInception(64), PytorchFIDInception(2048)
    for e in (layer_a, layer_b):
        e.bind({"inception_pytorch_fid": None})
    keys = {base, feature_key({"sha256": "other"}, ex.identity()),
            feature_key({"sha256": "imgs"}, other_weights.identity()),
            feature_key({"sha256": "imgs"}, other_mode.identity()),
            feature_key({"sha256": "imgs"}, layer_a.identity()),
            feature_key({"sha256": "imgs"}, layer_b.identity())}
    assert len(keys) == 6
    assert "resize" in ex.identity()["params"] and "layer" in ex.identity()["params"]


def test_cache_writes_atomically_and_reads_back(tmp_path):
    cache = FeatureCache(tmp_path)
    rows = np.random.default_rng(0).random((10, 4), np.float32)
    w = cache.writer("k1", [str(i) for i in range(10)], 4, {"i": 1}, {"e": 1})
    w.append(rows[:3])
    assert cache.get("k1") is None  # nothing visible before commit
    w.append(rows[3:])
    f = w.commit()
    assert not list(tmp_path.glob(".tmp-*"))
    np.testing.assert_array_equal(f.array(), rows)
    np.testing.assert_array_equal(np.concatenate(list(f.blocks(4))), rows)
    assert cache.get("k1").ids == [str(i) for i in range(10)]
    w2 = cache.writer("k2", ["a", "b"], 4, {}, {})
    w2.append(rows[:1])
    with pytest.raises(ValueError, match="1 rows written, 2 declared"):
        w2.commit()
    assert cache.get("k2") is None and not list(tmp_path.glob(".tmp-*"))


class CountingSource(FolderSource):
    reads: Counter = Counter()

    def read(self, image_id):
        CountingSource.reads[(self.dir.name, image_id)] += 1
        return super().read(image_id)


def _score(gen, ref, assets_dir, cache, metrics, batch_size=4):
    texts = {i: f"photo {i}" for i in gen.ids}
    inputs = Inputs(samples=gen, texts=texts, reference=ref, paired={"reference": ref})
    opts = EvalOptions(assets_dir=str(assets_dir), allow_random_weights=True,
                       verify_assets=False, on_error="raise", batch_size=batch_size,
                       cache_dir=cache)
    return evaluate_sources(inputs, metrics, ["reference"], opts)


def test_one_pass_reads_each_image_once_and_reuses_the_cache(tmp_path, assets_dir):
    clip = register_tiny_clip()
    gen = CountingSource(write_folder(tmp_path / "gen", photo_crops(7, 24, seed=1, noise=30)))
    ref = CountingSource(write_folder(tmp_path / "ref", photo_crops(7, 24, seed=2)))
    metrics = {"fid_clean": CleanFID, "kid_clean": lambda: CleanKID(num_subsets=5),
               "cmmd": lambda: CMMD(clip, "test"), "psnr": PSNR,
               "clip_score": lambda: CLIPScore(clip, "test")}
    CountingSource.reads.clear()
    first = _score(gen, ref, assets_dir, tmp_path / "cache", metrics)
    assert set(first.metrics) == {"fid_clean", "kid_clean", "cmmd", "psnr/reference",
                                  "clip_score"}
    assert len(CountingSource.reads) == 14 and set(CountingSource.reads.values()) == {1}
    # one Inception pass serves FID and KID: 2 extractors x 2 image sets
    assert len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 4

    CountingSource.reads.clear()
    again = _score(gen, ref, assets_dir, tmp_path / "cache", metrics)
    assert again.metrics == first.metrics and len(again.cached) == 5
    assert not CountingSource.reads  # nothing decoded at all

    CountingSource.reads.clear()
    more = _score(gen, ref, assets_dir, tmp_path / "cache",
                  {"kid_clean": lambda: CleanKID(num_subsets=5, seed=1)})
    assert not CountingSource.reads and more.features_cached  # new metric, cached features
    assert more.metrics["kid_clean"]["value"] != first.metrics["kid_clean"]["value"]


def test_values_do_not_depend_on_the_pass_batch_size(tmp_path, assets_dir):
    gen = FolderSource(write_folder(tmp_path / "gen", photo_crops(9, 24, seed=1, noise=30)))
    ref = FolderSource(write_folder(tmp_path / "ref", photo_crops(9, 24, seed=2)))
    metrics = {"fid_clean": CleanFID, "kid_clean": lambda: CleanKID(num_subsets=3)}
    a = _score(gen, ref, assets_dir, tmp_path / "c1", metrics, batch_size=2)
    b = _score(gen, ref, assets_dir, tmp_path / "c2", metrics, batch_size=16)
    assert a.metrics == b.metrics  # bit for bit, including the recorded settings
    files = {p.name: p.read_bytes() for p in (tmp_path / "c1" / "features").glob("*.npy")}
    assert files == {p.name: p.read_bytes() for p in (tmp_path / "c2" / "features").glob("*.npy")}


def test_folder_identity_is_content_based_and_cached(tmp_path):
    a = write_folder(tmp_path / "a", photo_crops(3, 8))
    b = write_folder(tmp_path / "b", photo_crops(3, 8))
    ia = FolderSource(a, tmp_path / "cache").identity()
    assert ia == FolderSource(b, tmp_path / "cache").identity()  # same files, other folder
    assert list((tmp_path / "cache" / "folders").glob("*.json"))
    Path(a / "00001.png").write_bytes((b / "00000.png").read_bytes())
    assert FolderSource(a, tmp_path / "cache").identity() != ia


@pytest.mark.parametrize("make", [
    lambda **kw: CleanFID(**kw), lambda **kw: LegacyFID(dims=64, **kw),
    lambda **kw: TensorflowLegacyFID(**kw), lambda **kw: CleanKID(**kw),
    lambda **kw: LegacyKID(dims=64, **kw), lambda **kw: CMMD(register_tiny_clip(), "test", **kw),
], ids=["fid_clean", "fid_legacy", "fid_legacy_tf", "kid_clean", "kid_legacy", "cmmd"])
def test_eval_resize_is_checked_in_the_constructor_and_is_part_of_the_identity(make):
    plain, squash, crop = make(), make(resize="squash", size=256), make(resize="center_crop",
                                                                        size=256)
    assert "eval_resize" not in plain.extractor.params()  # unchanged identity without it
    assert squash.params()["features"]["eval_resize"]["mode"] == "squash"
    specs = {json.dumps(m.extractor.spec(), sort_keys=True) for m in (plain, squash, crop)}
    assert len(specs) == 3  # three feature-cache keys
    assert len({json.dumps(m.identity(), sort_keys=True) for m in (plain, squash, crop)}) == 3
    assert make(resize="none").extractor.eval_resize is None
    name = plain.name
    for kw, match in (({"resize": "stretch", "size": 256}, "resize='stretch'"),
                      ({"resize": "squash"}, "size=None: resize=squash needs"),
                      ({"resize": "center_crop", "size": 0}, "size=0"),
                      ({"size": 256}, "size=256 is given without resize")):
        with pytest.raises(ConfigError, match=f"^{name}: {re.escape(match)}"):
            make(**kw)


def test_eval_resize_runs_before_preprocessing_and_is_a_noop_at_its_size():
    plain, squash = LegacyFID(dims=64), LegacyFID(dims=64, resize="squash", size=16)
    for m in (plain, squash):
        m.prepare({"inception_pytorch_fid": None})
    wide = [im[:16] for im in photo_crops(3, 24, seed=5)]  # 24 x 16
    small = list(photo_crops(3, 16, seed=6))
    np.testing.assert_array_equal(squash.extractor(wide),
                                  plain.extractor([resize_square(im, "squash", 16) for im in wide]))
    np.testing.assert_array_equal(squash.extractor(small), plain.extractor(small))
    assert not np.array_equal(squash.extractor(wide), plain.extractor(wide))
