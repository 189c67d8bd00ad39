"""Deprecated setting names and the one name each feeds.

Each setting has one name that the code reads. Older names of the ``score`` and ``assets``
commands still work (their root configs interpolate the one name from the old one, see
``conf/score.yaml`` and ``conf/assets.yaml``) but are deprecated: a command line using one gets
a warning naming the new name, and a command line giving both an old name and its new name is
refused, because the new name would silently win over the value the user typed last.
"""

from __future__ import annotations

import logging
from typing import Sequence

from evalsuite.errors import ConfigError

log = logging.getLogger(__name__)

# deprecated name -> the one name the code reads
ALIASES: dict[str, str] = {
    "assets.dir": "paths.assets_dir",
    "assets.verify": "metrics.verify_assets",
    "score.bootstrap": "metrics.bootstrap",
    "score.bootstrap_seed": "metrics.bootstrap_seed",
}


def override_key(override: str) -> str:
    """The dotted key a Hydra override sets: ``++a.b=1`` -> ``a.b``; ``~a.b`` -> ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def check_aliases(overrides: Sequence[str]) -> list[str]:
    """Warn about each deprecated name in ``overrides``; return the deprecated names used.

    Raises:
        ConfigError: an override sets both a deprecated name and the name it feeds.
    """
    keys = {override_key(o) for o in overrides}
    used = [old for old in ALIASES if old in keys]
    both = [f"{old} and {ALIASES[old]}" for old in used if ALIASES[old] in keys]
    if both:
        raise ConfigError(f"the command line sets {'; '.join(both)}: each pair is one setting "
                          f"under its deprecated and its current name. Keep only the current "
                          f"name ({', '.join(ALIASES[o] for o in used)}).")
    for old in used:
        log.warning("%s= is deprecated and will be removed: use %s= (same meaning)",
                    old, ALIASES[old])
    return used
