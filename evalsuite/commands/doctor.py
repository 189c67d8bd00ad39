"""``evalsuite doctor [fix=true]``: check a results folder; quarantine what is broken.

Exit status 0 when the folder is clean (after fixing, with ``fix=true``), 1 while problems
remain, 2 on a usage error. See ``evalsuite/doctor.py`` for what is checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, report_errors
from evalsuite.config.results import register_result_configs
from evalsuite.errors import EvalsuiteError


register_result_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="doctor")
@report_errors
def app(cfg: DictConfig) -> None:
    """Check ``paths.results_dir``, print the findings; with ``fix``, repair and re-check."""
    from evalsuite.doctor import check_folder, fix, render

    results = Path(cfg.paths.results_dir)
    if not results.is_dir():
        raise EvalsuiteError(f"results folder {results} does not exist; set "
                             "paths.results_dir=<folder> (or EVALSUITE_RESULTS)")
    if cfg.tmp_age_s < 0:
        raise EvalsuiteError(f"tmp_age_s={cfg.tmp_age_s}; give a number of seconds >= 0")
    findings = check_folder(results, cfg.tmp_age_s)
    if cfg.fix:
        fix(results, findings)
    print(render(results, findings, bool(cfg.fix)), end="")
    remaining = check_folder(results, cfg.tmp_age_s) if cfg.fix else findings
    if any(f.is_problem for f in remaining):
        if cfg.fix:
            print("still wrong after fixing:\n" + render(results, remaining, False), end="")
        sys.exit(1)
