"""Paper tables: the runs evalsuite itself can make, beside the published numbers.

A paper's quality numbers come from its own trained weights under its own protocol (BK-SDM:
its distilled checkpoints, COCO-30K, PNDM 25 steps). Our ``(ours)`` column holds records of
exactly that, and stays ``n/m`` without them. What evalsuite can always make is the row's
architecture cut out of the base model's weights without training (**zero-shot**: the
``bk_sdm`` study, ``ablation=[preset_bk_sdm_small]``, or ``model=bk_sdm_small
model.path=<SD v1.5>``), and the same after ``recovery=kd`` (**recovered**). Those go in their
own columns, labelled so, one per protocol:

- under the paper's setting (the table's ``where``), with the paper's metric, they get a
  difference column (``ours − paper``) like ``(ours)``;
- under another setting (the shapes world on this machine) they are shown for the shape of
  the result only: the footer names each setting that differs from the paper's, and no
  difference to the published number is computed. When the column's metric was not
  measured there, a named analogue is used and put in the label (``fd_shapes`` for FID:
  a Frechet distance in another feature space, not FID).

The base row (the paper's un-compressed model) gets the base model's own record under the
same protocol, so the column reads as the study does: base, then each cut.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.results.baselines import model_group
from evalsuite.results.notes import Notes
from evalsuite.results.protocol import protocol_of
from evalsuite.results.store import ResultStore, get_field, matches
from evalsuite.results.tablebuild import Row, _digits, metric_groups
from evalsuite.config.tabledef import ColumnDef, TableDef, plain
from evalsuite.results.tablemodel import NOT_MEASURED, Cell, Column

Rec = Mapping[str, Any]
#: A column's metric -> metrics that stand in for it where it was not measured (in order).
ANALOGUES = {"fid_legacy": ("fid_clean", "fd_shapes"), "fid_clean": ("fid_legacy", "fd_shapes"),
             "clip_score": ("shapes_clip_score",)}
KINDS = ("zero-shot", "recovered")


def _specs(preset: str) -> list[dict[str, Any]] | None:
    """The preset's ablations as records store them (None: not a known preset)."""
    from evalsuite.ablations import spec_to_dict
    from evalsuite.models.presets import PRESETS, preset_specs

    return [spec_to_dict(s) for s in preset_specs(preset)] if preset in PRESETS else None


def _ablations(rec: Rec) -> list[dict[str, Any]]:
    return [dict(a) for a in (rec.get("model") or {}).get("ablations") or []]


def _derived(rec: Rec) -> bool:
    return (rec.get("model") or {}).get("unet_origin") == "derived_from_base"


def own_weights(records: Sequence[Rec]) -> list[Rec]:
    """Records of a row's own weights: without those a preset cut from SD v1.5 on load."""
    return [r for r in records if not _derived(r)]


def zero_shot_sources(store: ResultStore, tdef: TableDef) -> list[dict[str, list[Rec]]]:
    """For each row of ``tdef``: kind ("zero-shot", "recovered") -> its records, oldest first,
    from the whole store (any protocol; generation runs only)."""
    gen = [r for r in store.filter() if r.get("task", "generation") != "reconstruction"]
    wanted = []
    for rdef in tdef.rows:
        specs = _specs(rdef.preset) if rdef.preset and not plain(rdef.ablations) else None
        wanted.append((rdef.preset, specs))
    cut = {str(s) for _, s in wanted if s}
    groups = {model_group(r) for r in gen if _ablations(r) and str(_ablations(r)) in cut}
    out = []
    for preset, specs in wanted:
        if specs is None:
            out.append({k: [] for k in KINDS})
            continue
        if specs:  # a cut: its ablations on any base, or the preset cut on load
            recs = [r for r in gen if _ablations(r) == specs or
                    (_derived(r) and (r.get("model") or {}).get("preset") == preset)]
        else:  # the base row: the base model of those cuts, as it is
            recs = [r for r in gen if not _ablations(r) and not _derived(r)
                    and model_group(r) in groups]
        out.append({"zero-shot": [r for r in recs if not r.get("recovery")],
                    "recovered": [r for r in recs if r.get("recovery")]})
    if not any(src[k] for src in out for k in KINDS):
        return []
    return out


