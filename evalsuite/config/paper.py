"""The published-paper schema: ``evalsuite/results/paper/<id>.yaml`` files (published numbers
with their citation), validated against these dataclasses. ``evalsuite.results.paper`` puts
them next to our records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evalsuite.errors import ConfigError
from evalsuite.resources import paper_dir

PAPER_DIR = paper_dir()
KINDS = ("value", "pct_change", "abs_change", "text")


@dataclass
class PaperColumn:
    id: str = MISSING
    label: str = MISSING
    kind: str = "value"
    higher_is_better: Optional[bool] = None
    digits: Optional[int] = None  # digits after the point as printed (shown so: 123, not 123.0)


@dataclass
class PaperRow:
    id: str = MISSING
    label: str = MISSING
    values: Dict[str, Any] = field(default_factory=dict)
    printed: Dict[str, Any] = field(default_factory=dict)  # as printed, when rounded differently


@dataclass
class Paper:
    id: str = MISSING
    title: str = MISSING
    citation: str = MISSING
    protocol: str = ""
    notes: List[str] = field(default_factory=list)
    columns: List[PaperColumn] = field(default_factory=list)
    rows: List[PaperRow] = field(default_factory=list)

    def column(self, cid: str) -> PaperColumn:
        return _find(self.columns, cid, f"paper {self.id}: no column")

    def row(self, rid: str) -> PaperRow:
        return _find(self.rows, rid, f"paper {self.id}: no row")


def _find(items: Sequence[Any], ident: str, what: str) -> Any:
    for item in items:
        if item.id == ident:
            return item
    raise ConfigError(f"{what} {ident!r}; known: {', '.join(i.id for i in items)}")


def available_papers() -> list[str]:
    return sorted(p.stem for p in PAPER_DIR.glob("*.yaml"))


def load_paper(name: str) -> Paper:
    """Load and validate ``evalsuite/results/paper/<name>.yaml``."""
    path = PAPER_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no paper data {name!r} in {PAPER_DIR}; known: {', '.join(available_papers())}")
    try:
        paper = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Paper), OmegaConf.load(path)))
    except OmegaConfBaseException as e:
        raise ConfigError(f"paper data {path}: {e}") from e
    assert isinstance(paper, Paper)
    for col in paper.columns:
        if col.kind not in KINDS:
            raise ConfigError(f"paper data {path}: column {col.id} kind {col.kind!r}; choose from {KINDS}")
    return paper
