"""Issue 15, content addressing end to end (tiny model): another prompt file with the same ids
into the same results folder is generated and scored anew; a swapped PNG is remade; the
thread count is in the generation key; ``allow_incomplete`` with no images says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.metrics.functional.pixel import psnr
from evalsuite.run import run
from evalsuite.samples.store import decode_png

# The ablated samples are scored against their baseline (psnr/baseline): a metric of the
# generated images themselves.
TINY = ["dataset.limit=4", "sampler.steps=2", "sampler.batch_size=4", "metrics=pixel",
        "metrics.paired_with=[baseline]",
        "ablation=[shared_kv]"]
NEW_TEXTS = ["a red bicycle by a lake", "two owls on a branch", "a bowl of lemons",
             "a lighthouse at night"]


def _chunk_prompts(folder: Path) -> list[str]:
    out = []
    for p in sorted(folder.glob("*.png")):
        with Image.open(p) as im:
            out.append(json.loads(im.text["evalsuite"])["prompt"])
    return out


def _psnr_from_disk(rec: dict) -> float:
    """psnr/baseline recomputed from the PNGs on disk (mean of per-image PSNR, as the metric)."""
    gen, base = Path(rec["samples"]["dir"]), Path(rec["baseline_samples"])
    values = [psnr(decode_png(p), decode_png(base / p.name)) for p in sorted(gen.glob("*.png"))]
    return float(np.mean([v for v in values if np.isfinite(v)]))


def test_other_texts_with_the_same_ids_are_generated_and_scored_anew(compose, tmp_path):
    first = run(compose(*TINY))
    gen_dir = Path(first["samples"]["dir"])
    factors = json.loads((gen_dir / "generation.json").read_text())["factors"]
    import torch

    assert factors["cpu_threads"] == torch.get_num_threads()  # thread count in the key

    texts = tmp_path / "p4.txt"
    texts.write_text("\n".join(NEW_TEXTS) + "\n", encoding="utf-8")
    second = run(compose(*TINY, "dataset=text", f"dataset.path={texts}"))
    assert Path(second["samples"]["dir"]) == gen_dir  # same key: same folder, same ids
    assert second["samples"]["generated"] == 4 and second["samples"]["reused"] == 0
    assert _chunk_prompts(gen_dir) == NEW_TEXTS
    manifest = json.loads((gen_dir / "manifest.json").read_text())
    assert [e["text"] for e in manifest["images"]] == NEW_TEXTS
    assert manifest["sha256"] == second["samples"]["manifest_sha256"]
    assert second["samples"]["manifest_sha256"] != first["samples"]["manifest_sha256"]
    value = second["metrics"]["psnr/baseline"]["value"]
    assert value != first["metrics"]["psnr/baseline"]["value"]
    assert value == pytest.approx(_psnr_from_disk(second), abs=1e-9)  # scored: the new PNGs

    # A PNG swapped for another valid one is made again, byte for byte; the numbers hold.
    good = (gen_dir / "00001.png").read_bytes()
    shutil.copyfile(gen_dir / "00002.png", gen_dir / "00001.png")
    with pytest.raises(EvalsuiteError, match="incomplete.*00001"):
        run(compose(*TINY, "dataset=text", f"dataset.path={texts}", "stage=metrics"))
    third = run(compose(*TINY, "dataset=text", f"dataset.path={texts}"))
    assert third["samples"]["generated"] == 1
    assert (gen_dir / "00001.png").read_bytes() == good
    assert third["metrics"]["psnr/baseline"]["value"] == value


def test_allow_incomplete_without_any_image_names_the_sample_store(compose, tmp_path):
    with pytest.raises(EvalsuiteError, match=r"none of the 4 prompts of 'demo' has an image in "
                                             r"the sample store .*nothing to score"):
        run(compose(*TINY, "stage=metrics", "allow_incomplete=true"))
    assert not (tmp_path / "results" / "records").exists()
