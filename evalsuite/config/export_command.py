"""The root config schema of ``evalsuite export`` (values: ``conf/export.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from evalsuite.config.export import ExportConfig
from evalsuite.config.schema import PathsConfig


@dataclass
class ExportRootConfig:
    """``evalsuite export``: which records of the results folder go to the trackers."""

    export: ExportConfig = field(default_factory=ExportConfig)
    run_ids: List[str] = field(default_factory=list)  # run ids (or unique prefixes); []: all
    where: Dict[str, Any] = field(default_factory=dict)  # fields as in table definitions
    paths: PathsConfig = MISSING


def register_export_command() -> None:
    """Register the schema named in conf/export.yaml's defaults list."""
    ConfigStore.instance().store(name="export_root_schema", node=ExportRootConfig)
