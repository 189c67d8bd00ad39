"""Benchmark: the default `evalsuite run`, then the same command again in the same folder.

The second run finds every sample and metric value in place, so it regenerates nothing and
does not load the model. Prints both wall times and their ratio (measured side by side in one
invocation, on whatever else this machine is doing).

    python benchmarks/rerun.py [extra hydra overrides...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(cwd: Path, overrides: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli", "run", *overrides], cwd=cwd,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"evalsuite run failed:\n{proc.stderr[-3000:]}")
    latest = sorted((cwd / "results" / "records").glob("*.json"))[-1]
    return elapsed, json.loads(latest.read_text())


def main() -> None:
    overrides = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="evalsuite-bench-") as tmp:
        first, rec1 = timed_run(Path(tmp), overrides)
        second, rec2 = timed_run(Path(tmp), overrides)
    print(f"{'run':<8}{'wall s':>10}{'generated':>12}{'model loaded':>15}{'metrics cached':>16}")
    for name, t, r in (("first", first, rec1), ("second", second, rec2)):
        print(f"{name:<8}{t:>10.2f}{r['samples']['generated']:>12}"
              f"{str(r['model']['loaded_this_run']):>15}{len(r['metrics_from_cache']):>16}")
    print(f"second / first = {second / first:.3f}")
    if rec1["metrics"] != rec2["metrics"]:
        sys.exit("metric values differ between the two runs")


if __name__ == "__main__":
    main()
