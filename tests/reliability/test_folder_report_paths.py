"""Report paths (issue 15, "Also seen", last bullet): links are relative to the results
folder and confined to it; files outside it (an absolute ``samples.dir`` elsewhere, manifest
``file`` entries such as ``../../x.png``, symlinks out) are never embedded; a moved results
folder still renders its images."""

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np

from conftest import CONF_DIR
from evalsuite.results.record import write_record
from evalsuite.results.report import write_report
from evalsuite.config.results import ReportSettings, root_settings
from evalsuite.samples.store import encode_png
from results_factory import make_record

IDS = ["00001", "00002"]


def _settings():
    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    return settings


def _samples(folder: Path, colour: tuple[int, int, int], files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True)
    images = []
    for k, pid in enumerate(IDS):
        (folder / f"{pid}.png").write_bytes(encode_png(np.full((8, 8, 3), colour, np.uint8)))
        images.append({"id": pid, "file": (files or {}).get(pid, f"{pid}.png"), "text": f"prompt {k}",
                       "seed": 100 + k, "sha256": "0" * 64})
    (folder / "manifest.json").write_text(json.dumps({"images": images}))
    return folder


def _thumb_colours(html: str) -> list[tuple[int, int, int]]:
    """The colour of every embedded thumbnail (each is one flat colour here)."""
    from io import BytesIO

    from PIL import Image

    out = []
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html):
        with Image.open(BytesIO(base64.b64decode(data))) as im:
            out.append(im.convert("RGB").getpixel((0, 0)))
    return out


def test_a_moved_results_folder_still_shows_its_own_images_with_relative_links(tmp_path):
    old = tmp_path / "old" / "results"
    samples = _samples(old / "samples" / "abc123", (10, 200, 30))
    write_record(old / "records", make_record(1, {"fid_clean": 12.0}, samples_dir=str(samples)))
    new = tmp_path / "elsewhere" / "moved"
    new.parent.mkdir()
    shutil.move(str(old), new)
    html = write_report(new, _settings()).read_text()
    assert _thumb_colours(html) == [(10, 200, 30)] * 2
    assert 'href="samples/abc123/00001.png"' in html
    assert str(tmp_path / "old") not in html.split("<nav>", 1)[1]  # no link to the old place


def test_samples_outside_the_results_folder_are_never_embedded(tmp_path):
    results = tmp_path / "results"
    outside = _samples(tmp_path / "private", (255, 0, 0))  # readable, but not the results'
    write_record(results / "records", make_record(1, {"fid_clean": 12.0}, samples_dir=str(outside)))
    html = write_report(results, _settings()).read_text()
    assert _thumb_colours(html) == [] and "private" not in html.split("<nav>", 1)[1]


def test_manifest_entries_that_leave_the_sample_folder_are_not_read(tmp_path):
    results = tmp_path / "results"
    secret = tmp_path / "secret.png"
    secret.write_bytes(encode_png(np.full((8, 8, 3), (255, 0, 0), np.uint8)))
    inner = results / "samples" / "inner.png"  # inside the results folder, outside the store
    samples = _samples(results / "samples" / "k1", (0, 0, 255),
                       files={"00001": "../../../secret.png", "00002": "../inner.png"})
    inner.write_bytes(secret.read_bytes())
    (samples / "00003.png").symlink_to(secret)
    manifest = json.loads((samples / "manifest.json").read_text())
    manifest["images"].append({"id": "00003", "file": "00003.png", "text": "x", "seed": 102})
    (samples / "manifest.json").write_text(json.dumps(manifest))
    write_record(results / "records", make_record(1, {"fid_clean": 12.0}, samples_dir=str(samples)))
    settings = _settings()
    settings.grid.prompts = 3
    html = write_report(results, settings).read_text()
    assert _thumb_colours(html) == []  # neither the secret nor the symlink to it
    assert html.count("file outside the sample folder (not shown)") == 3
    assert "secret" not in html and "inner.png" not in html
