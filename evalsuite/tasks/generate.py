"""``task=generate``: generate samples for a model (+ ablations) and score them.

Everything that can reject its input (prompt set, model source, ablation specs, pairings,
reference set and its imported statistics) is built in ``prepare``, before the first file is
written. The ``baseline`` pairing compares with the un-ablated model's samples (a second
store, generated first from the same components); the ``reconstruction`` pairing scores the
model's VAE round trip of the reference photographs against them: an ordinary stored image
set (``reconstructions/<key>/``) made by the VAE round-trip producer, shared with
``task=reconstruction`` when that uses the model's VAE with the same settings.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from omegaconf import OmegaConf

from evalsuite.config.build import build
from evalsuite.config.pairings import GENERATE_PAIRINGS, Pairing, check_pairings
from evalsuite.data.reference import check_stats_images, has_images, reference_stats
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import EvalResult, Inputs, check_reference_stats
from evalsuite.features.sources import ArraySource, StoreSource
from evalsuite.io import JsonCache
from evalsuite.metrics.base import DistributionMetric
from evalsuite.models.lazy import ComponentCache, LazyGenerator, LazyModel
from evalsuite.models.schedulers import check_sampler
from evalsuite.produce.materialise import materialise, missing_by_shard
from evalsuite.produce.text_to_image import TextToImage, manifest_entries
from evalsuite.protocols import protocol_record
from evalsuite.samples.identity import device_factors
from evalsuite.samples.store import SampleStore
from evalsuite.tasks.base import Context
from evalsuite.tasks.model_facts import architecture_facts, build_ablations, specs_to_dicts
from evalsuite.tasks.round_trips import RoundTrips, model_round_trip

log = logging.getLogger(__name__)

NO_BASELINE = "no baseline: this run applies no ablation, so it is its own baseline"


def generation_factors(source: Any, specs: list[Any], cfg: Any,
                       recovered: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything that changes the pixels of a sample (the sample store's key). The whole
    sampler is in it, batch size included: batched kernels round the last bits differently
    for different batch compositions. ``recovered``: the recovered weights' identity."""
    factors = {"model": source.identity(), "ablations": specs_to_dicts(specs),
               "sampler": OmegaConf.to_container(cfg.sampler, resolve=True),
               "resolution": source.resolution, **device_factors(cfg.device)}
    return factors if recovered is None else {**factors, "recovery": recovered}


def build_recovery(ctx: Context, source: Any, specs: list[Any]) -> Any:
    """``recovery=kd``: the cell's ``evalsuite.recovery.Recovery`` (validated, nothing
    written); ``recovery=none``: None."""
    node = ctx.cfg.get("recovery")
    if node is None or node.method == "none":
        return None
    if node.method != "kd":
        raise EvalsuiteError(f"recovery.method={node.method!r}; choose none or kd")
    if not specs:  # a sweep's baseline cell: the teacher itself, nothing to recover
        log.info("recovery=kd: no ablation in this run, so nothing to recover; evaluating the model as is")
        return None
    from evalsuite.recovery.api import Recovery  # torch: only when recovering
    from evalsuite.recovery.settings import RecoverySettings

    unset = [f"recovery.data.{k}" for k in node.data.keys() if OmegaConf.is_missing(node.data, k)]
    if unset or not node.data:
        raise EvalsuiteError(f"recovery=kd needs training data: set {', '.join(unset) or 'recovery.data'} "
                             "(recovery.data.path=<folder of images with captions.csv or captions.jsonl>)")
    data = build(node.data, "recovery.data")
    return Recovery(RecoverySettings.from_config(node), data, source.identity(), specs,
                    ctx.results, ctx.cfg.device, source.resolution)


