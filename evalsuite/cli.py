"""The ``evalsuite`` command: ``evalsuite <subcommand> [hydra overrides]``.

Each subcommand is a Hydra app over ``conf/``; everything after the subcommand is passed to
Hydra untouched (``key=value``, ``group=option``, ``-m`` for multirun, ``--cfg job``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable

# Nothing evalsuite loads may come from a hub: fail at once instead of retrying for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from evalsuite.config import register_configs  # noqa: E402
from evalsuite.errors import EvalsuiteError  # noqa: E402

log = logging.getLogger("evalsuite")

CONF_DIR = os.environ.get("EVALSUITE_CONF", str(Path(__file__).resolve().parent.parent / "conf"))


def _choices() -> dict:
    from hydra.core.hydra_config import HydraConfig

    choices = HydraConfig.get().runtime.choices
    return {k: v for k, v in choices.items() if not k.startswith("hydra/")}


def _report(fn: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """Turn user-facing errors into one paragraph on stderr and exit status 2."""

    def wrapper(cfg: DictConfig) -> object:
        try:
            return fn(cfg)
        except EvalsuiteError as e:
            print(f"evalsuite: error: {e}", file=sys.stderr)
            sys.exit(2)

    wrapper.__name__ = fn.__name__
    return wrapper


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@_report
def run_app(cfg: DictConfig) -> None:
    """Generate samples for the configured model and score them; write a record and table."""
    from evalsuite.run import run

    record = run(cfg, _choices())
    metrics = ", ".join(f"{k}={v['value']:.4g}" for k, v in record["metrics"].items()) or "none"
    log.info("run %s done in %.1f s; metrics: %s", record["run_id"],
             record["durations"]["total"], metrics)


SUBCOMMANDS: dict[str, Callable[[], None]] = {"run": run_app}


def main() -> None:
    """Entry point: dispatch ``evalsuite <subcommand>`` to its Hydra app."""
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help") or sys.argv[1] not in SUBCOMMANDS:
        names = ", ".join(SUBCOMMANDS)
        print(f"usage: evalsuite {{{names}}} [hydra overrides...]\n"
              "  e.g. evalsuite run sampler.steps=25 ablation=[shared_kv]\n"
              "  evalsuite run --help shows the config groups and options", file=sys.stderr)
        sys.exit(0 if len(sys.argv) >= 2 and sys.argv[1] in ("-h", "--help") else 2)
    sub = sys.argv.pop(1)
    sys.argv[0] = f"evalsuite {sub}"
    register_configs()
    SUBCOMMANDS[sub]()


if __name__ == "__main__":
    main()
