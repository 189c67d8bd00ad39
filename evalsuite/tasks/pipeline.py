"""The one pipeline every task goes through: validate -> materialise -> evaluate -> record ->
publish (-> export to W&B/MLflow when enabled: ``evalsuite.export``).

``stage=generate`` only materialises (this shard's part); ``stage=metrics`` only scores, and
refuses an incomplete image set unless ``allow_incomplete=true``; ``stage=all`` does both, and
with several shards the shard that completes the set computes the metrics, once (the merge
claim, ``evalsuite.tasks.claim``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from omegaconf import DictConfig

from evalsuite.config.aliases import check_aliases
from evalsuite.config.validate import validate_config
from evalsuite.errors import EvalsuiteError
from evalsuite.evaluate import evaluate_sources
from evalsuite.export import after_run, exporters
from evalsuite.io import writes_held
from evalsuite.produce.materialise import Shard
from evalsuite.tasks.base import STAGES, Context, Task
from evalsuite.tasks.claim import DEFAULT_LEASE_S, Claim, claim_merge
from evalsuite.tasks.record import publish, record_envelope
from evalsuite.tasks.setup import (check_writable, config_hash, eval_options, metric_factories,
                                   set_threads)

log = logging.getLogger(__name__)


def context(cfg: DictConfig, task: Task, choices: dict[str, Any] | None,
            overrides: Sequence[str]) -> Context:
    """Check the settings every task shares and set up what they all use (nothing written)."""
    check_aliases(overrides)
    validate_config(cfg)
    stage = cfg.get("stage", "all")
    if stage not in STAGES:
        raise EvalsuiteError(f"stage={stage!r}; choose one of {list(STAGES)}")
    shard = Shard(cfg.shard.index, cfg.shard.count) if "shard" in cfg else Shard()
    factories = metric_factories(cfg)
    results = check_writable(cfg.paths.results_dir)
    return Context(cfg, results, factories, eval_options(cfg, results, task.on_error), shard,
                   stage, dict(choices or {}), list(overrides))


def execute(task: Task, cfg: DictConfig, choices: dict[str, Any] | None = None,
            overrides: Sequence[str] = (), report: bool = True) -> dict[str, Any] | None:
    """Run ``task`` through the pipeline; return its record, or None when this call computed
    no metrics (``stage=generate``, a shard that did not complete the set, or the merge is
    another shard's). ``report=False``: leave the HTML report to the caller (a multirun
    writes it once at its end)."""
    t0 = time.perf_counter()
    # validate: every setting, input and output folder, before any work. The digest caches
    # the checks fill are held in memory and written only once every check has passed.
    with writes_held():
        ctx = context(cfg, task, choices, overrides)
        trackers = exporters(cfg.get("export"), ctx.results)  # W&B/MLflow: packages checked
        # Threads once the setting is validated and before prepare: on CPU the count is part
        # of the generation key that prepare computes.
        set_threads(cfg.get("threads"))
        task.prepare(ctx)
    durations = task.materialise(ctx) if ctx.stage != "metrics" else {}
    if ctx.stage == "generate":
        log.info("stage=generate: images written; score them with stage=metrics")
        return None
    if not _ready(task, ctx):
        return None
    claim = _claim(task, ctx) if ctx.stage == "all" and ctx.shard.count > 1 else None
    if ctx.stage == "all" and ctx.shard.count > 1 and claim is None:
        return None
    inputs, pairings = task.inputs(ctx)
    ev = evaluate_sources(inputs, ctx.factories, pairings, ctx.opts)
    durations["metrics"] = ev.seconds
    durations["total"] = time.perf_counter() - t0
    record = {**record_envelope(ctx, task, ev, durations), **task.section(ctx, ev)}
    if claim is not None:
        record["merge_claim"] = claim.token
    path = publish(ctx.results, record, report)
    if claim is not None:
        claim.done(path)
    after_run(trackers, cfg.get("export"), record, ctx.results)  # the record is on disk first
    return record


def _ready(task: Task, ctx: Context) -> bool:
    """Whether to score now: the sets are complete, or incomplete and scored as they are."""
    why = task.incomplete(ctx)
    if why is None:
        return True
    if ctx.stage == "all" and ctx.shard.count > 1:
        log.info("shard %d of %d done; metrics run when the last shard finishes (or with "
                 "stage=metrics). Still missing: %s", ctx.shard.index, ctx.shard.count, why)
        return False
    if not ctx.cfg.get("allow_incomplete", False):
        raise EvalsuiteError(f"the image set is incomplete, so no metrics were computed: {why}. "
                             "Re-run the failed shards, or score what exists with "
                             "allow_incomplete=true (the record then gives the count used).")
    log.warning("scoring an incomplete image set (allow_incomplete=true): %s", why)
    task.keep_present()
    return True


def _claim(task: Task, ctx: Context) -> Claim | None:
    """Exactly one shard wins the right to merge (see ``evalsuite.tasks.claim``)."""
    name = f"{config_hash(ctx.cfg)[:16]}-{task.claim_key()}.json"
    lease = float(ctx.cfg.shard.get("merge_lease_s") or DEFAULT_LEASE_S)
    return claim_merge(ctx.results / "cache" / "merges" / name, ctx.results / "records",
                       ctx.shard.index, lease)
