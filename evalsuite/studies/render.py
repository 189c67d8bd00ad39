"""The ranking as Markdown, CSV and a PNG plot, each written atomically.

Markdown and CSV carry the same rows and the same footer (CSV as ``#`` lines, as the
results tables do); the footer says where each column comes from.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from evalsuite.io import atomic_write_bytes, atomic_write_text
from evalsuite.studies.actions import describe, short_label
from evalsuite.studies.ranking import Row


TEXT_COLUMNS = ("action", "kind", "stage", "record")  # the others are numbers (right-aligned)


def _num(x: float | None, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x, fmt)


def columns(metrics: Sequence[str]) -> list[str]:
    """Column names, shared by Markdown and CSV."""
    cols = ["rank", "action", "kind", "stage", "saved_ms", "latency_ms", "d_latency_ms"]
    for m in metrics:
        cols += [m, f"d({m})", f"{m} loss/ms"]
    return cols + ["record"]


def _cells(row: Row, metrics: Sequence[str], plain: bool) -> list[str | float | None]:
    d = describe(row.action)
    ms = (lambda x: x) if plain else (lambda x: _num(x, ".4f"))
    num = (lambda x: x) if plain else _num
    out: list[str | float | None] = [row.rank, row.action, d["kind"], d["stage"], ms(row.block_ms),
                                     ms(row.latency_ms), ms(row.d_latency_ms)]
    for m in metrics:
        c = row.metrics[m]
        out += [num(c["value"]), num(c["delta"]), num(c["score"])]
    return out + [row.record_id]


def markdown(title: str, rows: Sequence[Row], metrics: Sequence[str], footer: Sequence[str]) -> str:
    cols = columns(metrics)
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in cols) + "|"]
    lines += ["| " + " | ".join(str(c) for c in _cells(r, metrics, plain=False)) + " |" for r in rows]
    return "\n".join(lines + [""] + [f"- {f}" for f in footer]) + "\n"


def csv_text(rows: Sequence[Row], metrics: Sequence[str], footer: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns(metrics))
    for r in rows:
        w.writerow(["" if c is None else c for c in _cells(r, metrics, plain=True)])
    buf.write("".join(f"# {f}\n" for f in footer))
    return buf.getvalue()


def plot_png(rows: Sequence[Row], metrics: Sequence[str], rank_metric: str, title: str) -> bytes:
    """Per metric: quality loss vs. ms saved (slope = score); and the ranked scores as bars."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    shown = [rank_metric] + [m for m in metrics if m != rank_metric][:2]
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(5 * (len(shown) + 1), 4.6), squeeze=False)
    colors = {"cross-attention": "tab:orange", "residual": "tab:blue"}
    for ax, m in zip(axes[0], shown):
        for kind, color in colors.items():
            pts = [(r.block_ms, r.metrics[m]["loss"], r) for r in rows
                   if describe(r.action)["kind"] == kind and r.metrics[m]["loss"] is not None]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=color, s=18, label=kind)
            for x, y, r in pts:
                ax.annotate(short_label(r.action), (x, y), fontsize=6, xytext=(2, 2),
                            textcoords="offset points")
        ax.set_xlabel("latency saved, ms (lookup table)")
        ax.set_ylabel(f"quality loss ({m})")
        ax.set_title(f"{m}: loss vs. latency saved", fontsize=9)
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    ranked = [r for r in rows if not math.isnan(r.score(rank_metric))]
    ax.barh([f"{r.rank}. {short_label(r.action)}" for r in ranked],
            [r.score(rank_metric) for r in ranked],
            color=[colors[describe(r.action)["kind"]] for r in ranked])
    ax.invert_yaxis()  # rank 1 on top
    ax.tick_params(axis="y", labelsize=6)
    ax.set_xlabel(f"{rank_metric} loss per ms saved (lower: better to remove)")
    ax.set_title("ranking", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def write_outputs(out_dir: Path, title: str, rows: Sequence[Row], metrics: Sequence[str],
                  rank_metric: str, footer: Sequence[str]) -> dict[str, Path]:
    """ranking.md, ranking.csv and ranking.png in ``out_dir``, each written atomically."""
    return {
        "md": atomic_write_text(out_dir / "ranking.md", markdown(title, rows, metrics, footer)),
        "csv": atomic_write_text(out_dir / "ranking.csv", csv_text(rows, metrics, footer)),
        "png": atomic_write_bytes(out_dir / "ranking.png", plot_png(rows, metrics, rank_metric, title)),
    }
