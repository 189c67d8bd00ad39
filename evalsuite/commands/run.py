"""``evalsuite run``: generate samples for the configured model, score them, write a record."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, hydra_choices, report_errors

log = logging.getLogger("evalsuite")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@report_errors
def app(cfg: DictConfig) -> None:
    """Generate samples for the configured model and score them; write a record and table."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from evalsuite.tasks import run  # the pipeline's imports: after Hydra parsed the command

    from evalsuite.config.aliases import override_key

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    # a multirun's cells leave the report to its end (evalsuite.hydra_callbacks.ReportOnce),
    # which writes it for the sweep's results folder: a cell given a folder of its own
    # (paths.results_dir swept) still writes its report itself
    own_folder = any(override_key(o) == "paths.results_dir" for o in overrides)
    record = run(cfg, hydra_choices(), overrides,
                 report=hydra_cfg.mode != RunMode.MULTIRUN or own_folder)
    if record is None:
        return
    metrics = ", ".join(f"{k}={v['value']:.4g}" for k, v in record["metrics"].items()) or "none"
    log.info("run %s done in %.1f s; metrics: %s", record["run_id"],
             record["durations"]["total"], metrics)
