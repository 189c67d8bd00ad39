"""Config schema of ``evalsuite study`` (values: ``conf/study.yaml``).

The study's root config is the run config (``conf/config.yaml``: every group and default of
``evalsuite run``) plus a ``study`` node, so a study composes exactly the configs a run
would, and each variant it evaluates is an ordinary run config. As for the other commands,
the values live in the YAML file only; these dataclasses give their types, so a misspelt key
or a wrong type fails when Hydra composes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from evalsuite.config.schema import Config


@dataclass
class StudyLatency:
    """How the per-block latency lookup table is measured (once per study)."""

    warmup: int = MISSING  # untimed calls per block before timing
    repeats: int = MISSING  # timed calls per block; the median is the table entry
    batch: int = MISSING  # UNet batch per forward (SnapFusion times batch 1 on device)
    text_len: int = MISSING  # text tokens of the cross-attention context


@dataclass
class StudySettings:
    """``evalsuite study``: SnapFusion's block-sensitivity (architecture-evolving) study."""

    name: str = MISSING  # the study to run (block_sensitivity, the only one so far)
    prompts: Optional[int] = MISSING  # the first N prompts of the dataset (null: all of them)
    kinds: List[str] = MISSING  # attentions and/or resnets
    actions: List[str] = MISSING  # a subset of the actions; []: all of them
    max_actions: Optional[int] = MISSING  # only the first N actions (smoke runs, tests)
    rank_by: List[str] = MISSING  # the first metric of these that every run measured ranks
    latency: StudyLatency = field(default_factory=StudyLatency)


@dataclass
class StudyConfig(Config):
    """The root config of ``evalsuite study``: the run config plus ``study``."""

    study: StudySettings = field(default_factory=StudySettings)


def register_study_configs() -> None:
    """Register the schema named in ``conf/study.yaml``'s defaults list."""
    ConfigStore.instance().store(name="study_schema", node=StudyConfig)
