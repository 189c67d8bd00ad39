"""``evalsuite table name=<definition>``: build a named table from the records, write every
format to ``<results>/tables/<name>.<fmt>`` (one file set per protocol section,
``<name>-p1``..., and per category table, ``<name>-categories``...) and print them."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from evalsuite.commands import CONF_DIR, report_errors
from evalsuite.config.results import register_result_configs

log = logging.getLogger("evalsuite")
register_result_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="table")
@report_errors
def app(cfg: DictConfig) -> None:
    """Render table definition ``cfg.name`` in every format of ``cfg.formats``."""
    from evalsuite.results.render import render, write_table
    from evalsuite.results.store import ResultStore
    from evalsuite.results.tables import build_named_tables

    results = Path(cfg.paths.results_dir)
    store = ResultStore.open(results)
    where = OmegaConf.to_container(cfg.where, resolve=True)
    tables, tdef = build_named_tables(store, cfg.name, CONF_DIR, where)
    for table in tables:  # one section per protocol, then per-category tables
        paths = write_table(table, results / "tables", list(cfg.formats), tdef.show_ci)
        log.info("table %s from %d of %d records: %s", table.name, len(table.record_ids),
                 len(store), ", ".join(str(p) for p in paths.values()))
    if cfg.print:
        print("\n".join(render(t, cfg.print, tdef.show_ci) for t in tables), end="")
