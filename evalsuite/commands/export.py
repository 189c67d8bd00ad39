"""``evalsuite export``: send the records of a results folder to W&B and/or MLflow
(``export.wandb.enabled=true``, ``export.mlflow.enabled=true``; see ``evalsuite.export``).

Records already exported are found and skipped. Exit status: 0 when every selected record is
in every enabled tracker, 1 when some failed (the rest are exported), 2 for bad settings, a
missing tracker package or no record selected (nothing exported).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from evalsuite.commands import CONF_DIR, report_errors
from evalsuite.config.export_command import register_export_command

log = logging.getLogger("evalsuite")
register_export_command()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
@report_errors
def app(cfg: DictConfig) -> None:
    """Export the selected records to every enabled tracker; print one line per record."""
    from evalsuite.errors import ConfigError
    from evalsuite.export import export_records, exporters
    from evalsuite.results.store import ResultStore

    results = Path(cfg.paths.results_dir)
    trackers = exporters(cfg.export, results)
    if not trackers:
        raise ConfigError("no tracker is enabled; set export.wandb.enabled=true and/or "
                          "export.mlflow.enabled=true")
    store = ResultStore.open(results)
    where = OmegaConf.to_container(cfg.where, resolve=True)
    records = store.filter(where)
    if cfg.run_ids:
        wanted = {store.get(str(ref))["run_id"] for ref in cfg.run_ids}
        records = [r for r in records if r["run_id"] in wanted]
    if not records:
        raise ConfigError(f"no record selected in {results / 'records'} ({len(store)} "
                          f"records; run_ids={list(cfg.run_ids)}, where={where})")
    done, failed = export_records(trackers, records, results, int(cfg.export.preview))
    for item in done:
        print(f"{item.tracker}\t{item.run_id}\t{'exported' if item.created else 'exists'}"
              f"\t{item.ref}")
    log.info("%d record(s) x %d tracker(s): %d exported, %d already there, %d failed",
             len(records), len(trackers), sum(d.created for d in done),
             sum(not d.created for d in done), len(failed))
    if failed:
        sys.exit(1)
