"""SnapFusion's block-sensitivity study (architecture evolving, arXiv 2306.00980 Sec. 3.2).

For every action (remove cross-attention block j or residual block j of stage i; see
``actions``), the variant is evaluated by an ordinary ``evalsuite.run.run`` with
``ablation=[drop_blocks]`` and ``ablation.drop_blocks.actions=[<action>]``: zero-shot surgery
on the loaded weights, real metric runs on a prompt subset, one immutable record each, and
the base model's samples generated once and shared by every variant. Latency is not timed
per variant: it comes from the per-block lookup table (``lookup``), built once. Actions are
ranked by quality lost per ms saved (``ranking``) and written as a table and a plot under
``<results_dir>/studies/block_sensitivity/<study id>/``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from evalsuite.config.validate import validate_config
from evalsuite.errors import EvalsuiteError
from evalsuite.io import atomic_write_text
from evalsuite.metrics.weights import is_random, weight_records
from evalsuite.resources import conf_dir as default_conf_dir
from evalsuite.studies.actions import ActionSet, action_set
from evalsuite.studies.lookup import LatencyTable, measure_lookup_table
from evalsuite.studies.ranking import (Row, build_rows, choose_rank_metric, loss_definition,
                                       rank_rows, scorable_metrics)
from evalsuite.studies.render import write_outputs

log = logging.getLogger(__name__)

NAME = "block_sensitivity"


@dataclass
class StudyResult:
    """What a study produced: where, the ranked rows, and the records they come from."""

    study_id: str
    out_dir: Path
    rank_metric: str
    metrics: list[str]
    rows: list[Row]
    base_record_id: str
    files: dict[str, Path]


def drop_blocks_node(actions: Sequence[str], conf_dir: str | Path) -> dict[str, Any]:
    """``conf/ablation/drop_blocks.yaml`` with its actions replaced: what
    ``ablation=[drop_blocks] ablation.drop_blocks.actions=[...]`` composes to."""
    node = OmegaConf.to_container(OmegaConf.load(Path(conf_dir) / "ablation" / "drop_blocks.yaml"))
    assert isinstance(node, dict)
    node["drop_blocks"]["actions"] = list(actions)
    return node


def prompt_limit(cfg: DictConfig) -> int | None:
    """The study's prompt subset: the first ``study.prompts``, capped by ``dataset.limit``."""
    limits = [x for x in (cfg.study.prompts, cfg.dataset.limit) if x is not None]
    return min(limits) if limits else None


def run_config(cfg: DictConfig, actions: Sequence[str], conf_dir: str | Path,
               tag: str | None = None) -> DictConfig:
    """The run config of one variant (no ``actions``: the base), as Hydra would compose it.

    A copy of the study's config without its ``study`` node, so the config hash (and thus
    the record) is the one ``evalsuite run`` gives for the same overrides; ``tags`` (not
    hashed) name the study so its records can be found.
    """
    out = copy.deepcopy(cfg)
    with open_dict(out):
        del out["study"]
        out.ablation = drop_blocks_node(actions, conf_dir) if actions else {}
        out.dataset.limit = prompt_limit(cfg)
        if tag:
            out.tags = [*cfg.tags, tag]
    return out


def _check(cfg: DictConfig) -> None:
    if cfg.study.name != NAME:
        raise EvalsuiteError(f"study.name={cfg.study.name!r} is not a known study; known: {NAME}")
    if cfg.ablation:
        raise EvalsuiteError(
            f"the block-sensitivity study removes blocks from the model itself; ablation="
            f"[{','.join(cfg.ablation)}] must be empty (choose the base with model=<preset> or "
            "model.path=<folder>)")


def _footer(base: dict[str, Any], rank_metric: str, meta: dict[str, dict[str, Any]],
            left_out: dict[str, str], acts: ActionSet, table: LatencyTable) -> list[str]:
    """Where every column comes from (printed under the table and kept in the CSV)."""
    ds, s = base["dataset"], base["sampler"]
    lines = [
        f"ranked by {rank_metric}: quality lost per ms saved, lowest first (row 1: the best "
        "block to remove); for clip_score this is SnapFusion's value score dCLIP/dLatency",
        table.footer() + "; d_latency_ms = -saved_ms = -(the block's lookup-table entry)",
        f"quality: one `evalsuite run` per action (ablation=[drop_blocks], zero-shot surgery on "
        f"the model's weights) on {ds['count']} prompts of {ds['name']} (sha256 "
        f"{ds['sha256'][:12]}), {s['scheduler']} {s['steps']} steps, CFG {s['guidance_scale']}, "
        f"seed {s['seed']}; base (no ablation): record {base['run_id']}",
    ]
    for m, mm in meta.items():
        ref = "its value for identical images" if mm.get("pairing") else "the base record's value"
        lines.append(f"{m}: loss = {loss_definition(m, mm)}; d({m}) = value - {ref}")
        if any(is_random(r) for r in weight_records(mm.get("weights"))):
            lines.append(f"{m}: computed with RANDOM weights (metrics.allow_random_weights=true); "
                         "its values test the machinery only")
    lines += [f"not scored: {m}: {why}" for m, why in left_out.items()]
    if acts.rejected:
        lines.append("left out (drop_blocks rejects them): "
                     + "; ".join(f"{a}: {r.rsplit(': ', 1)[-1]}" for a, r in acts.rejected.items()))
    lines.append(f"{len(acts.actions)} actions evaluated; each row's record is "
                 "<results_dir>/records/<record>.json")
    return lines


