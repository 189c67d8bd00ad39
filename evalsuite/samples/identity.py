"""What a stored sample is: its identity, and the environment factors of a generation key.

A sample's pixels depend on the store's generation key (model, ablations, sampler with its
negative prompt and run seed, resolution, device type, dtype, and on CPU the thread count) and
on the sample itself: its id, prompt text and seed. ``sample_identity`` hashes all of them, so
two samples with the same identity have the same pixels, and a file whose recorded identity
differs from the requested one is never reused.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

from evalsuite.io import sha256_json
from evalsuite.threads import chosen_threads


def sample_identity(generation_key: str, sample_id: str, text: str | None,
                    seed: int | None) -> str:
    """sha256 over the generation key, the id, the prompt text and the seed of one sample.

    ``text`` and ``seed`` are None where the store has none (reconstructions have no prompt).
    """
    return sha256_json({"generation_key": generation_key, "id": sample_id, "text": text,
                        "seed": seed})


def entry_identity(generation_key: str, entry: Mapping[str, Any]) -> str:
    """The identity of a manifest entry (``id`` and, where present, ``text`` and ``seed``)."""
    return sample_identity(generation_key, entry["id"], entry.get("text"), entry.get("seed"))


def device_factors(device: str) -> dict[str, Any]:
    """The device part of a generation key: the device type and, on CPU, the thread count.

    CPU kernels split reductions by thread, so a different intra-op thread count can move a
    pixel by one level: samples made with
    different thread counts are different samples. GPU kernels do not depend on it.
    """
    device_type = device.split(":")[0]
    if device_type != "cpu":
        return {"device_type": device_type}
    return {"device_type": device_type, "cpu_threads": cpu_threads()}


def cpu_threads() -> int:
    """torch's intra-op thread count, without importing torch when ``apply_threads`` has
    decided it already: torch reads the ``OMP_NUM_THREADS`` it set on import. A fully cached
    re-run then never loads torch (1.4 s of a 2 s re-run)."""
    torch = sys.modules.get("torch")
    chosen = chosen_threads()
    if torch is None and chosen is not None:
        return int(chosen["count"])
    import torch

    return torch.get_num_threads()
