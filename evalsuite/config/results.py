"""Config schemas of ``evalsuite table``, ``compare``, ``report`` and ``doctor`` (values:
``conf/<cmd>.yaml``).

The values live in the YAML files only; these dataclasses give their types, so a misspelt key
or a wrong type fails when Hydra composes (as for ``evalsuite run``). ``root_settings`` reads
the same YAML without Hydra, for callers that are not a CLI app (``write_report`` at the end
of ``evalsuite run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from evalsuite.config.schema import PathsConfig


@dataclass
class TableSettings:
    """``evalsuite table``: which definition, which formats, extra filters."""

    name: str = MISSING  # conf/table/<name>.yaml
    formats: List[str] = field(default_factory=list)  # written to <results>/tables/<name>.<fmt>
    print: Optional[str] = MISSING  # format printed on stdout (null: print nothing)
    where: Dict[str, Any] = field(default_factory=dict)  # merged into the definition's where
    paths: PathsConfig = MISSING


@dataclass
class Tolerance:
    abs: float = 0.0  # allowed degradation in the metric's unit
    rel: float = 0.0  # ... or as a fraction of the baseline value (the larger one applies)


@dataclass
class CompareSettings:
    """``evalsuite compare``: the two records, the metrics and their tolerances."""

    baseline: Any = MISSING  # run id (or unique prefix), "latest", or {field: value, ...}
    candidate: Any = MISSING
    where: Dict[str, Any] = field(default_factory=dict)  # applied to both selections
    metrics: List[str] = field(default_factory=list)  # empty: every metric of either record
    tolerances: Dict[str, Tolerance] = field(default_factory=dict)  # metric (or "default")
    fail_on_missing: bool = MISSING  # a metric of the baseline missing in the candidate fails
    paths: PathsConfig = MISSING


@dataclass
class CfgSweepPlot:
    x: str = MISSING  # metric on the x axis (SnapFusion Fig. 4: CLIP score)
    y: str = MISSING  # metric on the y axis (FID)


@dataclass
class QualityCostPlot:
    quality: List[str] = field(default_factory=list)  # the first metric the records carry
    cost: List[str] = field(default_factory=list)  # the first available: arch.params, arch.gflops or a record field


@dataclass
class PlotSettings:
    cfg_sweep: CfgSweepPlot = field(default_factory=CfgSweepPlot)
    quality_cost: QualityCostPlot = field(default_factory=QualityCostPlot)


@dataclass
class GridSettings:
    prompts: int = MISSING  # prompts (rows) per image grid
    variants: int = MISSING  # variants (columns) per grid at most
    thumb: int = MISSING  # thumbnail side in pixels (embedded in the page)


@dataclass
class ReportSettings:
    """``evalsuite report``: tables, plots and image grids in one self-contained HTML file."""

    tables: List[str] = field(default_factory=list)  # table definitions to include
    where: Dict[str, Any] = field(default_factory=dict)  # records the report is about
    plots: PlotSettings = field(default_factory=PlotSettings)
    grid: GridSettings = field(default_factory=GridSettings)
    paths: PathsConfig = MISSING


@dataclass
class DoctorSettings:
    """``evalsuite doctor``: ``fix`` quarantines broken files; ``tmp_age_s`` makes a
    ``.tmp-*`` file stale."""

    fix: bool = False
    tmp_age_s: float = 3600.0
    paths: PathsConfig = MISSING


def register_result_configs() -> None:
    """Register the schemas named in the defaults lists of
    conf/{table,compare,report,doctor}.yaml."""
    cs = ConfigStore.instance()
    cs.store(name="doctor_schema", node=DoctorSettings)
    cs.store(name="table_schema", node=TableSettings)
    cs.store(name="compare_schema", node=CompareSettings)
    cs.store(name="report_schema", node=ReportSettings)


def root_settings(name: str, schema: type, conf_dir: str | Path) -> Any:
    """``conf/<name>.yaml`` merged onto ``schema`` without Hydra (its defaults list and
    ``hydra`` section are Hydra's business and are dropped; ``paths`` is left unset)."""
    raw = OmegaConf.load(Path(conf_dir) / f"{name}.yaml")
    assert isinstance(raw, DictConfig)
    values = {k: v for k, v in raw.items() if k not in ("defaults", "hydra")}
    return OmegaConf.merge(OmegaConf.structured(schema), values)
