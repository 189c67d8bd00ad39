"""One module per ``evalsuite`` subcommand; each defines ``app``, a Hydra main function.

Shared helpers for the apps live here: the config folder (located by ``evalsuite.resources``),
the runtime choices and the error reporter that turns user-facing errors into one paragraph and
exit status 2.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from evalsuite.errors import EvalsuiteError
from evalsuite.resources import conf_dir

CONF_DIR = conf_dir()  # the apps' Hydra config_path: the packaged conf/ (or a checkout's)


def hydra_choices() -> dict[str, Any]:
    """Which option of each config group was used (Hydra's own groups left out)."""
    from hydra.core.hydra_config import HydraConfig

    choices = HydraConfig.get().runtime.choices
    return {k: v for k, v in choices.items() if not k.startswith("hydra/")}


def report_errors(fn: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Print an ``EvalsuiteError`` (or a mandatory key left unset) as one paragraph on
    stderr and exit with status 2."""

    def wrapper(cfg: DictConfig) -> Any:
        try:
            return fn(cfg)
        except EvalsuiteError as e:
            print(f"evalsuite: error: {e}", file=sys.stderr)
            sys.exit(2)
        except MissingMandatoryValue as e:  # a subcommand that reads a ``???`` key
            key = e.full_key or "a key"
            print(f"evalsuite: error: {key} is required but not set; give it on the command "
                  f"line ({key}=<value>)", file=sys.stderr)
            sys.exit(2)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
