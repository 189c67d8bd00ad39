"""Plots (matplotlib, PNG + SVG): a CFG sweep per variant, and quality vs. cost with its Pareto front.

Points share a figure only if their values share a comparability key (protocol + metric
identity, as table columns do); each other key gets its own figure. Files are written
atomically and byte-stable (fixed SVG hash salt, no date), so re-running changes nothing.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalsuite.io import atomic_write_bytes
from evalsuite.results.arch import arch_figures, arch_of_record
from evalsuite.results.protocol import CellKey, protocol_of
from evalsuite.results.store import VARIANT_SAMPLER, get_field
from evalsuite.results.tablebuild import variant_key, variant_labels

Rec = Mapping[str, Any]


@dataclass
class Plot:
    """A saved figure: title, caption, and its PNG and SVG files."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path
    key: list[str] = field(default_factory=list)  # number k on the plot -> key[k - 1]
    protocol: str = ""  # one-line summary


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and quality, by cost."""
    def better_q(a: float, b: float) -> bool:
        return a >= b if higher_is_better else a <= b

    front = []
    for i, (c, q) in enumerate(points):
        dominated = any(
            (c2 <= c and better_q(q2, q)) and (c2 < c or q2 != q)
            for j, (c2, q2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "evalsuite", "figure.dpi": 100, "font.size": 9})
    return plt


def _save(fig: Any, out_dir: Path, name: str) -> tuple[Path, Path]:
    paths = []
    for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta, dpi=110)
        paths.append(atomic_write_bytes(out_dir / f"{name}.{fmt}", buf.getvalue()))
    return paths[0], paths[1]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _metric(rec: Rec, name: str) -> float | None:
    """A metric's value to plot; None when absent or not finite (the baseline's PSNR against
    itself is inf, which no axis can show and which would make every other point NaN)."""
    m = (rec.get("metrics") or {}).get(name)
    value = m.get("value") if m else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def cfg_sweep_plots(records: Sequence[Rec], x: str, y: str, out_dir: Path) -> tuple[list[Plot], str | None]:
    """``y`` against ``x`` with one curve per variant over guidance scales (SnapFusion Fig. 4)."""
    groups: dict[tuple, dict[tuple, dict[float, Rec]]] = {}
    for rec in records:
        if _metric(rec, x) is None or _metric(rec, y) is None:
            continue
        key = (CellKey.of(rec, x), CellKey.of(rec, y))
        cfg = float((rec.get("sampler") or {}).get("guidance_scale", 0.0))
        groups.setdefault(key, {}).setdefault(variant_key(rec, ("guidance_scale",)), {})[cfg] = rec
    groups = {k: v for k, v in groups.items() if any(len(s) > 1 for s in v.values())}
    if not groups:
        return [], f"CFG sweep: no variant has {x} and {y} at two or more guidance scales."
    plt = _pyplot()
    plots = []
    for n, (key, series) in enumerate(groups.items()):
        fig, ax = plt.subplots(figsize=(5.6, 4.0), layout="constrained")
        labels = variant_labels(list(series))
        scales: set[float] = set()
        for k, points in enumerate(series.values()):
            cfgs = sorted(points)
            scales.update(cfgs)
            xs, ys = [_metric(points[c], x) for c in cfgs], [_metric(points[c], y) for c in cfgs]
            # No text on the points (40 labels overlap): the lowest scale is a square, the
            # highest a triangle, and the key under the plot names the variants.
            ax.plot(xs, ys, marker="o", markersize=4, label=str(k + 1))
            ax.plot(xs[:1], ys[:1], marker="s", color=ax.lines[-1].get_color(), markersize=7)
            ax.plot(xs[-1:], ys[-1:], marker="^", color=ax.lines[-2].get_color(), markersize=7)
        proto = protocol_of(next(iter(next(iter(series.values())).values())))
        ax.set_xlabel(x), ax.set_ylabel(y), ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="variant", ncols=max(1, len(labels) // 8 + 1))
        title = f"{y} vs. {x} across CFG scales"
        ax.set_title(title)
        name = _slug(f"cfg_sweep_{y}_vs_{x}" + (f"_{key[0].protocol}" if len(groups) > 1 else ""))
        png, svg = _save(fig, out_dir, name)
        plt.close(fig)
        caption = (f"Each curve runs from the lowest guidance scale (square) to the highest "
                   f"(triangle); scales: {', '.join(f'{c:g}' for c in sorted(scales))}.")
        plots.append(Plot(name, title, caption, png, svg, labels, proto.summary()))
    return plots, None


def _cost(rec: Rec, cost: str) -> float | None:
    """A cost figure: ``arch.params`` / ``arch.gflops`` (regenerated) or a record field."""
    if cost.startswith("arch."):
        arch = arch_of_record(rec)
        return arch_figures(*arch)[cost[5:]] if arch else None
    value = get_field(rec, cost)
    return float(value) if isinstance(value, (int, float)) else None


def quality_cost_plots(records: Sequence[Rec], qualities: Sequence[str], costs: Sequence[str],
                       out_dir: Path) -> tuple[list[Plot], str | None]:
    """Quality against cost for each variant's latest record, Pareto front marked."""
    latest, settings = _at_common_settings(records)
    quality = next((q for q in qualities if sum(_metric(r, q) is not None for r in latest.values()) > 1), None)
    if quality is None:
        return [], f"Quality vs. cost: fewer than two variants have any of {list(qualities)}."
    cost = next((c for c in costs if sum(_cost(r, c) is not None for r in latest.values()) > 1), None)
    if cost is None:
        return [], f"Quality vs. cost: fewer than two variants have any cost of {list(costs)}."
    groups: dict[CellKey, list[tuple[tuple, Rec]]] = {}
    for key, rec in latest.items():
        if _metric(rec, quality) is not None and _cost(rec, cost) is not None:
            groups.setdefault(CellKey.of(rec, quality), []).append((key, rec))
    plt = _pyplot()
    plots = []
    for ckey, items in groups.items():
        if len(items) < 2:
            continue
        labels = variant_labels([k for k, _ in items])
        pts = [(_cost(r, cost), _metric(r, quality)) for _, r in items]
        higher = bool(items[0][1]["metrics"][quality].get("higher_is_better", True))
        front = pareto_front(pts, higher)
        fig, ax = plt.subplots(figsize=(5.6, 4.0), layout="constrained")
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="#4a6fa5", zorder=3)
        for text, (cx, qy) in point_labels(pts):  # numbers, not names: the key is under the plot
            ax.annotate(text, (cx, qy), textcoords="offset points", xytext=(5, 3), fontsize=8)
        ax.step([pts[i][0] for i in front], [pts[i][1] for i in front], where="post", color="#d1495b",
                label="Pareto front", zorder=2)
        ax.scatter([pts[i][0] for i in front], [pts[i][1] for i in front], facecolors="none",
                   edgecolors="#d1495b", s=90, zorder=4)
        ax.margins(x=0.1)
        ax.set_xlabel(cost + " (lower is cheaper)")
        ax.set_ylabel(quality + (" (higher is better)" if higher else " (lower is better)"))
        ax.grid(alpha=0.3), ax.legend(fontsize=7)
        title = f"{quality} vs. {cost}"
        ax.set_title(title)
        name = _slug(f"quality_cost_{quality}_vs_{cost}" + (f"_{ckey.protocol}" if len(groups) > 1 else ""))
        png, svg = _save(fig, out_dir, name)
        plt.close(fig)
        on_front = ", ".join(f"{i + 1}" for i in front)
        plots.append(Plot(name, title, f"Pareto front: {on_front}. {settings}", png, svg, labels,
                          protocol_of(items[0][1]).summary()))
    return plots, None if plots else "Quality vs. cost: no protocol has two variants to compare."


