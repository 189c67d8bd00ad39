"""Recovery checkpoints: a diffusers UNet folder plus the training state, written atomically.

Layout of a recovery folder (``<results>/cache/recovery/<key>/``)::

    recovery.json            what is being trained (key, settings, ablations, teacher, data)
    checkpoints/step-000100/ unet/ (save_pretrained: config with the ablation record +
                             safetensors), ema.safetensors (with EMA), state.pt (optimizer,
                             grad scaler, RNG, step, loss history, wall time)
    final/                   unet/ (the recovered weights: the EMA ones when EMA is on) and
                             summary.json (what the record's ``recovery`` section holds)

Every folder is assembled under a temporary name in the same parent and renamed into place,
so a folder that exists under its final name is complete, even after SIGKILL; leftovers of a
killed writer (``.tmp-*``) are removed by the next run. The UNet reloads strictly with its
surgery re-applied (``evalsuite.ablations.load_ablated_unet``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from evalsuite.ablations import load_ablated_unet, save_ablated_unet
from evalsuite.io import sha256_file
from evalsuite.recovery.layout import STEP_PREFIX, UNET_WEIGHTS, step_dirs

__all__ = ["STEP_PREFIX", "UNET_WEIGHTS", "load_step", "read_final", "remove_leftovers", "save_final",
           "save_step", "step_dirs", "write_folder_atomically"]


def write_folder_atomically(final: Path, fill: Callable[[Path], None]) -> Path:
    """Create ``final`` by ``fill``-ing a temporary sibling folder and renaming it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp-{final.name}-"))
    try:
        fill(tmp)
        _fsync_tree(tmp)
        if final.exists():  # an identical folder from an earlier, interrupted pass
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def remove_leftovers(folder: Path) -> None:
    """Temporary folders of a writer that was killed mid-write."""
    if folder.is_dir():
        for p in folder.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def save_step(folder: Path, step: int, student: torch.nn.Module, ema: dict[str, torch.Tensor] | None,
              state: dict[str, Any], keep: int) -> Path:
    """Write checkpoint ``step`` atomically; keep only the ``keep`` newest."""
    def fill(tmp: Path) -> None:
        save_ablated_unet(student, tmp / "unet")
        if ema is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in ema.items()}, str(tmp / "ema.safetensors"))
        torch.save(state, tmp / "state.pt")

    path = write_folder_atomically(folder / "checkpoints" / f"{STEP_PREFIX}{step:06d}", fill)
    for old in step_dirs(folder)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_step(path: Path, device: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor] | None, dict[str, Any]]:
    """(student UNet, strictly reloaded; EMA tensors or None; training state) of a checkpoint."""
    unet = load_ablated_unet(path / "unet", device=device)
    ema_file = path / "ema.safetensors"
    ema = load_file(str(ema_file), device=device) if ema_file.is_file() else None
    state = torch.load(path / "state.pt", map_location=device, weights_only=False)
    return unet, ema, state


def save_final(folder: Path, unet: torch.nn.Module, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``final/`` (UNet + summary, with the weights' sha256 added); return the summary."""
    def fill(tmp: Path) -> None:
        save_ablated_unet(unet, tmp / "unet")
        summary["weights_sha256"] = sha256_file(tmp / "unet" / UNET_WEIGHTS)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))

    write_folder_atomically(folder / "final", fill)
    return summary


def read_final(folder: Path) -> dict[str, Any] | None:
    """The summary of a finished recovery, or None when it has not finished."""
    path = folder / "final" / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None
