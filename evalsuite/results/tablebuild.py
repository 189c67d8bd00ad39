"""Build a ``Table`` from a ``TableDef`` and the results store.

Rules that keep a table honest:
- a metric column holds values of one comparability key only (protocol + metric identity,
  see ``protocol.py``); values under other keys go to extra columns labelled ``[P2]``,
  ``[v2]``..., never into the same one;
- a row is one variant (``identity.py``: model identity + full ablation specs) with one set of
  sampler settings, so two different variants never share a row; its label is short, its full
  spec is a footnote (and the HTML tooltip);
- a row shows its most recent record for each key; the footer names every record used, and
  lists the older records of a row that no cell uses (superseded reruns);
- deltas are computed from unrounded values, against the value of the row's own baseline
  (the baseline of the same model, ``baselines.py``) in the same column, and left empty when
  the baseline has no value there; no row is compared with itself;
- a value the metric marks unreliable (``reliable: false``, FID from n <= 2048 images) carries
  a dagger, and the footer says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from evalsuite.results.baselines import baseline_note, baseline_rows
from evalsuite.results.arch import arch_figures, arch_of_record, counted
from evalsuite.results.identity import Variant, distinct_labels, variant_of
from evalsuite.results.notes import Notes
from evalsuite.results.protocol import CellKey, metric_identity, protocol_of
from evalsuite.results.store import VARIANT_SAMPLER, ResultStore, get_field, matches
from evalsuite.config.tabledef import ColumnDef, RowDef, TableDef, plain
from evalsuite.results.tablemodel import NOT_MEASURABLE, NOT_MEASURED, UNRELIABLE, Cell, Column, Table

Rec = Mapping[str, Any]


@dataclass
class Row:
    label: str
    rdef: RowDef | None
    records: list[Rec]  # oldest first
    # rows of a variants table (no definition); keyword-only: subclasses add positional fields
    variant: Variant | None = field(default=None, kw_only=True)


def resolve_rows(store: ResultStore, tdef: TableDef) -> list[Row]:
    """The listed rows (each with its matching records), or one row per variant."""
    records = store.filter(plain(tdef.where))
    if tdef.rows:
        return [Row(r.label or r.preset or f"row {i + 1}", r,
                    [x for x in records if matches(x, plain(r.where))])
                for i, r in enumerate(tdef.rows)]
    groups: dict[tuple, list[Rec]] = {}
    for rec in records:
        groups.setdefault(variant_key(rec), []).append(rec)
    keys = [variant_key(recs[-1]) for recs in groups.values()]  # labelled as the latest run
    return [Row(label, None, recs, variant=key[0])
            for label, key, recs in zip(variant_labels(keys), keys, groups.values())]


def variant_key(rec: Rec, ignore: Sequence[str] = ()) -> tuple:
    """(variant, sampler settings...): what tells two rows apart (``ignore``: settings left
    out, e.g. guidance_scale for the curves of a CFG sweep)."""
    sampler = rec.get("sampler") or {}
    return (variant_of(rec), *("" if k in ignore else str(sampler.get(k)) for k in VARIANT_SAMPLER))


def variant_labels(keys: list[tuple]) -> list[str]:
    """Labels of ``variant_key``s: distinct per variant, with the differing sampler settings
    added where one variant has several."""
    variants = list(dict.fromkeys(k[0] for k in keys))
    names = dict(zip(variants, distinct_labels(variants)))
    out = []
    for key in keys:
        same = [k for k in keys if k[0] == key[0]]
        diff = [i for i in range(1, len(key)) if len({k[i] for k in same}) > 1]
        extra = ", ".join(f"{VARIANT_SAMPLER[i - 1]}={key[i]}" for i in diff)
        out.append(f"{names[key[0]]} ({extra})" if extra else names[key[0]])
    return out


def auto_columns(rows: Sequence[Row]) -> list[ColumnDef]:
    """Every metric the rows' records carry (sorted), then the UNet parameter count."""
    names = sorted({m for row in rows for rec in row.records for m in rec.get("metrics") or {}})
    cols = []
    for n in names:
        values = [abs(rec["metrics"][n].get("value") or 0.0) for row in rows for rec in row.records
                  if n in (rec.get("metrics") or {})]
        cols.append(ColumnDef(metric=n, round=_digits(values)))
    return cols + [ColumnDef(field="model.unet_params", label="UNet params", thousands=True,
                             delta=True)]


