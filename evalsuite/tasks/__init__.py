"""Tasks and the one pipeline they go through (see ``evalsuite.tasks.pipeline``).

``run(cfg)`` runs the task a run config names (``task=generate`` or ``task=reconstruction``);
``score(cfg)`` runs ``evalsuite score``'s config.
"""

from __future__ import annotations

from typing import Any, Sequence

from omegaconf import DictConfig

from evalsuite.errors import EvalsuiteError
from evalsuite.models.lazy import ComponentCache
from evalsuite.tasks.base import Context, Task
from evalsuite.tasks.generate import GenerateTask
from evalsuite.tasks.pipeline import execute
from evalsuite.tasks.reconstruct import ReconstructTask
from evalsuite.tasks.score import ScoreTask
from evalsuite.tasks.setup import check_writable, config_hash, eval_options

TASKS = ("generate", "reconstruction")


def run(cfg: DictConfig, choices: dict[str, Any] | None = None, overrides: Sequence[str] = (),
        components: ComponentCache | None = None, report: bool = True) -> dict[str, Any] | None:
    """Run the configured task and stages; return the record, or None when no metrics were
    computed (see ``evalsuite.tasks.pipeline.execute``).

    ``overrides`` are the command line's Hydra overrides: recorded, and checked against a
    named protocol's fields (``evalsuite.protocols``). ``components``: lend the model's
    loaded components to several runs of one process (a study) instead of reloading them.
    ``report=False``: refresh the tables but not the HTML report (a multirun's cells).
    """
    task: Task
    if cfg.task == "generate":
        task = GenerateTask(components)
    elif cfg.task == "reconstruction":
        task = ReconstructTask()
    else:
        raise EvalsuiteError(f"task={cfg.task!r}; choose one of {list(TASKS)}")
    return execute(task, cfg, choices, overrides, report)


def score(cfg: DictConfig, choices: dict[str, Any] | None = None,
          overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Score the configured folders and write one result record; return the record."""
    record = execute(ScoreTask(), cfg, choices, overrides)
    assert record is not None  # score has one stage and no shards
    return record


__all__ = ["Context", "Task", "check_writable", "config_hash", "eval_options", "execute", "run",
           "score"]
