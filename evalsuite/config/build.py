"""The one way objects are built from configs: Hydra ``_target_`` instantiation, logged.

Hydra wraps any exception raised by a constructor in ``InstantiationException``; ``build``
unwraps evalsuite's own errors so the CLI can print them as one paragraph, and turns a bad
parameter name into a ``ConfigError`` naming the config key.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from evalsuite.errors import ConfigError, EvalsuiteError

log = logging.getLogger(__name__)


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """Instantiate config ``node`` (found at config path ``key``) and log what was built."""
    target = node.get("_target_", "?")
    log.debug("building %s from %s", key, target)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, EvalsuiteError):
            raise cause from None
        if isinstance(cause, TypeError) and "argument" in str(cause):
            raise ConfigError(f"{key} ({target}) got a parameter it does not take: {cause}") from None
        raise
