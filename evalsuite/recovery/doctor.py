"""``evalsuite doctor``'s check of recovery folders (``<results>/cache/recovery/<key>/``).

Cheap and read-only: no tensor is loaded. A step checkpoint (``checkpoints/step-N/``) is
damaged when a file it needs is missing, a safetensors file is truncated or its header is not
JSON (the size it declares is checked against the file's), or ``state.pt`` is not a readable
zip archive (``torch.save``'s format; every member's CRC is checked). ``final/`` is damaged
when ``summary.json`` does not parse or the weights' sha256 differs from the one recorded at
training. ``fix`` quarantines a damaged folder: the next run resumes from the newest complete
checkpoint (a missing ``final/`` is rebuilt from the last one without training), so nothing
is lost that evalsuite cannot recompute.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from evalsuite.io import sha256_file
from evalsuite.recovery.layout import UNET_WEIGHTS, step_dirs


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file (header and declared size), or None."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                return f"{path.name}: header length {n} exceeds the file ({size} bytes)"
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError) as e:
        return f"{path.name}: not a safetensors file ({e})"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if 8 + n + max(ends, default=0) != size:
        return f"{path.name}: {size} bytes, its header declares {8 + n + max(ends, default=0)} (truncated?)"
    return None


def _state_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (OSError, zipfile.BadZipFile) as e:
        return f"state.pt: not a readable torch archive ({e})"
    return None if bad is None else f"state.pt: member {bad} fails its CRC"


def _unet_problem(unet: Path) -> str | None:
    if not (unet / "config.json").is_file() or not (unet / UNET_WEIGHTS).is_file():
        return "unet/ lacks config.json or its weights"
    try:
        json.loads((unet / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"unet/config.json does not parse ({e})"
    return safetensors_problem(unet / UNET_WEIGHTS)


def step_problem(step: Path) -> str | None:
    """Why checkpoint folder ``step`` cannot be resumed from, or None."""
    if not (step / "state.pt").is_file():
        return "state.pt is missing"
    ema = step / "ema.safetensors"
    return (_unet_problem(step / "unet") or _state_problem(step / "state.pt")
            or (safetensors_problem(ema) if ema.is_file() else None))


def final_problem(final: Path) -> str | None:
    """Why ``final/`` is not the recovered model its summary describes, or None."""
    try:
        summary = json.loads((final / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"summary.json is missing or does not parse ({e})"
    problem = _unet_problem(final / "unet")
    if problem:
        return problem
    found = sha256_file(final / "unet" / UNET_WEIGHTS)
    if found != summary.get("weights_sha256"):
        return f"the weights' sha256 {found[:12]} is not the {str(summary.get('weights_sha256'))[:12]} recorded"
    return None


def recovery_problems(results: Path) -> Iterator[tuple[str, str]]:
    """(path relative to ``results``, problem) for every damaged checkpoint or final folder
    of ``results``'s recovery cache (see the module docstring); ``evalsuite.doctor`` turns
    them into findings (this layer does not import it)."""
    root = Path(results) / "cache" / "recovery"
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path, problem in [(s, step_problem(s)) for s in step_dirs(folder)] + (
                [(folder / "final", final_problem(folder / "final"))] if (folder / "final").is_dir() else []):
            if problem:
                yield str(path.relative_to(results)), problem
