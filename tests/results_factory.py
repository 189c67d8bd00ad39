"""Synthetic result records for the results tests (tables, compare, report).

Shaped like the records ``evalsuite.run`` writes (schema 1), with only the fields the
results code reads; every value is given by the test, so tests can assert exact numbers.
"""

from __future__ import annotations

import hashlib
from typing import Any

LOWER_IS_BETTER = ("fid", "kid", "cmmd", "lpips")


def _metric(name: str, spec: Any) -> dict[str, Any]:
    spec = spec if isinstance(spec, dict) else {"value": spec}
    m = {"value": spec["value"], "version": str(spec.get("version", "1")), "n": spec.get("n", 32),
         "higher_is_better": not name.startswith(LOWER_IS_BETTER), "settings": {}}
    if "ci" in spec:
        low, high = spec["ci"]
        m["ci"] = {"low": low, "high": high, "n_resamples": 1000, "level": 0.95}
    if "pairing" in name:
        m["pairing"] = name.split("/")[1]
    return m


def make_record(i: int, metrics: dict[str, Any], *, preset: str = "tiny",
                ablations: tuple = (), dataset: str = "demo", count: int = 32,
                guidance: float = 7.5, steps: int = 10, seed: int = 1234,
                samples_dir: str | None = None, baseline_samples: str | None = None,
                protocol: dict | None = None, name: str | None = None,
                metric_params: dict | None = None) -> dict[str, Any]:
    """Record number ``i`` (its run id and time sort by ``i``)."""
    sha = hashlib.sha256(f"{dataset}/{count}".encode()).hexdigest()
    abl = [a if isinstance(a, dict) else {"name": a, "params": {}} for a in ablations]
    rec = {
        "schema_version": 1,
        "run_id": f"2026010{i // 10}T0000{i % 10:02d}-cafe{i:04d}-{i:06x}",
        "created_at": f"2026-01-0{1 + i // 10}T00:00:{i % 60:02d}+00:00",
        "status": "complete", "name": name, "tags": [],
        "choices": {"model": preset, "dataset": dataset, "sampler": "default"},
        "config": {"metrics": {"items": metric_params or {}}},
        "model": {"preset": preset, "weights": "random_init", "arch": "tiny", "ablations": abl,
                  "unet_params": 3_000_000 - 100_000 * len(abl), "resolution": 64},
        "dataset": {"name": dataset, "sha256": sha, "count": count},
        "sampler": {"scheduler": "pndm", "steps": steps, "guidance_scale": guidance, "seed": seed,
                    "dtype": "float32", "negative_prompt": None, "batch_size": 8},
        "samples": {"dir": samples_dir, "count": count},
        "baseline_samples": baseline_samples,
        "reference": None,
        "metrics": {k: _metric(k, v) for k, v in metrics.items()},
        "durations": {"total": 1.0},
        "provenance": {"evalsuite_version": "0.1.0", "git": {"commit": "0" * 40, "dirty": False}},
    }
    if preset != "tiny":  # a preset's checkpoint, as `model=<preset> model.path=...` records it
        rec["model"].update({"weights": "checkpoint", "checkpoint_sha256": "c" * 64, "arch": preset})
    if protocol is not None:
        rec["protocol"] = protocol
    return rec
