"""Pairings: what a paired metric (PSNR, SSIM, LPIPS) compares images with.

A paired metric ``m`` gets one instance per pairing, named ``m/<pairing>`` in the record.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable

from evalsuite.errors import ConfigError


class Pairing(Enum):
    """Every pairing a task can score (the value is the record's name)."""

    BASELINE = "baseline"  # generate: samples vs the un-ablated model's samples
    # a VAE round trip vs the images it started from: under task=generate the model's VAE on
    # the reference photos, under task=reconstruction vae.encoder -> vae.decoder (before
    # schema_version 2 that task named it "original"; records are migrated on reading)
    RECONSTRUCTION = "reconstruction"
    COMPARE_DECODER = "compare_decoder"  # reconstruction: vs a second decoder's
    REFERENCE = "reference"  # score: gen_dir vs the file with the same name in ref_dir


#: The pairings ``metrics.paired_with`` may name for ``task=generate``.
GENERATE_PAIRINGS = (Pairing.BASELINE, Pairing.RECONSTRUCTION)


def check_pairings(values: Iterable[str], allowed: Iterable[Pairing], key: str) -> list[str]:
    """``values`` as a list, refused with a ``ConfigError`` naming ``key`` if one is unknown."""
    names = [p.value for p in allowed]
    values = list(values)
    unknown = [v for v in values if v not in names]
    if unknown:
        raise ConfigError(f"{key}={values}: unknown pairing {', '.join(map(repr, unknown))}; "
                          f"choose from {names}")
    return values
