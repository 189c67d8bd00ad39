"""Named table definitions: ``conf/table/<name>.yaml``, validated against these dataclasses.

A definition says which records to use (``where``), which rows (one per listed filter, or one
per variant), which columns (metrics, record fields, architecture figures), the baseline row
for deltas, ordering and rounding. A paper table also names the published data it sits next
to (``paper``, a file in ``evalsuite/results/paper/``) and maps each row and column to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evalsuite.errors import ConfigError

ARCH_FIGURES = ("params", "gflops")
DELTA_KINDS = ("abs", "pct")


@dataclass
class ColumnDef:
    """One column. Exactly one source: ``metric``, ``field``, ``arch`` or ``unmeasurable``."""

    metric: Optional[str] = None  # a metric name as recorded: fid, clip_score, psnr/baseline
    field: Optional[str] = None  # a record field: model.unet_params, durations.total, ...
    arch: Optional[str] = None  # params | gflops, regenerated from the architecture (no weights)
    unmeasurable: Optional[str] = None  # why evalsuite cannot measure it: cells marked n/a
    paper: Optional[str] = None  # paper tables: id of the published column shown next to it
    label: Optional[str] = None  # default: the metric / field / arch name (or the paper's label)
    round: Optional[int] = None  # digits after the decimal point (None: as recorded)
    scale: float = 1.0  # multiply our values before showing (1e-6: millions; paper tables: to the paper's unit)
    thousands: bool = False  # 859,520,964
    delta: bool = True  # show the delta to the baseline row (generic tables)
    of: str = "variant"  # paper tables: our value of the row's "variant" or "baseline" records,
    # or (columns not in the paper) the % "change" from the baseline to the variant


@dataclass
class RowDef:
    """One row: the records it stands for and, for ``arch`` columns, its architecture."""

    label: Optional[str] = None  # default: the paper row's label, or the preset
    where: Dict[str, Any] = field(default_factory=dict)  # on top of the table's ``where``
    preset: Optional[str] = None  # evalsuite.models.presets name, or "tiny"
    ablations: List[Any] = field(default_factory=list)  # [{name, params}] on top of the preset
    paper: Optional[str] = None  # id of the published row
    baseline_where: Optional[Dict[str, Any]] = None  # paper change rows: what the change is from
    unmeasurable: Optional[str] = None  # why this row's metrics cannot be measured (cells: n/a)


@dataclass
class TableDef:
    """A whole table definition (see ``conf/table/*.yaml`` for examples)."""

    title: str = MISSING
    description: str = ""
    paper: Optional[str] = None  # evalsuite/results/paper/<paper>.yaml
    where: Dict[str, Any] = field(default_factory=dict)  # every row's records match this
    rows: List[RowDef] = field(default_factory=list)  # empty: one row per variant
    columns: List[ColumnDef] = field(default_factory=list)  # empty: every metric + unet_params
    baseline: Optional[Any] = None  # row label, or a where-mapping picking the first such row
    deltas: List[str] = field(default_factory=lambda: ["abs", "pct"])
    pct_round: int = 1  # digits of relative deltas
    sort_by: Optional[str] = None  # a column label; default: definition (or record) order
    descending: bool = False
    show_ci: bool = True  # show "± half-width" where a bootstrap interval was recorded


def table_dir(conf_dir: str | Path) -> Path:
    return Path(conf_dir) / "table"


def available_tables(conf_dir: str | Path) -> list[str]:
    """Names of every table definition."""
    return sorted(p.stem for p in table_dir(conf_dir).glob("*.yaml"))


def load_table_def(name: str, conf_dir: str | Path, overrides: Any = None) -> TableDef:
    """Load and validate ``conf/table/<name>.yaml`` (merging ``overrides``, e.g. extra ``where``)."""
    path = table_dir(conf_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no table definition {name!r} (looked for {path}); known: "
                          f"{', '.join(available_tables(conf_dir)) or 'none'}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TableDef), OmegaConf.load(path),
                                 overrides or {})
        tdef = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(f"table definition {path}: {e}") from e
    assert isinstance(tdef, TableDef)
    check_table_def(tdef, str(path))
    return tdef


def check_table_def(tdef: TableDef, where: str) -> None:
    """Reject definitions that could only render wrong: no source or two sources, unknown kinds."""
    for i, col in enumerate(tdef.columns):
        sources = [s for s in ("metric", "field", "arch", "unmeasurable") if getattr(col, s)]
        if len(sources) > 1 or (not sources and not col.paper):  # a paper column may be theirs only
            raise ConfigError(f"{where}: columns[{i}] needs exactly one of metric, field, arch, "
                              f"unmeasurable; it has {sources or 'none'}")
        if col.arch and col.arch not in ARCH_FIGURES:
            raise ConfigError(f"{where}: columns[{i}].arch={col.arch!r}; choose one of {ARCH_FIGURES}")
        if col.of not in ("variant", "baseline", "change"):
            raise ConfigError(f"{where}: columns[{i}].of={col.of!r}; choose variant, baseline or change")
    bad = sorted(set(tdef.deltas) - set(DELTA_KINDS))
    if bad:
        raise ConfigError(f"{where}: deltas {bad} unknown; choose from {list(DELTA_KINDS)}")
    if tdef.paper is None and any(c.paper for c in tdef.columns):
        raise ConfigError(f"{where}: columns name a paper column but the table has no `paper:`")


def plain(obj: Any) -> Any:
    """OmegaConf containers as plain Python (dicts and lists), anything else unchanged."""
    if isinstance(obj, DictConfig) or OmegaConf.is_list(obj):
        return OmegaConf.to_container(obj, resolve=True)
    return obj
