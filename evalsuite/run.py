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

from omegaconf import DictConfig, OmegaConf

from evalsuite.config.build import build
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import Reconstruction, evaluate, generate_samples
from evalsuite.io import JsonCache, sha256_json
from evalsuite.models.lazy import LazyGenerator, LazyModel
from evalsuite.models.schedulers import check_sampler
from evalsuite.results.provenance import provenance
from evalsuite.results.record import SCHEMA_VERSION, new_run_id, utc_now, write_record
from evalsuite.results.tables import write_tables
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)

# Where and on what a run happened does not change what it measured.
NOT_HASHED = ("paths", "device", "threads", "name", "tags", "shard", "stage")


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
    """Instantiate the ablation specs in the order the config lists them.

    An option may build one spec or a sequence of them (``preset_*``: a model preset's list).
    """
    specs: list[Any] = []
    for key, node in (cfg_ablation or {}).items():
        built = build(node, f"ablation.{key}")
        specs.extend(built if isinstance(built, (list, tuple)) else [built])
    return specs


def specs_to_dicts(specs: list[Any]) -> list[dict[str, Any]]:
    if not specs:
        return []
    from evalsuite.ablations import spec_to_dict

    return [spec_to_dict(s) for s in specs]


def generation_factors(source: Any, specs: list[Any], cfg: DictConfig) -> dict[str, Any]:
    """Everything that changes the pixels of a sample (the sample store's key)."""
    return {"model": source.identity(), "ablations": specs_to_dicts(specs),
            "sampler": OmegaConf.to_container(cfg.sampler, resolve=True),
            "resolution": source.resolution, "device_type": cfg.device.split(":")[0]}


def architecture_facts(source: Any, specs: list[Any], cache: JsonCache, key: str) -> dict[str, Any]:
    """UNet parameters and FLOPs of the model + ablations, from its config on the meta device.

    Building the architecture also validates the ablations against it, so an ablation the
    model cannot take fails here, before any sample is generated. Cached per generation key.
    """
    facts = cache.get(key)
    if facts is None:
        from evalsuite.profile.model import profile_unet, unet_architecture

        base, preset = unet_architecture(source.arch, str(source.path) if source.path else None)
        p = profile_unet(base, preset + list(specs), sample_size=source.resolution // 8)
        facts = {"unet_params": p["unet_params"], "unet_gflops": p["flops"] / 1e9,
                 "flops_counted": f"one UNet forward, batch 1, latent {source.resolution // 8}, "
                                  f"{p['inputs']['text_len']} tokens; {p['flops_counted']}",
                 "profile_version": p["version"]}
        cache.put(key, facts)
    return facts


def run(cfg: DictConfig, choices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate the configured model and write one result record; return the record."""
    t_start = time.perf_counter()
    prompts = build(cfg.dataset, "dataset")
    source = build(cfg.model, "model")
    specs = build_ablations(cfg.ablation)
    sampler = OmegaConf.to_object(cfg.sampler)
    check_sampler(sampler)
    metric_factories = {n: partial(build, c, f"metrics.items.{n}")
                        for n, c in cfg.metrics["items"].items()}
    for factory in metric_factories.values():
        factory()  # a metric with a bad parameter fails here, before anything is written
    paired_with = list(cfg.metrics.paired_with)
    reference = build(cfg.reference, "reference") if "reconstruction" in paired_with else None
    results = check_writable(cfg.paths.results_dir)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    source.digest_cache = results / "cache" / "sha256.json"
    chash = config_hash(cfg)
    durations: dict[str, float] = {}

    store = SampleStore(results / "samples", generation_factors(source, specs, cfg))
    facts = architecture_facts(source, specs, JsonCache(results / "cache" / "models"), store.key)
    model = LazyModel(source, specs, sampler, cfg.device)
    baseline_store = None
    if specs and "baseline" in paired_with:
        # Baseline samples first: they come from the same components before surgery.
        baseline_store = SampleStore(results / "samples", generation_factors(source, [], cfg))
        base = generate_samples(LazyGenerator(model, ablated=False), prompts, baseline_store,
                                sampler.seed, sampler.batch_size, desc="generate baseline")
        durations["generate_baseline"] = base.seconds
    stats = generate_samples(LazyGenerator(model, ablated=True), prompts, store, sampler.seed,
                             sampler.batch_size)
    durations["generate"] = stats.seconds

    recon = None
    if reference is not None:
        vae_identity = {"model": source.identity(), "dtype": sampler.dtype,
                        "device_type": cfg.device.split(":")[0]}
        recon = Reconstruction(reference, LazyGenerator(model, ablated=True).reconstruct,
                               vae_identity)
    ev = evaluate(prompts, store, metric_factories, paired_with=paired_with,
                  baseline=baseline_store, reconstruction=recon, assets_dir=cfg.paths.assets_dir,
                  allow_random_weights=cfg.metrics.allow_random_weights,
                  batch_size=cfg.metrics.batch_size, cache_dir=results / "cache")
    durations["metrics"] = ev.seconds

    durations["total"] = time.perf_counter() - t_start
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(chash),
        "created_at": utc_now().isoformat(),
        "status": "complete",
        "name": cfg.name,
        "tags": list(cfg.tags),
        # Hydra leaves list groups out of its runtime choices; the option names are the keys.
        "choices": {**(choices or {}), "ablation": f"[{','.join(cfg.ablation.keys())}]"},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": chash,
        "model": {**source.identity(), "ablations": specs_to_dicts(specs), **facts,
                  "path": str(source.path) if source.path else None,
                  "unet_origin": source.unet_origin, "resolution": source.resolution,
                  "loaded_this_run": model.loaded},
        "dataset": {"name": prompts.name, "source": prompts.source, "sha256": prompts.sha256,
                    "count": len(prompts)},
        "sampler": {**asdict(sampler), "generation_key": stats.generation_key},
        "samples": asdict(stats),
        "baseline_samples": str(baseline_store.dir) if baseline_store else None,
        "reference": reference.describe() if reference is not None else None,
        "metrics": ev.metrics,
        "metrics_from_cache": ev.cached,
        "skipped_metrics": ev.skipped,
        "allow_random_weights": bool(cfg.metrics.allow_random_weights),
        "durations": durations,
        "provenance": provenance(cfg.device),
    }
    path = write_record(results / "records", record)
    log.info("wrote record %s", path)
    tables = write_tables(results)
    log.info("updated tables %s", ", ".join(str(p) for p in tables.values()))
    return record
