"""Sampler names -> diffusers scheduler classes.

A scheduler is built from the model's own scheduler config (betas, timestep spacing,
prediction type), so switching sampler never silently changes the noise schedule.
"""

from __future__ import annotations

from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)

from evalsuite.errors import ConfigError

SCHEDULERS: dict[str, tuple[type, dict[str, Any]]] = {
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),  # diffusers' SD default
    "ddim": (DDIMScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": (EulerDiscreteScheduler, {}),
}


def build_scheduler(name: str, model_scheduler_config: dict[str, Any]) -> Any:
    """Instantiate scheduler ``name`` on top of the model's scheduler config."""
    if name not in SCHEDULERS:
        raise ConfigError(f"sampler.scheduler={name!r} is not known; choose one of "
                          f"{sorted(SCHEDULERS)}")
    cls, overrides = SCHEDULERS[name]
    return cls.from_config(dict(model_scheduler_config), **overrides)
