"""Train the shapes pipeline and write it as a diffusers folder (the shipped ``sd_shapes/``).

    python -m evalsuite.worlds.shapes.train_pipeline                 # the shipped weights
    python -m evalsuite.worlds.shapes.train_pipeline --out /tmp/p --unet-steps 200

Stages: render the train split, train the VAE, encode the images, train UNet and text encoder
jointly. Deterministic for a given seed and thread count (``--threads``, default 2). Beside
the weights it writes ``train_log.json`` (configuration, loss curves, timings, sha256 of each
weight file), ``loss_curves.png`` and ``samples.png`` (test-split prompts: render | sample).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from evalsuite.worlds.shapes.pipeline import (
    SHAPES_TEXT_CONFIG,
    SHAPES_UNET_CONFIG,
    SHAPES_VAE_CONFIG,
    SHIPPED_PATH,
    build_shapes_components,
    resolve_pkg_path,
    sampler_defaults,
    save_pipeline,
    weight_sha256,
)
from evalsuite.worlds.shapes.pipeline_train import (
    TrainConfig,
    build_data,
    encode_latents,
    set_scaling_factor,
    train_unet,
    train_vae,
)

N_SAMPLE_PROMPTS = 16


def sample_images(components: dict[str, Any], texts: list[str], seeds: list[int],
                  steps: int | None = None, guidance_scale: float | None = None) -> np.ndarray:
    """Generate with the evaluation's own generator and the shipped sampler defaults."""
    from evalsuite.models.generator import DiffusersGenerator

    sampler = SimpleNamespace(**{**sampler_defaults(), "negative_prompt": None,
                                 "prediction_type": None, "batch_size": 16, "dtype": "float32"})
    if steps is not None:
        sampler.steps = steps
    if guidance_scale is not None:
        sampler.guidance_scale = guidance_scale
    return DiffusersGenerator(components, sampler, resolution=64).generate(texts, seeds)


def sample_grid_png(components: dict[str, Any], n: int = N_SAMPLE_PROMPTS) -> bytes:
    """PNG of test-split prompts: each cell is the world's render next to a sample."""
    from PIL import Image

    from evalsuite.worlds.shapes.splits import split_items
    from evalsuite.worlds.shapes.world import render

    items = split_items("test", n, seed=0)
    samples = sample_images(components, [it.caption for it in items], list(range(n)))
    cells = [np.concatenate([render(it.scene, 64, it.seed), s, np.full((64, 4, 3), 255, np.uint8)], 1)
             for it, s in zip(items, samples)]
    rows = [np.concatenate(cells[i:i + 4], 1) for i in range(0, n, 4)]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(rows, 0)).resize((4 * 132 * 2, (n // 4) * 128),
                                                     Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def loss_curves_png(log: dict[str, Any]) -> bytes:
    """PNG of the VAE and UNet loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    every = log["config"]["log_every"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, (stage, key, title) in zip(axes, [("vae", "mse", "VAE reconstruction MSE"),
                                              ("unet", "mse", "UNet epsilon MSE (unweighted)")]):
        curve = log["stages"][stage][key]
        ax.plot(np.arange(len(curve)) * every, curve)
        ax.set(title=title, xlabel="step", yscale="log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def train(cfg: TrainConfig, threads: int, out: Path | None,
          preview_every: int = 0, preview_dir: Path | None = None) -> dict[str, Any]:
    """Run every stage; write the pipeline to ``out`` (if given); return the training log."""
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    start, cpu0 = time.perf_counter(), time.process_time()
    components = build_shapes_components(init_seed=cfg.seed)
    sched = components["scheduler"]  # the saved scheduler says what the UNet predicts
    components["scheduler"] = type(sched).from_config(sched.config, prediction_type=cfg.prediction_type)
    data = build_data(cfg.n_train, cfg.seed, components["tokenizer"])
    log: dict[str, Any] = {"config": dataclasses.asdict(cfg), "threads": threads,
                           "architecture": {"unet": SHAPES_UNET_CONFIG, "vae": SHAPES_VAE_CONFIG,
                                            "text_encoder": SHAPES_TEXT_CONFIG},
                           "stages": {"data": {"seconds": time.perf_counter() - start}}}
    log["stages"]["vae"] = train_vae(components["vae"], data, cfg)
    latents = encode_latents(components["vae"], data.images)
    scale = set_scaling_factor(components["vae"], latents[0])

    def preview(step: int) -> None:
        if preview_dir is not None:
            preview_dir.mkdir(parents=True, exist_ok=True)
            (preview_dir / f"samples_{step:05d}.png").write_bytes(sample_grid_png(components))

    log["stages"]["unet"] = train_unet(components["unet"], components["text_encoder"], latents,
                                       scale, data, cfg, preview, preview_every)
    log["scaling_factor"] = scale
    log["parameters"] = {k: sum(p.numel() for p in components[k].parameters())
                         for k in ("unet", "vae", "text_encoder")}
    log["seconds_total"] = time.perf_counter() - start
    log["cpu_seconds_total"] = time.process_time() - cpu0
    log["environment"] = {"torch": torch.__version__, "python": platform.python_version(),
                          "machine": platform.machine()}
    if out is not None:
        files = {"train_log.json": json.dumps(log, indent=1).encode(),
                 "loss_curves.png": loss_curves_png(log),
                 "samples.png": sample_grid_png(components)}
        save_pipeline(components, out, files)
        log["weights_sha256"] = weight_sha256(out)
        (out / "train_log.json").write_text(json.dumps(log, indent=1))
    return log


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evalsuite.worlds.shapes.train_pipeline",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(resolve_pkg_path(SHIPPED_PATH)),
                   help="pipeline folder to write (default: the shipped sd_shapes/)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    p.add_argument("--preview-every", type=int, default=0,
                   help="write a sample grid every N UNet steps to --preview-dir")
    p.add_argument("--preview-dir", type=Path, default=None)
    for f in dataclasses.fields(TrainConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    if args.threads < 1 or min(cfg.n_train, cfg.vae_steps, cfg.unet_steps) < 1:
        print("error: --threads, --n-train, --vae-steps and --unet-steps must be >= 1",
              file=sys.stderr)
        return 2
    log = train(cfg, args.threads, args.out, args.preview_every, args.preview_dir)
    print(f"trained in {log['seconds_total']:.0f} s on {args.threads} threads; "
          f"VAE mse {log['stages']['vae']['final_mse']:.5f}, "
          f"UNet mse {log['stages']['unet']['final_mse']:.4f}; wrote {args.out}")
    for name, digest in log["weights_sha256"].items():
        print(f"  shapes_pipeline_{name}: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
