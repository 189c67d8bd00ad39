"""The generator: the only thing the evaluation core knows about a model.

``generate(texts, seeds) -> uint8 (N, H, W, 3)``. Each image's initial noise is drawn from its
own CPU ``torch.Generator`` seeded with that prompt's seed, so an image depends on its prompt
and seed only, never on the batch it happens to be in, its position there, or the device the
noise was drawn for.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch

from evalsuite.models.schedulers import build_scheduler, check_sampler
from evalsuite.numerics import non_finite_error, require_finite
from evalsuite.samples.seeds import prompt_seed  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with round-half-to-even, as diffusers' ``numpy_to_pil``."""
    return (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8)


class FiniteLatents:
    """The ``callback_on_step_end`` that finds the first denoising step whose latents hold
    NaN/Inf and raises ``NonFiniteError`` naming the UNet and that step, as ``require_finite``
    would have at the step.

    The check runs on the latents' device: each step only updates small device tensors (the
    first bad step and its NaN / Inf counts), and the host reads them once (``check``) when
    the pipeline returns, before its images are checked, so a GPU run is not synchronised at
    every step. On a CPU (``read_each_step``) reading is free, so the run stops at the bad
    step itself.
    """

    def __init__(self, read_each_step: bool) -> None:
        self.read_each_step = read_each_step
        self._first: torch.Tensor | None = None  # first bad step (-1: none), NaN, Inf, size

    def __call__(self, pipe: Any, step: int, timestep: Any,
                 tensors: dict[str, Any]) -> dict[str, Any]:
        lat = tensors["latents"]
        if self._first is None:
            self._first = torch.tensor([-1, 0, 0, lat.numel()], device=lat.device)
        counts = torch.stack([torch.isnan(lat).sum(), torch.isinf(lat).sum()])
        new = (self._first[0] < 0) & (counts.sum() > 0)  # a bad step, the first one
        found = torch.cat([torch.full_like(self._first[:1], step), counts, self._first[3:]])
        self._first = torch.where(new, found, self._first)
        if self.read_each_step:
            self.check()
        return tensors

    def check(self) -> None:
        """Raise if a step so far was not finite (reads the device once)."""
        if self._first is None:
            return
        first, nan, inf, size = (int(v) for v in self._first.tolist())
        if first >= 0:
            raise non_finite_error(f"UNet (latents after denoising step {first + 1})",
                                   nan, inf, size)


def half_on_cpu_warning(dtype: str, device_type: str) -> str | None:
    """Why float16/bfloat16 on a CPU is a poor choice (None: no warning). The record's
    ``sampler.dtype`` is the dtype the pipeline ran in."""
    if device_type != "cpu" or dtype == "float32":
        return None
    return (f"sampler.dtype={dtype} on CPU: torch has few half-precision CPU kernels, so this "
            "runs several times slower than float32 (a UNet forward 14.2 s vs 4.1 s measured), "
            "and its numbers are not those of a GPU half-precision run. The record says "
            f"sampler.dtype={dtype}. Use sampler.dtype=float32 on CPU.")


class DiffusersGenerator:
    """A Stable Diffusion pipeline with fixed sampler settings.

    Args:
        components: unet, vae, text_encoder, tokenizer, scheduler (the model's own scheduler,
            whose config the chosen sampler is built on).
        sampler: an ``evalsuite.config.schema.SamplerConfig``.
        resolution: image side in pixels.
        device: torch device string ("cpu", "cuda", "cuda:1").
    """

    def __init__(self, components: dict[str, Any], sampler: Any, resolution: int, device: str = "cpu"):
        from diffusers import StableDiffusionPipeline

        check_sampler(sampler)
        self.sampler, self.resolution, self.device = sampler, resolution, torch.device(device)
        scheduler = build_scheduler(sampler.scheduler, components["scheduler"].config,
                                    sampler.prediction_type)
        self.pipe = StableDiffusionPipeline(
            vae=components["vae"], text_encoder=components["text_encoder"],
            tokenizer=components["tokenizer"], unet=components["unet"], scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        self.pipe.to(device=self.device)
        if DTYPES[sampler.dtype] != torch.float32:
            self.pipe.to(dtype=DTYPES[sampler.dtype])
        warning = half_on_cpu_warning(sampler.dtype, self.device.type)
        if warning:
            log.warning(warning)
        self.pipe.set_progress_bar_config(disable=True)  # the store shows one bar per run

    def _initial_latents(self, seeds: Sequence[int]) -> torch.Tensor:
        unet = self.pipe.unet
        side = self.resolution // self.pipe.vae_scale_factor
        shape = (unet.config.in_channels, side, side)
        noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in seeds]
        return torch.stack(noise).to(self.device, dtype=unet.dtype)

    @torch.inference_mode()
    def generate(self, texts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """Generate one image per (text, seed); returns uint8 (N, H, W, 3)."""
        if len(texts) != len(seeds):
            raise ValueError(f"{len(texts)} texts but {len(seeds)} seeds")
        s = self.sampler
        out = self.pipe(
            prompt=list(texts),
            negative_prompt=[s.negative_prompt] * len(texts) if s.negative_prompt else None,
            height=self.resolution, width=self.resolution,
            num_inference_steps=s.steps, guidance_scale=s.guidance_scale,
            latents=self._initial_latents(seeds),
            # Per-image generators for stochastic schedulers, seeded apart from the noise.
            generator=[torch.Generator("cpu").manual_seed(x ^ 0x5EED) for x in seeds],
            output_type="np",
            callback_on_step_end=(finite := FiniteLatents(self.device.type == "cpu")),
        )
        finite.check()  # the UNet's error first: NaN latents also decode to NaN images
        images = np.asarray(out.images, dtype=np.float32)
        return to_uint8(require_finite(images, "VAE decoder (generated images)"))