def _at_common_settings(records: Sequence[Rec]) -> tuple[dict[tuple, Rec], str]:
    """Each variant's latest record at the sampler settings most variants share (a CFG sweep
    would otherwise put every guidance scale of every variant on a quality-cost plot), and a
    sentence saying which settings those are."""
    latest: dict[tuple, Rec] = {}
    for rec in records:
        latest[variant_key(rec)] = rec
    counts: dict[tuple, int] = {}
    for key in latest:
        counts[key[1:]] = counts.get(key[1:], 0) + 1
    if len(counts) <= 1:
        return latest, ""
    common = max(counts, key=lambda k: counts[k])  # first seen wins a tie
    kept = {k: r for k, r in latest.items() if k[1:] == common}
    text = ", ".join(f"{n}={v}" for n, v in zip(VARIANT_SAMPLER, common) if v not in ("None", ""))
    return kept, f"Sampler settings shared by most variants: {text}."


def point_labels(pts: Sequence[tuple[float, float]], cells: int = 30) -> list[tuple[str, tuple[float, float]]]:
    """One label per cluster of points (numbers 1..n joined by commas): points closer than
    1/``cells`` of the axis ranges share one label, so numbers never print over each other."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    clusters: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(pts):
        cell = (round((x - min(xs)) / span_x * cells), round((y - min(ys)) / span_y * cells))
        clusters.setdefault(cell, []).append(i)
    return [(",".join(str(i + 1) for i in idx), pts[idx[0]]) for idx in clusters.values()]
