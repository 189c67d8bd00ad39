"""The regression gate: re-run the committed reference evaluation and compare every number.

`results/reference/gate/records/` holds one record that evalsuite wrote on the shapes world
(benchmarks/reference_results.py). This test runs `evalsuite run` again with the overrides
that record names, into a fresh folder holding a copy of it, then
- `evalsuite compare` (exit status) must pass: nothing got worse beyond conf/compare.yaml's
  tolerances;
- every metric value must equal the committed one (relative 1e-9): a change that moves any
  number, better or worse, fails until the same commit regenerates the committed records.
A second test perturbs one metric implementation on purpose and shows the gate failing.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, read_records, run_cli

GATE = ROOT / "results" / "reference" / "gate"
REGENERATE = "python benchmarks/reference_results.py gate"


def committed() -> tuple[Path, dict]:
    files = sorted((GATE / "records").glob("*.json"))
    assert len(files) == 1, f"expected one committed gate record in {GATE}/records ({REGENERATE})"
    return files[0], json.loads(files[0].read_text())


def rerun_overrides(rec: dict) -> list[str]:
    """What the committed record was run with, minus where it was written."""
    return ["world=shapes", *(o for o in rec["overrides"] if not o.startswith("paths."))]


def moved(base: dict, cand: dict, rel: float = 1e-9) -> list[str]:
    """Metrics whose value differs (either way) or that one record lacks."""
    out = []
    for name in sorted(set(base["metrics"]) | set(cand["metrics"])):
        a, b = base["metrics"].get(name), cand["metrics"].get(name)
        if a is None or b is None:
            out.append(f"{name}: only in {'candidate' if a is None else 'committed'}")
        elif not math.isclose(a["value"], b["value"], rel_tol=rel, abs_tol=1e-12):
            out.append(f"{name}: committed {a['value']!r}, now {b['value']!r}")
    return out


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory) -> tuple[Path, dict, dict]:
    path, base = committed()
    results = tmp_path_factory.mktemp("gate") / "results"
    (results / "records").mkdir(parents=True)
    shutil.copy(path, results / "records" / path.name)
    proc = run_cli(["run", *rerun_overrides(base), f"paths.results_dir={results}"],
                   results.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [cand] = [r for r in read_records(results) if r["run_id"] != base["run_id"]]
    return results, base, cand


def test_the_committed_numbers_are_reproduced_exactly(gate_run):
    results, base, cand = gate_run
    proc = run_cli(["compare", f"baseline={base['run_id']}", f"candidate={cand['run_id']}",
                    f"paths.results_dir={results}"], results.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert moved(base, cand) == [], f"numbers moved; if intended, run `{REGENERATE}`"
    assert {"shapes_attr_acc", "fd_shapes", "shapes_clip_score"} <= set(cand["metrics"])


def test_the_gate_fails_when_a_metric_implementation_is_perturbed(gate_run, compose,
                                                                  monkeypatch, tmp_path):
    """PSNR made 0.5 dB lower: compare exits 1 and the exact check names the metric."""
    from evalsuite.metrics import pixel
    from evalsuite.run import run

    results, base, _ = gate_run
    perturbed = tmp_path / "results"
    # the stored images are reused; every metric is computed again (no metric/feature cache)
    shutil.copytree(results, perturbed, ignore=shutil.ignore_patterns("cache"))
    real = pixel.psnr
    monkeypatch.setattr(pixel.PSNR, "_fn", staticmethod(lambda a, b: real(a, b) - 0.5))
    cand = run(compose(*rerun_overrides(base)))  # results under tmp_path/results
    assert [m.split(":")[0] for m in moved(base, cand)] == ["psnr/reconstruction"]
    proc = run_cli(["compare", f"baseline={base['run_id']}", f"candidate={cand['run_id']}",
                    f"paths.results_dir={perturbed}"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "psnr/reconstruction" in proc.stdout
