"""Benchmark: a CFG sweep shares its reference statistics; a study shares its loaded model.

1. Three cells of a CFG sweep (tiny model, 4 demo prompts, FID against a COCO-format
   reference of N photographs written here) run into one results folder, so the reference
   features are computed by the first cell and reused by the others; then the same three cells
   each in a fresh folder, as if nothing were shared. Prints per-cell wall times, totals and
   their ratio, and checks that both ways give the same FID.
2. Three runs of a saved pipeline folder (a study's actions) with one ``ComponentCache``
   versus each loading the folder itself. For the tiny model the load is small; for SD v1.5
   (3.4 GB of UNet) it is what the cache saves per action.

Measured side by side in one invocation, on whatever else this machine is doing:

    python benchmarks/cfg_sweep_reference.py [N reference images, default 300]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCALES = (1.0, 4.0, 7.5)


def write_coco_reference(folder: Path, n: int, side: int = 96) -> Path:
    """A val2017-style annotation file and ``n`` smooth random photographs; returns its path."""
    rng = np.random.default_rng(0)
    (folder / "annotations").mkdir(parents=True)
    (folder / "val2017").mkdir()
    images, anns = [], []
    for i in range(n):
        name = f"{i:012d}.jpg"
        low = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(low).resize((side, side), Image.BICUBIC).save(folder / "val2017" / name)
        images.append({"id": i + 1, "file_name": name})
        anns.append({"id": 10 * i, "image_id": i + 1, "caption": f"photo {i}"})
    path = folder / "annotations" / "captions_val2017.json"
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def sweep(tmp: Path, coco: Path, shared: bool) -> tuple[list[float], list[float]]:
    from evalsuite.run import run

    base = ["dataset.limit=4", "sampler.steps=2", "sampler.batch_size=4", "metrics=fid_legacy",
            "~metrics.items.clip_score", "metrics.allow_random_weights=true",
            "reference=coco2017_val", f"paths.coco_dir={coco}", "reference.resolution=64"]
    times, fids = [], []
    for i, g in enumerate(SCALES):
        results = tmp / ("shared" if shared else f"fresh{i}")
        t0 = time.perf_counter()
        rec = run(compose([*base, f"sampler.guidance_scale={g}", f"paths.results_dir={results}"]))
        times.append(time.perf_counter() - t0)
        fids.append(rec["metrics"]["fid_legacy"]["value"])
    return times, fids


def study_loads(tmp: Path) -> tuple[float, float]:
    from diffusers import StableDiffusionPipeline

    from evalsuite.models.lazy import ComponentCache
    from evalsuite.models.tiny import build_tiny_components
    from evalsuite.run import run

    folder = tmp / "pipeline"
    StableDiffusionPipeline(**build_tiny_components(0), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False
                            ).save_pretrained(folder)
    base = ["model=pretrained", f"model.path={folder}", "model.resolution=64", "dataset.limit=2",
            "sampler.steps=1", "metrics=pixel", "metrics.paired_with=[]"]
    out = []
    for cache in (None, ComponentCache()):
        t0 = time.perf_counter()
        for i, abl in enumerate(["[]", "[shared_kv]", "[ffn_ratio]"]):
            results = tmp / f"study-{'cache' if cache else 'load'}-{i}"
            run(compose([*base, f"ablation={abl}", f"paths.results_dir={results}"]),
                components=cache)
        out.append(time.perf_counter() - t0)
    return out[0], out[1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory(prefix="evalsuite-bench-") as t:
        tmp = Path(t)
        coco = write_coco_reference(tmp / "coco", n).parents[1]
        shared_t, shared_fid = sweep(tmp, coco, shared=True)
        fresh_t, fresh_fid = sweep(tmp, coco, shared=False)
        load_t, cache_t = study_loads(tmp)
    print(f"CFG sweep, {len(SCALES)} cells, FID against {n} reference photographs")
    print(f"{'scale':>6}{'shared s':>10}{'fresh s':>10}")
    for g, a, b in zip(SCALES, shared_t, fresh_t):
        print(f"{g:>6}{a:>10.2f}{b:>10.2f}")
    print(f"{'total':>6}{sum(shared_t):>10.2f}{sum(fresh_t):>10.2f}   "
          f"shared / fresh = {sum(shared_t) / sum(fresh_t):.3f}")
    print(f"study, 3 runs of a saved pipeline: each loads it {load_t:.2f} s, "
          f"one ComponentCache {cache_t:.2f} s, ratio {cache_t / load_t:.3f}")
    if shared_fid != fresh_fid:
        sys.exit(f"FID differs between shared and fresh runs: {shared_fid} vs {fresh_fid}")


if __name__ == "__main__":
    main()
