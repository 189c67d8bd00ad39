"""``evalsuite assets``: which weight files the chosen metrics need, which are here; fetch.

Prints one line per asset (state, canonical file name, where it was found or where it
belongs). ``assets.fetch=true`` downloads the missing ones into ``paths.assets_dir`` (atomically,
digest-checked). Exit status 2 when ``assets.check`` is on and something is still missing or
corrupt, so the command can gate a job on an offline compute node.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from evalsuite.commands import CONF_DIR, report_errors

log = logging.getLogger("evalsuite")


def needed_assets(cfg: DictConfig) -> list[str]:
    """``assets.names`` if given, else every asset the configured metrics require."""
    if cfg.assets.names:
        return list(cfg.assets.names)
    from evalsuite.config.build import build

    names: list[str] = []
    for n, c in cfg.metrics["items"].items():
        for a in build(c, f"metrics.items.{n}").required_assets():
            if a not in names:
                names.append(a)
    return names


def manage(cfg: DictConfig) -> int:
    """List (and fetch) the assets; return the exit status."""
    from evalsuite import assets

    names = needed_assets(cfg)
    for name in names:
        assets.get(name)  # unknown names fail here, naming the known ones
    if cfg.assets.fetch:
        for st in assets.check(names, cfg.paths.assets_dir, verify=cfg.metrics.verify_assets):
            if st.state == "missing":
                log.info("fetching %s ...", st.filename)
                path = assets.fetch(st.name, cfg.paths.assets_dir, cfg.assets.mirror,
                                    cfg.metrics.verify_assets)
                log.info("saved %s", path)
    bad = 0
    for st in assets.check(names, cfg.paths.assets_dir, verify=cfg.metrics.verify_assets):
        where = st.path or str(assets.get(st.name).candidates(cfg.paths.assets_dir)[0])
        print(f"{st.state:<10} {st.name:<40} {where}")
        if st.state in ("missing", "corrupt"):
            bad += 1
            print(f"           {st.detail}")
    if bad and cfg.assets.check:
        print(f"evalsuite: error: {bad} of {len(names)} weight files missing or corrupt",
              file=sys.stderr)
        return 2
    return 0


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="assets")
@report_errors
def app(cfg: DictConfig) -> None:
    """List the weight files the metrics need; fetch missing ones with assets.fetch=true."""
    from hydra.core.hydra_config import HydraConfig

    from evalsuite.config.aliases import check_aliases

    check_aliases(HydraConfig.get().overrides.task)
    status = manage(cfg)
    if status:
        sys.exit(status)
