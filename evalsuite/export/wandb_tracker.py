"""Weights & Biases: one W&B run per record, its run id the record's run id.

``mode=offline`` writes the run under ``<dir>/wandb/offline-run-<time>-<id>/`` with no
network; ``wandb sync <that folder>`` uploads it later. The run's config holds the payload's
sections (identity, protocol, metric versions, choices, config, overrides, provenance), its
summary the metric values under the record's names, its tags ``task:``, ``variant:``,
``protocol:`` and the record's own tags, and its files the record (and the preview PNG).

Idempotent: a run folder for this id already under ``<dir>/wandb/`` means the record was
exported from here before, and nothing is done; otherwise the run is opened with ``id=`` and
``resume="allow"``, so in online mode an existing W&B run of that id is the one updated (the
values are set as summary, not appended as history, so a second export changes nothing).
A failed offline export removes its partial run folder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

from evalsuite.export.base import Exported, ExportError, require
from evalsuite.export.payload import Payload

MODES = ("offline", "online")
MAX_ID = 64  # W&B run ids: letters, digits, '-' and '_'
MAX_TAG = 64  # W&B refuses longer tags


def wandb_run_id(run_id: str) -> str:
    """The record's run id as a W&B run id: other characters become ``-``; an id that had to
    change (or is too long) ends with a hash of the original, so two records never share one."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", run_id)
    if clean == run_id and len(clean) <= MAX_ID:
        return clean
    return f"{clean[:MAX_ID - 9]}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def wandb_tags(payload: Payload) -> list[str]:
    """``task:``, ``variant:``, ``protocol:`` (key) and the record's tags, each at most 64
    characters."""
    tags = [f"task:{payload.tags['task']}", f"variant:{payload.tags['variant']}",
            f"protocol:{payload.tags['protocol']}", *payload.user_tags]
    return list(dict.fromkeys(t[:MAX_TAG] for t in tags))


def run_folders(wandb_dir: Path, run_id: str) -> list[Path]:
    """The W&B run folders (offline or online) of ``run_id`` under ``<dir>/wandb/``."""
    pattern = re.compile(r"^(offline-)?run-\d{8}_\d{6}-" + re.escape(run_id) + "$")
    root = wandb_dir / "wandb"
    return sorted(p for p in root.iterdir() if pattern.match(p.name)) if root.is_dir() else []


class WandbExporter:
    """Exports payloads to W&B project ``project`` (offline: files under ``dir``)."""

    name = "wandb"

    def __init__(self, mode: str, project: str, entity: str | None, directory: str | Path):
        self.mode, self.project, self.entity = mode, project, entity
        self.dir = Path(directory).expanduser().resolve()
        self._wandb: Any = None

    def check(self) -> None:
        """Check the mode and import wandb (nothing is written yet)."""
        if self.mode not in MODES:
            raise ExportError(f"export.wandb.mode={self.mode!r}; choose one of {list(MODES)}")
        self._wandb = require("wandb")

    def export(self, payload: Payload) -> Exported:
        """Write (offline) or send (online) the record's run, unless it exists here."""
        if self._wandb is None:
            self.check()
        run_id = wandb_run_id(payload.run_id)
        existing = run_folders(self.dir, run_id)
        if existing:
            return Exported(self.name, payload.run_id, str(existing[-1]), False)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            run = self._open(payload, run_id)
        except Exception as e:
            raise ExportError(f"W&B could not start run {run_id} ({self.mode}, {self.dir}): "
                              f"{type(e).__name__}: {e}") from e
        try:
            run.summary.update(payload.metrics)
            for path in payload.files:  # copied: a symlink would break when results move
                shutil.copyfile(path, Path(run.dir) / path.name)
                run.save(str(Path(run.dir) / path.name), base_path=run.dir, policy="now")
            run.finish()
        except Exception as e:
            run.finish(exit_code=1)
            if self.mode == "offline":
                shutil.rmtree(Path(run.dir).parent, ignore_errors=True)
            raise ExportError(f"W&B export of record {payload.run_id} failed: "
                              f"{type(e).__name__}: {e}") from e
        return Exported(self.name, payload.run_id, str(Path(run.dir).parent), True)

    def _open(self, payload: Payload, run_id: str) -> Any:
        wandb = self._wandb
        # Nothing but the record: no git state, code, console capture or system metrics.
        settings = wandb.Settings(silent=True, disable_git=True, disable_code=True,
                                  save_code=False, console="off", x_disable_stats=True,
                                  x_disable_meta=True)
        return wandb.init(mode=self.mode, dir=str(self.dir), project=self.project,
                          entity=self.entity, id=run_id, name=payload.name, resume="allow",
                          config=payload.sections, tags=wandb_tags(payload), settings=settings)
