"""Sampler names -> diffusers scheduler classes, and the sampler settings' validation.

A scheduler is built from the model's own scheduler config (betas, timestep spacing,
prediction type), so switching sampler never silently changes the noise schedule.
"""

from __future__ import annotations

from typing import Any

from evalsuite.errors import ConfigError

# name -> (diffusers class name, settings that define the sampler beyond the model's config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),  # diffusers' SD default
    "ddim": ("DDIMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": ("EulerDiscreteScheduler", {}),
}
DTYPE_NAMES = ("float32", "float16", "bfloat16")
PREDICTION_TYPES = ("epsilon", "v_prediction")


def check_sampler(sampler: Any) -> None:
    """Reject sampler settings that cannot work, before anything is loaded or written."""
    if sampler.scheduler not in SCHEDULERS:
        raise ConfigError(f"sampler.scheduler={sampler.scheduler!r} is not known; choose one of "
                          f"{sorted(SCHEDULERS)}")
    if sampler.dtype not in DTYPE_NAMES:
        raise ConfigError(f"sampler.dtype={sampler.dtype!r}; choose one of {list(DTYPE_NAMES)}")
    if sampler.prediction_type is not None and sampler.prediction_type not in PREDICTION_TYPES:
        raise ConfigError(f"sampler.prediction_type={sampler.prediction_type!r}; choose one of "
                          f"{list(PREDICTION_TYPES)} or null (the model's own)")
    if sampler.steps < 1:
        raise ConfigError(f"sampler.steps must be >= 1, got {sampler.steps}")
    if sampler.batch_size < 1:
        raise ConfigError(f"sampler.batch_size must be >= 1, got {sampler.batch_size}")
    if sampler.guidance_scale < 0:
        raise ConfigError(f"sampler.guidance_scale must be >= 0, got {sampler.guidance_scale}")


def build_scheduler(name: str, model_scheduler_config: dict[str, Any],
                    prediction_type: str | None = None) -> Any:
    """Instantiate scheduler ``name`` on top of the model's scheduler config.

    ``prediction_type`` overrides what the UNet predicts (v-prediction for SnapFusion-style
    distilled models); None keeps the model's own setting.
    """
    import diffusers

    if name not in SCHEDULERS:
        raise ConfigError(f"sampler.scheduler={name!r} is not known; choose one of "
                          f"{sorted(SCHEDULERS)}")
    cls_name, overrides = SCHEDULERS[name]
    if prediction_type is not None:
        overrides = {**overrides, "prediction_type": prediction_type}
    return getattr(diffusers, cls_name).from_config(dict(model_scheduler_config), **overrides)
