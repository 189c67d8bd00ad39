"""Shared fixtures. Importing ``nonet`` blocks the network for the whole test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import nonet  # noqa: E402,F401  (side effect: sockets blocked)

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = str(ROOT / "conf")  # the same folder evalsuite.commands.CONF_DIR points at

# The default world (conf/config.yaml) is the trained shapes world. Tests that need a model but
# no meaning use the tiny world (a random pipeline built in memory, the demo prompts); a test
# that chooses `world=` itself keeps its choice.
TINY_WORLD = "world=tiny"


def in_tiny_world(overrides) -> list[str]:
    """``overrides`` with ``world=tiny`` among them, unless they choose a world themselves."""
    overrides = list(overrides)
    if any(o.split("=", 1)[0].lstrip("+~") == "world" for o in overrides):
        return overrides
    # beside the other overrides: flags (-m -cn study, --cfg job) may stand before or after them
    at = next((i for i, o in enumerate(overrides) if "=" in o and not o.startswith("-")),
              len(overrides))
    return [*overrides[:at], TINY_WORLD, *overrides[at:]]


# Small but complete settings for end-to-end runs on 2 CPU cores.
FAST = ["dataset.limit=6", "sampler.steps=2", "sampler.batch_size=4", "metrics=pixel"]


@pytest.fixture
def compose(tmp_path):
    """compose(*overrides) -> the resolved run config, with results under tmp_path."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    def _compose(*overrides: str):
        register_configs()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return hydra_compose("config", overrides=in_tiny_world(
                [f"paths.results_dir={tmp_path}/results", f"paths.assets_dir={tmp_path}/assets",
                 *overrides]))

    return _compose


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 600):
    """Run ``evalsuite`` in a subprocess with the network blocked; return CompletedProcess."""
    code = ("import sys; sys.path.insert(0, %r); import nonet; "
            "from evalsuite.cli import main; sys.argv = ['evalsuite'] + sys.argv[1:]; main()"
            % str(Path(__file__).parent))
    if args and args[0] in ("run", "study", "stats"):  # the commands that compose a run config
        args = [args[0], *in_tiny_world(args[1:])]
    full_env = {**os.environ, "EVALSUITE_ASSETS": str(cwd / "assets"), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def read_records(results: Path) -> list[dict]:
    """Every record under ``results/records`` (sorted by file name: run ids sort by time)."""
    import json

    return [json.loads(p.read_text()) for p in sorted((results / "records").glob("*.json"))]
