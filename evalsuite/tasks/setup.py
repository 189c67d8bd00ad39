"""What every task sets up alike, each in one place: the writable check, threads, the metric
factories, how ``evaluate`` scores (``EvalOptions``) and the config hash."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from evalsuite.config.build import build
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import EvalOptions
from evalsuite.io import sha256_json
from evalsuite.metrics.base import Metric

#: Top-level config keys that say where and on what a run happened, how it was split or
#: where its record is sent (``export``): none of them changes what was measured, so none is
#: hashed.
NOT_HASHED = ("paths", "device", "threads", "name", "tags", "shard", "stage", "assets",
              "limits", "export")
#: Per-section keys that name where inputs are (their content is hashed instead).
INPUT_PATHS = {"score": ("gen_dir", "ref_dir", "prompts")}

MetricFactories = dict[str, Callable[[], Metric]]


def config_hash(cfg: DictConfig, inputs: dict[str, Any] | None = None) -> str:
    """sha256 of what was measured: the config without ``NOT_HASHED`` keys and input paths,
    plus (``inputs``) the content identity of inputs named by path."""
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    d = {k: v for k, v in d.items() if k not in NOT_HASHED}
    for section, keys in INPUT_PATHS.items():
        if isinstance(d.get(section), dict):
            d[section] = {k: v for k, v in d[section].items() if k not in keys}
    return sha256_json(d if inputs is None else {"config": d, "inputs": inputs})


#: The results folder's subfolders a run writes to: each is checked before the work.
OUTPUT_SUBFOLDERS = ("records", "tables", "cache", "samples", "reconstructions")


def check_writable(folder: str) -> Path:
    """Fail early, without creating anything, if ``folder`` or one of the subfolders a run
    writes to (``OUTPUT_SUBFOLDERS``) cannot be created or written."""
    path = Path(folder).expanduser().resolve()
    for target in (path, *(path / sub for sub in OUTPUT_SUBFOLDERS)):
        probe = target
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            what = "is not a folder" if not probe.is_dir() else "denies writing"
            raise EvalsuiteError(f"the output folder {target} is not writable ({probe} {what}), "
                                 "so the run would fail after its work; nothing was done. Make "
                                 "it writable, or set paths.results_dir=<a writable folder>")
    return path


def set_threads(threads: int | None) -> dict[str, Any]:
    """torch's intra-op threads: the ``threads`` setting, else what the machine allows (CPU
    affinity, cgroup quota, ``OMP_NUM_THREADS``; ``evalsuite.threads``). Returns {count,
    source}, which the record keeps. torch is not imported for it (a cached re-run never is)."""
    from evalsuite.threads import apply_threads

    return apply_threads(threads)


def metric_factories(cfg: DictConfig) -> MetricFactories:
    """name -> factory of a fresh metric; each built once here, so a bad parameter fails
    before anything is written."""
    factories = {n: partial(build, c, f"metrics.items.{n}") for n, c in cfg.metrics["items"].items()}
    for factory in factories.values():
        factory()
    return factories


def eval_options(cfg: DictConfig, results: Path, on_error: str = "skip") -> EvalOptions:
    """How ``evaluate`` scores, from the ``metrics`` and ``paths`` groups."""
    m = cfg.metrics
    return EvalOptions(cfg.paths.assets_dir, m.allow_random_weights, m.verify_assets, on_error,
                       m.batch_size, results / "cache", m.bootstrap, m.bootstrap_seed)
