"""``task=reconstruction``: score VAE decoders on a VAE round trip of real images.

MobileDiffusion and SnapFusion replace Stable Diffusion's VAE decoder; this task measures
such a decoder. The reference images (``reference=``) are encoded by ``vae.encoder`` (a local
AutoencoderKL folder, or the model's own VAE), to the posterior mean (``vae.latents=mode``)
or a draw seeded per image (``sample``), and decoded by ``vae.decoder``, the decoder under
test. The reconstructions are stored like samples (``<results>/reconstructions/<key>/``, one
atomic PNG per image and a manifest), keyed by everything that changes their pixels, so a
re-run decodes nothing and rFID reads them from disk. Like generation, the decoding can be
split into shards and stages (``shard.*``, ``stage=``): chunks are fixed, so any split
stores the same bytes.

Scored by the pipeline: paired metrics (PSNR, SSIM, LPIPS) against the originals (pairing
``reconstruction``, the name a generation run gives the same measurement); distribution metrics (rFID) of the reconstructions against the originals;
and, with ``vae.compare_decoder``, paired metrics between the decoder under test and that
second decoder on the same latents (pairing ``compare_decoder``: SnapFusion's
decoder-distillation target). Text-image metrics are skipped: there are no prompts. rFID is
always computed from the original images: statistics imported with ``reference.stats`` stand
for some image set, not necessarily for the originals of these reconstructions.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from evalsuite.config.build import build
from evalsuite.config.pairings import Pairing
from evalsuite.data.reference import has_images
from evalsuite.errors import ConfigError
from evalsuite.evaluate import EvalResult, Inputs
from evalsuite.features.sources import ImageSource
from evalsuite.metrics.base import TextImageMetric
from evalsuite.models.schedulers import check_sampler
from evalsuite.models.vae import VaeRef, check_compatible, check_latent_mode, resolve_vae
from evalsuite.produce.round_trip import Encoder, LoadedVaes, check_side
from evalsuite.protocols import protocol_record
from evalsuite.results.previews import write_reference_preview
from evalsuite.tasks.base import Context
from evalsuite.tasks.round_trips import RoundTrips, reference_images

log = logging.getLogger(__name__)

NO_PROMPTS = ("task=reconstruction scores images without prompts; text-image metrics "
              "(CLIP score) do not apply")
MAIN, COMPARE = "reconstructions", "compare_reconstructions"


def _check_settings(cfg: DictConfig) -> None:
    check_latent_mode(cfg.vae.latents)
    if cfg.vae.batch_size < 1:
        raise ConfigError(f"vae.batch_size must be >= 1, got {cfg.vae.batch_size}")
    check_sampler(OmegaConf.to_object(cfg.sampler))  # sampler.dtype is the VAE's dtype
    if cfg.ablation:
        log.warning("task=reconstruction ignores ablation=[%s]: ablations change the UNet, "
                    "not the VAE", ",".join(cfg.ablation.keys()))


def _images(reference: Any, encoder: VaeRef, name: str) -> ImageSource:
    """The reference set as an image source, refused if it has no images or ids that cannot
    be file names; in-memory sets are size-checked here, lazy ones as they are read."""
    if not has_images(reference):
        raise ConfigError(f"reference={name} has imported statistics but no images; "
                          "task=reconstruction encodes and decodes the reference images, so "
                          "choose a reference with images (skimage_photos, coco2014_val, ...)")
    images = reference_images(reference, f"reference={name}")
    arr = getattr(images, "images", None)
    if isinstance(arr, np.ndarray) and arr.ndim == 4:
        check_side(arr.shape[1], arr.shape[2], images.ids[0], encoder)
    return images


class ReconstructTask:
    """See the module docstring."""

    name = "reconstruction"
    on_error = "skip"

    def prepare(self, ctx: Context) -> None:
        cfg = ctx.cfg
        _check_settings(cfg)
        self.source = build(cfg.model, "model")
        vae = cfg.vae
        self.encoder = resolve_vae(vae.encoder, "vae.encoder", self.source)
        self.decoder = resolve_vae(vae.decoder, "vae.decoder", self.source)
        self.compare = (resolve_vae(vae.compare_decoder, "vae.compare_decoder", self.source)
                        if vae.compare_decoder is not None else None)
        check_compatible(self.encoder, [self.decoder] + ([self.compare] if self.compare else []))
        self.skipped = {n: NO_PROMPTS for n, f in list(ctx.factories.items())
                        if isinstance(f(), TextImageMetric)}
        for name in self.skipped:
            del ctx.factories[name]
        self.reference = build(cfg.reference, "reference", cache_dir=str(ctx.results / "cache"))
        images = _images(self.reference, self.encoder, cfg.reference.name)
        # Validation is over: from here on, hashing (reference files, VAE weights) may write
        # the digest caches under results/cache.
        digests = ctx.results / "cache" / "sha256.json"
        self.source.digest_cache = digests
        for ref in (self.encoder, self.decoder, self.compare):
            if ref is not None:
                ref.digest_cache = digests
        enc = Encoder(images, self.encoder, vae.latents, vae.seed,
                      LoadedVaes(cfg.sampler.dtype, cfg.device))
        decoders = [(MAIN, self.decoder)] + ([(COMPARE, self.compare)] if self.compare else [])
        self.trips = RoundTrips(ctx, images, enc, decoders)
        # The decoder is what varies; the latents it decodes are part of the protocol.
        latents = {"vae.encoder": self.encoder.identity(), "vae.latents": enc.latents_info(),
                   "sampler.dtype": cfg.sampler.dtype}
        self._protocol = protocol_record(cfg, None, self.reference, ctx.overrides, extra=latents)

    def materialise(self, ctx: Context) -> dict[str, float]:
        return {"reconstruct": self.trips.materialise(ctx.shard)}

    def incomplete(self, ctx: Context) -> str | None:
        return "; ".join(self.trips.incomplete(ctx.shard.count)) or None

    def keep_present(self) -> None:
        self.trips.keep_present()

    def claim_key(self) -> str:
        return self.trips.by_label[MAIN].store.key

    def protocol(self) -> dict[str, Any]:
        return self._protocol

    def hash_inputs(self) -> None:
        return None

    def inputs(self, ctx: Context) -> tuple[Inputs, list[str]]:
        self.trips.digests = self.trips.write_manifests()
        originals = self.trips.originals()
        # The first originals as the metrics see them, for the report to show beside the
        # reconstructions (the reference set itself is not on disk in that form).
        self._preview = write_reference_preview(ctx.results, originals, self.trips.ids,
                                                self.reference.describe()["sha256"])
        paired: dict[str, ImageSource] = {Pairing.RECONSTRUCTION.value: originals}
        if self.compare is not None:
            paired[Pairing.COMPARE_DECODER.value] = self.trips.source(COMPARE)
        inputs = Inputs(samples=self.trips.source(MAIN), texts=None, reference=originals,
                        paired=paired, samples_are_reconstructions=True)
        return inputs, list(paired)

    def section(self, ctx: Context, ev: EvalResult) -> dict[str, Any]:
        cfg, trips = ctx.cfg, self.trips
        uses_model = any(r is not None and r.path is None
                         for r in (self.encoder, self.decoder, self.compare))
        return {
            "status": "complete" if len(trips.ids) == len(trips.all_ids) else "incomplete",
            "skipped_metrics": {**self.skipped, **ev.skipped},
            "vae": {"encoder": self.encoder.describe(), "decoder": self.decoder.describe(),
                    "compare_decoder": self.compare.describe() if self.compare else None,
                    "latents": cfg.vae.latents, "seed": trips.encoder.latents_info().get("seed"),
                    "dtype": cfg.sampler.dtype, "device_type": cfg.device.split(":")[0],
                    "batch_size": cfg.vae.batch_size, "loaded_this_run": trips.loaded,
                    # The model's name when one of the VAEs is its own (the VAEs' identities
                    # above hash their weights; hashing the whole pipeline would add nothing).
                    "model": self.source.name if uses_model else None},
            "reference": self.reference.describe(),
            "reference_preview": getattr(self, "_preview", None),
            MAIN: trips.describe(MAIN),
            COMPARE: trips.describe(COMPARE) if self.compare is not None else None,
        }
