"""Value scores and the ranking of actions (pure functions over records and the latency table).

SnapFusion scores an action by ``dCLIP / dLatency``: the CLIP score a removal loses per
millisecond it saves. Here every metric gets the same treatment, as a *quality loss per ms
saved* (lower is better; the first row is the best block to remove):

- metrics of the samples alone (CLIP score, FID, CMMD, ...): loss = how much worse the
  variant is than the base run (``base - value`` if higher is better, ``value - base`` if
  lower), so for CLIP the score equals ``dCLIP/dLatency`` exactly (both deltas negative);
- metrics paired with the baseline (the base model's own samples, same prompts and seeds):
  the base would match itself perfectly, so loss = distance from that perfect value:
  ``1 - SSIM``, ``LPIPS``, and for PSNR (infinite for identical images) the mean squared
  error it stands for, ``255^2 * 10^(-PSNR/10)``;
- metrics paired with the reference photographs measure the VAE, which no action touches:
  they are not scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Record = Mapping[str, Any]

# Baseline-paired metrics: the loss as a function of the value (0 for a perfect match).
PAIRED_LOSS = {
    "ssim": (lambda v: 1.0 - v, "1 - SSIM"),
    "lpips": (lambda v: v, "LPIPS"),
    "psnr": (lambda v: 255.0**2 * 10 ** (-v / 10.0), "MSE = 255^2*10^(-PSNR/10)"),
}
# The value a perfect match has, where it is finite (for the delta column).
PAIRED_IDENTITY = {"ssim": 1.0, "lpips": 0.0}


@dataclass
class Row:
    """One action: its latency from the lookup table and its metrics from its record."""

    action: str
    record_id: str
    block_ms: float  # the lookup-table entry: latency saved
    latency_ms: float  # base - block_ms
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    rank: int = 0

    @property
    def d_latency_ms(self) -> float:
        return -self.block_ms

    def score(self, metric: str) -> float:
        s = self.metrics.get(metric, {}).get("score")
        return math.nan if s is None else s


def family(name: str) -> str:
    """``psnr/baseline`` -> ``psnr``."""
    return name.split("/", 1)[0]


def loss_definition(name: str, meta: Mapping[str, Any]) -> str | None:
    """How the quality loss of metric ``name`` is defined (None: it cannot be scored)."""
    pairing = meta.get("pairing")
    if pairing == "baseline":
        return PAIRED_LOSS[family(name)][1] if family(name) in PAIRED_LOSS else None
    if pairing:
        return None
    return "base - value" if meta.get("higher_is_better", True) else "value - base"


def scorable_metrics(base: Record, variants: Sequence[Record]) -> tuple[list[str], dict[str, str]]:
    """Metrics every variant record carries that can be scored; and why the others cannot."""
    names: list[str] = []
    left_out: dict[str, str] = {}
    for name in sorted({n for r in variants for n in r.get("metrics", {})}):
        meta = next(r["metrics"][name] for r in variants if name in r.get("metrics", {}))
        if any(name not in r.get("metrics", {}) for r in variants):
            left_out[name] = "missing from some variant records"
        elif meta.get("pairing") not in (None, "baseline"):
            left_out[name] = f"paired with {meta['pairing']}: it measures the VAE, which no action changes"
        elif loss_definition(name, meta) is None:
            left_out[name] = "no perfect-match value is known for this baseline-paired metric"
        elif not meta.get("pairing") and name not in base.get("metrics", {}):
            left_out[name] = "missing from the base record"
        else:
            names.append(name)
    return names, left_out


def metric_cell(name: str, meta: Mapping[str, Any], base: Record, ms_saved: float) -> dict[str, float | None]:
    """value, delta (variant - base), loss and score (loss per ms saved) of one metric."""
    value = float(meta["value"])
    if meta.get("pairing") == "baseline":
        loss = PAIRED_LOSS[family(name)][0](value)
        ident = PAIRED_IDENTITY.get(family(name))
        delta = value - ident if ident is not None else None
    else:
        base_value = float(base["metrics"][name]["value"])
        delta = value - base_value
        loss = -delta if meta.get("higher_is_better", True) else delta
    score = loss / ms_saved if ms_saved > 0 and math.isfinite(loss) else None
    return {"value": value, "delta": delta, "loss": loss, "score": score}


def build_rows(actions: Sequence[str], records: Mapping[str, Record], base: Record,
               blocks_ms: Mapping[str, float], base_ms: float, metrics: Sequence[str]) -> list[Row]:
    """One row per action, in ``actions`` order (not ranked yet)."""
    rows = []
    for action in actions:
        rec, saved = records[action], blocks_ms[action]
        cells = {m: metric_cell(m, rec["metrics"][m], base, saved) for m in metrics}
        rows.append(Row(action, rec["run_id"], saved, base_ms - saved, cells))
    return rows


def choose_rank_metric(rank_by: Sequence[str], metrics: Sequence[str]) -> str:
    """The first of ``rank_by`` that could be scored."""
    for name in rank_by:
        if name in metrics:
            return name
    from evalsuite.errors import EvalsuiteError

    raise EvalsuiteError(f"none of study.rank_by={list(rank_by)} was measured by every run; scored "
                         f"metrics: {list(metrics) or 'none'}. Add one of them to the metrics "
                         "(CLIP needs its weights, or metrics.allow_random_weights=true for a smoke "
                         "run) or set study.rank_by")


def rank_rows(rows: Sequence[Row], metric: str) -> list[Row]:
    """Rows sorted by ``metric``'s score, lowest first (unscorable last), ranks set from 1.

    Ties keep the action order, so the ranking is deterministic.
    """
    def key(item: tuple[int, Row]) -> tuple[bool, float, int]:
        i, row = item
        s = row.score(metric)
        return (math.isnan(s), 0.0 if math.isnan(s) else s, i)

    ranked = [row for _, row in sorted(enumerate(rows), key=key)]
    for i, row in enumerate(ranked, 1):
        row.rank = i
    return ranked
