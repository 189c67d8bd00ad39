"""A results folder with records to export (tests/unit/test_export*.py): every field an
export reads, names MLflow refuses, a value longer than its limit, ``inf`` and null values,
and a sample folder for the preview."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.results.record import read_record, write_record
from results_factory import make_record

PROTOCOL = {"name": "coco2014_30k_clean", "version": 3, "source": "conf/protocol", "hash": "ab" * 32,
            "fields": {"dataset.name": "coco2014_30k"}, "varies": [], "modified": []}
METRICS = {"fid_clean": 12.5, "clip_score": {"value": 0.31, "version": "2"},
           "psnr/baseline": float("inf"), "lpips/baseline": 0.125, "kid": None,
           "fid@clean (v2)": 13.0, "a//b/../c": 0.5}


def write_samples(results: Path, n: int = 3, side: int = 8) -> Path:
    """``results/samples/key`` with ``n`` PNGs (pixel value 10 * index) and their manifest."""
    folder = results / "samples" / "key"
    folder.mkdir(parents=True)
    images = []
    for i in range(n):
        Image.fromarray(np.full((side, side, 3), 10 * i, np.uint8)).save(folder / f"{i:05d}.png")
        images.append({"id": f"{i:05d}", "file": f"{i:05d}.png", "seed": i})
    (folder / "manifest.json").write_text(json.dumps({"images": images}))
    return folder


def write_results(results: Path, n: int = 1) -> list[dict[str, Any]]:
    """``n`` records in ``results/records`` (the first with a sample folder), as read back."""
    samples = write_samples(results)
    out = []
    for i in range(n):
        rec = make_record(i, METRICS, samples_dir=str(samples) if i == 0 else None,
                          protocol=PROTOCOL, name=f"variant {i}")
        rec.update(task="generate", config_hash="c" * 64, tags=["study=bk_sdm"],
                   overrides=["sampler.steps=10", "export.mlflow.enabled=true"])
        rec["config"]["long"] = "x" * 7000
        rec["config"]["k" * 300] = 1
        out.append(read_record(write_record(results / "records", rec)))
    return out
