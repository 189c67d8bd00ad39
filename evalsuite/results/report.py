"""The HTML report: tables, plots and image grids in one self-contained page.

``write_report(results_dir)`` writes ``<results_dir>/report.html`` (and the plots as PNG and
SVG in ``<results_dir>/tables/``). Plots and thumbnails are embedded as data URIs, so the page
opens from disk, moved or mailed, with no server and no network; only the links to
full-resolution images and to the plot files are relative paths. The page is a function of
the records and samples alone (no timestamp), so rebuilding it unchanged changes no byte.

Decoder evaluations (``task=reconstruction`` records: no prompts, samples or sampler) get
their own table, one row per decoder; the named tables, plots and image grids are about
generation runs only, so a decoder's rFID never becomes a row among text-to-image variants.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_text, file_lock
from evalsuite.resources import conf_dir as default_conf_dir
from evalsuite.results.grids import Grid, build_grids, decoder_grids
from evalsuite.results.plots import Plot, cfg_sweep_plots, quality_cost_plots
from evalsuite.results.record import load_records
from evalsuite.results.recovery_section import recovery_section
from evalsuite.results.render import TABLE_CSS, html_page, to_html, write_table
from evalsuite.config.results import ReportSettings, root_settings
from evalsuite.results.store import ResultStore, matches
from evalsuite.config.tabledef import ColumnDef, TableDef, plain
from evalsuite.results.tables import build_named_tables

REPORT_NAME = "report.html"

REPORT_CSS = TABLE_CSS + """
body { max-width: 1200px; overflow-wrap: anywhere; }
h1 { margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
nav a { margin-right: 1em; }
.meta, .note { color: #666; font-size: 13px; }
div.plots { display: flex; flex-wrap: wrap; gap: 0 1.5em; }
figure.plot { margin: 0; width: 560px; max-width: 100%; }
figure.plot img { width: 100%; border: 1px solid #eee; }
ol.key { font-size: 12px; columns: 2; margin: .3em 0; overflow-wrap: anywhere; }
div.grid { overflow-x: auto; max-width: 100%; }
table.grid td, table.grid th { border: none; padding: 2px; vertical-align: top; white-space: normal; }
table.grid th.variant { font-size: 12px; min-width: 96px; max-width: 170px; text-align: center;
  overflow-wrap: anywhere; }
table.grid td.prompt { font-size: 12px; max-width: 220px; padding-right: 8px; }
table.grid img { display: block; image-rendering: pixelated; }
.missing { color: #b42318; font-size: 11px; width: 120px; }
"""


def write_report(results_dir: str | os.PathLike, settings: Any = None,
                 conf_dir: str | os.PathLike | None = None) -> Path:
    """Write ``<results_dir>/report.html`` from every record there; return its path.

    ``settings`` (a ``ReportSettings``-shaped config) defaults to ``conf/report.yaml``.
    """
    conf_dir = str(conf_dir or default_conf_dir())
    settings = settings if settings is not None else root_settings("report", ReportSettings, conf_dir)
    results = Path(results_dir)
    # Runs of a multirun finish together: without the lock, a report built from fewer records
    # could be published after (over) one built from all of them.
    with file_lock(results / ".report.lock"):
        return _write(results, settings, conf_dir)


def _write(results: Path, settings: Any, conf_dir: str) -> Path:
    everything = load_records(results / "records")
    where = dict(plain(settings.where) or {})
    decoders = [r for r in everything if r.get("task") == "reconstruction" and matches(r, where)]
    store = ResultStore(r for r in everything if r.get("task") != "reconstruction")
    records = store.filter(where)
    sections, nav = [], []
    # A folder of decoder evaluations only gets no empty variants table, plots or grids.
    if records or not decoders:
        sections.append(_tables_section(store, settings, conf_dir, results, where))
        nav.append(("tables", "Tables"))
    recovered = recovery_section(records, results)  # "" unless a record was recovered
    if recovered:
        sections.append(recovered)
        nav.append(("recovery", "Recovery"))
    if decoders:
        sections.append(_decoders_section(decoders, results, settings))
        nav.append(("decoders", "Decoders"))
    if records or not decoders:
        plots, skipped = _plots(records, settings, results / "tables")
        sections.append(_plots_section(plots, skipped, results))
        grids = build_grids(records, settings.grid.prompts, settings.grid.variants,
                            settings.grid.thumb, results)
        sections.append(_grids_section(grids))
        nav += [("plots", "Plots"), ("grids", "Images")]
    body = _header(records + decoders, results, nav) + "".join(sections)
    return atomic_write_text(results / REPORT_NAME, html_page("evalsuite report", body, REPORT_CSS))


def _header(records: Sequence[Mapping[str, Any]], results: Path,
            nav: Sequence[tuple[str, str]]) -> str:
    records = sorted(records, key=lambda r: (r.get("created_at", ""), r.get("run_id", "")))
    latest = records[-1]["created_at"] if records else "none"
    prov = (records[-1].get("provenance") or {}) if records else {}
    git = prov.get("git") or {}
    meta = (f"{len(records)} records in {html.escape(str(results))}; latest {html.escape(str(latest))}; "
            f"evalsuite {html.escape(str(prov.get('evalsuite_version', '?')))}, git "
            f"{html.escape(str(git.get('commit') or '?')[:10])}{' (dirty)' if git.get('dirty') else ''}")
    return ('<h1>evalsuite report</h1>'
            f'<p class="meta">{meta}</p><nav>'
            + "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in nav) + '</nav>')


def _tables_section(store: ResultStore, settings: Any, conf_dir: str, results: Path,
                    where: dict[str, Any]) -> str:
    parts = ['<h2 id="tables">Tables</h2>']
    for name in settings.tables:
        try:
            tables, tdef = build_named_tables(store, name, conf_dir, where)
        except EvalsuiteError as e:  # one bad definition must not cost the whole report
            parts.append(f'<p class="note">Table {html.escape(name)}: {html.escape(str(e))}</p>')
            continue
        for table in tables:  # a section per protocol, then per-category tables
            write_table(table, results / "tables", ["md", "csv", "tex", "html"], tdef.show_ci)
            parts.append(to_html(table, tdef.show_ci))
            links = " · ".join(
                f'<a href="{_rel(results / "tables" / f"{table.name}.{ext}", results)}">{ext}</a>'
                for ext in ("md", "csv", "tex", "html"))
            parts.append(f'<p class="note">Also as {links}.</p>')
    return "".join(parts)


def _decoders_section(records: Sequence[Mapping[str, Any]], results: Path, settings: Any) -> str:
    """One row per decoder (its latest record), every metric, the decoder's parameter count,
    and deltas to the model's own decoder when it was scored too; then the reference images
    beside each decoder's reconstructions of them."""
    from evalsuite.results.tablebuild import auto_columns, build_table, resolve_rows

    # Rows are labelled by store.variant_label: the run's name, else the decoder.
    store = ResultStore(list(records))
    rows = resolve_rows(store, TableDef(title="Decoders"))
    metrics = [c for c in auto_columns(rows) if c.metric]
    tdef = TableDef(title="Decoders (task=reconstruction): reference images through "
                          "encoder and decoder",
                    columns=metrics + [ColumnDef(field="vae.decoder.decoder_params",
                                                 label="decoder params", thousands=True)],
                    baseline={"vae.decoder.path": "model"})
    table = build_table(store, tdef, "decoders")
    write_table(table, results / "tables", ["md", "csv", "tex", "html"], tdef.show_ci)
    links = " · ".join(f'<a href="{_rel(results / "tables" / f"decoders.{e}", results)}">{e}</a>'
                       for e in ("md", "csv", "tex", "html"))
    grids = decoder_grids(records, settings.grid.prompts, settings.grid.variants,
                          settings.grid.thumb, results)
    images = "".join(_grid_html(g) for g in grids) or (
        '<p class="note">No reconstructions on disk for these records.</p>')
    return (f'<h2 id="decoders">Decoders</h2>{to_html(table, tdef.show_ci)}'
            f'<p class="note">Also as {links}.</p>{images}')


def _plots(records: Sequence[Mapping[str, Any]], settings: Any, out_dir: Path) -> tuple[list[Plot], list[str]]:
    sweep, why_sweep = cfg_sweep_plots(records, settings.plots.cfg_sweep.x, settings.plots.cfg_sweep.y, out_dir)
    qc, why_qc = quality_cost_plots(records, list(settings.plots.quality_cost.quality),
                                    list(settings.plots.quality_cost.cost), out_dir)
    return sweep + qc, [w for w in (why_sweep, why_qc) if w]


def _rel(path: Path, results: Path) -> str:
    return html.escape(os.path.relpath(path, results))


def _plots_section(plots: Sequence[Plot], skipped: Sequence[str], results: Path) -> str:
    parts = ['<h2 id="plots">Plots</h2><div class="plots">']
    for p in plots:
        svg = base64.b64encode(p.svg.read_bytes()).decode("ascii")
        key = "".join(f"<li>{html.escape(label)}</li>" for label in p.key)
        parts.append(f'<figure class="plot"><figcaption>{html.escape(p.title)}</figcaption>'
                     f'<img alt="{html.escape(p.title)}" src="data:image/svg+xml;base64,{svg}">'
                     f'<ol class="key">{key}</ol>'
                     f'<p class="note">{html.escape(p.caption)} Protocol: {html.escape(p.protocol)}. '
                     f'Files: <a href="{_rel(p.png, results)}">PNG</a> · '
                     f'<a href="{_rel(p.svg, results)}">SVG</a></p></figure>')
    parts.append("</div>")
    parts += [f'<p class="note">{html.escape(s)}</p>' for s in skipped]
    return "".join(parts)


def _grids_section(grids: Sequence[Grid]) -> str:
    parts = ['<h2 id="grids">Images: same prompts and seeds across variants</h2>']
    if not grids:
        parts.append('<p class="note">No samples on disk for the selected records.</p>')
    parts += [_grid_html(g) for g in grids]
    return "".join(parts)


def _grid_html(g: Grid) -> str:
    """A grid: a row per prompt (or reference image), a column per variant (or decoder)."""
    head = "".join(f'<th class="variant">{html.escape(v)}</th>' for v in g.variants)
    rows = []
    for (pid, text, seed), cells in zip(g.prompts, g.cells):
        tds = "".join(
            f'<td><a href="{html.escape(c.href)}"><img alt="{html.escape(pid)}" src="{c.thumb}"></a></td>'
            if c.thumb else f'<td class="missing">{html.escape(c.problem or "")}</td>' for c in cells)
        seed_note = f'<br><span class="meta">seed {seed}</span>' if seed is not None else ""
        rows.append(f'<tr><td class="prompt"><b>{html.escape(pid)}</b> {html.escape(text)}'
                    f'{seed_note}</td>{tds}</tr>')
    return (f'<h3>{html.escape(g.title)}</h3><div class="grid"><table class="grid">'
            f'<thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div>')
