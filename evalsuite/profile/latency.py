"""Wall-clock latency: warm-up, then the median and IQR of repeated forward passes.

Also the per-block latency lookup table SnapFusion's architecture search uses: every
residual block and cross-attention (transformer) block timed on its own, with the inputs it
receives inside a full forward pass.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LatencyReport:
    """Timing of repeated calls, in milliseconds."""

    median_ms: float
    iqr_ms: float  # p75 - p25
    p25_ms: float
    p75_ms: float
    min_ms: float
    mean_ms: float
    repeats: int
    warmup: int
    device: str
    threads: int  # torch intra-op threads during the measurement
    peak_memory_mb: float | None  # CUDA: peak allocated during the runs; None elsewhere
    process_max_rss_mb: float  # CPU: the whole process's peak resident memory so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _device_of(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def time_calls(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> LatencyReport:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls (inference mode)."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    if device.type == "meta":
        raise ValueError("latency cannot be measured on the meta device (no weights); use cpu or cuda")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: list[float] = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return LatencyReport(
        statistics.median(times), q[2] - q[0], q[0], q[2], min(times), statistics.fmean(times),
        repeats, warmup, str(device), torch.get_num_threads(), peak, rss,
    )


def _caller(module: nn.Module, inputs: Any) -> Callable[[], Any]:
    if isinstance(inputs, Mapping):
        return lambda: module(**inputs)
    if isinstance(inputs, torch.Tensor):
        return lambda: module(inputs)
    if isinstance(inputs, Sequence):
        return lambda: module(*inputs)
    raise TypeError(f"inputs must be a tensor, a sequence of args or a mapping of kwargs, not {type(inputs)}")


def measure_latency(module: nn.Module, inputs: Any, warmup: int = 3, repeats: int = 10) -> LatencyReport:
    """Median/IQR latency of ``module(inputs)`` on the module's device.

    ``inputs``: a tensor, a sequence of positional args, or a mapping of keyword args.
    """
    return time_calls(_caller(module, inputs), _device_of(module), warmup, repeats)


def block_latency_table(
    unet: nn.Module, inputs: Any, warmup: int = 1, repeats: int = 5, kinds: tuple[str, ...] = ("resnets", "attentions")
) -> dict[str, LatencyReport]:
    """Latency of each residual / cross-attention block (SnapFusion's lookup table).

    One full forward with ``inputs`` records every block's arguments; each block is then
    timed alone on them. Keys are module paths (``down_blocks.1.attentions.0``, ...).
    """
    captured: dict[str, tuple[tuple, dict]] = {}
    hooks = []
    for name, mod in unet.named_modules():
        parts = name.split(".")
        if len(parts) >= 2 and parts[-2] in kinds and parts[-1].isdigit() and next(mod.parameters(), None) is not None:
            def hook(m: nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
                captured.setdefault(name, (args, kwargs))

            hooks.append(mod.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.inference_mode():
            _caller(unet, inputs)()
    finally:
        for h in hooks:
            h.remove()
    device = _device_of(unet)
    table: dict[str, LatencyReport] = {}
    for name, (args, kwargs) in captured.items():
        mod = unet.get_submodule(name)
        table[name] = time_calls(lambda mod=mod, a=args, k=kwargs: mod(*a, **k), device, warmup, repeats)
    return table
