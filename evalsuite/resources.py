"""Where the files evalsuite reads at run time live: the Hydra config tree, the studies, the
published paper tables.

The repository keeps ``conf/`` and ``ablations/`` top-level (the design card's layout);
pyproject.toml maps them into the package at build time, so an installed wheel carries them as
``evalsuite/_conf`` and ``evalsuite/_studies`` and they are found through the installed package
(``importlib.resources``), never through a source tree. A source checkout used directly
(``PYTHONPATH=<checkout>``, or an editable install, whose package folder is the checkout's) has
no such folders inside the package; there the checkout's top-level folders are used.
``EVALSUITE_CONF`` / ``EVALSUITE_STUDIES`` point either somewhere else.

Every module that needs one of these folders asks this module; nothing outside
``evalsuite/commands`` imports ``evalsuite.commands`` for it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from evalsuite.errors import ConfigError

# packaged name -> (top-level folder in a checkout, environment override)
_FOLDERS = {"_conf": ("conf", "EVALSUITE_CONF"), "_studies": ("ablations", "EVALSUITE_STUDIES")}


def _package_root() -> Path:
    # A wheel is installed unpacked (pip never installs zipped), so the package is a real folder.
    return Path(str(resources.files("evalsuite")))


@lru_cache(maxsize=None)
def _locate(packaged: str) -> str:
    top, env = _FOLDERS[packaged]
    if os.environ.get(env):
        return os.path.abspath(os.environ[env])
    root = _package_root()
    for candidate in (root / packaged, root.parent / top):  # installed wheel, then checkout
        if candidate.is_dir():
            return str(candidate)
    raise ConfigError(f"evalsuite's {top}/ folder is missing: looked for {root / packaged} (an "
                      f"installed wheel) and {root.parent / top} (a source checkout). Reinstall "
                      f"evalsuite, or set {env} to the folder.")


def conf_dir() -> str:
    """Absolute path of the Hydra config tree (``conf/`` in the repository)."""
    return _locate("_conf")


def studies_dir() -> str:
    """Absolute path of the study configs (``ablations/`` in the repository)."""
    return _locate("_studies")


def paper_dir() -> Path:
    """Folder of the published paper tables (``evalsuite/results/paper/*.yaml``)."""
    return _package_root() / "results" / "paper"
