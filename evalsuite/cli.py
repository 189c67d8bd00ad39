"""The ``evalsuite`` command: ``evalsuite <subcommand> [hydra overrides]``.

Each subcommand is a Hydra app in ``evalsuite/commands/<name>.py`` over ``conf/``; everything
after the subcommand goes to Hydra untouched (``key=value``, ``group=option``, ``-m`` for
multirun, ``--cfg job``).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from evalsuite import resources
from evalsuite.errors import EvalsuiteError

# Nothing evalsuite loads may come from a hub: fail at once instead of retrying for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Study configs (one multirun sweep each) live in the top-level ablations/ folder (packaged as
# evalsuite/_studies, see evalsuite/resources.py) and are primary configs:
# `evalsuite run -m -cn mobilediffusion`.

# Subcommands that compose the run config (and so can use the studies).
RUN_CONFIG_APPS = ("run", "profile")

# subcommand -> one-line description; the app is evalsuite.commands.<subcommand>.app
SUBCOMMANDS: dict[str, str] = {
    "run": "generate samples for a model (+ ablations) and score them",
    "score": "compute metrics on existing image folders (no model); writes a record",
    "assets": "list the weight files metrics need and whether they are here; fetch them",
    "profile": "UNet parameters, FLOPs (attention included) and latency; no weights needed",
    "table": "render a named table (or a paper's table next to ours) from the records",
    "compare": "baseline vs. candidate record, per-metric tolerances; exit 1 on a regression",
    "report": "write the HTML report: tables, plots and image grids side by side",
    "study": "block-sensitivity study (SnapFusion): remove each block, rank by quality per ms",
    "stats": "export the FID metrics' reference statistics (mu, sigma) as .npz files",
    "doctor": "check a results folder's files; fix=true (or --fix) quarantines broken ones",
    "export": "send records to Weights & Biases and/or MLflow (offline/file modes too)",
}


def _usage() -> str:
    lines = ["usage: evalsuite <subcommand> [hydra overrides...]", "", "subcommands:"]
    lines += [f"  {name:<10} {desc}" for name, desc in SUBCOMMANDS.items()]
    lines += ["", "e.g. evalsuite run sampler.steps=25 ablation=[shared_kv]",
              "     evalsuite run -m -cn mobilediffusion   runs a study from ablations/",
              "     evalsuite run --help   shows the config groups and their options"]
    return "\n".join(lines)


def _option(args: list[str], names: tuple[str, ...]) -> tuple[int, str] | None:
    """(index, value) of the last ``--name value`` / ``--name=value`` among ``args``."""
    found = None
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            found = (i, args[i + 1])
        elif a.startswith(tuple(f"{n}=" for n in names)):
            found = (i, a.split("=", 1)[1])
    return found


def _quote(item: str) -> str:
    return "'" + item.replace("\\", "\\\\").replace("'", "\\'") + "'"


# Hydra's options that take a value (argparse); `--info` takes one of its choices if given.
_VALUED = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
           "--config-dir", "-cd", "--experimental-rerun")
_INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def _first_override(args: list[str]) -> int:
    """Index of the first ``key=value`` override: Hydra (argparse) wants them in one run."""
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            return i
        takes = a in _VALUED or (a in ("--info", "-i") and i + 1 < len(args) and args[i + 1] in _INFO)
        i += 2 if takes else 1
    return len(args)


def _searchpath_plus(args: list[str], folder: str) -> list[str]:
    """``args`` with ``file://<folder>`` appended to the (user's) ``hydra.searchpath=[...]``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    at = next((i for i, a in enumerate(args) if a.startswith("hydra.searchpath=")), None)
    paths: list = []
    if at is not None:
        value = OverridesParser.create().parse_override(args[at]).value()
        paths = value if isinstance(value, list) else [value]
        args = args[:at] + args[at + 1:]
    else:
        at = _first_override(args)
    items = ",".join(_quote(str(p)) for p in [*paths, f"file://{folder}"])
    return [*args[:at], f"hydra.searchpath=[{items}]", *args[at:]]


def with_studies(args: list[str], studies: str) -> list[str]:
    """Hydra arguments that add the studies folder to the config search path.

    Hydra takes one ``--config-dir`` and finds primary configs (``-cn``) only on the search
    path it starts with, not on ``hydra.searchpath``. Without a user folder the studies folder
    is the ``--config-dir``. With one (``--config-dir mine``), the folder holding the primary
    config keeps that place: a study of ours moves the user's folder to ``hydra.searchpath``
    (its config groups stay visible); otherwise the studies go there.
    """
    user = _option(args, ("--config-dir", "-cd"))
    if user is None:
        return [f"--config-dir={studies}", *args]
    name = _option(args, ("--config-name", "-cn"))
    ours = name is not None and (Path(studies) / f"{name[1]}.yaml").is_file() \
        and not (Path(user[1]) / f"{name[1]}.yaml").is_file()
    if not ours:
        return _searchpath_plus(args, studies)
    i, folder = user
    rest = args[:i] + args[i + (1 if "=" in args[i] else 2):]
    return _searchpath_plus([f"--config-dir={studies}", *rest], os.path.abspath(folder))


def main() -> None:
    """Entry point: dispatch ``evalsuite <subcommand>`` to its Hydra app."""
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(_usage(), file=sys.stderr)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    if sys.argv[1] not in SUBCOMMANDS:
        print(f"evalsuite: error: unknown subcommand {sys.argv[1]!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    sub = sys.argv.pop(1)
    sys.argv[0] = f"evalsuite {sub}"
    if sub == "doctor":  # the one flag-style option: `doctor --fix` is `doctor fix=true`
        sys.argv = [("fix=true" if a == "--fix" else a) for a in sys.argv]
    try:
        if sub in RUN_CONFIG_APPS:
            sys.argv[1:] = with_studies(sys.argv[1:], resources.studies_dir())
        resources.conf_dir()  # a missing config tree is one paragraph, not Hydra's traceback
    except EvalsuiteError as e:
        print(f"evalsuite: error: {e}", file=sys.stderr)
        sys.exit(2)
    from evalsuite.config import register_configs

    register_configs()
    importlib.import_module(f"evalsuite.commands.{sub}").app()


if __name__ == "__main__":
    main()
