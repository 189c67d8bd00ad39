"""Hydra callbacks: keep a multirun from leaving empty folders in the results folder.

Hydra's basic launcher creates ``<hydra.sweep.dir>/<job number>/`` for every job of a
multirun, even with ``hydra.output_subdir: null`` and ``chdir: false``, when nothing is
written there (evalsuite writes its outputs under ``paths.results_dir`` itself). The sweep
folder is ``<paths.results_dir>/multirun`` (``conf/config.yaml``): once the multirun ends, the
job folders that stayed empty are removed, and what is left is ``multirun.yaml``, Hydra's
record of the sweep (its overrides), plus any launcher logs (submitit writes its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


def remove_empty_job_folders(sweep_dir: str | Path) -> list[Path]:
    """Remove the empty folders directly under ``sweep_dir``; return the removed ones."""
    removed = []
    root = Path(sweep_dir)
    if not root.is_dir():
        return removed
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            folder.rmdir()  # fails unless empty: anything written there stays
        except OSError:
            continue
        removed.append(folder)
    return removed


class TidyMultirun(Callback):
    """On the end of a multirun, remove the job folders Hydra made and nothing filled."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        remove_empty_job_folders(config.hydra.sweep.dir)
