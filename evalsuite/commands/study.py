"""``evalsuite study``: a built-in multi-run study; writes its ranking table and plot.

``conf/study.yaml`` is the run config plus a ``study`` node, so every override of
``evalsuite run`` applies (``model=``, ``dataset=``, ``sampler.steps=``, ``metrics=``, ...).
The one study so far is SnapFusion's block sensitivity (``evalsuite.studies``).
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, hydra_choices, report_errors
from evalsuite.config.study import register_study_configs

log = logging.getLogger("evalsuite")
register_study_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="study")
@report_errors
def app(cfg: DictConfig) -> None:
    """Run the study, print its Markdown table and where the files are."""
    from hydra.core.hydra_config import HydraConfig

    from evalsuite.studies.block_sensitivity import run_study

    result = run_study(cfg, hydra_choices(), CONF_DIR, list(HydraConfig.get().overrides.task))
    print(result.files["md"].read_text(encoding="utf-8"), end="")
    log.info("study %s: %d actions ranked by %s; table, plot and data in %s", result.study_id,
             len(result.rows), result.rank_metric, result.out_dir)
