"""Decoder evaluations in the report: the reference images first, then each decoder's
reconstructions of them; no empty variants table, plots or "no samples" note beside them."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from evalsuite.run import run

PIXEL = ["task=reconstruction", "vae.batch_size=4", "metrics=pixel"]


def _save_vae(folder: Path, seed: int) -> Path:
    import torch
    from diffusers import AutoencoderKL

    from evalsuite.models.tiny import TINY_VAE_CONFIG

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        AutoencoderKL(**{**TINY_VAE_CONFIG, "block_out_channels": (8, 8, 16, 16)}).save_pretrained(folder)
    return folder


def test_report_shows_originals_beside_each_decoders_reconstructions(compose, tmp_path):
    own = run(compose(*PIXEL))
    pruned = run(compose(*PIXEL, f"vae.decoder={_save_vae(tmp_path / 'pruned', 2)}"))
    results = tmp_path / "results"
    env = own["provenance"]["environment"]  # the thread count chosen, and what torch ran with
    assert env["threads"]["count"] == env["torch_threads"] and env["threads"]["source"]
    preview = Path(own["reference_preview"]["dir"])
    assert preview.parent == results / "reconstructions" and own["reference_preview"]["count"] == 14
    assert pruned["reference_preview"] == own["reference_preview"]  # one folder per reference set
    # the originals are the images the metrics compared with: PSNR recomputed from the files
    first = json.loads((preview / "manifest.json").read_text())["images"][0]["id"]
    orig = np.asarray(Image.open(preview / f"{first}.png"), np.float64)
    recon = np.asarray(Image.open(Path(own["reconstructions"]["dir"]) / f"{first}.png"), np.float64)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((orig - recon) ** 2))
    assert abs(psnr - own["metrics"]["psnr/reconstruction"]["per_image"]["values"][0]) < 1e-3

    html = (results / "report.html").read_text()
    head = html[html.index("originals and reconstructions</h3>"):]
    columns = [c.split("</th>")[0] for c in head.split('<th class="variant">')[1:3 + 1]]
    assert columns[0] == "reference image" and len(columns) == 3  # originals, then both decoders
    assert html.count('<td class="prompt">') == 6  # grid.prompts rows
    assert f'href="reconstructions/{preview.name}/{first}.png"' in html
    assert 'id="table-variants"' not in html and "No samples on disk" not in html
    assert 'id="plots"' not in html and '<a href="#decoders">Decoders</a>' in html
