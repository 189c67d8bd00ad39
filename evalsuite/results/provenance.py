"""Where a number came from: code version, git state, library versions, hardware."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any

import evalsuite

LIBRARIES = ("torch", "diffusers", "transformers", "torchmetrics", "open_clip_torch", "lpips",
             "scikit-image", "numpy", "hydra-core", "pandas", "pillow")


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _pip_vcs(package_dir: Path) -> dict[str, Any]:
    """The commit pip recorded when this copy was installed from a git URL
    (``pip install git+...`` writes it in ``direct_url.json``), or nothing."""
    try:
        dist = distribution("evalsuite")
    except PackageNotFoundError:
        return {}
    if Path(str(dist.locate_file("evalsuite"))).resolve() != package_dir:
        return {}  # that installation is not the copy imported here
    try:
        info = json.loads(dist.read_text("direct_url.json") or "null") or {}
    except ValueError:
        return {}
    commit = (info.get("vcs_info") or {}).get("commit_id")
    return {"commit": commit, "installed_from": info.get("url")} if commit else {}


def git_state(package_dir: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout evalsuite is imported from.

    Only a checkout that tracks the package's own files counts: an installed wheel whose
    environment happens to lie inside some other git checkout (a project's ``.venv``) would
    otherwise record that project's commit as evalsuite's. An installed copy has commit None,
    unless pip installed it from a git URL and recorded the commit (``installed_from``).
    ``package_dir``: the ``evalsuite`` package folder (default: the one imported).
    """
    pkg = Path(package_dir or Path(evalsuite.__file__).parent).resolve()
    if _git(pkg, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return {"commit": None, "dirty": None, **_pip_vcs(pkg)}
    sha = _git(pkg, "rev-parse", "HEAD")
    status = _git(pkg, "status", "--porcelain", "--untracked-files=no")
    return {"commit": sha, "dirty": None if status is None else bool(status)}


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
