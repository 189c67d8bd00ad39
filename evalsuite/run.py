"""run(cfg): build objects from a composed config, evaluate, write the record and the table.

Order matters for "bad input changes nothing on disk": every object that can reject its
input (prompt set, model source, ablation specs, metric configs, output folder) is built
before the first file is written.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import evaluate, generate_samples
from evalsuite.io import sha256_json
from evalsuite.models.generator import DiffusersGenerator
from evalsuite.results.provenance import provenance
from evalsuite.results.record import SCHEMA_VERSION, new_run_id, utc_now, write_record
from evalsuite.results.tables import write_tables
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)

# Where and on what a run happened does not change what it measured.
NOT_HASHED = ("paths", "device", "name", "tags")


def config_hash(cfg: DictConfig) -> str:
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    return sha256_json({k: v for k, v in d.items() if k not in NOT_HASHED})


def check_writable(folder: str) -> Path:
    """Fail early, without creating anything, if ``folder`` cannot be created or written."""
    path = Path(folder).expanduser().resolve()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise EvalsuiteError(f"the output folder {path} is not writable ({probe} "
                             f"{'is not a folder' if not probe.is_dir() else 'denies writing'}); "
                             "set paths.results_dir=<a writable folder>")
    return path


def build_ablations(cfg_ablation: DictConfig) -> list[Any]:
    """Instantiate the ablation specs in the order the config lists them."""
    if not cfg_ablation:
        return []
    return [instantiate(c) for c in cfg_ablation.values()]


def specs_to_dicts(specs: list[Any]) -> list[dict[str, Any]]:
    if not specs:
        return []
    from evalsuite.ablations import spec_to_dict

    return [spec_to_dict(s) for s in specs]


def _generation_factors(source: Any, unet: Any, specs: list[Any], cfg: DictConfig) -> dict[str, Any]:
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True)
    return {"model": source.identity(), "unet_config_sha256": sha256_json(dict(unet.config)),
            "ablations": specs_to_dicts(specs), "sampler": sampler,
            "resolution": source.resolution, "device_type": cfg.device.split(":")[0]}


def run(cfg: DictConfig, choices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate the configured model and write one result record; return the record."""
    t_start = time.perf_counter()
    durations: dict[str, float] = {}
    prompts = instantiate(cfg.dataset)
    source = instantiate(cfg.model)
    specs = build_ablations(cfg.ablation)
    sampler = OmegaConf.to_object(cfg.sampler)
    metric_factories = {n: partial(instantiate, c) for n, c in cfg.metrics["items"].items()}
    paired_with = list(cfg.metrics.paired_with)
    results = check_writable(cfg.paths.results_dir)
    chash = config_hash(cfg)

    t = time.perf_counter()
    components = source.load()
    durations["load_model"] = time.perf_counter() - t
    base_unet = components["unet"]
    baseline_store = None
    if specs and "baseline" in paired_with:
        # The baseline's samples are generated before surgery so one model sits in memory.
        base_gen = DiffusersGenerator(components, sampler, source.resolution, cfg.device)
        baseline_store = SampleStore(results / "samples",
                                     _generation_factors(source, base_unet, [], cfg))
        t = time.perf_counter()
        generate_samples(base_gen, prompts, baseline_store, sampler.seed, sampler.batch_size,
                         desc="generate baseline")
        durations["generate_baseline"] = time.perf_counter() - t
    if specs:
        from evalsuite.ablations import apply_ablations

        components["unet"] = apply_ablations(base_unet, specs)
    unet = components["unet"]
    generator = DiffusersGenerator(components, sampler, source.resolution, cfg.device)
    store = SampleStore(results / "samples", _generation_factors(source, unet, specs, cfg))
    stats = generate_samples(generator, prompts, store, sampler.seed, sampler.batch_size)
    durations["generate"] = stats.seconds

    reference = instantiate(cfg.reference) if "reconstruction" in paired_with else None
    ev = evaluate(prompts, store, metric_factories, paired_with=paired_with,
                  baseline=baseline_store, reference=reference, reconstruct=generator.reconstruct,
                  assets_dir=cfg.paths.assets_dir,
                  allow_random_weights=cfg.metrics.allow_random_weights,
                  batch_size=cfg.metrics.batch_size)
    durations["metrics"] = ev.seconds
    durations["total"] = time.perf_counter() - t_start

    record = _record(cfg, choices or {}, chash, source, unet, specs, prompts, sampler, stats,
                     baseline_store, reference, ev, durations)
    path = write_record(results / "records", record)
    log.info("wrote record %s", path)
    tables = write_tables(results)
    log.info("updated tables %s", ", ".join(str(p) for p in tables.values()))
    return record


def _record(cfg, choices, chash, source, unet, specs, prompts, sampler, stats, baseline_store,
            reference, ev, durations) -> dict[str, Any]:
    n_params = sum(p.numel() for p in unet.parameters())
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(chash),
        "created_at": utc_now().isoformat(),
        "status": "complete",
        "name": cfg.name,
        "tags": list(cfg.tags),
        "choices": choices,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": chash,
        "model": {**source.identity(), "ablations": specs_to_dicts(specs),
                  "unet_config_sha256": sha256_json(dict(unet.config)), "unet_params": n_params,
                  "resolution": source.resolution},
        "dataset": {"name": prompts.name, "source": prompts.source, "sha256": prompts.sha256,
                    "count": len(prompts)},
        "sampler": {**asdict(sampler), "generation_key": stats.generation_key},
        "samples": asdict(stats),
        "baseline_samples": str(baseline_store.dir) if baseline_store else None,
        "reference": reference.describe() if reference is not None else None,
        "metrics": ev.metrics,
        "skipped_metrics": ev.skipped,
        "allow_random_weights": bool(cfg.metrics.allow_random_weights),
        "durations": durations,
        "provenance": provenance(cfg.device),
    }