class GenerateTask:
    """See the module docstring."""

    name = "generate"
    on_error = "skip"

    def __init__(self, components: ComponentCache | None = None) -> None:
        self.components = components
        self.round_trip: RoundTrips | None = None

    def prepare(self, ctx: Context) -> None:
        cfg = ctx.cfg
        self.prompts = self.all_prompts = build(cfg.dataset, "dataset")
        self.source = build(cfg.model, "model")
        self.specs = build_ablations(cfg.ablation)
        self.sampler = OmegaConf.to_object(cfg.sampler)
        check_sampler(self.sampler)
        self.paired_with = check_pairings(cfg.metrics.paired_with, GENERATE_PAIRINGS,
                                          "metrics.paired_with")
        self.reference = self._reference(ctx)
        self._protocol = protocol_record(cfg, self.prompts, self.reference, ctx.overrides)
        if self._protocol["modified"]:
            log.warning("protocol %s is modified by %s: the record says so, and its numbers "
                        "are not comparable with the published protocol's",
                        self._protocol["name"], "; ".join(self._protocol["modified"]))
        self.source.digest_cache = ctx.results / "cache" / "sha256.json"
        self.recovery = build_recovery(ctx, self.source, self.specs)  # after: identity() hashes
        self.store = SampleStore(ctx.results / "samples",
                                 generation_factors(self.source, self.specs, cfg))
        self.facts = architecture_facts(self.source, self.specs,
                                        JsonCache(ctx.results / "cache" / "models"), self.store.key)
        self.baseline_store = None
        if self.specs and Pairing.BASELINE.value in self.paired_with:
            self.baseline_store = SampleStore(ctx.results / "samples",
                                              generation_factors(self.source, [], cfg))
        self.model = LazyModel(self.source, self.specs, self.sampler, cfg.device,
                               self.components)
        if Pairing.RECONSTRUCTION.value in self.paired_with and has_images(self.reference):
            self.round_trip = model_round_trip(ctx, self.source, self.reference)
        if self.recovery is not None:  # last: every check has passed; trains unless cached
            self.recovery.ensure(self.model.components)
            self.model.recovered = self.recovery.unet_folder
            self.zero_shot_key = self.store.key  # links the record to its zero-shot counterpart
            self.store = SampleStore(ctx.results / "samples", generation_factors(
                self.source, self.specs, cfg, self.recovery.identity()))

    def _reference(self, ctx: Context) -> Any:
        """The reference set, if a metric compares with real images or reconstructs them."""
        probes = [f() for f in ctx.factories.values()]
        if not (Pairing.RECONSTRUCTION.value in self.paired_with
                or any(isinstance(m, DistributionMetric) and m.needs_reference
                        for m in probes)):
            return None
        # cache_dir: a large image folder's content hash is remembered, not recomputed per run
        reference = build(ctx.cfg.reference, "reference", cache_dir=str(ctx.results / "cache"))
        check_stats_images(reference)
        check_reference_stats(reference_stats(reference), ctx.factories, ctx.opts)
        return reference

    def _producer(self, ablated: bool, store: SampleStore) -> TextToImage:
        return TextToImage(LazyGenerator(self.model, ablated=ablated), self.prompts,
                           self.sampler.seed, store.factors)

    def materialise(self, ctx: Context) -> dict[str, float]:
        ids, size, durations = [p.id for p in self.prompts], self.sampler.batch_size, {}
        if self.baseline_store is not None:
            # Baseline samples first: they come from the same components before surgery.
            base = materialise(self._producer(False, self.baseline_store), ids,
                               self.baseline_store, size, ctx.shard, desc="generate baseline")
            durations["generate_baseline"] = base.seconds
        self.made = materialise(self._producer(True, self.store), ids, self.store, size,
                                ctx.shard)
        durations["generate"] = self.made.seconds
        if self.round_trip is not None:
            durations["reconstruct"] = self.round_trip.materialise(ctx.shard)
        return durations

    def incomplete(self, ctx: Context) -> str | None:
        """Why the image sets are not complete (per shard), or None if they are."""
        ids, count, problems = [p.id for p in self.prompts], ctx.shard.count, []
        for what, store in (("samples", self.store), ("baseline samples", self.baseline_store)):
            if store is not None:
                entries = manifest_entries(self.prompts, self.sampler.seed)
                gone = missing_by_shard(entries, store, self.sampler.batch_size, count)
                problems += [f"{what}: shard {i} of {count} is missing {len(m)} images "
                             f"(e.g. {m[:3]})" for i, m in sorted(gone.items())]
        if self.round_trip is not None:
            problems += self.round_trip.incomplete(count)
        return "; ".join(problems) or None

    def keep_present(self) -> None:
        p = self.all_prompts
        entries = manifest_entries(p, self.sampler.seed)
        have = self.store.valid_ids(entries)
        if self.baseline_store is not None:
            have &= self.baseline_store.valid_ids(entries)
        self.prompts = p.subset(have, f"an image in the sample store {self.store.dir}")
        if self.round_trip is not None:
            self.round_trip.keep_present()

    def claim_key(self) -> str:
        return self.store.key

    def protocol(self) -> dict[str, Any]:
        return self._protocol

    def hash_inputs(self) -> dict[str, Any] | None:
        # The config names every input by content (prompt set, model, reference), except
        # recovery's training data, named by path: its content hash joins the config hash.
        return None if self.recovery is None else {"recovery_data": self.recovery.header["data_sha256"]}

    def inputs(self, ctx: Context) -> tuple[Inputs, list[str]]:
        ids = [p.id for p in self.prompts]
        self.manifest = self._producer(True, self.store).manifest(ids)
        self.digest = self.store.write_manifest(self.manifest)
        paired = {}
        if self.baseline_store is not None:
            self.baseline_store.write_manifest(self.manifest)
            paired[Pairing.BASELINE.value] = StoreSource(self.baseline_store, ids)
        ref = self.reference
        inputs = Inputs(
            samples=StoreSource(self.store, ids), texts={p.id: p.text for p in self.prompts},
            categories=self.prompts.categories() or None,
            reference=ArraySource.from_reference(ref) if has_images(ref) else None,
            paired=paired, unavailable=self._unavailable(),
            other_pairs=self.round_trip.pairs() if self.round_trip is not None else {},
            reference_stats=reference_stats(ref))
        return inputs, self.paired_with

    def _unavailable(self) -> dict[str, str]:
        ref = self.reference
        no_recon = "no reference set to reconstruct"
        if ref is not None and not has_images(ref):
            no_recon = (f"reference {ref.name} has only imported statistics, no photographs "
                        "to reconstruct")
        return {Pairing.BASELINE.value: NO_BASELINE, Pairing.RECONSTRUCTION.value: no_recon}

    def section(self, ctx: Context, ev: EvalResult) -> dict[str, Any]:
        cfg, n = ctx.cfg, len(self.prompts)
        generated = self.made.made if ctx.stage != "metrics" else 0
        # Hydra leaves list groups out of its runtime choices; the option names are the keys.
        ctx.choices["ablation"] = f"[{','.join(cfg.ablation.keys())}]"
        s = self.source
        return {
            "choices": ctx.choices,
            "status": "complete" if n == len(self.all_prompts) else "incomplete",
            "model": {**s.identity(), "ablations": specs_to_dicts(self.specs), **self.facts,
                      "path": str(s.path) if s.path else None, "unet_origin": s.unet_origin,
                      "resolution": s.resolution, "loaded_this_run": self.model.loaded},
            "dataset": {"name": self.all_prompts.name, "source": self.all_prompts.source,
                        "sha256": self.all_prompts.sha256, "count": len(self.all_prompts),
                        "n_used": n},
            "sampler": {**asdict(self.sampler), "generation_key": self.store.key},
            "samples": {"dir": str(self.store.dir), "generation_key": self.store.key,
                        "manifest_sha256": self.digest, "count": n, "generated": generated,
                        "reused": n - generated},
            "baseline_samples": str(self.baseline_store.dir) if self.baseline_store else None,
            "reference": self.reference.describe() if self.reference is not None else None,
            "round_trip": self.round_trip.section() if self.round_trip is not None else None,
            **({"recovery": {**self.recovery.section(), "zero_shot_generation_key": self.zero_shot_key}}
               if self.recovery is not None else {}),
        }