def _digits(values: Sequence[float], significant: int = 4) -> int:
    """Digits after the point that show the largest finite value with 4 significant digits."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    return max(0, significant - 1 - math.floor(math.log10(max(finite)))) if finite else 2


def column_label(col: ColumnDef) -> str:
    return col.label or col.metric or col.field or col.arch or "?"


def metric_groups(metric: str, rows: Sequence[Row]) -> list[tuple[CellKey, list[Rec | None]]]:
    """For each comparability key of ``metric`` (first seen first): each row's latest record."""
    groups: dict[CellKey, list[Rec | None]] = {}
    for i, row in enumerate(rows):
        for rec in row.records:
            if metric in (rec.get("metrics") or {}):
                groups.setdefault(CellKey.of(rec, metric), [None] * len(rows))[i] = rec
    return list(groups.items())


def metric_cell(rec: Rec | None, metric: str, scale: float, notes: Notes) -> Cell:
    if rec is None:
        notes.mark(NOT_MEASURED)
        return Cell(mark=NOT_MEASURED)
    notes.use(rec)
    m = rec["metrics"][metric]
    ci = m.get("ci")
    interval = (ci["low"] * scale, ci["high"] * scale) if ci and ci.get("low") is not None else None
    cell = Cell(m["value"] * scale if m.get("value") is not None else None, interval)
    settings = m.get("settings") or {}
    if settings.get("reliable") is False:  # e.g. FID from fewer images than feature dims
        why = settings.get("unreliable_because") or ["the metric says so"]
        cell.flag = UNRELIABLE
        notes.add(f"{UNRELIABLE} unreliable {metric}: " + "; ".join(map(str, why)) + ".")
    return cell


def split_labels(label: str, keys: Sequence[CellKey], notes: Notes) -> list[str]:
    """One label per key: ``fid``, or ``fid [P2]`` / ``fid [P1 v2]`` when a column splits."""
    if len(keys) == 1:
        return [label]
    out = []
    for k in keys:
        parts = [notes.label_of_key(k.protocol)] if len({x.protocol for x in keys}) > 1 else []
        same = [x for x in keys if x.protocol == k.protocol]
        if len(same) > 1:
            distinct_versions = len({x.version for x in same}) == len(same)
            parts.append(f"v{k.version}" if distinct_versions else f"v{k.version}:{k.metric[:6]}")
        out.append(f"{label} [{' '.join(parts)}]")
    return out


def metric_columns(col: ColumnDef, rows: Sequence[Row], notes: Notes) -> list[tuple[Column, list[Cell]]]:
    """A metric column, split in one column per comparability key."""
    label = column_label(col)
    groups = metric_groups(col.metric, rows)
    if not groups:
        notes.mark(NOT_MEASURED)
        return [(Column(label, col.round, col.thousands), [Cell(mark=NOT_MEASURED) for _ in rows])]
    cells = [[metric_cell(rec, col.metric, col.scale, notes) for rec in recs] for _, recs in groups]
    labels = split_labels(label, [k for k, _ in groups], notes)
    if len({k.protocol for k, _ in groups}) > 1:
        notes.add("A column labelled [Pn] holds values measured under protocol Pn only: values "
                  "measured under different protocols never share a column.")
    for lab, (key, recs) in zip(labels, groups):
        if sum(k.protocol == key.protocol for k, _ in groups) > 1:  # same protocol, other metric
            ident = metric_identity(next(r for r in recs if r is not None), col.metric)
            notes.add(f"{lab}: {col.metric} version {ident['version']}, params "
                      f"{ident['params'] or '{}'}, weights {ident['weights'] or '-'} (values of "
                      "another version, parameters or weights are in another column).")
    return [(Column(lab, col.round, col.thousands, higher_is_better=_direction(recs, col.metric)), c)
            for lab, c, (_, recs) in zip(labels, cells, groups)]


