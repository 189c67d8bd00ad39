"""Which row each row of a table is compared with: the baseline of the same model.

A table definition names its baseline as a row label (one row for every row) or as a
where-mapping (``{ablations: "-"}``). With a mapping, every model has its own baseline: the
first row of that model, with the same sampler settings (scheduler, steps, guidance
scale...), whose records match. A row of ``bk_sdm_small+shared_kv`` is compared
with ``bk_sdm_small``, never with ``sd15``; a model without a matching row gets no deltas.
No row is compared with itself: the baseline row's own delta cells stay empty, and a table in
which no row has another row to be compared with has no delta columns at all.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.io import sha256_json
from evalsuite.results.identity import model_identity
from evalsuite.results.record import task_of
from evalsuite.results.store import VARIANT_SAMPLER, matches

Rec = Mapping[str, Any]


def model_group(rec: Rec | None) -> str:
    """What "the same model" means for baselines: the model identity without the run's name
    (a named rerun of the same weights is still that model), under the same sampler settings. Decoder evaluations all share
    one group: the decoders are what is compared."""
    if rec is None:
        return "?"
    if task_of(rec) == "reconstruction":
        return "reconstruction"
    ident = dict(model_identity(rec))
    ident.pop("name", None)
    sampler = rec.get("sampler") or {}  # a row at cfg 3 is compared with the baseline at cfg 3
    return sha256_json([ident, [str(sampler.get(k)) for k in VARIANT_SAMPLER]])[:16]


def baseline_rows(wanted: Any, labels: Sequence[str], records: Sequence[Sequence[Rec]]) -> list[int | None]:
    """For each row, the index of its baseline row (None: no baseline, or the row itself).

    ``wanted``: a row label, or a where-mapping (the first matching row of each model).
    ``records``: each row's records, oldest first.
    """
    n = len(labels)
    if wanted is None:
        return [None] * n
    if not isinstance(wanted, Mapping):
        base = labels.index(wanted) if wanted in labels else None
        return [None if base is None or i == base else base for i in range(n)]
    groups = [model_group(recs[-1] if recs else None) for recs in records]
    first: dict[str, int] = {}
    for i, recs in enumerate(records):
        if any(matches(r, wanted) for r in recs):
            first.setdefault(groups[i], i)
    out = [first.get(g) for g in groups]
    return [None if b == i else b for i, b in enumerate(out)]


def baseline_note(bases: Sequence[int | None], labels: Sequence[str], wanted: Any) -> str:
    """The footer line that says what Δ is (or why there is none)."""
    used = sorted({b for b in bases if b is not None})
    if wanted is None:
        return ""
    if not used:
        return (f"No delta columns: no row matches the baseline {wanted!r}, or the baseline is "
                "the only row of its model (a row is never compared with itself).")
    names = ", ".join(f"'{labels[b]}'" for b in used)
    which = "the baseline row" if len(used) == 1 else "the baseline row of the same model"
    return (f"Δ: difference to {which} ({names}); Δ% = Δ / |baseline| × 100; rows without a "
            "baseline of their own model, and the baseline rows themselves, have no Δ.")