def _metric_used(col: ColumnDef, rows: Sequence[Row]) -> str | None:
    """The column's metric if any row's records have it, else its first analogue that does."""
    for name in (col.metric, *ANALOGUES.get(col.metric or "", ())):
        if any(name in (r.get("metrics") or {}) for row in rows for r in row.records):
            return name
    return None


def _differences(recs: Sequence[Rec | None], where: Mapping[str, Any]) -> list[str]:
    """'dataset=shapes (paper: coco2014_30k)' for each field of ``where`` a record misses."""
    out: list[str] = []
    for rec in recs:
        if rec is None:
            continue
        for key, want in where.items():
            if not matches(rec, {key: want}):
                text = f"{key}={get_field(rec, key)} (paper: {want})"
                if text not in out:
                    out.append(text)
    return out


def _groups(col: ColumnDef, per_row: Sequence[list[Rec]]) -> list[tuple[str, Any, list[Rec | None]]]:
    """(metric, comparability key, each row's latest record) for every protocol of the rows'
    records: the column's metric where it was measured, else its first analogue there."""
    by_protocol: dict[str, list[list[Rec]]] = {}
    for i, recs in enumerate(per_row):
        for rec in recs:
            by_protocol.setdefault(protocol_of(rec).key, [[] for _ in per_row])[i].append(rec)
    out = []
    for recs_by_row in by_protocol.values():
        rows = [Row("", None, recs) for recs in recs_by_row]
        metric = _metric_used(col, rows)
        if metric is not None:
            out += [(metric, key, recs) for key, recs in metric_groups(metric, rows)]
    return out


def zero_shot_columns(col: ColumnDef, label: str, theirs: list[Cell] | None,
                      sources: Sequence[Mapping[str, list[Rec]]], tdef: TableDef,
                      notes: Notes, diff: Any) -> list[tuple[Column, list[Cell]]]:
    """``(ours, zero-shot)`` and ``(ours, recovered)`` columns of metric column ``col``, one
    per protocol, each with a difference column when measured the paper's way."""
    where = dict(plain(tdef.where) or {})
    out: list[tuple[Column, list[Cell]]] = []
    for kind in KINDS:
        groups = _groups(col, [list(src.get(kind) or []) for src in sources])
        for metric, key, recs in groups:
            same = metric == col.metric
            digits = col.round if same else _digits(
                [abs(r["metrics"][metric]["value"] or 0.0) for r in recs if r is not None])
            cells = [Cell(mark=NOT_MEASURED) if r is None else
                     Cell(r["metrics"][metric]["value"] * (col.scale if same else 1.0)) for r in recs]
            for r in recs:
                if r is not None:
                    notes.use(r)
            named = "" if same else f": {metric}"
            tag = f" [{notes.label_of_key(key.protocol)}]" if len(groups) > 1 else ""
            column = Column(f"{label} (ours, {kind}{named}){tag}", digits, col.thousands)
            out.append((column, cells))
            differs = _differences(recs, where)
            if theirs is not None and not differs and same:
                out += diff(theirs, cells, tdef, column)
            elif differs:
                notes.add(f"{column.label}: measured outside the paper's setting ("
                          + "; ".join(differs) + "), so not comparable with the published "
                          "numbers: no difference is shown."
                          + (f" {metric} stands in for {col.metric}, which was not measured "
                             "there; it is not the same metric." if named else ""))
        if groups:
            notes.add(f"(ours, {kind}): the row's architecture cut out of the base model's "
                      "weights " + ("without training" if kind == "zero-shot" else "and then "
                                    "fine-tuned (recovery=kd)") + " (evalsuite run -m -cn "
                      "bk_sdm, or model=<preset> model.path=<SD v1.5>); the base row shows the "
                      "base model itself. Rows of one architecture show the same record.")
    return out


def missing_setting_note(tdef: TableDef, ours_missing: bool, notes: Notes) -> None:
    """Say what an ``(ours)`` n/m cell needs: the row's own weights, the paper's setting."""
    where = dict(plain(tdef.where) or {})
    if ours_missing and where:
        setting = ", ".join(f"{k}={v}" for k, v in where.items())
        notes.add(f"(ours) n/m: no record of the row's own weights under the paper's setting "
                  f"({setting}); a zero-shot run is not the paper's model, so it never fills "
                  "(ours).")
