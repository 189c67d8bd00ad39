"""The interface every tracker exporter has, and importing a tracker's package lazily.

An exporter is built from its settings, ``check()``-ed before any work (the tracker's package
is imported then, so a missing one fails at once with exit status 2), and then ``export``s
one ``Payload`` at a time. ``export`` is idempotent: a record exported before (same run id)
is found and not exported again.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

from evalsuite.errors import EvalsuiteError
from evalsuite.export.payload import Payload

#: Tracker name -> (module imported, pip package)
PACKAGES = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow-skinny")}


class ExportError(EvalsuiteError):
    """A record could not be exported (or export was asked for and cannot work here)."""


@dataclass(frozen=True)
class Exported:
    """One record in one tracker: ``ref`` is the tracker's run (MLflow run id, W&B run
    folder or path); ``created`` is False when the record had been exported before."""

    tracker: str
    run_id: str
    ref: str
    created: bool


class Exporter(Protocol):
    """One tracker."""

    name: str

    def check(self) -> None:
        """Import the tracker's package and check the settings; ``ExportError`` if not usable."""

    def export(self, payload: Payload) -> Exported:
        """Send ``payload`` unless the tracker holds its run already; say which it was."""


def require(tracker: str) -> ModuleType:
    """The tracker's package, imported now; an ``ExportError`` naming what to install."""
    module, package = PACKAGES[tracker]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExportError(
            f"export.{tracker}.enabled=true needs the Python package {package!r}, which cannot "
            f"be imported here ({e}). Install it with pip install 'evalsuite[trackers]' (or pip "
            f"install {package}), or set export.{tracker}.enabled=false; nothing was done."
        ) from None
