"""Render a ``Table`` as Markdown, CSV, LaTeX (booktabs) or HTML, each with its footer.

- Markdown: a pipe table, then the footer as a list (prints well in a terminal too);
- CSV: rounded numbers (marks as their text), one ``<label> CI low/high`` column pair after
  each column that has intervals, then the footer as ``#`` comment lines
  (``pandas.read_csv(path, comment="#")`` reads it back);
- LaTeX: a ``table`` float with a booktabs ``tabular`` and the footer in a footnotesize
  paragraph under it (needs ``\\usepackage{booktabs}``);
- HTML: a ``<figure>`` with the table and the footer (a fragment; ``html_page`` wraps it).
"""

from __future__ import annotations

import csv
import html
import io
import os
from pathlib import Path

from evalsuite.io import atomic_write_text
from evalsuite.results.tablemodel import Cell, Column, Table, format_cell, format_number

FORMATS = {"md": "md", "csv": "csv", "tex": "tex", "html": "html"}


def to_markdown(table: Table, show_ci: bool = True) -> str:
    head = [c.label for c in table.columns]
    body = [[format_cell(cell, col, show_ci) for cell, col in zip(row, table.columns)]
            for row in table.rows]
    align = ["---" if c.kind == "label" or c.digits is None and not _numeric(table, i) else "---:"
             for i, c in enumerate(table.columns)]
    lines = [f"**{table.title}**", ""]
    lines += ["| " + " | ".join(_md(x) for x in head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md(x) for x in row) + " |" for row in body]
    lines += [""] + [f"- {line}" for line in table.footer]
    return "\n".join(lines) + "\n"


def _numeric(table: Table, i: int) -> bool:
    return any(row[i].number is not None for row in table.rows)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _csv_value(cell: Cell, col: Column) -> str:
    if cell.mark:
        return cell.mark
    if cell.value is None:
        return ""
    if isinstance(cell.value, str):
        return cell.value
    return format_number(cell.value, col.digits)


def to_csv(table: Table) -> str:
    with_ci = [any(row[i].ci for row in table.rows) for i in range(len(table.columns))]
    head: list[str] = []
    for col, ci in zip(table.columns, with_ci):
        head += [col.label] + ([f"{col.label} CI low", f"{col.label} CI high"] if ci else [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for row in table.rows:
        out: list[str] = []
        for cell, col, ci in zip(row, table.columns, with_ci):
            out.append(_csv_value(cell, col))
            if ci:
                out += [format_number(x, col.digits) for x in cell.ci] if cell.ci else ["", ""]
        writer.writerow(out)
    buf.write("".join(f"# {line}\n" for line in [table.title, *table.footer]))
    return buf.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "Δ": r"$\Delta$", "±": r"$\pm$", "×": r"$\times$", "…": r"\dots{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(table: Table, show_ci: bool = True) -> str:
    spec = "".join("l" if c.kind == "label" or not _numeric(table, i) else "r"
                   for i, c in enumerate(table.columns))
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex_escape(table.title)}}}",
             rf"\label{{tab:{table.name}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(tex_escape(c.label) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = [tex_escape(format_cell(cell, col, show_ci)) for cell, col in zip(row, table.columns)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip",
              r"\parbox{\linewidth}{\footnotesize " +
              r" \\ ".join(tex_escape(x) for x in table.footer) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(table: Table, show_ci: bool = True) -> str:
    """An HTML fragment: ``<figure>`` with caption, table and footer."""
    esc = html.escape
    head = "".join(f"<th>{esc(c.label)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        tds = []
        for cell, col in zip(row, table.columns):
            cls = "mark" if cell.mark else ("num" if cell.number is not None else "text")
            verdict = col.verdict(cell)  # coloured by improvement: a lower FID is better
            cls += f" {verdict}" if verdict else ""
            tip = cell.tip or (f"{verdict} than the baseline" if verdict else None)
            tip = f' title="{esc(tip)}"' if tip else ""
            tds.append(f'<td class="{cls}"{tip}>{esc(format_cell(cell, col, show_ci))}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    foot = "".join(_footer_item(x, table.folds.get(x)) for x in table.footer)
    if any(col.verdict(row[i]) for row in table.rows for i, col in enumerate(table.columns)):
        foot += ('<li>Δ in <span class="better">green</span>: better than the baseline, in the '
                 'metric\'s own direction (a lower FID is better); in <span class="worse">red'
                 '</span>: worse.</li>')
    return (f'<figure class="evalsuite-table" id="table-{esc(table.name)}">'
            f"<figcaption>{esc(table.title)}</figcaption>"
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
            f'<ul class="footer">{foot}</ul></figure>\n')


def _footer_item(line: str, summary: str | None) -> str:
    """A footer line; a long one (a protocol's every field) folded under its one-line summary."""
    if summary is None:
        return f"<li>{html.escape(line)}</li>"
    return (f"<li><details><summary>{html.escape(summary)}</summary>"
            f"{html.escape(line)}</details></li>")


TABLE_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
figure.evalsuite-table { margin: 1.5em 0; }
figcaption { font-weight: 600; margin-bottom: .4em; }
figure.evalsuite-table { max-width: 100%; }
/* A wide table scrolls inside its own box; the first column (the row label) stays put. */
div.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: separate; border-spacing: 0; font-size: 14px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; white-space: nowrap; }
th:first-child, td:first-child { position: sticky; left: 0; background: #fff; z-index: 1;
  white-space: normal; min-width: 14em; max-width: 24em; overflow-wrap: anywhere; }
thead th { border-bottom: 2px solid #444; text-align: left; font-size: 13px; }
ul.footer, ul.footer details { overflow-wrap: anywhere; }
ul.footer summary { cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mark { color: #999; text-align: center; }
.better { color: #1a7f37; } .worse { color: #b42318; }
ul.footer { font-size: 12px; color: #555; padding-left: 1.2em; }
"""


def html_page(title: str, body: str, css: str = TABLE_CSS) -> str:
    """A complete, self-contained HTML document (no external resources)."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{css}</style></head>"
            f"<body>\n{body}</body></html>\n")


def render(table: Table, fmt: str, show_ci: bool = True) -> str:
    """The table in format ``fmt`` (md, csv, tex, html; html is a full page)."""
    if fmt == "md":
        return to_markdown(table, show_ci)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "tex":
        return to_latex(table, show_ci)
    if fmt == "html":
        return html_page(table.title, to_html(table, show_ci))
    raise ValueError(f"unknown format {fmt!r}; choose from {sorted(FORMATS)}")


def write_table(table: Table, out_dir: str | os.PathLike, formats: list[str],
                show_ci: bool = True) -> dict[str, Path]:
    """Write ``<out_dir>/<table.name>.<fmt>`` for each format, atomically."""
    out = {}
    for fmt in formats:
        out[fmt] = atomic_write_text(Path(out_dir) / f"{table.name}.{FORMATS[fmt]}",
                                     render(table, fmt, show_ci))
    return out
