"""What a task is: the part of a run that differs between generate, reconstruct and score.

The pipeline (``evalsuite.tasks.pipeline``) does everything else, once for every task:
validate -> materialise images -> evaluate -> record -> publish. A task contributes

- ``prepare``: build and validate its objects (model, VAEs, prompts, reference, folders); it
  writes nothing but digest caches, and those only after its last check;
- ``materialise``: make this shard's missing images (``evalsuite.produce.materialise``);
- ``incomplete`` / ``keep_present``: whether the image sets are complete, and scoring only
  what exists (``allow_incomplete=true``);
- ``inputs``: the manifests written and the ``Inputs`` to score, with the pairings;
- ``section``: the task's own part of the record (model, VAEs, folders, status).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig

from evalsuite.evaluate import EvalOptions, EvalResult, Inputs
from evalsuite.produce.materialise import Shard
from evalsuite.tasks.setup import MetricFactories

STAGES = ("all", "generate", "metrics")


@dataclass
class Context:
    """What the pipeline set up for a task, from the config and the command line."""

    cfg: DictConfig
    results: Path
    factories: MetricFactories
    opts: EvalOptions
    shard: Shard = Shard()
    stage: str = "all"
    choices: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)


class Task(Protocol):
    """One kind of evaluation; see the module docstring."""

    name: str  # the record's ``task``
    on_error: str  # a metric that cannot be computed: "skip" (recorded) or "raise"

    def prepare(self, ctx: Context) -> None: ...

    def materialise(self, ctx: Context) -> dict[str, float]: ...

    def incomplete(self, ctx: Context) -> str | None: ...

    def keep_present(self) -> None: ...

    def claim_key(self) -> str: ...

    def protocol(self) -> dict[str, Any]: ...

    def hash_inputs(self) -> dict[str, Any] | None: ...

    def inputs(self, ctx: Context) -> tuple[Inputs, list[str]]: ...

    def section(self, ctx: Context, ev: EvalResult) -> dict[str, Any]: ...
