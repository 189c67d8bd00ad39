"""The whole text-to-image pipeline's cost: each component's calls per image, times its cost.

A diffusers Stable Diffusion pipeline with ``steps`` denoising steps and guidance scale ``g``
runs, per batch of images: the text encoder once for the prompts and, when ``g > 1``
(classifier-free guidance), once more for the negative (or empty) prompts; the UNet ``steps``
times, twice per step with guidance (diffusers batches the two as one call of twice the batch:
the same FLOPs); the VAE decoder once. The VAE encoder is not part of text-to-image (0 calls;
it is profiled for image-to-image and reconstruction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")


def pipeline_calls(steps: int, guidance_scale: float) -> dict[str, int]:
    """Forward calls of each component for one batch of images."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    cfg = 2 if guidance_scale > 1 else 1  # diffusers: do_classifier_free_guidance = g > 1
    return {"text_encoder": cfg, "unet": steps * cfg, "vae_decoder": 1, "vae_encoder": 0}


def pipeline_cost(components: dict[str, dict[str, Any] | None], steps: int,
                  guidance_scale: float) -> dict[str, Any]:
    """Total FLOPs (and latency, when every called component has one) of one pipeline run.

    ``components``: name -> a component profile with ``flops`` (and optionally ``latency``
    with ``median_ms``), or None for a component that is not known (left out, and listed).
    """
    calls = pipeline_calls(steps, guidance_scale)
    known = {n: c for n, c in components.items() if c is not None}
    flops = {n: calls[n] * int(c["flops"]) for n, c in known.items()}
    total = sum(flops.values())
    out: dict[str, Any] = {
        "steps": steps, "guidance_scale": guidance_scale,
        "classifier_free_guidance": guidance_scale > 1, "calls": calls,
        "flops": total, "macs": total // 2, "flops_by_component": flops,
        "share": {n: (f / total if total else 0.0) for n, f in flops.items()},
        "missing": sorted(n for n in COMPONENTS if components.get(n) is None),
    }
    called = {n: c for n, c in known.items() if calls[n]}
    if called and all("latency" in c for c in called.values()):
        out["latency_ms"] = sum(calls[n] * c["latency"]["median_ms"] for n, c in called.items())
        out["latency_note"] = ("sum of each component's median latency x its calls at profile.batch (CFG's "
                               "doubled UNet batch counted as two calls; no scheduler, no I/O)")
    return out


def seeded(build: Callable[[str], Any], device: str) -> Any:
    """``build(device)`` with torch's RNG seeded at 0 (random weights, same on every run)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(device)


def time_call(fn: Callable[[], Any], device: str, repeats: int) -> dict[str, Any]:
    """``LatencyReport`` (as a dict) of ``fn`` on ``device``: one warm-up, ``repeats`` timed."""
    import torch

    from evalsuite.profile.latency import time_calls

    return time_calls(fn, torch.device(device), warmup=1, repeats=repeats).to_dict()


def text_encoder_latency(config: dict[str, Any], batch: int, text_len: int, device: str,
                         repeats: int) -> dict[str, Any]:
    """Median/IQR latency of one text-encoder forward on ``device`` (random weights)."""
    from evalsuite.profile.components import build_text_encoder, text_inputs

    encoder = seeded(lambda d: build_text_encoder(config, d), device)
    ids = text_inputs(encoder, batch, text_len)
    return time_call(lambda: encoder(ids), device, repeats)


def vae_latency(config: dict[str, Any], batch: int, resolution: int, device: str,
                repeats: int) -> dict[str, dict[str, Any]]:
    """Median/IQR latency of the VAE decoder and encoder on ``device`` (random weights)."""
    from evalsuite.profile.components import build_vae, vae_inputs

    vae = seeded(lambda d: build_vae(config, d), device)
    latent, image = vae_inputs(vae, batch, resolution)
    return {"vae_decoder": time_call(lambda: vae.decode(latent), device, repeats),
            "vae_encoder": time_call(lambda: vae.encode(image), device, repeats)}
