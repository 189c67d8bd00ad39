"""Hydra callbacks: a multirun's HTML report, written once; no empty folders left behind.

``ReportOnce``: each cell of a multirun writes its record and refreshes the tables, but not
the HTML report, which reads every record and its sample previews: refreshed per cell, a
sweep of n cells would pay for it n times. The report is written once when the multirun ends
(in the process that launched it, whatever the launcher). A sweep stopped part-way gets its
report from ``evalsuite report``.

Hydra's basic launcher creates ``<hydra.sweep.dir>/<job number>/`` for every job of a
multirun, even with ``hydra.output_subdir: null`` and ``chdir: false``, when nothing is
written there (evalsuite writes its outputs under ``paths.results_dir`` itself). The sweep
folder is ``<paths.results_dir>/multirun`` (``conf/config.yaml``): once the multirun ends, the
job folders that stayed empty are removed, and what is left is ``multirun.yaml``, Hydra's
record of the sweep (its overrides), plus any launcher logs (submitit writes its own).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger("evalsuite")


def remove_empty_job_folders(sweep_dir: str | Path) -> list[Path]:
    """Remove the empty folders directly under ``sweep_dir``; return the removed ones."""
    removed = []
    root = Path(sweep_dir)
    if not root.is_dir():
        return removed
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            folder.rmdir()  # fails unless empty: anything written there stays
        except OSError:
            continue
        removed.append(folder)
    return removed


class TidyMultirun(Callback):
    """On the end of a multirun, remove the job folders Hydra made and nothing filled."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        remove_empty_job_folders(config.hydra.sweep.dir)


class ReportOnce(Callback):
    """On the end of a multirun, write the HTML report of ``paths.results_dir`` once."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from evalsuite.results.report import write_report  # the report's imports: only here

        results = Path(config.paths.results_dir)
        if not (results / "records").is_dir():
            return  # no cell got as far as a record (validation failed, stage=generate)
        try:
            log.info("updated report %s", write_report(results))
        except Exception:  # noqa: BLE001 - the records and tables are on disk already
            log.exception("could not write the HTML report (the records and tables are "
                          "written; `evalsuite report` retries)")
