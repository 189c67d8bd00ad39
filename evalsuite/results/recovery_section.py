"""Recovery by distillation in tables and the report: zero-shot vs recovered, side by side.

A recovered record (``recovery=kd``) names its zero-shot counterpart by the sample store key
the same cell has without recovery (``recovery.zero_shot_generation_key``); the zero-shot
record is the latest record whose ``samples.generation_key`` is that key. ``recovery_table``
gives one row per recovered record: the variant, the UNet's cost (parameters, GFLOPs; the
same for both, since recovery changes weights, not the architecture), every metric both
records measured as ``<metric> zero-shot`` / ``<metric> recovered``, and the recovery's steps,
final loss, CPU / wall seconds and the two run ids. ``recovery_section`` is the report's HTML for it (with the
table written to ``tables/recovery.{md,csv}``) and each recovery's loss curves as inline SVG;
it is empty when no record was recovered, so other reports do not change by a byte.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from evalsuite.io import atomic_write_text
from evalsuite.results.identity import variant_of
from evalsuite.results.record import load_records

if TYPE_CHECKING:
    import pandas as pd

Rec = Mapping[str, Any]
RECOVERED = " [recovered]"  # the suffix of a recovered record's variant label
TERMS = ("total", "task", "output_kd", "feature_kd")
COLOURS = {"total": "#111111", "task": "#1f77b4", "output_kd": "#d62728", "feature_kd": "#2ca02c"}


def records_in(results: str | Path) -> list[dict[str, Any]]:
    """Every readable record of a results folder, oldest first."""
    return load_records(Path(results) / "records")


def zero_shot_of(rec: Rec, records: Sequence[Rec]) -> Rec | None:
    """The latest record of ``records`` that is ``rec``'s zero-shot counterpart, or None."""
    key = (rec.get("recovery") or {}).get("zero_shot_generation_key")
    found = [r for r in records if "recovery" not in r
             and (r.get("samples") or {}).get("generation_key") == key]
    return found[-1] if key and found else None


def _value(rec: Rec | None, metric: str) -> float | None:
    m = ((rec or {}).get("metrics") or {}).get(metric) or {}
    v = m.get("value")
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def recovery_row(rec: Rec, zero: Rec | None) -> dict[str, Any]:
    """One row of ``recovery_table`` (see the module docstring)."""
    model, r = rec.get("model") or {}, rec.get("recovery") or {}
    final = r.get("final_loss") or {}
    row: dict[str, Any] = {"variant": variant_of(rec).label.removesuffix(RECOVERED),
                           "unet_params": model.get("unet_params"), "unet_gflops": model.get("unet_gflops")}
    names = sorted(set((rec.get("metrics") or {})) | set(((zero or {}).get("metrics") or {})))
    for name in names:
        row[f"{name} zero-shot"] = _value(zero, name)
        row[f"{name} recovered"] = _value(rec, name)
    row.update({"recovery_steps": r.get("steps"), "final_loss": final.get("total"),
                "recovery_cpu_s": r.get("cpu_s"), "recovery_wall_s": r.get("wall_s"),
                "zero_shot_run": (zero or {}).get("run_id", "not run"), "recovered_run": rec.get("run_id"),
                "recovery_key": str(r.get("key", ""))[:12]})
    return row


def recovery_table(records: Sequence[Rec]) -> pd.DataFrame:
    """Zero-shot vs recovered, one row per recovered record (its latest run per recovery key
    and sampler), columns as in the module docstring; empty when nothing was recovered."""
    import pandas as pd

    latest: dict[Any, Rec] = {}
    for rec in records:
        if rec.get("recovery"):
            latest[(rec["recovery"].get("key"), (rec.get("samples") or {}).get("generation_key"))] = rec
    return pd.DataFrame([recovery_row(rec, zero_shot_of(rec, records)) for rec in latest.values()])


def loss_curve_svg(curve: Mapping[str, Sequence[float]], width: int = 360, height: int = 180) -> str:
    """The loss terms of a ``recovery.loss_curve`` against the step, log10 y axis, as SVG."""
    steps = list(curve.get("step") or [])
    series = {t: list(curve[t]) for t in TERMS if t in curve and len(curve[t]) == len(steps)}
    values = [v for s in series.values() for v in s if v > 0 and math.isfinite(v)]
    if len(steps) < 1 or not values:
        return '<p class="note">no loss curve recorded</p>'
    lo, hi = math.log10(min(values)), math.log10(max(values))
    hi = hi if hi > lo else lo + 1.0
    x0, x1 = steps[0], steps[-1] if steps[-1] > steps[0] else steps[0] + 1
    pad, plot_w, plot_h = 40, width - 50, height - 40

    def xy(step: float, v: float) -> str:
        x = pad + (step - x0) / (x1 - x0) * plot_w
        y = 10 + (hi - math.log10(max(v, 10 ** lo))) / (hi - lo) * plot_h
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-size="10" font-family="sans-serif">',
             f'<rect x="{pad}" y="10" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
             f'<text x="2" y="16">{10 ** hi:.3g}</text><text x="2" y="{10 + plot_h}">{10 ** lo:.3g}</text>',
             f'<text x="{pad}" y="{height - 16}">step {x0}</text>'
             f'<text x="{pad + plot_w - 50}" y="{height - 16}">step {x1}</text>']
    for i, (term, vals) in enumerate(series.items()):
        pts = " ".join(xy(s, v) for s, v in zip(steps, vals) if v > 0 and math.isfinite(v))
        parts.append(f'<polyline fill="none" stroke="{COLOURS[term]}" stroke-width="1.3" points="{pts}"/>')
        parts.append(f'<text x="{pad + 4 + 80 * i}" y="{height - 3}" fill="{COLOURS[term]}">{term}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    cell = lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else (  # noqa: E731
        f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def recovery_section(records: Sequence[Rec], results: str | Path) -> str:
    """The report's "Recovery" section (HTML), or "" when no record was recovered; writes
    ``tables/recovery.md`` and ``tables/recovery.csv`` beside the other tables."""
    table = recovery_table(records)
    if table.empty:
        return ""
    out = Path(results) / "tables"
    atomic_write_text(out / "recovery.md", _markdown(table))
    atomic_write_text(out / "recovery.csv", table.to_csv(index=False))
    parts = ['<h2 id="recovery">Recovery: zero-shot vs recovered</h2>',
             '<p class="note">Each recovered cell beside its zero-shot counterpart (same ablation, '
             'sampler and prompts, linked by recovery.zero_shot_generation_key); cost is the '
             'UNet\'s. Also as <a href="tables/recovery.md">md</a> · '
             '<a href="tables/recovery.csv">csv</a>.</p>',
             table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)]
    for rec in records:
        r = rec.get("recovery")
        if r and r.get("loss_curve"):
            parts.append(f'<figure class="plot"><figcaption>{html.escape(variant_of(rec).label)}: loss '
                         f'(run {html.escape(str(rec.get("run_id")))}, {r.get("steps")} steps)'
                         f'</figcaption>{loss_curve_svg(r["loss_curve"])}</figure>')
    return "".join(parts)
