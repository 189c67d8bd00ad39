"""Issue 15, images decoded exactly: 16-bit PNGs converted as round(v / 257), transparency
refused, EXIF orientation and ICC profiles not applied, bad folder entries and images too small
for SSIM refused with one paragraph. Metric values are checked against scikit-image on the
correctly converted pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evalsuite.errors import EvalsuiteError
from evalsuite.features.sources import FolderSource
from evalsuite.images import decode_image
from evalsuite.metrics.pixel import PSNR, SSIM
from pngfiles import photo16, write_png16


def rounded(values: np.ndarray) -> np.ndarray:
    """The reference conversion, in floating point: the nearest 8-bit level."""
    return np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)


@pytest.mark.parametrize("shape", [(37, 41, 3), (37, 41), (37, 41, 4)], ids=["rgb", "grey", "rgba"])
def test_16_bit_pngs_are_read_as_the_nearest_8_bit_level(tmp_path, shape):
    values = photo16(shape, seed=3)
    if len(shape) == 3 and shape[2] == 4:
        values[..., 3] = 65535  # opaque: alpha is dropped
    path = write_png16(tmp_path / "x.png", values)
    expected = rounded(values)
    expected = np.repeat(expected[..., None], 3, axis=2) if expected.ndim == 2 else expected[..., :3]
    got = decode_image(path)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)
    if len(shape) == 3:  # Pillow alone keeps the high byte: a level off for many values
        with Image.open(path) as im:
            high = np.asarray(im.convert("RGB"))
        assert (high != expected).mean() > 0.1


def test_psnr_and_ssim_of_16_bit_pngs_match_scikit_image_on_converted_pixels(tmp_path):
    values = photo16((48, 48, 3), seed=4)
    gen_dir, ref_dir = tmp_path / "gen", tmp_path / "ref"
    gen_dir.mkdir(), ref_dir.mkdir()
    write_png16(gen_dir / "a.png", values)
    target = rounded(values).astype(int) + np.random.default_rng(5).integers(-9, 10, (48, 48, 3))
    target = target.clip(0, 255).astype(np.uint8)
    Image.fromarray(target).save(ref_dir / "a.png")
    gen, ref = FolderSource(gen_dir), FolderSource(ref_dir)
    pred = gen.read("a")[None]
    for metric, reference in ((PSNR(), peak_signal_noise_ratio(target, rounded(values),
                                                               data_range=255)),
                              (SSIM(), structural_similarity(
                                  target.astype(float), rounded(values).astype(float),
                                  channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=255))):
        metric.update(pred, ref.read("a")[None])
        assert metric.compute().value == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_refused_and_opaque_alpha_is_dropped(tmp_path, mode):
    rgb = np.random.default_rng(1).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    alpha = np.full((6, 7), 255, np.uint8)
    opaque = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    if mode == "LA":
        opaque = opaque.convert("LA")
    path = tmp_path / "opaque.png"
    opaque.save(path)
    want = np.asarray(opaque.convert("RGB"))
    assert np.array_equal(decode_image(path), want)
    alpha[2, 3] = 0
    see_through = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    if mode == "LA":
        see_through = see_through.convert("LA")
    if mode == "P":  # a palette image with a transparent index
        see_through = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        see_through.info["transparency"] = int(np.asarray(see_through)[2, 3])
    bad = tmp_path / "see_through.png"
    see_through.save(bad, **({"transparency": see_through.info["transparency"]}
                             if mode == "P" else {}))
    with pytest.raises(EvalsuiteError, match=r"see_through\.png has transparent pixels.*"
                                             r"composite"):
        decode_image(bad)


def test_exif_orientation_and_icc_profiles_are_not_applied(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (5, 9, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    path = tmp_path / "tagged.png"
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), icc_profile=icc)
    with Image.open(path) as im:  # the tags are really in the file
        assert im.getexif()[0x0112] == 6 and im.info["icc_profile"] == icc
    assert np.array_equal(decode_image(path), pixels)  # stored pixels, stored orientation


def test_other_modes_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.zeros((4, 4), np.float32)).save(path)
    with pytest.raises(EvalsuiteError, match=r"float\.tif has mode F"):
        decode_image(path)
    la16 = write_png16(tmp_path / "la16.png", photo16((4, 4, 2)))
    with pytest.raises(EvalsuiteError, match=r"la16\.png is a 16-bit grey PNG with an alpha"):
        decode_image(la16)
    broken = tmp_path / "broken.png"
    buf = io.BytesIO()
    Image.fromarray(photo16((32, 32, 3)).astype(np.uint8)).save(buf, format="PNG")
    broken.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])  # cut inside the pixel data
    with pytest.raises(EvalsuiteError, match=r"broken\.png is unreadable or corrupt"):
        decode_image(broken)


@pytest.mark.parametrize("entry", ["dangling", "folder"])
def test_bad_folder_entries_are_refused_before_anything_is_written(tmp_path, entry):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(images / "ok.png")
    if entry == "dangling":
        (images / "gone.png").symlink_to(tmp_path / "nowhere.png")
        match = r"gone\.png is a symbolic link to .*nowhere\.png, which does not exist"
    else:
        (images / "x.png").mkdir()
        match = r"x\.png is a folder, not an image file"
    cache = tmp_path / "cache"
    with pytest.raises(EvalsuiteError, match=match):
        FolderSource(images, cache).identity()
    assert not cache.exists()
    with pytest.raises(EvalsuiteError, match=match.split(" ")[0]):
        decode_image(images / ("gone.png" if entry == "dangling" else "x.png"))


def test_images_smaller_than_the_ssim_window_are_refused(tmp_path):
    tiny = np.zeros((1, 4, 4, 3), np.uint8)
    with pytest.raises(EvalsuiteError, match=r"4x4 pixels, smaller than SSIM's 11x11"):
        SSIM().update(tiny, tiny)
    psnr = PSNR()
    psnr.update(tiny, tiny + 1)  # PSNR has no window: fine
    assert psnr.compute().value == pytest.approx(48.1308036, abs=1e-6)


@pytest.mark.parametrize("case", ["dangling", "tiny"])
def test_score_cli_gives_one_paragraph_exit_2_and_writes_nothing(tmp_path, case):
    """``evalsuite score`` on a folder with a dangling link, or on 4x4 images with SSIM."""
    from conftest import run_cli

    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir(), ref.mkdir()
    side = 4 if case == "tiny" else 16
    for folder, value in ((gen, 10), (ref, 20)):
        for name in ("a", "b"):
            Image.fromarray(np.full((side, side, 3), value, np.uint8)).save(folder / f"{name}.png")
    if case == "dangling":
        (gen / "c.png").symlink_to(tmp_path / "missing.png")
    proc = run_cli(["score", f"score.gen_dir={gen}", f"score.ref_dir={ref}", "metrics=pixel"],
                   cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    want = "c.png is a symbolic link" if case == "dangling" else "4x4 pixels, smaller than SSIM"
    assert want in proc.stderr
    assert not (tmp_path / "results" / "records").exists()
    if case == "dangling":
        assert not (tmp_path / "results" / "cache").exists()
