"""``evalsuite score``: metrics on existing image folders (no model); writes a record."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, hydra_choices, report_errors

log = logging.getLogger("evalsuite")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="score")
@report_errors
def app(cfg: DictConfig) -> None:
    """Score ``score.gen_dir`` (against ``score.ref_dir`` / ``score.prompts``)."""
    from hydra.core.hydra_config import HydraConfig

    from evalsuite.tasks import score  # torch and the metrics: after Hydra parsed the command

    record = score(cfg, hydra_choices(), list(HydraConfig.get().overrides.task))
    metrics = ", ".join(f"{k}={v['value']:.6g}" for k, v in record["metrics"].items()) or "none"
    log.info("score %s done in %.1f s; metrics: %s", record["run_id"],
             record["durations"]["total"], metrics)
    if not record["weights_verified"]:
        log.warning("some weight files were not verified against a published sha256 (see each "
                    "metric's 'weights' in the record)")
