"""``evalsuite stats``: export the reference statistics of every FID metric as ``.npz`` files
(``evalsuite.tasks.stats`` says what is written and how).

    evalsuite stats reference=coco2014_val_squash256 metrics=bk_sdm paths.coco_dir=/data/coco
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, report_errors

log = logging.getLogger("evalsuite")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="stats")
@report_errors
def app(cfg: DictConfig) -> None:
    """Export the reference statistics of the configured FID metrics."""
    # torch and the metrics: imported once Hydra has parsed the command (fast --help, errors)
    from evalsuite.tasks.stats import export_stats

    paths = export_stats(cfg)
    log.info("stats done: %s", ", ".join(str(p) for p in paths))
