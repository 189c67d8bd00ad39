"""Config schema of the export to experiment trackers (values: ``conf/export/default.yaml``),
part of the run and score configs; ``evalsuite export``'s root schema is in
``evalsuite.config.export_command``. See ``evalsuite.export``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class WandbExport:
    """Weights & Biases: one W&B run per record, its id the record's run id."""

    enabled: bool = False
    mode: str = "offline"  # offline (files under dir; `wandb sync` them later) | online
    project: str = "evalsuite"
    entity: Optional[str] = None
    dir: Optional[str] = None  # W&B writes <dir>/wandb/...; null: the results folder


@dataclass
class MlflowExport:
    """MLflow: one MLflow run per record, found again by its ``evalsuite.run_id`` tag."""

    enabled: bool = False
    tracking_uri: Optional[str] = None  # file:<folder>, http(s)://...; null: <results>/mlruns
    experiment: str = "evalsuite"


@dataclass
class ExportConfig:
    """Which trackers get each record, and what a failed export does to a run."""

    wandb: WandbExport = field(default_factory=WandbExport)
    mlflow: MlflowExport = field(default_factory=MlflowExport)
    on_error: str = "warn"  # after a run: warn (exit 0; retry with `evalsuite export`) | fail
    preview: int = 8  # sample images tiled into the preview PNG artifact (0: none)


def register_export(cs: ConfigStore) -> None:
    """Register the export group's schema (``conf/export/*.yaml`` extend it)."""
    cs.store(group="export", name="export_schema", node=ExportConfig)
