"""The HTML report: self-contained, with tables, plots (PNG + SVG) and image grids; opened in
a real headless Chromium (skipped when none is installed) and screenshotted."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CONF_DIR, run_cli
from evalsuite.results.plots import pareto_front
from evalsuite.results.record import write_record
from evalsuite.results.report import write_report
from evalsuite.config.results import ReportSettings, root_settings
from evalsuite.samples.store import encode_png
from results_factory import make_record

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROMPTS = [("00001", "a red bicycle"), ("00002", "a bowl of ramen"), ("00003", "a lighthouse")]


def _samples(folder: Path, tint: int, seeds: dict[str, int] | None = None) -> str:
    """Three 32x32 PNGs and a manifest, as the sample store writes them."""
    folder.mkdir(parents=True)
    images = []
    for k, (pid, text) in enumerate(PROMPTS):
        img = np.full((32, 32, 3), 40 * k, np.uint8)
        img[8:24, 8:24] = (tint, 255 - tint, 128)
        (folder / f"{pid}.png").write_bytes(encode_png(img))
        images.append({"id": pid, "file": f"{pid}.png", "text": text,
                       "seed": (seeds or {}).get(pid, 1000 + k), "sha256": "0" * 64})
    (folder / "manifest.json").write_text(json.dumps({"images": images}))
    return str(folder)


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    samples = results / "samples"
    base_dir = _samples(samples / "base", 0)
    recs = []
    # a CFG sweep of two variants (fid_clean vs clip_score), plus a third variant at one scale
    for i, (abl, cfg, fid, clip) in enumerate([((), 3.0, 14.0, 0.300), ((), 7.5, 12.0, 0.315),
                                               (("shared_kv",), 3.0, 14.5, 0.298),
                                               (("shared_kv",), 7.5, 12.4, 0.312),
                                               (("ffn_ratio",), 7.5, 13.5, 0.305)]):
        folder = base_dir if not abl and cfg == 7.5 else _samples(samples / f"v{i}", 40 * (i + 1))
        recs.append(make_record(i + 1, {"fid_clean": fid, "clip_score": clip}, ablations=abl,
                                guidance=cfg, samples_dir=folder,
                                baseline_samples=None if not abl else base_dir))
    # a variant whose prompt 00002 was drawn with another seed: never shown as comparable
    recs.append(make_record(9, {"fid_clean": 13.0}, ablations=("relu_attention",),
                            samples_dir=_samples(samples / "odd", 200, {"00002": 7}), guidance=7.5))
    for rec in recs:
        write_record(results / "records", rec)
    return results


def _settings():
    """conf/report.yaml, with the recorded parameter count as the cost: the default
    (arch.gflops) regenerates FLOPs on the meta device, which costs a torch import here."""
    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    return settings


def test_pareto_front():
    pts = [(1.0, 10.0), (2.0, 12.0), (3.0, 11.0), (2.0, 9.0), (4.0, 12.0)]
    assert pareto_front(pts, higher_is_better=True) == [0, 1]  # (2,9), (3,11), (4,12) are beaten
    assert pareto_front(pts, higher_is_better=False) == [0, 3]


def test_report_is_self_contained_with_tables_plots_and_grids(tmp_path):
    results = _results(tmp_path)
    page = write_report(results, _settings())
    html = page.read_text()
    assert page == results / "report.html"
    # self-contained: every image embedded; links relative; nothing fetched from anywhere
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert all(src.startswith("data:image/") for src in re.findall(r'<img[^>]* src="([^"]+)"', html))
    # the variants table, with the protocol footer and deltas to the un-ablated variant
    assert "<figcaption>Variants</figcaption>" in html and "Protocol: dataset.name=demo" in html
    assert "tiny+shared_kv (guidance_scale=3.0)" in html
    # plots: the CFG sweep and quality vs. cost, as PNG and SVG files next to the tables
    for name in ("cfg_sweep_fid_clean_vs_clip_score", "quality_cost_fid_clean_vs_model.unet_params"):
        assert (results / "tables" / f"{name}.png").stat().st_size > 5000
        assert (results / "tables" / f"{name}.svg").read_text().startswith("<?xml")
    assert "Pareto front:" in html
    # grid: 3 prompts x (tiny baseline, shared_kv, ffn_ratio, relu_attention) at cfg 7.5 ...
    assert html.count('class="prompt"') == 3
    assert "seed 7 differs from 1001" in html  # ... the odd seed is flagged, not shown
    assert 'href="samples/base/00001.png"' in html
    assert write_report(results, _settings()).read_text() == html  # a function of records and samples


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    results = _results(tmp_path)
    page = write_report(results, _settings())
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert "tiny+shared_kv" in dom.stdout and "Pareto front" in dom.stdout, dom.stderr[-2000:]
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,1600",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (1600, 1200) and pixels.std() > 20  # drawn, not a blank page


def test_report_command_prints_the_page_path(tmp_path):
    results = _results(tmp_path)
    proc = run_cli(["report", f"paths.results_dir={results}", "grid.prompts=2",
                    "plots.quality_cost.cost=[model.unet_params]"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(results / "report.html")
    assert (results / "report.html").read_text().count('class="prompt"') == 2
