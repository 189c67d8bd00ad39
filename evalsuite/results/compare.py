"""Regression gate: compare a candidate record with a baseline record, metric by metric.

For each metric, ``worse`` is the candidate's degradation (positive = worse, whichever way the
metric points). Allowed degradation (``tolerance``) is ``max(abs, rel * |baseline|)`` from the
config. When the records carry bootstrap intervals (``metrics[m].ci``), the noise of the
difference is ``z * sqrt(se_b^2 + se_c^2)``, each standard error read from its interval's
half-width (normal approximation). Verdicts:

- ``regression``: worse by more than tolerance + noise (fails the gate);
- ``within noise``: worse by more than the tolerance, but not by more than the noise;
- ``better``: better by more than tolerance + noise; ``ok``: anything else;
- ``missing``: the baseline has it, the candidate does not (fails unless configured not to);
  ``new``: only the candidate has it.

Records measured under different protocols, or a metric computed with a different version,
parameters or weights, are refused with the differing fields named: their numbers differ for
reasons that are not the checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Mapping, Sequence

from tabulate import tabulate

from evalsuite.errors import EvalsuiteError
from evalsuite.results.protocol import (
    Protocol,
    describe_differences,
    differing_fields,
    metric_identity,
    protocol_of,
)
from evalsuite.results.identity import distinct_labels, variant_of
from evalsuite.results.store import ResultStore

FAILING = ("regression", "missing")


class ProtocolMismatch(EvalsuiteError):
    """Two records cannot be compared: their protocols or metric identities differ."""


@dataclass
class Verdict:
    metric: str
    baseline: float | None
    candidate: float | None
    worse_by: float | None  # positive: the candidate is worse
    noise: float  # half-width of the difference's interval (0 without intervals)
    tolerance: float
    verdict: str


@dataclass
class Comparison:
    baseline: Mapping[str, Any]
    candidate: Mapping[str, Any]
    protocol: Protocol
    verdicts: list[Verdict] = field(default_factory=list)
    fail_on_missing: bool = True

    def failures(self) -> list[Verdict]:
        """Verdicts that fail the gate."""
        failing = FAILING if self.fail_on_missing else ("regression",)
        return [v for v in self.verdicts if v.verdict in failing]

    @property
    def passed(self) -> bool:
        return not self.failures()


def select(store: ResultStore, ref: Any, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A record: by run id (or unique prefix), ``"latest"``, or the latest matching a mapping."""
    if isinstance(ref, Mapping):
        return store.latest({**dict(where or {}), **dict(ref)})
    if ref is None or str(ref) == "latest":
        return store.latest(where)
    return store.get(str(ref))


def check_comparable(base: Mapping[str, Any], cand: Mapping[str, Any], metrics: Sequence[str]) -> Protocol:
    """The shared protocol; ``ProtocolMismatch`` naming every differing field otherwise."""
    pb, pc = protocol_of(base), protocol_of(cand)
    if pb.key != pc.key:
        raise ProtocolMismatch(
            f"refusing to compare {base['run_id']} with {cand['run_id']}: they were measured under "
            f"different protocols; differing fields: {describe_differences(differing_fields(pb.fields, pc.fields))}")
    for m in metrics:
        diffs = differing_fields(metric_identity(base, m), metric_identity(cand, m))
        if diffs:
            raise ProtocolMismatch(
                f"refusing to compare {m} of {base['run_id']} and {cand['run_id']}: the metric differs: "
                f"{describe_differences(diffs)}")
    return pb


def tolerance_for(metric: str, tolerances: Mapping[str, Mapping[str, float]], baseline: float) -> float:
    """Allowed degradation: the metric's entry, else its name without the pairing (``psnr``
    for ``psnr/baseline``), else its family (``fid`` for ``fid_clean``), else ``default``;
    ``max(abs, rel * |baseline|)``."""
    base = metric.split("/")[0]
    tol = next((tolerances[k] for k in (metric, base, base.split("_")[0], "default")
                if k in tolerances), {})
    return max(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0)) * abs(baseline))


