"""run(cfg): build objects from a composed config, evaluate, write the record and the table.

Order matters for "bad input changes nothing on disk": every object that can reject its
input (prompt set, model source, ablation specs, metric configs, output folder) is built
before the first file is written.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from evalsuite.config.build import build
from evalsuite.errors import EvalsuiteError
from evalsuite.data.reference import check_stats_images, reference_stats
from evalsuite.evaluate import EvalOptions, Reconstruction, check_reference_stats, evaluate
from evalsuite.io import JsonCache, atomic_create_bytes, sha256_json
from evalsuite.models.lazy import ComponentCache, LazyGenerator, LazyModel
from evalsuite.models.schedulers import check_sampler
from evalsuite.protocols import protocol_record
from evalsuite.results.provenance import provenance
from evalsuite.results.record import SCHEMA_VERSION, new_run_id, utc_now, write_record
from evalsuite.results.tables import write_tables
from evalsuite.samples.generate import Shard, generate_samples, manifest_entries, missing_by_shard
from evalsuite.samples.identity import device_factors
from evalsuite.samples.store import SampleStore

log = logging.getLogger(__name__)

# Where and on what a run happened does not change what it measured.
NOT_HASHED = ("paths", "device", "threads", "name", "tags", "shard", "stage")
STAGES = ("all", "generate", "metrics")


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


def eval_options(cfg: DictConfig, results: Path, on_error: str = "skip") -> EvalOptions:
    """How ``evaluate`` scores for a run config (``metrics`` and ``paths`` groups)."""
    m = cfg.metrics
    return EvalOptions(cfg.paths.assets_dir, m.allow_random_weights, m.verify_assets, on_error,
                       m.batch_size, results / "cache", m.bootstrap, m.bootstrap_seed)


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
            "resolution": source.resolution, **device_factors(cfg.device)}


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


@dataclass
class _Plan:
    """Everything a run needs, built and validated before the first write."""

    cfg: DictConfig
    prompts: Any
    source: Any
    specs: list[Any]
    sampler: Any
    metric_factories: dict[str, Any]
    paired_with: list[str]
    reference: Any
    results: Path
    shard: Shard
    store: SampleStore
    baseline_store: SampleStore | None
    facts: dict[str, Any]
    model: LazyModel
    protocol: dict[str, Any]
    overrides: list[str]


def _needs_reference(metrics: list[Any], paired_with: list[str]) -> bool:
    """True if a metric compares with real images (FID, KID, CMMD) or reconstructs them."""
    from evalsuite.metrics.base import DistributionMetric

    return "reconstruction" in paired_with or any(isinstance(m, DistributionMetric)
                                                  for m in metrics)


def _plan(cfg: DictConfig, overrides: Sequence[str] = (),
          components: ComponentCache | None = None) -> _Plan:
    prompts = build(cfg.dataset, "dataset")
    source = build(cfg.model, "model")
    specs = build_ablations(cfg.ablation)
    sampler = OmegaConf.to_object(cfg.sampler)
    check_sampler(sampler)
    shard = Shard(cfg.shard.index, cfg.shard.count)
    if cfg.stage not in STAGES:
        raise EvalsuiteError(f"stage={cfg.stage!r}; choose one of {list(STAGES)}")
    metric_factories = {n: partial(build, c, f"metrics.items.{n}")
                        for n, c in cfg.metrics["items"].items()}
    # A metric with a bad parameter fails here, before anything is written.
    probes = [factory() for factory in metric_factories.values()]
    paired_with = list(cfg.metrics.paired_with)
    results = check_writable(cfg.paths.results_dir)
    reference = None
    if _needs_reference(probes, paired_with):
        # cache_dir: a large image folder's content hash is remembered, not recomputed per run
        reference = build(cfg.reference, "reference", cache_dir=str(results / "cache"))
        check_stats_images(reference)
        check_reference_stats(reference_stats(reference), metric_factories,
                              eval_options(cfg, results))
    protocol = protocol_record(cfg, prompts, reference, overrides)
    if protocol["modified"]:
        log.warning("protocol %s is modified by %s: the record says so, and its numbers are not "
                    "comparable with the published protocol's", protocol["name"],
                    "; ".join(protocol["modified"]))
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    source.digest_cache = results / "cache" / "sha256.json"
    store = SampleStore(results / "samples", generation_factors(source, specs, cfg))
    facts = architecture_facts(source, specs, JsonCache(results / "cache" / "models"), store.key)
    baseline_store = None
    if specs and "baseline" in paired_with:
        baseline_store = SampleStore(results / "samples", generation_factors(source, [], cfg))
    return _Plan(cfg, prompts, source, specs, sampler, metric_factories, paired_with, reference,
                 results, shard, store, baseline_store, facts,
                 LazyModel(source, specs, sampler, cfg.device, components), protocol,
                 list(overrides))


def _generate(p: _Plan, durations: dict[str, float]) -> Any:
    s = p.sampler
    if p.baseline_store is not None:
        # Baseline samples first: they come from the same components before surgery.
        base = generate_samples(LazyGenerator(p.model, ablated=False), p.prompts,
                                p.baseline_store, s.seed, s.batch_size, p.shard,
                                desc="generate baseline")
        durations["generate_baseline"] = base.seconds
    stats = generate_samples(LazyGenerator(p.model, ablated=True), p.prompts, p.store, s.seed,
                             s.batch_size, p.shard)
    durations["generate"] = stats.seconds
    return stats


def _incomplete(p: _Plan) -> str | None:
    """Why the sample sets are not complete (per shard), or None if they are."""
    problems = []
    for what, store in (("samples", p.store), ("baseline samples", p.baseline_store)):
        if store is None:
            continue
        gone = missing_by_shard(p.prompts, store, p.sampler.batch_size, p.cfg.shard.count,
                                p.sampler.seed)
        problems += [f"{what}: shard {i} of {p.cfg.shard.count} is missing {len(ids)} images "
                     f"(e.g. {ids[:3]})" for i, ids in sorted(gone.items())]
    return "; ".join(problems) or None


def run(cfg: DictConfig, choices: dict[str, Any] | None = None,
        overrides: Sequence[str] = (),
        components: ComponentCache | None = None) -> dict[str, Any] | None:
    """Run the configured stages; return the record, or None when no metrics were computed.

    ``overrides`` are the command line's Hydra overrides: recorded, and checked against a
    named protocol's fields (``evalsuite.protocols``). ``components``: lend the model's
    loaded components to several runs of one process (a study) instead of reloading them.

    ``stage=generate`` only generates (this shard's part); ``stage=metrics`` only scores, and
    refuses an incomplete sample set unless ``allow_incomplete=true``; ``stage=all`` does both,
    and with several shards the shard that completes the set computes the metrics (once).
    """
    t_start = time.perf_counter()
    if cfg.task != "generate":
        return _run_task(cfg, choices, overrides)
    p = _plan(cfg, overrides, components)
    durations: dict[str, float] = {}
    stats = _generate(p, durations) if cfg.stage != "metrics" else None
    if cfg.stage == "generate":
        log.info("stage=generate: samples written; score them with stage=metrics")
        return None
    prompts = p.prompts
    why = _incomplete(p)
    if why and cfg.stage == "all" and cfg.shard.count > 1:
        log.info("shard %d of %d done; metrics run when the last shard finishes (or with "
                 "stage=metrics). Still missing: %s", cfg.shard.index, cfg.shard.count, why)
        return None
    if why and not cfg.allow_incomplete:
        raise EvalsuiteError(f"the sample set is incomplete, so no metrics were computed: {why}. "
                             "Re-run the failed shards, or score what exists with "
                             "allow_incomplete=true (the record then gives the count used).")
    if why:
        log.warning("scoring an incomplete sample set (allow_incomplete=true): %s", why)
        prompts = _present(p)
    if cfg.stage == "all" and cfg.shard.count > 1 and not _claim_merge(p):
        log.info("another shard is computing the metrics of this run")
        return None
    return _score(p, prompts, stats, choices, durations, t_start)


def _run_task(cfg: DictConfig, choices: dict[str, Any] | None,
              overrides: Sequence[str]) -> dict[str, Any] | None:
    """Tasks other than generation (``task=reconstruction``: decoder evaluation)."""
    if cfg.task == "reconstruction":
        from evalsuite.reconstruction import run_reconstruction

        return run_reconstruction(cfg, choices, overrides)
    raise EvalsuiteError(f"task={cfg.task!r}; choose generate or reconstruction")


def _present(p: _Plan) -> Any:
    have = p.store.valid_ids(manifest_entries(p.prompts, p.sampler.seed))
    if p.baseline_store is not None:
        have &= p.baseline_store.valid_ids(manifest_entries(p.prompts, p.sampler.seed))
    return p.prompts.subset(have, f"an image in the sample store {p.store.dir}")


def _claim_merge(p: _Plan) -> bool:
    """Exactly one shard wins the right to merge: the one that creates the marker file."""
    marker = p.results / "cache" / "merges" / f"{config_hash(p.cfg)[:16]}-{p.store.key}.json"
    try:
        atomic_create_bytes(marker, f'{{"shard": {p.cfg.shard.index}}}'.encode())
    except FileExistsError:
        return False
    return True


def _score(p: _Plan, prompts: Any, stats: Any, choices: dict[str, Any] | None,
           durations: dict[str, float], t_start: float) -> dict[str, Any]:
    cfg, s = p.cfg, p.sampler
    digest = p.store.write_manifest(manifest_entries(prompts, s.seed))
    if p.baseline_store is not None:
        p.baseline_store.write_manifest(manifest_entries(prompts, s.seed))
    recon = None
    if p.reference is not None:
        vae_identity = {"model": p.source.identity(), "dtype": s.dtype,
                        "device_type": cfg.device.split(":")[0]}
        recon = Reconstruction(p.reference, LazyGenerator(p.model, ablated=True).reconstruct,
                               vae_identity)
    o = eval_options(cfg, p.results)
    ev = evaluate(prompts, p.store, p.metric_factories, paired_with=p.paired_with,
                  baseline=p.baseline_store, reconstruction=recon, reference=p.reference,
                  assets_dir=o.assets_dir, allow_random_weights=o.allow_random_weights,
                  verify_assets=o.verify_assets, batch_size=o.batch_size,
                  cache_dir=o.cache_dir, bootstrap=o.bootstrap, bootstrap_seed=o.bootstrap_seed)
    durations["metrics"] = ev.seconds
    durations["total"] = time.perf_counter() - t_start
    generated = stats.generated if stats is not None else 0
    samples = {"dir": str(p.store.dir), "generation_key": p.store.key, "manifest_sha256": digest,
               "count": len(prompts), "generated": generated, "reused": len(prompts) - generated}
    record = _record(p, prompts, choices, ev, samples, durations)
    publish(p.results, record)
    return record


def publish(results: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` (immutable), then refresh the tables and the report from all records."""
    path = write_record(results / "records", record)
    log.info("wrote record %s", path)
    tables = write_tables(results)
    log.info("updated tables %s", ", ".join(str(t) for t in tables.values()))
    _write_report(results)
    return path


def _write_report(results: Path) -> None:
    """Refresh results/report.html; the record is written, so a report problem is only logged."""
    from evalsuite.results.report import write_report

    try:
        log.info("updated report %s", write_report(results))
    except Exception:  # noqa: BLE001 - the run's numbers are safe on disk already
        log.exception("could not write the HTML report (the record and tables are written)")


def record_envelope(cfg: DictConfig, choices: dict[str, Any], overrides: Sequence[str],
                    protocol: dict[str, Any], ev: Any, durations: dict[str, float]
                    ) -> dict[str, Any]:
    """The parts of a record every task writes alike: identity, config, protocol, metric
    values with what was cached and skipped, durations and provenance."""
    chash = config_hash(cfg)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(chash),
        "created_at": utc_now().isoformat(),
        "name": cfg.name,
        "tags": list(cfg.tags),
        "choices": choices,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": chash,
        "overrides": list(overrides),
        "protocol": protocol,
        "metrics": ev.metrics,
        "metrics_from_cache": ev.cached,
        "features_from_cache": ev.features_cached,  # "role:extractor" found in the cache
        "skipped_metrics": ev.skipped,
        "allow_random_weights": bool(cfg.metrics.allow_random_weights),
        "durations": durations,
        "provenance": provenance(cfg.device),
    }