def _direction(recs: Sequence[Rec | None], metric: str) -> bool | None:
    """Whether higher values of ``metric`` are better, as its records say (None: unknown)."""
    for rec in recs:
        if rec is not None and "higher_is_better" in rec["metrics"][metric]:
            return bool(rec["metrics"][metric]["higher_is_better"])
    return None


def field_cells(col: ColumnDef, rows: Sequence[Row], notes: Notes) -> list[Cell]:
    """A record field from each row's latest record (scaled when numeric)."""
    out = []
    for row in rows:
        rec = row.records[-1] if row.records else None
        value = get_field(rec, col.field) if rec is not None else None
        if value is None:
            notes.mark(NOT_MEASURED)
            out.append(Cell(mark=NOT_MEASURED))
            continue
        notes.use(rec, metric=False)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        out.append(Cell(_scale(value, col.scale) if numeric else str(value)))
    return out


def _scale(value: float | int, scale: float) -> float | int:
    return value if scale == 1.0 else value * scale


def row_arch(row: Row) -> tuple[str, list[dict[str, Any]]] | None:
    """A row's architecture: its definition's preset + ablations, else its latest record's."""
    if row.rdef is not None and row.rdef.preset:
        return row.rdef.preset, [dict(a) for a in plain(row.rdef.ablations)]
    return arch_of_record(row.records[-1]) if row.records else None


def arch_cells(col: ColumnDef, rows: Sequence[Row], notes: Notes) -> list[Cell]:
    """Parameters or GFLOPs regenerated from each row's architecture on the meta device."""
    out = []
    for row in rows:
        arch = row_arch(row)
        if arch is None:
            notes.mark(NOT_MEASURABLE, column_label(col),
                       "architecture not known by name (a checkpoint without a preset).")
            out.append(Cell(mark=NOT_MEASURABLE))
            continue
        out.append(Cell(_scale(arch_figures(*arch)[col.arch], col.scale)))
    notes.add("Architecture columns are regenerated from the configs on the meta device (no "
              "weights): UNet parameters; GFLOPs of one UNet forward at the base config's latent "
              f"size, batch 1, 77 tokens. {counted()}" if col.arch == "gflops" else
              "Architecture columns are regenerated from the configs on the meta device (no weights).")
    return out


def delta_columns(column: Column, cells: list[Cell], bases: Sequence[int | None],
                  tdef: TableDef) -> list[tuple[Column, list[Cell]]]:
    """Δ (absolute) and Δ% columns, each row against its own baseline row ``bases[i]``
    (``baselines.py``); empty cells when either value is missing or non-finite, or the row
    has no baseline; no columns when no row has one."""
    if all(b is None for b in bases) or not tdef.deltas:
        return []
    out = []
    for kind in tdef.deltas:
        vals = [_delta(c, cells[b] if b is not None else None, kind) for c, b in zip(cells, bases)]
        if kind == "abs":
            out.append((Column(f"Δ {column.label}", column.digits, column.thousands, signed=True,
                               kind="delta", higher_is_better=column.higher_is_better), vals))
        else:
            out.append((Column(f"Δ% {column.label}", tdef.pct_round, signed=True, suffix="%",
                               kind="delta_pct", higher_is_better=column.higher_is_better), vals))
    return out


def _delta(cell: Cell, base: Cell | None, kind: str) -> Cell:
    ref = base.number if base is not None else None
    # A non-finite side (PSNR of identical images is inf) has no meaningful difference.
    if (ref is None or cell.number is None or not math.isfinite(ref)
            or not math.isfinite(cell.number) or (kind == "pct" and ref == 0)):
        return Cell()
    d = cell.number - ref
    if kind == "abs" and isinstance(cell.value, int) and isinstance(base.value, int):
        d = int(cell.value - base.value)  # counts stay exact integers
    return Cell(d if kind == "abs" else 100.0 * d / abs(ref))