def _measure(cfg: DictConfig, base_config: dict[str, Any], preset: list[Any],
             acts: ActionSet) -> LatencyTable:
    """The lookup table, built once; every selected action must have an entry."""
    lat = cfg.study.latency
    table = measure_lookup_table(base_config, preset, latent=cfg.model.resolution // 8,
                                 device=cfg.device, dtype=cfg.sampler.dtype, batch=lat.batch,
                                 text_len=lat.text_len, warmup=lat.warmup, repeats=lat.repeats,
                                 threads=cfg.get("threads"))
    missing = [a for a in acts.actions if a not in table.blocks_ms]
    if missing:  # a block the forward pass never reached cannot be priced
        raise EvalsuiteError(f"no latency lookup-table entry for {', '.join(missing)}")
    return table


def run_study(cfg: DictConfig, choices: dict[str, Any] | None = None,
              conf_dir: str | Path | None = None, overrides: Sequence[str] = ()) -> StudyResult:
    """Run the study on the composed ``conf/study.yaml`` config; write and return the ranking.

    ``overrides``: the command line's, recorded by every run together with the prompt limit
    the study applies, so a run under a named protocol says how it departs from it.
    """
    from evalsuite.profile.model import unet_architecture
    from evalsuite.results.record import new_run_id
    from evalsuite.run import check_writable, config_hash

    conf_dir = conf_dir or default_conf_dir()
    _check(cfg)
    validate_config(cfg)  # every setting of the runs, before the lookup table is measured
    base_config, preset = unet_architecture(cfg.model.arch, cfg.model.path)
    acts = action_set(base_config, preset, list(cfg.study.kinds), list(cfg.study.actions),
                      cfg.study.max_actions)
    results = check_writable(cfg.paths.results_dir)
    study_id = new_run_id(config_hash(cfg))
    log.info("%s %s: %d actions (%d left out); building the latency lookup table", NAME,
             study_id, len(acts.actions), len(acts.rejected))
    table = _measure(cfg, base_config, preset, acts)
    base, records = _run_variants(cfg, choices, conf_dir, overrides, acts,
                                  f"study:{NAME}/{study_id}")
    return _publish(cfg, results / "studies" / NAME / study_id, study_id, base, records,
                    acts, table)


def _run_variants(cfg: DictConfig, choices: dict[str, Any] | None, conf_dir: str | Path,
                  overrides: Sequence[str], acts: ActionSet, tag: str,
                  ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The base run and one run per action: (base record, action -> record)."""
    from evalsuite.models.lazy import ComponentCache
    from evalsuite.run import run

    loaded = ComponentCache()  # the model is loaded once and lent to every action's run
    limit = prompt_limit(cfg)
    ovr = [*overrides] + ([f"dataset.limit={limit}"] if limit != cfg.dataset.limit else [])
    base = run(run_config(cfg, [], conf_dir, tag), choices, ovr, loaded)  # + baseline samples
    records: dict[str, dict[str, Any]] = {}
    for i, action in enumerate(acts.actions, 1):
        log.info("%s: action %d/%d: remove %s", NAME, i, len(acts.actions), action)
        records[action] = run(run_config(cfg, [action], conf_dir, tag), choices, ovr, loaded)
    return base, records


def _publish(cfg: DictConfig, out_dir: Path, study_id: str, base: dict[str, Any],
             records: dict[str, dict[str, Any]], acts: ActionSet,
             table: LatencyTable) -> StudyResult:
    """Rank the actions; write the table, plot and ``study.json`` under ``out_dir``."""
    metrics, left_out = scorable_metrics(base, list(records.values()))
    rank_metric = choose_rank_metric(list(cfg.study.rank_by), metrics)
    meta = {m: records[acts.actions[0]]["metrics"][m] for m in metrics}
    rows = rank_rows(build_rows(acts.actions, records, base, table.blocks_ms, table.base_ms,
                                metrics), rank_metric)
    footer = _footer(base, rank_metric, meta, left_out, acts, table)
    title = f"Block sensitivity of {cfg.model.name} ({len(rows)} actions, ranked by {rank_metric})"
    files = write_outputs(out_dir, title, rows, metrics, rank_metric, footer)
    doc = {"study": NAME, "study_id": study_id, "rank_metric": rank_metric, "metrics": meta,
           "base_record": base["run_id"], "base_metrics": base["metrics"],
           "rows": [{**asdict(r), "d_latency_ms": r.d_latency_ms} for r in rows],
           "actions": acts.actions, "rejected": acts.rejected, "not_scored": left_out,
           "latency_table": table.to_dict(), "footer": footer,
           "config": OmegaConf.to_container(cfg, resolve=True)}
    files["json"] = atomic_write_text(out_dir / "study.json", json.dumps(doc, indent=1, default=str))
    log.info("%s: wrote %s", NAME, ", ".join(str(p) for p in files.values()))
    return StudyResult(study_id, out_dir, rank_metric, metrics, rows, base["run_id"], files)
