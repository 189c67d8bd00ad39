"""Benchmark: zero-shot vs recovered (``recovery=kd``) per ablation, on the tiny model.

The tiny model's weights are a random initialisation, so it has no image quality to
recover; what recovery must do there is bring the ablated student back to its teacher. The
measure is therefore ``psnr/baseline`` and ``ssim/baseline`` (samples of the ablated model vs
the unablated model's, same prompts and seeds), zero-shot and after recovery, with the CPU
time of each run. Training uses output + feature KD only (``loss.task=0``): on random
images, the denoising loss of a random teacher is not a quality target. On a trained model
(the shapes world, SD v1.5) use the default recipe and the world's metrics.

    python benchmarks/recovery_tiny.py [steps, default 40] [lr, default 1e-4]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("preset_bk_sdm_tiny", "no_sa_highres", "prune_resblocks")
FAST = ["world=tiny", "dataset.limit=8", "sampler.steps=4", "sampler.batch_size=4", "metrics=pixel",
        "metrics.paired_with=[baseline]", "threads=1"]


def write_images(folder: Path, n: int = 16, side: int = 64) -> Path:
    """``n`` smooth random pictures with captions.csv."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    rows = ["file,caption"]
    for i in range(n):
        low = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
        low.resize((side, side), Image.Resampling.BICUBIC).save(folder / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,a smooth colour field number {i}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    return folder


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def timed_run(overrides: list[str]) -> tuple[dict, float]:
    from evalsuite.run import run

    t0 = time.process_time()
    record = run(compose(overrides))
    return record, time.process_time() - t0


def main(steps: int, lr: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="recovery-bench-"))
    data = write_images(tmp / "data")
    base = [*FAST, f"paths.results_dir={tmp}/results"]
    kd = ["recovery=kd", f"recovery.data.path={data}", f"recovery.steps={steps}", "recovery.batch_size=4",
          f"recovery.lr={lr}", "recovery.loss.task=0", "recovery.progress=false",
          f"recovery.checkpoint_every={steps}"]
    print(f"tiny model, {steps} recovery steps (batch 4, lr {lr}, output + feature KD), 8 prompts")
    print("| ablation | PSNR/baseline zero-shot | recovered | SSIM/baseline zero-shot | recovered "
          "| output KD first -> last step | CPU s zero-shot | CPU s recovered |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for cell in CELLS:
        zero, t_zero = timed_run([*base, f"ablation=[{cell}]"])
        rec, t_rec = timed_run([*base, f"ablation=[{cell}]", *kd])
        m0, m1 = zero["metrics"], rec["metrics"]
        curve = rec["recovery"]["loss_curve"]["output_kd"]
        print(f"| {cell} | {m0['psnr/baseline']['value']:.2f} | {m1['psnr/baseline']['value']:.2f} "
              f"| {m0['ssim/baseline']['value']:.4f} | {m1['ssim/baseline']['value']:.4f} "
              f"| {curve[0]:.4f} -> {curve[-1]:.4f} | {t_zero:.1f} | {t_rec:.1f} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40, float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4)
