"""Benchmark: the default `evalsuite run`, then the same command again in the same folder.

The second run finds every sample and metric value in place, so it regenerates nothing and
does not load the model. Prints both wall times and their ratio (measured side by side in one
invocation, on whatever else this machine is doing).

With ``--against REV`` the same two runs are made with the code of git revision REV too
(exported with ``git archive`` into a temporary folder, imported through ``PYTHONPATH``),
alternating between the two trees ``--repeats`` times so that both see the same load, and the
medians are compared: "is this change slower than the commit before it?".

    python benchmarks/rerun.py [extra hydra overrides...]
    python benchmarks/rerun.py --against 860d529 --repeats 3 [overrides...]

When REV names a setting differently (e.g. before the ``world`` group existed), give its
overrides separately: ``--against 860d529 --rev-overrides "" world=tiny`` times this tree's
``world=tiny`` against REV's default, which was the same tiny world.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_run(cwd: Path, overrides: list[str], code: Path = REPO) -> tuple[float, dict]:
    """One ``evalsuite run`` in ``cwd`` with the package found in ``code``: wall s, record."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli", "run", *overrides], cwd=cwd,
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"evalsuite run ({code}) failed:\n{proc.stderr[-3000:]}")
    latest = sorted((cwd / "results" / "records").glob("*.json"))[-1]
    return elapsed, json.loads(latest.read_text())


def run_twice(code: Path, overrides: list[str]) -> tuple[float, float, dict, dict]:
    """The first and the second run in a fresh folder: (first s, second s, records)."""
    with tempfile.TemporaryDirectory(prefix="evalsuite-bench-") as tmp:
        first, rec1 = timed_run(Path(tmp), overrides, code)
        second, rec2 = timed_run(Path(tmp), overrides, code)
    if rec1["metrics"] != rec2["metrics"]:
        sys.exit(f"metric values differ between the two runs ({code})")
    return first, second, rec1, rec2


def export_revision(rev: str, dest: Path) -> Path:
    """The tree of git revision ``rev`` (committed files only) unpacked under ``dest``."""
    archive = dest / "tree.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), rev], cwd=REPO,
                   check=True)
    tree = dest / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def single(overrides: list[str]) -> None:
    first, second, rec1, rec2 = run_twice(REPO, overrides)
    print(f"{'run':<8}{'wall s':>10}{'generated':>12}{'model loaded':>15}{'metrics cached':>16}")
    for name, t, r in (("first", first, rec1), ("second", second, rec2)):
        print(f"{name:<8}{t:>10.2f}{r['samples']['generated']:>12}"
              f"{str(r['model']['loaded_this_run']):>15}{len(r['metrics_from_cache']):>16}")
    print(f"second / first = {second / first:.3f}")


def against(rev: str, repeats: int, overrides: list[str], rev_overrides: list[str]) -> None:
    """Alternate this tree and ``rev``'s; print the medians and the ratios this / rev."""
    with tempfile.TemporaryDirectory(prefix="evalsuite-rev-") as tmp:
        old = export_revision(rev, Path(tmp))
        times: dict[str, list[tuple[float, float]]] = {"this": [], rev: []}
        values: dict[str, dict[str, float]] = {}
        for i in range(repeats):
            for name, code, over in (("this", REPO, overrides), (rev, old, rev_overrides)):
                first, second, rec, _ = run_twice(code, over)
                values[name] = {k: v["value"] for k, v in rec["metrics"].items()}
                times[name].append((first, second))
                print(f"repeat {i + 1}: {name:<10} first {first:7.2f} s  second {second:6.2f} s",
                      flush=True)
    med = {n: (statistics.median(f for f, _ in t), statistics.median(s for _, s in t))
           for n, t in times.items()}
    print(f"\n{'code':<12}{'first (median s)':>18}{'second (median s)':>19}")
    for name, (f, s) in med.items():
        print(f"{name:<12}{f:>18.2f}{s:>19.2f}")
    if values["this"] != values[rev]:
        print(f"note: the two trees computed different values, so they did different work: "
              f"{values}")
    print(f"this / {rev}: first {med['this'][0] / med[rev][0]:.3f}, "
          f"second {med['this'][1] / med[rev][1]:.3f}  (< 1: this is faster; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="REV", help="also time git revision REV")
    parser.add_argument("--repeats", type=int, default=3, help="alternations with --against")
    parser.add_argument("--rev-overrides", help="REV's overrides (default: the same)")
    args, overrides = parser.parse_known_args()
    if args.against:
        rev_over = overrides if args.rev_overrides is None else args.rev_overrides.split()
        against(args.against, args.repeats, overrides, rev_over)
    else:
        single(overrides)


if __name__ == "__main__":
    main()
