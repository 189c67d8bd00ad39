"""Where a number came from: code version, git state, library versions, hardware."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import evalsuite

LIBRARIES = ("torch", "diffusers", "transformers", "torchmetrics", "open_clip_torch", "lpips",
             "scikit-image", "numpy", "hydra-core", "pandas", "pillow")


def _git(*args: str) -> str | None:
    src = Path(evalsuite.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the evalsuite source tree (None when not a git checkout)."""
    sha = _git("rev-parse", "HEAD")
    if sha is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": sha, "dirty": bool(status)}


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def environment(device: str) -> dict[str, Any]:
    """Interpreter, libraries and hardware. Runtime facts about torch are recorded only when
    this run imported torch (a fully cached re-run does not, and should not pay for it)."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "device": device,
    }
    from evalsuite.threads import chosen_threads

    # The thread count evalsuite chose and why (the threads setting, OMP_NUM_THREADS, the CPU
    # affinity or the cgroup quota); torch_threads below is what torch then ran with.
    env["threads"] = chosen_threads()
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
        if device.startswith("cuda") and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def provenance(device: str) -> dict[str, Any]:
    return {"evalsuite_version": evalsuite.__version__, "git": git_state(),
            "environment": environment(device)}
