"""COCO reference sets (evalsuite/data/coco_reference.py): which images, how they are
preprocessed, that nothing is decoded before it is read, the content hash (order of the
annotation file, remembered digests) and clear errors for missing or corrupt files."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.config.build import build
from evalsuite.data import coco_reference
from evalsuite.data.coco import load_coco_prompts
from evalsuite.data.coco_reference import CocoReference
from evalsuite.data.reference import center_crop_resize
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import evaluate
from evalsuite.features.sources import DerivedSource as Reconstruction
from evalsuite.features import sources
from evalsuite.features.resize import resize_square
from evalsuite.features.sources import ArraySource
from evalsuite.metrics.fid import LegacyFID
from evalsuite.metrics.pixel import PSNR
from evalsuite.produce import manifest_entries
from evalsuite.samples.store import SampleStore
from fixtures import write_coco


@pytest.fixture
def coco(tmp_path):
    """8 captioned val2014 images (16x16, the first three replaced by 24x16 / 16x30 / gray
    ones), plus one image listed without captions: (annotation file, image folder)."""
    ann = write_coco(tmp_path / "coco", n_images=8)
    images = tmp_path / "coco" / "val2014"
    rng = np.random.default_rng(1)
    data = json.loads(ann.read_text())
    files = sorted(im["file_name"] for im in data["images"])
    Image.fromarray(rng.integers(0, 256, (16, 24, 3), np.uint8)).save(images / files[0])
    Image.fromarray(rng.integers(0, 256, (30, 16, 3), np.uint8)).save(images / files[1])
    Image.fromarray(rng.integers(0, 256, (16, 16), np.uint8), "L").save(images / files[2])
    data["images"].append({"id": 2000, "file_name": "COCO_val2014_000000002000.jpg"})
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8)).save(
        images / "COCO_val2014_000000002000.jpg")
    ann.write_text(json.dumps(data))
    return ann, images


def ref(coco, **kw):
    ann, images = coco
    return CocoReference(kw.pop("name", "coco"), str(ann), str(images), **kw)


def test_split_is_every_listed_image_in_id_order(coco):
    r = ref(coco, resize="squash", resolution=12)
    assert len(r.ids) == 9 and r.ids == sorted(r.ids)  # the caption-less image included
    assert r.ids[0] == "000000001000" and r.ids[-1] == "000000002000"
    for i in r.ids:
        im = r.read(i)
        assert im.dtype == np.uint8 and im.shape == (12, 12, 3)
    d = r.describe()
    assert d == {"name": "coco", "n": 9, "sha256": r.sha256, "preprocess": "squash+pil_bicubic@12",
                 "resolution": 12, "subset": "split"}
    assert r.identity() == {"kind": "coco_reference", "sha256": r.sha256, "n": 9}


def test_subset_prompts_picks_exactly_the_prompt_sets_images(coco):
    ann, images = coco
    for n, seed in ((3, 0), (5, 7)):
        prompts = load_coco_prompts("p", str(ann), n, seed)
        r = ref(coco, subset="prompts", n=n, seed=seed)
        assert r.ids == [p.id for p in prompts]
        assert list(r.files.values()) == [p.meta["file_name"] for p in prompts]
        assert r.describe()["subset"] == "prompts" and r.describe()["seed"] == seed
    assert ref(coco, subset="prompts", n=3, seed=0).sha256 != ref(coco, subset="prompts", n=3,
                                                                  seed=7).sha256


def test_order_of_the_annotation_file_changes_neither_set_nor_hash(coco, tmp_path):
    ann, images = coco
    data = json.loads(ann.read_text())
    data["images"].reverse()
    data["annotations"].reverse()
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps(data))
    for kw in ({}, {"subset": "prompts", "n": 4, "seed": 2}):
        a = CocoReference("a", str(ann), str(images), **kw)
        b = CocoReference("a", str(shuffled), str(images), **kw)
        assert a.ids == b.ids and a.files == b.files and a.sha256 == b.sha256


def test_squash_center_crop_and_none(coco):
    wide = "000000001000"  # stored as 24x16 (W x H)
    stored = np.asarray(Image.open(coco[1] / "COCO_val2014_000000001000.jpg").convert("RGB"))
    sets = {m: ref(coco, resize=m, resolution=8) for m in ("squash", "center_crop", "none")}
    # as is: the stored size; squash and crop: 8x8 but different pixels
    assert sets["none"].read(wide).shape == (16, 24, 3)
    np.testing.assert_array_equal(sets["none"].read(wide), stored)
    assert sets["none"].describe()["resolution"] is None
    squash, crop = sets["squash"].read(wide), sets["center_crop"].read(wide)
    assert squash.shape == crop.shape == (8, 8, 3) and not np.array_equal(squash, crop)
    # each is PIL bicubic on the uint8 image, as the shared resize and the old crop did
    pil = Image.fromarray(stored)
    np.testing.assert_array_equal(squash, np.asarray(pil.resize((8, 8), Image.BICUBIC)))
    np.testing.assert_array_equal(crop, np.asarray(pil.crop((4, 0, 20, 16)).resize(
        (8, 8), Image.BICUBIC)))
    np.testing.assert_array_equal(crop, center_crop_resize(pil, 8))
    # three preprocessings, three identities (feature caches never mix them)
    assert len({s.sha256 for s in sets.values()}) == 3
    assert len({json.dumps(s.identity()) for s in sets.values()}) == 3
    assert ref(coco, resize="squash", resolution=9).sha256 != sets["squash"].sha256


def test_grayscale_photographs_become_rgb(coco):
    gray = ref(coco, resize="none").read("000000001002")
    assert gray.shape == (16, 16, 3)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])


def test_resize_is_a_noop_at_the_target_size():
    im = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)
    for mode in ("squash", "center_crop"):
        assert resize_square(im, mode, 8) is im
    assert resize_square(im, "squash", 4).shape == (4, 4, 3)


def test_nothing_is_decoded_until_read_and_no_pixels_are_kept(coco, monkeypatch):
    calls = []
    real = coco_reference.decode_photo
    monkeypatch.setattr(coco_reference, "decode_photo", lambda p: calls.append(p) or real(p))
    r = ref(coco, resize="squash", resolution=8)
    r.describe()  # hashing reads bytes, never decodes
    assert calls == []
    first = r.read(r.ids[0])
    assert len(calls) == 1
    for i in r.ids:
        r.read(i)
    assert len(calls) == 1 + len(r.ids)  # every read decodes again: nothing is kept

    def arrays(v):
        items = v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else [v]
        return [x for x in items if isinstance(x, np.ndarray)]

    assert {k: len(arrays(v)) for k, v in vars(r).items() if arrays(v)} == {}
    assert ArraySource.from_reference(r) is r  # a lazy reference is its own image source
    np.testing.assert_array_equal(first, r.read(r.ids[0]))
    assert len(calls) == 2 + len(r.ids)


def test_content_hash_is_remembered_and_follows_the_files(coco, tmp_path, monkeypatch):
    hashed = []
    real = sources.sha256_file
    monkeypatch.setattr(sources, "sha256_file", lambda p: hashed.append(p) or real(p))
    cache = tmp_path / "cache"
    first = ref(coco, cache_dir=cache).sha256
    assert len(hashed) == 9
    assert ref(coco, cache_dir=cache).sha256 == first and len(hashed) == 9  # only stat-ed
    victim = coco[1] / "COCO_val2014_000000001005.jpg"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(victim)
    assert ref(coco, cache_dir=cache).sha256 != first


def test_a_missing_image_fails_when_the_set_is_built(coco):
    (coco[1] / "COCO_val2014_000000001003.jpg").unlink()
    with pytest.raises(EvalsuiteError, match=r"1 of 9 COCO images .* missing .*"
                                             r"COCO_val2014_000000001003\.jpg"):
        ref(coco)
    with pytest.raises(EvalsuiteError, match="images_dir=.*nowhere.* is not a folder"):
        CocoReference("c", str(coco[0]), str(coco[1] / "nowhere"))


def test_a_corrupt_image_is_named_when_read(coco):
    bad = coco[1] / "COCO_val2014_000000001004.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    r = ref(coco)
    r.read("000000001003")
    with pytest.raises(EvalsuiteError, match=r"COCO image .*COCO_val2014_000000001004\.jpg is "
                                             r"unreadable or corrupt"):
        r.read("000000001004")


@pytest.mark.parametrize("kw, match", [
    ({"subset": "all"}, "reference.subset='all'"),
    ({"resize": "stretch"}, "reference.resize='stretch'"),
    ({"resize": "squash", "resolution": 0}, "reference.resolution=0"),
    ({"subset": "split", "n": 3}, "reference.n=3 applies to subset=prompts only"),
])
def test_bad_settings_name_the_parameter(coco, kw, match):
    with pytest.raises(EvalsuiteError, match=match):
        ref(coco, **kw)


def test_shipped_options_compose_and_build(compose, tmp_path):
    write_coco(tmp_path / "coco", n_images=6)
    write_coco(tmp_path / "coco", n_images=5, year="2017")
    common = [f"paths.coco_dir={tmp_path}/coco", "model.resolution=32"]
    built = {}
    for option in ("coco2014_val", "coco2014_val_squash256", "coco2017_val"):
        cfg = compose(f"reference={option}", *common)
        assert cfg.reference.subset == "split" and cfg.reference.n is None
        built[option] = build(cfg.reference, "reference", cache_dir=str(tmp_path / "cache"))
    assert len(built["coco2014_val"].ids) == 6 and len(built["coco2017_val"].ids) == 5
    assert built["coco2014_val"].describe()["preprocess"] == "center_crop+pil_bicubic@32"
    assert built["coco2014_val_squash256"].describe()["preprocess"] == "squash+pil_bicubic@256"
    assert built["coco2014_val_squash256"].read(built["coco2014_val_squash256"].ids[0]).shape \
        == (256, 256, 3)
    cfg = compose("reference=coco2014_subset", "dataset=coco2014_30k", "dataset.n=4",
                  "dataset.seed=5", *common)
    sub = build(cfg.reference, "reference")
    assert sub.ids == [p.id for p in build(cfg.dataset, "dataset")]
    for option in ("coco2014_val", "coco2014_val_squash256", "coco2014_subset", "coco2017_val",
                   "stats_only"):
        text = (Path(__file__).parents[2] / "conf" / "reference" / f"{option}.yaml").read_text()
        assert text.startswith("#")


def _store(root, prompts, seed):
    store = SampleStore(root, {"test": seed})
    store.open()
    rng = np.random.default_rng(seed)
    entries = manifest_entries(prompts, 0)
    for e in entries:  # each sample stored with the identity its manifest entry names
        store.write(e["id"], rng.integers(0, 256, (16, 16, 3), np.uint8),
                    {"prompt": e["text"], "seed": e["seed"]})
    store.write_manifest(entries)
    return store


def test_evaluate_and_reconstruction_read_the_lazy_reference(coco, tmp_path, caplog,
                                                             monkeypatch):
    """FID against the COCO photographs and PSNR of their (identity) reconstruction: one
    reference pass decodes each photograph once for both; other samples reuse the features."""
    r = ref(coco, name="coco_lazy", subset="prompts", n=6, seed=0, resize="squash",
            resolution=16)
    prompts = load_coco_prompts("p", str(coco[0]), 6, 0)
    reads = []
    real = coco_reference.decode_photo
    monkeypatch.setattr(coco_reference, "decode_photo", lambda p: reads.append(p.name) or real(p))
    caplog.set_level(logging.INFO, logger="evalsuite.evaluate")

    def run(store, metric, **kw):
        return evaluate(prompts, store, {"fid_legacy": metric, **kw.pop("more", {})},
                        allow_random_weights=True, batch_size=4, cache_dir=tmp_path / "cache",
                        **kw)

    recon = Reconstruction(r, lambda batch: batch, {"vae": "identity"})
    res = run(_store(tmp_path / "s", prompts, 1), lambda: LegacyFID(dims=64),
              more={"psnr": PSNR}, paired_with=["reconstruction"], reconstruction=recon)
    assert set(res.metrics) == {"fid_legacy", "psnr/reconstruction"}, res.skipped
    assert res.metrics["psnr/reconstruction"]["settings"]["n_identical"] == 6
    assert sorted(reads) == sorted(r.files.values())  # each photograph decoded once, for both
    assert caplog.text.count("reference statistics computed: coco_lazy "
                             "inception_v3_pytorch_fid (6 images) -> ") == 1

    reads.clear()
    caplog.clear()
    other = run(_store(tmp_path / "s", prompts, 2), lambda: LegacyFID(dims=64), reference=r)
    assert reads == [] and "reference statistics reused: coco_lazy" in caplog.text
    assert "reference statistics computed" not in caplog.text
    assert other.metrics["fid_legacy"]["value"] != res.metrics["fid_legacy"]["value"]

    # an evaluation resize that is a no-op on these 16 px images: same value, but another
    # protocol, so its own features (computed, not reused)
    caplog.clear()
    same = run(_store(tmp_path / "s", prompts, 1),
               lambda: LegacyFID(dims=64, resize="squash", size=16), reference=r)
    assert same.metrics["fid_legacy"]["value"] == res.metrics["fid_legacy"]["value"]
    assert "reference statistics computed: coco_lazy" in caplog.text
    assert same.metrics["fid_legacy"]["settings"]["features"]["eval_resize"]["size"] == 16


def test_reconstruction_of_photographs_kept_at_their_stored_sizes(coco, tmp_path):
    """resize=none: 24x16, 16x30 and 16x16 photographs in one batch go through the VAE one
    by one (a stacked batch would need one shape)."""
    r = ref(coco, resize="none")
    prompts = load_coco_prompts("p", str(coco[0]), 4, 0)
    shapes = []

    def vae(batch):
        shapes.append(batch.shape)
        return batch

    res = evaluate(prompts, _store(tmp_path / "s", prompts, 1), {"psnr": PSNR},
                   paired_with=["reconstruction"], reconstruction=Reconstruction(r, vae, {}),
                   batch_size=16)
    assert res.metrics["psnr/reconstruction"]["n"] == 9, res.skipped
    assert {s[1:3] for s in shapes} == {(16, 24), (30, 16), (16, 16)}
    assert sum(s[0] for s in shapes) == 9
