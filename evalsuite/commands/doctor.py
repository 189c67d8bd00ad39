"""``evalsuite doctor [fix=true]``: check a results folder; quarantine what is broken.

Exit status 0 when the folder is clean (after fixing, with ``fix=true``), 1 while problems
remain, 2 on a usage error. See ``evalsuite/doctor.py`` for what is checked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from evalsuite.commands import CONF_DIR, report_errors
from evalsuite.config.schema import PathsConfig
from evalsuite.errors import EvalsuiteError


@dataclass
class DoctorSettings:
    """``evalsuite doctor``: ``fix`` quarantines broken files; ``tmp_age_s`` makes a
    ``.tmp-*`` file stale."""

    fix: bool = False
    tmp_age_s: float = 3600.0
    paths: PathsConfig = MISSING


ConfigStore.instance().store(name="doctor_schema", node=DoctorSettings)


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
