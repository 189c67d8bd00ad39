"""The report fits a screen: in headless Chromium at 1280x800 and 1920x1080, no table, plot,
key or grid sticks out of the page; wide tables and grids scroll inside their own box with the
first column kept in view. A copy of the page with the scroll boxes disabled must fail the same
check, so the check itself is known to catch an overflow."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import CONF_DIR, ROOT
from evalsuite.results.record import write_record
from evalsuite.results.report import write_report
from evalsuite.config.results import ReportSettings, root_settings
from evalsuite.samples.store import encode_png
from results_factory import make_record

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")

METRICS = ["fid_clean", "fid_legacy", "clip_score", "cmmd", "kid", "psnr/baseline", "ssim/baseline",
           "lpips/baseline", "psnr/reconstruction", "ssim/reconstruction", "lpips/reconstruction"]
ABLATIONS = ["shared_kv", "ffn_ratio", "relu_attention", "swish_glu", "prune_resblocks",
             "remove_attention_hires", "conv_shortcut_off", "narrow_channels", "fewer_heads"]

# Measures after load; writes what sticks out into <pre id="overflow"> for --dump-dom.
PROBE = """<script>
window.addEventListener('load', () => {
  const bad = [], root = document.documentElement, body = document.body.getBoundingClientRect();
  if (root.scrollWidth > root.clientWidth + 1) bad.push('page ' + root.scrollWidth + ' > ' + root.clientWidth);
  for (const el of document.querySelectorAll('figure, div.scroll, div.grid, img, ol.key, ul.footer, h2, h3, p')) {
    if (el.parentElement.closest('div.scroll, div.grid')) continue;  // inside a box that scrolls
    const r = el.getBoundingClientRect();
    if (r.right > body.right + 1) bad.push(el.tagName + '.' + el.className + ' right ' + Math.round(r.right) + ' > ' + Math.round(body.right));
  }
  for (const img of document.querySelectorAll('figure.plot img')) {
    const r = img.getBoundingClientRect();
    if (r.width < 300 || r.height < 200) bad.push('plot crushed to ' + Math.round(r.width) + 'x' + Math.round(r.height));
  }
  for (const box of document.querySelectorAll('div.scroll, div.grid')) {
    if (box.scrollWidth <= box.clientWidth) continue;
    box.scrollLeft = 300;
    const first = box.querySelector('tbody td'), left = box.getBoundingClientRect().left;
    if (Math.abs(first.getBoundingClientRect().left - left) > 2) bad.push('first column scrolled away');
  }
  const pre = document.createElement('pre');
  pre.id = 'overflow';
  pre.textContent = 'OVERFLOW=' + JSON.stringify(bad);
  document.body.appendChild(pre);
});
</script>"""


def _samples(folder: Path, tint: int) -> str:
    folder.mkdir(parents=True)
    images = []
    for k in range(3):
        img = np.full((64, 64, 3), 40 * k, np.uint8)
        img[16:48, 16:48] = (tint % 256, 255 - tint % 256, 128)
        (folder / f"{k:05d}.png").write_bytes(encode_png(img))
        images.append({"id": f"{k:05d}", "file": f"{k:05d}.png", "text": f"prompt {k} " * 6,
                       "seed": 1000 + k, "sha256": "0" * 64})
    (folder / "manifest.json").write_text(json.dumps({"images": images}))
    return str(folder)


def _wide_results(tmp_path: Path) -> Path:
    """Ten variants with long names, eleven metrics, a CFG sweep of four scales each."""
    results = tmp_path / "results"
    i = 0
    for v, abl in enumerate([(), *[(a,) for a in ABLATIONS]]):
        for g, cfg in enumerate((2.0, 4.0, 6.0, 8.0)):
            i += 1
            values = {m: 10.0 + v + g * 0.5 + k for k, m in enumerate(METRICS)}
            samples = _samples(results / "samples" / f"s{i}", 25 * i) if cfg == 8.0 else None
            rec = make_record(i, values, ablations=abl, guidance=cfg, samples_dir=samples,
                              name=f"an_unusually_long_descriptive_variant_name_{v}" if v else None)
            write_record(results / "records", rec)
    return results


def _overflow(page: Path, tmp_path: Path, size: tuple[int, int], css: str = "") -> list[str]:
    probe = tmp_path / f"probe_{size[0]}{'_broken' if css else ''}.html"
    text = page.read_text().replace("</body>", PROBE + "</body>")
    probe.write_text(text.replace("</style>", css + "</style>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size[0]},{size[1]}",
             "--virtual-time-budget=10000"]
    proc = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True,
                          text=True, timeout=180)
    found = re.search(r"OVERFLOW=(\[.*?\])</pre>", proc.stdout)
    assert found, proc.stderr[-2000:]
    return json.loads(found.group(1).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&"))


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_nothing_overflows_its_container(tmp_path, size):
    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    settings.plots.cfg_sweep.x, settings.plots.cfg_sweep.y = "clip_score", "fid_clean"
    settings.grid.variants = 12
    page = write_report(_wide_results(tmp_path), settings)
    html = page.read_text()
    assert html.count('<figure class="plot">') == 2 and 'class="grid"' in html
    assert _overflow(page, tmp_path, size) == []
    if size[0] == 1280:  # the check catches a table that is not in a scroll box
        broken = _overflow(page, tmp_path, size, "div.scroll, div.grid { overflow-x: visible; }")
        assert any(b.startswith("page") for b in broken), broken


def test_the_screenshot_script_captures_the_whole_page_1280_wide(tmp_path):
    """docs/screenshots.py's capture step: the page's full height, 1280 px wide, drawn."""
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "docs" / "screenshots.py")
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    settings = root_settings("report", ReportSettings, CONF_DIR)
    settings.plots.quality_cost.cost = ["model.unet_params"]
    page = write_report(_wide_results(tmp_path), settings)
    out = tmp_path / "shot.png"
    width, height = shots.screenshot(CHROMIUM, page, out, tmp_path)
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert (width, pixels.shape[1]) == (1280, 1280) and pixels.shape[0] == height > 2000
    assert pixels[-400:].std() > 5  # the bottom of the page (the image grid) is in the shot
    assert not (page.parent / "screenshot_probe.html").exists()