def _standard_error(m: Mapping[str, Any]) -> tuple[float, float] | None:
    """(standard error, level) from a recorded interval, or None without one."""
    ci = m.get("ci")
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return None
    level = float(ci.get("level", 0.95))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return (float(ci["high"]) - float(ci["low"])) / (2 * z), level


def noise(mb: Mapping[str, Any], mc: Mapping[str, Any]) -> float:
    """Half-width of the interval of (candidate - baseline), at the recorded level."""
    ses = [s for s in (_standard_error(mb), _standard_error(mc)) if s is not None]
    if not ses:
        return 0.0
    z = NormalDist().inv_cdf(0.5 + ses[0][1] / 2)
    return z * math.sqrt(sum(se * se for se, _ in ses))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)


def judge(metric: str, mb: Mapping[str, Any] | None, mc: Mapping[str, Any] | None,
          tolerances: Mapping[str, Mapping[str, float]]) -> Verdict:
    """The verdict for one metric (see the module docstring)."""
    vb = mb.get("value") if mb else None
    vc = mc.get("value") if mc else None
    if not _finite(vb) or not _finite(vc):
        kind = "new" if mb is None and mc is not None else ("ok" if vb == vc and mb else "missing")
        return Verdict(metric, vb, vc, None, 0.0, 0.0, kind)
    higher = bool((mb or mc).get("higher_is_better", True))
    worse = 0.0 if vb == vc else (vb - vc if higher else vc - vb)  # inf == inf: no change
    tol = tolerance_for(metric, tolerances, vb) if math.isfinite(vb) else 0.0
    h = noise(mb, mc)
    if worse - h > tol:
        kind = "regression"
    elif worse > tol:
        kind = "within noise"
    elif -worse - h > tol:
        kind = "better"
    else:
        kind = "ok"
    return Verdict(metric, vb, vc, worse, h, tol, kind)


def compare_records(base: Mapping[str, Any], cand: Mapping[str, Any],
                    tolerances: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = (),
                    fail_on_missing: bool = True) -> Comparison:
    """Judge every metric in ``metrics`` (default: every metric of either record)."""
    mb, mc = base.get("metrics") or {}, cand.get("metrics") or {}
    names = list(metrics) or sorted(set(mb) | set(mc))
    protocol = check_comparable(base, cand, [m for m in names if m in mb and m in mc])
    verdicts = [judge(m, mb.get(m), mc.get(m), tolerances) for m in names]
    return Comparison(base, cand, protocol, verdicts, fail_on_missing)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def render_comparison(cmp: Comparison) -> str:
    """The verdict table (Markdown) with the two records, the protocol and the outcome."""
    rows = [[v.metric, _num(v.baseline), _num(v.candidate),
             "" if v.worse_by is None else f"{v.worse_by:+.4g}", f"±{v.noise:.3g}" if v.noise else "",
             f"{v.tolerance:.4g}", v.verdict] for v in cmp.verdicts]
    head = ["metric", "baseline", "candidate", "worse by", "noise", "tolerance", "verdict"]
    fails = cmp.failures()
    outcome = ("PASS: no regression" if not fails else
               "FAIL: " + ", ".join(f"{v.metric} ({v.verdict})" for v in fails))
    # Labels that differ whenever the variants do (two checkpoints without name= included).
    base, cand = distinct_labels([variant_of(cmp.baseline), variant_of(cmp.candidate)])
    return "\n".join([
        f"baseline:  {cmp.baseline['run_id']} ({base})",
        f"candidate: {cmp.candidate['run_id']} ({cand})",
        f"protocol:  {cmp.protocol.summary()}", "",  # one line; every field is in table footers
        tabulate(rows, head, tablefmt="github", disable_numparse=True), "", outcome]) + "\n"
