"""Per-category tables: a metric's per-image values averaged per prompt category, with
bootstrap confidence intervals.

Records of prompt sets with categories (PartiPrompts' ``Category``, a world's ``category``
prompt meta) keep each per-image metric's values and the category of every image
(``evaluate.perimage``). For every protocol and metric with such values, one table: a row per
category (then "all"), the number of images, and per variant the mean of that category's
per-image values ± the half-width of a percentile bootstrap interval over the category's
images (``metrics.bootstrap.mean_ci``: 1000 resamples, seed 0, 95%). The "all" row's mean is
the metric's recorded value (PSNR: over finite values, as the metric does).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np

from evalsuite.metrics.bootstrap import mean_ci
from evalsuite.results.notes import Notes
from evalsuite.results.protocol import protocol_of
from evalsuite.results.store import ResultStore
from evalsuite.results.tablebuild import Row, resolve_rows
from evalsuite.config.tabledef import TableDef
from evalsuite.results.tablemodel import NOT_MEASURED, Cell, Column, Table

Rec = Mapping[str, Any]
N_RESAMPLES, SEED, LEVEL = 1000, 0, 0.95
ALL = "all"


def per_category(block: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Category -> its images' values (NaN for non-finite ones), from a ``per_image`` entry."""
    cats = block.get("categories") or {}
    names, of = cats.get("names") or [], cats.get("of") or []
    values = np.array([np.nan if v is None else v for v in block.get("values") or []], float)
    if not names or len(of) != len(values):
        return {}
    idx = np.asarray(of)
    return {name: values[idx == k] for k, name in enumerate(names)}


def _has_categories(rec: Rec, metric: str) -> bool:
    block = ((rec.get("metrics") or {}).get(metric) or {}).get("per_image") or {}
    return bool(block.get("categories"))


def _latest(row: Row, metric: str, key: str) -> Rec | None:
    recs = [r for r in row.records if _has_categories(r, metric) and protocol_of(r).key == key]
    return recs[-1] if recs else None


def _cell(values: np.ndarray | None, digits: int) -> Cell:
    if values is None or not np.isfinite(values).any():
        return Cell(mark=NOT_MEASURED)
    mean, lo, hi = mean_ci(values, N_RESAMPLES, SEED, LEVEL)
    return Cell(mean, (lo, hi))


def category_table(rows: Sequence[Row], metric: str, key: str, name: str, title: str) -> Table | None:
    """The per-category table of ``metric`` under protocol ``key`` (None: no row has values)."""
    notes = Notes()
    latest = [_latest(r, metric, key) for r in rows]
    used = [(row, rec) for row, rec in zip(rows, latest) if rec is not None]
    if not used:
        return None
    split = [per_category(rec["metrics"][metric]["per_image"]) for _, rec in used]
    cats = sorted({c for s in split for c in s})
    digits = 2 if metric.startswith(("psnr", "clip")) and abs(
        used[0][1]["metrics"][metric]["value"] or 0) > 1 else 4
    columns = [(Column("category", kind="label"), [Cell(c) for c in cats] + [Cell(ALL)]),
               (Column("images"), [Cell(int(max(len(s.get(c, [])) for s in split))) for c in cats]
                + [Cell(int(max(sum(len(v) for v in s.values()) for s in split)))])]
    for (row, rec), s in zip(used, split):
        notes.use(rec)
        everything = np.concatenate(list(s.values())) if s else None
        cells = [_cell(s.get(c), digits) for c in cats] + [_cell(everything, digits)]
        columns.append((Column(row.label, digits), cells))
    notes.add(f"Mean of the per-image {metric} values of each category; ± half-width of the "
              f"{int(LEVEL * 100)}% percentile bootstrap interval ({N_RESAMPLES} resamples of the "
              f"category's images, seed {SEED}). Categories with few images have wide intervals.")
    for row, _ in used:
        if row.variant is not None:
            notes.add(f"{row.label} = {row.variant.spec}.")
    body = [[cells[i] for _, cells in columns] for i in range(len(cats) + 1)]
    return Table(name, title, [c for c, _ in columns], body, notes.render(),
                 sorted(notes.records), notes.folds())


def category_tables(store: ResultStore, tdef: TableDef, name: str) -> list[Table]:
    """Every per-category table of the records a definition selects (see the module docstring)."""
    rows = [r for r in resolve_rows(store, tdef) if r.records]
    found: dict[tuple[str, str], str] = {}  # (protocol key, metric) -> protocol summary
    for row in rows:
        for rec in row.records:
            for metric in sorted(rec.get("metrics") or {}):
                if _has_categories(rec, metric):
                    p = protocol_of(rec)
                    found.setdefault((p.key, metric), p.summary())
    several = len({k for k, _ in found}) > 1
    out = []
    for i, ((key, metric), summary) in enumerate(found.items()):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", metric)
        title = f"{tdef.title}: {metric} per category" + (f" — {summary}" if several else "")
        table = category_table(rows, metric, key, f"{name}-categories-{slug}"
                               + (f"-{i + 1}" if several else ""), title)
        if table is not None:
            out.append(table)
    return out


__all__ = ["category_table", "category_tables", "per_category"]
