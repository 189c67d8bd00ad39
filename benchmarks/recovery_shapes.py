"""Benchmark: zero-shot vs recovered (``recovery=kd``) per ablation, on the shapes world.

Each cell is two ordinary runs of the default world (the shapes pipeline on the test split's
prompts, its rendered references and its trained evaluators): the ablated model zero-shot,
then the same ablation after recovery by distillation from the unablated pipeline on the
world's train split (``recovery/data=shapes``: no files needed). The table gives the world's
metrics (``shapes_attr_acc``, ``shapes_clip_score``: higher is better; ``fd_shapes``: lower
is better) for the teacher, each zero-shot cell and each recovered cell, with the UNet's
parameters and GFLOPs and the CPU seconds of the recovery's training loop (the record's
``recovery.cpu_s``; sampling and scoring are not in it), then the record-linked table that
``evalsuite.results.recovery_section`` builds from the same records.

Recovery is BK-SDM's recipe (task + output KD + feature KD, weights 1, 1, 1) with
``caption_dropout=0.1``, as the teacher was trained with, so classifier-free guidance keeps an
unconditional branch to extrapolate from. Everything is cached in the results folder: a rerun
into the same folder trains and samples nothing.

    python benchmarks/recovery_shapes.py        # defaults below: ~10 CPU minutes on one thread
    python benchmarks/recovery_shapes.py --steps 600 --prompts 128 --results /tmp/rs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CELLS = ("preset_bk_sdm_tiny", "no_sa_highres", "prune_resblocks")
# Weight-free pixel metrics and KID (1000-image subsets) add nothing at this size.
METRICS = ["shapes_attr_acc", "shapes_clip_score", "fd_shapes"]


def compose(overrides: list[str]) -> Any:
    """The run config of ``evalsuite run <overrides>`` (the default world: shapes)."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def common(args: argparse.Namespace) -> list[str]:
    """The overrides every run of the benchmark shares."""
    drop = [f"~metrics.items.{m}" for m in ("kid_shapes", "psnr", "ssim", "lpips")]
    return [f"dataset.n={args.prompts}", f"paths.results_dir={args.results}", "threads=1",
            "metrics.paired_with=[]", *drop]


def recovery(args: argparse.Namespace) -> list[str]:
    """The recovery overrides (the recipe described in the module docstring)."""
    return ["recovery=kd", f"recovery.steps={args.steps}", f"recovery.batch_size={args.batch}",
            f"recovery.lr={args.lr}", "recovery.caption_dropout=0.1", "recovery.progress=false",
            f"recovery.checkpoint_every={max(50, args.steps // 4)}"]


def run_cell(overrides: list[str]) -> dict[str, Any]:
    from evalsuite.run import run

    return run(compose(overrides))


def _fmt(rec: dict[str, Any], name: str) -> str:
    m = (rec.get("metrics") or {}).get(name)
    return "n/a" if m is None or m.get("value") is None else f"{m['value']:.4f}"


def _cost(rec: dict[str, Any]) -> str:
    model = rec.get("model") or {}
    gflops = model.get("unet_gflops")
    return f"{model.get('unet_params', 0) / 1e6:.2f} | {gflops:.3f}" if gflops else \
        f"{model.get('unet_params', 0) / 1e6:.2f} | n/a"


def row(label: str, rec: dict[str, Any], cpu_s: str) -> str:
    metrics = " | ".join(_fmt(rec, m) for m in METRICS)
    return f"| {label} | {_cost(rec)} | {metrics} | {cpu_s} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=500, help="recovery optimizer steps per cell")
    p.add_argument("--batch", type=int, default=16, help="recovery batch size")
    p.add_argument("--lr", type=float, default=5e-4, help="recovery AdamW learning rate")
    p.add_argument("--prompts", type=int, default=64, help="test-split prompts evaluated")
    p.add_argument("--cells", nargs="+", default=list(CELLS), help="ablation options")
    p.add_argument("--results", default=None, help="results folder (default: a new temp folder)")
    args = p.parse_args()
    args.results = args.results or tempfile.mkdtemp(prefix="recovery-shapes-")
    import torch

    torch.set_num_threads(1)
    print(f"shapes world, {args.prompts} test prompts; recovery: {args.steps} steps, batch "
          f"{args.batch}, lr {args.lr}, BK-SDM loss (1, 1, 1), caption dropout 0.1; results in "
          f"{args.results}", flush=True)
    head = ("| variant | UNet params (M) | GFLOPs | " + " | ".join(METRICS)
            + " | recovery CPU s |\n|---|---:|---:|" + "---:|" * len(METRICS) + "---:|")
    lines = [row("teacher (no ablation)", run_cell(common(args)), "-")]
    print(head + "\n" + lines[0], flush=True)
    for cell in args.cells:
        zero = run_cell([*common(args), f"ablation=[{cell}]"])
        rec = run_cell([*common(args), f"ablation=[{cell}]", *recovery(args)])
        r = rec["recovery"]
        train_cpu = f"{r['cpu_s']:.0f}" + ("" if r["trained_this_run"] else " (cached)")
        for line in (row(f"{cell} zero-shot", zero, "-"), row(f"{cell} recovered", rec, train_cpu)):
            lines.append(line)
            print(line, flush=True)
    from evalsuite.results.recovery_section import recovery_table, records_in

    print("\nrecord-linked table (evalsuite.results.recovery_section):\n")
    print(recovery_table(records_in(Path(args.results))).to_markdown(index=False))


if __name__ == "__main__":
    main()