def baseline_indices(tdef: TableDef, rows: Sequence[Row], notes: Notes) -> list[int | None]:
    """Each row's baseline row (``baselines.baseline_rows``), with the footer line."""
    wanted = plain(tdef.baseline)
    labels = [r.label for r in rows]
    bases = baseline_rows(wanted, labels, [r.records for r in rows])
    line = baseline_note(bases, labels, wanted)
    if line:
        notes.add(line)
    return bases


def build_table(store: ResultStore, tdef: TableDef, name: str) -> Table:
    """The generic table: rows x (value column [+ Δ, Δ%]) with its footer."""
    notes = Notes()
    rows = resolve_rows(store, tdef)
    bases = baseline_indices(tdef, rows, notes)
    columns: list[tuple[Column, list[Cell]]] = [
        (Column("variant", kind="label"),
         [Cell(r.label, tip=r.variant.spec if r.variant else None) for r in rows])]
    for col in tdef.columns or auto_columns(rows):
        if col.metric:
            parts = metric_columns(col, rows, notes)
        elif col.unmeasurable:
            notes.mark(NOT_MEASURABLE, column_label(col), col.unmeasurable)
            parts = [(Column(column_label(col)), [Cell(mark=NOT_MEASURABLE) for _ in rows])]
        else:
            cells = field_cells(col, rows, notes) if col.field else arch_cells(col, rows, notes)
            parts = [(Column(column_label(col), col.round, col.thousands), cells)]
        for column, cells in parts:
            columns.append((column, cells))
            if col.delta:
                columns += delta_columns(column, cells, bases, tdef)
    variant_notes(rows, notes)
    return assemble(name, tdef, columns, notes)


def variant_notes(rows: Sequence[Row], notes: Notes) -> None:
    """Footnotes: each variant row's full spec; how many older records no cell shows."""
    for row in rows:
        if row.variant is not None:
            notes.add(f"{row.label} = {row.variant.spec}.")
    older = [r for row in rows for r in row.records if r["run_id"] not in notes.records]
    if older:  # their ids are in tables/runs.md, under "Superseded"
        notes.add(f"{len(older)} older record(s) of these rows superseded by newer ones (not shown).")


def assemble(name: str, tdef: TableDef, columns: list[tuple[Column, list[Cell]]], notes: Notes) -> Table:
    """Columns -> rows, sorted as the definition asks."""
    n = len(columns[0][1]) if columns else 0
    rows = [[cells[i] for _, cells in columns] for i in range(n)]
    if tdef.sort_by:
        labels = [c.label for c, _ in columns]
        if tdef.sort_by not in labels:
            notes.add(f"sort_by: no column '{tdef.sort_by}'; rows kept in definition order.")
        else:
            idx = labels.index(tdef.sort_by)
            present = [r for r in rows if r[idx].number is not None]
            missing = [r for r in rows if r[idx].number is None]
            rows = sorted(present, key=lambda r: r[idx].number, reverse=tdef.descending) + missing
    return Table(name, tdef.title, [c for c, _ in columns], rows, notes.render(),
                 sorted(notes.records), notes.folds())


def build_tables(store: ResultStore, tdef: TableDef, name: str) -> list[Table]:
    """One table section per protocol (``protocol.py``), each built like ``build_table``
    from that protocol's records only: values of different protocols never sit side by side.
    A single protocol gives one table named ``name``; several give ``<name>-p1``, ``-p2``...,
    titled with a one-line summary of their protocol."""
    records = store.filter(plain(tdef.where))
    by_protocol: dict[str, list[Rec]] = {}
    for rec in records:
        by_protocol.setdefault(protocol_of(rec).key, []).append(rec)
    if len(by_protocol) <= 1:
        return [build_table(store, tdef, name)]
    out = []
    for i, recs in enumerate(by_protocol.values()):
        table = build_table(ResultStore(recs), tdef, f"{name}-p{i + 1}")
        table.title = f"{tdef.title} — P{i + 1}: {protocol_of(recs[0]).summary()}"
        out.append(table)
    return out
