"""The ``evalsuite`` command: ``evalsuite <subcommand> [hydra overrides]``.

Each subcommand is a Hydra app in ``evalsuite/commands/<name>.py`` over ``conf/``; everything
after the subcommand goes to Hydra untouched (``key=value``, ``group=option``, ``-m`` for
multirun, ``--cfg job``).
"""

from __future__ import annotations

import importlib
import os
import sys

# Nothing evalsuite loads may come from a hub: fail at once instead of retrying for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Study configs (one multirun sweep each) live in the top-level ablations/ folder and are
# primary configs: `evalsuite run -m -cn mobilediffusion`.
STUDIES_DIR = os.environ.get("EVALSUITE_STUDIES",
                             os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                          "ablations"))
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
}


def _usage() -> str:
    lines = ["usage: evalsuite <subcommand> [hydra overrides...]", "", "subcommands:"]
    lines += [f"  {name:<10} {desc}" for name, desc in SUBCOMMANDS.items()]
    lines += ["", "e.g. evalsuite run sampler.steps=25 ablation=[shared_kv]",
              "     evalsuite run -m -cn mobilediffusion   runs a study from ablations/",
              "     evalsuite run --help   shows the config groups and their options"]
    return "\n".join(lines)


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
    if sub in RUN_CONFIG_APPS and os.path.isdir(STUDIES_DIR):
        sys.argv.insert(1, f"--config-dir={STUDIES_DIR}")
    from evalsuite.config import register_configs

    register_configs()
    importlib.import_module(f"evalsuite.commands.{sub}").app()


if __name__ == "__main__":
    main()