def _record(p: _Plan, prompts: Any, choices: dict[str, Any] | None, ev: Any,
            samples: dict[str, Any], durations: dict[str, float]) -> dict[str, Any]:
    cfg = p.cfg
    # Hydra leaves list groups out of its runtime choices; the option names are the keys.
    choices = {**(choices or {}), "ablation": f"[{','.join(cfg.ablation.keys())}]"}
    return {
        **record_envelope(cfg, choices, p.overrides, p.protocol, ev, durations),
        "status": "complete" if len(prompts) == len(p.prompts) else "incomplete",
        "model": {**p.source.identity(), "ablations": specs_to_dicts(p.specs), **p.facts,
                  "path": str(p.source.path) if p.source.path else None,
                  "unet_origin": p.source.unet_origin, "resolution": p.source.resolution,
                  "loaded_this_run": p.model.loaded},
        "dataset": {"name": p.prompts.name, "source": p.prompts.source,
                    "sha256": p.prompts.sha256, "count": len(p.prompts), "n_used": len(prompts)},
        "sampler": {**asdict(p.sampler), "generation_key": p.store.key},
        "samples": samples,
        "sharding": {"count": cfg.shard.count, "merged_by": cfg.shard.index},
        "baseline_samples": str(p.baseline_store.dir) if p.baseline_store else None,
        "reference": p.reference.describe() if p.reference is not None else None,
    }
