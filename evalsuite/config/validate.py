"""Every setting a run's config holds, checked before any work (the pipeline's validate step).

Hydra's structured schemas (``evalsuite.config.schema``) check names and types when the config
is composed; this module checks values: ranges, the device, the resolution limit and that no
mandatory key is missing. It reads only the config (torch only for ``device=cuda``/``mps``), so
a bad value is refused before a model is built, a sample generated or a file written.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from evalsuite.errors import ConfigError

#: Default bound on image sides (``model.resolution``, ``reference.resolution``). One 2048^2
#: SD v1.5 sample needs ~40 GB of attention memory in float32; raise the bound with
#: ``limits.max_resolution=<pixels>`` on a machine that has the memory.
MAX_RESOLUTION = 2048
#: The VAE's downsampling factor: image sides must be multiples of it (latent = side / 8).
VAE_FACTOR = 8

_DEVICE = re.compile(r"^(cpu|cuda|mps)(:(\d+))?$")


def validate_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` (one paragraph, exit status 2) for the first invalid setting of a
    run, score or study config; return None when every setting present is valid."""
    _check_missing(cfg)
    if "threads" in cfg and cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads={cfg.threads}: give a positive number of torch threads, or "
                          "leave it unset (null) for torch's own choice")
    _check_ranges(cfg)
    _check_resolution(cfg)
    if "device" in cfg:
        check_device(str(cfg.device))
    items = _value(cfg, "metrics.items") or {}
    for name, item in items.items():  # a metric may run its extractor on its own device
        if isinstance(item, DictConfig) and item.get("device") is not None:
            check_device(str(item.device), key=f"metrics.items.{name}.device")


def _check_missing(cfg: DictConfig) -> None:
    """Mandatory keys (``???`` in the schema) that the config and command line left unset."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:
        hint = " ".join(f"{k}=<value>" for k in missing[:3])
        raise ConfigError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                          f"required but not set; give {'it' if len(missing) == 1 else 'them'} "
                          f"on the command line (e.g. {hint})")


# (config path, lowest allowed value, what the value means)
_AT_LEAST: list[tuple[str, float, str]] = [
    ("metrics.batch_size", 1, "images per metric batch"),
    ("metrics.bootstrap", 0, "bootstrap resamples (0: no confidence intervals)"),
    ("sampler.batch_size", 1, "prompts per generation batch"),
    ("sampler.steps", 1, "denoising steps"),
    ("vae.batch_size", 1, "images per VAE batch"),
    ("dataset.limit", 1, "prompts used (null: all)"),
    ("shard.count", 1, "shards the run is split into"),
    ("shard.index", 0, "this shard's number, from 0"),
    ("score.bootstrap", 0, "bootstrap resamples (deprecated alias of metrics.bootstrap)"),
    ("limits.max_resolution", VAE_FACTOR, "the largest image side allowed"),
]


def _value(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _check_ranges(cfg: DictConfig) -> None:
    for key, low, what in _AT_LEAST:
        v = _value(cfg, key)
        if v is not None and v < low:
            raise ConfigError(f"{key} must be >= {low:g}, got {v} ({what})")
    index, count = _value(cfg, "shard.index"), _value(cfg, "shard.count")
    if index is not None and count is not None and index >= count:
        raise ConfigError(f"shard.index={index}, shard.count={count}: shards are numbered 0 to "
                          f"{count - 1}")
    lease = _value(cfg, "shard.merge_lease_s")
    if lease is not None and not lease > 0:
        raise ConfigError(f"shard.merge_lease_s={lease}: a merge claim's lease must be a "
                          "positive number of seconds")


def _check_resolution(cfg: DictConfig) -> None:
    limit = _value(cfg, "limits.max_resolution") or MAX_RESOLUTION
    for key in ("model.resolution", "reference.resolution"):
        v = _value(cfg, key)
        if v is None:
            continue
        if v < VAE_FACTOR or v % VAE_FACTOR:
            raise ConfigError(f"{key}={v}: image sides must be positive multiples of "
                              f"{VAE_FACTOR} (the VAE's downsampling factor)")
        if v > limit:
            raise ConfigError(f"{key}={v} is above the limit of {limit} pixels per side (a "
                              "larger image needs more memory than most machines have, and "
                              "would fail only after minutes of work). On a machine with the "
                              f"memory, raise the limit: limits.max_resolution={v}")


def check_device(device: str, available: Callable[[str], int] | None = None,
                 key: str = "device") -> None:
    """Refuse a device name torch does not know or a device this machine does not have.

    ``available(kind)`` -> how many devices of ``kind`` exist (default: ask torch).
    """
    m = _DEVICE.match(device)
    if m is None:
        raise ConfigError(f"{key}={device!r} is not a device evalsuite runs on; choose cpu, "
                          "cuda, cuda:<n> or mps")
    kind, index = m.group(1), int(m.group(3) or 0)
    if kind == "cpu":
        return
    have = (available or _torch_devices)(kind)
    if index >= have:
        found = f"{have} {kind} device{'s' if have != 1 else ''}" if have else f"no {kind} device"
        raise ConfigError(f"{key}={device}: this machine has {found} (torch sees "
                          f"{'none' if not have else list(range(have))}). Run on another "
                          f"machine, or use {key}=cpu")


def _torch_devices(kind: str) -> int:
    import torch  # only for a non-cpu device: a cpu run checks without importing torch

    if kind == "cuda":
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    return int(torch.backends.mps.is_available())
