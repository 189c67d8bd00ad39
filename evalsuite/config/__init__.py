"""Structured-config schemas (dataclasses) registered in Hydra's ConfigStore."""

from evalsuite.config.schema import register_configs

__all__ = ["register_configs"]
