"""``evalsuite report``: write ``<results>/report.html`` (tables, plots, image grids)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, report_errors
from evalsuite.config.results import register_result_configs

log = logging.getLogger("evalsuite")
register_result_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="report")
@report_errors
def app(cfg: DictConfig) -> None:
    """Write the self-contained HTML report of the results folder and print its path."""
    from evalsuite.results.report import write_report

    path = write_report(cfg.paths.results_dir, cfg, CONF_DIR)
    log.info("report written; open it in a browser: file://%s", path.resolve())
    print(path)
