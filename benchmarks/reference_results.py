"""Regenerate the committed reference evaluations of the shapes world (`results/reference/`).

Each entry is an ordinary `evalsuite run` (or study) into its own folder under
`results/reference/<name>/`, with one CPU thread so the numbers are reproducible bit for bit
on one machine. Records, tables and the report are committed; samples, caches and round trips
are not (.gitignore). `tests/regression/test_committed_results.py` re-runs the `gate` entry
from the overrides its committed record names and fails when any number moved: a commit that
changes a number must commit the regenerated records with it.

    python benchmarks/reference_results.py            # every entry (about 15 min on 2 cores)
    python benchmarks/reference_results.py gate       # only the gate's record (under a minute)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "reference"
COMMON = ["threads=1"]  # CPU kernels round differently per thread count: fix it

ENTRIES: dict[str, list[str]] = {
    # The regression gate's subset: the default world on its first 16 prompts.
    "gate": ["run", "dataset.n=16"],
    # README command 1 as it is: the default world, 64 prompts.
    "default": ["run"],
    # The BK-SDM block-removal study on the shapes pipeline (zero-shot, 4 cells).
    "bk_sdm": ["run", "-m", "-cn", "bk_sdm", "dataset.n=32"],
    # The MobileDiffusion ablation study on the shapes pipeline (zero-shot).
    "mobilediffusion": ["run", "-m", "-cn", "mobilediffusion", "dataset.n=32"],
}
NOT_COMMITTED = ("samples", "cache", "reconstructions", "multirun", "quarantine")


def regenerate(name: str) -> float:
    """Run one entry into a fresh folder; returns wall seconds."""
    folder = OUT / name
    if folder.exists():
        shutil.rmtree(folder)
    args = [*ENTRIES[name], *COMMON, f"paths.results_dir={folder}"]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli", *args], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{name}: evalsuite {' '.join(args)} failed (exit {proc.returncode})")
    for sub in NOT_COMMITTED:
        shutil.rmtree(folder / sub, ignore_errors=True)
    return time.perf_counter() - t0


def main() -> None:
    names = sys.argv[1:] or list(ENTRIES)
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        sys.exit(f"unknown entries {unknown}; choose from {list(ENTRIES)}")
    for name in names:
        seconds = regenerate(name)
        print(f"{name:<16} {seconds:8.1f} s  -> {OUT / name}")
        runs_md = OUT / name / "tables" / "runs.md"
        if runs_md.exists():
            print(runs_md.read_text())


if __name__ == "__main__":
    main()
