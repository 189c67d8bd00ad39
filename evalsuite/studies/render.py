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
KIND_COLORS = {"cross-attention": "tab:orange", "residual": "tab:blue"}


def _num(x: float | None, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x, fmt)


def _fields(rows: Sequence[Row], metrics: Sequence[str]) -> list[tuple[str, str]]:
    """(metric, field) per metric column: value, its change (unless it has none, as PSNR vs.
    the baseline, whose perfect value is infinite) and its score."""
    out = []
    for m in metrics:
        has_delta = any(r.metrics[m]["delta"] is not None for r in rows)
        out += [(m, "value")] + ([(m, "delta")] if has_delta else []) + [(m, "score")]
    return out


def columns(rows: Sequence[Row], metrics: Sequence[str]) -> list[str]:
    """Column names, shared by Markdown and CSV."""
    names = {"value": "{}", "delta": "d({})", "score": "{} loss/ms"}
    return (["rank", "action", "kind", "stage", "saved_ms", "latency_ms", "d_latency_ms"]
            + [names[f].format(m) for m, f in _fields(rows, metrics)] + ["record"])


def _cells(row: Row, fields: Sequence[tuple[str, str]], plain: bool) -> list[str | float | None]:
    d = describe(row.action)
    ms = (lambda x: x) if plain else (lambda x: _num(x, ".4f"))
    out: list[str | float | None] = [row.rank, row.action, d["kind"], d["stage"], ms(row.block_ms),
                                     ms(row.latency_ms), ms(row.d_latency_ms)]
    for m, f in fields:
        x = row.metrics[m][f]
        out.append(x if plain else _num(x, ".4g" if f == "score" else ".5g"))
    return out + [row.record_id]


def markdown(title: str, rows: Sequence[Row], metrics: Sequence[str], footer: Sequence[str]) -> str:
    cols, fields = columns(rows, metrics), _fields(rows, metrics)
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in cols) + "|"]
    lines += ["| " + " | ".join(str(c) for c in _cells(r, fields, plain=False)) + " |" for r in rows]
    return "\n".join(lines + [""] + [f"- {f}" for f in footer]) + "\n"


def csv_text(rows: Sequence[Row], metrics: Sequence[str], footer: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns(rows, metrics))
    fields = _fields(rows, metrics)
    for r in rows:
        w.writerow(["" if c is None else c for c in _cells(r, fields, plain=True)])
    buf.write("".join(f"# {f}\n" for f in footer))
    return buf.getvalue()


def _scatter(ax: object, rows: Sequence[Row], m: str) -> None:
    """Quality loss vs. ms saved for metric ``m``; a point's slope from the origin is its score."""
    losses = []
    for kind, color in KIND_COLORS.items():
        pts = [(r.block_ms, r.metrics[m]["loss"], r) for r in rows
               if describe(r.action)["kind"] == kind and r.metrics[m]["loss"] is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=color, s=18, label=kind)
        for x, y, r in pts:
            ax.annotate(short_label(r.action), (x, y), fontsize=6, xytext=(2, 2),
                        textcoords="offset points")
        losses += [p[1] for p in pts]
    positive = [x for x in losses if x > 0]
    if positive and len(positive) == len(losses) and max(positive) > 100 * min(positive):
        ax.set_yscale("log")  # e.g. PSNR's MSE: spans decades across blocks
    else:
        ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("latency saved, ms (lookup table)")
    ax.set_ylabel(f"quality loss ({m})")
    ax.set_title(f"{m}: quality loss vs. latency saved", fontsize=9)
    ax.legend(fontsize=7)


def _bars(ax: object, rows: Sequence[Row], m: str) -> None:
    ranked = [r for r in rows if not math.isnan(r.score(m))]
    ax.barh([f"{r.rank}. {short_label(r.action)}" for r in ranked], [r.score(m) for r in ranked],
            color=[KIND_COLORS[describe(r.action)["kind"]] for r in ranked])
    ax.invert_yaxis()  # rank 1 on top
    ax.tick_params(axis="y", labelsize=6)
    ax.set_xlabel(f"{m} loss per ms saved (lower: better to remove)")
    ax.set_title("ranking", fontsize=9)


def plot_png(rows: Sequence[Row], metrics: Sequence[str], rank_metric: str, title: str) -> bytes:
    """The ranked scores as bars, and per metric (up to three) quality loss vs. ms saved."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    shown = [rank_metric] + [m for m in metrics if m != rank_metric][:2]
    n = len(shown) + 1
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    height = max(4.5, 0.14 * len(rows) + 1.5)  # room for one bar label per action
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, height * nrows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    _bars(flat[0], rows, rank_metric)
    for ax, m in zip(flat[1:], shown):
        _scatter(ax, rows, m)
    for ax in flat[n:]:
        ax.set_visible(False)
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
