"""The shapes pipeline under different samplers: the README's sampler table.

Runs ``evalsuite run`` (the default ``world=shapes``, its 64 test prompts) once per sampler
setting, each into its own temporary results folder and on one CPU thread, and prints one
Markdown row per setting: generation time, the attribute checker's per-object accuracy for
colour, shape, size and position (read at the prompted position), count, the per-prompt
``relation`` and ``all`` accuracies, the CLIP-score analogue and ``fd_shapes``.

    python benchmarks/shapes_samplers.py                      # the four README rows (~2 min)
    python benchmarks/shapes_samplers.py --model-path PATH    # another pipeline folder
    python benchmarks/shapes_samplers.py --rows 2 dataset.limit=16

Extra arguments are Hydra overrides given to every run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalsuite.results.record import load_records  # noqa: E402

ROWS: dict[str, list[str]] = {
    "DDIM 20, CFG 4 (default)": [],
    "DDIM 20, CFG 7.5": ["sampler.guidance_scale=7.5"],
    "DDIM 20, CFG 1 (no guidance)": ["sampler.guidance_scale=1"],
    "PNDM 10, CFG 7.5": ["sampler.scheduler=pndm", "sampler.steps=10",
                         "sampler.guidance_scale=7.5"],
}
ATTRIBUTES = ("colour", "shape", "size", "position", "count", "relation", "all")


def run_one(overrides: list[str]) -> dict[str, Any]:
    """One ``evalsuite run`` in a fresh results folder; its record."""
    with tempfile.TemporaryDirectory(prefix="evalsuite-samplers-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "evalsuite.cli", "run", "threads=1",
                               f"paths.results_dir={tmp}", *overrides], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"evalsuite run {' '.join(overrides)} failed:\n{proc.stderr[-3000:]}")
        (record,) = load_records(Path(tmp) / "records")
    return record


def row(label: str, record: dict[str, Any]) -> str:
    """The Markdown row of one run."""
    metrics = record["metrics"]
    overall = metrics["shapes_attr_acc"]["settings"]["breakdown"]["overall"]
    accuracies = " | ".join(f"{100 * overall[a]['accuracy']:.1f}%" for a in ATTRIBUTES)
    return (f"| {label} | {record['durations']['generate']:.1f} s | {accuracies} | "
            f"{metrics['shapes_clip_score']['value']:.3f} | {metrics['fd_shapes']['value']:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", help="a shapes pipeline folder (default: the shipped one)")
    parser.add_argument("--rows", type=int, default=len(ROWS), help="only the first N settings")
    args, overrides = parser.parse_known_args()
    if args.model_path:
        overrides = [f"model.path={args.model_path}", *overrides]
    print("| sampler | generation | " + " | ".join(ATTRIBUTES) + " | CLIP analogue | `fd_shapes` |")
    print("|---" * (len(ATTRIBUTES) + 4) + "|")
    for label, extra in list(ROWS.items())[:args.rows]:
        print(row(label, run_one([*overrides, *extra])), flush=True)


if __name__ == "__main__":
    main()
