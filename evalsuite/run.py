"""``evalsuite run`` as a function: ``run(cfg)`` (the pipeline lives in ``evalsuite.tasks``).

Kept as the stable import path for notebooks and studies.
"""

from evalsuite.tasks import check_writable, config_hash, run
from evalsuite.tasks.model_facts import architecture_facts, build_ablations

__all__ = ["architecture_facts", "build_ablations", "check_writable", "config_hash", "run"]
