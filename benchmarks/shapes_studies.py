"""The MobileDiffusion and BK-SDM ablation studies on the shapes world: quality against cost.

Runs each study as a user would (``evalsuite run -m -cn <study>``, zero-shot, one CPU thread)
into its own folder, then prints one table per study: UNet parameters and GFLOPs beside the
world's metrics (FD and KID in the world's feature space, the CLIP-score analogue, and the
checker's attribute accuracies), each cell's loss against the unablated baseline, and the
cells ordered by that loss. It ends with the clear-cut orderings the shapes world is built to
show, each checked against a bootstrap interval over prompts (not a point estimate):

    python benchmarks/shapes_studies.py                      # both studies, 64 prompts (~10 min)
    python benchmarks/shapes_studies.py --n 32 mobilediffusion
    python benchmarks/shapes_studies.py --from results/reference   # tables of committed runs

Exit status 1 when a clear-cut ordering does not hold.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalsuite.metrics.bootstrap import mean_ci  # noqa: E402
from evalsuite.results.record import load_records  # noqa: E402

STUDIES = ("mobilediffusion", "bk_sdm")
#: Per-object attribute checks whose mean is the "attribute accuracy" used to order cells
#: (the metric's own value, GenEval's "all", is too strict to order weak cells).
ATTRIBUTES = ("shape", "colour", "size", "position")
#: Orderings the world must show, zero-shot: (worse cell, better cell). Heavy surgery that
#: removes whole stages must lose more than a change of activation function.
CLEAR_CUT = (("preset_bk_sdm_tiny", "[]"), ("preset_mobilediffusion_like", "[]"),
             ("preset_bk_sdm_tiny", "swish_glu"))


def run_study(study: str, n: int, folder: Path) -> float:
    """One zero-shot sweep into ``folder``; returns wall seconds."""
    args = [sys.executable, "-m", "evalsuite.cli", "run", "-m", "-cn", study, f"dataset.n={n}",
            "threads=1", f"paths.results_dir={folder}"]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"{study}: {' '.join(args[2:])} failed (exit {proc.returncode})")
    return time.perf_counter() - t0


def cell_name(record: dict[str, Any]) -> str:
    """The study cell: the ablation choice as the sweep named it ("[]" for the baseline)."""
    chosen = record.get("choices", {}).get("ablation") or []
    if isinstance(chosen, str):  # Hydra's choice for a list override: "[a,b]"
        chosen = [c.strip() for c in chosen.strip("[]").split(",") if c.strip()]
    return "+".join(chosen) if chosen else "[]"


def per_image(record: dict[str, Any], metric: str) -> np.ndarray:
    """A metric's per-image values in prompt order (``shapes_attr_acc``: 1 where every check
    holds), for paired bootstrap intervals."""
    block = record["metrics"].get(metric, {}).get("per_image") or {}
    return np.asarray([np.nan if v is None else v for v in block.get("values", [])], float)


def attribute_accuracy(record: dict[str, Any]) -> dict[str, float]:
    """Overall accuracy per attribute, and their mean."""
    overall = record["metrics"]["shapes_attr_acc"]["settings"]["breakdown"]["overall"]
    acc = {a: overall[a]["accuracy"] for a in (*ATTRIBUTES, "all")}
    acc["mean"] = float(np.mean([acc[a] for a in ATTRIBUTES]))
    return acc


def row(record: dict[str, Any]) -> dict[str, Any]:
    """The printed quantities of one cell."""
    m = record["metrics"]
    value = lambda k: m[k]["value"] if k in m else float("nan")  # noqa: E731
    return {"cell": cell_name(record), "params_m": record["model"]["unet_params"] / 1e6,
            "gflops": record["model"]["unet_gflops"], "fd": value("fd_shapes"),
            "kid": value("kid_shapes"), "clip": value("shapes_clip_score"),
            **{f"acc_{k}": v for k, v in attribute_accuracy(record).items()}}


def print_table(study: str, rows: list[dict[str, Any]]) -> None:
    base = next((r for r in rows if r["cell"] == "[]"), rows[0])
    print(f"\n## {study} on the shapes world (zero-shot, {len(rows)} cells)\n")
    print("| cell | UNet M params | GFLOPs | FD | KID x1e3 | CLIP-analogue | shape | colour | "
          "size | position | all | attr. mean | loss vs base |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: base["acc_mean"] - r["acc_mean"]):
        print(f"| {r['cell']} | {r['params_m']:.3f} | {r['gflops']:.4f} | {r['fd']:.4f} | "
              f"{1e3 * r['kid']:.3f} | {r['clip']:.3f} | {r['acc_shape']:.2f} | "
              f"{r['acc_colour']:.2f} | {r['acc_size']:.2f} | {r['acc_position']:.2f} | "
              f"{r['acc_all']:.2f} | {r['acc_mean']:.3f} | {base['acc_mean'] - r['acc_mean']:+.3f} |")


def paired_interval(worse: np.ndarray, better: np.ndarray, seed: int = 0,
                    resamples: int = 2000) -> tuple[float, float, float]:
    """Mean of ``better - worse`` over the same prompts and its 95% percentile bootstrap
    interval (prompts resampled jointly: both cells were sampled from the same prompts
    and seeds)."""
    return mean_ci(better - worse, resamples, seed)  # the suite's own bootstrap


def check_clear_cut(by_cell: dict[str, dict[str, Any]]) -> bool:
    """Print and check each clear-cut ordering whose two cells were run: the better cell's
    attribute accuracy must exceed the worse one's with a paired 95% interval above 0."""
    ok = True
    print("\n## Clear-cut orderings (paired bootstrap over the same prompts and seeds)\n")
    for worse, better in CLEAR_CUT:
        if worse not in by_cell or better not in by_cell:
            continue
        cells, holds = (by_cell[worse], by_cell[better]), False
        parts = []
        for metric in ("shapes_attr_acc", "shapes_clip_score"):
            a, b = (per_image(c, metric) for c in cells)
            if len(a) != len(b) or not len(a):
                parts.append(f"{metric}: per-image values missing")
                continue
            mean, lo, hi = paired_interval(a, b)
            if metric == "shapes_attr_acc":
                holds = lo > 0
                ok &= holds
            parts.append(f"{metric} {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        verdict = "holds" if holds else "NOT SHOWN"
        print(f"- {better} over {worse}: {'; '.join(parts)} -> {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("studies", nargs="*", help=f"studies to run (default: {' '.join(STUDIES)})")
    p.add_argument("--n", type=int, default=64, help="prompts per cell (default 64)")
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="read <folder>/<study>/records instead of running the studies")
    args = p.parse_args(argv)
    if set(args.studies) - set(STUDIES):
        p.error(f"unknown studies {sorted(set(args.studies) - set(STUDIES))}; choose from {STUDIES}")
    scratch = tempfile.TemporaryDirectory(prefix="shapes-studies-")
    by_cell: dict[str, dict[str, Any]] = {}
    for study in args.studies or STUDIES:
        folder = (args.source or Path(scratch.name)) / study
        if args.source is None:
            print(f"{study}: {run_study(study, args.n, folder):.0f} s", file=sys.stderr)
        records = load_records(folder / "records")
        if not records:
            sys.exit(f"{study}: no records under {folder / 'records'}")
        latest = {cell_name(r): r for r in sorted(records, key=lambda r: r["created_at"])}
        print_table(study, [row(r) for r in latest.values()])
        by_cell.update(latest)
    return 0 if check_clear_cut(by_cell) else 1


if __name__ == "__main__":
    sys.exit(main())
