"""``evalsuite run task=reconstruction``: score VAE decoders on a VAE round trip of real images.

MobileDiffusion and SnapFusion replace Stable Diffusion's VAE decoder; this task measures
such a decoder. The reference images (``reference=``) are encoded by ``vae.encoder`` (a local
AutoencoderKL folder, or the model's own VAE), to the posterior mean (``vae.latents=mode``)
or a draw seeded per image (``sample``), and decoded by ``vae.decoder``, the decoder under
test. The reconstructions are stored like samples (``<results>/reconstructions/<key>/``, one
atomic PNG per image and a manifest), keyed by everything that changes their pixels, so a
re-run decodes nothing and rFID reads them from disk.

Scored with ``evaluate_sources``: paired metrics (PSNR, SSIM, LPIPS) against the originals
(pairing ``original``); distribution metrics (rFID) of the reconstructions against the
originals; and, with ``vae.compare_decoder``, paired metrics between the decoder under test
and that second decoder on the same latents (pairing ``compare_decoder``: SnapFusion's
decoder-distillation target). Text-image metrics are skipped: there are no prompts. rFID is
always computed from the original images: statistics imported with ``reference.stats`` stand
for some image set, not necessarily for the originals of these reconstructions.

As in ``run.py``, everything that can reject its input (VAE folders and their compatibility,
reference set, metric configs, output folder) is checked before the first file is written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf

from evalsuite.config.build import build
from evalsuite.data.reference import has_images
from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.evaluate import Inputs, evaluate_sources
from evalsuite.features.sources import ArraySource, ImageSource, StoreSource
from evalsuite.metrics.base import TextImageMetric
from evalsuite.models.schedulers import check_sampler
from evalsuite.models.vae import (MODEL, VaeRef, check_compatible, check_latent_mode, decode,
                                  encode, resolve_vae, to_decoder_latents)
from evalsuite.protocols import protocol_record
from evalsuite.run import check_writable, eval_options, publish, record_envelope
from evalsuite.samples.identity import device_factors
from evalsuite.samples.seeds import prompt_seed
from evalsuite.samples.store import SampleStore, check_ids

log = logging.getLogger(__name__)

NO_PROMPTS = ("task=reconstruction scores images without prompts; text-image metrics "
              "(CLIP score) do not apply")


@dataclass
class _Plan:
    """Everything the task needs, built and validated before the first write."""

    cfg: DictConfig
    source: Any
    reference: Any
    images: ImageSource
    encoder: VaeRef
    decoder: VaeRef
    compare: VaeRef | None
    metric_factories: dict[str, Callable[[], Any]]
    skipped: dict[str, str]
    protocol: dict[str, Any]
    results: Path
    store: SampleStore
    compare_store: SampleStore | None
    seeds: dict[str, int] | None


def _check_task_settings(cfg: DictConfig) -> None:
    if cfg.stage != "all" or cfg.shard.count != 1:
        raise ConfigError(f"task=reconstruction runs in one go (stage=all, shard.count=1); got "
                          f"stage={cfg.stage}, shard.count={cfg.shard.count}. A re-run reuses "
                          "every stored reconstruction, so there is nothing to split.")
    check_latent_mode(cfg.vae.latents)
    if cfg.vae.batch_size < 1:
        raise ConfigError(f"vae.batch_size must be >= 1, got {cfg.vae.batch_size}")
    check_sampler(OmegaConf.to_object(cfg.sampler))  # sampler.dtype is the VAE's dtype
    if cfg.ablation:
        log.warning("task=reconstruction ignores ablation=[%s]: ablations change the UNet, "
                    "not the VAE", ",".join(cfg.ablation.keys()))


def _metrics(cfg: DictConfig) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    """Metric factories (each built once here, so a bad parameter fails before any write),
    without text-image metrics, which are returned as skipped with the reason."""
    factories, skipped = {}, {}
    for name, node in cfg.metrics["items"].items():
        factory = partial(build, node, f"metrics.items.{name}")
        if isinstance(factory(), TextImageMetric):
            skipped[name] = NO_PROMPTS
        else:
            factories[name] = factory
    return factories, skipped


def _reference_images(reference: Any, encoder: VaeRef, name: str) -> ImageSource:
    """The reference set as an image source, refused if it has no images or ids that cannot
    be file names; in-memory sets are size-checked here, lazy ones as they are read."""
    if not has_images(reference):
        raise ConfigError(f"reference={name} has imported statistics but no images; "
                          "task=reconstruction encodes and decodes the reference images, so "
                          "choose a reference with images (skimage_photos, coco2014_val, ...)")
    images = ArraySource.from_reference(reference)
    check_ids(images.ids, f"reference={name}",
              "Reconstructions are stored under the reference's ids.")
    arr = getattr(images, "images", None)
    if isinstance(arr, np.ndarray) and arr.ndim == 4:
        _check_side(arr.shape[1], arr.shape[2], images.ids[0], encoder)
    return images


def _check_side(h: int, w: int, image_id: str, encoder: VaeRef) -> None:
    f = encoder.downsampling
    if h % f or w % f:
        raise EvalsuiteError(f"reference image {image_id!r} is {w}x{h}, not a multiple of "
                             f"{f} (the downsampling of {encoder.role}); set "
                             f"reference.resolution to a multiple of {f}")


def _latents(cfg: DictConfig) -> dict[str, Any]:
    """How latents are drawn: the posterior mean, or a draw seeded per image."""
    latents: dict[str, Any] = {"mode": cfg.vae.latents}
    if cfg.vae.latents == "sample":
        latents["seed"] = cfg.vae.seed
    return latents


def _store(results: Path, images: ImageSource, encoder: VaeRef, decoder: VaeRef,
           cfg: DictConfig) -> SampleStore:
    """The store of ``decoder``'s reconstructions, keyed by every factor that changes a pixel.

    Batch size is one of them: batched convolutions round the last bits differently for
    different batch shapes, which can move a pixel across a uint8 rounding boundary.
    """
    factors = {"task": "reconstruction", "reference": images.identity(),
               "encoder": encoder.identity(), "decoder": decoder.identity(),
               "latents": _latents(cfg),
               "dtype": cfg.sampler.dtype, **device_factors(cfg.device),
               "batch_size": cfg.vae.batch_size}
    return SampleStore(results / "reconstructions", factors)


def _plan(cfg: DictConfig, overrides: Sequence[str]) -> _Plan:
    _check_task_settings(cfg)
    source = build(cfg.model, "model")
    encoder = resolve_vae(cfg.vae.encoder, "vae.encoder", source)
    decoder = resolve_vae(cfg.vae.decoder, "vae.decoder", source)
    compare = (resolve_vae(cfg.vae.compare_decoder, "vae.compare_decoder", source)
               if cfg.vae.compare_decoder is not None else None)
    check_compatible(encoder, [decoder] + ([compare] if compare else []))
    factories, skipped = _metrics(cfg)
    results = check_writable(cfg.paths.results_dir)
    reference = build(cfg.reference, "reference", cache_dir=str(results / "cache"))
    images = _reference_images(reference, encoder, cfg.reference.name)
    # Validation is over: from here on, hashing (reference files, VAE weights) may write the
    # digest caches under results/cache.
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    digests = results / "cache" / "sha256.json"
    source.digest_cache = digests
    for ref in (encoder, decoder, compare):
        if ref is not None:
            ref.digest_cache = digests
    # The decoder is what varies; the latents it decodes are part of the protocol.
    latents = {"vae.encoder": encoder.identity(), "vae.latents": _latents(cfg),
               "sampler.dtype": cfg.sampler.dtype}
    protocol = protocol_record(cfg, None, reference, overrides, extra=latents)
    store = _store(results, images, encoder, decoder, cfg)
    compare_store = _store(results, images, encoder, compare, cfg) if compare else None
    seeds = ({i: prompt_seed(cfg.vae.seed, i) for i in images.ids}
             if cfg.vae.latents == "sample" else None)
    return _Plan(cfg, source, reference, images, encoder, decoder, compare, factories, skipped,
                 protocol, results, store, compare_store, seeds)


class _LoadedVaes:
    """Each VAE loaded on first use, once (the model's VAE serves every role it is named in)."""

    def __init__(self, dtype: str, device: str) -> None:
        self.dtype, self.device = dtype, device
        self._vaes: dict[str, Any] = {}

    def get(self, ref: VaeRef) -> Any:
        key = str(ref.path.resolve()) if ref.path else MODEL
        if key not in self._vaes:
            self._vaes[key] = ref.load(self.dtype, self.device)
        return self._vaes[key]

    @property
    def loaded(self) -> bool:
        return bool(self._vaes)


def _same_shape_groups(images: list[np.ndarray]) -> list[list[int]]:
    """Indices of the images of each shape, in order of first appearance (a batch of mixed
    sizes is encoded one size at a time)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, im in enumerate(images):
        groups.setdefault(im.shape, []).append(k)
    return list(groups.values())


def _reconstruct(p: _Plan) -> tuple[dict[str, int], bool, float]:
    """Decode the missing reconstructions; returns (images decoded per store key, whether any
    VAE was loaded, seconds).

    Chunks are fixed slices of the reference ids (chunk k = ids [kB, (k+1)B)), as in
    ``samples.generate``: a chunk with any image missing is recomputed whole and only the
    missing files are written, so a resumed run stores exactly the bytes of an uninterrupted one.
    """
    t0 = time.perf_counter()
    cfg, ids = p.cfg, list(p.images.ids)
    targets = [(p.store, p.decoder)]
    if p.compare_store is not None and p.compare_store.key != p.store.key:
        targets.append((p.compare_store, p.compare))
    have = {s.key: s.existing_ids() for s, _ in targets}
    decoded = {s.key: 0 for s, _ in targets}
    size = cfg.vae.batch_size
    chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    todo = [c for c in chunks if any(i not in have[s.key] for s, _ in targets for i in c)]
    for s, _ in targets:
        log.info("reconstruct: %d of %d images to decode in %s",
                 sum(i not in have[s.key] for i in ids), len(ids), s.dir)
        s.open()
    vaes = _LoadedVaes(cfg.sampler.dtype, cfg.device)
    for chunk in todo:
        images = [p.images.read(i) for i in chunk]
        for group in _same_shape_groups(images):
            gids = [chunk[k] for k in group]
            batch = np.stack([images[k] for k in group])
            _check_side(batch.shape[1], batch.shape[2], gids[0], p.encoder)
            seeds = [p.seeds[i] for i in gids] if p.seeds is not None else None
            z = encode(vaes.get(p.encoder), batch, cfg.vae.latents, seeds)
            for store, ref in targets:
                if all(i in have[store.key] for i in gids):
                    continue
                out = decode(vaes.get(ref), to_decoder_latents(z, p.encoder, ref))
                for i, img in zip(gids, out):
                    if i not in have[store.key]:
                        store.write(i, img, {"seed": p.seeds[i]} if p.seeds is not None else {})
                        decoded[store.key] += 1
    return decoded, vaes.loaded, time.perf_counter() - t0


def _manifest(store: SampleStore, ids: Sequence[str], seeds: dict[str, int] | None) -> str:
    return store.write_manifest([{"id": i, "seed": seeds[i] if seeds is not None else None}
                                 for i in ids])


def _score(p: _Plan) -> Any:
    cfg, ids = p.cfg, list(p.images.ids)
    paired: dict[str, ImageSource] = {"original": p.images}
    if p.compare_store is not None:
        paired["compare_decoder"] = StoreSource(p.compare_store, ids)
    opts = eval_options(cfg, p.results)
    inputs = Inputs(samples=StoreSource(p.store, ids), texts=None, reference=p.images,
                    paired=paired, reconstructions=True)
    ev = evaluate_sources(inputs, p.metric_factories, list(paired), opts)
    ev.skipped = {**p.skipped, **ev.skipped}
    return ev


def run_reconstruction(cfg: DictConfig, choices: dict[str, Any] | None = None,
                       overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Reconstruct the reference set with the configured VAEs, score, write the record.

    ``overrides`` are the command line's Hydra overrides (recorded, and checked against a
    named protocol as ``run`` does). Returns the record as written, with metric values as
    floats (an identical pair's PSNR is ``inf``; the file stores it as valid JSON).
    """
    t_start = time.perf_counter()
    p = _plan(cfg, overrides)
    decoded, loaded, seconds = _reconstruct(p)
    durations = {"reconstruct": seconds}
    ids = list(p.images.ids)
    digests = {p.store.key: _manifest(p.store, ids, p.seeds)}
    if p.compare_store is not None and p.compare_store.key not in digests:
        digests[p.compare_store.key] = _manifest(p.compare_store, ids, p.seeds)
    ev = _score(p)
    durations["metrics"] = ev.seconds
    durations["total"] = time.perf_counter() - t_start
    record = _record(p, choices, overrides, ev, decoded, digests, loaded, durations)
    publish(p.results, record)
    return record


def _store_section(store: SampleStore, ids: Sequence[str], decoded: dict[str, int],
                   digests: dict[str, str]) -> dict[str, Any]:
    n = decoded.get(store.key, 0)
    return {"dir": str(store.dir), "key": store.key, "manifest_sha256": digests[store.key],
            "count": len(ids), "decoded": n, "reused": len(ids) - n}


def _record(p: _Plan, choices: dict[str, Any] | None, overrides: Sequence[str], ev: Any,
            decoded: dict[str, int], digests: dict[str, str], loaded: bool,
            durations: dict[str, float]) -> dict[str, Any]:
    cfg, ids = p.cfg, list(p.images.ids)
    uses_model = any(r is not None and r.path is None for r in (p.encoder, p.decoder, p.compare))
    return {
        **record_envelope(cfg, dict(choices or {}), overrides, p.protocol, ev, durations),
        "status": "complete",
        "task": "reconstruction",
        "vae": {"encoder": p.encoder.describe(), "decoder": p.decoder.describe(),
                "compare_decoder": p.compare.describe() if p.compare else None,
                "latents": cfg.vae.latents, "seed": _latents(cfg).get("seed"),
                "dtype": cfg.sampler.dtype, "device_type": cfg.device.split(":")[0],
                "batch_size": cfg.vae.batch_size, "loaded_this_run": loaded,
                # The model's name when one of the VAEs is its own (the VAEs' identities
                # above hash their weights; hashing the whole pipeline would add nothing).
                "model": p.source.name if uses_model else None},
        "reference": p.reference.describe(),
        "reconstructions": _store_section(p.store, ids, decoded, digests),
        "compare_reconstructions": (_store_section(p.compare_store, ids, decoded, digests)
                                    if p.compare_store is not None else None),
    }
