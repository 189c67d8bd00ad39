"""Every config schema (dataclasses, most registered in Hydra's ConfigStore) and the checks on
them: ``schema`` (``evalsuite run``/``score``/``stats``), ``results`` (``table``, ``compare``,
``report``, ``doctor``), ``tabledef`` (``conf/table/*.yaml``), ``study`` (``evalsuite study``),
``recovery``, ``pairings``; ``validate`` and ``build`` turn a composed config into objects."""

from evalsuite.config.schema import register_configs

__all__ = ["register_configs"]
