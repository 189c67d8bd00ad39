"""The runs table (one row per record, regenerated after every run) and named tables.

``write_tables`` rebuilds ``tables/runs.{csv,md}`` from ``results/records/``;
``build_named_tables`` builds a definition from ``conf/table/`` (see ``tablebuild``, ``paper``).

Runs table columns: run id and time, the variant (``identity.py``: a label that differs
between any two different variants), the config choice of each group, the sampler settings
that change numbers, the dataset and its size, the protocol's name (with
``(modified: ...)`` when a run departed from a preset) and key (``protocol.py``), then one
column per metric named ``<metric>`` (or ``<metric>/<pairing>``) with the metric's version in
a ``@v`` suffix, so values from different metric versions never share a column; when the
records span several protocols, the protocol key is added too (``fid_clean@v1 [3f2a9c1b04de]``).
When any record is a decoder evaluation (``task=reconstruction``, ``evalsuite.tasks.reconstruct``),
``task`` and ``decoder`` columns say which rows are and which decoder each scored; such a
record has no dataset, sampler or samples section, and those cells stay empty.

A rerun (same variant, same ``config_hash``) adds a record, never a row to ``runs.md``: the
newest record is the row and the older ones are listed under "Superseded" (``runs.csv`` keeps
every record, with a ``superseded_by`` column).

Non-finite values (the PSNR of identical images is ``inf``) are stored in records as
``null`` plus a marker and restored when records are read (``evalsuite.results.record``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evalsuite.io import atomic_write_text, file_lock
from evalsuite.results.identity import distinct_labels, variant_of
from evalsuite.results.protocol import protocol_of
from evalsuite.results.record import load_records, task_of
from evalsuite.results.store import reconstruction_label

if TYPE_CHECKING:
    from evalsuite.results.store import ResultStore
    from evalsuite.config.tabledef import TableDef
    from evalsuite.results.tablemodel import Table

GROUPS = ("model", "ablation", "dataset", "sampler", "metrics")


def record_row(rec: dict[str, Any], by_protocol: bool = False,
               with_task: bool = False) -> dict[str, Any]:
    """Flatten one record into a table row (``by_protocol``: protocol key in metric columns;
    ``with_task``: ``task`` and ``decoder`` columns, for tables with decoder evaluations)."""
    choices = rec.get("choices") or {}
    sampler = rec.get("sampler") or {}
    model = rec.get("model") or {}
    row: dict[str, Any] = {"run_id": rec["run_id"], "created_at": rec.get("created_at")}
    if with_task:
        row["task"] = task_of(rec)
        row["decoder"] = reconstruction_label(rec)
    for g in GROUPS:
        row[g] = choices.get(g)
    row["ablations"] = "+".join(a["name"] for a in model.get("ablations") or []) or "-"
    for k in ("scheduler", "steps", "guidance_scale", "seed"):
        row[k] = sampler.get(k)
    row["n_prompts"] = (rec.get("dataset") or {}).get("count")
    row["unet_params"] = model.get("unet_params")
    proto = protocol_of(rec)
    key = proto.key
    row["protocol_name"] = proto.name or "-"  # "-": an older record, protocol derived
    row["protocol"] = key
    for name, m in sorted((rec.get("metrics") or {}).items()):
        row[f"{name}@v{m['version']}" + (f" [{key}]" if by_protocol else "")] = m["value"]
    return row


def rerun_key(rec: dict[str, Any]) -> str:
    """What a rerun repeats: one variant under one configuration (``config_hash``; a record
    without one is its own)."""
    chash = rec.get("config_hash")
    return f"{variant_of(rec).key}/{chash}" if chash else rec["run_id"]


def runs_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record, oldest first, with its variant's label (distinct per variant,
    ``identity.py``) and ``superseded_by``: the newest record of the same variant and
    configuration when that is not this one (a rerun), else empty."""
    by_protocol = len({protocol_of(r).key for r in records}) > 1
    with_task = any(task_of(r) == "reconstruction" for r in records)
    variants = [variant_of(r) for r in records]
    unique = list(dict.fromkeys(variants))
    names = dict(zip(unique, distinct_labels(unique)))
    newest = {rerun_key(r): r["run_id"] for r in records}  # records come oldest first
    rows = []
    for rec, variant in zip(records, variants):
        row = record_row(rec, by_protocol, with_task)
        newer = newest[rerun_key(rec)]
        rows.append({"run_id": row.pop("run_id"), "created_at": row.pop("created_at"),
                     "variant": names[variant], **row,
                     "superseded_by": "" if newer == rec["run_id"] else newer})
    return pd.DataFrame(rows)


def runs_markdown(df: pd.DataFrame) -> str:
    """The runs table for people: the newest record of each rerun key, then the superseded
    ones (older runs of the same variant and configuration; their records stay)."""
    if not len(df):
        return "_no records yet_\n"
    old = df[df["superseded_by"] != ""]
    md = df[df["superseded_by"] == ""].drop(columns="superseded_by").dropna(axis=1, how="all")
    text = md.to_markdown(index=False, floatfmt=".4g") + "\n"
    if len(old):
        text += ("\n## Superseded\n\nOlder runs of the same variant and configuration (reruns); "
                 "their records stay in records/ and in runs.csv.\n\n")
        text += "".join(f"- {a} ({v}): superseded by {b}\n"
                        for a, v, b in zip(old["run_id"], old["variant"], old["superseded_by"]))
    return text


def write_tables(results_dir: str | os.PathLike) -> dict[str, Path]:
    """Rebuild ``tables/runs.csv`` (every record) and ``tables/runs.md`` (no superseded
    reruns) from every record, under a lock.

    The lock makes "list records, render, publish" one step, so two runs finishing together
    cannot publish a table that is missing the other's record.
    """
    results = Path(results_dir)
    with file_lock(results / ".tables.lock"):
        df = runs_table(load_records(results / "records"))
        out = {"csv": results / "tables" / "runs.csv", "md": results / "tables" / "runs.md"}
        atomic_write_text(out["csv"], df.to_csv(index=False))
        atomic_write_text(out["md"], "# evalsuite runs\n\nGenerated from results/records/ by "
                          "`evalsuite run`; do not edit.\n\n" + runs_markdown(df))
    return out


def build_named_tables(store: "ResultStore", name: str, conf_dir: str | os.PathLike,
                       where: dict[str, Any] | None = None) -> tuple[list["Table"], "TableDef"]:
    """Build table definition ``name`` (``conf/table/<name>.yaml``), with extra ``where`` filters.

    A definition with ``paper:`` becomes a paper table (theirs, ours, difference); any other
    one table of our variants per protocol (``tablebuild.build_tables``), then the
    per-category tables of those records that hold per-category values (``categories.py``).
    """
    from evalsuite.results.categories import category_tables
    from evalsuite.results.paper import build_paper_table
    from evalsuite.results.tablebuild import build_tables
    from evalsuite.config.tabledef import load_table_def

    tdef = load_table_def(name, conf_dir, {"where": where} if where else None)
    if tdef.paper:
        return [build_paper_table(store, tdef, name)], tdef
    return build_tables(store, tdef, name) + category_tables(store, tdef, name), tdef
