"""``evalsuite compare baseline=<ref> candidate=<ref>``: verdict table; exit 1 on a regression."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from evalsuite.commands import CONF_DIR, report_errors
from evalsuite.errors import EvalsuiteError
from evalsuite.config.results import register_result_configs

register_result_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="compare")
@report_errors
def app(cfg: DictConfig) -> None:
    """Compare two records metric by metric; exit status 1 when the candidate regressed."""
    from evalsuite.results.compare import compare_records, render_comparison, select
    from evalsuite.results.store import ResultStore

    c = OmegaConf.to_container(cfg, resolve=True)
    for side in ("baseline", "candidate"):
        if c[side] in (None, "???", ""):
            raise EvalsuiteError(f"compare needs {side}=<run id | latest | {{field: value, ...}}>, "
                                 f"e.g. {side}=latest or '{side}={{ablations:shared_kv}}'")
    store = ResultStore.open(c["paths"]["results_dir"])
    base = select(store, c["baseline"], c["where"])
    cand = select(store, c["candidate"], c["where"])
    result = compare_records(base, cand, c["tolerances"], c["metrics"], c["fail_on_missing"])
    print(render_comparison(result), end="")
    if not result.passed:
        sys.exit(1)
