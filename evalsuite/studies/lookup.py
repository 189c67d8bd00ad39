"""The latency side of the study: SnapFusion's per-block lookup table, measured once.

SnapFusion does not time each variant: it times every block once and predicts a variant's
latency from the table. Here the table is ``evalsuite.profile.latency.block_latency_table``
on the study's base UNet, plus one timed forward of the whole UNet; a variant that removes
block b has latency ``base - table[b]``. Latency does not depend on weight values, so the
UNet is built from its config with a fixed-seed random initialisation (as ``evalsuite
profile`` does), on the run's device and in the sampler's dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalsuite.tasks.setup import set_threads

VERSION = "1"  # bump when what is measured changes


@dataclass
class LatencyTable:
    """Per-block median latencies (ms) and the whole UNet's, with how they were measured."""

    base_ms: float  # median of one full UNet forward
    blocks_ms: dict[str, float]  # module path -> median ms of that block alone
    setup: dict[str, Any]  # device, threads, dtype, inputs, warmup, repeats, version
    reports: dict[str, dict[str, Any]]  # module path (and "unet") -> full LatencyReport

    def variant_ms(self, action: str) -> float:
        """Latency of the base UNet without block ``action``, predicted from the table."""
        return self.base_ms - self.blocks_ms[action]

    def to_dict(self) -> dict[str, Any]:
        return {"base_ms": self.base_ms, "blocks_ms": self.blocks_ms, "setup": self.setup,
                "reports": self.reports}

    def footer(self) -> str:
        """One sentence stating where the latency column comes from."""
        s = self.setup
        threads = f"{s['threads']} torch thread{'' if s['threads'] == 1 else 's'}"
        return (f"latency: per-block lookup table (evalsuite.profile.latency.block_latency_table), "
                f"measured once on {s['device']} with {threads}, {s['dtype']}, one UNet forward "
                f"at latent {s['latent']}x{s['latent']}, batch {s['batch']}, {s['text_len']} "
                f"tokens, median of {s['repeats']} calls after {s['warmup']} warm-up; base UNet "
                f"{self.base_ms:.3f} ms; variant = base - its block's entry (predicted, not timed "
                "end to end)")


def _inputs(unet: Any, latent: int, batch: int, text_len: int) -> tuple[Any, Any, Any]:
    import torch

    param = next(unet.parameters())
    dim = unet.config.cross_attention_dim
    dim = dim if isinstance(dim, int) else dim[0]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, unet.config.in_channels, latent, latent, generator=gen)
    ctx = torch.randn(batch, text_len, dim, generator=gen)
    t = torch.full((batch,), 999, dtype=torch.long)
    return (x.to(param.device, param.dtype), t.to(param.device), ctx.to(param.device, param.dtype))


def measure_lookup_table(base_config: Mapping[str, Any], preset: Sequence[Any], latent: int,
                         device: str, dtype: str, batch: int = 1, text_len: int = 77,
                         warmup: int = 1, repeats: int = 5, threads: int | None = None) -> LatencyTable:
    """Build the base UNet (base_config + preset), time it whole and block by block."""
    import torch

    from evalsuite.ablations import build_ablated_unet
    from evalsuite.profile.latency import block_latency_table, measure_latency

    set_threads(threads)  # as `evalsuite run` does, so the table matches the runs
    with torch.random.fork_rng(devices=[]):  # do not move the caller's RNG streams
        torch.manual_seed(0)
        unet = build_ablated_unet(base_config, list(preset), device="cpu").eval()
    unet = unet.to(device=device)
    if getattr(torch, dtype) != unet.dtype:  # float32 is what it was built in
        unet = unet.to(dtype=getattr(torch, dtype))
    inputs = _inputs(unet, latent, batch, text_len)
    whole = measure_latency(unet, inputs, warmup=warmup, repeats=repeats)
    blocks = block_latency_table(unet, inputs, warmup=warmup, repeats=repeats)
    setup = {"version": VERSION, "device": whole.device, "threads": whole.threads, "dtype": dtype,
             "latent": latent, "batch": batch, "text_len": text_len, "warmup": warmup,
             "repeats": repeats, "statistic": "median"}
    reports = {"unet": whole.to_dict(), **{k: r.to_dict() for k, r in blocks.items()}}
    return LatencyTable(whole.median_ms, {k: r.median_ms for k, r in blocks.items()}, setup, reports)
