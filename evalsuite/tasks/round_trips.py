"""Stored VAE round trips of a reference set: one store per decoder, made by
``evalsuite.produce.round_trip`` through the one ``materialise`` loop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from evalsuite.features.sources import ArraySource, ImageSource, StoreSource
from evalsuite.io import JsonCache, sha256_json
from evalsuite.models.vae import VaeRef, resolve_vae
from evalsuite.produce.materialise import Shard, materialise, missing_by_shard
from evalsuite.produce.round_trip import Encoder, LoadedVaes, VaeRoundTrip
from evalsuite.samples.store import SampleStore, check_ids
from evalsuite.tasks.base import Context


@dataclass
class Target:
    """One decoder's reconstructions: who makes them and where they are stored."""

    label: str  # what the record calls them ("reconstructions", "compare_reconstructions")
    producer: VaeRoundTrip
    store: SampleStore
    made: int = 0


class RoundTrips:
    """The reconstructions of ``images`` by one or more decoders of one encoder's latents."""

    def __init__(self, ctx: Context, images: ImageSource, encoder: Encoder,
                 decoders: Sequence[tuple[str, VaeRef]]) -> None:
        cfg = ctx.cfg
        self.images, self.encoder, self.batch_size = images, encoder, cfg.vae.batch_size
        self.ids = list(images.ids)
        self.all_ids = list(self.ids)
        self.targets: list[Target] = []  # one per store: a decoder named twice decodes once
        self.by_label: dict[str, Target] = {}
        for label, ref in decoders:
            producer = VaeRoundTrip(encoder, ref, cfg.sampler.dtype, cfg.device.split(":")[0],
                                    self.batch_size)
            store = SampleStore(ctx.results / "reconstructions", producer.factors())
            same = [t for t in self.targets if t.store.key == store.key]
            if not same:
                self.targets.append(Target(label, producer, store))
            self.by_label[label] = same[0] if same else self.targets[-1]

    @property
    def loaded(self) -> bool:
        """Whether a VAE was loaded (False when every reconstruction was stored already)."""
        return self.encoder.vaes.loaded

    def materialise(self, shard: Shard) -> float:
        """Decode this shard's missing reconstructions; returns seconds."""
        t0 = time.perf_counter()
        for t in self.targets:
            t.made = materialise(t.producer, self.ids, t.store, self.batch_size, shard,
                                 desc="reconstruct").made
        return time.perf_counter() - t0

    def incomplete(self, shard_count: int) -> list[str]:
        """Per target and shard, the reconstructions still missing."""
        out = []
        for t in self.targets:
            gone = missing_by_shard(t.producer.manifest(self.ids), t.store, self.batch_size,
                                    shard_count)
            out += [f"{t.label}: shard {i} of {shard_count} is missing {len(m)} images "
                    f"(e.g. {m[:3]})" for i, m in sorted(gone.items())]
        return out

    def keep_present(self) -> None:
        have = set(self.all_ids)
        for t in self.targets:
            have &= t.store.valid_ids(t.producer.manifest(self.all_ids))
        self.ids = [i for i in self.all_ids if i in have]

    def write_manifests(self) -> dict[str, str]:
        """store key -> manifest sha256, for the ids scored."""
        return {t.store.key: t.store.write_manifest(t.producer.manifest(self.ids))
                for t in self.targets}

    def source(self, label: str) -> StoreSource:
        return StoreSource(self.by_label[label].store, self.ids)

    def originals(self) -> ImageSource:
        """The original images of the ids scored, as an image source."""
        if self.ids == list(self.images.ids):
            return self.images
        return _Subset(self.images, self.ids)

    def pairs(self) -> dict[str, tuple[ImageSource, ImageSource]]:
        """The ``reconstruction`` pairing: the first decoder's images vs the originals."""
        self.digests = self.write_manifests()
        return {"reconstruction": (self.source("reconstructions"), self.originals())}

    def describe(self, label: str) -> dict[str, Any]:
        t, n, digests = self.by_label[label], len(self.ids), getattr(self, "digests", {})
        return {"dir": str(t.store.dir), "key": t.store.key,
                "manifest_sha256": digests.get(t.store.key), "count": n, "decoded": t.made,
                "reused": n - t.made}

    def section(self) -> dict[str, Any]:
        """The record's description of the (first) round trip."""
        return {**self.describe("reconstructions"), "vae": self.encoder.ref.describe(),
                "latents": self.encoder.latents_info(), "loaded_this_run": self.loaded}


class _Subset:
    """Some ids of an image source (scoring an incomplete set of reconstructions)."""

    def __init__(self, source: ImageSource, ids: Sequence[str]) -> None:
        self.source, self.ids = source, list(ids)

    def read(self, image_id: str) -> Any:
        return self.source.read(image_id)

    def identity(self) -> dict[str, Any]:
        return {"subset_of": self.source.identity(), "ids": self.ids}


def reference_images(reference: Any, where: str) -> ImageSource:
    """The reference set as an image source whose ids can name stored files."""
    images = ArraySource.from_reference(reference)
    check_ids(images.ids, where, "Reconstructions are stored under the reference's ids.")
    return images


def model_vae(source: Any, cache: JsonCache) -> VaeRef:
    """The model's own VAE, its full config remembered per model identity: resolving it
    instantiates the config on the meta device (torch + diffusers), which a re-run whose
    reconstructions are all stored should not pay for."""
    key = sha256_json({"model_vae": source.identity()})
    facts = cache.get(key)
    if facts is None:
        ref = resolve_vae(None, "the model's VAE", source)
        facts = {"config": ref.config, "decoder_params": ref.decoder_params,
                 "encoder_params": ref.encoder_params}
        cache.put(key, facts)
    return VaeRef("the model's VAE", None, facts["config"], facts["decoder_params"],
                  facts["encoder_params"], source)


def model_round_trip(ctx: Context, source: Any, reference: Any) -> RoundTrips:
    """The model's own VAE round trip (posterior mean) of the reference photographs."""
    cfg = ctx.cfg
    vae = model_vae(source, JsonCache(ctx.results / "cache" / "models"))
    vae.digest_cache = ctx.results / "cache" / "sha256.json"
    images = reference_images(reference, f"reference={cfg.reference.name}")
    encoder = Encoder(images, vae, "mode", None, LoadedVaes(cfg.sampler.dtype, cfg.device))
    return RoundTrips(ctx, images, encoder, [("reconstructions", vae)])
