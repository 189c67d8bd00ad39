"""Paper tables: published numbers (with citations) next to ours, with the difference.

Published numbers are data, shipped in ``evalsuite/results/paper/<id>.yaml`` beside this
module (installed with the code that reads them, found whatever the results folder; never
edited except to fix a transcription). A table definition in ``conf/table/`` maps each paper
row to our records and architecture, and each paper column to a metric, a record field or an
architecture figure. Every paper cell is shown; ours is a number, ``n/m`` (no matching
record yet) or ``n/a`` (evalsuite cannot measure it, with the reason in the footer).

Paper column kinds: ``value`` (an absolute number), ``pct_change`` / ``abs_change`` (the
effect of the row's change against its baseline; ours is computed the same way from the
row's records and ``baseline_where`` records, or from its architecture with and without the
row's ablations), ``text`` (shown as published).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from evalsuite.results.arch import arch_figures
from evalsuite.results.notes import Notes
from evalsuite.results.paper_zeroshot import (missing_setting_note, own_weights, zero_shot_columns,
                                               zero_shot_sources)
from evalsuite.results.protocol import CellKey
from evalsuite.results.store import ResultStore, get_field, matches
from evalsuite.results.tablebuild import Row, _scale, assemble, column_label, metric_groups, row_arch
from evalsuite.config.paper import Paper, PaperColumn, PaperRow, load_paper
from evalsuite.config.tabledef import ColumnDef, TableDef, plain
from evalsuite.results.tablemodel import NOT_MEASURABLE, NOT_MEASURED, NOT_PUBLISHED, Cell, Column, Table


@dataclass
class PaperTableRow(Row):
    prow: PaperRow | None = None
    base_records: list = field(default_factory=list)


def _normalised_ablations(ablations: list[Any]) -> list[dict[str, Any]]:
    """Spec dicts with every parameter spelt out, as records store them."""
    from evalsuite.ablations import spec_from_dict, spec_to_dict

    return [spec_to_dict(spec_from_dict(a)) for a in ablations]


def paper_rows(store: ResultStore, tdef: TableDef, paper: Paper) -> list[PaperTableRow]:
    """Each row with its records and (for change columns) its baseline records."""
    records = store.filter(plain(tdef.where))
    rows = []
    for rdef in tdef.rows:
        prow = paper.row(rdef.paper) if rdef.paper else None
        where, abl = dict(plain(rdef.where)), plain(rdef.ablations)
        if abl:
            where["model.ablations"] = _normalised_ablations(abl)
        elif not {"model.ablations", "ablations"} & set(where):
            where["model.ablations"] = []  # a row without ablations is the model as it is
        base_where = plain(rdef.baseline_where) if rdef.baseline_where is not None else \
            {**plain(rdef.where), "model.ablations": []}
        label = rdef.label or (prow.label if prow else rdef.preset) or "?"
        # (ours) is the row's own weights: a preset cut from SD v1.5 on load is zero-shot
        rows.append(PaperTableRow(label, rdef, own_weights([r for r in records if matches(r, where)]), prow,
                                  [r for r in records if matches(r, base_where)]))
    return rows


def _theirs(row: PaperTableRow, pcol: PaperColumn) -> Cell:
    value = row.prow.values.get(pcol.id) if row.prow else None
    return Cell(mark=NOT_PUBLISHED) if value is None else Cell(value)


def _change(variant: float | None, base: float | None, kind: str) -> float | None:
    if variant is None or base is None or (kind == "pct_change" and base == 0):
        return None
    return variant - base if kind == "abs_change" else 100.0 * (variant - base) / abs(base)


def _arch_cells(col: ColumnDef, kind: str, rows: Sequence[PaperTableRow], notes: Notes) -> list[Cell]:
    out = []
    for row in rows:
        arch = row_arch(row) if row.rdef is not None and row.rdef.preset else None
        if arch is None:
            reason = (row.rdef.unmeasurable if row.rdef else None) or "no architecture preset."
            notes.mark(NOT_MEASURABLE, row.label, reason)
            out.append(Cell(mark=NOT_MEASURABLE))
            continue
        value = _scale(arch_figures(*arch)[col.arch], col.scale)
        if kind != "value":
            value = _change(value, _scale(arch_figures(arch[0])[col.arch], col.scale), kind)
        out.append(Cell(value))
    notes.add("Our architecture figures are regenerated from the configs on the meta device (no "
              "weights)." + (" A change is measured against the row's preset without its "
                             "ablations." if kind != "value" else ""))
    return out


def _metric_groups(col: ColumnDef, kind: str, rows: Sequence[PaperTableRow],
                   notes: Notes) -> list[tuple[CellKey | None, list[Cell]]]:
    """Our metric cells, one list per comparability key (see ``tablebuild.metric_groups``)."""
    use_base = kind == "value" and col.of == "baseline"
    pseudo = [Row(r.label, r.rdef, r.base_records if use_base else r.records) for r in rows]
    groups = metric_groups(col.metric, pseudo) or [(None, [None] * len(rows))]
    out = []
    for key, recs in groups:
        cells = []
        for row, rec in zip(rows, recs):
            if row.rdef is not None and row.rdef.unmeasurable:
                notes.mark(NOT_MEASURABLE, row.label, row.rdef.unmeasurable)
                cells.append(Cell(mark=NOT_MEASURABLE))
                continue
            base = _latest_with_key(row.base_records, col.metric, key) if kind != "value" else None
            if rec is None or (kind != "value" and base is None):
                notes.mark(NOT_MEASURED)
                cells.append(Cell(mark=NOT_MEASURED))
                continue
            value = rec["metrics"][col.metric]["value"] * col.scale
            for used in (rec, base):
                if used is not None:
                    notes.use(used)
            if kind != "value":
                value = _change(value, base["metrics"][col.metric]["value"] * col.scale, kind)
            ci = rec["metrics"][col.metric].get("ci") if kind == "value" else None
            cells.append(Cell(value, (ci["low"] * col.scale, ci["high"] * col.scale) if ci else None))
        out.append((key, cells))
    return out


def _latest_with_key(records: Sequence[Any], metric: str, key: CellKey | None) -> Any:
    hits = [r for r in records if metric in (r.get("metrics") or {}) and CellKey.of(r, metric) == key]
    return hits[-1] if hits else None


def _ours(col: ColumnDef, label: str, kind: str, rows: Sequence[PaperTableRow],
          notes: Notes) -> list[tuple[str, list[Cell]]]:
    """(label suffix, cells) of our column(s): one per protocol for metrics, else one."""
    if col.unmeasurable or not (col.arch or col.field or col.metric):
        reason = col.unmeasurable or "no evalsuite measurement is mapped to this column."
        notes.mark(NOT_MEASURABLE, label, reason)
        return [("", [Cell(mark=NOT_MEASURABLE) for _ in rows])]
    if col.arch:
        return [("", _arch_cells(col, kind, rows, notes))]
    if col.field:
        cells = []
        for row in rows:
            value = get_field(row.records[-1], col.field) if row.records else None
            cells.append(Cell(value * col.scale) if isinstance(value, (int, float)) else Cell(mark=NOT_MEASURED))
        return [("", cells)]
    groups = _metric_groups(col, kind, rows, notes)
    if len(groups) == 1:
        return [("", groups[0][1])]
    notes.add("Our values measured under different protocols are in separate columns ([Pn]).")
    return [(f" {notes.label_of_key(k.protocol)}", cells) for k, cells in groups]


def _diff(theirs: list[Cell], ours: list[Cell], tdef: TableDef, column: Column) -> list[tuple[Column, list[Cell]]]:
    out = []
    for kind in tdef.deltas:
        cells = []
        for t, o in zip(theirs, ours):
            if t.number is None or o.number is None or (kind == "pct" and t.number == 0):
                cells.append(Cell())
            else:
                d = o.number - t.number
                cells.append(Cell(int(d) if isinstance(o.value, int) and isinstance(t.value, int) else d)
                             if kind == "abs" else Cell(100.0 * d / abs(t.number)))
        label = column.label.replace(" (ours", " (ours − paper" + (", %" if kind == "pct" else ""), 1)
        out.append((Column(label, column.digits if kind == "abs" else tdef.pct_round,
                           column.thousands, signed=True, suffix="%" if kind == "pct" else "",
                           kind="delta"), cells))
    return out


def build_paper_table(store: ResultStore, tdef: TableDef, name: str) -> Table:
    """Theirs, ours and the difference for every paper column; our extra columns after."""
    paper = load_paper(tdef.paper)
    notes = Notes()
    rows = paper_rows(store, tdef, paper)
    sources = zero_shot_sources(store, tdef)  # what evalsuite can make: zero-shot, recovered
    ours_missing = False
    columns: list[tuple[Column, list[Cell]]] = [(Column("model", kind="label"), [Cell(r.label) for r in rows])]
    for col in tdef.columns:
        pcol = paper.column(col.paper) if col.paper else None
        label = col.label or (pcol.label if pcol else column_label(col))
        theirs = [_theirs(r, pcol) for r in rows] if pcol else None
        if pcol is not None and pcol.kind == "text":
            columns.append((Column(f"{label} (paper)"), theirs))
            continue
        if theirs is not None:
            digits = pcol.digits if pcol.digits is not None else col.round
            columns.append((Column(f"{label} (paper)", digits, col.thousands), theirs))
        kind = pcol.kind if pcol else ("pct_change" if col.of == "change" else "value")
        for suffix, ours in _ours(col, label, kind, rows, notes):
            column = Column(f"{label} (ours{suffix})", col.round, col.thousands)
            columns.append((column, ours))
            if theirs is not None and not col.unmeasurable:  # n/a stays n/a: no empty diff column
                columns += _diff(theirs, ours, tdef, column)
            ours_missing |= bool(col.metric) and any(c.mark == NOT_MEASURED for c in ours)
        if col.metric and kind == "value" and col.of == "variant" and sources:
            columns += zero_shot_columns(col, label, theirs, sources, tdef, notes, _diff)
    missing_setting_note(tdef, ours_missing, notes)
    if any(c.mark == NOT_PUBLISHED for _, cells in columns for c in cells):
        notes.mark(NOT_PUBLISHED)
    _paper_notes(paper, tdef, rows, notes)
    return assemble(name, tdef, columns, notes)


def _paper_notes(paper: Paper, tdef: TableDef, rows: Sequence[PaperTableRow], notes: Notes) -> None:
    notes.add(f"Paper: {paper.citation}")
    if paper.protocol:
        notes.add(f"Paper protocol: {paper.protocol}")
    for line in paper.notes:
        notes.add(line)
    shown = {c.paper: c.label or paper.column(c.paper).label for c in tdef.columns if c.paper}
    for cid, label in shown.items():
        printed = [f"{r.prow.printed[cid]} ({r.label})" for r in rows if r.prow and cid in r.prow.printed]
        if printed:
            notes.add(f"{label} as printed: {', '.join(printed)}.")
    if any(not c.paper for c in tdef.columns):
        notes.add("Columns with only (ours) are not in the paper.")
